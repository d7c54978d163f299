"""Helpers for tests that drive ``python -m local`` as a subprocess (tests/e2e, tests/local)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalStack:
    """A running ``python -m local`` subprocess and what its ready file said."""

    api_url: str
    api_key: str | None
    moto_url: str
    outbox_url: str
    pid: int
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path = field(repr=False)
    #: where DynamoDB requests go: DynamoDB Local's endpoint, or moto's when moto serves DynamoDB
    dynamodb_url: str = ""
    dynamodb_engine: str = "moto"
    #: the DynamoDB Local java process (None with moto)
    dynamodb_pid: int | None = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def client(self, service: str) -> Any:
        """A boto3 client bound to this stack's local AWS (DynamoDB: its DynamoDB engine)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.dynamodb_url if service in ("dynamodb", "dynamodbstreams") else self.moto_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def cleanup(self) -> None:
        """Remove the ready file and the output log (after :meth:`stop`)."""
        shutil.rmtree(self.log_path.parent, ignore_errors=True)

    def stop(self, timeout: float = 15) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_local_stack(
    args: Sequence[str] = (),
    *,
    port: int | None = None,
    cwd: Path = REPO_ROOT,
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> LocalStack:
    """Start ``python -m local --port PORT --ready-file F ARGS`` and wait until F appears.

    Raises RuntimeError (with the process's output) if it exits or is not ready within ``timeout``.
    """
    workdir = Path(tempfile.mkdtemp(prefix="local-stack-"))
    ready = workdir / "ready.json"
    log_path = workdir / "output.log"
    port = free_port() if port is None else port
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "shared"), str(REPO_ROOT)])
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    command = [sys.executable, "-m", "local", "--port", str(port), "--ready-file", str(ready), *args]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, cwd=cwd, env=child_env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
                process.wait(5)
            output = log_path.read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(
                f"`{' '.join(command)}` did not become ready (exit code {process.returncode}):\n{output}"
            )
        time.sleep(0.05)
    info = json.loads(ready.read_text(encoding="utf-8"))
    return LocalStack(
        api_url=info["api_url"],
        api_key=info.get("api_key"),
        moto_url=info["moto_url"],
        outbox_url=info["outbox_url"],
        pid=int(info["pid"]),
        process=process,
        log_path=log_path,
        dynamodb_url=info.get("dynamodb_url") or info["moto_url"],
        dynamodb_engine=info.get("dynamodb_engine", "moto"),
        dynamodb_pid=info.get("dynamodb_pid"),
    )
