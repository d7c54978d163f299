"""`npm pack` a registry package into a cache folder once (shared by the prepare_* scripts)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def fetch_tarball(package: str, version: str, cache_dir: Path, *, name: str, who: str) -> Path:
    """`npm pack package@version` into `cache_dir/name` once; later runs reuse the file."""
    tarball = cache_dir / name
    if tarball.is_file():
        return tarball
    if shutil.which("npm") is None:
        sys.exit(f"{who}: npm is not installed (apt-get install npm, or get Node.js 20+)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        print(f"{who}: npm pack {package}@{version}", file=sys.stderr)
        subprocess.run(
            ["npm", "pack", f"{package}@{version}", "--silent", "--pack-destination", tmp],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        packed = list(Path(tmp).glob("*.tgz"))
        if len(packed) != 1:
            sys.exit(f"{who}: npm pack produced {packed}, expected one .tgz")
        packed[0].replace(tarball)  # atomic: a half-written tarball never sits in the cache
    return tarball
