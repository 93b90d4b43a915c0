"""HTML-to-text conversion and body previews (RFC 2854 text/html, RFC 8621 §4.1.4 preview)."""

from __future__ import annotations

import html as _html
import re
from html.parser import HTMLParser

_SKIP = frozenset({"head", "script", "style", "title", "template", "xml"})
# fmt: off
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
        "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1",
        "h2", "h3", "h4", "h5", "h6", "header", "hr", "html", "legend", "main", "nav", "ol", "p",
        "pre", "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul",
    }
)
# fmt: on
_CELL = frozenset({"td", "th"})
_WS = re.compile(r"[ \t\n\r\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_TAG = re.compile(r"<[^>]*>")
_SKIP_BLOCK = re.compile(r"<(script|style|head|title)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
# Zero-width and filler characters that marketing mail pads its preheader with.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u2060-\u2064\ufeff]"
)
_PREVIEW_HTML_BUDGET = 256 * 1024


class _TextExtractor(HTMLParser):
    """Collects visible text; block elements and ``<br>`` become line breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip_depth += 1
        elif tag == "body":
            self.skip_depth = 0  # an unclosed <head> must not swallow the body
        if tag == "br":
            self.pieces.append("\n")
        elif tag == "li":
            self.pieces.append("\n- ")
        elif tag in _CELL:
            self.pieces.append(" ")
        elif tag in _BLOCK:
            self.pieces.append("\n")
        if tag == "pre":
            self.pre_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _BLOCK or tag == "li":
            self.pieces.append("\n")
        if tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:
            self.pieces.append(data.replace("\r\n", "\n"))
        else:
            self.pieces.append(_WS.sub(" ", data))


def _tidy(text: str) -> str:
    """Trim every line and keep at most one blank line between paragraphs."""
    lines = [line.strip(" \t\u00a0") for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    """Render HTML (RFC 2854) as plain text: drop head/script/style, keep visible text.

    Entities are unescaped, runs of whitespace collapse to one space, block elements
    and ``<br>`` produce line breaks, list items get a ``- `` bullet. Never raises; on a
    parser failure it falls back to a regex tag strip.
    """
    if not html:
        return ""
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
        text = "".join(extractor.pieces)
    except Exception:
        stripped = _TAG.sub(" ", _SKIP_BLOCK.sub(" ", html))
        text = _WS.sub(" ", _html.unescape(stripped))
    return _tidy(text)


def make_preview(text: str | None, html: str | None, limit: int = 200) -> str:
    """A short single-line preview of the body (like JMAP ``preview``, RFC 8621 §4.1.4).

    Uses ``text`` when it has any visible content, else the text of ``html``. Whitespace
    collapses to single spaces; the result has at most ``limit`` characters and is cut at
    a word boundary when one is near the end.
    """
    if limit <= 0:
        return ""
    preview = _flatten(text or "", limit)
    if not preview and html:
        preview = _flatten(html_to_text(html[:_PREVIEW_HTML_BUDGET]), limit)
    return preview


def _flatten(source: str, limit: int) -> str:
    """Collapse whitespace, drop invisible filler and cut to ``limit`` characters."""
    window = _INVISIBLE.sub("", source[: max(limit * 64, 4096)])
    flat = " ".join(_WS.sub(" ", window).split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit]
    space = cut.rfind(" ")
    if space >= limit * 0.6:
        cut = cut[:space]
    return cut.rstrip()
