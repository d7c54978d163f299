"""Every step of `make deploy-check`, one line each; exits 1 if any step failed.

1. translate   template.yaml with the SAM CLI's samtranslator, as `sam deploy` does
2. cfn-lint    every rule on the translated template; 0 errors
3. cycles      our own dependency graph (Ref, GetAtt, Sub, DependsOn, both Fn::If branches)
4. cfn-validate AWS's offline validator (cloudformation-validate) on the translated template
5. method-settings  stage MethodSettings paths encode `/` as `~1`
6-8. imports, render, import-target, pyc-speedup, bytecode, size (scripts/deploy_check/runtime.py)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from local.cfn import load_yaml
from scripts.deploy_check.graph import cycles, dependency_graph, shortest_loop
from scripts.deploy_check.method_settings import bad_paths
from scripts.deploy_check.runtime import Report, check_runtime

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def _run_json(cmd: list[str]) -> tuple[int, Any, str]:
    """Run a tool that prints JSON (the whole output, or its last line after log lines)."""
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    for text in (done.stdout, (done.stdout.strip().splitlines() or [""])[-1]):
        try:
            return done.returncode, json.loads(text), done.stderr
        except json.JSONDecodeError:
            continue
    return done.returncode, None, (done.stderr or done.stdout).strip()


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def translate(report: Report, sam_python: str, template: Path, out: Path) -> dict[str, Any] | None:
    if not Path(sam_python).is_file():
        report.line("translate", False, f"no {sam_python} (run `make tools`)")
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    code, result, stderr = _run_json([sam_python, str(HERE / "translate.py"), str(template), str(out)])
    if result is None or not result.get("ok"):
        errors = result.get("errors") if result else [stderr.splitlines()[-1] if stderr else f"exit {code}"]
        report.line("translate", False, f"samtranslator refused {template.name}")
        for error in errors:
            report.detail(error)
        return None
    report.line(
        "translate",
        True,
        f"{result['resources']} cloudformation resources -> {_shown(out)} "
        f"({result['placeholders']} code uris as s3 placeholders, {result['policy_loader_calls']} managed-policy look-ups)",
    )
    return json.loads(out.read_text())


def cfn_lint(report: Report, translated: Path) -> None:
    cfn_lint_bin = Path(sys.executable).with_name("cfn-lint")
    cmd = [str(cfn_lint_bin), "--include-checks", "I", "--include-experimental", "--regions", "us-east-1"]
    code, findings, stderr = _run_json([*cmd, "--format", "json", "--", str(translated)])
    # exit status: a bit mask of 2 errors, 4 warnings, 8 informational; 1 (or no json) means it crashed
    if findings is None or code & 1:
        report.line("cfn-lint", False, f"did not run (exit {code}): {stderr[-300:]}")
        return
    levels = Counter(f["Level"] for f in findings)
    errors = [f for f in findings if f["Level"] == "Error"]
    report.line(
        "cfn-lint",
        not errors,
        f"{levels['Error']} errors, {levels['Warning']} warnings, {levels['Informational']} informational "
        f"(all rules, experimental included) on the translated template",
    )
    for finding in findings:
        if finding["Level"] in ("Error", "Warning"):
            where = "/".join(str(p) for p in finding["Location"].get("Path", [])[:2])
            report.detail(f"{finding['Level'].lower()} {finding['Rule']['Id']} {where}: {finding['Message']}")
    info = Counter(f["Rule"]["Id"] for f in findings if f["Level"] == "Informational")
    if info:
        report.detail("informational: " + ", ".join(f"{rule} x{n}" for rule, n in sorted(info.items())))


def own_cycles(report: Report, template: dict[str, Any]) -> None:
    found = cycles(template)
    graph = dependency_graph(template)
    edges = sum(len(e) for e in graph.values())
    report.line("cycles", not found, f"{len(found)} reference cycle(s) in {len(graph)} resources, {edges} edges")
    for members in found:
        loop = shortest_loop(graph, members[0], set(members))
        report.detail(f"cycle of {len(members)}: {', '.join(members)} (e.g. {' -> '.join(loop)})")


def cfn_validate(report: Report, python: str, translated: Path) -> None:
    if not Path(python).is_file():
        report.line("cfn-validate", False, f"no {python} (run `make deploy-tools`)")
        return
    code, result, stderr = _run_json([python, str(HERE / "cfv_run.py"), str(translated)])
    if result is None or code != 0:
        report.line("cfn-validate", False, f"did not run (exit {code}): {stderr[-300:]}")
        return
    diagnostics = result["diagnostics"]
    levels = Counter(d["severity"] for d in diagnostics)
    blocking = [d for d in diagnostics if d["severity"] in ("FATAL", "ERROR")]
    ok = not blocking and result["status"] == "OK"
    report.line(
        "cfn-validate",
        ok,
        f"cloudformation-validate {result['version']}: status {result['status'].lower()}, {levels['FATAL']} fatal, "
        f"{levels['ERROR']} errors, {levels['WARN']} warnings, {levels['INFO']} info",
    )
    for d in diagnostics:
        if d["severity"] in ("FATAL", "ERROR", "WARN"):
            report.detail(f"{d['severity'].lower()} {d['rule']} {d['resource']}: {d['message']}")


def method_settings(report: Report, template: dict[str, Any], source: str) -> None:
    bad = bad_paths(template)
    report.line(
        "method-settings", not bad, f"{len(bad)} stage method settings with an unencoded ResourcePath ({source})"
    )
    for path in bad:
        report.detail(f"{path.resource} {path.method} {path.path}: must be {path.expected}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.deploy_check", description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=REPO / "template.yaml")
    parser.add_argument("--build-dir", type=Path, default=REPO / ".aws-sam" / "build")
    parser.add_argument("--work-dir", type=Path, default=REPO / ".aws-sam" / "deploy-check")
    parser.add_argument("--sam-python", default=os.environ.get("SAM_PYTHON", str(REPO / ".tools/sam/bin/python")))
    parser.add_argument(
        "--cfn-validate-python",
        default=os.environ.get("CFN_VALIDATE_PYTHON", str(REPO / ".tools/deploy-check/bin/python")),
    )
    parser.add_argument(
        "--runtime-dir", type=Path, default=Path(os.environ.get("LAMBDA_BOTO3", REPO / ".cache/lambda-runtime/boto3"))
    )
    parser.add_argument("--static-only", action="store_true", help="steps 1-5 only (no build needed)")
    args = parser.parse_args(argv)

    report = Report()
    out = args.work_dir / "translated.json"
    translated = translate(report, args.sam_python, args.template, out)
    if translated is not None:
        cfn_lint(report, out)
        own_cycles(report, translated)
        cfn_validate(report, args.cfn_validate_python, out)
        method_settings(report, translated, "translated template")
    else:
        method_settings(report, load_yaml(args.template), "template.yaml, untranslated")
    if not args.static_only:
        check_runtime(report, args.template, args.build_dir, args.work_dir, args.runtime_dir.resolve())
    verdict = "FAIL" if report.failures else "ok"
    print(f"deploy-check: {verdict}, {report.failures} failing steps")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
