"""The seller's logo from S3 (issue #18 item 3): only a PNG or an SVG rebuilt from drawing elements
is printed; a hostile SVG keeps no script, no event handler and no external reference."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from invoicing.logo import MAX_LOGO_BYTES, LogoRejected, logo_data_url, sanitize_svg


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + b"\xff\x00\x00" * 2 + b"\x00" + b"\x00\x00\xff" * 2)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


HOSTILE_SVG = b"""<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
  viewBox="0 0 10 10" onload="alert(1)">
  <script>alert(2)</script>
  <style>@import url(https://evil.example/x.css);</style>
  <defs><linearGradient id="g"><stop offset="0" stop-color="#f00"/></linearGradient></defs>
  <rect width="10" height="10" fill="url(#g)" style="fill:url(https://evil.example/p.png)"/>
  <circle r="3" fill="url(https://evil.example/fill)" onclick="steal()"/>
  <image href="https://evil.example/tracker.png" width="1" height="1"/>
  <use xlink:href="https://evil.example/sprite.svg#a"/>
  <use href="#g"/>
  <a href="javascript:alert(3)"><text x="1" y="9">ACME</text></a>
  <foreignObject><iframe xmlns="http://www.w3.org/1999/xhtml" src="https://evil.example"/></foreignObject>
  <animate attributeName="href" to="javascript:alert(4)"/>
  <text x="1" y="5">Acme &amp; Co</text>
</svg>"""


def test_a_png_is_inlined_as_it_is():
    png = tiny_png()
    url = logo_data_url(png, "image/png")
    assert url.startswith("data:image/png;base64,") and base64.b64decode(url.split(",", 1)[1]) == png


def test_a_hostile_svg_keeps_its_drawing_and_loses_every_script_and_external_reference():
    clean = sanitize_svg(HOSTILE_SVG).decode()
    for gone in ("script", "alert", "onload", "onclick", "evil.example", "javascript:", "foreignObject",
                 "<image", "<style", "animate", "steal"):  # fmt: skip
        assert gone not in clean, (gone, clean)
    # what draws stays: the gradient it references locally, the shapes and the text
    assert 'fill="url(#g)"' in clean and "<rect" in clean and "<circle" in clean and 'href="#g"' in clean
    assert "Acme &amp; Co" in clean
    assert logo_data_url(HOSTILE_SVG, "image/svg+xml").startswith("data:image/svg+xml;base64,")


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"", "image/png", "empty"),
        (b"GIF89a....", "image/gif", "not 'image/gif'"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "image/png", "no image header"),
        (tiny_png(), "text/html", "stored as 'text/html'"),
        (b"<html><script>alert(1)</script></html>", "image/svg+xml", "not an SVG"),
        (b'<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>', "", "DOCTYPE"),
        (b"<svg", "image/svg+xml", "not well-formed"),
        (b"\xff\xfe<svg/>", "image/svg+xml", "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * MAX_LOGO_BYTES, "image/png", "larger than 512 KiB"),
    ],
)
def test_anything_else_is_refused_with_a_reason(body, content_type, reason):
    with pytest.raises(LogoRejected, match=reason.replace("(", r"\(").replace("'", "'")):
        logo_data_url(body, content_type)
