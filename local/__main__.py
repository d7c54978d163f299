"""``python -m local``: run the whole stack locally (``make dev``)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .runtime import DEFAULT_VISIBILITY_TIMEOUT_CAP, LocalRuntime, RuntimeOptions

REPO_ROOT = Path(__file__).resolve().parent.parent


def parse_parameters(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--parameter needs KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def parse_cap(value: str | None) -> int | None:
    if value is None or value == "":
        return DEFAULT_VISIBILITY_TIMEOUT_CAP
    if value.lower() in ("off", "none", "no"):
        return None
    cap = int(value)
    if cap < 0:
        raise SystemExit("--visibility-timeout-cap must be >= 0 (or 'off')")
    return cap


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--template", default=str(REPO_ROOT / "template.yaml"), help="SAM template (default: %(default)s)"
    )
    parser.add_argument(
        "--parameter",
        action="append",
        metavar="KEY=VALUE",
        help="override a template parameter (repeatable); Stage is 'local' unless overridden",
    )
    parser.add_argument("--stack-name", default="local", help="AWS::StackName and the prefix of resource names")
    parser.add_argument(
        "--dynamodb",
        choices=("local", "moto"),
        default=os.environ.get("LOCAL_DYNAMODB") or None,
        help="DynamoDB engine: 'local' = DynamoDB Local (Java, `make dynamodb-local`), 'moto' = moto, one request "
        "at a time. Default: DynamoDB Local when Java and the jar are there, else moto with a warning "
        "(env LOCAL_DYNAMODB)",
    )
    parser.add_argument("--log-level", default=os.environ.get("LOCAL_LOG_LEVEL", "INFO"))


def _pair(value: str, separator: str, usage: str) -> tuple[str, str]:
    left, sep, right = value.partition(separator)
    if not sep or not left:
        raise SystemExit(f"expected {usage}, got {value!r}")
    return left, right


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    common_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="bind address of the API (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PORT", 3000)), help="API port (0: any free port)"
    )
    parser.add_argument(
        "--moto-port", type=int, default=int(os.environ.get("LOCAL_MOTO_PORT", 0)), help="local AWS port (0: free)"
    )
    parser.add_argument(
        "--moto-host",
        default=os.environ.get("LOCAL_MOTO_HOST", "127.0.0.1"),
        help="bind address of the local AWS (default: %(default)s; 0.0.0.0 only for `sam local` containers)",
    )
    parser.add_argument(
        "--visibility-timeout-cap",
        default=os.environ.get("LOCAL_VISIBILITY_TIMEOUT_CAP"),
        metavar="SECONDS",
        help="failed SQS messages come back after min(queue VisibilityTimeout, SECONDS); 'off' keeps the "
        f"queue's own timeout (default {DEFAULT_VISIBILITY_TIMEOUT_CAP}; env LOCAL_VISIBILITY_TIMEOUT_CAP)",
    )
    parser.add_argument(
        "--schedule-speedup",
        type=float,
        default=float(os.environ.get("LOCAL_SCHEDULE_SPEEDUP", 1)),
        metavar="FACTOR",
        help="rate() schedules fire FACTOR times as often (env LOCAL_SCHEDULE_SPEEDUP)",
    )
    parser.add_argument("--no-schedules", action="store_true", help="do not fire schedules by themselves")
    parser.add_argument("--no-queues", action="store_true", help="do not poll SQS event sources")
    parser.add_argument(
        "--persist",
        metavar="DIR",
        default=os.environ.get("LOCAL_PERSIST_DIR") or None,
        help="keep data in DIR: DynamoDB Local's own database in DIR/dynamodb, S3 objects (and DynamoDB items "
        "with --dynamodb moto) restored from DIR at start and saved there at stop",
    )
    parser.add_argument("--no-api-key", action="store_true", help="do not create a local API key at start")
    parser.add_argument("--api-key-scopes", help="comma-separated scopes of the local API key")
    parser.add_argument("--no-timeouts", action="store_true", help="let handlers run past their Timeout (debugging)")
    parser.add_argument(
        "--cognito-user",
        action="append",
        default=[],
        metavar="EMAIL:GROUP",
        help="create this user (with a printed password) in each Cognito user pool of the template; repeatable",
    )
    parser.add_argument(
        "--link",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="print LABEL and the API URL + PATH in the banner",
    )
    parser.add_argument(
        "--ready-file",
        help="write {api_url, api_key, moto_url, dynamodb_url, dynamodb_engine, outbox_url, pid ...} here once ready",
    )
    args = parser.parse_args(argv)
    configure_logging(args.log_level)

    options = RuntimeOptions(
        template=Path(args.template),
        host=args.host,
        port=args.port,
        moto_port=args.moto_port,
        moto_host=args.moto_host,
        parameter_overrides=parse_parameters(args.parameter),
        stack_name=args.stack_name,
        visibility_timeout_cap=parse_cap(args.visibility_timeout_cap),
        schedule_speedup=args.schedule_speedup,
        run_schedules=not args.no_schedules,
        poll_queues=not args.no_queues,
        persist_dir=Path(args.persist) if args.persist else None,
        create_api_key=not args.no_api_key,
        api_key_scopes=[s.strip() for s in args.api_key_scopes.split(",") if s.strip()]
        if args.api_key_scopes
        else None,
        enforce_timeouts=not args.no_timeouts,
        dynamodb=args.dynamodb or "auto",
        cognito_users=[_pair(value, ":", "--cognito-user EMAIL:GROUP") for value in args.cognito_user],
        links=[_pair(value, "=", "--link LABEL=PATH") for value in args.link],
    )
    runtime = LocalRuntime(options)
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        runtime.start()
    except Exception as exc:
        logging.getLogger("local").error("could not start: %s", exc)
        return 1
    print(runtime.banner(), flush=True)
    if args.ready_file:
        ready = Path(args.ready_file)
        tmp = ready.with_name(ready.name + ".tmp")
        tmp.write_text(json.dumps(runtime.ready_info()), encoding="utf-8")
        os.replace(tmp, ready)
    try:
        while not stop_requested.wait(0.5):
            pass
    finally:
        print("stopping ...", file=sys.stderr, flush=True)
        runtime.stop()
        if args.ready_file:
            Path(args.ready_file).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
