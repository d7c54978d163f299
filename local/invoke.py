"""``python -m local.invoke FN EVENT``: invoke one function with a sample event (``make invoke``).

Like ``sam local invoke``, without Docker: the embedded AWS starts, the template's resources are
created, the function runs in-process once, its result is printed as JSON on stdout, and everything
stops. Logs go to stderr. The exit status is 1 when the function fails (the Lambda error payload is
printed instead of a result).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

from .__main__ import common_arguments, configure_logging, parse_parameters
from .functions import FunctionError
from .runtime import LocalRuntime, RuntimeOptions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.invoke", description=__doc__)
    parser.add_argument("function", help="logical id of the function, e.g. ApiFunction")
    parser.add_argument("event", nargs="?", help="JSON event file ('-' for stdin; default: {})")
    common_arguments(parser)
    parser.add_argument(
        "--persist", metavar="DIR", help="use (and update) the data saved by `python -m local --persist DIR`"
    )
    parser.add_argument("--no-timeouts", action="store_true", help="let the handler run past its Timeout")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)

    if args.event in (None, ""):
        event: object = {}
    elif args.event == "-":
        event = json.load(sys.stdin)
    else:
        event = json.loads(Path(args.event).read_text(encoding="utf-8"))

    runtime = LocalRuntime(
        RuntimeOptions(
            template=Path(args.template),
            parameter_overrides=parse_parameters(args.parameter),
            stack_name=args.stack_name,
            serve_http=False,
            poll_queues=False,
            run_schedules=False,
            create_api_key=False,
            enforce_timeouts=not args.no_timeouts,
            persist_dir=Path(args.persist) if args.persist else None,
            only_functions=[args.function],
            dynamodb=args.dynamodb or "auto",
        )
    )
    # like `sam local invoke`: the function's own output goes to stderr, only the result to stdout
    result_out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        try:
            runtime.start()
        except Exception as exc:
            logging.getLogger("local").error("could not start: %s", exc)
            return 2
        try:
            result = runtime.invoke(args.function, event)
        except FunctionError as exc:
            print(json.dumps(exc.as_payload(), indent=2), file=result_out)
            return 1
        finally:
            runtime.stop()
    print(json.dumps(result, indent=2), file=result_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
