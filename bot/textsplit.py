"""Split long text into pieces that fit a length limit, at the gentlest boundary available.

Pure functions, no Discord import. Discord's limits live here as named constants so the renderer
and its tests speak the same numbers.

Order of preference: paragraph ("\\n\\n") > line ("\\n") > sentence > word. A citation marker such
as "[3]" or "[1, 2]" stays glued to the word before it, so a piece never starts with an orphaned
marker and a marker is never cut. Only a single unbroken token longer than the limit (a giant URL)
is cut mid-token: the limit is the one rule that must always hold.
"""
from __future__ import annotations

import re

MESSAGE_LIMIT = 2000
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELD_LIMIT = 1024
EMBED_TITLE_LIMIT = 256
EMBED_FIELD_NAME_LIMIT = 256
EMBED_FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000
EMBED_FIELDS_MAX = 25
EMBEDS_PER_MESSAGE = 10

_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_LINE = re.compile(r"[ \t]*\n\s*")
# A sentence ends with . ! ? (optionally closing quotes/brackets and trailing citation markers),
# followed by whitespace. The split happens in the whitespace, so markers stay with their sentence.
_SENTENCE = re.compile(r"(?<=[.!?])(?:[\"'\u201d\u2019)\]]*)?(?:\s*\[\d+(?:\s*[,\u2013-]\s*\d+)*\])*\s+")
_MARKER = re.compile(r"^\[\d+(?:\s*[,\u2013-]\s*\d+)*\][.,;:!?)\]\"'\u201d\u2019]*$")


def _sentences(text: str) -> list[str]:
    out, start = [], 0
    for m in _SENTENCE.finditer(text):
        # keep the trailing markers/quotes with the sentence: split at the first whitespace that
        # follows them, i.e. at the end of the match minus its trailing whitespace.
        body_end = m.start() + len(m.group(0).rstrip())
        out.append(text[start:body_end])
        start = m.end()
    out.append(text[start:])
    return [s for s in (p.strip() for p in out) if s]


_TOKEN = re.compile(r"\S*?\[\d+(?:\s*[,\u2013-]\s*\d+)*\]\S*|\S+")


def _words(text: str) -> list[str]:
    tokens = _TOKEN.findall(text)  # a multi-number marker "[1, 2]" is one token
    words: list[str] = []
    for tok in tokens:
        if words and _MARKER.match(tok):
            words[-1] = f"{words[-1]} {tok}"  # "[3]" rides with the word it cites
        else:
            words.append(tok)
    return words


def _hard_cut(token: str, limit: int) -> list[str]:
    return [token[i : i + limit] for i in range(0, len(token), limit)]


_LEVELS = (
    (lambda t: [p for p in _PARAGRAPH.split(t) if p.strip()], "\n\n"),
    (lambda t: [p for p in _LINE.split(t) if p.strip()], "\n"),
    (_sentences, " "),
    (_words, " "),
    (str.split, " "),  # a word glued to its marker that is still too long: let go of the glue
)


def _split(text: str, limit: int, level: int) -> list[str]:
    if len(text) <= limit:
        return [text]
    if level >= len(_LEVELS):
        return _hard_cut(text, limit)
    splitter, joiner = _LEVELS[level]
    units = splitter(text)
    if len(units) <= 1:
        return _split(text, limit, level + 1)
    pieces: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current}{joiner}{unit}" if current else unit
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
            current = ""
        if len(unit) <= limit:
            current = unit
        else:
            sub = _split(unit, limit, level + 1)
            pieces.extend(sub[:-1])
            current = sub[-1]
    if current:
        pieces.append(current)
    return pieces


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split `text` into stripped, non-empty pieces of at most `limit` characters.

    Returns [] for blank text. Joining the pieces with whitespace gives back the same words in the
    same order (whitespace inside a paragraph may be normalised to single spaces where it was split).
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    text = (text or "").strip()
    if not text:
        return []
    return [p.strip() for p in _split(text, limit, 0) if p.strip()]


def truncate(text: str, limit: int, ellipsis: str = "\u2026") -> str:
    """Shorten `text` to at most `limit` characters at a word boundary, adding an ellipsis."""
    text = (text or "").strip()
    if len(text) <= limit:
        return text
    room = max(1, limit - len(ellipsis))
    cut = text[:room]
    space = cut.rfind(" ")
    if space >= room // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + ellipsis
