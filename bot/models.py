"""Plain data passed between the core and its edges (CLI, Discord). Citations are data, not strings."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class DocumentMeta:
    """Descriptive metadata of a document (front matter, <meta> tags, upload options)."""

    title: str = ""
    union: str = ""
    agreement: str = ""
    year: int | None = None
    status: str = "current"  # current | superseded
    doc_type: str = ""  # contract | summary | law | bill | news | ...
    url: str = ""
    publisher: str = ""
    date: str = ""
    sources: list[str] = field(default_factory=list)
    note: str = ""

    def merged(self, override: dict[str, Any] | None) -> "DocumentMeta":
        """Return a copy where non-empty values of `override` win."""
        data = asdict(self)
        for key, value in (override or {}).items():
            if key in data and value not in (None, "", []):
                data[key] = value
        year = data.get("year")
        if year in (None, ""):
            data["year"] = None
        else:
            digits = "".join(ch for ch in str(year) if ch.isdigit())[:4]
            data["year"] = int(digits) if len(digits) == 4 else None
        return DocumentMeta(**data)


@dataclass
class Section:
    """A contiguous piece of a parsed document with one section path and one page span."""

    text: str
    section: str  # e.g. "Article 72 > 72.B Disclosure"
    page_start: int | None
    page_end: int | None
    char_start: int  # offsets into the document's full cleaned text
    char_end: int
    # path of the enclosing section without its paragraph/clause labels ("§ 396-b. Advertisements" for
    # "§ 396-b. Advertisements > 1 > (a)"); None when the parser does not know (then: `section`)
    parent_section: str | None = None


@dataclass
class ParsedDocument:
    meta: DocumentMeta
    text: str  # full cleaned text
    sections: list[Section]
    pages: int | None  # page count for PDFs, None for text formats
    kind: str  # pdf | markdown | html | text


@dataclass
class Chunk:
    doc_id: str
    ordinal: int
    text: str
    section: str
    page_start: int | None
    page_end: int | None
    char_start: int
    char_end: int
    id: int | None = None  # SQLite rowid == FAISS id
    page_map: list[tuple[int, int]] | None = None  # (offset in chunk text, page) where each page starts
    # the enclosing section ("Section 2" for "Section 2 > 3. \"Forged digital likeness\"") and its span
    # in the document text, for showing or scoring a passage with its section's context
    parent_section: str | None = None
    parent_start: int | None = None
    parent_end: int | None = None


@dataclass
class DocumentInfo:
    doc_id: str
    title: str
    union: str
    agreement: str
    year: int | None
    status: str
    doc_type: str
    url: str
    source_path: str
    pages: int | None
    chunks: int
    sha256: str
    added_at: str


@dataclass
class IngestResult:
    path: str
    status: str  # added | unchanged | replaced | refused
    reason: str = ""  # for refused: the human-readable reason
    reason_code: str = ""
    doc_id: str = ""
    title: str = ""
    pages: int | None = None
    chunks: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "reason": self.reason,
            "doc_id": self.doc_id,
            "pages": self.pages,
            "chunks": self.chunks,
            "title": self.title,
            "reason_code": self.reason_code,
        }


@dataclass
class Citation:
    n: int
    doc_id: str
    title: str
    section: str
    page_start: int | None
    page_end: int | None
    quote: str  # short verbatim excerpt of `text`
    text: str  # the whole cited chunk
    url: str
    score: float
    chunk_id: int = 0
    status: str = "current"
    year: int | None = None
    union: str = ""

    def pages_label(self) -> str:
        if self.page_start is None:
            return ""
        if self.page_end is None or self.page_end == self.page_start:
            return f"p. {self.page_start}"
        return f"pp. {self.page_start}\u2013{self.page_end}"

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "doc_id": self.doc_id,
            "title": self.title,
            "section": self.section,
            "page_start": self.page_start,
            "page_end": self.page_end,
            "quote": self.quote,
            "text": self.text,
            "url": self.url,
            "score": round(float(self.score), 4),
            "status": self.status,
            "year": self.year,
        }


DISCLAIMER = "Not legal advice \u2014 check with your union rep."


@dataclass
class Answer:
    question: str
    text: str  # the answer body with [n] markers (no sources list, no disclaimer)
    abstained: bool
    citations: list[Citation]
    latency_ms: float = 0.0
    answer_id: str = ""
    note: str = ""  # e.g. "My documents don't cover a 2029 DGA agreement."
    disclaimer: str = DISCLAIMER
    partial: bool = False  # the documents cover the topic but not what was asked (counts as abstained)
    generated: bool = False  # text written by the optional LLM (and checked by its guard)
    fallback_reason: str = ""  # why an LLM answer was not used

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [c.to_json() for c in self.citations],
            "latency_ms": round(self.latency_ms, 2),
            "answer_id": self.answer_id,
            "note": self.note,
            "partial": self.partial,
            "generated": self.generated,
            "disclaimer": self.disclaimer,
        }
