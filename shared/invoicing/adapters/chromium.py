"""Headless Chromium for PDFs: one browser per process, printing HTML.

Where the binary and fonts come from: adapters/chromium_install.py (re-exported here).

One browser per process is launched lazily, reused by every render and relaunched when its process
exits or its DevTools connection closes. pyppeteer is asyncio; Lambda handlers and the local runtime
are sync, so the module owns one event loop running in a daemon thread and the sync API submits
coroutines to it. A lock serializes renders: `--single-process` Chromium prints one page at a time
anyway, and it keeps launch/relaunch free of races in the threaded local runtime.

Rendered documents get no network: every http(s)/ws/file request is blocked, so a template can only
use inline CSS and `data:` URLs. That keeps output deterministic and closes any SSRF path through
content that ends up in a document.

No AWS imports here.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import html as html_lib
import logging
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from invoicing.adapters.chromium_install import (
    CHROMIUM_VERSION,
    ChromiumInstall,
    ChromiumNotFound,
    RenderError,
    chromium_available,
    is_unpacked,
    locate_chromium,
    locate_fonts,
    unpack_bundle,
    write_fonts_conf,
)

if TYPE_CHECKING:
    from pyppeteer.browser import Browser
    from pyppeteer.page import Page

logger = logging.getLogger(__name__)


__all__ = [
    "CHROMIUM_VERSION",
    "ChromiumInstall",
    "ChromiumNotFound",
    "RenderError",
    "browser_launches",
    "browser_process",
    "chromium_available",
    "current_browser",
    "is_unpacked",
    "locate_chromium",
    "locate_fonts",
    "render_pdf",
    "shutdown",
    "unpack_bundle",
    "write_fonts_conf",
]


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


_T = TypeVar("_T")


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
