"""Split a parsed document into chunks sized in the embedding model's own tokens.

Chunks never cross documents or section paths; they follow sentence boundaries, overlap by whole
sentences, and keep page span and character offsets into the document text (so a quote can be
checked against the original).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from .models import Chunk, ParsedDocument, Section

# Sentence end: . ! ? (optionally followed by a quote/bracket) then whitespace and an upper-case
# letter, digit, quote or bracket. Avoids splitting "Art. 16.B", "U.S.", "e.g. the", "No. 446".
_ABBREV = re.compile(r"(?:\b(?:[A-Z]|Art|Sec|Secs|No|Nos|Mr|Ms|Mrs|Dr|St|Inc|Co|Corp|Ltd|Jr|Sr|vs|etc|e\.g|i\.e|U\.S|Gov|Sen|Sens|Rep|Reps|H\.R|S|pp|p|approx|Ch|Stats|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.)$")
_SKIP_SECTION = re.compile(r"(?:^|> )(?:Sources|References|Source list)$", re.I)
_SENT_END = re.compile(r"[.!?][\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Return (start, end) spans of sentences in `text` (end exclusive, trailing space excluded)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENT_END.finditer(text):
        end = m.start() + 1
        # include closing quotes/brackets
        while end < len(text) and text[end] in "\"'”’)]":
            end += 1
        if _ABBREV.search(text[max(start, end - 8):end]):
            continue
        if end - start < 2:
            continue
        spans.append((start, end))
        start = m.end()
    tail = text[start:].rstrip()
    if tail.strip():
        spans.append((start, start + len(tail)))
    # also split on paragraph breaks inside a "sentence"
    out: list[tuple[int, int]] = []
    for s, e in spans:
        piece = text[s:e]
        pos = 0
        for part in re.split(r"(\n\s*\n)", piece):
            if part.strip() and not re.fullmatch(r"\n\s*\n", part):
                lead = len(part) - len(part.lstrip())
                out.append((s + pos + lead, s + pos + len(part.rstrip())))
            pos += len(part)
    return out


@dataclass
class _Unit:
    start: int
    end: int
    section: str
    pages: list[tuple[int, int | None]]  # (char offset where a page starts, page number)

    def page_map(self, start: int, end: int) -> list[tuple[int, int]] | None:
        """Where each page starts inside text[start:end], as (offset from start, page number)."""
        first = self.page_at(start)
        if first is None:
            return None
        out = [(0, first)]
        for off, number in self.pages:
            if start < off < end and number is not None:
                out.append((off - start, number))
        return out

    def page_at(self, offset: int) -> int | None:
        page = None
        for start, number in self.pages:
            if start <= offset:
                page = number
            else:
                break
        return page


def _units(sections: Sequence[Section]) -> list[_Unit]:
    units: list[_Unit] = []
    for s in sections:
        last = units[-1] if units else None
        if last and last.section == s.section and s.char_start - last.end <= 2:
            last.end = s.char_end
            if last.pages[-1][1] != s.page_start:
                last.pages.append((s.char_start, s.page_start))
        else:
            units.append(_Unit(s.char_start, s.char_end, s.section, [(s.char_start, s.page_start)]))
    return units


def chunk_document(
    doc: ParsedDocument,
    doc_id: str,
    count_tokens: Callable[[Sequence[str]], list[int]],
    max_tokens: int = 180,
    overlap_tokens: int = 40,
) -> list[Chunk]:
    chunks: list[Chunk] = []
    text = doc.text
    for unit in _units(doc.sections):
        if _SKIP_SECTION.search(unit.section):
            continue  # reference lists are kept in the document, not retrieved as passages
        body = text[unit.start:unit.end]
        spans = [(unit.start + s, unit.start + e) for s, e in split_sentences(body)]
        spans = _split_long(text, spans, count_tokens, max_tokens)
        if not spans:
            continue
        tokens = count_tokens([text[s:e] for s, e in spans])
        i = 0
        while i < len(spans):
            j, total = i, 0
            while j < len(spans) and (total + tokens[j] <= max_tokens or j == i):
                total += tokens[j]
                j += 1
            start, end = spans[i][0], spans[j - 1][1]
            chunks.append(
                Chunk(
                    doc_id=doc_id,
                    ordinal=len(chunks),
                    text=text[start:end],
                    section=unit.section,
                    page_start=unit.page_at(start),
                    page_end=unit.page_at(end - 1),
                    char_start=start,
                    char_end=end,
                    page_map=unit.page_map(start, end),
                )
            )
            if j >= len(spans):
                break
            # overlap: step back over whole sentences worth up to overlap_tokens
            back, k = 0, j
            while k - 1 > i and back + tokens[k - 1] <= overlap_tokens:
                k -= 1
                back += tokens[k]
            i = k
    return chunks


def _split_long(text, spans, count_tokens, max_tokens):
    """Break any sentence longer than max_tokens at word boundaries."""
    counts = count_tokens([text[s:e] for s, e in spans]) if spans else []
    out = []
    for (s, e), n in zip(spans, counts):
        if n <= max_tokens:
            out.append((s, e))
            continue
        words = [(m.start() + s, m.end() + s) for m in re.finditer(r"\S+", text[s:e])]
        per = max(1, int(len(words) * max_tokens / n * 0.9))
        for k in range(0, len(words), per):
            group = words[k:k + per]
            out.append((group[0][0], group[-1][1]))
    return out
