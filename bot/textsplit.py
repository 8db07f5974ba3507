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


# ---------------------------------------------------------------------------------------------
# Sentences with exact offsets, for chunking and quoting

# Abbreviations after which a full stop does not end a sentence (compared lower case, without the
# final "."). Legal references first, then titles, company forms, months and Latin.
_NON_TERMINAL = frozenset(
    """
    art arts sec secs ss no nos para paras par pars subd subds subdiv subpara subparas cl cls ch chs chap
    pt pts tit vol vols p pp fn n nn app div ord reg regs stat stats ann rev supp amend cf v vs viz
    id ibid op cit seq al etc approx ca fig figs ex exh sch sched
    mr ms mrs mx dr prof hon sen sens rep reps gov gen atty assemb st jr sr messrs
    inc co corp ltd bros dept assn intl natl univ
    jan feb mar apr jun jul aug sep sept oct nov dec
    """.split()
)
# End of sentence: . ! ? (optionally closing quotes/brackets) then whitespace, then something that can
# start a sentence (upper-case letter, digit, opening quote/bracket, section sign).
_SENT_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[\u00a7]?[A-Z0-9\u00a7])")
_ACRONYM = re.compile(r"(?:[a-z]\.)+[a-z]")
# A sentence that so far is only a label ("1.", "(a).", "iv.", "Sec. 2.", "Section 1.", "§ 396-b.")
_LABEL_ONLY = re.compile(
    r"(?:\(?(?:[0-9]{1,3}[A-Za-z]?|[A-Za-z]|[ivxlcIVXLC]{1,6})\)?"
    r"|(?:\u00a7{1,2}|SECTIONS?|Sections?|SEC|Sec|Secs|ARTICLE|Article|Art)\.?\s*[0-9][0-9A-Za-z.\-]*)\.",
)
_PARA_BREAK = re.compile(r"\n[ \t]*\n")
# An enumeration item inside one long sentence: "…activity; (9) 'placing on the market' means …",
# "…consent; and (b) the use …". The boundary is after the semicolon (and its "and"/"or").
ITEM_LABEL = r"\((?:[0-9]{1,3}[A-Za-z]?|[a-z]{1,2}|[ivxlc]{1,6}|[A-Z])\)"  # (1) (4a) (b) (iv) (A)
_ITEM_BOUNDARY = re.compile(r";(?:\s+(?:and|or))?\s+(?=" + ITEM_LABEL + r"\s)")
LONG_SENTENCE = 300  # chars; a sentence longer than a quote may be (compose.MAX_QUOTE) is split at its items


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences of `text`: end exclusive, surrounding spaces excluded.

    A full stop after a legal or common abbreviation ("Sec.", "No.", "para.", "subd.", "et seq.",
    "et al.", "U.S.C.", "e.g.", "Jan.") or after a label at the start of a sentence ("1.", "(a).",
    "Sec. 2.", "§ 396-b.") does not end the sentence. Paragraph breaks always do.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENT_END.finditer(text):
        stop = m.start()  # the . ! ?
        end = stop + 1
        while end < len(text) and text[end] in "\"'\u201d\u2019)]":
            end += 1
        if text[stop] == "." and _not_an_end(text, start, stop):
            continue
        if end - start < 2:
            continue
        spans.append((start, end))
        start = m.end()
    tail = text[start:].rstrip()
    if tail.strip():
        spans.append((start, start + len(tail)))
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if "\n" in text[s:e]:
            pos = s
            for m in _PARA_BREAK.finditer(text, s, e):
                _append_items(text, out, pos, m.start())
                pos = m.end()
            _append_items(text, out, pos, e)
        else:
            _append_items(text, out, s, e)
    return out


def _append_items(text: str, out: list, s: int, e: int) -> None:
    """A sentence too long to quote whole that enumerates items ("(1) … ; (2) … ; and (3) …") is split
    into its items, each keeping its label, so a clause can be quoted whole."""
    if e - s <= LONG_SENTENCE:
        _append_trimmed(text, out, s, e)
        return
    pos = s
    for m in _ITEM_BOUNDARY.finditer(text, s, e):
        _append_trimmed(text, out, pos, m.end())  # "…activity;" / "…consent; and" (trailing space trimmed)
        pos = m.end()
    _append_trimmed(text, out, pos, e)


def _append_trimmed(text: str, out: list, s: int, e: int) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if e > s:
        out.append((s, e))


def _not_an_end(text: str, start: int, stop: int) -> bool:
    """True when the full stop at `stop` belongs to an abbreviation or a label."""
    ws = max(text.rfind(" ", start, stop), text.rfind("\n", start, stop))
    word = text[(ws + 1 if ws >= 0 else start):stop].lstrip("(['\"\u201c\u2018").lower()
    if word in _NON_TERMINAL or _ACRONYM.fullmatch(word):
        return True
    if len(word) == 1 and word.isalpha():
        return True  # an initial ("J. Smith") or a letter label ("subparagraph a. The")
    head = text[start:stop + 1].lstrip()
    return len(head) <= 24 and _LABEL_ONLY.fullmatch(head) is not None


def split_sentences(text: str) -> list[str]:
    """The sentences of `text` as strings (see `sentence_spans`)."""
    return [text[s:e] for s, e in sentence_spans(text)]
