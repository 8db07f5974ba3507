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
from .structure import OutlineReader, is_bare_label, is_generic_heading


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

    def add(self, text: str, section: str, page: int | None = None, parent: str | None = None) -> None:
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
        if (last and last.section == section and last.page_end == page and last.char_end + 2 == start
                and last.parent_section == parent):
            # extend the previous section (same path, same page)
            last.text = last.text + "\n\n" + text
            last.char_end = self.length
        else:
            self.sections.append(Section(text, section, page, page, start, self.length, parent))

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


_MD_BULLET = re.compile(r"^\s*[-*+]\s+")
_MD_ORDERED = re.compile(r"^\s*\d{1,3}[.)]\s+")
_MD_RULE = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,})\s*$")
_MD_QUOTE = re.compile(r"^\s{0,3}>\s?")
_MD_COMMENT = re.compile(r"^\s*<!--.*-->\s*$")


def parse_markdown(raw: str) -> ParsedDocument:
    data, body = parse_front_matter(raw.replace("\r\n", "\n"))
    meta = meta_from_dict(data)
    b = _Builder()
    reader = OutlineReader(lambda text, path, parent, page: b.add(text, path, None, parent))
    stack: list[tuple[int, str]] = []
    title = ""
    first_heading = ""
    in_code = False

    for line in body.split("\n"):
        if line.strip().startswith("```"):
            in_code = not in_code
            reader.end_list()
            continue
        m = None if in_code else _MD_HEADING.match(line)
        if m:
            level, text = len(m.group(1)), _md_inline(m.group(2)).strip()
            if level == 1 and not title and not is_generic_heading(text):
                title = text
                stack.clear()
                reader.set_base([])
                continue  # the document title is not a section
            if not first_heading and not is_generic_heading(text) and not is_bare_label(text):
                first_heading = text
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
            reader.set_base([t for _, t in stack])
            continue
        if in_code:
            reader.feed(line)
            continue
        if _MD_RULE.match(line) or _MD_COMMENT.match(line):
            reader.end_list()
            continue
        if ">" in line:
            line = _MD_QUOTE.sub("", line)  # block quote
        if _MD_BULLET.match(line):
            # each bullet item is its own paragraph, without its marker
            reader.boundary()
            reader.feed(_md_inline(_MD_BULLET.sub("", line)))
            reader.boundary()
            continue
        if _MD_ORDERED.match(line):
            # an ordered item keeps its number: in legal text "3." is the paragraph's label
            reader.boundary()
            reader.feed(_md_inline(line))
            continue
        reader.feed(_md_inline(line))
    reader.flush()
    if not meta.title:
        meta.title = title or first_heading
    return ParsedDocument(meta=meta, text=b.text(), sections=b.sections, pages=None, kind="markdown")


# ---------------------------------------------------------------------------------------------
# Plain text


def parse_text(raw: str) -> ParsedDocument:
    data, body = parse_front_matter(raw.replace("\r\n", "\n"))
    meta = meta_from_dict(data)
    b = _Builder()
    reader = OutlineReader(lambda text, path, parent, page: b.add(text, path, None, parent))
    lines = body.split("\n")
    for line in lines:
        reader.feed(line)
    reader.flush()
    if not meta.title:
        meta.title = first_title_line(lines) or reader.first_heading
    return ParsedDocument(meta=meta, text=b.text(), sections=b.sections, pages=None, kind="text")


_URLISH = re.compile(r"(?:https?://|www\.|\b[\w-]+\.(?:org|com|gov|net|eu|edu|io)\b)", re.I)


def _not_a_title(s: str, words: list[str]) -> bool:
    """What no title looks like, line or block: the lower-case continuation of a wrapped line, ends like a
    sentence or a list item, a breadcrumb, a web address, a "Key: value" header, two sentences, a generic
    heading or bare label, or letter-spaced text ("S T A T E  O F ...")."""
    return bool(s[:1].islower() or s.endswith((".", ",", ";", ":")) or " > " in s or _URLISH.search(s)
                or re.match(r"^[A-Z][\w /#-]{0,30}:\s", s) or re.search(r"[a-z]\. [A-Z]", s)
                or is_generic_heading(s) or is_bare_label(s) or sum(len(w) == 1 for w in words) > len(words) / 2)


def opening_title(block: str) -> str:
    """The document's opening block when it is a heading: a title wrapped over two or three lines of a
    PDF ("Assembly Bill No. 2839, Chapter 262 (California, 2023-2024) — Elections: deceptive media in
    advertisements") is one block, where the line-by-line check below would take its last line."""
    s = re.sub(r"\s+", " ", block.strip().lstrip("#").strip())
    words = s.split()
    if not 2 <= len(words) <= 48 or len(s) > 320 or not s[:1].isupper() or _not_a_title(s, words):
        return ""
    return s


def first_title_line(lines: list[str], look: int = 6) -> str:
    """The first of the opening lines that reads like a document title: a few words, no full stop, not
    a "Key: value" header, a breadcrumb, a web address, a page number, a bare label or a generic
    heading ("Summary", "Contents"), and not a wrapped line of body text (as long as the lines around
    it, or continued in lower case on the next line)."""
    opening = [re.sub(r"\s+", " ", ln.strip()) for ln in lines if ln.strip()][:look + 6]
    for i, s in enumerate(opening[:look]):
        words = s.split()
        after = opening[i + 1] if i + 1 < len(opening) else ""
        longest = max((len(x) for x in opening[i + 1:i + 6]), default=0)
        if (len(s) > 150 or len(words) < 2 or len(words) > 25 or _not_a_title(s, words)
                or (", " in s and len(words) > 8) or after[:1].islower()
                or (longest >= 60 and len(s) >= 0.85 * longest) or not any(ch.isalpha() for ch in s)):
            continue
        return s
    return ""


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
    reader = OutlineReader(lambda text, path, parent, page: b.add(text, path, None, parent), headings=False)
    stack: list[tuple[int, str]] = []
    h1 = ""
    for kind, text in ex.blocks:
        if kind.startswith("h"):
            level = int(kind[1])
            if level == 1 and not h1 and not is_generic_heading(text):
                h1 = text
                stack.clear()
                reader.set_base([])
                continue
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
            reader.set_base([t for _, t in stack])
        else:
            reader.boundary()
            reader.feed(text)
    reader.flush()
    if not meta.title:
        meta.title = h1
    return ParsedDocument(meta=meta, text=b.text(), sections=b.sections, pages=None, kind="html")


# ---------------------------------------------------------------------------------------------
# PDF


def read_pdf(path: Path, limits: Limits):
    """The cleaned per-page text and metadata of a PDF (`PdfExtract`), within `limits`."""
    from .pdf import extract_pdf

    return extract_pdf(
        path,
        max_bytes=limits.max_bytes,
        max_pages=limits.max_pages,
        timeout_s=limits.pdf_timeout_s,
        memory_mb=limits.pdf_memory_mb,
    )


def _parse_pdf(path: Path, limits: Limits) -> ParsedDocument:
    extract = read_pdf(path, limits)
    return pdf_pages_to_document(extract.pages, extract.meta)


def pdf_pages_to_document(pages: list[str], pdf_meta: dict | None = None) -> ParsedDocument:
    pdf_meta = pdf_meta or {}
    b = _Builder()
    reader = OutlineReader(lambda text, path, parent, page: b.add(text, path, page, parent))
    for page_no, page_text in enumerate(pages, start=1):
        for line in page_text.split("\n"):
            reader.feed(line, page_no)
        reader.end_page()
    reader.flush()
    title = str(pdf_meta.get("title") or "").strip()
    if not is_real_pdf_title(title):
        first_page = next((p for p in pages if p.strip()), "")
        first_line = next((ln.strip() for ln in first_page.split("\n") if ln.strip()), "")
        # a first line that runs to the margin may be a long title wrapped onto the next line(s)
        wrapped = opening_title(b.sections[0].text) if b.sections and len(first_line) >= 60 else ""
        title = wrapped or first_title_line(first_page.split("\n")) or reader.first_heading
    meta = DocumentMeta(title=title)
    return ParsedDocument(meta=meta, text=b.text(), sections=b.sections, pages=len(pages), kind="pdf")


_JUNK_TITLE = re.compile(
    r"^(?:microsoft\s+(?:word|excel|powerpoint)\b.*|untitled\b.*|document\s*\d*|title|slide\s*\d+|"
    r"print|pdf|scan\w*\s*\d*|new document|draft|none|unknown|\W*)$|"
    r"\.(?:docx?|pdf|txt|rtf|odt|pages|md|html?|indd|tex|xlsx?|pptx?)$|[\\/]", re.I)


def is_real_pdf_title(title: str) -> bool:
    """A PDF's metadata title is often the authoring tool's placeholder: "Microsoft Word - x.docx",
    "untitled", a file name or path. Those are not titles."""
    title = title.strip()
    if len(title) <= 3 or _JUNK_TITLE.search(title) or is_generic_heading(title):
        return False
    return any(ch.isalpha() for ch in title)
