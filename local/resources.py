"""Create the template's data resources in the embedded AWS, and optionally dump/restore their data.

Supported: ``AWS::DynamoDB::Table`` (keys, GSIs, LSIs, TTL, streams), ``AWS::S3::Bucket``,
``AWS::SQS::Queue`` (redrive policy, visibility timeout, FIFO ...), ``AWS::SNS::Topic``,
``AWS::Cognito::UserPool`` with its ``UserPoolClient`` and ``UserPoolGroup`` (moto's cognito-idp,
which serves each pool's JWKS), ``AWS::SecretsManager::Secret`` (a ``GenerateSecretString`` is
generated here), ``AWS::KMS::Key`` (symmetric; its Ref is the key id, as in CloudFormation), ``AWS::Events::EventBus``,
and ``AWS::SSM::Parameter`` once the local API's URL is known (``create_parameters``). Everything else
(IAM, log groups, alarms, bucket policies ...) has no local effect.

Tables are created wherever ``aws.client("dynamodb")`` points: DynamoDB Local or moto. When DynamoDB
Local keeps its own database file (``--persist DIR``: ``DIR/dynamodb``), its tables and items outlive
the runtime, so ``tables_in_engine`` makes dump/restore leave tables alone, and a table that already
exists is kept as long as its keys and indexes are still the template's.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import shutil
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .aws import EmbeddedAWS
from .cfn import Template, TemplateError

log = logging.getLogger("local")

#: the folder of a persist directory that holds DynamoDB Local's database (-dbPath)
ENGINE_DIR = "dynamodb"

CREATABLE = (
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::UserPoolGroup",
    "AWS::SecretsManager::Secret",
    "AWS::KMS::Key",
    "AWS::Events::EventBus",
)
#: the user pool properties that moto's CreateUserPool takes as they are
_USER_POOL_PARAMS = (
    "UsernameAttributes",
    "AliasAttributes",
    "AutoVerifiedAttributes",
    "AdminCreateUserConfig",
    "MfaConfiguration",
    "Policies",
    "AccountRecoverySetting",
    "Schema",
)
_USER_POOL_CLIENT_PARAMS = (
    "ExplicitAuthFlows",
    "GenerateSecret",
    "PreventUserExistenceErrors",
    "EnableTokenRevocation",
    "IdTokenValidity",
    "AccessTokenValidity",
    "RefreshTokenValidity",
    "TokenValidityUnits",
)

_SQS_ATTRIBUTES = {
    "DelaySeconds": "DelaySeconds",
    "MaximumMessageSize": "MaximumMessageSize",
    "MessageRetentionPeriod": "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout": "VisibilityTimeout",
    "FifoQueue": "FifoQueue",
    "ContentBasedDeduplication": "ContentBasedDeduplication",
    "DeduplicationScope": "DeduplicationScope",
    "FifoThroughputLimit": "FifoThroughputLimit",
}


def _str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def dynamodb_create_params(props: dict[str, Any], name: str) -> dict[str, Any]:
    """CloudFormation table properties -> CreateTable parameters (properties moto rejects dropped)."""
    params: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
    }
    billing = props.get("BillingMode", "PROVISIONED")
    params["BillingMode"] = billing
    if billing == "PROVISIONED":
        params["ProvisionedThroughput"] = {
            k: int(v)
            for k, v in (
                props.get("ProvisionedThroughput") or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            ).items()
        }

    def index(spec: dict[str, Any], with_throughput: bool) -> dict[str, Any]:
        out = {k: spec[k] for k in ("IndexName", "KeySchema", "Projection") if k in spec}
        if with_throughput and billing == "PROVISIONED":
            throughput = spec.get("ProvisionedThroughput") or params["ProvisionedThroughput"]
            out["ProvisionedThroughput"] = {k: int(v) for k, v in throughput.items()}
        return out

    if props.get("GlobalSecondaryIndexes"):
        params["GlobalSecondaryIndexes"] = [index(g, True) for g in props["GlobalSecondaryIndexes"]]
    if props.get("LocalSecondaryIndexes"):
        params["LocalSecondaryIndexes"] = [index(g, False) for g in props["LocalSecondaryIndexes"]]
    stream = props.get("StreamSpecification")
    if stream and stream.get("StreamViewType"):
        params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    return params


class ResourceManager:
    """Creates every supported resource of a template and records its physical ids in the registry."""

    def __init__(self, template: Template, aws: EmbeddedAWS, *, tables_in_engine: bool = False) -> None:
        self.template = template
        self.aws = aws
        #: the DynamoDB engine persists tables itself (DynamoDB Local's -dbPath): no dump/restore of items
        self.tables_in_engine = tables_in_engine
        self.created: dict[str, dict[str, Any]] = {}

    def create_all(self, types: tuple[str, ...] = CREATABLE) -> None:
        """Every resource of ``types`` (default: all that can be made locally), in dependency order."""
        ids = self.template.of_type(*types)
        for logical_id in self.template.creation_order(ids):
            rtype = self.template.resources[logical_id]["Type"]
            props = self.template.resolved_properties(logical_id)
            try:
                if rtype == "AWS::DynamoDB::Table":
                    self._table(logical_id, props)
                elif rtype == "AWS::S3::Bucket":
                    self._bucket(logical_id, props)
                elif rtype == "AWS::SQS::Queue":
                    self._queue(logical_id, props)
                elif rtype == "AWS::SNS::Topic":
                    self._topic(logical_id, props)
                elif rtype == "AWS::Cognito::UserPool":
                    self._user_pool(logical_id, props)
                elif rtype == "AWS::Cognito::UserPoolClient":
                    self._user_pool_client(logical_id, props)
                elif rtype == "AWS::Cognito::UserPoolGroup":
                    self._user_pool_group(logical_id, props)
                elif rtype == "AWS::SecretsManager::Secret":
                    self._secret(logical_id, props)
                elif rtype == "AWS::KMS::Key":
                    self._kms_key(logical_id, props)
                elif rtype == "AWS::Events::EventBus":
                    self._event_bus(logical_id, props)
            except TemplateError:
                raise
            except Exception as exc:
                raise TemplateError(f"could not create {rtype} {logical_id} locally: {exc}") from exc

    # ---------------------------------------------------------------- creators
    def _table(self, logical_id: str, props: dict[str, Any]) -> None:
        ddb = self.aws.client("dynamodb")
        name = self.template.registry.refs[logical_id]
        params = dynamodb_create_params(props, name)
        table = self._existing_table(name, params)
        if table is None:
            table = ddb.create_table(**params)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and _str(ttl.get("Enabled")).lower() == "true":
            current = ddb.describe_time_to_live(TableName=name).get("TimeToLiveDescription") or {}
            if current.get("TimeToLiveStatus") != "ENABLED" or current.get("AttributeName") != ttl["AttributeName"]:
                ddb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
                )
        attrs = {"Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            attrs["StreamArn"] = table["LatestStreamArn"]
        self.template.registry.set(logical_id, name, **attrs)
        self.created[logical_id] = {"type": "table", "name": name, **attrs}

    def _existing_table(self, name: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """A table kept by a persistent engine: reused when its keys and indexes are the template's,
        else dropped (with a warning) so that it is created anew."""
        if not self.tables_in_engine:
            return None
        ddb = self.aws.client("dynamodb")
        try:
            table: dict[str, Any] = ddb.describe_table(TableName=name)["Table"]
        except ddb.exceptions.ResourceNotFoundException:
            return None
        if _table_shape(table) == _table_shape(params):
            return table
        log.warning("persist: the keys or indexes of table %s changed in the template: it starts empty", name)
        ddb.delete_table(TableName=name)
        return None

    def _bucket(self, logical_id: str, props: dict[str, Any]) -> None:
        s3 = self.aws.client("s3")
        name = self.template.registry.refs[logical_id]
        kwargs: dict[str, Any] = {"Bucket": name}
        if self.aws.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.aws.region}
        s3.create_bucket(**kwargs)
        versioning = (props.get("VersioningConfiguration") or {}).get("Status")
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
        cors = (props.get("CorsConfiguration") or {}).get("CorsRules")
        if cors:
            rules = []
            for rule in cors:
                converted = {k: v for k, v in rule.items() if k not in ("Id", "MaxAge")}
                if "MaxAge" in rule:
                    converted["MaxAgeSeconds"] = int(rule["MaxAge"])
                rules.append(converted)
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
        self.created[logical_id] = {"type": "bucket", "name": name}

    def _queue(self, logical_id: str, props: dict[str, Any]) -> None:
        sqs = self.aws.client("sqs")
        name = self.template.registry.attrs[logical_id]["QueueName"]
        attributes = {key: _str(props[cfn]) for cfn, key in _SQS_ATTRIBUTES.items() if cfn in props}
        redrive = props.get("RedrivePolicy")
        if redrive:
            if isinstance(redrive, str):
                redrive = json.loads(redrive)
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": redrive["deadLetterTargetArn"],
                    "maxReceiveCount": int(redrive["maxReceiveCount"]),
                }
            )
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        # a queue URL is .../{account}/{name}: its ARN follows without a GetQueueAttributes call (one
        # of the two SQS calls per queue, 11 queues in each of the tests' ~1,000 moto set-ups)
        account = url.rstrip("/").split("/")[-2]
        arn = f"arn:aws:sqs:{sqs.meta.region_name}:{account}:{name}"
        self.template.registry.set(logical_id, url, Arn=arn, QueueName=name, QueueUrl=url)
        self.created[logical_id] = {"type": "queue", "name": name, "url": url, "arn": arn}

    def _topic(self, logical_id: str, props: dict[str, Any]) -> None:
        sns = self.aws.client("sns")
        name = self.template.registry.attrs[logical_id]["TopicName"]
        attributes = {}
        if _str(props.get("FifoTopic", "false")).lower() == "true":
            attributes["FifoTopic"] = "true"
        arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
        self.template.registry.set(logical_id, arn, TopicArn=arn, TopicName=name)
        self.created[logical_id] = {"type": "topic", "name": name, "arn": arn}

    def _user_pool(self, logical_id: str, props: dict[str, Any]) -> None:
        idp = self.aws.client("cognito-idp")
        name = str(props.get("UserPoolName") or self.template.default_name(logical_id, 128))
        params: dict[str, Any] = {k: props[k] for k in _USER_POOL_PARAMS if k in props}
        if "EnabledMfas" in props:  # moto has no EnabledMfas: TOTP is what it offers
            params.setdefault("MfaConfiguration", "OFF")
        pool = idp.create_user_pool(PoolName=name, **params)["UserPool"]
        pool_id, arn = pool["Id"], pool["Arn"]
        provider = f"cognito-idp.{self.aws.region}.amazonaws.com/{pool_id}"
        self.template.registry.set(
            logical_id, pool_id, Arn=arn, ProviderName=provider, ProviderURL=f"https://{provider}", UserPoolId=pool_id
        )
        self.created[logical_id] = {"type": "user_pool", "name": name, "id": pool_id, "arn": arn}

    def _user_pool_client(self, logical_id: str, props: dict[str, Any]) -> None:
        idp = self.aws.client("cognito-idp")
        params: dict[str, Any] = {k: props[k] for k in _USER_POOL_CLIENT_PARAMS if k in props}
        for key in ("IdTokenValidity", "AccessTokenValidity", "RefreshTokenValidity"):
            if key in params:
                params[key] = int(params[key])
        client = idp.create_user_pool_client(
            UserPoolId=str(props["UserPoolId"]),
            ClientName=str(props.get("ClientName") or logical_id),
            **params,
        )["UserPoolClient"]
        self.template.registry.set(logical_id, client["ClientId"], ClientId=client["ClientId"])
        self.created[logical_id] = {
            "type": "user_pool_client",
            "name": client["ClientName"],
            "id": client["ClientId"],
            "user_pool_id": client["UserPoolId"],
        }

    def _user_pool_group(self, logical_id: str, props: dict[str, Any]) -> None:
        idp = self.aws.client("cognito-idp")
        params = {k: props[k] for k in ("Description",) if k in props}
        if "Precedence" in props:
            params["Precedence"] = int(props["Precedence"])
        name = str(props.get("GroupName") or logical_id)
        idp.create_group(UserPoolId=str(props["UserPoolId"]), GroupName=name, **params)
        self.template.registry.set(logical_id, name)
        self.created[logical_id] = {"type": "user_pool_group", "name": name, "user_pool_id": str(props["UserPoolId"])}

    def _secret(self, logical_id: str, props: dict[str, Any]) -> None:
        sm = self.aws.client("secretsmanager")
        name = str(props.get("Name") or self.template.default_name(logical_id, 256))
        value = props.get("SecretString")
        if value is None:
            spec = props.get("GenerateSecretString") or {}
            length = int(spec.get("PasswordLength", 32))
            alphabet = string.ascii_letters + string.digits
            if _str(spec.get("ExcludePunctuation", "false")).lower() != "true":
                alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
            value = "".join(secrets.choice(alphabet) for _ in range(length))
        arn = sm.create_secret(Name=name, SecretString=str(value))["ARN"]
        self.template.registry.set(logical_id, arn, Id=arn)
        self.created[logical_id] = {"type": "secret", "name": name, "arn": arn}

    def create_users(self, users: list[tuple[str, str]]) -> list[dict[str, str]]:
        """``(email, group)`` users in every user pool of the template, each with a fresh password
        (printed by the dev banner): what a person needs to sign in locally."""
        idp = self.aws.client("cognito-idp")
        made = []
        for info in list(self.created.values()):
            if info["type"] != "user_pool":
                continue
            clients = [
                c["id"]
                for c in self.created.values()
                if c["type"] == "user_pool_client" and c["user_pool_id"] == info["id"]
            ]
            for email, group in users:
                password = "Local-" + secrets.token_urlsafe(12) + "-7q"  # every character class a pool may require
                idp.admin_create_user(
                    UserPoolId=info["id"],
                    Username=email,
                    UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
                    MessageAction="SUPPRESS",
                )
                idp.admin_set_user_password(UserPoolId=info["id"], Username=email, Password=password, Permanent=True)
                if group:
                    idp.admin_add_user_to_group(UserPoolId=info["id"], Username=email, GroupName=group)
                made.append(
                    {
                        "email": email,
                        "group": group,
                        "password": password,
                        "user_pool_id": info["id"],
                        "client_id": clients[0] if clients else "",
                    }
                )
        return made

    def _kms_key(self, logical_id: str, props: dict[str, Any]) -> None:
        # a new key per run: what it sealed in an earlier run (--persist) does not decrypt any more
        meta = self.aws.client("kms").create_key(Description=str(props.get("Description", logical_id)))["KeyMetadata"]
        self.template.registry.set(logical_id, meta["KeyId"], Arn=meta["Arn"], KeyId=meta["KeyId"])
        self.created[logical_id] = {"type": "kms_key", "key_id": meta["KeyId"], "arn": meta["Arn"]}

    def _event_bus(self, logical_id: str, props: dict[str, Any]) -> None:
        name = str(props.get("Name") or self.template.registry.refs[logical_id])
        events = self.aws.client("events")
        try:
            arn = events.describe_event_bus(Name=name)["Arn"]
        except events.exceptions.ResourceNotFoundException:
            arn = events.create_event_bus(Name=name)["EventBusArn"]
        self.template.registry.set(logical_id, name, Arn=arn, Name=name)
        self.created[logical_id] = {"type": "event_bus", "name": name, "arn": arn}

    def create_parameters(self, rewrite: Callable[[str], str] = lambda value: value) -> None:
        """The template's SSM parameters; ``rewrite`` points a value's execute-api URLs at the local API."""
        ssm = self.aws.client("ssm")
        for logical_id in self.template.of_type("AWS::SSM::Parameter"):
            props = self.template.resolved_properties(logical_id)
            name = self.template.registry.refs[logical_id]
            value = rewrite(str(props.get("Value", "")))
            ssm.put_parameter(Name=name, Value=value, Type=str(props.get("Type", "String")), Overwrite=True)
            self.created[logical_id] = {"type": "parameter", "name": name, "value": value}

    # ---------------------------------------------------------------- lookups
    def queue_url_for_arn(self, arn: str) -> str | None:
        for info in self.created.values():
            if info["type"] == "queue" and info["arn"] == arn:
                return str(info["url"])
        return None

    def queue_logical_id_for_arn(self, arn: str) -> str | None:
        for logical_id, info in self.created.items():
            if info["type"] == "queue" and info["arn"] == arn:
                return logical_id
        return None

    # ---------------------------------------------------------------- persistence
    def dump(self, directory: str | Path) -> dict[str, int]:
        """Write every table's items and every bucket's objects (latest versions) under ``directory``."""
        directory = Path(directory)
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        counts: dict[str, int] = {}
        ddb = self.aws.client("dynamodb")
        s3 = self.aws.client("s3")
        for logical_id, info in self.created.items():
            if info["type"] == "table" and not self.tables_in_engine:
                items = []
                for page in ddb.get_paginator("scan").paginate(TableName=info["name"]):
                    items.extend(_encode_item(item) for item in page["Items"])
                (tmp / f"table-{logical_id}.json").write_text(json.dumps(items), encoding="utf-8")
                counts[logical_id] = len(items)
            elif info["type"] == "bucket":
                bucket_dir = tmp / f"bucket-{logical_id}"
                bucket_dir.mkdir()
                index = []
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=info["name"]):
                    for obj in page.get("Contents", []):
                        got = s3.get_object(Bucket=info["name"], Key=obj["Key"])
                        blob = f"{len(index):08d}.bin"
                        (bucket_dir / blob).write_bytes(got["Body"].read())
                        index.append(
                            {
                                "key": obj["Key"],
                                "blob": blob,
                                "content_type": got.get("ContentType"),
                                "metadata": got.get("Metadata") or {},
                            }
                        )
                (bucket_dir / "index.json").write_text(json.dumps(index), encoding="utf-8")
                counts[logical_id] = len(index)
        manifest: dict[str, Any] = {"format": 1, "stack": self.template.stack_name, "counts": counts}
        if self.tables_in_engine:
            manifest["tables"] = f"DynamoDB Local's database in {ENGINE_DIR}/"
        (tmp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        old = directory.with_name(directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if (directory / ENGINE_DIR).exists():
            # DynamoDB Local's own database (stopped before the dump): it moves with the new dump
            os.replace(directory / ENGINE_DIR, tmp / ENGINE_DIR)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
        return counts

    def restore(self, directory: str | Path, *, tables: bool = True) -> dict[str, int]:
        """Load a dump. ``tables=False``: the engine already holds the tables (its own database file)."""
        directory = Path(directory)
        counts: dict[str, int] = {}
        if not (directory / "manifest.json").exists():
            return counts
        ddb = self.aws.client("dynamodb")
        s3 = self.aws.client("s3")
        for logical_id, info in self.created.items():
            if info["type"] == "table" and tables:
                path = directory / f"table-{logical_id}.json"
                if not path.exists():
                    continue
                items = [_decode_item(item) for item in json.loads(path.read_text(encoding="utf-8"))]
                restored = 0
                for item in items:
                    try:
                        ddb.put_item(TableName=info["name"], Item=item)
                        restored += 1
                    except Exception as exc:  # key schema changed since the dump
                        log.warning("persist: skipped an item of %s: %s", logical_id, exc)
                counts[logical_id] = restored
            elif info["type"] == "bucket":
                index_path = directory / f"bucket-{logical_id}" / "index.json"
                if not index_path.exists():
                    continue
                index = json.loads(index_path.read_text(encoding="utf-8"))
                for obj in index:
                    kwargs: dict[str, Any] = {
                        "Bucket": info["name"],
                        "Key": obj["key"],
                        "Body": (index_path.parent / obj["blob"]).read_bytes(),
                        "Metadata": obj.get("metadata") or {},
                    }
                    if obj.get("content_type"):
                        kwargs["ContentType"] = obj["content_type"]
                    s3.put_object(**kwargs)
                counts[logical_id] = len(index)
        return counts


def _table_shape(description: dict[str, Any]) -> tuple[Any, ...]:
    """Keys and index names of a CreateTable request or a DescribeTable answer, comparable."""

    def keys(schema: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
        return tuple((k["AttributeName"], k["KeyType"]) for k in schema)

    def indexes(name: str) -> tuple[Any, ...]:
        return tuple(
            sorted(
                (i["IndexName"], keys(i["KeySchema"]), (i.get("Projection") or {}).get("ProjectionType"))
                for i in description.get(name) or []
            )
        )

    return keys(description["KeySchema"]), indexes("GlobalSecondaryIndexes"), indexes("LocalSecondaryIndexes")


def _encode_value(value: dict[str, Any]) -> dict[str, Any]:
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B64": base64.b64encode(inner).decode()}
    if kind == "BS":
        return {"B64S": [base64.b64encode(v).decode() for v in inner]}
    if kind == "M":
        return {"M": _encode_item(inner)}
    if kind == "L":
        return {"L": [_encode_value(v) for v in inner]}
    return value


def _decode_value(value: dict[str, Any]) -> dict[str, Any]:
    ((kind, inner),) = value.items()
    if kind == "B64":
        return {"B": base64.b64decode(inner)}
    if kind == "B64S":
        return {"BS": [base64.b64decode(v) for v in inner]}
    if kind == "M":
        return {"M": _decode_item(inner)}
    if kind == "L":
        return {"L": [_decode_value(v) for v in inner]}
    return value


def _encode_item(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _encode_value(value) for key, value in item.items()}


def _decode_item(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _decode_value(value) for key, value in item.items()}
