"""Turn a file (PDF, Markdown, HTML, text) into a ParsedDocument: cleaned text, metadata, sections.

Type is decided by content (`sniff.detect_kind`), never by the file name alone.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from ..errors import RefusedError
from ..models import DocumentMeta, ParsedDocument, Section
from .structure import SectionTracker, classify_line


@dataclass
class Limits:
    max_bytes: int = 25 * 1024 * 1024
    max_pages: int = 1500
    pdf_timeout_s: float = 60.0
    pdf_memory_mb: int = 1024

    @classmethod
    def from_settings(cls, settings) -> "Limits":
        return cls(settings.max_upload_bytes, settings.max_pdf_pages, settings.pdf_timeout_s, settings.pdf_memory_mb)


SUPPORTED_SUFFIXES = {".pdf", ".md", ".markdown", ".txt", ".text", ".html", ".htm"}


def parse_file(path: Path, limits: Limits, meta: dict | None = None) -> ParsedDocument:
    from .sniff import detect_kind

    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise RefusedError("empty", f"{path.name} is empty.")
    if size > limits.max_bytes:
        raise RefusedError(
            "too_large",
            f"{path.name} is {size / 1048576:.1f} MB; the limit is {limits.max_bytes / 1048576:.0f} MB.",
        )
    with open(path, "rb") as fh:
        head = fh.read(4096)
    kind = detect_kind(head, path.name)
    if kind == "pdf":
        doc = _parse_pdf(path, limits)
    else:
        raw = path.read_bytes().decode("utf-8-sig", errors="strict") if kind else ""
        if kind == "html":
            doc = parse_html(raw)
        elif kind == "markdown":
            doc = parse_markdown(raw)
        else:
            doc = parse_text(raw)
    if not doc.meta.title:
        doc.meta.title = _title_from_name(path)
    doc.meta = doc.meta.merged(meta)
    if not doc.text.strip():
        raise RefusedError("empty", f"{path.name} has no text to index.")
    return doc


def _title_from_name(path: Path) -> str:
    return re.sub(r"[_\-]+", " ", path.stem).strip().title() or "Untitled document"


# ---------------------------------------------------------------------------------------------
# Building sections


class _Builder:
    """Accumulates paragraphs under section paths into a full text with exact offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.sections: list[Section] = []

    def add(self, text: str, section: str, page: int | None = None) -> None:
        text = text.strip()
        if not text:
            return
        if self.parts:
            self.parts.append("\n\n")
            self.length += 2
        start = self.length
        self.parts.append(text)
        self.length += len(text)
        last = self.sections[-1] if self.sections else None
        if last and last.section == section and last.page_end == page and last.char_end + 2 == start:
            # extend the previous section (same path, same page)
            last.text = last.text + "\n\n" + text
            last.char_end = self.length
        else:
            self.sections.append(Section(text, section, page, page, start, self.length))

    def text(self) -> str:
        return "".join(self.parts)


def _paragraphs(lines: list[str]) -> list[str]:
    """Group lines into paragraphs (blank line separated); wrapped lines are joined with a space."""
    paras, cur = [], []
    for line in lines:
        if line.strip():
            cur.append(line.strip())
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return paras


# ---------------------------------------------------------------------------------------------
# Markdown


_FM = re.compile(r"\A\ufeff?---[ \t]*\n(.*?)\n---[ \t]*\n", re.S)
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((?:[^)]+)\)")
_MD_EMPH = re.compile(r"(\*\*|__|`)")
_MD_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")

_META_KEYS = {
    "title": "title",
    "union": "union",
    "agreement": "agreement",
    "year": "year",
    "status": "status",
    "doc_type": "doc_type",
    "type": "doc_type",
    "url": "url",
    "source_url": "url",
    "publisher": "publisher",
    "outlet": "publisher",
    "date": "date",
    "note": "note",
    "sources": "sources",
}


def parse_front_matter(raw: str) -> tuple[dict, str]:
    """Parse a small YAML subset: `key: value` lines and `key:` followed by `  - item` lists."""
    m = _FM.match(raw)
    if not m:
        return {}, raw
    data: dict = {}
    current_list: str | None = None
    for line in m.group(1).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        item = re.match(r"^\s*-\s+(.*)$", line)
        if item and current_list:
            data[current_list].append(_unquote(item.group(1)))
            continue
        kv = re.match(r"^([A-Za-z_][\w-]*)\s*:\s*(.*)$", line)
        if not kv:
            continue
        key, value = kv.group(1).lower(), kv.group(2).strip()
        if value.startswith("[") and value.endswith("]"):
            data[key] = [_unquote(v) for v in value[1:-1].split(",") if v.strip()]
            current_list = None
        elif value == "":
            data[key] = []
            current_list = key
        else:
            data[key] = _unquote(value)
            current_list = None
    return data, raw[m.end():]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def meta_from_dict(data: dict) -> DocumentMeta:
    meta = DocumentMeta()
    values = {}
    for key, value in data.items():
        field_name = _META_KEYS.get(key)
        if not field_name:
            continue
        if field_name == "sources":
            values["sources"] = value if isinstance(value, list) else [value]
        elif isinstance(value, list):
            values[field_name] = ", ".join(value)
        else:
            values[field_name] = value
    year = values.get("year")
    if year is not None:
        try:
            values["year"] = int(str(year)[:4])
        except ValueError:
            values.pop("year")
    status = str(values.get("status", "current")).lower()
    values["status"] = "superseded" if status.startswith("supersed") else "current"
    return meta.merged(values)


def _md_inline(text: str) -> str:
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_EMPH.sub("", text)
    return text


def parse_markdown(raw: str) -> ParsedDocument:
    data, body = parse_front_matter(raw.replace("\r\n", "\n"))
    meta = meta_from_dict(data)
    b = _Builder()
    stack: list[tuple[int, str]] = []
    lines: list[str] = []
    title_from_h1 = ""
    in_code = False

    def flush() -> None:
        path = " > ".join(t for _, t in stack)
        for para in _paragraphs(lines):
            b.add(para, path)
        lines.clear()

    for line in body.split("\n"):
        if line.strip().startswith("```"):
            in_code = not in_code
            continue
        m = None if in_code else _MD_HEADING.match(line)
        if m:
            flush()
            level, title = len(m.group(1)), _md_inline(m.group(2)).strip()
            if level == 1:
                title_from_h1 = title_from_h1 or title
                stack.clear()
                continue  # the document title is not a section
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            continue
        if _MD_LIST.match(line):
            # each list item is its own paragraph
            if lines:
                flush()
            lines.append(_md_inline(_MD_LIST.sub("", line)))
            flush()
            continue
        lines.append(_md_inline(line))
    flush()
    if not meta.title:
        meta.title = title_from_h1
    return ParsedDocument(meta=meta, text=b.text(), sections=b.sections, pages=None, kind="markdown")


# ---------------------------------------------------------------------------------------------
# Plain text


def parse_text(raw: str) -> ParsedDocument:
    data, body = parse_front_matter(raw.replace("\r\n", "\n"))
    meta = meta_from_dict(data)
    b = _Builder()
    tracker = SectionTracker()
    lines: list[str] = []
    for line in body.split("\n"):
        heading = classify_line(line)
        if heading:
            for para in _paragraphs(lines):
                b.add(para, tracker.path())
            lines = []
            tracker.see(heading)
            continue
        lines.append(line)
    for para in _paragraphs(lines):
        b.add(para, tracker.path())
    return ParsedDocument(meta=meta, text=b.text(), sections=b.sections, pages=None, kind="text")


# ---------------------------------------------------------------------------------------------
# HTML


class _HTMLExtractor(HTMLParser):
    SKIP = {"script", "style", "nav", "footer", "header", "aside", "form", "noscript", "svg", "iframe", "button"}
    BLOCK = {"p", "li", "blockquote", "td", "th", "dd", "dt", "pre", "div", "section", "article", "br", "tr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title = ""
        self.blocks: list[tuple[str, str]] = []  # (kind, text): kind "h1".."h6" or "p"
        self._skip = 0
        self._in_title = False
        self._buf: list[str] = []
        self._heading: str | None = None

    def _flush(self) -> None:
        text = re.sub(r"\s+", " ", "".join(self._buf)).strip()
        self._buf = []
        if text:
            self.blocks.append((self._heading or "p", text))

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag in self.SKIP:
            self._skip += 1
            return
        if tag == "title":
            self._in_title = True
        elif tag == "meta":
            key = (a.get("property") or a.get("name") or a.get("itemprop") or "").lower()
            if key and a.get("content"):
                self.meta.setdefault(key, a["content"].strip())
        elif tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
            self._flush()
            self._heading = tag
        elif tag in self.BLOCK:
            self._flush()

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
            return
        if tag == "title":
            self._in_title = False
        elif tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
            self._flush()
            self._heading = None
        elif tag in self.BLOCK:
            self._flush()

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self._skip:
            self._buf.append(data)

    def close(self):
        super().close()
        self._flush()


def parse_html(raw: str) -> ParsedDocument:
    ex = _HTMLExtractor()
    ex.feed(raw)
    ex.close()
    m = ex.meta
    data = {
        "title": m.get("og:title") or m.get("twitter:title") or html.unescape(ex.title).strip(),
        "publisher": m.get("og:site_name") or m.get("publisher") or m.get("author") or "",
        "date": (m.get("article:published_time") or m.get("date") or m.get("pubdate") or m.get("dc.date") or "")[:10],
        "url": m.get("og:url") or "",
    }
    for key in ("union", "agreement", "year", "status", "doc_type"):
        if m.get(key):
            data[key] = m[key]
    if data["date"] and "year" not in data and re.match(r"\d{4}", data["date"]):
        data["year"] = data["date"][:4]
    meta = meta_from_dict({k: v for k, v in data.items() if v})
    b = _Builder()
    stack: list[tuple[int, str]] = []
    h1 = ""
    for kind, text in ex.blocks:
        if kind.startswith("h"):
            level = int(kind[1])
            if level == 1:
                h1 = h1 or text
                stack.clear()
                continue
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
        else:
            b.add(text, " > ".join(t for _, t in stack))
    if not meta.title:
        meta.title = h1
    return ParsedDocument(meta=meta, text=b.text(), sections=b.sections, pages=None, kind="html")


# ---------------------------------------------------------------------------------------------
# PDF


def _parse_pdf(path: Path, limits: Limits) -> ParsedDocument:
    from .pdf import extract_pdf

    extract = extract_pdf(
        path,
        max_bytes=limits.max_bytes,
        max_pages=limits.max_pages,
        timeout_s=limits.pdf_timeout_s,
        memory_mb=limits.pdf_memory_mb,
    )
    return pdf_pages_to_document(extract.pages, extract.meta)


def pdf_pages_to_document(pages: list[str], pdf_meta: dict | None = None) -> ParsedDocument:
    pdf_meta = pdf_meta or {}
    b = _Builder()
    tracker = SectionTracker()
    for page_no, page_text in enumerate(pages, start=1):
        lines: list[str] = []
        for line in page_text.split("\n"):
            heading = classify_line(line)
            if heading:
                for para in _paragraphs(lines):
                    b.add(para, tracker.path(), page_no)
                lines = []
                tracker.see(heading)
                continue
            lines.append(line)
        for para in _paragraphs(lines):
            b.add(para, tracker.path(), page_no)
    title = str(pdf_meta.get("title") or "").strip()
    meta = DocumentMeta(title=title if len(title) > 3 else "")
    return ParsedDocument(meta=meta, text=b.text(), sections=b.sections, pages=len(pages), kind="pdf")
