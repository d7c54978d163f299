"""DynamoDB Local (AWS's own engine, a Java server) as the local runtime's DynamoDB.

moto breaks conditional atomicity unless every request is serialized (see aws.py); DynamoDB Local is
atomic by itself, so DynamoDB traffic goes to it without any lock. It comes from the npm package
`amplify-dynamodb-simulator` (`make dynamodb-local`, scripts/prepare_dynamodb_local.py); nothing is
downloaded at run time.

The runtime owns the Java process: it starts in :meth:`DynamoDBLocal.start`, stops in
:meth:`DynamoDBLocal.stop`, at interpreter exit, and, on Linux, dies with the process that started
it (``PR_SET_PDEATHSIG``), so a crashed or killed runtime leaves no orphan ``java`` behind. Linux sends
that signal when the *thread* that started the process ends: start the runtime from a thread that
lives as long as it (``python -m local`` and the tests use the main thread).

DynamoDB Local listens on every interface (it has no bind option), on a free port; clients use
127.0.0.1.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

REPO_ROOT = Path(__file__).resolve().parent.parent
#: version of the npm package `amplify-dynamodb-simulator` that carries DynamoDB Local 1.25.1 (the Makefile's
#: DYNAMODB_LOCAL_VERSION)
PACKAGE_VERSION = "2.9.30"
JAR = "DynamoDBLocal.jar"
START_TIMEOUT = 60.0
_PR_SET_PDEATHSIG = 1


def default_dir() -> Path:
    """Where `make dynamodb-local` unpacks the engine ($DYNAMODB_LOCAL_DIR overrides it)."""
    configured = os.environ.get("DYNAMODB_LOCAL_DIR")
    if configured:
        return Path(configured)
    return REPO_ROOT / ".cache" / "dynamodb-local" / PACKAGE_VERSION


class DynamoDBLocalUnavailable(RuntimeError):
    """Java or the jar is missing, or the engine did not start: the message says which, in one line."""


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that asks Linux to SIGKILL the child when the thread that started it ends."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os._exit(1)

    return preexec


class DynamoDBLocal:
    """One DynamoDB Local server on a free loopback port: in memory, or in ``db_path`` (persistent)."""

    def __init__(self, directory: Path | None = None, *, java: str | None = None, host: str = "127.0.0.1") -> None:
        self.directory = Path(directory) if directory is not None else default_dir()
        self.java = java if java is not None else shutil.which("java")
        self.host = host
        self.port = 0
        self.db_path: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- availability
    def unavailable_reason(self) -> str | None:
        """None when the engine can start here, else why not (one line)."""
        if not (self.directory / JAR).is_file():
            return f"DynamoDB Local is not unpacked in {self.directory} (run `make dynamodb-local`)"
        if not self.java:
            return "java is not installed (apt-get install default-jre-headless)"
        return None

    @property
    def url(self) -> str:
        if self.process is None:
            raise RuntimeError("DynamoDB Local is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    # ---------------------------------------------------------------- lifecycle
    def launch(self, db_path: Path | None = None) -> DynamoDBLocal:
        """Start the Java process and return at once; :meth:`wait_ready` waits for it to answer."""
        reason = self.unavailable_reason()
        if reason is not None:
            raise DynamoDBLocalUnavailable(reason)
        assert self.java is not None
        self.port = _free_port(self.host)
        storage = ["-inMemory"]
        if db_path is not None:
            db_path.mkdir(parents=True, exist_ok=True)
            self.db_path = db_path
            storage = ["-dbPath", str(db_path)]
        command = [
            self.java,
            f"-Djava.library.path={self.directory / 'DynamoDBLocal_lib'}",
            "-jar",
            str(self.directory / JAR),
            *storage,
            "-sharedDb",  # one database whatever the credentials and region of a client
            "-disableTelemetry",  # it would send usage data to AWS (see DDB_LOCAL_TELEMETRY below)
            "-port",
            str(self.port),
        ]
        # its working folder (and its output): temporary, so the shared cache folder stays read-only
        self._workdir = tempfile.TemporaryDirectory(prefix="dynamodb-local-")
        self._log = open(Path(self._workdir.name) / "output.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            command,
            # -disableTelemetry alone still sets telemetry up (an installation id written to the working
            # folder, a Pinpoint client); DDB_LOCAL_TELEMETRY=0 skips all of it
            env={**os.environ, "DDB_LOCAL_TELEMETRY": "0"},
            cwd=self._workdir.name,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # its own session: Ctrl-C in `make dev` reaches the runtime, which stops it after its last request
            start_new_session=True,
            preexec_fn=_die_with_parent(),  # no thread starts between fork and exec
        )
        atexit.register(self.stop)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> DynamoDBLocal:
        """Block until the server answers HTTP; on failure stop it and raise DynamoDBLocalUnavailable."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                output = self.output()
                self.stop()
                raise DynamoDBLocalUnavailable(
                    f"DynamoDB Local exited with code {self.process.returncode} at start: {_last_line(output)}"
                )
            try:
                with urllib.request.urlopen(self.url, timeout=1):
                    pass
                return self
            except urllib.error.HTTPError:  # 400 "missing authentication token": it answers
                return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise DynamoDBLocalUnavailable(f"DynamoDB Local did not answer within {timeout:.0f} s")
            time.sleep(0.05)

    def start(self, db_path: Path | None = None, timeout: float = START_TIMEOUT) -> DynamoDBLocal:
        return self.launch(db_path).wait_ready(timeout)

    def stop(self) -> None:
        """Terminate the Java process (SIGTERM, then SIGKILL) and wait for it. Idempotent."""
        with self._lock:
            process = self.process
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    process.wait(5)
            if self._log is not None:
                with contextlib.suppress(OSError):
                    self._log.close()
                self._log = None
            if self._workdir is not None:
                self._workdir.cleanup()
                self._workdir = None
        atexit.unregister(self.stop)

    def output(self) -> str:
        """What the Java process printed so far."""
        if self._log is None:
            return ""
        try:
            self._log.flush()
            return Path(self._log.name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
