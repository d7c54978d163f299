"""`python -m bench` (`make bench`, `make bench QUICK=1`): every benchmark, side by side, in one run.

    python -m bench                      # all sections, a few minutes on 2 cores
    QUICK=1 python -m bench              # fewer samples, well under two minutes
    python -m bench coldstart dynamo     # only these sections (coldstart dynamo latency pdf reminders local einvoice webhooks heat)

Prints ONE table (median, p95, ratio to the baseline measured in the same run, target met or not),
then the notes, and writes bench/results/<timestamp>.json and bench/results/latest.json.
Benchmarks are not tests: a missed target is reported, never raised. The exit code is 1 only when a
section crashed.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT / "shared"), str(ROOT)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

# In-process sections talk to moto only; never to a real account, and keep stdout for the table.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_NAMESPACE": "InvoicingBench",
        "POWERTOOLS_DEV": "false",
    }
)
for leaked in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
    os.environ.pop(leaked, None)

from bench.runner import Report, Row, format_table, machine_info, write_results  # noqa: E402

SECTIONS = ("coldstart", "dynamo", "latency", "pdf", "reminders", "local", "einvoice", "webhooks", "heat")
TITLES = {
    "coldstart": "1 cold start",
    "dynamo": "2 dynamodb",
    "latency": "3 latency (moto)",
    "pdf": "4 pdf",
    "reminders": "4 reminders",
    "local": "5 local stack",
    "einvoice": "6 e-invoice",
    "webhooks": "7 webhooks",
    "heat": "8 partition heat",
}


REMINDERS_CHILD = """
import json, os, resource, sys
limit = min(8 << 30, os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # a runaway section fails instead of the machine
from bench.reminders import run
rows = run(sys.argv[1] == "1")
print("BENCH-ROWS " + json.dumps(rows, default=str))
"""


def _run_reminders(report: Report, quick: bool) -> None:
    """`bench/reminders.py` (written separately) runs in a child process with a time and memory cap, so
    that a runaway section cannot take the whole run (or the machine) down with it."""
    if importlib.util.find_spec("bench.reminders") is None:
        report.note("reminders: skipped: bench/reminders.py does not exist yet (another developer writes it)")
        return
    timeout = 300 if quick else 900
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "shared"), str(ROOT)]))
    try:
        done = subprocess.run(
            [sys.executable, "-c", REMINDERS_CHILD, "1" if quick else "0"],
            cwd=str(ROOT),
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        report.note(f"reminders: STOPPED after {timeout} s (bench/reminders.py did not finish)")
        return
    marked = [line for line in done.stdout.splitlines() if line.startswith("BENCH-ROWS ")]
    if done.returncode != 0 or not marked:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        tail = " | ".join(lines[-3:])[-400:]
        report.note(f"reminders: FAILED (exit {done.returncode}, memory capped at 8 GB / half the RAM): {tail}")
        return
    for item in json.loads(marked[-1][len("BENCH-ROWS ") :]):
        report.add(Row.from_dict(dict(item), TITLES["reminders"]))


def run_section(name: str, report: Report, quick: bool) -> None:
    if name == "reminders":
        _run_reminders(report, quick)
        return
    module = importlib.import_module(
        {
            "coldstart": "bench.coldstart",
            "dynamo": "bench.dynamo",
            "latency": "bench.latency",
            "pdf": "bench.pdf",
            "einvoice": "bench.einvoice",
            "webhooks": "bench.webhooks",
            "heat": "bench.heat",
        }.get(name, "bench.local_stack")
    )
    module.run(report, quick)


def _load(machine: dict[str, object]) -> str:
    start = machine.get("loadavg_at_start")
    end = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    first = f"{start[0]:.1f}" if isinstance(start, list) else "?"
    return f"{first} at start, {end:.1f} at end" if end is not None else first


def main(argv: list[str]) -> int:
    quick = os.environ.get("QUICK", "").strip().lower() not in ("", "0", "false", "no")
    wanted = [a for a in argv if not a.startswith("-")] or list(SECTIONS)
    unknown = [w for w in wanted if w not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}", file=sys.stderr)
        return 2
    machine = machine_info()
    report = Report(quick=quick)
    print(
        f"bench: {'QUICK ' if quick else ''}run of {', '.join(wanted)} on {machine['cores']} cores, "
        f"{machine['cpu_model']}, Python {machine['python']}",
        file=sys.stderr,
        flush=True,
    )
    for name in SECTIONS:
        if name not in wanted:
            continue
        started = time.perf_counter()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        try:
            run_section(name, report, quick)
        except Exception as exc:
            detail = traceback.format_exc()
            report.errors.append(f"{name}: {exc!r}\n{detail}")
            report.note(f"{name}: CRASHED: {exc!r} (traceback in the JSON results)")
            print(detail, file=sys.stderr)
        print(f"bench: {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)

    path = write_results(report, machine)
    print()
    print(
        f"Benchmarks ({'QUICK' if quick else 'full'} run, {machine['cores']} cores, {machine['cpu_model']}, "
        f"Python {machine['python']}; {time.time() - report.started:.0f} s; load average {_load(machine)}). "
        "Ratios are the figures that count."
    )
    print(format_table(report.rows))
    if report.notes:
        print()
        for text in report.notes:
            print(f"- {text}")
    print()
    print(f"results: {path.relative_to(ROOT)} (and bench/results/latest.json)")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
