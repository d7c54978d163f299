"""In-process functions: isolated imports of same-named modules, the Lambda context, timeouts."""

from __future__ import annotations

import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from local.functions import FunctionError, FunctionSpec, LambdaContext, LocalFunction, load_isolated


def _function_dir(root: Path, name: str, body: str, helper: str) -> Path:
    folder = root / name
    (folder / "pkg").mkdir(parents=True)
    (folder / "app.py").write_text(textwrap.dedent(body))
    (folder / "helpers.py").write_text(f"NAME = {helper!r}\n")
    (folder / "pkg" / "__init__.py").write_text(f"WHO = {name!r}\n")
    return folder


def test_same_named_modules_are_isolated(tmp_path: Path) -> None:
    body = """
        import helpers
        import pkg

        def handler(event, context):
            return [helpers.NAME, pkg.WHO, event]
    """
    one = _function_dir(tmp_path, "one", body, "helper-one")
    two = _function_dir(tmp_path, "two", body, "helper-two")
    before = set(sys.modules)
    first = load_isolated(one, "app.handler", "One")
    second = load_isolated(two, "app.handler", "Two")
    assert first({"x": 1}, None) == ["helper-one", "one", {"x": 1}]
    assert second({}, None) == ["helper-two", "two", {}]
    added = set(sys.modules) - before
    assert not {"app", "helpers", "pkg"} & added  # nothing left under the plain names
    assert {"_localfn_One__app", "_localfn_Two__app", "_localfn_Two__pkg"} <= added
    assert str(one) not in sys.path and str(two) not in sys.path


def test_load_errors(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "app.py").write_text("import does_not_exist_anywhere\n")
    with pytest.raises(FunctionError) as info:
        load_isolated(folder, "app.handler", "F")
    assert info.value.error_type == "Runtime.ImportModuleError"
    (folder / "ok.py").write_text("x = 1\n")
    with pytest.raises(FunctionError) as info:
        load_isolated(folder, "ok.handler", "F2")
    assert info.value.error_type == "Runtime.HandlerNotFound"
    with pytest.raises(FunctionError):
        load_isolated(tmp_path / "missing", "app.handler", "F3")


def _spec(folder: Path, timeout: int = 3) -> FunctionSpec:
    return FunctionSpec(
        logical_id="Fn",
        name="stack-Fn",
        arn="arn:aws:lambda:us-east-1:123456789012:function:stack-Fn",
        code_dir=folder,
        handler="app.handler",
        timeout=timeout,
        memory=512,
    )


def test_context_and_json_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "ctx"
    folder.mkdir()
    (folder / "app.py").write_text(
        textwrap.dedent(
            """
            from decimal import Decimal

            def handler(event, context):
                return {
                    "name": context.function_name,
                    "version": context.function_version,
                    "arn": context.invoked_function_arn,
                    "memory": context.memory_limit_in_mb,
                    "request_id": context.aws_request_id,
                    "log_group": context.log_group_name,
                    "stream": context.log_stream_name,
                    "remaining": context.get_remaining_time_in_millis(),
                    "amount": Decimal("1.5"),
                    "count": Decimal("2"),
                    "event": event,
                }
            """
        )
    )
    function = LocalFunction(_spec(folder, timeout=7))
    first = function.invoke({"a": (1, 2)})
    second = function.invoke({})
    assert first["name"] == "stack-Fn" and first["version"] == "$LATEST"
    assert first["arn"].endswith(":function:stack-Fn")
    assert first["memory"] == "512"
    assert first["log_group"] == "/aws/lambda/stack-Fn" and "[$LATEST]" in first["stream"]
    assert 0 < first["remaining"] <= 7000
    assert first["amount"] == 1.5 and first["count"] == 2
    assert first["event"] == {"a": [1, 2]}  # the event crossed JSON
    assert first["request_id"] != second["request_id"]


def test_remaining_time_counts_down() -> None:
    context = LambdaContext(_spec(Path("."), timeout=2), timeout=0)
    assert context.get_remaining_time_in_millis() == 0


def test_errors_timeouts_and_unserializable_results(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "app.py").write_text(
        textwrap.dedent(
            """
            import threading

            release = threading.Event()

            def handler(event, context):
                if event["do"] == "raise":
                    raise KeyError("nope")
                if event["do"] == "hang":
                    release.wait(30)
                    return "late"
                return {"obj": object()}
            """
        )
    )
    function = LocalFunction(_spec(folder, timeout=1))
    with pytest.raises(FunctionError) as info:
        function.invoke({"do": "raise"})
    assert info.value.error_type == "KeyError"
    assert info.value.as_payload()["stackTrace"]
    with pytest.raises(FunctionError) as info:
        function.invoke({"do": "marshal"})
    assert info.value.error_type == "Runtime.MarshalError"
    with pytest.raises(FunctionError) as info:
        function.invoke({"do": "hang"})
    assert info.value.error_type == "Sandbox.Timedout"
    sys.modules["_localfn_Fn__app"].release.set()


def test_a_call_after_a_timeout_runs_in_a_fresh_environment(tmp_path: Path) -> None:
    # Given a function whose module keeps state, and a call that hangs past the timeout
    folder = tmp_path / "stateful"
    folder.mkdir()
    (folder / "app.py").write_text(
        textwrap.dedent(
            """
            import threading

            release = threading.Event()
            seen = []

            def handler(event, context):
                seen.append(event["n"])
                if event.get("hang"):
                    release.wait(30)
                return list(seen)
            """
        )
    )
    function = LocalFunction(_spec(folder, timeout=1))
    assert function.invoke({"n": 1}) == [1]
    with pytest.raises(FunctionError) as info:
        function.invoke({"n": 2, "hang": True})
    assert info.value.error_type == "Sandbox.Timedout"
    abandoned = sys.modules["_localfn_Fn__app"]
    # When the next call comes while the abandoned one still runs
    answer = function.invoke({"n": 3})
    # Then it ran in a fresh copy of the module, as Lambda starts a new environment after a timeout
    assert answer == [3]
    assert sys.modules["_localfn_Fn__app"] is not abandoned and abandoned.seen == [1, 2]
    abandoned.release.set()


def test_unserializable_event_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ok"
    folder.mkdir()
    (folder / "app.py").write_text("def handler(event, context):\n    return event\n")
    function = LocalFunction(_spec(folder))
    assert function.invoke({"n": Decimal("3")}) == {"n": 3}
    with pytest.raises(TypeError):
        function.invoke({"x": object()})
