"""Lambda functions run in-process: isolated loading, a Lambda context object, timeouts, env vars.

Every function has its own ``CodeUri`` folder, and several have a module called ``app``. Each function
is imported with its folder first on ``sys.path``; afterwards every module that was loaded from that
folder is moved out of ``sys.modules`` under a unique name (``_localfn_<LogicalId>__app``), so the next
function's ``app`` is a fresh import. Modules from layers and the venv stay shared, as in one
container. Imports of the function's own sibling modules must happen at import time (cold start).
"""

from __future__ import annotations

import contextlib
import decimal
import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("local")

_import_lock = threading.RLock()
_env_lock = threading.Lock()


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    runtime: str = "python3.12"
    timeout: int = 3
    memory: int = 128
    environment: dict[str, str] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)


class LambdaContext:
    """The context object the Python Lambda runtime passes to a handler."""

    def __init__(self, spec: FunctionSpec, *, timeout: float | None = None) -> None:
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        # the real runtime reads it from AWS_LAMBDA_FUNCTION_MEMORY_SIZE, so it is a string there too
        self.memory_limit_in_mb = str(spec.memory)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        seconds = spec.timeout if timeout is None else timeout
        self._deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext({self.function_name!r}, request_id={self.aws_request_id!r})"


class FunctionError(Exception):
    """A handler invocation failed like in Lambda (errorType, errorMessage, stackTrace)."""

    def __init__(self, error_type: str, message: str, stack: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack or []

    def as_payload(self) -> dict[str, Any]:
        return {"errorMessage": self.message, "errorType": self.error_type, "stackTrace": self.stack}


def _json_default(value: Any) -> Any:
    # the Lambda Python runtime serializes Decimal too (as a number)
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_round_trip(value: Any) -> Any:
    """What crossing the Lambda API does to a payload: JSON out and back in."""
    return json.loads(json.dumps(value, default=_json_default))


def _module_names_in(directory: Path) -> set[str]:
    names: set[str] = set()
    if not directory.is_dir():
        return names
    for entry in directory.iterdir():
        if entry.suffix == ".py":
            names.add(entry.stem)
        elif entry.is_dir() and ((entry / "__init__.py").exists() or any(p.suffix == ".py" for p in entry.iterdir())):
            names.add(entry.name)
    return names


def _is_under(path: str | None, directory: Path) -> bool:
    if not path:
        return False
    try:
        Path(path).resolve().relative_to(directory)
        return True
    except ValueError:
        return False


def load_isolated(code_dir: Path, handler: str, unique: str) -> Callable[..., Any]:
    """Import ``handler`` ("module.func") from ``code_dir`` without leaving its modules importable."""
    module_name, _, func_name = handler.rpartition(".")
    if not module_name:
        raise FunctionError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': use module.function")
    code_dir = code_dir.resolve()
    if not code_dir.is_dir():
        raise FunctionError("Runtime.ImportModuleError", f"CodeUri folder {code_dir} does not exist")
    own = _module_names_in(code_dir)
    with _import_lock:
        saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] in own}
        sys.path.insert(0, str(code_dir))
        importlib.invalidate_caches()
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise FunctionError(
                "Runtime.ImportModuleError",
                f"Unable to import module '{module_name}': {exc}",
                traceback.format_exception(exc),
            ) from exc
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(str(code_dir))
            for name, mod in list(sys.modules.items()):
                if name.split(".")[0] in own or _is_under(getattr(mod, "__file__", None), code_dir):
                    del sys.modules[name]
                    sys.modules[f"_localfn_{unique}__{name}"] = mod
            sys.modules.update(saved)
    func = getattr(module, func_name, None)
    if not callable(func):
        raise FunctionError("Runtime.HandlerNotFound", f"Handler '{func_name}' missing on module '{module_name}'")
    return func  # type: ignore[no-any-return]


class LocalFunction:
    """One template function, loaded once (a warm container) and invoked in-process."""

    def __init__(self, spec: FunctionSpec, *, enforce_timeout: bool = True) -> None:
        self.spec = spec
        self.enforce_timeout = enforce_timeout
        self._invocation_lock = threading.Lock()
        self._handler: Callable[..., Any] | None = None
        self._load_error: FunctionError | None = None
        #: variables of this function whose values differ from another function's: set per call
        self.per_call_env: dict[str, str] = {}

    @property
    def loaded(self) -> bool:
        return self._handler is not None

    def load(self) -> None:
        try:
            self._handler = load_isolated(self.spec.code_dir, self.spec.handler, self.spec.logical_id)
            self._load_error = None
        except FunctionError as exc:
            self._load_error = exc
            raise

    def _ensure_loaded(self) -> Callable[..., Any]:
        if self._handler is None:
            with _import_lock:
                if self._handler is None:
                    try:
                        self.load()  # a broken function is retried at each call, so a fix needs no restart
                    except FunctionError as exc:
                        log.error("%s: %s\n%s", self.spec.logical_id, exc, "".join(exc.stack).rstrip())
                        raise
        assert self._handler is not None
        return self._handler

    def invoke(self, event: Any, *, context: LambdaContext | None = None) -> Any:
        """Call the handler with a JSON copy of ``event``; return its JSON-round-tripped result.

        Raises :class:`FunctionError` for an exception, a timeout or an unserializable result.
        """
        # One invocation at a time per function, as in one Lambda container: the module's state (the
        # Powertools resolver keeps the current event and route on its app) is shared by every thread
        # here. Concurrent invocations of one function once routed a request with another's event
        # (an invoice finalized twice, a number answered twice: docs/reliability.md). Across functions,
        # and in DynamoDB, requests still run at once.
        with self._invocation_lock:
            return self._invoke(event, context)

    def _invoke(self, event: Any, context: LambdaContext | None) -> Any:
        context = context or LambdaContext(self.spec)
        started = time.monotonic()
        log.info("%s START RequestId: %s", self.spec.logical_id, context.aws_request_id)
        outcome: dict[str, Any] = {}
        try:
            handler = self._ensure_loaded()
            payload = json_round_trip(event)
            if self.per_call_env:
                with _env_lock:
                    os.environ.update(self.per_call_env)

            def run() -> None:
                try:
                    outcome["result"] = handler(payload, context)
                except BaseException as exc:  # reported like the Lambda runtime does
                    outcome["error"] = exc

            if self.enforce_timeout:
                worker = threading.Thread(target=run, name=f"lambda-{self.spec.logical_id}", daemon=True)
                worker.start()
                worker.join(self.spec.timeout)
                if worker.is_alive():
                    # Lambda replaces a timed-out environment; here the thread cannot be stopped, so the
                    # next call loads a fresh copy of the function's modules and never shares the
                    # abandoned call's state (its resolver's current event) while that call runs on
                    self._handler = None
                    raise FunctionError("Sandbox.Timedout", f"Task timed out after {self.spec.timeout:.2f} seconds")
            else:
                run()
            if "error" in outcome:
                exc = outcome["error"]
                tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None  # skip our own frame
                stack = traceback.format_exception(type(exc), exc, tb or exc.__traceback__)
                log.error("%s error:\n%s", self.spec.logical_id, "".join(stack).rstrip())
                raise FunctionError(type(exc).__name__, str(exc), stack)
            try:
                return json_round_trip(outcome.get("result"))
            except (TypeError, ValueError) as exc:
                raise FunctionError("Runtime.MarshalError", f"Unable to marshal response: {exc}") from exc
        except FunctionError as exc:
            outcome["failed"] = exc.error_type
            raise
        finally:
            elapsed = (time.monotonic() - started) * 1000
            status = f" Status: {outcome['failed']}" if "failed" in outcome else ""
            log.info(
                "%s REPORT RequestId: %s Duration: %.2f ms Memory Size: %s MB%s",
                self.spec.logical_id,
                context.aws_request_id,
                elapsed,
                self.spec.memory,
                status,
            )
