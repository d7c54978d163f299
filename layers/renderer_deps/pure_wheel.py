#!/usr/bin/env python3
"""Turn a wheel whose only compiled part is an optional speed-up into a pure `py3-none-any` wheel.

    pure_wheel.py dist/websockets-10.4-cp311-cp311-linux_x86_64.whl OUTDIR

pyppeteer 2.0.0 pins websockets 10.x, which has no cp312 wheel. websockets ships its C extension
(`websockets/speedups*.so`, a faster frame mask) as optional and falls back to pure Python when it
cannot be imported. So a wheel built here for the local interpreter, minus that file and re-tagged,
is a correct wheel for any CPython 3, and pip can resolve the whole layer for Lambda's python3.12
with `--only-binary=:all:` (the wheel is offered through `--find-links`).
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
import zipfile
from pathlib import Path

COMPILED = re.compile(r"\.(so|pyd)$")


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def make_pure(source: Path, out_dir: Path) -> Path:
    name, version = source.name.split("-")[:2]
    target = out_dir / f"{name}-{version}-py3-none-any.whl"
    dist_info = f"{name}-{version}.dist-info"
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        records: list[str] = []
        for info in src.infolist():
            if COMPILED.search(info.filename) or info.filename == f"{dist_info}/RECORD":
                continue
            data = src.read(info)
            if info.filename == f"{dist_info}/WHEEL":
                text = data.decode()
                text = re.sub(r"^Root-Is-Purelib: .*$", "Root-Is-Purelib: true", text, flags=re.M)
                text = re.sub(r"^Tag: .*\n?", "", text, flags=re.M).rstrip("\n") + "\nTag: py3-none-any\n"
                data = text.encode()
            dst.writestr(info.filename, data)
            records.append(f"{info.filename},{_record_hash(data)},{len(data)}")
        records.append(f"{dist_info}/RECORD,,")
        dst.writestr(f"{dist_info}/RECORD", "\n".join(records) + "\n")
    return target


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(make_pure(Path(sys.argv[1]), Path(sys.argv[2])))
