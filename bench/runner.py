"""Timing helpers and the one results table of `python -m bench`.

Every section adds `Row`s to a `Report`. A row holds the median and p95 of its samples (in `unit`),
and the ratio to a baseline measured in the same run. These machines are noisy: ratios are the figures
that count, absolute numbers only describe this machine on this day. Nothing here asserts anything: a
missed target is printed, never raised.

A section written elsewhere (e.g. `bench/reminders.py`, `run(quick) -> list[dict]`) hands back plain
dicts; `Row.from_dict` accepts the field names below (`name` for `case`, `*_ms` / `*_s` medians).
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ---------------------------------------------------------------- statistics
def median(samples: Iterable[float]) -> float:
    values = list(samples)
    return statistics.median(values) if values else math.nan


def percentile(samples: Iterable[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default): p95 of 5 samples is near the max."""
    values = sorted(samples)
    if not values:
        return math.nan
    pos = (len(values) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)


def p95(samples: Iterable[float]) -> float:
    return percentile(samples, 95)


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, or None when either is missing or the baseline is zero."""
    if value is None or baseline is None or not baseline or math.isnan(value) or math.isnan(baseline):
        return None
    return value / baseline


def measure(
    fn: Callable[[Any], Any],
    n: int,
    *,
    setup: Callable[[], Any] | None = None,
    teardown: Callable[[Any], Any] | None = None,
    warmup: int = 1,
) -> list[float]:
    """Wall-clock seconds of `fn(setup())` for `n` runs after `warmup` untimed ones.

    `setup` and `teardown` are not timed (e.g. a fresh draft for every finalize). The garbage
    collector is run before each timed call, so one call does not pay for the previous one's garbage.
    """
    samples: list[float] = []
    for i in range(warmup + n):
        arg = setup() if setup else None
        gc.collect()
        started = time.perf_counter()
        fn(arg)
        elapsed = time.perf_counter() - started
        if teardown:
            teardown(arg)
        if i >= warmup:
            samples.append(elapsed)
    return samples


def interleaved(cases: dict[str, Callable[[], float]], n: int, *, warmup: int = 1) -> dict[str, list[float]]:
    """Round-robin over the cases (`fn() -> seconds`), so that a noisy moment hits every case alike.

    Each case's callable measures itself and returns seconds (it may time only part of its work).
    """
    out: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(warmup + n):
        for name, fn in cases.items():
            gc.collect()
            value = fn()
            if i >= warmup:
                out[name].append(value)
    return out


# ---------------------------------------------------------------- rows and the report
@dataclass
class Row:
    section: str
    case: str
    median: float | None = None  # in `unit`
    p95: float | None = None
    unit: str = "ms"
    n: int = 0
    baseline: str = ""  # the case this row's ratio is taken against (same run)
    ratio: float | None = None
    target: str = ""  # e.g. "<= 1.3x baseline"
    met: bool | None = None  # None: no target, or not measurable
    note: str = ""
    samples: list[float] = field(default_factory=list)  # in `unit`; kept in the JSON, not printed

    @classmethod
    def timed(cls, section: str, case: str, seconds: list[float], **kwargs: Any) -> Row:
        """A row from samples in seconds, shown in milliseconds."""
        ms = [s * 1000 for s in seconds]
        return cls(section, case, median(ms), p95(ms), "ms", len(ms), samples=ms, **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any], section: str) -> Row:
        """Lenient: for sections written by others (`bench/reminders.py`)."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("section", section)
        values.setdefault("case", str(data.get("name", "?")))
        for suffix, unit, factor in (("_ms", "ms", 1.0), ("_s", "ms", 1000.0)):
            for stat in ("median", "p95"):
                key = f"{stat}{suffix}"
                if key in data and stat not in values:
                    values[stat] = float(data[key]) * factor
                    values.setdefault("unit", unit)
        return cls(**values)


@dataclass
class Report:
    quick: bool
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def note(self, text: str) -> None:
        self.notes.append(text)

    def find(self, section: str, case: str) -> Row | None:
        for row in self.rows:
            if row.section == section and row.case == case:
                return row
        return None


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_table(rows: list[Row]) -> str:
    header = ["section", "case", "n", "median", "p95", "unit", "ratio", "vs baseline", "target", "met", "detail"]
    lines = []
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "NO")
        lines.append(
            [
                r.section,
                r.case,
                str(r.n) if r.n else "",
                _fmt(r.median),
                _fmt(r.p95),
                r.unit,
                f"{r.ratio:.2f}x" if r.ratio is not None else "",
                r.baseline,
                r.target,
                met,
                r.note,
            ]
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    widths[-1] = len(header[-1])  # the detail column is last and runs free
    right = {2, 3, 4, 6}

    def render(cells: list[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            out.append(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([render(header), sep, *(render(line) for line in lines)])


# ---------------------------------------------------------------- machine and results
def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def write_results(report: Report, machine: dict[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "make bench" + (" QUICK=1" if report.quick else ""),
        "argv": sys.argv,
        "quick": report.quick,
        "duration_s": round(time.time() - report.started, 1),
        "machine": {**machine, "loadavg_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "rows": [asdict(r) for r in report.rows],
        "notes": report.notes,
        "errors": report.errors,
    }
    text = json.dumps(payload, indent=2, default=str)
    path = results_dir / f"{stamp}.json"
    path.write_text(text)
    (results_dir / "latest.json").write_text(text)
    return path
