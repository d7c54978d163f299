"""Finding (or unpacking) the headless Chromium binary and the fonts it prints with.

The binary is the `@sparticuz/chromium` build, the same locally and in Lambda (docs/decisions.md,
"Chromium layer"). Where it comes from, first match wins:

1. env `CHROMIUM_PATH`: any Chromium (e.g. Debian's /usr/bin/chromium). If the folder holding it
   also holds `lib/` and `fonts.conf` (a bundle unpacked by scripts/prepare_chromium.py), they are used.
2. in Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) with the ChromiumLayer present: the brotli files in
   /opt/chromium (env `CHROMIUM_BUNDLE_DIR`) are unpacked to /tmp once per container.
3. locally: `$CHROMIUM_CACHE_DIR/153.0.0/chromium` (default `<repo>/.cache/chromium`), made by
   `make chromium`.

Fonts: the bundle's only font is Open Sans (Latin, Greek, Cyrillic). The Noto fonts for every other
script (scripts/prepare_fonts.py) sit in /opt/fonts in Lambda (ChromiumLayer), in
`$FONTS_CACHE_DIR/noto-20220127` locally (`make fonts`), or wherever env `INVOICE_FONTS_DIR` says.
Chromium's fontconfig is pointed at both folders by a fonts.conf written under the temp folder, never
into the bundle (a shared, possibly read-only cache).

No AWS imports here.
"""

from __future__ import annotations

import fcntl
import hashlib
import html as html_lib
import io
import logging
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

CHROMIUM_VERSION = "153.0.0"
# All four files of the package's bin/. swiftshader (software GL, 7 MB unpacked) is needed even for
# PDFs: without libEGL/libGLESv2 next to the binary, Chromium 153 dies with SIGTRAP during GPU init
# right after "DevTools listening" (seen on Debian 12).
BUNDLE_FILES = ("chromium.br", "al2023.tar.br", "fonts.tar.br", "swiftshader.tar.br")
DEFAULT_LAMBDA_BUNDLE_DIR = Path("/opt/chromium")
# scripts/prepare_fonts.py fills this folder (its name carries the Debian fonts-noto-cjk version)
FONTS_DIRNAME = "noto-20220127"
DEFAULT_LAMBDA_FONTS_DIR = Path("/opt/fonts")
_REPO_ROOT = Path(__file__).resolve().parents[3]
_COMPLETE_MARKER = ".complete"
# What the marker holds: a bundle unpacked by an older version of this code is unpacked again.
_BUNDLE_ID = f"@sparticuz/chromium {CHROMIUM_VERSION}: {' '.join(BUNDLE_FILES)}\n"

# Variables a Chromium child process needs; everything else (AWS credentials above all) stays out.
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")


class RenderError(RuntimeError):
    """The PDF could not be produced (no browser, browser crash, timeout). Safe to retry."""


class ChromiumNotFound(RenderError):
    """No Chromium binary at any of the places this module looks."""


# ---------------------------------------------------------------- finding and unpacking the binary


@dataclass(frozen=True)
class ChromiumInstall:
    """A Chromium executable and, for the @sparticuz bundle, the folder with its libs and fonts."""

    executable: Path
    bundle_root: Path | None = None

    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of the Chromium child process only (our own process env is untouched)."""
        source = os.environ if base is None else base
        env = {key: source[key] for key in _PASSED_ENV if key in source}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        home = source.get("HOME", "")
        # Lambda's HOME is read-only; Chromium and fontconfig write small caches there.
        env["HOME"] = home if home and os.access(home, os.W_OK) else tempfile.gettempdir()
        if self.bundle_root is not None:
            lib_dir = self.bundle_root / "lib"
            if lib_dir.is_dir():
                inherited = source.get("LD_LIBRARY_PATH", "")
                env["LD_LIBRARY_PATH"] = f"{lib_dir}:{inherited}" if inherited else str(lib_dir)
            if (self.bundle_root / "fonts").is_dir():
                conf = write_fonts_conf([self.bundle_root / "fonts", *locate_fonts(source)])
                env["FONTCONFIG_FILE"] = str(conf)
                env["FONTCONFIG_PATH"] = str(conf.parent)
        return env


def locate_fonts(env: Mapping[str, str] | None = None) -> list[Path]:
    """The folder of extra (Noto) fonts, if there is one: see the module docstring for where."""
    env = os.environ if env is None else env
    explicit = env.get("INVOICE_FONTS_DIR", "").strip()
    if explicit:
        candidates = [Path(explicit)]
    elif env.get("AWS_LAMBDA_FUNCTION_NAME"):
        candidates = [DEFAULT_LAMBDA_FONTS_DIR]
    else:
        candidates = [Path(env.get("FONTS_CACHE_DIR") or _REPO_ROOT / ".cache" / "fonts") / FONTS_DIRNAME]
    found = [path for path in candidates if path.is_dir()]
    if not found:
        logger.warning("no fonts beyond open sans: run `make fonts`", extra={"looked_in": str(candidates[0])})
    return found


def fonts_conf(font_dirs: list[Path], cache_dir: Path) -> str:
    """A fontconfig file that finds only the given fonts, so output is identical on every machine.

    The bundle's own fonts.conf looks in /var/task/fonts, /opt/fonts and /tmp/fonts; ours points at
    the unpacked bundle's fonts wherever they are (.cache locally, /tmp in Lambda) and the Noto fonts.
    """
    dirs = "".join(f"  <dir>{html_lib.escape(str(path))}</dir>\n" for path in font_dirs)
    return (
        '<?xml version="1.0"?>\n'
        '<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n'
        "<fontconfig>\n"
        f"{dirs}"
        f"  <cachedir>{html_lib.escape(str(cache_dir))}</cachedir>\n"
        "  <config></config>\n"
        "</fontconfig>\n"
    )


def write_fonts_conf(font_dirs: list[Path], base: Path | None = None) -> Path:
    """Write the fonts.conf for `font_dirs` into a folder of its own under the temp folder; return its path.

    The folder is named after the folders it lists, so each checkout (and Lambda's /tmp) keeps one
    fontconfig cache that later browsers reuse: the cache is built once, by the first launch.
    """
    key = hashlib.sha256("\n".join(str(path) for path in font_dirs).encode()).hexdigest()[:16]
    folder = (base or Path(tempfile.gettempdir())) / f"invoicing-fontconfig-{os.getuid()}-{key}"
    conf = folder / "fonts.conf"
    wanted = fonts_conf(font_dirs, folder / "cache")
    try:
        if conf.read_text() == wanted:
            return conf
    except OSError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".fonts.conf.{os.getpid()}"
    partial.write_text(wanted)
    partial.replace(conf)  # atomic: a concurrent launch reads the old file or the new one, never half
    return conf


def _inflate_file(source: Path, target: Path) -> None:
    """Stream-decompress one brotli file: ~1.2 s for the 209 MB binary, a few MB of memory."""
    import brotli  # only needed where a bundle is unpacked

    decompressor = brotli.Decompressor()
    with source.open("rb") as src, target.open("wb") as out:
        while chunk := src.read(1 << 20):
            out.write(decompressor.process(chunk))
    if not decompressor.is_finished():
        raise RenderError(f"{source} is truncated")


def _inflate_tar(source: Path, target_dir: Path) -> None:
    import brotli

    with tarfile.open(fileobj=io.BytesIO(brotli.decompress(source.read_bytes())), mode="r:") as archive:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse links and paths leaving target_dir
            archive.extractall(target_dir, filter="data")
        else:  # pragma: no cover - older 3.11 patch releases
            archive.extractall(target_dir)  # noqa: S202 - our own pinned npm bundle


def unpack_bundle(bundle_dir: Path, dest: Path) -> ChromiumInstall:
    """Unpack chromium.br, al2023.tar.br (libs -> dest/lib) and fonts.tar.br into `dest`, once.

    Idempotent and safe against concurrent callers: a file lock serializes unpackers, the files are
    written to a staging folder that is renamed into place, and a marker says the folder is complete.
    """
    if is_unpacked(dest):
        return _installed(dest)
    missing = [name for name in BUNDLE_FILES if not (bundle_dir / name).is_file()]
    if missing:
        raise ChromiumNotFound(f"{bundle_dir} lacks {', '.join(missing)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with (dest.parent / f".{dest.name}.lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if is_unpacked(dest):  # another process finished while we waited
            return _installed(dest)
        started = time.perf_counter()
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        staging.chmod(0o755)
        try:
            _inflate_file(bundle_dir / "chromium.br", staging / "chromium")
            (staging / "chromium").chmod(0o755)
            for name in BUNDLE_FILES[1:]:
                _inflate_tar(bundle_dir / name, staging)
            # marks the folder as a bundle (see _bundle_root_of); Chromium gets write_fonts_conf's file
            (staging / "fonts.conf").write_text(fonts_conf([dest / "fonts"], dest / "fonts-cache"))
            (staging / _COMPLETE_MARKER).write_text(_BUNDLE_ID)
            if dest.exists():  # left over from an interrupted run
                shutil.rmtree(dest)
            staging.rename(dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    seconds = round(time.perf_counter() - started, 3)
    logger.info("chromium unpacked", extra={"dest": str(dest), "seconds": seconds})
    return ChromiumInstall(dest / "chromium", dest)


def is_unpacked(root: Path) -> bool:
    """True when `root` holds a complete bundle unpacked by this version of the code."""
    try:
        return (root / _COMPLETE_MARKER).read_text() == _BUNDLE_ID
    except OSError:
        return False


def _installed(root: Path) -> ChromiumInstall:
    """An unpacked bundle. Nothing is written into it: it may be a cache shared by several checkouts."""
    return ChromiumInstall(root / "chromium", root)


def _bundle_root_of(executable: Path) -> Path | None:
    folder = executable.resolve().parent
    return folder if (folder / "lib").is_dir() or (folder / "fonts.conf").is_file() else None


def locate_chromium(env: Mapping[str, str] | None = None, *, unpack: bool = True) -> ChromiumInstall:
    """Find the Chromium to use (see the module docstring for the order).

    With `unpack=False` a Lambda bundle that is not unpacked yet is reported, not unpacked: tests
    and health checks use it to ask "is there a browser?" without side effects.
    """
    env = os.environ if env is None else env
    explicit = env.get("CHROMIUM_PATH", "").strip()
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ChromiumNotFound(f"CHROMIUM_PATH={explicit} is not an executable file")
        root = _bundle_root_of(path)
        if root is not None and path.resolve() == root / "chromium" and is_unpacked(root):
            return _installed(root)
        return ChromiumInstall(path, root)
    if env.get("AWS_LAMBDA_FUNCTION_NAME"):
        bundle_dir = Path(env.get("CHROMIUM_BUNDLE_DIR") or DEFAULT_LAMBDA_BUNDLE_DIR)
        if (bundle_dir / "chromium.br").is_file():
            dest = Path(tempfile.gettempdir()) / f"chromium-{CHROMIUM_VERSION}"
            if unpack:
                return unpack_bundle(bundle_dir, dest)
            return ChromiumInstall(dest / "chromium", dest)
    cache_dir = Path(env.get("CHROMIUM_CACHE_DIR") or _REPO_ROOT / ".cache" / "chromium")
    executable = cache_dir / CHROMIUM_VERSION / "chromium"
    if is_unpacked(executable.parent):
        return _installed(executable.parent)
    if executable.is_file():
        raise ChromiumNotFound(
            f"{executable.parent} was unpacked by an older version of this code: "
            f"rm -rf {executable.parent} && make chromium"
        )
    raise ChromiumNotFound(
        f"no Chromium at {executable}: run `make chromium`, or set CHROMIUM_PATH to a Chromium binary"
    )


def chromium_available(env: Mapping[str, str] | None = None) -> bool:
    """True when `render_pdf` can find a browser (without unpacking or launching anything)."""
    try:
        locate_chromium(env, unpack=False)
    except ChromiumNotFound:
        return False
    return True
