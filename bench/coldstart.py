"""Section 1: cold start per function, i.e. the import and initialisation of each handler module.

Every AWS::Serverless::Function of template.yaml is imported the way Lambda does it: a fresh
interpreter (`python -I`, so no PYTHONPATH and no current folder), its CodeUri first on sys.path and
`shared/` next (the SharedLayer), the function's own environment from the template, and
LAMBDA_TASK_ROOT set (Powertools and the X-Ray SDK behave as in Lambda: tracing on, local sampler).
The child times `import <module>; getattr(module, <handler>)` and reports which modules and botocore
service models are loaded once the import is done.

Baseline, in the same run and the same kind of child: `import boto3` + a Powertools
`APIGatewayRestResolver()`. The runs are interleaved (every round runs every case once, in a shuffled
order), so that a noisy moment hits all cases alike.

Two references: the API's third-party stack with no code of ours (what the chosen libraries cost),
and the API imported the way the layers are built today, without .pyc (`without_layer_pyc`).

If the API function misses its target, children run with `-X importtime` and the notes name the
packages and imports that cost most, each import with the project module that pulled it in.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.runner import Report, Row, median, ratio

SECTION = "1 cold start"
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT / "shared"
BASELINE = "baseline"
BASELINE_CASE = "baseline: import boto3 + APIGatewayRestResolver()"
DEPS_FLOOR = "depsfloor"
DEPS_FLOOR_CASE = "reference: the API's stack, no project code"
API_FUNCTION = "ApiFunction"
TARGET_RATIO = 1.3
PROFILE_RUNS = 3
# what the API must not load at import
PDF_STACK = ("pyppeteer", "invoicing.adapters.chromium", "websockets", "weasyprint")
# the e-mail stack: our e-mail rendering and sending modules, Jinja2 (which renders them), the SES v2 client
EMAIL_STACK = ("invoicing.emails", "invoicing.adapters.email", "jinja2")

CHILD = r"""
import gc, json, sys, time
code_dir, shared_dir, module_name, attr = sys.argv[1:5]
if code_dir:
    sys.path.insert(0, code_dir)
    sys.path.insert(1, shared_dir)
started = time.perf_counter()
if module_name == "baseline":
    import boto3
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    APIGatewayRestResolver()
elif module_name == "depsfloor":
    from typing import Annotated
    import boto3, pydantic, pynamodb.connection
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.event_handler.openapi.params import Body
    Logger(service="floor"); Tracer(service="floor"); Metrics(namespace="Floor", service="floor")
    class Thing(pydantic.BaseModel):
        name: str
    resolver = APIGatewayRestResolver(enable_validation=True)
    @resolver.post("/things")
    def create(thing: Annotated[Thing, Body()]) -> Thing:
        return thing
    resolver.enable_swagger(path="/docs")
else:
    __import__(module_name)  # the import statement's path: `-X importtime` reports it (importlib's does not)
    getattr(sys.modules[module_name], attr)
seconds = time.perf_counter() - started
services = set()
if "botocore.loaders" in sys.modules:
    from botocore.loaders import Loader
    for obj in gc.get_objects():
        if isinstance(obj, Loader):
            for key in getattr(obj, "_cache", {}):
                if isinstance(key, tuple) and len(key) > 1 and key[0] == "load_service_model":
                    services.add(key[1])
print(json.dumps({"seconds": seconds, "modules": sorted(sys.modules), "services": sorted(services)}))
"""


@dataclass
class Case:
    name: str  # logical id, or "baseline"
    code_dir: Path | None
    module: str
    attr: str
    env: dict[str, str]
    seconds: list[float] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)


def _lambda_env(lid: str, code_dir: Path, variables: dict[str, Any], memory: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "POWERTOOLS_"))}
    env.update({str(k): str(v) for k, v in variables.items()})
    env.update(
        {
            "LAMBDA_TASK_ROOT": str(code_dir),
            "AWS_LAMBDA_FUNCTION_NAME": lid,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    return env


def function_cases() -> list[Case]:
    """One case per AWS::Serverless::Function of template.yaml (CodeUri + Handler)."""
    from local.cfn import Template

    template = Template(ROOT / "template.yaml", stage="dev")
    cases = []
    for lid in template.of_type("AWS::Serverless::Function"):
        props = template.resolved_properties(lid)
        code_dir = (ROOT / str(props["CodeUri"])).resolve()
        module, _, attr = str(props["Handler"]).rpartition(".")
        variables = (props.get("Environment") or {}).get("Variables") or {}
        env = _lambda_env(lid, code_dir, variables, props.get("MemorySize", 128))
        cases.append(Case(lid, code_dir, module, attr, env))
    return cases


def _run_child(case: Case, extra_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    args = [str(case.code_dir or ""), str(SHARED), case.module, case.attr]
    return subprocess.run(
        [sys.executable, "-I", *extra_flags, "-c", CHILD, *args],
        env=case.env,
        cwd=str(case.code_dir or ROOT),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _measure(case: Case) -> None:
    done = _run_child(case)
    if done.returncode != 0:
        raise RuntimeError(f"importing {case.name} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    case.seconds.append(result["seconds"])
    case.last = result


# ---------------------------------------------------------------- -X importtime
@dataclass
class ImportNode:
    level: int
    self_us: int
    cum_us: int
    name: str
    children: list[ImportNode] = field(default_factory=list)


def parse_importtime(text: str) -> list[ImportNode]:
    """The import tree from `-X importtime` output (printed children first, indented 2 per level)."""
    pending: list[ImportNode] = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3:
            continue
        rest = parts[2][1:] if parts[2].startswith(" ") else parts[2]
        name = rest.lstrip(" ")
        node = ImportNode((len(rest) - len(name)) // 2, int(parts[0]), int(parts[1]), name.strip())
        children = []
        while pending and pending[-1].level == node.level + 1:
            children.append(pending.pop())
        node.children = list(reversed(children))
        pending.append(node)
    return pending  # the roots, in import order


def _project_names(code_dir: Path | None) -> set[str]:
    names = {"invoicing"}
    if code_dir:
        names |= {p.stem for p in code_dir.glob("*.py")}
        names |= {p.name for p in code_dir.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    return names


def import_offenders(roots: list[ImportNode], project: set[str], top: int = 10) -> list[tuple[float, str]]:
    """(ms, "who -> what") for the costliest imports a project module triggers, and project modules' own
    module-level code. Only the first importer of a module pays; that is the one named."""
    found: list[tuple[float, str]] = []

    def is_project(name: str) -> bool:
        return name.split(".")[0] in project

    def walk(node: ImportNode) -> None:
        if not is_project(node.name):
            return
        if node.self_us > 15_000:
            found.append((node.self_us / 1000, f"{node.name} (its own module-level code)"))
        for child in node.children:
            if is_project(child.name):
                walk(child)
            else:
                found.append((child.cum_us / 1000, f"{node.name} -> {child.name}"))

    for root in roots:
        walk(root)
    found.sort(reverse=True)
    return found[:top]


def import_chain(roots: list[ImportNode], target: str) -> list[str]:
    """The chain of imports that first loaded `target` (or a submodule of it), e.g. app -> routes.x -> jinja2."""

    def search(node: ImportNode, path: list[str]) -> list[str] | None:
        here = [*path, node.name]
        if node.name == target or node.name.startswith(target + "."):
            return here
        for child in node.children:
            hit = search(child, here)
            if hit:
                return hit
        return None

    for root in roots:
        hit = search(root, [])
        if hit:
            return hit
    return []


def _profile(case: Case) -> list[ImportNode]:
    done = _run_child(case, ("-X", "importtime"))
    return parse_importtime(done.stderr)


def package_self_times(root: ImportNode) -> dict[str, float]:
    """ms of module-level code per package under `root` (order-independent, unlike first-importer blame).
    Powertools is split by sub-package (event_handler.openapi, utilities.idempotency ...)."""
    out: dict[str, float] = {}

    def walk(node: ImportNode) -> None:
        parts = node.name.split(".")
        key = ".".join(parts[:3]) if parts[0] == "aws_lambda_powertools" else parts[0]
        out[key] = out.get(key, 0.0) + node.self_us / 1000
        for child in node.children:
            walk(child)

    walk(root)
    return out


# ---------------------------------------------------------------- no .pyc in the layers
# Lambda's python runtime ships these (and the standard library) compiled; the layers ship sources only.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"}


def without_layer_pyc(case: Case, runs: int) -> list[float]:
    """The handler import with compiled code only for the stdlib and the runtime-provided packages.

    `-X pycache_prefix=DIR` makes Python read and write .pyc files only under DIR (mirroring the
    source paths). One import fills DIR; then the .pyc of the function, of shared/ and of every
    site-package that Lambda's runtime does not provide are deleted, and each timed run starts from
    a copy of what is left, so it compiles exactly what a cold Lambda container compiles.
    """
    warm = Path(tempfile.mkdtemp(prefix="bench-pyc-"))
    try:
        _run_child(case, ("-X", f"pycache_prefix={warm}"))
        mirror = warm / Path(sysconfig.get_paths()["purelib"]).relative_to("/")
        for entry in mirror.iterdir() if mirror.is_dir() else []:
            if entry.name.split(".")[0] not in RUNTIME_PROVIDED:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        for ours in (SHARED, case.code_dir):
            if ours is not None:
                shutil.rmtree(warm / Path(ours).relative_to("/"), ignore_errors=True)
        seconds = []
        for _ in range(runs):
            scratch = Path(tempfile.mkdtemp(prefix="bench-pyc-run-"))
            try:
                prefix = scratch / "pyc"
                shutil.copytree(warm, prefix)
                done = _run_child(case, ("-X", f"pycache_prefix={prefix}"))
                if done.returncode != 0:
                    raise RuntimeError(f"importing {case.name} without .pyc failed:\n{done.stderr[-2000:]}")
                seconds.append(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        return seconds
    finally:
        shutil.rmtree(warm, ignore_errors=True)


# ---------------------------------------------------------------- the section
def _tops(modules: list[str]) -> list[str]:
    """invoicing.* modules by name, third-party packages by their top-level name."""
    return sorted({m if m.startswith("invoicing") else m.split(".")[0] for m in modules})


def _loaded(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted({m for m in modules for p in prefixes if m == p or m.startswith(p + ".")})


def run(report: Report, quick: bool) -> None:
    n = 5 if quick else 10
    cases = function_cases()
    api = next((c for c in cases if c.name == API_FUNCTION), None)
    baseline = Case(BASELINE, None, BASELINE, "", dict((api or cases[0]).env))
    floor = Case(DEPS_FLOOR, None, DEPS_FLOOR, "", dict((api or cases[0]).env))
    everything = [baseline, floor, *cases]
    shuffler = random.Random(20261124)
    for _ in range(n):
        order = list(everything)
        shuffler.shuffle(order)
        for case in order:
            _measure(case)

    base_median = median(baseline.seconds)
    report.add(Row.timed(SECTION, BASELINE_CASE, baseline.seconds, note="fresh interpreter; import + init only"))
    report.add(
        Row.timed(
            SECTION,
            DEPS_FLOOR_CASE,
            floor.seconds,
            baseline="baseline",
            ratio=ratio(median(floor.seconds), base_median),
            note="boto3, pynamodb, pydantic, Logger/Tracer/Metrics, resolver(enable_validation=True) with one "
            "pydantic route + swagger: what the API's chosen stack costs before any code of ours",
        )
    )
    for case in cases:
        modules = case.last.get("modules", [])
        services = case.last.get("services", [])
        detail = [f"{len(modules)} modules"]
        detail.append("botocore models at import: " + (", ".join(services) if services else "none"))
        target, met = "", None
        r = ratio(median(case.seconds), base_median)
        if case is api:
            target = f"<= {TARGET_RATIO}x baseline"
            met = r is not None and r <= TARGET_RATIO
        report.add(
            Row.timed(
                SECTION,
                f"{case.name} ({case.code_dir.relative_to(ROOT) if case.code_dir else ''}/{case.module}.{case.attr})",
                case.seconds,
                baseline="baseline",
                ratio=r,
                target=target,
                met=met,
                note="; ".join(detail),
            )
        )
        if case is api:
            pdf = _loaded(modules, PDF_STACK)
            email = _loaded(modules, EMAIL_STACK) + (["sesv2 client"] if "sesv2" in services else [])
            tops = _tops(pdf + email)
            report.add(
                Row(
                    SECTION,
                    f"{case.name}: PDF and e-mail stacks loaded at import",
                    float(len(tops)),
                    None,
                    "modules",
                    1,
                    target="= 0 (lazy)",
                    met=not tops,
                    note=f"PDF: {', '.join(_tops(pdf)) or 'none'}; e-mail: {', '.join(_tops(email)) or 'none'}",
                )
            )

    if api is None:
        report.note("cold start: template.yaml has no ApiFunction; no target checked")
        return
    no_pyc = without_layer_pyc(api, 1 if quick else 3)
    report.add(
        Row.timed(
            SECTION,
            f"{api.name}, layers without .pyc (as layers/deps and shared/ Makefiles build them)",
            no_pyc,
            baseline="baseline",
            ratio=ratio(median(no_pyc), base_median),
            note=f"{ratio(median(no_pyc), median(api.seconds)):.1f}x the same import with .pyc: every cold start "
            "compiles the layers' modules (Lambda's /opt is read-only, so the compiled code is never kept)",
        )
    )
    runs = [_profile(api) for _ in range(PROFILE_RUNS)]
    project = _project_names(api.code_dir)
    for heavy in ("jinja2", "invoicing.emails", "invoicing.adapters.email", "pyppeteer", "invoicing.adapters.chromium"):
        chain = import_chain(runs[0], heavy)
        if chain:
            report.note(f"cold start: ApiFunction loads {heavy} at import through " + " -> ".join(chain))
    api_ratio = ratio(median(api.seconds), base_median)
    if api_ratio is None or api_ratio <= TARGET_RATIO:
        return
    blame: dict[str, float] = {}
    packages: dict[str, float] = {}
    total = 0.0
    for roots in runs:
        for ms, what in import_offenders(roots, project, top=40):
            blame[what] = blame.get(what, 0.0) + ms / len(runs)
        handler = next((r for r in roots if r.name == api.module), None)
        if handler is not None:
            total += handler.cum_us / 1000 / len(runs)
            for key, ms in package_self_times(handler).items():
                packages[key] = packages.get(key, 0.0) + ms / len(runs)
    top_blame = sorted(blame.items(), key=lambda kv: -kv[1])[:10]
    top_packages = sorted(packages.items(), key=lambda kv: -kv[1])[:12]
    report.note(
        f"cold start: ApiFunction is {api_ratio:.2f}x the baseline (target {TARGET_RATIO}x). `python -X importtime`, "
        f"mean of {len(runs)} runs (profiler-inflated: {total:.0f} ms for `import {api.module}`). Module-level code by "
        "package: "
        + ", ".join(f"{name} {ms:.0f} ms" for name, ms in top_packages)
        + ". Costliest imports, each with the project module that pulled it in first (the first importer pays): "
        + "; ".join(f"{ms:.0f} ms {what}" for what, ms in top_blame)
    )
