#!/usr/bin/env python3
"""Fetch DynamoDB Local (AWS's own engine) from npm and unpack it for the local runtime.

    prepare_dynamodb_local.py --version 2.9.30 --dest .cache/dynamodb-local/2.9.30

The npm package `amplify-dynamodb-simulator` carries DynamoDB Local 1.25.1 in its tarball:
`package/emulator/DynamoDBLocal.jar` and `DynamoDBLocal_lib/` (its jars and the Linux SQLite native
libraries). This copies the jar, the jars of `DynamoDBLocal_lib/`, its Linux `.so` files and the
licences into DEST; nothing is downloaded when the engine runs. The npm tarball is kept in the cache
folder (default: .cache/dynamodb-local next to this repo), so repeated runs never download again.
Running it needs Python's standard library only (and npm the first time); running the engine needs
Java 11+ (`apt-get install default-jre-headless`).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import npm_pack  # scripts/ is on sys.path: these run as scripts

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "amplify-dynamodb-simulator"
EMULATOR = "package/emulator/"
JAR = "DynamoDBLocal.jar"
#: sha256 of the DynamoDB Local 1.25.1 jar inside amplify-dynamodb-simulator 2.9.30: a different
#: package version (or a tampered tarball) is reported instead of run
KNOWN_JARS = {"2.9.30": "454305e9bc3e6ebcca5b62569869e31563b8d7e346474e94557b2600702146c7"}


def fetch_tarball(version: str, cache_dir: Path) -> Path:
    """`npm pack` the package into the cache once; later runs reuse the file."""
    return npm_pack.fetch_tarball(
        PACKAGE, version, cache_dir, name=f"{PACKAGE}-{version}.tgz", who="prepare_dynamodb_local"
    )


def _wanted(relative: str) -> bool:
    """The jar, its library jars, the Linux native libraries, the licences; not the Windows/macOS ones."""
    name = relative.rsplit("/", 1)[-1]
    if relative == JAR or name.endswith(".txt"):
        return True
    return relative.startswith("DynamoDBLocal_lib/") and (name.endswith(".jar") or name.endswith(".so"))


def unpack(tarball: Path, dest: Path, expected_sha256: str | None) -> Path:
    """Copy the emulator into `dest` (through a temporary folder, so a half unpack never looks done)."""
    jar = dest / JAR
    if jar.is_file() and (dest / "DynamoDBLocal_lib").is_dir():
        jar.touch()  # newer than this script, so make sees the target as up to date
        return jar
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        staging = Path(tmp) / "emulator"
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive.getmembers():
                if not member.isfile() or not member.name.startswith(EMULATOR):
                    continue
                relative = member.name[len(EMULATOR) :]
                if ".." in relative.split("/") or not _wanted(relative):
                    continue
                source = archive.extractfile(member)
                if source is None:
                    continue
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
        staged_jar = staging / JAR
        if not staged_jar.is_file():
            sys.exit(f"prepare_dynamodb_local: {tarball} has no {EMULATOR}{JAR}")
        digest = hashlib.sha256(staged_jar.read_bytes()).hexdigest()
        if expected_sha256 is not None and digest != expected_sha256:
            sys.exit(f"prepare_dynamodb_local: {JAR} has sha256 {digest}, expected {expected_sha256}")
        if dest.exists():
            shutil.rmtree(dest)
        staging.replace(dest)
    return jar


def main(argv: list[str] | None = None) -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--version", required=True, help=f"{PACKAGE} version, e.g. 2.9.30")
    parser.add_argument("--dest", type=Path, required=True, help="unpack DynamoDBLocal.jar and its lib/ here")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=REPO_ROOT / ".cache" / "dynamodb-local",
        help="where the npm tarball is kept (default: <repo>/.cache/dynamodb-local)",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    tarball = fetch_tarball(args.version, args.cache_dir.resolve())
    jar = unpack(tarball, args.dest.resolve(), KNOWN_JARS.get(args.version))
    print(f"prepare_dynamodb_local: {jar} ready", file=sys.stderr)
    print(f"prepare_dynamodb_local: done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
