"""The seller's logo on the PDFs: a PNG or SVG from S3 made safe to print (issue #18, item 3).

The renderer inlines the logo as a `data:` URL (Chromium prints with no network). What comes from S3
is checked here first, pure and without AWS:
- PNG: the PNG signature and an IHDR chunk, at most MAX_LOGO_BYTES;
- SVG: parsed, then rebuilt from an allow-list of drawing elements and attributes. No script, no
  event handler (`on*`), no `<foreignObject>`/`<image>`/`<style>`/`<a>`/animation, no `style`
  attribute, no DOCTYPE or entity, and no reference that is not local (`href="#id"`, `url(#id)`), so
  nothing can run and nothing can be fetched even in a browser that had network.
Anything else raises LogoRejected with a reason a person can act on.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

MAX_LOGO_BYTES = 512 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"

# drawing only: shapes, text, paint servers, grouping and local reuse
ALLOWED_ELEMENTS = frozenset(
    {
        "svg", "g", "defs", "title", "desc", "symbol", "use", "path", "rect", "circle", "ellipse", "line",
        "polyline", "polygon", "text", "tspan", "linearGradient", "radialGradient", "stop", "clipPath", "mask",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = frozenset(
    {
        "id", "class", "viewBox", "width", "height", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx",
        "ry", "d", "points", "transform", "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width",
        "stroke-opacity", "stroke-linecap", "stroke-linejoin", "stroke-miterlimit", "stroke-dasharray",
        "opacity", "offset", "stop-color", "stop-opacity", "gradientUnits", "gradientTransform", "spreadMethod",
        "fx", "fy", "clip-path", "clip-rule", "mask", "font-family", "font-size", "font-weight", "font-style",
        "text-anchor", "dominant-baseline", "letter-spacing", "preserveAspectRatio", "version", "href",
        "clipPathUnits", "maskUnits", "maskContentUnits", "dx", "dy", "visibility", "display",
    }
)  # fmt: skip
_URL = re.compile(r"url\s*\(", re.IGNORECASE)
_LOCAL_URL = re.compile(r"^\s*url\(\s*['\"]?#[A-Za-z_][\w.-]*['\"]?\s*\)\s*$")


class LogoRejected(ValueError):
    """The logo is not a PNG or SVG we print: `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def logo_data_url(body: bytes, content_type: str = "") -> str:
    """A `data:image/png;base64,...` or `data:image/svg+xml;base64,...` URL of a checked logo."""
    if not body:
        raise LogoRejected("the logo is empty")
    if len(body) > MAX_LOGO_BYTES:
        raise LogoRejected(f"the logo is larger than {MAX_LOGO_BYTES // 1024} KiB")
    kind = content_type.split(";")[0].strip().lower()
    if body.startswith(PNG_SIGNATURE):
        if kind not in ("", "image/png", "application/octet-stream"):
            raise LogoRejected(f"the logo is a PNG but is stored as {kind!r}")
        if body[12:16] != b"IHDR":
            raise LogoRejected("the PNG has no image header")
        return "data:image/png;base64," + base64.b64encode(body).decode("ascii")
    if kind not in ("", "image/svg+xml", "application/octet-stream", "text/xml", "application/xml"):
        raise LogoRejected(f"a logo is a PNG or an SVG, not {kind!r}")
    clean = sanitize_svg(body)
    return "data:image/svg+xml;base64," + base64.b64encode(clean).decode("ascii")


def sanitize_svg(body: bytes) -> bytes:
    """The SVG rebuilt from allowed elements and attributes only (see the module docstring)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LogoRejected("the SVG is not UTF-8 text") from None
    if re.search(r"<!(DOCTYPE|ENTITY)", text, re.IGNORECASE):
        raise LogoRejected("the SVG declares a DOCTYPE or entities")
    try:
        root = ET.fromstring(text)  # noqa: S314 - no DOCTYPE, so no entity can expand
    except ET.ParseError as exc:
        raise LogoRejected(f"the SVG is not well-formed XML ({exc})") from None
    if _local(root.tag) != "svg" or _namespace(root.tag) not in ("", SVG_NS):
        raise LogoRejected("the file is not an SVG (its root element is not <svg>)")
    clean = _clean(root)
    assert clean is not None
    ET.register_namespace("", SVG_NS)
    return ET.tostring(clean, encoding="utf-8", xml_declaration=False)


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _local(tag: str) -> str:
    return tag.split("}", 1)[-1]


def _clean(element: ET.Element) -> ET.Element | None:
    if _namespace(element.tag) not in ("", SVG_NS) or _local(element.tag) not in ALLOWED_ELEMENTS:
        return None  # script, foreignObject, image, style, a, animate, set, other namespaces ...
    out = ET.Element(f"{{{SVG_NS}}}{_local(element.tag)}")
    for name, value in element.attrib.items():
        namespace, local = _namespace(name), _local(name)
        if namespace not in ("", XLINK_NS) or local not in ALLOWED_ATTRIBUTES:
            continue  # on*, style, xml:base, foreign attributes ...
        if local == "href":
            if not value.strip().startswith("#"):
                continue  # only a reference inside this file
            out.set("href", value.strip())
            continue
        if _URL.search(value) and not _LOCAL_URL.match(value):
            continue  # fill="url(https://...)" and the like
        out.set(local, value)
    out.text = element.text
    for child in element:
        kept = _clean(child)
        if kept is not None:
            kept.tail = child.tail
            out.append(kept)
    return out
