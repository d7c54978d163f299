"""Run AWS's offline validator (PyPI `cloudformation-validate`) on one template; print JSON.

Runs under .tools/deploy-check/bin/python, the venv `make deploy-tools` installs it into, so it
imports nothing from this repo:

    .tools/deploy-check/bin/python scripts/deploy_check/cfv_run.py .aws-sam/deploy-check/translated.json

Prints {"status", "version", "diagnostics": [{"severity", "rule", "resource", "message"}]}.
"""

from __future__ import annotations

import json
import sys

from cloudformation_validate import CompositeEngine


def main(argv: list[str]) -> int:
    report = CompositeEngine().validate_template(argv[1])
    diagnostics = [
        {
            "severity": diagnostic.severity.name,
            "rule": diagnostic.rule_id,
            "resource": diagnostic.entity.logical_id if diagnostic.entity else "",
            "message": diagnostic.message,
        }
        for diagnostic in report.diagnostics
    ]
    print(json.dumps({"status": report.status.name, "version": report.version, "diagnostics": diagnostics}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
