"""The HTTP front door: API Gateway routes plus local-only routes under ``/_local/``."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .apigw import HttpRequest, HttpResponse
from .functions import FunctionError

if TYPE_CHECKING:
    from .runtime import LocalRuntime

log = logging.getLogger("local")
LOCAL_PREFIX = "/_local"


def _json(status: int, payload: Any) -> HttpResponse:
    body = json.dumps(payload, indent=2, default=str).encode()
    return HttpResponse(status, [("Content-Type", "application/json")], body)


class LocalRoutes:
    """``/_local/*``: outbox, schedules, resources, direct invocation, health."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime

    def handle(self, request: HttpRequest) -> HttpResponse:
        path = request.path.split("?", 1)[0].rstrip("/")
        method = request.method.upper()
        rt = self.runtime
        if path == f"{LOCAL_PREFIX}/health" and method == "GET":
            return _json(200, {"status": "ok"})
        if path == f"{LOCAL_PREFIX}/outbox" and method == "GET":
            return _json(200, rt.outbox())
        if path == f"{LOCAL_PREFIX}/outbox" and method == "DELETE":
            rt.aws.clear_sent_messages()
            return _json(200, {"cleared": True})
        if path == f"{LOCAL_PREFIX}/outbox.html" and method == "GET":
            from .outbox import outbox_html

            return HttpResponse(200, [("Content-Type", "text/html; charset=utf-8")], outbox_html(rt.outbox()).encode())
        if path == f"{LOCAL_PREFIX}/resources" and method == "GET":
            return _json(200, rt.describe())
        if path == f"{LOCAL_PREFIX}/schedules":
            if method == "GET":
                return _json(200, [t.describe() for t in rt.schedule_targets])
            if method == "POST":
                return _json(200, rt.fire_schedules())
        match = re.fullmatch(rf"{LOCAL_PREFIX}/schedules/([A-Za-z0-9.]+)", path)
        if match and method == "POST":
            try:
                fired = rt.fire_schedules(match.group(1))
            except KeyError:
                return _json(404, {"error": f"no schedule {match.group(1)}"})
            if len(fired) == 1:
                item = fired[0]
                return _json(200 if "result" in item else 502, item.get("result", item))
            return _json(200, fired)
        match = re.fullmatch(rf"{LOCAL_PREFIX}/items/([A-Za-z0-9]+)", path)
        if match and method == "GET":
            query = dict(urllib.parse.parse_qsl(request.query))
            try:
                return _json(
                    200, rt.table_items(match.group(1), item_type=query.get("type"), limit=int(query.get("limit", 100)))
                )
            except KeyError:
                return _json(404, {"error": f"no table {match.group(1)}"})
            except ValueError:
                return _json(400, {"error": "limit must be a number"})
        match = re.fullmatch(rf"{LOCAL_PREFIX}/invoke/([A-Za-z0-9]+)", path)
        if match and method == "POST":
            function_id = match.group(1)
            if function_id not in rt.functions:
                return _json(404, {"error": f"no function {function_id}"})
            try:
                event = json.loads(request.body or b"{}")
            except ValueError:
                return _json(400, {"error": "the body must be a JSON event"})
            try:
                return _json(200, rt.invoke(function_id, event))
            except FunctionError as exc:
                return _json(502, exc.as_payload())
        return _json(404, {"error": "no such local route", "routes": self.index()})

    @staticmethod
    def index() -> list[str]:
        return [
            "GET  /_local/health",
            "GET  /_local/outbox",
            "GET  /_local/outbox.html",
            "DELETE /_local/outbox",
            "GET  /_local/resources",
            "GET  /_local/schedules",
            "POST /_local/schedules",
            "POST /_local/schedules/{FunctionId|FunctionId.EventId|EventId}",
            "POST /_local/invoke/{FunctionId}",
            "GET  /_local/items/{TableLogicalId}?type=&limit=  (e.g. InvoicesTable?type=WebhookDelivery)",
        ]


class _Handler(BaseHTTPRequestHandler):
    # small responses would otherwise wait ~40 ms on Nagle + delayed ACK
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server_version = "local-apigw"
    runtime: LocalRuntime  # set on the subclass made by make_server

    def log_message(self, format: str, *args: Any) -> None:
        # Paths can carry bearer secrets (/pay/<token>): log the first segment only.
        line = format % args
        line = re.sub(
            r'"(\S+) (/[^/ ?"]*)[^ "]*',
            lambda m: (
                f'"{m.group(1)} {m.group(2)}/...' if m.group(0).count("/") > 1 or "?" in m.group(0) else m.group(0)
            ),
            line,
        )
        log.info("%s %s", self.address_string(), line)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        path, _, query = self.path.partition("?")
        request = HttpRequest(
            method=self.command,
            path=path,
            query=query,
            headers=list(self.headers.items()),
            body=self._read_body(),
            source_ip=self.client_address[0],
        )
        try:
            if path == LOCAL_PREFIX or path.startswith(LOCAL_PREFIX + "/"):
                response = LocalRoutes(self.runtime).handle(request)
            else:
                response = self.runtime.gateway.handle(request)
        except Exception:
            log.exception("local gateway error")
            response = _json(500, {"message": "local runtime error (see its log)"})
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, CONNECT, PROPFIND...) goes to the gateway too, which answers it like
        # API Gateway answers a method no route declares (MISSING_AUTHENTICATION_TOKEN, mapped by the
        # template's GatewayResponses), not with http.server's own 501 HTML page.
        if name.startswith("do_") and name[3:].isalpha() and name[3:].isupper():
            return self._dispatch
        raise AttributeError(name)


class _Server(ThreadingHTTPServer):
    # the listen backlog (socketserver's default is 5): a billing run or a test opening 50
    # connections at once would otherwise see resets before a thread accepts them
    request_queue_size = 512

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that hangs up early (`curl ... | head`, a browser tab closed) is no server error
        if isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError):
            return
        super().handle_error(request, client_address)


class LocalHttpServer:
    def __init__(self, runtime: LocalRuntime, host: str, port: int) -> None:
        handler = type("LocalHandler", (_Handler,), {"runtime": runtime})
        self.httpd = _Server((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="local-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()
