#!/usr/bin/env python3
"""Fetch @sparticuz/chromium from npm and unpack it, or copy its brotli files for the Lambda layer.

    prepare_chromium.py --version 153.0.0 --dest .cache/chromium/153.0.0   # chromium, lib/, fonts/ ...
    prepare_chromium.py --version 153.0.0 --br-only build/chromium          # the four .br files only

The npm tarball is kept in the cache folder (default: .cache/chromium next to this repo, or
$CHROMIUM_CACHE_DIR), so repeated runs never download again. Both modes are idempotent.
`--br-only` needs neither the `brotli` package nor the invoicing package: the SAM layer build runs it
with whatever python3 is on the PATH.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import npm_pack  # scripts/ is on sys.path: these run as scripts

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "@sparticuz/chromium"
# All of the package's bin/ (see BUNDLE_FILES in shared/invoicing/adapters/chromium_install.py: the
# software GL in swiftshader.tar.br is needed even for PDFs).
BR_FILES = ("chromium.br", "al2023.tar.br", "fonts.tar.br", "swiftshader.tar.br")


def fetch_tarball(version: str, cache_dir: Path) -> Path:
    """`npm pack` the package into the cache once; later runs reuse the file."""
    return npm_pack.fetch_tarball(
        PACKAGE, version, cache_dir, name=f"sparticuz-chromium-{version}.tgz", who="prepare_chromium"
    )


def extract_br_files(tarball: Path, dest: Path) -> None:
    """Copy package/bin/<name>.br out of the npm tarball into `dest` (skipping files already there)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as archive:
        for name in BR_FILES:
            target = dest / name
            member = archive.getmember(f"package/bin/{name}")
            if target.is_file() and target.stat().st_size == member.size:
                continue
            source = archive.extractfile(member)
            if source is None:
                sys.exit(f"prepare_chromium: {member.name} is not a file in {tarball}")
            partial = target.with_suffix(target.suffix + ".partial")
            with source, partial.open("wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            partial.replace(target)


def unpack(tarball: Path, dest: Path) -> Path:
    """Unpack with the same code the renderer runs in Lambda, so `make chromium` exercises it."""
    sys.path.insert(0, str(REPO_ROOT / "shared"))
    from invoicing.adapters.chromium import is_unpacked, unpack_bundle

    if is_unpacked(dest):
        executable = unpack_bundle(dest, dest).executable  # a no-op: the bundle is complete
        executable.touch()  # newer than this script, so make sees the target as up to date
        return executable
    with tempfile.TemporaryDirectory(dir=tarball.parent) as tmp:
        extract_br_files(tarball, Path(tmp))
        return unpack_bundle(Path(tmp), dest).executable


def main(argv: list[str] | None = None) -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--version", required=True, help="@sparticuz/chromium version, e.g. 153.0.0")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dest", type=Path, help="unpack chromium, lib/ and fonts/ into this folder")
    mode.add_argument("--br-only", type=Path, metavar="DEST", help="only copy the .br files into DEST")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("CHROMIUM_CACHE_DIR") or REPO_ROOT / ".cache" / "chromium"),
        help="where the npm tarball is kept (default: $CHROMIUM_CACHE_DIR or <repo>/.cache/chromium)",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    tarball = fetch_tarball(args.version, args.cache_dir.resolve())
    if args.br_only is not None:
        extract_br_files(tarball, args.br_only)
        print(f"prepare_chromium: {', '.join(BR_FILES)} in {args.br_only}", file=sys.stderr)
    else:
        executable = unpack(tarball, args.dest.resolve())
        print(f"prepare_chromium: {executable} ready", file=sys.stderr)
    print(f"prepare_chromium: done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
