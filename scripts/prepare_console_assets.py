"""Fetch the finance console's browser libraries from the npm registry into functions/console/static/.

htmx (pinned here) is taken as its published, minified build: no bundler, no Node build step. The
tarball is kept in .cache/console-assets/ so later builds need no network. The copied file is ignored
by git (.gitignore) and shipped by `sam build` with the function's code; the console serves it under
a content-hashed name with a one-year cache lifetime (functions/console/views.py).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tarfile
from pathlib import Path

from npm_pack import fetch_tarball  # scripts/ is the script's own folder, first on sys.path

ROOT = Path(__file__).resolve().parents[1]
#: package -> (version, file inside the tarball, name in static/)
ASSETS = {
    "htmx.org": ("2.0.11", "package/dist/htmx.min.js", "htmx.min.js"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "console-assets")
    parser.add_argument("--dest", type=Path, default=ROOT / "functions" / "console" / "static")
    args = parser.parse_args(argv)
    args.dest.mkdir(parents=True, exist_ok=True)
    for package, (version, member, name) in ASSETS.items():
        tarball = fetch_tarball(
            package, version, args.cache, name=f"{package}-{version}.tgz", who="prepare_console_assets"
        )
        with tarfile.open(tarball) as archive:
            extracted = archive.extractfile(member)
            if extracted is None:
                sys.exit(f"prepare_console_assets: {member} is not a file in {tarball}")
            data = extracted.read()
        target = args.dest / name
        if not target.exists() or target.read_bytes() != data:
            target.write_bytes(data)
        print(f"prepare_console_assets: {name} {package}@{version} sha256 {hashlib.sha256(data).hexdigest()[:12]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
