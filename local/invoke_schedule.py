"""``python -m local.invoke_schedule --port N [ID ...]``: fire schedules of a running ``make dev`` now.

Without ids every schedule fires; an id is a function logical id, an event id or ``Function.Event``.
Prints the handler results as JSON. Uses only the standard library (no AWS, no moto).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request


def fire(base_url: str, selector: str | None = None, timeout: float = 120) -> tuple[int, object]:
    url = f"{base_url.rstrip('/')}/_local/schedules" + (f"/{selector}" if selector else "")
    request = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body or b"null")
        except ValueError:
            return exc.code, body.decode("utf-8", "replace")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.invoke_schedule", description=__doc__)
    parser.add_argument("ids", nargs="*", help="schedules to fire (default: all)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 3000)))
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    base = f"http://{args.host}:{args.port}"
    status = 0
    for selector in args.ids or [None]:
        try:
            code, payload = fire(base, selector)
        except urllib.error.URLError as exc:
            print(f"cannot reach the local stack at {base} ({exc.reason}); is `make dev` running?", file=sys.stderr)
            return 2
        print(json.dumps(payload, indent=2))
        failed = isinstance(payload, list) and any(isinstance(i, dict) and "error" in i for i in payload)
        if code >= 400 or failed:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
