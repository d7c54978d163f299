#!/usr/bin/env python3
"""Fetch the Noto fonts the PDFs fall back to (every script Open Sans lacks) and copy them into a folder.

    prepare_fonts.py --dest .cache/fonts/noto-20220127    # local: make fonts, tests, make dev
    prepare_fonts.py --dest .aws-sam/.../fonts             # the ChromiumLayer (/opt/fonts in Lambda)

Source: Debian's `fonts-noto-cjk` and `fonts-noto-core`, fetched with `apt-get download` (no root
needed, nothing installed) and kept in the cache folder (default .cache/fonts, or $FONTS_CACHE_DIR),
so repeated runs never download again. Real TrueType/OpenType files: the fontconfig built into
@sparticuz/chromium does not read the woff2 files that npm's @fontsource packages ship
(docs/decisions.md, "Fonts for every script"). Stdlib only (plus `dpkg-deb`), so the SAM layer build
can run it with whatever python3 is on the PATH. Idempotent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# package name -> pinned version (Debian 12 "bookworm"), and the files taken from it
PACKAGES = {
    "fonts-noto-cjk": "1:20220127+repack1-1",
    "fonts-noto-core": "20201225-1",
}
# One TTC holds Japanese, Simplified and Traditional Chinese and Korean faces with shared glyphs
# (19 MB, far less than four separate fonts); Chromium synthesizes its bold. The other scripts are
# small, so they ship with a real bold.
FILES = {
    "fonts-noto-cjk": ("usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",),
    "fonts-noto-core": tuple(
        f"usr/share/fonts/truetype/noto/NotoSans{script}-{weight}.ttf"
        for script in ("Arabic", "Hebrew", "Thai", "Devanagari")
        for weight in ("Regular", "Bold")
    ),
}
MARKER = ".fonts-complete"
FONTS_ID = "".join(f"{name}={version}: {' '.join(FILES[name])}\n" for name, version in PACKAGES.items())


def _apt_download(name: str, version: str, into: Path) -> None:
    """`apt-get download`; on a machine whose package lists are empty or stale (a fresh Debian), refresh
    them once when we may (root), else say what to run."""
    command = ["apt-get", "download", "-q", f"{name}={version}"]
    if subprocess.run(command, cwd=into, stdout=subprocess.DEVNULL).returncode == 0:
        return
    if os.geteuid() != 0:
        sys.exit(f"prepare_fonts: apt-get could not download {name}={version}; run `sudo apt-get update` and retry")
    print("prepare_fonts: apt-get update (the package lists do not know the fonts yet)", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(command, cwd=into, stdout=subprocess.DEVNULL, check=True)


def fetch_debs(cache_dir: Path) -> dict[str, Path]:
    """`apt-get download` each pinned package into the cache once; later runs reuse the files."""
    debs: dict[str, Path] = {}
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, version in PACKAGES.items():
        deb = cache_dir / f"{name}_{version.split(':')[-1]}_all.deb"
        if not deb.is_file():
            if shutil.which("apt-get") is None:
                sys.exit("prepare_fonts: apt-get is not available (Debian or Ubuntu needed to fetch the fonts)")
            with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
                print(f"prepare_fonts: apt-get download {name}={version}", file=sys.stderr)
                _apt_download(name, version, Path(tmp))
                fetched = list(Path(tmp).glob("*.deb"))
                if len(fetched) != 1:
                    sys.exit(f"prepare_fonts: apt-get download produced {fetched}, expected one .deb")
                fetched[0].replace(deb)  # atomic: a half-written .deb never sits in the cache
        debs[name] = deb
    return debs


def is_prepared(dest: Path) -> bool:
    try:
        return (dest / MARKER).read_text() == FONTS_ID
    except OSError:
        return False


def copy_fonts(debs: dict[str, Path], dest: Path) -> None:
    """Unpack each .deb in a scratch folder and copy only FILES, flat, into `dest`."""
    if is_prepared(dest):
        return
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, deb in debs.items():
            tree = Path(tmp) / name
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
            for member in FILES[name]:
                shutil.copyfile(tree / member, dest / Path(member).name)
    (dest / MARKER).write_text(FONTS_ID)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", type=Path, required=True, help="copy the font files into this folder")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("FONTS_CACHE_DIR") or REPO_ROOT / ".cache" / "fonts"),
        help="where the .deb files are kept (default: $FONTS_CACHE_DIR or <repo>/.cache/fonts)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    copy_fonts(fetch_debs(args.cache_dir.resolve() / "deb"), args.dest)
    size = sum(path.stat().st_size for path in args.dest.iterdir()) / 2**20
    print(f"prepare_fonts: {args.dest} ready ({size:.1f} MiB)", file=sys.stderr)
    print(f"prepare_fonts: done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
