"""The built artifacts, the way Lambda sees them: `.aws-sam/build` from `sam build` (make test runs it).

1. Every function's handler imports from its built CodeUri folder plus its built layers' `python/`
   folders, in a fresh interpreter, and the handler attribute exists. This catches a module left out
   of a function folder or of the shared layer before deploy.
2. The deps layer holds every distribution that the runtime requirements need, transitively, for
   python3.12 on x86_64 (read from the layer's own metadata), except what the Lambda runtime provides.

This machine runs Python 3.11, so cp312 binary wheels in the layer cannot be loaded here; the
imports in (1) take third-party packages from the venv and (2) checks the layer's contents instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

BUILD = ROOT / ".aws-sam" / "build"
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer"}
LAMBDA_ENV = {
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "sys_platform": "linux",
    "platform_machine": "x86_64",
    "platform_system": "Linux",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "extra": "",
}


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def built_template() -> dict:
    path = BUILD / "template.yaml"
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("run `sam build` first (make test does)")
        pytest.skip("no .aws-sam/build: run `make build`")
    return yaml.load(path.read_text(), Loader=_Loader)


def functions_and_layers() -> list[tuple[str, Path, str, list[Path]]]:
    template = built_template()
    resources = template["Resources"]
    global_layers = (template.get("Globals", {}).get("Function", {}) or {}).get("Layers") or []
    out = []
    for lid, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        props = res["Properties"]
        layers = []
        for ref in [*global_layers, *(props.get("Layers") or [])]:
            layer_id = ref.get("Ref") if isinstance(ref, dict) else None
            if layer_id and layer_id in resources:
                layers.append(BUILD / resources[layer_id]["Properties"]["ContentUri"])
        out.append((lid, BUILD / props["CodeUri"], props["Handler"], layers))
    return out


def _params():
    try:
        return functions_and_layers()
    except BaseException:  # skip/fail is raised inside the test instead
        return []


def test_build_exists():
    assert functions_and_layers(), "the built template has no functions"


@pytest.mark.parametrize("function", _params(), ids=lambda f: f[0])
def test_handler_imports_from_built_artifacts(function):
    lid, code_dir, handler, layers = function
    module, _, attr = handler.rpartition(".")
    # our own code from the build; third-party wheels (cp312) come from this interpreter's venv
    own_layers = [
        layer / "python"
        for layer in layers
        if (layer / "python").exists() and not any((layer / "python").glob("*.dist-info"))
    ]
    paths = [str(code_dir)] + [str(p) for p in own_layers]
    script = (
        "import sys, json, importlib\n"
        f"sys.path[:0] = {paths!r}\n"
        f"m = importlib.import_module({module!r})\n"
        f"assert callable(getattr(m, {attr!r})), 'handler missing'\n"
        "ours = sorted(n for n, mod in sys.modules.items() if getattr(mod, '__file__', None) and "
        f"any(str(mod.__file__).startswith(p) for p in {paths!r}))\n"
        "print(json.dumps(ours))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AWS_ENDPOINT_URL")}
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "TABLE_NAME": "t", "POWERTOOLS_TRACE_DISABLED": "true"})
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd="/", timeout=120
    )
    assert result.returncode == 0, f"{lid}: {result.stderr[-3000:]}"
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert module in loaded
    assert any(name.startswith("invoicing") for name in loaded), "the shared layer was not used"


def test_shared_layer_carries_the_templates():
    template = built_template()
    shared = BUILD / template["Resources"]["SharedLayer"]["Properties"]["ContentUri"] / "python" / "invoicing"
    assert (shared / "__init__.py").exists()
    source = ROOT / "shared" / "invoicing"
    files = [p.relative_to(source) for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    # the message catalogs ship compiled (.mo, built by the layer's own build), not as .po/.pot
    expected = {p for p in files if p.suffix not in (".po", ".pot", ".mo")}
    expected |= {p.with_suffix(".mo") for p in files if p.suffix == ".po"}
    built = {p.relative_to(shared) for p in shared.rglob("*") if p.is_file()}
    assert expected <= built, f"missing from the layer: {sorted(map(str, expected - built))[:10]}"
    assert not [p for p in built if p.suffix in (".po", ".pot")]


def test_deps_layer_has_the_whole_dependency_closure_for_python312():
    template = built_template()
    layer = BUILD / template["Resources"]["DepsLayer"]["Properties"]["ContentUri"] / "python"
    present = {canonicalize_name(d.metadata["Name"]): d for d in distributions(path=[str(layer)])}
    wanted = [
        Requirement(line.split("#")[0].strip())
        for line in (ROOT / "layers" / "deps" / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    missing: list[str] = []
    seen: set[str] = set()
    queue = [(req, "") for req in wanted]
    while queue:
        req, extra = queue.pop()
        if req.marker and not req.marker.evaluate({**LAMBDA_ENV, "extra": extra}):
            continue
        name = canonicalize_name(req.name)
        key = f"{name}[{','.join(sorted(req.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        if name in RUNTIME_PROVIDED:
            continue
        dist = present.get(name)
        if dist is None:
            missing.append(str(req))
            continue
        for requirement in dist.requires or []:
            sub = Requirement(requirement)
            for wanted_extra in [""] + sorted(req.extras):
                queue.append((sub, wanted_extra))
    assert not missing, f"not in the deps layer: {missing}"
    for name in RUNTIME_PROVIDED:
        assert name not in present, f"{name} comes with the Lambda runtime; the layer must not shadow it"
    compiled = [p.name for p in layer.rglob("*.so")]
    assert compiled and all("cpython-312" in n or "abi3" in n or ".cpython" not in n for n in compiled), compiled
