"""Headless Chromium for PDFs: find (or unpack) the binary, keep one browser per process, print HTML.

The binary is the `@sparticuz/chromium` build, the same locally and in Lambda (docs/decisions.md,
"Chromium layer"). Where it comes from, first match wins:

1. env `CHROMIUM_PATH`: any Chromium (e.g. Debian's /usr/bin/chromium). If the folder holding it
   also holds `lib/` and `fonts.conf` (a bundle unpacked by scripts/prepare_chromium.py), they are used.
2. in Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) with the ChromiumLayer present: the brotli files in
   /opt/chromium (env `CHROMIUM_BUNDLE_DIR`) are unpacked to /tmp once per container.
3. locally: `$CHROMIUM_CACHE_DIR/153.0.0/chromium` (default `<repo>/.cache/chromium`), made by
   `make chromium`.

One browser per process is launched lazily, reused by every render and relaunched when its process
exits or its DevTools connection closes. pyppeteer is asyncio; Lambda handlers and the local runtime
are sync, so the module owns one event loop running in a daemon thread and the sync API submits
coroutines to it. A lock serializes renders: `--single-process` Chromium prints one page at a time
anyway, and it keeps launch/relaunch free of races in the threaded local runtime.

Rendered documents get no network: every http(s)/ws/file request is blocked, so a template can only
use inline CSS and `data:` URLs. That keeps output deterministic and closes any SSRF path through
content that ends up in a document.

Fonts: the bundle's only font is Open Sans (Latin, Greek, Cyrillic). The Noto fonts for every other
script (scripts/prepare_fonts.py) sit in /opt/fonts in Lambda (ChromiumLayer), in
`$FONTS_CACHE_DIR/noto-20220127` locally (`make fonts`), or wherever env `INVOICE_FONTS_DIR` says.
Chromium's fontconfig is pointed at both folders by a fonts.conf written under the temp folder, never
into the bundle (a shared, possibly read-only cache).

No AWS imports here.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import hashlib
import html as html_lib
import io
import logging
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Coroutine, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pyppeteer.browser import Browser
    from pyppeteer.page import Page

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

# Proven on Lambda and Debian (shared/RECIPES.md). --single-process halves print time.
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--no-sandbox",
    "--no-zygote",
    "--single-process",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-setuid-sandbox",
    "--in-process-gpu",
    "--disable-webgl",
    "--font-render-hinting=none",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=AudioServiceOutOfProcess,IsolateOrigins,site-per-process",
    # No network for documents, browser-wide (frames and navigations included): every http(s)/ws
    # request goes to a proxy on a closed port, loopback too (<-loopback> drops the implicit bypass),
    # and no host name resolves. DevTools is a server socket, so pyppeteer is unaffected.
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
# The same, per page, through DevTools (belt and braces). data: URLs are not requests and still work.
BLOCKED_URL_PATTERNS = ("http://*", "https://*", "ws://*", "wss://*", "ftp://*", "file://*")

PAGE_MARGINS = {"top": "16mm", "right": "14mm", "bottom": "20mm", "left": "14mm"}
# Chromium renders header/footer templates in their own context: the document's CSS does not apply,
# sizes must be explicit, and only <span class="pageNumber|totalPages|..."> are filled in.
# The footer carries the seller's name, in any script: the same font chain as the documents' CSS.
_FOOTER_FONTS = (
    "'Open Sans','Noto Sans Arabic','Noto Sans Hebrew','Noto Sans Thai','Noto Sans Devanagari',"
    "'Noto Sans CJK JP','Noto Sans CJK KR','Noto Sans CJK SC','Noto Sans CJK TC',sans-serif"
)
_FOOTER_TEMPLATE = (
    f'<div style="width:100%;margin:0 14mm;font-family:{_FOOTER_FONTS};font-size:7.5pt;'
    'color:#6b7280;display:flex;justify-content:space-between;-webkit-print-color-adjust:exact;">'
    '<span dir="auto">{left}</span>'
    # "3 / 5": read alike in every language a document is printed in (no words to translate here)
    '<span dir="ltr"><span class="pageNumber"></span> / <span class="totalPages"></span></span>'
    "</div>"
)
# An empty header still needs an element, or Chromium prints its default (date and title).
_HEADER_TEMPLATE = "<span></span>"

# Variables a Chromium child process needs; everything else (AWS credentials above all) stays out.
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")

_T = TypeVar("_T")


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


# ---------------------------------------------------------------- the browser manager


class _BrowserManager:
    """One event loop thread and one browser for the whole process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._browser: Browser | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._profile_dir: str | None = None
        self._disconnected = False
        self.launches = 0

    # -- event loop thread

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="chromium-loop", daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop

    def _run(self, coro: Coroutine[Any, Any, _T], timeout_s: float) -> _T:
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coro, self._ensure_loop())
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeoutError:
            future.cancel()
            raise

    # -- browser lifecycle (called on the loop thread)

    def _browser_alive(self) -> bool:
        if self._browser is None or self._disconnected:
            return False
        return self._process is not None and self._process.poll() is None

    async def _launch(self) -> Browser:
        """Start Chromium ourselves and connect pyppeteer to it.

        pyppeteer's own launcher polls /json/version every 100 ms for up to 30 s, even when the
        process died at once, and picks its port with a bind-then-release race. Here Chromium picks a
        free port itself (--remote-debugging-port=0) and writes it to DevToolsActivePort in the
        profile; we poll that file every 10 ms and stop as soon as the process exits.
        """
        from pyppeteer import connect
        from pyppeteer.launcher import DEFAULT_ARGS

        loop = asyncio.get_running_loop()
        install = await loop.run_in_executor(None, locate_chromium)
        profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
        self._profile_dir = str(profile)
        self._disconnected = False
        started = time.perf_counter()
        command = [
            str(install.executable),
            *DEFAULT_ARGS,
            "--headless",
            "--hide-scrollbars",
            "--mute-audio",
            *CHROMIUM_FLAGS,
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        # stderr goes to a file (never a pipe nobody reads, which would block Chromium once full);
        # it is quoted when the start fails and removed with the profile.
        with (profile / "chromium.log").open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - our own executable and flags
                command, env=install.child_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self._process = process
        endpoint = await _wait_for_devtools(process, profile)
        browser: Browser = await connect(browserWSEndpoint=endpoint, loop=loop, defaultViewport=None)

        def on_disconnected() -> None:
            if self._browser is browser:
                self._disconnected = True

        browser.on("disconnected", on_disconnected)
        self.launches += 1
        seconds = round(time.perf_counter() - started, 3)
        logger.info("chromium launched", extra={"executable": str(install.executable), "seconds": seconds})
        return browser

    async def _get_browser(self) -> Browser:
        if not self._browser_alive():
            if self._browser is not None:
                logger.warning("chromium is gone, relaunching")
                await self._discard()
            self._browser = await self._launch()
        assert self._browser is not None
        return self._browser

    async def _discard(self) -> None:
        """Close the browser (politely, then by force) and remove its profile folder."""
        browser, self._browser = self._browser, None
        process, self._process = self._process, None
        if browser is not None and process is not None and process.poll() is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(browser._connection.send("Browser.close"), 2)
        if process is not None:
            _kill(process)
        if browser is not None:
            with contextlib.suppress(Exception):
                await browser.disconnect()
        if self._profile_dir:
            shutil.rmtree(self._profile_dir, ignore_errors=True)
            self._profile_dir = None

    # -- one render

    async def _render(self, html: str, timeout_s: float, footer_text: str) -> bytes:
        """Launch if needed, print on a fresh page, always close the page. One deadline for all of it."""
        opened: list[Page] = []
        try:
            return await asyncio.wait_for(self._print_on_new_page(html, footer_text, opened), timeout_s)
        except TimeoutError as exc:
            raise RenderError(f"rendering the PDF took longer than {timeout_s:g} s") from exc
        except RenderError:
            raise
        except Exception as exc:
            raise RenderError(f"chromium failed to render the PDF: {exc!r}") from exc
        finally:
            for page in opened:
                try:
                    await asyncio.wait_for(page.close(), 5)
                except Exception:
                    # a page that will not close means a wedged browser: start afresh next time
                    logger.warning("closing the page failed, discarding the browser")
                    await self._discard()
            if self._browser is not None and not self._browser_alive():
                await self._discard()

    async def _print_on_new_page(self, html: str, footer_text: str, opened: list[Page]) -> bytes:
        try:
            browser = await self._get_browser()
        except Exception as exc:
            await self._discard()
            raise RenderError(f"chromium did not start: {exc!r}") from exc
        page = await browser.newPage()
        opened.append(page)
        return await _print(page, html, footer_text)

    # -- sync API

    def render_pdf(self, html: str, timeout_s: float, footer_text: str) -> bytes:
        deadline = time.monotonic() + timeout_s
        if not self._lock.acquire(timeout=timeout_s):
            raise RenderError(f"the renderer stayed busy for {timeout_s:g} s")
        try:
            if not self._browser_alive():
                # unpacking (Lambda cold start, ~1.5 s) happens here, in the caller's thread, under the lock
                locate_chromium()
            remaining = max(deadline - time.monotonic(), 0.1)
            try:
                # the coroutine enforces the timeout itself; this outer bound only catches a stuck loop
                return self._run(self._render(html, remaining, footer_text), remaining + 15)
            except FutureTimeoutError as exc:
                self._hard_reset()
                raise RenderError(f"the renderer did not answer within {remaining + 15:g} s") from exc
        finally:
            self._lock.release()

    def current_browser(self) -> Browser | None:
        return self._browser

    def current_process(self) -> subprocess.Popen[bytes] | None:
        return self._process

    def _hard_reset(self) -> None:
        """The loop thread is stuck: kill the browser and start a new loop next time."""
        process, self._browser, self._process = self._process, None, None
        if process is not None:
            _kill(process)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop, self._thread = None, None

    def close(self) -> None:
        # bounded wait: at interpreter exit a daemon thread may still hold the lock mid-render
        locked = self._lock.acquire(timeout=10)
        try:
            if locked and self._loop is not None and self._thread is not None and self._thread.is_alive():
                with contextlib.suppress(Exception):
                    self._run(self._discard(), 10)
            process, self._browser, self._process = self._process, None, None
            if process is not None:
                _kill(process)
        finally:
            if locked:
                self._lock.release()


async def _wait_for_devtools(process: subprocess.Popen[bytes], profile: Path, limit_s: float = 30) -> str:
    """The browser's DevTools WebSocket URL, read from the file Chromium writes once it listens."""
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            log = (profile / "chromium.log").read_text(errors="replace")[-1500:]
            raise RenderError(f"chromium exited with status {code} while starting: {log.strip()}")
        try:
            port, path = port_file.read_text().split("\n")[:2]
        except (OSError, ValueError):
            await asyncio.sleep(0.01)
            continue
        if port.strip().isdigit() and path.startswith("/devtools/browser/"):
            return f"ws://127.0.0.1:{port.strip()}{path.strip()}"
        await asyncio.sleep(0.01)  # the file is being written
    _kill(process)
    raise RenderError(f"chromium did not open DevTools within {limit_s:g} s")


def _kill(process: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGKILL)
    with contextlib.suppress(Exception):
        process.wait(timeout=5)


async def _print(page: Page, html: str, footer_text: str) -> bytes:
    await page._client.send("Network.setBlockedURLs", {"urls": list(BLOCKED_URL_PATTERNS)})
    await page.setContent(html)
    # setContent writes the document and returns; wait for the bundled fonts and any data: images
    # so the first glyphs are not printed with a fallback font.
    await page.evaluate(
        """async () => {
            await document.fonts.ready;
            await Promise.all(Array.from(document.images).map((img) => img.complete ? null
                : new Promise((done) => { img.onload = img.onerror = done; })));
        }"""
    )
    pdf: bytes = await page.pdf(
        {
            "format": "A4",
            "printBackground": True,
            "displayHeaderFooter": True,
            "headerTemplate": _HEADER_TEMPLATE,
            "footerTemplate": _FOOTER_TEMPLATE.format(left=html_lib.escape(footer_text)),
            "margin": PAGE_MARGINS,
        }
    )
    return pdf


_manager = _BrowserManager()


def render_pdf(html: str, *, timeout_s: float = 30, footer_text: str = "") -> bytes:
    """Print `html` to an A4 PDF (backgrounds on, "X / Y" page numbers in the footer) and return its bytes.

    `footer_text` (plain text, escaped here) is printed at the left of every page's footer, e.g. the
    document number. Raises `RenderError` on any failure, including `timeout_s` elapsing; the page is
    closed either way and a dead browser is replaced on the next call.
    """
    return _manager.render_pdf(html, timeout_s, footer_text)


def current_browser() -> Browser | None:
    """The browser the next render will reuse, if one is running (for tests and health checks)."""
    return _manager.current_browser()


def browser_process() -> subprocess.Popen[bytes] | None:
    """The Chromium process behind `current_browser()` (tests kill it to prove the relaunch)."""
    return _manager.current_process()


def browser_launches() -> int:
    """How many browsers this process has launched (1 on a healthy warm container)."""
    return _manager.launches


def shutdown() -> None:
    """Close the browser. Registered with atexit; tests call it to start from a cold state."""
    _manager.close()


atexit.register(shutdown)
