"""Detect document structure in plain lines: articles, sections, sideletters, numbered paragraphs.

Used for PDFs and plain text (Markdown and HTML use their own headings). Each heading found becomes
part of the section path of the text that follows it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Level 1: ARTICLE 72 / Article 72 — GENERATIVE ARTIFICIAL INTELLIGENCE / SIDELETTER 5 / Exhibit A / Appendix B
_L1 = re.compile(
    r"^\s*((?:ARTICLE|Article)\s+[0-9IVXLC]+[A-Z]?\b.*|"
    r"(?:SIDELETTER|Sideletter|SIDE LETTER|Side Letter)\b.*|"
    r"(?:EXHIBIT|Exhibit|APPENDIX|Appendix|SCHEDULE|Schedule)\s+[A-Z0-9]+\b.*)$"
)
# Level 2: Section 16.B / SECTION 7-202 / § 927 / 72.C. Title
_L2 = re.compile(
    r"^\s*((?:SECTION|Section|Sec\.|§)\s*[0-9]+(?:[.\-][0-9A-Za-z]+)*\b.*|"
    r"[0-9]{1,3}\.[A-Z](?:\.[0-9]+)?\.?\s+[A-Z][^.]{0,80})$"
)
# Level 3: numbered paragraphs "1." "(a)" "a." at the start of a short title-like line
_L3 = re.compile(r"^\s*((?:\(?[0-9]{1,2}\)|[0-9]{1,2}\.|\([a-z]\)|[a-z]\.)\s+[A-Z][^.]{2,70})$")

_MAX_HEADING = 120


@dataclass
class Heading:
    level: int
    title: str


def classify_line(line: str) -> Heading | None:
    """Return the heading a line starts, or None for body text."""
    stripped = line.strip()
    if not stripped or len(stripped) > _MAX_HEADING:
        return None
    for level, pattern in ((1, _L1), (2, _L2), (3, _L3)):
        m = pattern.match(stripped)
        if m and _continues_sentence(stripped):
            return None  # "Article 72 of this Agreement and the writer may" is body text, not a heading
        if m:
            title = re.sub(r"\s+", " ", m.group(1)).strip().rstrip(":")
            # A level-2/3 "heading" that reads like a sentence is body text.
            if level > 1 and stripped.endswith((".", ",", ";")) and len(stripped) > 60:
                return None
            return Heading(level, title)
    return None


_NUMBERED = re.compile(r"^(?:ARTICLE|Article|SIDELETTER|Sideletter|SIDE LETTER|Side Letter|EXHIBIT|Exhibit|APPENDIX|"
                       r"Appendix|SCHEDULE|Schedule|SECTION|Section|Sec\.|§)?\s*[0-9IVXLC]*[0-9A-Za-z.\-]*\s*")


def _continues_sentence(line: str) -> bool:
    """A line whose words after the number start in lower case (or that ends mid-sentence with a
    comma or conjunction) is a wrapped line of body text."""
    rest = _NUMBERED.sub("", line, count=1).lstrip(" .:\u2014-")
    first = rest.split(" ", 1)[0] if rest else ""
    if first and first[0].islower():
        return True
    return bool(re.search(r"(?:,|\b(?:and|or|the|of|to|a|an|in|by|for|with|that|may|shall))$", line.strip()))


class SectionTracker:
    """Keeps the current section path as headings are seen."""

    def __init__(self) -> None:
        self._stack: list[Heading] = []

    def see(self, heading: Heading) -> None:
        while self._stack and self._stack[-1].level >= heading.level:
            self._stack.pop()
        self._stack.append(heading)

    def path(self) -> str:
        return " > ".join(h.title for h in self._stack)
