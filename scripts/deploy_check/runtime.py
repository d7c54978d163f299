"""Steps 6-8 of `make deploy-check`: every handler imports from the built artifacts under CPython
3.12 laid out as Lambda lays it out, the renderer prints a real PDF from its layers' Chromium,
import times against a bare `import boto3`, .pyc coverage, and sizes against Lambda's limit."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts.deploy_check.layout import (
    FunctionSpec,
    build_layout,
    function_specs,
    lambda_environment,
    missing_pyc,
    tree_size,
)

PROBE = Path(__file__).with_name("probe.py")
LAMBDA_LIMIT = 250 * 1024 * 1024  # unzipped function code + all its layers
IMPORT_TARGET = 3.0  # slowest handler import <= 3x a bare `import boto3`
RUNS = 3
MIB = 1024 * 1024


@dataclass
class Report:
    failures: int = 0

    def line(self, step: str, ok: bool | None, text: str) -> None:
        status = "ok" if ok else "FAIL" if ok is False else "MISS"
        print(f"{step}: {status}, {text}", flush=True)
        if ok is False:
            self.failures += 1

    @staticmethod
    def detail(text: str) -> None:
        print(f"  {text}", flush=True)


def find_python312() -> str | None:
    candidates = [os.environ.get("PY312", "")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12.*/bin/python3.12")), reverse=True)
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
            )
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 12)":
            return candidate
    return None


def _probe(python: str, args: list[str], env: dict[str, str] | None = None) -> dict:
    """Run probe.py in a fresh isolated interpreter; its JSON is the last stdout line (logs come first)."""
    cmd = [python, "-I", "-S", "-B", str(PROBE), *args]
    done = subprocess.run(
        cmd, env=env if env is not None else {"PATH": "/usr/bin:/bin"}, capture_output=True, text=True
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(tail)
    return json.loads(lines[-1])


@dataclass(frozen=True)
class Timing:
    """Best of RUNS fresh processes: CPU time (user + system of the importing process, which a busy
    machine barely moves) and wall clock (what a cold start waits, noisy when cores are shared)."""

    cpu: float
    wall: float

    @classmethod
    def best(cls, runs: list[dict]) -> Timing:
        return cls(min(r["import_cpu_s"] for r in runs), min(r["import_s"] for r in runs))

    def __str__(self) -> str:
        return f"{self.cpu:.3f} s cpu / {self.wall:.3f} s wall"


def _best_imports(python: str, spec: FunctionSpec, build_dir: Path, root: Path, runtime: Path) -> tuple[Timing, Timing]:
    """With the built .pyc and without any; the two alternate, so a cold page cache or a busy
    neighbour does not favour one of them."""
    runs: dict[bool, list[dict]] = {True: [], False: []}
    probes = {}
    for with_pyc in (True, False):
        layout = build_layout(spec, build_dir, root / ("pyc" if with_pyc else "no-pyc"), with_pyc=with_pyc)
        args = ["import", str(layout.task), str(layout.opt), str(runtime), spec.module, spec.handler]
        probes[with_pyc] = (args, lambda_environment(spec, layout, runtime))
    for _ in range(RUNS):
        for with_pyc, (args, env) in probes.items():
            runs[with_pyc].append(_probe(python, args, env))
    return Timing.best(runs[True]), Timing.best(runs[False])


def _render(python: str, spec: FunctionSpec, build_dir: Path, root: Path, runtime: Path, out: Path) -> dict:
    layout = build_layout(spec, build_dir, root, with_pyc=True)
    env = lambda_environment(spec, layout, runtime)
    args = ["import", str(layout.task), str(layout.opt), str(runtime), spec.module, spec.handler, "--render", str(out)]
    try:
        return _probe(python, args, env)
    finally:
        shutil.rmtree(layout.tmp, ignore_errors=True)  # the unpacked Chromium: ~300 MB


def check_runtime(report: Report, template: Path, build_dir: Path, work: Path, runtime: Path) -> None:
    specs = function_specs(template, build_dir)
    missing = [s.name for s in specs if not s.code_dir.is_dir()] + sorted(
        {layer for s in specs for layer in s.layers if not (build_dir / layer).is_dir()}
    )
    if missing:
        report.line("imports", False, f"not built: {', '.join(missing)} (run `make build`)")
        return
    python = find_python312()
    if python is None:
        report.line("imports", False, "no cpython 3.12 (pyenv versions/3.12.*/bin/python3.12 or PY312): cannot check")
    elif not (runtime / "boto3").is_dir():
        report.line("imports", False, f"no runtime boto3 in {runtime} (run `make deploy-tools`)")
    else:
        _imports(report, python, specs, build_dir, work, runtime)
    _bytecode(report, specs, build_dir)
    _sizes(report, specs, build_dir)


def _imports(
    report: Report, python: str, specs: list[FunctionSpec], build_dir: Path, work: Path, runtime: Path
) -> None:
    baseline_runs = [_probe(python, ["baseline", str(runtime)]) for _ in range(RUNS)]
    version, boto3 = baseline_runs[0], Timing.best(baseline_runs)
    timings: dict[str, tuple[Timing, Timing]] = {}
    errors: dict[str, str] = {}
    for spec in specs:
        root = work / "lambda" / spec.name
        try:
            timings[spec.name] = _best_imports(python, spec, build_dir, root, runtime)
        except RuntimeError as exc:
            errors[spec.name] = str(exc)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    ok = not errors
    report.line(
        "imports",
        ok,
        f"{len(timings)} of {len(specs)} handlers import under python {version['python']} "
        f"from the built task folder and layers (boto3 {version['boto3']} from the runtime folder)",
    )
    for name, message in errors.items():
        report.detail(f"{name}: {message}")
    if timings:
        report.detail(f"baseline: bare import boto3 {boto3} (best of {RUNS} fresh processes each)")
        for name, (with_pyc, without) in timings.items():
            report.detail(
                f"{name}: {with_pyc} with .pyc = {with_pyc.cpu / boto3.cpu:.1f}x boto3 (cpu); {without} without .pyc"
            )
        slowest = max(timings, key=lambda n: timings[n][0].cpu)
        ratio = timings[slowest][0].cpu / boto3.cpu
        report.line(
            "import-target",
            True if ratio <= IMPORT_TARGET else None,
            f"slowest {slowest} {ratio:.1f}x boto3 in cpu time (target <= {IMPORT_TARGET:g}x; reported, not enforced)",
        )
        total_with = sum(t[0].cpu for t in timings.values())
        total_without = sum(t[1].cpu for t in timings.values())
        report.line(
            "pyc-speedup",
            total_with < total_without,
            f"all handlers' imports {total_without:.2f} s cpu without .pyc -> {total_with:.2f} s with",
        )
    renderers = [s for s in specs if "ChromiumLayer" in s.layers]
    for spec in renderers:
        out = work / f"{spec.name}.pdf"
        out.unlink(missing_ok=True)
        try:
            result = _render(python, spec, build_dir, work / "lambda" / spec.name, runtime, out)
        except RuntimeError as exc:
            report.line("render", False, f"{spec.name}: {exc}")
            continue
        finally:
            shutil.rmtree(work / "lambda" / spec.name, ignore_errors=True)
        head_ok = out.is_file() and out.read_bytes()[:4] == b"%PDF"
        fonts_ok, fonts_note = _layer_fonts_used(out) if head_ok else (False, "")
        report.line(
            "render",
            head_ok and fonts_ok,
            f"{spec.name} printed a {result['pdf_bytes']} byte pdf with its layers' chromium in "
            f"{result['render_s']:.2f} s (cold: unpack to tmp + launch){fonts_note} -> {out}",
        )
        report.line(
            "facturx",
            bool(result.get("facturx_has_xml")),
            f"{spec.name} made it a {result.get('facturx_bytes')} byte Factur-X PDF (CII embedded as factur-x.xml) "
            f"with its layers' factur-x, pikepdf and lxml in {float(result.get('facturx_s', 0)):.2f} s",
        )


def _layer_fonts_used(pdf: Path) -> tuple[bool, str]:
    """The probe prints Japanese and Arabic: the layer's Noto fonts must be what drew them.

    Noto Sans Arabic shows by name; Noto Sans CJK (CFF outlines) is embedded as Type 3 fonts.
    """
    if shutil.which("pdffonts") is None:
        return True, "; fonts not checked (no pdffonts: apt-get install poppler-utils)"
    listing = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=False).stdout
    arabic, cjk = "NotoSansArabic" in listing, "Type 3" in listing
    if arabic and cjk:
        return True, "; Japanese and Arabic drawn with the layer's Noto fonts"
    return False, f"; the layer's Noto fonts were not used (Arabic font: {arabic}, CJK font: {cjk})"


def _bytecode(report: Report, specs: list[FunctionSpec], build_dir: Path) -> None:
    folders = sorted({s.name for s in specs} | {layer for s in specs for layer in s.layers})
    counts = {name: missing_pyc(build_dir / name) for name in folders}
    sources = sum(c[0] for c in counts.values())
    missing = sum(c[1] for c in counts.values())
    report.line(
        "bytecode",
        missing == 0,
        f"{sources - missing} of {sources} .py files in {len(folders)} built folders have a cpython-312 .pyc",
    )
    for name, (total, lacking) in counts.items():
        if lacking:
            report.detail(f"{name}: {lacking} of {total} without .pyc (the build compiles with python3.12)")


def _sizes(report: Report, specs: list[FunctionSpec], build_dir: Path) -> None:
    folders = {s.name for s in specs} | {layer for s in specs for layer in s.layers}
    sizes = {name: tree_size(build_dir / name) for name in folders}
    totals = {s.name: sizes[s.name] + sum(sizes[layer] for layer in s.layers) for s in specs}
    largest = max(totals, key=totals.__getitem__)
    over = [name for name, size in totals.items() if size > LAMBDA_LIMIT]
    report.line(
        "size",
        not over,
        f"largest {largest} {totals[largest] / MIB:.1f} mib unzipped of lambda's 250 mib (code + layers)",
    )
    for spec in specs:
        parts = ", ".join(f"{layer} {sizes[layer] / MIB:.1f}" for layer in spec.layers)
        report.detail(f"{spec.name}: {totals[spec.name] / MIB:.1f} mib = code {sizes[spec.name] / MIB:.2f} + {parts}")


if __name__ == "__main__":  # pragma: no cover - the package's __main__ runs every step
    sys.exit("run python -m scripts.deploy_check")
