"""Split a parsed document into chunks sized in the embedding model's own tokens.

Chunks follow the document's outline: a chunk holds whole clauses (numbered paragraphs, (a)/(1)/(i)
clauses) where they fit, so it starts with its clause label, and small sibling clauses of one section
may share a chunk up to the token budget. A clause longer than the budget is split at sentence
boundaries, overlapping by whole sentences, with its label path kept in `section`. Chunks never cross
documents or enclosing sections, and keep page span and character offsets into the document text (so
a quote can be checked against the original) plus the enclosing section's path and span.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from .models import Chunk, ParsedDocument, Section
from .textsplit import ITEM_LABEL, sentence_spans

_SKIP_SECTION = re.compile(r"(?:^|> )(?:Sources?|References|Source list)$", re.I)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Return (start, end) spans of sentences in `text` (end exclusive, trailing space excluded)."""
    return sentence_spans(text)


@dataclass
class _Unit:
    start: int
    end: int
    section: str
    pages: list[tuple[int, int | None]]  # (char offset where a page starts, page number)
    parent: str = ""

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
        parent = s.section if s.parent_section is None else s.parent_section
        if last and last.section == s.section and last.parent == parent and s.char_start - last.end <= 2:
            last.end = s.char_end
            if last.pages[-1][1] != s.page_start:
                last.pages.append((s.char_start, s.page_start))
        else:
            units.append(_Unit(s.char_start, s.char_end, s.section, [(s.char_start, s.page_start)], parent))
    return units


def _groups(units: list[_Unit]) -> list[list[_Unit]]:
    """Runs of consecutive units under one enclosing section."""
    groups: list[list[_Unit]] = []
    for u in units:
        if groups and groups[-1][-1].parent == u.parent and u.start - groups[-1][-1].end <= 2:
            groups[-1].append(u)
        else:
            groups.append([u])
    return groups


def _merge_pages(units: list[_Unit]) -> _Unit:
    pages: list[tuple[int, int | None]] = []
    for u in units:
        for off, number in u.pages:
            if not pages or pages[-1][1] != number:
                pages.append((off, number))
    return _Unit(units[0].start, units[-1].end, units[0].section, pages, units[0].parent)


_LEAD_LABEL = re.compile(r"^(?:\(\w{1,7}\)|\w{1,7}(?=\.|$))")


def _labels(parts: list[str]) -> str:
    """'(a) "TERM"', '(iv)' -> '(a)(iv)'; '4. "Fund-raising"' -> '4'; '' when a part has no label."""
    out = ""
    for part in parts:
        m = _LEAD_LABEL.match(part)
        if not m:
            return ""
        out += m.group(0)
    return out


# the label of an item of an enumeration run on inside one paragraph: at the chunk's start, or after "; "
_INLINE_ITEM = re.compile(r"(?:^|;\s+(?:and\s+|or\s+)?)(" + ITEM_LABEL + r")\s")


def inline_items_section(section: str, chunk_text: str) -> str:
    """A long clause whose items run on in one paragraph ("(1) 'AI system' means …; (3) …; (4) …") is
    cut between items; each piece names the items it holds ("Definitions > (4)–(11)") instead of the
    first item of the clause. Only a label is replaced, never a heading."""
    parts = section.split(" > ") if section else []
    if not parts or not re.fullmatch(r"\(\w{1,7}\)", parts[-1]):
        return section
    if not _INLINE_ITEM.match(chunk_text):
        return section
    labels = [m.group(1) for m in _INLINE_ITEM.finditer(chunk_text)]
    label = labels[0] if labels[-1] == labels[0] else f"{labels[0]}\u2013{labels[-1]}"
    return " > ".join(parts[:-1] + [label])


def span_section(paths: Sequence[str]) -> str:
    """The section a chunk of several consecutive units names: their common path, plus the range of
    labels they cover when the chunk starts at a clause ("Section 4 > 4\u20136")."""
    if len(set(paths)) == 1:
        return paths[0]
    split = [p.split(" > ") if p else [] for p in paths]
    common: list[str] = []
    for parts in zip(*split):
        if all(x == parts[0] for x in parts):
            common.append(parts[0])
        else:
            break
    first, last = split[0], split[-1]
    depth = len(common)
    if len(first) > depth and len(last) > depth:
        a_label, b_label = _labels(first[depth:]), _labels(last[depth:])
        if a_label and b_label and a_label != b_label:
            return " > ".join(common + [f"{a_label}\u2013{b_label}"])
    return " > ".join(common)


def chunk_document(
    doc: ParsedDocument,
    doc_id: str,
    count_tokens: Callable[[Sequence[str]], list[int]],
    max_tokens: int = 180,
    overlap_tokens: int = 40,
) -> list[Chunk]:
    chunks: list[Chunk] = []
    text = doc.text
    units = [u for u in _units(doc.sections) if not _SKIP_SECTION.search(u.section)]
    # reference lists are kept in the document, not retrieved as passages
    for group in _groups(units):
        pages = _merge_pages(group)
        parent, p_start, p_end = group[0].parent, group[0].start, group[-1].end
        # sentence spans and token counts of every unit of the section, counted in one call
        unit_spans = []
        for u in group:
            body = text[u.start:u.end]
            unit_spans.append([(u.start + a, u.start + b) for a, b in split_sentences(body)])
        unit_spans = _split_long(text, unit_spans, count_tokens, max_tokens)
        flat = [sp for spans in unit_spans for sp in spans]
        if not flat:
            continue
        counts = count_tokens([text[a:b] for a, b in flat])
        unit_tokens, k = [], 0
        for spans in unit_spans:
            unit_tokens.append(counts[k:k + len(spans)])
            k += len(spans)

        def emit(start: int, end: int, section: str) -> None:
            chunks.append(Chunk(
                doc_id=doc_id, ordinal=len(chunks), text=text[start:end], section=section,
                page_start=pages.page_at(start), page_end=pages.page_at(end - 1),
                char_start=start, char_end=end, page_map=pages.page_map(start, end),
                parent_section=parent or None, parent_start=p_start, parent_end=p_end,
            ))

        i = 0
        while i < len(group):
            spans, tokens = unit_spans[i], unit_tokens[i]
            if not spans:
                i += 1
                continue
            total = sum(tokens)
            if total > max_tokens:
                _emit_sentences(spans, tokens, max_tokens, overlap_tokens,
                                lambda a, b: emit(a, b, inline_items_section(group[i].section, text[a:b])))
                i += 1
                continue
            # whole clauses: this one and the following small ones while they fit
            j = i + 1
            while j < len(group) and unit_spans[j] and total + sum(unit_tokens[j]) <= max_tokens:
                total += sum(unit_tokens[j])
                j += 1
            last = max(x for x in range(i, j) if unit_spans[x])
            emit(spans[0][0], unit_spans[last][-1][1], span_section([group[x].section for x in range(i, j)]))
            i = j
    return chunks


def _emit_sentences(spans, tokens, max_tokens, overlap_tokens, emit) -> None:
    """Pack sentences of one over-long clause into chunks, overlapping by whole sentences."""
    i = 0
    while i < len(spans):
        j, total = i, 0
        while j < len(spans) and (total + tokens[j] <= max_tokens or j == i):
            total += tokens[j]
            j += 1
        emit(spans[i][0], spans[j - 1][1])
        if j >= len(spans):
            break
        back, k = 0, j
        while k - 1 > i and back + tokens[k - 1] <= overlap_tokens and back + tokens[k - 1] + tokens[j] <= max_tokens:
            k -= 1  # (an overlap that leaves no room for the next sentence would make a chunk of old text)
            back += tokens[k]
        i = k


def _split_long(text, unit_spans, count_tokens, max_tokens):
    """Break any sentence longer than max_tokens at word boundaries (one counting call for all)."""
    flat = [sp for spans in unit_spans for sp in spans]
    counts = count_tokens([text[s:e] for s, e in flat]) if flat else []
    if not any(n > max_tokens for n in counts):
        return unit_spans
    out, k = [], 0
    for spans in unit_spans:
        pieces = []
        for s, e in spans:
            n = counts[k]
            k += 1
            if n <= max_tokens:
                pieces.append((s, e))
                continue
            words = [(m.start() + s, m.end() + s) for m in re.finditer(r"\S+", text[s:e])]
            per = max(1, int(len(words) * max_tokens / n * 0.9))
            for w in range(0, len(words), per):
                group = words[w:w + per]
                pieces.append((group[0][0], group[-1][1]))
        out.append(pieces)
    return out
