"""docs/deploy.md stays in step with template.yaml: every parameter in its table, every output named."""

from __future__ import annotations

import re
from pathlib import Path

from local.cfn import load_yaml

ROOT = Path(__file__).resolve().parents[2]


def test_deploy_docs_list_every_template_parameter_and_output():
    # Given the template's parameters and outputs
    template = load_yaml(ROOT / "template.yaml")
    parameters = set(template["Parameters"])
    outputs = set(template["Outputs"])

    # When docs/deploy.md is read
    docs = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    table_rows = set(re.findall(r"^\| `(\w+)` \|", docs, re.MULTILINE))

    # Then its parameter table has a row for every parameter, and each output is named
    assert table_rows >= parameters, f"parameters missing from docs/deploy.md: {sorted(parameters - table_rows)}"
    assert not [name for name in outputs if f"`{name}`" not in docs]


def test_deploy_docs_give_the_stripe_parameter_names_of_the_template():
    # Given the template's default SSM parameter names for the Stripe secrets
    params = load_yaml(ROOT / "template.yaml")["Parameters"]
    docs = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")

    # Then the put-parameter commands in the docs use exactly those names
    for name in ("StripeSecretKeyParam", "StripeWebhookSecretParam"):
        assert f"aws ssm put-parameter --name {params[name]['Default']} " in docs
