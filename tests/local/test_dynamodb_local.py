"""DynamoDB in the local runtime: DynamoDB Local (AWS's own engine) when Java and the jar are there,
else moto with one warning line; `--dynamodb {local,moto}` chooses; the Java process never outlives
the runtime."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests

from local.dynamodb_local import DynamoDBLocal, DynamoDBLocalUnavailable, default_dir
from local.testing import LocalStack, start_local_stack

from .conftest import FIXTURE_TEMPLATE

BASE_ARGS = ("--template", str(FIXTURE_TEMPLATE), "--no-api-key", "--no-schedules", "--no-queues")
FALLBACK = "DynamoDB Local unavailable:"
WAIT = 30  # seconds: an upper bound for a process to go away, never a timing assertion

needs_dynamodb_local = pytest.mark.skipif(
    DynamoDBLocal().unavailable_reason() is not None,
    reason=f"DynamoDB Local cannot run here: {DynamoDBLocal().unavailable_reason()} (make dynamodb-local)",
)


@pytest.fixture
def started() -> Iterator[list[LocalStack]]:
    """Stacks a test starts; each is stopped and cleaned up afterwards, whatever happened."""
    stacks: list[LocalStack] = []
    yield stacks
    for stack in stacks:
        stack.stop()
        stack.cleanup()


def _start(started: list[LocalStack], *args: str, env: dict[str, str] | None = None) -> LocalStack:
    stack = start_local_stack([*BASE_ARGS, *args], env=env)
    started.append(stack)
    return stack


def _dynamodb(stack: LocalStack) -> dict:
    return requests.get(stack.api_url + "/_local/resources", timeout=30).json()["dynamodb"]


def _tables_in_moto(stack: LocalStack) -> list[str]:
    moto = boto3.client(
        "dynamodb",
        endpoint_url=stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return list(moto.list_tables()["TableNames"])


def _gone(pid: int) -> bool:
    """No such process, or a zombie (dead, waiting for its new parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _eventually_gone(pid: int) -> bool:
    deadline = time.monotonic() + WAIT
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# ---------------------------------------------------------------------------------------- the engine
@needs_dynamodb_local
def test_tables_with_gsi_ttl_and_stream_are_created_in_dynamodb_local(fixture_stack: LocalStack) -> None:
    # Given the fixture stack, started with the default engine on a machine with Java and the jar
    # When its DynamoDB is described
    described = _dynamodb(fixture_stack)
    table = fixture_stack.client("dynamodb").describe_table(TableName="local-DataTable")["Table"]
    ttl = fixture_stack.client("dynamodb").describe_time_to_live(TableName="local-DataTable")
    # Then DynamoDB Local serves it, without the lock, and moto holds no table at all
    assert described["engine"] == fixture_stack.dynamodb_engine == "dynamodb-local"
    assert described["serialized"] is False and described["url"] == fixture_stack.dynamodb_url
    assert fixture_stack.dynamodb_url != fixture_stack.moto_url
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == ["gsi1"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    assert _tables_in_moto(fixture_stack) == []
    # and with telemetry off, it wrote no installation id next to the jar (its working folder is temporary)
    assert not (default_dir() / "dynamodb-local-metadata.json").exists()


@needs_dynamodb_local
def test_functions_write_to_dynamodb_local(fixture_stack: LocalStack) -> None:
    # Given the fixture stack on DynamoDB Local
    # When a function writes to its table (TickFunction puts a "tick" item)
    fired = requests.post(fixture_stack.api_url + "/_local/invoke/TickFunction", json={"kind": "ddb-local"}, timeout=30)
    # Then the item is in DynamoDB Local: the function's boto3 followed AWS_ENDPOINT_URL_DYNAMODB
    assert fired.json() == {"fired": "ddb-local"}
    items = fixture_stack.client("dynamodb").query(
        TableName="local-DataTable",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "tick"}},
    )["Items"]
    assert any(item["kind"]["S"] == "ddb-local" for item in items)


def test_dynamodb_moto_is_chosen_explicitly(started: list[LocalStack]) -> None:
    # Given a stack started with --dynamodb moto
    stack = _start(started, "--dynamodb", "moto")
    # When its DynamoDB is described
    described = _dynamodb(stack)
    # Then moto serves DynamoDB, serialized, and no fallback warning was printed
    assert described["engine"] == stack.dynamodb_engine == "moto" and described["serialized"] is True
    assert stack.dynamodb_url == stack.moto_url and stack.dynamodb_pid is None
    assert "local-DataTable" in _tables_in_moto(stack)
    assert FALLBACK not in stack.log()


@pytest.mark.parametrize("missing", ["jar", "java"])
def test_without_java_or_the_jar_one_line_says_so_and_moto_serves_dynamodb(
    started: list[LocalStack], tmp_path: Path, missing: str
) -> None:
    # Given a machine without the jar (an empty DYNAMODB_LOCAL_DIR), or without java on the PATH
    env = dict(os.environ)
    if missing == "jar":
        env["DYNAMODB_LOCAL_DIR"] = str(tmp_path)
    else:
        env["PATH"] = str(tmp_path)  # sys.executable starts the runtime; nothing else is on the PATH
    # When the stack starts with the default engine
    stack = _start(started, env=env)
    # Then exactly one line says why DynamoDB Local is not used, and moto serves DynamoDB
    lines = [line for line in stack.log().splitlines() if FALLBACK in line]
    assert len(lines) == 1, stack.log()
    assert ("make dynamodb-local" if missing == "jar" else "java is not installed") in lines[0]
    assert "moto" in lines[0]
    described = _dynamodb(stack)
    assert described["engine"] == "moto" and FALLBACK in described["note"]
    assert stack.client("dynamodb").describe_table(TableName="local-DataTable")["Table"]["GlobalSecondaryIndexes"]


def test_dynamodb_local_required_but_missing_fails_to_start(tmp_path: Path) -> None:
    # Given no jar, and --dynamodb local (no fallback wanted)
    env = dict(os.environ, DYNAMODB_LOCAL_DIR=str(tmp_path))
    # When the stack starts
    with pytest.raises(RuntimeError) as failed:
        start_local_stack([*BASE_ARGS, "--dynamodb", "local"], env=env, timeout=60)
    # Then it does not start, and says why
    assert "--dynamodb local: DynamoDB Local is not unpacked" in str(failed.value)


def test_unavailable_reason_names_what_is_missing(tmp_path: Path) -> None:
    # Given an empty folder, or a jar but no java
    (tmp_path / "with-jar").mkdir()
    (tmp_path / "with-jar" / "DynamoDBLocal.jar").write_bytes(b"")
    # When availability is checked, Then the reason is one line naming the missing piece
    assert "make dynamodb-local" in str(DynamoDBLocal(tmp_path, java="java").unavailable_reason())
    assert "java is not installed" in str(DynamoDBLocal(tmp_path / "with-jar", java="").unavailable_reason())
    assert DynamoDBLocal(tmp_path / "with-jar", java="/usr/bin/java").unavailable_reason() is None
    assert default_dir().name == "2.9.30" or os.environ.get("DYNAMODB_LOCAL_DIR")


@pytest.mark.skipif(not shutil.which("java"), reason="needs java")
def test_an_engine_that_dies_at_start_says_why(tmp_path: Path) -> None:
    # Given a jar java cannot run
    (tmp_path / "DynamoDBLocal.jar").write_bytes(b"not a jar")
    engine = DynamoDBLocal(tmp_path)
    # When it is started
    with pytest.raises(DynamoDBLocalUnavailable) as failed:
        engine.start(timeout=WAIT)
    # Then the error carries java's own last line, and nothing is left running
    assert "exited with code" in str(failed.value) and "jarfile" in str(failed.value).lower()
    assert engine.process is not None and engine.process.poll() is not None


# -------------------------------------------------------------------------------------- no orphans
@needs_dynamodb_local
def test_stopping_the_runtime_stops_java(started: list[LocalStack]) -> None:
    # Given a running stack and its DynamoDB Local process
    stack = _start(started)
    pid = stack.dynamodb_pid
    assert pid is not None and not _gone(pid)
    # When the stack stops (SIGTERM, as Ctrl-C / make dev's end)
    assert stack.stop() == 0
    # Then the java process is gone
    assert _eventually_gone(pid)


@needs_dynamodb_local
def test_a_killed_runtime_leaves_no_orphan_java(started: list[LocalStack]) -> None:
    # Given a running stack and its DynamoDB Local process
    stack = _start(started)
    pid = stack.dynamodb_pid
    assert pid is not None and not _gone(pid)
    workdir = os.readlink(f"/proc/{pid}/cwd")  # its temporary folder, which nobody will clean up now
    # When the runtime dies without running any clean-up (SIGKILL, an OOM kill)
    os.kill(stack.pid, signal.SIGKILL)
    stack.process.wait(WAIT)
    # Then the kernel kills its java too (PR_SET_PDEATHSIG)
    assert _eventually_gone(pid)
    shutil.rmtree(workdir, ignore_errors=True)


@needs_dynamodb_local
def test_persist_keeps_tables_in_dynamodb_locals_own_database(started: list[LocalStack], tmp_path: Path) -> None:
    # Given a stack persisting to a folder, with one item written
    data = tmp_path / "data"
    first = _start(started, "--persist", str(data))
    first.client("dynamodb").put_item(TableName="local-DataTable", Item={"pk": {"S": "kept"}, "sk": {"S": "1"}})
    # When it stops
    assert first.stop() == 0
    # Then the items are in DynamoDB Local's database file, not in a JSON dump
    assert list((data / "dynamodb").glob("*.db"))
    assert not list(data.glob("table-*.json"))
    # And a second stack on the same folder reads the item back, with the table's indexes intact
    second = _start(started, "--persist", str(data))
    ddb = second.client("dynamodb")
    assert ddb.get_item(TableName="local-DataTable", Key={"pk": {"S": "kept"}, "sk": {"S": "1"}})["Item"]
    assert ddb.describe_table(TableName="local-DataTable")["Table"]["GlobalSecondaryIndexes"][0]["IndexName"] == "gsi1"
    assert _dynamodb(second)["db_path"] == str(data / "dynamodb")
