"""Each function as Lambda lays it out, from `sam build`'s artifacts: the task folder, /opt, the env.

/var/task is the function's own build folder; /opt is its layers' contents copied in order (the
Globals' layers first, then the function's own; a later layer overwrites an earlier one's files),
hard-linked where the file system allows. The environment is template.yaml's (Globals merged with
the function's) with every Ref/Sub/GetAtt replaced by a harmless placeholder, plus what the Lambda
runtime itself sets.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.cfn import load_yaml, merge_globals

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
PSEUDO |= {"AWS::StackName": "invoice-service", "AWS::URLSuffix": "amazonaws.com"}


@dataclass
class FunctionSpec:
    name: str
    module: str
    handler: str
    code_dir: Path
    layers: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    memory: int = 128


class Placeholders:
    """Resolves intrinsics to strings without AWS: parameters take their defaults, resources a
    `placeholder-<LogicalId>`, conditions are evaluated on the defaults."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.params = {k: v.get("Default", "") for k, v in (template.get("Parameters") or {}).items()}
        self.conditions = template.get("Conditions") or {}

    def ref(self, name: str) -> str:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            return self.scalar(self.params[name])
        return f"placeholder-{name.split('.', 1)[0]}"

    @staticmethod
    def scalar(value: Any) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    def condition(self, node: Any) -> bool:
        if isinstance(node, str):
            return self.condition(self.conditions[node])
        (key, arg), *_ = node.items()
        if key == "Fn::Equals":
            return self.value(arg[0]) == self.value(arg[1])
        if key == "Fn::Not":
            return not self.condition(arg[0])
        if key == "Fn::And":
            return all(self.condition(a) for a in arg)
        if key == "Fn::Or":
            return any(self.condition(a) for a in arg)
        if key == "Condition":
            return self.condition(arg)
        raise ValueError(f"unsupported condition {key}")

    def value(self, node: Any) -> str:
        if not isinstance(node, dict):
            return self.scalar(node)
        if "Ref" in node:
            return self.ref(node["Ref"])
        if "Fn::If" in node:
            name, when_true, when_false = node["Fn::If"]
            return self.value(when_true if self.condition(name) else when_false)
        if "Fn::Sub" in node:
            arg = node["Fn::Sub"]
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1] if len(arg) > 1 else {})

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name.startswith("!"):
                    return "${" + name[1:] + "}"
                return self.value(variables[name]) if name in variables else self.ref(name)

            return re.sub(r"\$\{([^}]*)\}", substitute, text)
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            return self.ref(target if isinstance(target, str) else target[0])
        return "placeholder"


def function_specs(template_path: Path, build_dir: Path) -> list[FunctionSpec]:
    template = load_yaml(template_path)
    defaults = (template.get("Globals") or {}).get("Function") or {}
    placeholders = Placeholders(template)
    specs = []
    for name, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != SERVERLESS_FUNCTION:
            continue
        props = merge_globals(defaults, resource.get("Properties") or {})
        module, _, handler = str(props["Handler"]).rpartition(".")
        variables = (props.get("Environment") or {}).get("Variables") or {}
        layers = [layer["Ref"] for layer in props.get("Layers") or [] if isinstance(layer, dict) and "Ref" in layer]
        env = {key: placeholders.value(value) for key, value in variables.items()}
        specs.append(
            FunctionSpec(name, module, handler, build_dir / name, layers, env, int(props.get("MemorySize", 128)))
        )
    return specs


def link_tree(source: Path, target: Path, *, with_pyc: bool) -> None:
    """Copy `source` into `target` (hard links where possible); files already there are replaced."""
    for root, dirs, files in os.walk(source):
        if not with_pyc:
            dirs[:] = [d for d in dirs if d != "__pycache__"]
        into = target / Path(root).relative_to(source)
        into.mkdir(parents=True, exist_ok=True)
        for name in files:
            if not with_pyc and name.endswith(".pyc"):
                continue
            src, dst = Path(root) / name, into / name
            if dst.exists() or dst.is_symlink():
                dst.unlink()
            try:
                os.link(src, dst, follow_symlinks=False)
            except OSError:
                shutil.copy2(src, dst, follow_symlinks=False)


@dataclass
class Layout:
    root: Path
    task: Path
    opt: Path
    tmp: Path


def build_layout(spec: FunctionSpec, build_dir: Path, root: Path, *, with_pyc: bool) -> Layout:
    if root.exists():
        shutil.rmtree(root)
    layout = Layout(root, root / "task", root / "opt", root / "tmp")
    link_tree(spec.code_dir, layout.task, with_pyc=with_pyc)
    layout.opt.mkdir(parents=True)
    for layer in spec.layers:
        link_tree(build_dir / layer, layout.opt, with_pyc=with_pyc)
    layout.tmp.mkdir()
    return layout


def lambda_environment(spec: FunctionSpec, layout: Layout, runtime_dir: Path) -> dict[str, str]:
    """What the python3.12 runtime sets, then the function's own variables; no real credentials, and
    any AWS call goes to a closed local port instead of AWS."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "TMPDIR": str(layout.tmp),
        "LAMBDA_TASK_ROOT": str(layout.task),
        "LAMBDA_RUNTIME_DIR": str(runtime_dir),
        "LD_LIBRARY_PATH": f"{layout.task}/lib:{layout.opt}/lib",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIADEPLOYCHECK00000",
        "AWS_SECRET_ACCESS_KEY": "deploy-check-not-a-secret",
        "AWS_SESSION_TOKEN": "deploy-check",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": f"invoice-service-{spec.name}",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/invoice-service-{spec.name}",
        "_HANDLER": f"{spec.module}.{spec.handler}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "CHROMIUM_BUNDLE_DIR": str(layout.opt / "chromium"),
        # the ChromiumLayer's fonts, where Lambda has them at /opt/fonts
        "INVOICE_FONTS_DIR": str(layout.opt / "fonts"),
    }
    env.update(spec.environment)
    return env


def tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += (Path(root) / name).lstat().st_size
    return total


def missing_pyc(path: Path) -> tuple[int, int]:
    """(.py files, of which without a cpython-312 .pyc beside them in __pycache__)."""
    sources = missing = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            if name.endswith(".py"):
                sources += 1
                if not (Path(root) / "__pycache__" / f"{name[:-3]}.cpython-312.pyc").is_file():
                    missing += 1
    return sources, missing
