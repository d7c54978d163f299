"""``python -m local.sam_env``: an ``--env-vars`` file for ``sam local start-api`` / ``invoke`` (Docker).

For people who have Docker and prefer SAM's containers: run ``python -m local`` for the local AWS and
its resources, then let SAM's containers use it through this file. It holds, for every function, the
template's environment with local resource names (tables, buckets, queue URLs on the local AWS, the
API URL) and, under ``Parameters``, ``AWS_ENDPOINT_URL`` and test credentials.

SAM only sets variables that the function declares in the template, so ``AWS_ENDPOINT_URL`` reaches
the containers only if the template declares it (see the README).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .__main__ import common_arguments, parse_parameters
from .cfn import SERVERLESS_FUNCTION, Template, _cfn_str
from .runtime import point_api_urls_at


def env_vars_file(template: Template, moto_url: str, api_url: str) -> dict[str, dict[str, str]]:
    for logical_id, resource in template.resources.items():
        if resource["Type"] == "AWS::SQS::Queue":
            name = template.registry.attrs[logical_id]["QueueName"]
            url = f"{moto_url.rstrip('/')}/{template.account_id}/{name}"
            template.registry.set(logical_id, url, QueueUrl=url)
    out: dict[str, dict[str, str]] = {
        "Parameters": {
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": template.region,
            "AWS_REGION": template.region,
        }
    }
    for logical_id in template.of_type(SERVERLESS_FUNCTION):
        variables = (template.resolved_properties(logical_id).get("Environment") or {}).get("Variables") or {}
        out[logical_id] = {str(k): point_api_urls_at(template, _cfn_str(v), api_url) for k, v in variables.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.sam_env", description=__doc__)
    common_arguments(parser)
    parser.add_argument(
        "--moto-url",
        default="http://host.docker.internal:5000",
        help="the local AWS as seen from inside SAM's containers (default: %(default)s)",
    )
    parser.add_argument("--api-url", default="http://127.0.0.1:3000", help="where sam local start-api listens")
    parser.add_argument("--output", "-o", help="write here instead of stdout")
    args = parser.parse_args(argv)
    template = Template(
        Path(args.template), parameter_overrides=parse_parameters(args.parameter), stack_name=args.stack_name
    )
    text = json.dumps(env_vars_file(template, args.moto_url, args.api_url), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
