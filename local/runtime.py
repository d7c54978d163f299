"""The local runtime: embedded AWS + resources + functions + API Gateway + SQS pollers + schedules.

Everything is derived from the SAM template; nothing in here names one of this project's resources.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .apigw import ApiConfig, ApiGateway, AuthorizerConfig, Route, Router
from .aws import EmbeddedAWS
from .cfn import IMPLICIT_API, SERVERLESS_API, SERVERLESS_FUNCTION, Template, TemplateError, _cfn_str
from .dynamodb_local import DynamoDBLocal, DynamoDBLocalUnavailable
from .functions import FunctionError, FunctionSpec, LocalFunction
from .outbox import outbox
from .resources import ENGINE_DIR, ResourceManager
from .schedules import ScheduledTarget, ScheduleError, Scheduler, parse_schedule
from .sqs import SqsPoller, SqsSource
from .streams import StreamPoller, StreamSource

log = logging.getLogger("local")

DEFAULT_VISIBILITY_TIMEOUT_CAP = 5
DEFAULT_API_KEY_SCOPES = ["invoices:read", "invoices:write"]


@dataclass
class RuntimeOptions:
    template: Path
    host: str = "127.0.0.1"
    port: int = 3000
    moto_port: int = 0
    moto_host: str = "127.0.0.1"
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    stack_name: str = "local"
    visibility_timeout_cap: int | None = DEFAULT_VISIBILITY_TIMEOUT_CAP
    schedule_speedup: float = 1.0
    run_schedules: bool = True
    poll_queues: bool = True
    serve_http: bool = True
    persist_dir: Path | None = None
    create_api_key: bool = True
    api_key_name: str = "local-dev"
    api_key_scopes: list[str] | None = None
    enforce_timeouts: bool = True
    only_functions: list[str] | None = None  # load just these (make invoke)
    #: "local": DynamoDB Local (fail if it cannot run); "moto": moto, serialized; "auto": local when
    #: Java and the jar are there, else moto with one warning line
    dynamodb: str = "auto"
    dynamodb_local_dir: Path | None = None  # default: dynamodb_local.default_dir()
    #: (email, group) users made in each Cognito user pool of the template, with printed passwords
    cognito_users: list[tuple[str, str]] = field(default_factory=list)
    #: (label, path) lines of the banner, e.g. ("Console", "/console")
    links: list[tuple[str, str]] = field(default_factory=list)


DYNAMODB_ENGINES = ("auto", "local", "moto")


class LocalRuntime:
    def __init__(self, options: RuntimeOptions) -> None:
        self.options = options
        self.aws = EmbeddedAWS(options.moto_host, options.moto_port)
        self.template: Template | None = None
        self.resources: ResourceManager | None = None
        self.functions: dict[str, LocalFunction] = {}
        self.apis: dict[str, ApiConfig] = {}
        self.router = Router()
        self.gateway: ApiGateway
        self.pollers: list[SqsPoller | StreamPoller] = []
        self.schedule_targets: list[ScheduledTarget] = []
        self.scheduler: Scheduler | None = None
        self.http: Any = None
        self.api_url = f"http://{options.host}:{options.port}"
        self.api_key: str | None = None
        self.api_key_note: str = ""
        self.cognito_users: list[dict[str, str]] = []
        self.warnings: list[str] = []
        self.restored: dict[str, int] = {}
        if options.dynamodb not in DYNAMODB_ENGINES:
            raise ValueError(f"dynamodb must be one of {', '.join(DYNAMODB_ENGINES)}, not {options.dynamodb!r}")
        #: the Java server when DynamoDB Local serves DynamoDB, else None (moto serves it)
        self.dynamodb_local: DynamoDBLocal | None = None
        self.dynamodb_note = ""
        self._saved_environ: dict[str, str] | None = None
        self._saved_path: list[str] | None = None
        self._stopped = threading.Event()
        self._started = False

    # ================================================================= lifecycle
    def start(self) -> LocalRuntime:
        self._saved_environ = dict(os.environ)
        self._saved_path = list(sys.path)
        try:
            self._start()
        except BaseException:
            self.stop(persist=False)
            raise
        self._started = True
        return self

    def _start(self) -> None:
        opts = self.options
        engine_db = Path(opts.persist_dir) / ENGINE_DIR if opts.persist_dir is not None else None
        had_engine_db = engine_db is not None and any(engine_db.glob("*.db"))
        self._launch_dynamodb_local(engine_db)  # Java starts in ~2 s: meanwhile moto starts, the template loads
        self.aws.start()
        self.template = Template(
            opts.template, parameter_overrides=opts.parameter_overrides, stack_name=opts.stack_name
        )
        self._await_dynamodb_local()
        self.aws.apply_environment()
        in_engine = self.dynamodb_local is not None and engine_db is not None
        self.resources = ResourceManager(self.template, self.aws, tables_in_engine=in_engine)
        self.resources.create_all()
        if opts.cognito_users:
            self.cognito_users = self.resources.create_users(opts.cognito_users)
        if opts.persist_dir is not None and Path(opts.persist_dir).exists():
            if had_engine_db and self.dynamodb_local is None:
                self._warn(
                    f"{engine_db} holds DynamoDB Local's tables, which moto cannot read: "
                    "tables start from the last dump made with moto, if any"
                )
            # items dumped by moto (an older runtime, or the fallback) move into a new DynamoDB Local database once
            self.restored = self.resources.restore(opts.persist_dir, tables=not (in_engine and had_engine_db))

        if opts.serve_http:
            from .server import LocalHttpServer

            self.http = LocalHttpServer(self, opts.host, opts.port)
            self.api_url = f"http://{opts.host}:{self.http.port}"
        self.resources.create_parameters(lambda value: point_api_urls_at(self.tpl, value, self.api_url))

        self._build_functions()
        self._apply_function_environment()
        self._add_layers_to_path()
        for function in self.functions.values():
            try:
                function.load()
            except FunctionError as exc:
                self._warn(f"{function.spec.logical_id} could not be loaded (retried at each call): {exc}")

        self._build_apis()
        self.gateway = ApiGateway(
            self.apis,
            self.router,
            self.invoke,
            region=self.aws.region,
            account_id=self.aws.account_id,
            host=opts.host,
            port=self.http.port if self.http else opts.port,
        )
        self._build_sqs_sources()
        self._build_stream_sources()
        self._build_schedules()
        if opts.poll_queues:
            for poller in self.pollers:
                poller.start()
        if opts.run_schedules and self.schedule_targets:
            self.scheduler = Scheduler(self.schedule_targets, self._scheduled_fire, speedup=opts.schedule_speedup)
            self.scheduler.start()
        if self.http is not None:
            self.http.start()
        if opts.create_api_key:
            self._create_api_key()

    def stop(self, *, persist: bool = True) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            self._stop(persist)
        finally:
            if self.dynamodb_local is not None:  # whatever failed above: no orphan java
                self.dynamodb_local.stop()

    def _stop(self, persist: bool) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        for poller in self.pollers:
            poller._stop.set()
        for poller in self.pollers:
            poller.stop()
        if self.http is not None:
            self.http.stop()
        if self.dynamodb_local is not None:
            self.dynamodb_local.stop()  # before the dump: its database file is complete and can move
        if persist and self._started and self.options.persist_dir is not None and self.resources is not None:
            try:
                counts = self.resources.dump(self.options.persist_dir)
                log.info("persisted %s to %s", counts, self.options.persist_dir)
            except Exception as exc:
                log.error("could not persist local data to %s: %s", self.options.persist_dir, exc)
        self.aws.stop()
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
        if self._saved_path is not None:
            sys.path[:] = self._saved_path

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ================================================================= DynamoDB engine
    def _launch_dynamodb_local(self, db_path: Path | None) -> None:
        choice = self.options.dynamodb
        if choice == "moto":
            self.dynamodb_note = "chosen with --dynamodb moto"
            return
        engine = DynamoDBLocal(self.options.dynamodb_local_dir)
        try:
            self.dynamodb_local = engine.launch(db_path)
        except DynamoDBLocalUnavailable as exc:
            self._fall_back_to_moto(str(exc))

    def _await_dynamodb_local(self) -> None:
        if self.dynamodb_local is None:
            return
        try:
            self.dynamodb_local.wait_ready()
        except DynamoDBLocalUnavailable as exc:
            self.dynamodb_local = None
            self._fall_back_to_moto(str(exc))
            return
        self.aws.dynamodb_url = self.dynamodb_local.url

    def _fall_back_to_moto(self, reason: str) -> None:
        if self.options.dynamodb == "local":
            raise DynamoDBLocalUnavailable(f"--dynamodb local: {reason}")
        self.dynamodb_note = f"DynamoDB Local unavailable: {reason}"
        # one line, on purpose: the stack still works, only slower (every DynamoDB request serialized)
        log.warning("%s; DynamoDB is served by moto instead, one request at a time", self.dynamodb_note)

    @property
    def dynamodb_engine(self) -> str:
        return "dynamodb-local" if self.dynamodb_local is not None else "moto"

    @property
    def dynamodb_url(self) -> str:
        return self.aws.dynamodb_url or self.aws.url

    def _describe_dynamodb(self) -> dict[str, Any]:
        engine = self.dynamodb_local
        return {
            "engine": self.dynamodb_engine,
            "url": self.dynamodb_url,
            "serialized": engine is None,
            "pid": engine.pid if engine is not None else None,
            "db_path": str(engine.db_path) if engine is not None and engine.db_path else None,
            "note": self.dynamodb_note,
        }

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("%s", message)

    # ================================================================= functions
    @property
    def tpl(self) -> Template:
        assert self.template is not None
        return self.template

    def _build_functions(self) -> None:
        tpl = self.tpl
        wanted = self.options.only_functions
        for logical_id in tpl.of_type(SERVERLESS_FUNCTION):
            if wanted is not None and logical_id not in wanted:
                continue
            props = tpl.resolved_properties(logical_id)
            if props.get("PackageType", "Zip") != "Zip" or not str(props.get("Runtime", "python")).startswith("python"):
                self._warn(f"{logical_id}: only Python zip functions run locally; skipped")
                continue
            code_uri = props.get("CodeUri")
            if not isinstance(code_uri, str) or "Handler" not in props:
                self._warn(f"{logical_id}: needs a local CodeUri folder and a Handler; skipped")
                continue
            env = {
                str(k): self._local_env_value(_cfn_str(v))
                for k, v in ((props.get("Environment") or {}).get("Variables") or {}).items()
            }
            layers = []
            raw_layers = tpl.properties(logical_id).get("Layers") or []
            for layer in raw_layers:
                if isinstance(layer, dict) and isinstance(layer.get("Ref"), str) and layer["Ref"] not in layers:
                    layers.append(layer["Ref"])
            spec = FunctionSpec(
                logical_id=logical_id,
                name=tpl.registry.refs[logical_id],
                arn=tpl.registry.attrs[logical_id]["Arn"],
                code_dir=(tpl.dir / code_uri).resolve(),
                handler=str(props["Handler"]),
                runtime=str(props.get("Runtime", "python3.12")),
                timeout=int(props.get("Timeout", 3)),
                memory=int(props.get("MemorySize", 128)),
                environment=env,
                layers=layers,
                events={k: v for k, v in (props.get("Events") or {}).items() if isinstance(v, dict)},
            )
            self.functions[logical_id] = LocalFunction(spec, enforce_timeout=self.options.enforce_timeouts)
        if wanted:
            missing = set(wanted) - set(self.functions)
            if missing:
                raise TemplateError(f"no such function in the template: {', '.join(sorted(missing))}")

    def _local_env_value(self, value: str) -> str:
        return point_api_urls_at(self.tpl, value, self.api_url)

    def _apply_function_environment(self) -> None:
        values: dict[str, set[str]] = {}
        reserved = self.aws.environment()
        for function in self.functions.values():
            for key in [k for k in function.spec.environment if k in reserved]:
                # the local AWS endpoint and credentials always win over the template's values
                if function.spec.environment.pop(key) != reserved[key]:
                    self._warn(f"{function.spec.logical_id}: {key} from the template is replaced by the local one")
        for function in self.functions.values():
            for key, value in function.spec.environment.items():
                values.setdefault(key, set()).add(value)
        conflicts = {key for key, seen in values.items() if len(seen) > 1}
        for function in self.functions.values():
            env = function.spec.environment
            os.environ.update({k: v for k, v in env.items() if k not in conflicts})
            function.per_call_env = {k: v for k, v in env.items() if k in conflicts}
        if conflicts:
            self._warn(
                "functions set different values for "
                + ", ".join(sorted(conflicts))
                + ": these are set at each invocation, and the environment is process-wide, so concurrent "
                "invocations of those functions can see each other's values"
            )

    def _add_layers_to_path(self) -> None:
        tpl = self.tpl
        used: list[str] = []
        for function in self.functions.values():
            for layer in function.spec.layers:
                if layer not in used:
                    used.append(layer)
        for layer in reversed(used):
            resource = tpl.resources.get(layer)
            if resource is None or resource["Type"] not in (
                "AWS::Serverless::LayerVersion",
                "AWS::Lambda::LayerVersion",
            ):
                continue
            props = tpl.resolved_properties(layer)
            uri = props.get("ContentUri") or (props.get("Content") or {}).get("S3Key")
            if not isinstance(uri, str):
                continue
            folder = (tpl.dir / uri).resolve()
            candidates = [folder / "python", folder]
            for candidate in candidates:
                if candidate.is_dir() and _has_python(candidate):
                    if str(candidate) not in sys.path:
                        sys.path.insert(0, str(candidate))
                    break

    def invoke(self, function_id: str, event: Any) -> Any:
        function = self.functions.get(function_id)
        if function is None:
            raise FunctionError("ResourceNotFoundException", f"Function not found: {function_id}")
        return function.invoke(event)

    # ================================================================= API Gateway
    def _build_apis(self) -> None:
        tpl = self.tpl
        api_ids = {tpl.registry.refs[lid]: lid for lid in tpl.of_type(SERVERLESS_API)}
        function_by_arn = {
            tpl.registry.attrs[lid]["Arn"]: lid for lid in self.functions if "Arn" in tpl.registry.attrs.get(lid, {})
        }
        function_by_name = {f.spec.name: lid for lid, f in self.functions.items()}
        for logical_id in tpl.of_type(SERVERLESS_API):
            self.apis[logical_id] = self._api_config(
                logical_id, tpl.resolved_properties(logical_id), function_by_arn, function_by_name
            )
        if IMPLICIT_API in tpl.registry.refs:
            props = tpl.resolve(tpl.globals.get("Api") or {})
            props.setdefault("StageName", "Prod")
            self.apis[IMPLICIT_API] = self._api_config(IMPLICIT_API, props, function_by_arn, function_by_name)
        for function_id, function in self.functions.items():
            for event_id, event in function.spec.events.items():
                etype = event.get("Type")
                props = event.get("Properties") or {}
                if etype == "Api":
                    api_lid = api_ids.get(props.get("RestApiId"), IMPLICIT_API)
                    api = self.apis.get(api_lid)
                    auth = (props.get("Auth") or {}).get("Authorizer")
                    if auth is None:
                        auth = api.default_authorizer if api else None
                    if auth in ("NONE", None):
                        auth = None
                    elif auth == "AWS_IAM" or (api and auth not in api.authorizers):
                        self._warn(f"{function_id}.{event_id}: authorizer {auth} is not emulated; requests are denied")
                    self.router.add(
                        Route(
                            path=str(props.get("Path", "/")),
                            method=str(props.get("Method", "ANY")).upper(),
                            function_id=function_id,
                            api_id=api_lid,
                            event_id=event_id,
                            authorizer=auth,
                        )
                    )
                elif etype not in ("SQS", "DynamoDB", "Schedule", "ScheduleV2"):
                    self._warn(f"{function_id}.{event_id}: event type {etype} is not emulated locally")

    def _api_config(
        self,
        logical_id: str,
        props: dict[str, Any],
        function_by_arn: dict[str, str],
        function_by_name: dict[str, str],
    ) -> ApiConfig:
        auth = props.get("Auth") or {}
        authorizers: dict[str, AuthorizerConfig] = {}
        for name, spec in (auth.get("Authorizers") or {}).items():
            arn = spec.get("FunctionArn")
            if not arn:
                self._warn(f"{logical_id}: authorizer {name} is not a Lambda authorizer; not emulated")
                continue
            function_id = function_by_arn.get(arn) or function_by_name.get(str(arn).rsplit(":", 1)[-1], "")
            if not function_id:
                self._warn(f"{logical_id}: authorizer {name} calls {arn}, not a local function")
            identity = spec.get("Identity") or {}
            payload_type = str(spec.get("FunctionPayloadType", "TOKEN")).upper()
            headers = list(identity.get("Headers") or [])
            if payload_type == "TOKEN":
                headers = [identity.get("Header", "Authorization")]
            authorizers[name] = AuthorizerConfig(
                name=name,
                function_id=function_id,
                payload_type=payload_type,
                identity_headers=headers,
                identity_query_strings=list(identity.get("QueryStrings") or []),
                identity_stage_variables=list(identity.get("StageVariables") or []),
                validation_expression=identity.get("ValidationExpression"),
                ttl=int(identity.get("ReauthorizeEvery", 300)),
            )
        return ApiConfig(
            logical_id=logical_id,
            api_id=self.tpl.registry.refs[logical_id],
            stage=str(props.get("StageName", "local")),
            default_authorizer=auth.get("DefaultAuthorizer"),
            authorizers=authorizers,
            gateway_responses=props.get("GatewayResponses") or {},
            binary_media_types=[str(t) for t in props.get("BinaryMediaTypes") or []],
            stage_variables={str(k): str(v) for k, v in (props.get("Variables") or {}).items()} or None,
        )

    # ================================================================= SQS
    def _build_sqs_sources(self) -> None:
        assert self.resources is not None
        for function_id, function in self.functions.items():
            for event_id, event in function.spec.events.items():
                if event.get("Type") != "SQS":
                    continue
                props = event.get("Properties") or {}
                arn = str(props.get("Queue"))
                url = self.resources.queue_url_for_arn(arn)
                if url is None:
                    self._warn(f"{function_id}.{event_id}: queue {arn} is not a queue of this template")
                    continue
                source = SqsSource(
                    function_id=function_id,
                    event_id=event_id,
                    queue_url=url,
                    queue_arn=arn,
                    batch_size=int(props.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                    enabled=str(props.get("Enabled", "true")).lower() != "false",
                )
                self.pollers.append(
                    SqsPoller(
                        source,
                        self.aws.client("sqs"),
                        self.invoke,
                        region=self.aws.region,
                        visibility_timeout_cap=self.options.visibility_timeout_cap,
                    )
                )

    # ================================================================= DynamoDB streams
    def _build_stream_sources(self) -> None:
        assert self.resources is not None
        for function_id, function in self.functions.items():
            for event_id, event in function.spec.events.items():
                if event.get("Type") != "DynamoDB":
                    continue
                props = event.get("Properties") or {}
                destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
                filters = [
                    json.loads(f["Pattern"]) if isinstance(f.get("Pattern"), str) else f.get("Pattern")
                    for f in ((props.get("FilterCriteria") or {}).get("Filters") or [])
                ]
                source = StreamSource(
                    function_id=function_id,
                    event_id=event_id,
                    stream_arn=self._stream_arn(str(props.get("Stream"))),
                    batch_size=int(props.get("BatchSize", 100)),
                    starting_position=str(props.get("StartingPosition", "LATEST")),
                    filters=filters,
                    report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                    maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
                    bisect_on_error=str(props.get("BisectBatchOnFunctionError", "false")).lower() == "true",
                    on_failure_queue_url=self.resources.queue_url_for_arn(str(destination)) if destination else None,
                    enabled=str(props.get("Enabled", "true")).lower() != "false",
                )
                self.pollers.append(
                    StreamPoller(
                        source,
                        self.aws.client("dynamodbstreams"),
                        self.invoke,
                        sqs_client=self.aws.client("sqs"),
                        region=self.aws.region,
                    )
                )

    def table_items(self, logical_id: str, *, item_type: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """A template table's items (a development aid: a Scan, newest `sk` first), optionally only those
        whose `type` attribute is `item_type` (e.g. WebhookDelivery: the webhook deliveries)."""
        if self.tpl.resources.get(logical_id, {}).get("Type") != "AWS::DynamoDB::Table":
            raise KeyError(logical_id)
        from boto3.dynamodb.types import TypeDeserializer

        name = str(self.tpl.ref(logical_id))
        params: dict[str, Any] = {"TableName": name}
        if item_type:
            params.update(
                FilterExpression="#t = :t",
                ExpressionAttributeNames={"#t": "type"},
                ExpressionAttributeValues={":t": {"S": item_type}},
            )
        out: list[dict[str, Any]] = []
        deserialize = TypeDeserializer().deserialize
        for page in self.aws.client("dynamodb").get_paginator("scan").paginate(**params):
            out += [{k: deserialize(v) for k, v in item.items()} for item in page["Items"]]
        out.sort(key=lambda i: str(i.get("sk", "")), reverse=True)
        return json.loads(json.dumps(out[: max(1, limit)], default=str))

    def _stream_arn(self, arn: str) -> str:
        """The table's real stream ARN (the engine names it when the table is created)."""
        table_arn = arn.split("/stream/")[0]
        name = table_arn.rsplit("/", 1)[-1]
        try:
            return str(self.aws.client("dynamodb").describe_table(TableName=name)["Table"]["LatestStreamArn"])
        except Exception as exc:
            self._warn(f"stream {arn}: {exc}")
            return arn

    # ================================================================= schedules
    def _build_schedules(self) -> None:
        for function_id, function in self.functions.items():
            for event_id, event in function.spec.events.items():
                etype = event.get("Type")
                if etype not in ("Schedule", "ScheduleV2"):
                    continue
                props = event.get("Properties") or {}
                if etype == "Schedule":
                    expression, tz = props.get("Schedule"), None
                    enabled = (
                        str(props.get("Enabled", "true")).lower() != "false"
                        and props.get("State", "ENABLED") != "DISABLED"
                    )
                else:
                    expression, tz = props.get("ScheduleExpression"), props.get("ScheduleExpressionTimezone")
                    enabled = props.get("State", "ENABLED") != "DISABLED"
                try:
                    parsed = parse_schedule(str(expression), tz)
                except ScheduleError as exc:
                    self._warn(f"{function_id}.{event_id}: {exc}; not scheduled")
                    continue
                self.schedule_targets.append(
                    ScheduledTarget(
                        function_id=function_id,
                        event_id=event_id,
                        event_type=etype,
                        expression=parsed,
                        name=str(props.get("Name") or f"{self.tpl.stack_name}-{function_id}{event_id}"),
                        input=props.get("Input"),
                        enabled=enabled,
                    )
                )

    def _scheduled_fire(self, target: ScheduledTarget, when: datetime) -> Any:
        return self._fire_one(target, when)

    def _fire_one(self, target: ScheduledTarget, when: datetime) -> dict[str, Any]:
        event = target.payload(when, self.aws.region, self.aws.account_id)
        target.fired += 1
        item: dict[str, Any] = {"id": target.id, "function": target.function_id}
        try:
            item["result"] = self.invoke(target.function_id, event)
        except FunctionError as exc:
            item["error"] = exc.as_payload()
        target.last_result = item
        return item

    def fire_schedules(self, selector: str | None = None) -> list[dict[str, Any]]:
        """Fire schedules now (all, or those whose id, function or event id is ``selector``)."""
        targets = [
            t for t in self.schedule_targets if selector is None or selector in (t.id, t.function_id, t.event_id)
        ]
        if selector is not None and not targets:
            raise KeyError(selector)
        now = datetime.now(UTC)
        return [self._fire_one(t, now) for t in targets]

    # ================================================================= misc
    def _create_api_key(self) -> None:
        try:
            from invoicing.use_cases import api_keys  # type: ignore[import-not-found]
        except ImportError as exc:
            self.api_key_note = f"no API key could be created (invoicing.use_cases.api_keys: {exc})"
            return
        scopes = self.options.api_key_scopes or list(
            getattr(api_keys, "ALL_SCOPES", None) or getattr(api_keys, "SCOPES", None) or DEFAULT_API_KEY_SCOPES
        )
        try:
            self.api_key = api_keys.create_api_key(self.options.api_key_name, list(scopes))
            self.api_key_note = f"scopes: {', '.join(scopes)}"
        except Exception as exc:
            self.api_key_note = f"no API key could be created: {type(exc).__name__}: {exc}"

    def outbox(self) -> list[dict[str, Any]]:
        return outbox(self.aws)

    @property
    def outbox_url(self) -> str:
        return f"{self.api_url}/_local/outbox"

    def describe(self) -> dict[str, Any]:
        assert self.resources is not None
        return {
            "api_url": self.api_url,
            "moto_url": self.aws.url,
            "dynamodb": self._describe_dynamodb(),
            "stack_name": self.tpl.stack_name,
            "template": str(self.tpl.path),
            "parameters": self.tpl.parameters,
            "resources": self.resources.created,
            "functions": {
                lid: {
                    "name": f.spec.name,
                    "handler": f.spec.handler,
                    "code_dir": str(f.spec.code_dir),
                    "loaded": f.loaded,
                    "timeout": f.spec.timeout,
                    "memory": f.spec.memory,
                }
                for lid, f in self.functions.items()
            },
            "routes": [
                {"method": r.method, "path": r.path, "function": r.function_id, "authorizer": r.authorizer}
                for r in self.router.routes
            ],
            "queues_polled": [
                {"function": p.source.function_id, "queue_url": p.source.queue_url, "batch_size": p.source.batch_size}
                for p in self.pollers
                if isinstance(p, SqsPoller)
            ],
            "streams_polled": [
                {"function": p.source.function_id, "stream_arn": p.source.stream_arn, "batch_size": p.source.batch_size}
                for p in self.pollers
                if isinstance(p, StreamPoller)
            ],
            "schedules": [t.describe() for t in self.schedule_targets],
            "visibility_timeout_cap": self.options.visibility_timeout_cap,
            "persist_dir": str(self.options.persist_dir) if self.options.persist_dir else None,
            "warnings": self.warnings,
        }

    def ready_info(self) -> dict[str, Any]:
        return {
            "api_url": self.api_url,
            "api_key": self.api_key,
            "moto_url": self.aws.url,
            "dynamodb_url": self.dynamodb_url,
            "dynamodb_engine": self.dynamodb_engine,
            "dynamodb_pid": self.dynamodb_local.pid if self.dynamodb_local is not None else None,
            "outbox_url": self.outbox_url,
            "cognito_users": self.cognito_users,
            "pid": os.getpid(),
        }

    def banner(self) -> str:
        has_docs = any(r.path.rstrip("/") == "/docs" and r.method in ("GET", "ANY") for r in self.router.routes)
        lines = [
            "",
            "Local stack is up: no Docker, no AWS account, data in memory"
            + (f" (persisted to {self.options.persist_dir} at stop)" if self.options.persist_dir else "")
            + ".",
            f"  API          {self.api_url}",
        ]
        if has_docs:
            lines.append(f"  Swagger UI   {self.api_url}/docs")
        for label, path in self.options.links:
            lines.append(f"  {label:<12} {self.api_url}{path}")
        for user in self.cognito_users:
            lines.append(f"  Sign-in      {user['email']}  password {user['password']}  (group {user['group']})")
        if self.api_key:
            lines.append(f"  API key      {self.api_key}   ({self.api_key_note})")
            lines.append(f"               curl -H 'Authorization: Bearer {self.api_key}' {self.api_url}/...")
        elif self.options.create_api_key:
            lines.append(f"  API key      {self.api_key_note}")
        lines += [
            f"  Outbox       {self.api_url}/_local/outbox.html  (JSON: {self.outbox_url})",
            f"  Local AWS    {self.aws.url}  (AWS_ENDPOINT_URL for boto3 / aws --endpoint-url)",
            (
                f"  DynamoDB     {self.dynamodb_url}  (DynamoDB Local; AWS_ENDPOINT_URL_DYNAMODB)"
                if self.dynamodb_local is not None
                else "  DynamoDB     moto (Local AWS), one request at a time"
                + (" (the fallback: see the warning above)" if self.options.dynamodb != "moto" else "")
            ),
            f"  Resources    {self.api_url}/_local/resources",
        ]
        if self.schedule_targets:
            lines.append(f"  Schedules    POST {self.api_url}/_local/schedules  (make invoke-schedule)")
        for warning in self.warnings:
            lines.append(f"  warning: {warning}")
        lines.append("Ctrl-C stops it.")
        return "\n".join(lines)


def _has_python(folder: Path) -> bool:
    for entry in folder.iterdir():
        if entry.suffix == ".py" or (entry.is_dir() and (entry / "__init__.py").exists()):
            return True
    return False


def point_api_urls_at(template: Template, value: str, api_url: str) -> str:
    """Replace the template's execute-api URLs (``https://<id>.execute-api...[/stage]``) by ``api_url``."""
    api_ids = [template.registry.refs[lid] for lid in template.of_type(SERVERLESS_API, "AWS::ApiGateway::RestApi")]
    if IMPLICIT_API in template.registry.refs:
        api_ids.append(template.registry.refs[IMPLICIT_API])
    for api_id in api_ids:
        host = f"https://{api_id}.execute-api.{template.region}.amazonaws.com"
        if host in value:
            value = re.sub(re.escape(host) + r"(/[A-Za-z0-9_-]+)?", api_url, value)
    return value
