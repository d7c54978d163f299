"""CloudFormation / SAM template reading: YAML short tags, parameters, conditions, intrinsics.

The template is the single source of truth: nothing here knows this project's resources. A
:class:`Template` resolves ``Ref``/``Fn::GetAtt``/``Fn::Sub``/... against a registry of local physical
ids (:class:`Registry`) that the runtime fills while it creates resources.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
SERVERLESS_API = "AWS::Serverless::Api"
IMPLICIT_API = "ServerlessRestApi"


class TemplateError(Exception):
    """The template uses something the local runtime cannot resolve."""


class _NoValue:
    """``AWS::NoValue``: removes the enclosing property or list item."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


# ---------------------------------------------------------------------------------------------- YAML


_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster


class CfnLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A safe YAML loader that understands CloudFormation short-form tags (``!Ref``, ``!Sub`` ...)."""


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise TemplateError(f"unsupported YAML node {node!r}")  # pragma: no cover


def _multi_constructor(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    value = _construct_node(loader, node)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        logical_id, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [logical_id, attribute]}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _multi_constructor)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The template as data: a copy of the parse cached by path, inode, modification time and size
    (parsing takes ~30 ms, copying ~3 ms; the tests build every resource of the template ~1,000 times)."""
    stat = os.stat(path)
    return copy.deepcopy(_parsed(str(Path(path).resolve()), stat.st_ino, stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=8)
def _parsed(path: str, _ino: int, _mtime_ns: int, _size: int) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=CfnLoader)
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: not a CloudFormation template")
    return data


# ------------------------------------------------------------------------------------------ registry


def dns_bucket_name(stack_name: str, logical_id: str) -> str:
    """A valid S3 bucket (DNS) name derived from the stack and logical id: stable across restarts."""
    raw = f"{stack_name}-{logical_id}".lower()
    name = re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if len(name) > 63:
        digest = hashlib.sha1(raw.encode()).hexdigest()[:8]
        name = f"{name[:54].rstrip('-')}-{digest}"
    if len(name) < 3:
        name = f"{name}-bucket"
    return name


def local_api_id(logical_id: str) -> str:
    """A stable 10-character id in API Gateway's alphabet, like ``a1b2c3d4e5``."""
    return hashlib.sha1(logical_id.encode()).hexdigest()[:10]


class Registry:
    """Ref and GetAtt values of every resource: predicted from names, then filled by creation."""

    def __init__(self) -> None:
        self.refs: dict[str, Any] = {}
        self.attrs: dict[str, dict[str, Any]] = {}

    def set(self, logical_id: str, ref: Any, **attrs: Any) -> None:
        self.refs[logical_id] = ref
        self.attrs.setdefault(logical_id, {}).update(attrs)


# ---------------------------------------------------------------------------------------- template

_SUB_VAR = re.compile(r"\$\{([^}]*)\}")
_INTRINSIC_KEYS = frozenset(
    {
        "Ref",
        "Condition",
        "Fn::GetAtt",
        "Fn::Sub",
        "Fn::If",
        "Fn::Not",
        "Fn::Equals",
        "Fn::And",
        "Fn::Or",
        "Fn::Join",
        "Fn::Select",
        "Fn::Split",
        "Fn::FindInMap",
        "Fn::Base64",
        "Fn::GetAZs",
        "Fn::ImportValue",
        "Fn::ToJsonString",
        "Fn::Length",
        "Fn::Cidr",
        "Fn::Transform",
    }
)


def is_intrinsic(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _INTRINSIC_KEYS


def _cfn_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Template:
    """A parsed SAM/CloudFormation template with local values for parameters and pseudo parameters."""

    def __init__(
        self,
        path: str | Path,
        *,
        parameter_overrides: dict[str, str] | None = None,
        stack_name: str = "local",
        region: str = REGION,
        account_id: str = ACCOUNT_ID,
        stage: str | None = "local",
    ) -> None:
        self.path = Path(path).resolve()
        self.dir = self.path.parent
        self.raw = load_yaml(self.path)
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self.registry = Registry()
        self.mappings: dict[str, Any] = self.raw.get("Mappings") or {}
        self._condition_defs: dict[str, Any] = self.raw.get("Conditions") or {}
        self._condition_values: dict[str, bool] = {}
        self._resolving_conditions: set[str] = set()
        self.parameters = self._parameter_values(parameter_overrides or {}, stage)
        self.globals: dict[str, Any] = self.raw.get("Globals") or {}
        all_resources: dict[str, Any] = self.raw.get("Resources") or {}
        self.resources: dict[str, dict[str, Any]] = {}
        for logical_id, resource in all_resources.items():
            if not isinstance(resource, dict) or "Type" not in resource:
                raise TemplateError(f"resource {logical_id} has no Type")
            condition = resource.get("Condition")
            if condition is not None and not self.condition(condition):
                continue
            self.resources[logical_id] = resource
        self._predict_physical_ids()

    # ---------------------------------------------------------------- parameters and conditions
    def _parameter_values(self, overrides: dict[str, str], stage: str | None) -> dict[str, Any]:
        declared: dict[str, Any] = self.raw.get("Parameters") or {}
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            spec = spec or {}
            if name in overrides:
                value: Any = overrides[name]
            elif name == "Stage" and stage is not None:
                value = stage
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no Default: pass --parameter {name}=VALUE")
            ptype = str(spec.get("Type", "String"))
            if ptype == "CommaDelimitedList" or ptype.startswith("List<"):
                value = value if isinstance(value, list) else [v.strip() for v in _cfn_str(value).split(",")]
            else:
                value = _cfn_str(value)
                if not (name == "Stage" and name not in overrides):  # the runtime's own stage (tests: "test")
                    _check_parameter(name, spec, ptype, value)
            values[name] = value
        unknown = set(overrides) - set(declared)
        if unknown:
            raise TemplateError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        return values

    def condition(self, name: str) -> bool:
        if name in self._condition_values:
            return self._condition_values[name]
        if name not in self._condition_defs:
            raise TemplateError(f"unknown condition {name}")
        if name in self._resolving_conditions:
            raise TemplateError(f"condition {name} refers to itself")
        self._resolving_conditions.add(name)
        try:
            value = self.resolve(self._condition_defs[name])
        finally:
            self._resolving_conditions.discard(name)
        if not isinstance(value, bool):
            raise TemplateError(f"condition {name} is not a boolean: {value!r}")
        self._condition_values[name] = value
        return value

    # ---------------------------------------------------------------- physical ids
    def pseudo(self, name: str) -> Any:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:{PARTITION}:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local"
            ),
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }[name]

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{PARTITION}:{service}:{self.region if region else ''}:{self.account_id if account else ''}:{resource}"
        )

    def default_name(self, logical_id: str, max_len: int = 64) -> str:
        name = f"{self.stack_name}-{logical_id}"
        return name[:max_len]

    def _static_prop(self, resource: dict[str, Any], key: str) -> Any:
        """A property resolved early (names): only parameters and pseudo parameters may be used."""
        value = (resource.get("Properties") or {}).get(key)
        if value is None:
            return None
        resolved = self.resolve(value)
        return None if resolved is NO_VALUE else resolved

    def _predict_physical_ids(self) -> None:
        reg = self.registry
        for logical_id, resource in self.resources.items():
            rtype = resource["Type"]
            if rtype == "AWS::DynamoDB::Table":
                name = self._static_prop(resource, "TableName") or self.default_name(logical_id, 255)
                arn = self.arn("dynamodb", f"table/{name}")
                reg.set(logical_id, name, Arn=arn, StreamArn=f"{arn}/stream/local")
            elif rtype == "AWS::S3::Bucket":
                name = self._static_prop(resource, "BucketName") or dns_bucket_name(self.stack_name, logical_id)
                reg.set(
                    logical_id,
                    name,
                    Arn=self.arn("s3", name, region=False, account=False),
                    DomainName=f"{name}.s3.amazonaws.com",
                    RegionalDomainName=f"{name}.s3.{self.region}.amazonaws.com",
                    WebsiteURL=f"http://{name}.s3-website-{self.region}.amazonaws.com",
                )
            elif rtype == "AWS::SQS::Queue":
                name = self._static_prop(resource, "QueueName") or self.default_name(logical_id, 75)
                fifo = str(self._static_prop(resource, "FifoQueue")).lower() == "true"
                if fifo and not name.endswith(".fifo"):
                    name += ".fifo"
                url = f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{name}"
                reg.set(logical_id, url, Arn=self.arn("sqs", name), QueueName=name, QueueUrl=url)
            elif rtype == "AWS::SNS::Topic":
                name = self._static_prop(resource, "TopicName") or self.default_name(logical_id, 256)
                arn = self.arn("sns", name)
                reg.set(logical_id, arn, TopicArn=arn, TopicName=name)
            elif rtype in (SERVERLESS_FUNCTION, "AWS::Lambda::Function"):
                name = self._static_prop(resource, "FunctionName") or self.default_name(logical_id)
                reg.set(logical_id, name, Arn=self.arn("lambda", f"function:{name}"))
            elif rtype in (SERVERLESS_API, "AWS::ApiGateway::RestApi", "AWS::Serverless::HttpApi"):
                api_id = local_api_id(logical_id)
                reg.set(logical_id, api_id, RootResourceId=api_id[:6], ApiEndpoint=f"http://{api_id}.local")
            elif rtype in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
                reg.set(logical_id, self.arn("lambda", f"layer:{logical_id}:1"))
            elif rtype == "AWS::SSM::Parameter":
                name = self._static_prop(resource, "Name") or self.default_name(logical_id, 1011)
                reg.set(logical_id, name, Type=str(self._static_prop(resource, "Type") or "String"))
            elif rtype == "AWS::IAM::Role":
                reg.set(logical_id, logical_id, Arn=self.arn("iam", f"role/{logical_id}", region=False))
            else:
                reg.set(logical_id, self.default_name(logical_id), Arn=self.arn("local", logical_id))
        if any(
            ev.get("Type") == "Api" and "RestApiId" not in (ev.get("Properties") or {})
            for res in self.resources.values()
            if res["Type"] == SERVERLESS_FUNCTION
            for ev in ((res.get("Properties") or {}).get("Events") or {}).values()
            if isinstance(ev, dict)
        ):
            api_id = local_api_id(IMPLICIT_API)
            reg.set(IMPLICIT_API, api_id, RootResourceId=api_id[:6])

    # ---------------------------------------------------------------- intrinsic resolution
    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name.startswith("AWS::"):
            try:
                return self.pseudo(name)
            except KeyError as exc:
                raise TemplateError(f"unknown pseudo parameter {name}") from exc
        if name in self.registry.refs:
            return self.registry.refs[name]
        if "." in name:  # SAM: !Ref MyApi.Stage, !Ref MyFunction.Alias
            base, _, attr = name.partition(".")
            if base in self.registry.refs and attr == "Stage":
                return self.parameters.get("Stage", "local")
        raise TemplateError(f"Ref to unknown parameter or resource {name}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.registry.refs:
            raise TemplateError(f"GetAtt of unknown resource {logical_id}")
        attrs = self.registry.attrs.get(logical_id, {})
        if attribute in attrs:
            return attrs[attribute]
        # attributes nobody locally cares about get a recognisable placeholder
        return f"{self.registry.refs[logical_id]}.{attribute}"

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic in ``value``; ``AWS::NoValue`` entries are dropped."""
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, arg),) = value.items()
                handler = self._FUNCTIONS.get(key)
                if handler is not None:
                    return handler(self, arg)
            out: dict[str, Any] = {}
            for key, item in value.items():
                resolved = self.resolve(item)
                if resolved is not NO_VALUE:
                    out[key] = resolved
            return out
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        return value

    def _fn_ref(self, arg: Any) -> Any:
        return self.ref(self._as_str(arg, "Ref"))

    def _fn_condition(self, arg: Any) -> Any:
        return self.condition(self._as_str(arg, "Condition"))

    def _fn_get_att(self, arg: Any) -> Any:
        arg = self.resolve(arg)
        if isinstance(arg, str):
            logical_id, _, attribute = arg.partition(".")
        elif isinstance(arg, list) and len(arg) == 2:
            logical_id, attribute = arg
        else:
            raise TemplateError(f"bad Fn::GetAtt {arg!r}")
        return self.get_att(logical_id, attribute)

    def _fn_sub(self, arg: Any) -> Any:
        variables: dict[str, Any] = {}
        if isinstance(arg, list):
            if len(arg) != 2 or not isinstance(arg[1], dict):
                raise TemplateError(f"bad Fn::Sub {arg!r}")
            text = arg[0]
            variables = {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text = arg
        text = self.resolve(text)
        if not isinstance(text, str):
            raise TemplateError(f"Fn::Sub needs a string, got {text!r}")

        def substitute(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            expr = expr.strip()
            if expr in variables:
                return _cfn_str(variables[expr])
            if expr in self.parameters or expr.startswith("AWS::") or expr in self.registry.refs:
                return _cfn_str(self.ref(expr))
            if "." in expr:
                logical_id, _, attribute = expr.partition(".")
                return _cfn_str(self.get_att(logical_id, attribute))
            raise TemplateError(f"Fn::Sub: unknown variable ${{{expr}}}")

        return _SUB_VAR.sub(substitute, text)

    def _fn_if(self, arg: Any) -> Any:
        if not isinstance(arg, list) or len(arg) != 3:
            raise TemplateError(f"bad Fn::If {arg!r}")
        name = self._as_str(arg[0], "Fn::If")
        return self.resolve(arg[1] if self.condition(name) else arg[2])

    def _fn_not(self, arg: Any) -> Any:
        items = self.resolve(arg)
        if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], bool):
            raise TemplateError(f"bad Fn::Not {arg!r}")
        return not items[0]

    def _fn_equals(self, arg: Any) -> Any:
        items = self.resolve(arg)
        if not isinstance(items, list) or len(items) != 2:
            raise TemplateError(f"bad Fn::Equals {arg!r}")
        left, right = items
        if isinstance(left, (list, dict)) or isinstance(right, (list, dict)):
            return left == right
        return _cfn_str(left) == _cfn_str(right)

    def _fn_and(self, arg: Any) -> Any:
        items = self.resolve(arg)
        if not isinstance(items, list) or not all(isinstance(i, bool) for i in items):
            raise TemplateError(f"bad Fn::And {arg!r}")
        return all(items)

    def _fn_or(self, arg: Any) -> Any:
        items = self.resolve(arg)
        if not isinstance(items, list) or not all(isinstance(i, bool) for i in items):
            raise TemplateError(f"bad Fn::Or {arg!r}")
        return any(items)

    def _fn_join(self, arg: Any) -> Any:
        resolved = self.resolve(arg)
        if not isinstance(resolved, list) or len(resolved) != 2 or not isinstance(resolved[1], list):
            raise TemplateError(f"bad Fn::Join {arg!r}")
        delimiter, items = resolved
        return _cfn_str(delimiter).join(_cfn_str(item) for item in items)

    def _fn_select(self, arg: Any) -> Any:
        resolved = self.resolve(arg)
        if not isinstance(resolved, list) or len(resolved) != 2 or not isinstance(resolved[1], list):
            raise TemplateError(f"bad Fn::Select {arg!r}")
        index, items = resolved
        try:
            return items[int(index)]
        except (ValueError, IndexError) as exc:
            raise TemplateError(f"Fn::Select index {index!r} out of range") from exc

    def _fn_split(self, arg: Any) -> Any:
        resolved = self.resolve(arg)
        if not isinstance(resolved, list) or len(resolved) != 2:
            raise TemplateError(f"bad Fn::Split {arg!r}")
        return _cfn_str(resolved[1]).split(_cfn_str(resolved[0]))

    def _fn_find_in_map(self, arg: Any) -> Any:
        resolved = self.resolve(arg)
        if not isinstance(resolved, list) or len(resolved) < 3:
            raise TemplateError(f"bad Fn::FindInMap {arg!r}")
        name, top, second = (_cfn_str(x) for x in resolved[:3])
        try:
            return self.mappings[name][top][second]
        except KeyError:
            if len(resolved) == 4 and isinstance(resolved[3], dict) and "DefaultValue" in resolved[3]:
                return resolved[3]["DefaultValue"]
            raise TemplateError(f"Fn::FindInMap: no {name}/{top}/{second}") from None

    def _fn_base64(self, arg: Any) -> Any:
        return base64.b64encode(_cfn_str(self.resolve(arg)).encode()).decode()

    def _fn_get_azs(self, arg: Any) -> Any:
        region = _cfn_str(self.resolve(arg)) or self.region
        return [f"{region}{suffix}" for suffix in "abc"]

    def _fn_to_json_string(self, arg: Any) -> Any:
        return json.dumps(self.resolve(arg), separators=(",", ":"))

    def _fn_length(self, arg: Any) -> Any:
        resolved = self.resolve(arg)
        if not isinstance(resolved, list):
            raise TemplateError(f"bad Fn::Length {arg!r}")
        return len(resolved)

    def _fn_unsupported(self, arg: Any) -> Any:
        raise TemplateError(f"intrinsic not supported locally: {arg!r}")

    @staticmethod
    def _as_str(arg: Any, what: str) -> str:
        if not isinstance(arg, str):
            raise TemplateError(f"{what} needs a name, got {arg!r}")
        return arg

    _FUNCTIONS: dict[str, Callable[[Template, Any], Any]] = {
        "Ref": _fn_ref,
        "Condition": _fn_condition,
        "Fn::GetAtt": _fn_get_att,
        "Fn::Sub": _fn_sub,
        "Fn::If": _fn_if,
        "Fn::Not": _fn_not,
        "Fn::Equals": _fn_equals,
        "Fn::And": _fn_and,
        "Fn::Or": _fn_or,
        "Fn::Join": _fn_join,
        "Fn::Select": _fn_select,
        "Fn::Split": _fn_split,
        "Fn::FindInMap": _fn_find_in_map,
        "Fn::Base64": _fn_base64,
        "Fn::GetAZs": _fn_get_azs,
        "Fn::ToJsonString": _fn_to_json_string,
        "Fn::Length": _fn_length,
        "Fn::ImportValue": _fn_unsupported,
        "Fn::Cidr": _fn_unsupported,
        "Fn::Transform": _fn_unsupported,
    }

    # ---------------------------------------------------------------- SAM globals
    def properties(self, logical_id: str) -> dict[str, Any]:
        """The resource's Properties with SAM Globals merged in (unresolved)."""
        resource = self.resources[logical_id]
        props = copy.deepcopy(resource.get("Properties") or {})
        section = {
            SERVERLESS_FUNCTION: "Function",
            SERVERLESS_API: "Api",
            "AWS::Serverless::HttpApi": "HttpApi",
            "AWS::Serverless::SimpleTable": "SimpleTable",
            "AWS::Serverless::StateMachine": "StateMachine",
        }.get(resource["Type"])
        if section and isinstance(self.globals.get(section), dict):
            props = merge_globals(copy.deepcopy(self.globals[section]), props)
        return props

    def resolved_properties(self, logical_id: str) -> dict[str, Any]:
        resolved = self.resolve(self.properties(logical_id))
        return resolved if isinstance(resolved, dict) else {}

    def of_type(self, *types: str) -> list[str]:
        return [lid for lid, res in self.resources.items() if res["Type"] in types]

    def references(self, value: Any) -> set[str]:
        """Logical ids of resources that ``value`` refers to (Ref, GetAtt, Sub variables)."""
        found: set[str] = set()

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if len(node) == 1:
                    ((key, arg),) = node.items()
                    if key == "Ref" and isinstance(arg, str):
                        found.add(arg.partition(".")[0])
                    elif key == "Fn::GetAtt":
                        name = arg.partition(".")[0] if isinstance(arg, str) else arg[0]
                        if isinstance(name, str):
                            found.add(name)
                    elif key == "Fn::Sub":
                        text = arg[0] if isinstance(arg, list) else arg
                        if isinstance(text, str):
                            for expr in _SUB_VAR.findall(text):
                                if not expr.startswith("!"):
                                    found.add(expr.strip().partition(".")[0])
                for item in node.values():
                    walk(item)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(value)
        return {name for name in found if name in self.resources}

    def creation_order(self, logical_ids: Iterable[str]) -> list[str]:
        """Topological order of ``logical_ids`` by their mutual references (DLQ before its queue)."""
        wanted = list(logical_ids)
        deps = {lid: self.references(self.resources[lid].get("Properties") or {}) & set(wanted) for lid in wanted}
        order: list[str] = []
        visiting: set[str] = set()

        def visit(lid: str) -> None:
            if lid in order:
                return
            if lid in visiting:
                raise TemplateError(f"circular reference through {lid}")
            visiting.add(lid)
            for dep in sorted(deps[lid]):
                visit(dep)
            visiting.discard(lid)
            order.append(lid)

        for lid in wanted:
            visit(lid)
        return order


def merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals rules: maps merge (resource wins), lists are global + resource, scalars override."""
    if is_intrinsic(global_value) or is_intrinsic(local_value):
        return local_value
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = merge_globals(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return global_value + local_value
    return local_value


def _check_parameter(name: str, spec: dict[str, Any], ptype: str, value: str) -> None:
    """The constraints CloudFormation checks before it creates anything, so a value `sam deploy`
    would refuse fails here too instead of reaching the functions."""
    problem = ""
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [_cfn_str(v) for v in allowed]:
        problem = f"must be one of {', '.join(_cfn_str(v) for v in allowed)}"
    elif ptype == "Number":
        try:
            number = float(value)
        except ValueError:
            problem = "must be a number"
        else:
            if "MinValue" in spec and number < float(spec["MinValue"]):
                problem = f"must be >= {spec['MinValue']}"
            elif "MaxValue" in spec and number > float(spec["MaxValue"]):
                problem = f"must be <= {spec['MaxValue']}"
    elif "AllowedPattern" in spec and not re.fullmatch(str(spec["AllowedPattern"]), value):
        problem = f"must match {spec['AllowedPattern']}"
    elif "MinLength" in spec and len(value) < int(spec["MinLength"]):
        problem = f"must be at least {spec['MinLength']} characters"
    elif "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        problem = f"must be at most {spec['MaxLength']} characters"
    if problem:
        raise TemplateError(f"parameter {name}={value!r} {problem}")
