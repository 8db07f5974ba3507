"""Detect document structure in plain lines: articles, sections, sideletters, numbered paragraphs.

Used for PDFs and plain text (Markdown and HTML use their own headings). Each heading found becomes
part of the section path of the text that follows it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Level 0: PART 2 / CHAPTER III / TITLE 17 / Subtitle A / Division 3
_L0 = re.compile(
    r"^\s*((?:PART|Part|CHAPTER|Chapter|SUBCHAPTER|Subchapter|TITLE|Title|SUBTITLE|Subtitle|DIVISION|Division)"
    r"\s+(?:[0-9]+[A-Z]?|[IVXLC]+|[A-Z])\b(?!\.[0-9])(?:\s*|\s*[\u2014\u2013:.-]\s*\S.*|\s+[A-Z(].*))$"
)
# Level 1: ARTICLE 72 / Article 72 — GENERATIVE ARTIFICIAL INTELLIGENCE / SIDELETTER 5 / Exhibit A / Appendix B
_L1 = re.compile(
    r"^\s*((?:ARTICLE|Article)\s+[0-9IVXLC]+[A-Z]?\b.*|"
    r"(?:SIDELETTER|Sideletter|SIDE LETTER|Side Letter)\b.*|"
    r"(?:EXHIBIT|Exhibit|APPENDIX|Appendix|SCHEDULE|Schedule)\s+[A-Z0-9]+\b.*|"
    r"(?:RECITALS?|Recitals?|PREAMBLE|Preamble|WHEREAS CLAUSES)(?:\s+[0-9].*|\s*[\u2014\u2013:-].*)?)$"
)
# Level 2: Section 16.B / SECTION 7-202 / § 927 / 72.C. Title
_L2 = re.compile(
    r"^\s*((?:SECTION|Section|Sec\.|§)\s*[0-9]+(?:[.\-][0-9A-Za-z]+)*\b.*|"
    r"[0-9]{1,3}\.[A-Z](?:\.[0-9]+)?\.?\s+[A-Z][^.]{0,80})$"
)
# Level 3: numbered paragraphs "1." "(a)" "a." at the start of a short title-like line
# (a short title: at most eight words, no comma or semicolon — "2. Any person, firm, ..." is body text)
_L3 = re.compile(r"^\s*((?:\(?[0-9]{1,2}\)|[0-9]{1,2}\.|\([a-z]\)|[a-z]\.)\s+[A-Z](?=[^.,;]{2,70}$)\S*(?:\s+\S+){0,7})$")

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
    for level, pattern in ((0, _L0), (1, _L1), (2, _L2), (3, _L3)):
        m = pattern.match(stripped)
        if m and _continues_sentence(stripped):
            return None  # "Article 72 of this Agreement and the writer may" is body text, not a heading
        if m:
            title = re.sub(r"\s+", " ", m.group(1)).strip().rstrip(":")
            # A level-2/3 "heading" that reads like a sentence is body text.
            if level > 1 and stripped.endswith((".", ",", ";")) and len(stripped) > 60:
                return None
            if level == 3 and (stripped.endswith(":") or _VERBISH.search(stripped)):
                return None  # "(a) The term includes:", "1. The employer shall pay" open body text
            return Heading(level, title)
    return None


_NUMBERED = re.compile(r"^(?:ARTICLE|Article|SIDELETTER|Sideletter|SIDE LETTER|Side Letter|EXHIBIT|Exhibit|APPENDIX|"
                       r"Appendix|SCHEDULE|Schedule|SECTION|Section|Sec\.|§|PART|Part|CHAPTER|Chapter|SUBCHAPTER|Subchapter|"
                       r"TITLE|Title|SUBTITLE|Subtitle|DIVISION|Division|RECITALS?|Recitals?)?\s*[0-9IVXLC]*[0-9A-Za-z.\-]*\s*")


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


# ---------------------------------------------------------------------------------------------
# Legal outline: section labels, numbered paragraphs and clauses at the start of a line


GENERIC_HEADINGS = frozenset(
    """summary|full text|text|bill text|text of bill|text of the bill|contents|table of contents|metadata|
    abstract|overview|background|introduction|definitions|purpose|findings|digest|legislative digest|
    bill summary|document information|bill information""".replace("\n", "").replace("    ", "").split("|")
)


def is_structure_heading(heading: str) -> bool:
    """Is this a legal text's own structural heading (a part, chapter, article, section, exhibit)?"""
    return bool(_L0.match(heading) or _L1.match(heading) or _L2.match(heading))


# Headings that only wrap the operative text: dropped from a path once real structure sits under them.
_WRAPPERS = frozenset({"full text", "text", "bill text", "text of bill", "text of the bill", "metadata"})

# "§ 396-b." "§§ 5-302" "Section 1." "SEC. 2." "Sec 3" "Article 5." — a section (or article) label
# followed by body text on the same line.
_SECTION_LABEL = re.compile(
    r"^(?P<label>(?P<sign>\u00a7{1,2})\s*(?P<n1>[0-9][0-9A-Za-z.\-:]*)"
    r"|(?P<word>SECTION|Section|SEC\.?|Sec\.?)\s+(?P<n2>[0-9][0-9A-Za-z.\-]*)"
    r"|(?P<art>ARTICLE|Article|Art\.)\s+(?P<n3>[0-9]+[A-Za-z]?\.?|[IVXLC]+\.?))(?=\s|$)(?P<rest>.*)$"
)
_SECTION_TITLE = re.compile(r"^(?P<title>[A-Z][^.;:!?]{0,70}?)\.\s+(?P<body>\S.*)$")
_VERBISH = re.compile(r"\b(?:shall|may|must|means|is|are|was|were|will|has|have|does|do|applies|apply|"
                      r"SHALL|MAY|MUST|MEANS|IS|ARE)\b")

# One label token: (a) (1) (A) (iv) (IV) (aa) (12a), or 1. a. A. iv. IV.
_LABEL_TOKEN = re.compile(
    r"\((?P<p>[0-9]{1,3}[a-z]?|([a-zA-Z])\2?|[ivxlcIVXLC]{1,7})\)(?=[\s(]|$)"
    r"|(?P<d>[0-9]{1,3}|[a-zA-Z]|[ivxlcIVXLC]{2,6})\.(?=\s|$)"
)
_ROMAN = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}
_DEFINITION = re.compile(
    r"^(?:[^\"\u201c]{0,80}?,\s*)?[\"\u201c](?P<term>[^\"\u201d]{1,80})[\"\u201d]\s+"
    r"(?:means|includes|has the meaning|refers to|shall mean)\b", re.I)
_KEY_VALUE = re.compile(r"^(?P<key>[A-Z][A-Za-z]*(?:[ /-][A-Za-z#.]+){0,3}\.?)\s*:\s+(?P<value>\S.{0,200})$")
_INTRODUCED = re.compile(r"^(?:Introduced|Sponsored|Presented|Prefiled|Requested)\s+by\b", re.I)
_HEADER_KEYS = re.compile(
    r"^(?:bill(?: id| no\.?| number)?|session|sponsors?|co-?sponsors?|status|source|pdf|introduced(?: by)?|"
    r"chamber|committee|last action|date introduced|version|author|authors|chapter|effective date|"
    r"enacted|signed|law no\.?|public law|document id|legislature)$", re.I)
_BILL_KEYS = re.compile(r"^(?:bill|session|sponsor|co-?sponsor|introduced|chamber|committee|last action)", re.I)
# a header line saying where the text was taken from: kept in the document, not retrieved as a passage
_SOURCE_KEYS = re.compile(r"^(?:sources?|source url|retrieved from|downloaded from)$", re.I)
SOURCE_SECTION = "Source"
_ENACTING = re.compile(r"^(?:AN ACT\b|A BILL\b|BE IT ENACTED\b|THE PEOPLE OF\b|The [Pp]eople of the State\b)")
_SPACES = re.compile(r"\s+")
_WRAP_CHARS = 60  # a header line this long that does not end its sentence was wrapped by the page
_CONJ_END = re.compile(r"(?:\b(?:and|or|and/or|AND|OR|AND/OR)|[,\u2014\u2013-])$")


def _roman_value(s: str) -> int | None:
    s = s.lower()
    if not s or any(ch not in _ROMAN for ch in s):
        return None
    total = 0
    for a, b in zip(s, s[1:] + " "):
        va, vb = _ROMAN[a], _ROMAN.get(b, 0)
        total += -va if va < vb else va
    if total <= 0 or total > 60 or _to_roman(total) != s:
        return None
    return total


def _to_roman(n: int) -> str:
    out = ""
    for value, sym in ((50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")):
        while n >= value:
            out += sym
            n -= value
    return out


def is_generic_heading(text: str) -> bool:
    return re.sub(r"[\s:.\-\u2014]+$", "", text.strip()).lower() in GENERIC_HEADINGS


def is_bare_label(text: str) -> bool:
    """"Section 2", "Article 50", "§ 5", "(a)", "3." — a label with no title."""
    t = text.strip()
    return bool(_BARE.fullmatch(t))


_BARE = re.compile(r"(?:(?:ARTICLE|Article|SECTION|Section|SEC\.?|Sec\.?|\u00a7{1,2}|PART|Part|CHAPTER|Chapter|"
                   r"TITLE|Title|RECITALS?|Recitals?)\s*[0-9A-Za-z.\-\u2013]*|\(?[0-9A-Za-z]{1,4}[.)]?|"
                   r"(?:Page|PAGE|p\.)?\s*[0-9]+(?:\s*(?:of|/)\s*[0-9]+)?)")


@dataclass
class _Clause:
    kind: str
    value: int
    label: str  # as shown in paths: "1", "(a)", "a"
    title: str


class OutlineReader:
    """Reads lines (one printed line at a time, as pypdf or a text file gives them) and cuts them into
    blocks: each block is one unit of the outline (a header, a section's lead-in, a numbered paragraph,
    a clause) with its full heading path and the path of its enclosing section.

    `emit(text, section, parent, page)` receives each block's lines joined with single spaces.
    Heading lines (a label with only a title: "ARTICLE 72", "Section 72.B Disclosure") are not text.
    """

    def __init__(self, emit, *, headings: bool = True) -> None:
        self._emit = emit
        self._headings = headings
        self.base: list[str] = []
        self.struct: list[Heading] = []
        self.clauses: list[_Clause] = []
        self._lines: list[str] = []
        self._page: int | None = None
        self._header: str = ""  # "" | "kv" | "intro": the open block is a header block
        self._prev = "boundary"  # how the previous line ended: boundary | stop | conj | open
        self._seen_structure = False
        self.first_heading = ""

    # -- paths -------------------------------------------------------------------------------

    def _parts(self) -> tuple[list[str], list[str]]:
        structural = list(self.base) + [h.title for h in self.struct]
        if self.struct or self.clauses:
            keep = [p for i, p in enumerate(structural)
                    if not (p.lower() in _WRAPPERS and i < len(structural) - 1 + (1 if self.clauses else 0))]
            structural = keep
        return structural, [c.title for c in self.clauses]

    def path(self) -> str:
        structural, clauses = self._parts()
        return " > ".join(structural + clauses)

    def parent(self) -> str:
        return " > ".join(self._parts()[0])

    # -- input -------------------------------------------------------------------------------

    def set_base(self, components: list[str]) -> None:
        """A new Markdown/HTML heading: the outline below it starts afresh."""
        self.flush()
        self.base = list(components)
        self.struct = []
        self.clauses = []
        self._header = ""
        self._prev = "boundary"

    def boundary(self) -> None:
        """A blank line: the current paragraph ends."""
        self.flush()
        self._header = ""
        self._prev = "boundary"

    def end_list(self) -> None:
        """A code block or a rule: the numbered paragraphs and clauses above it are over."""
        self.boundary()
        self.clauses = []

    def end_page(self) -> None:
        self.flush()  # the next page continues the same unit under the same path

    def flush(self) -> None:
        if not self._lines:
            return
        text = " ".join(self._lines)
        self._lines = []
        if self._header:
            section = SOURCE_SECTION if self._header_source else \
                "Bill information" if self._header_bill else "Document information"
            self._header_source = False
            self._emit(text, section, section, self._page)
            return
        if self.clauses and self._fresh_clause:
            self._name_definition(text)
        self._fresh_clause = False
        self._emit(text, self.path(), self.parent(), self._page)

    _fresh_clause = False
    _header_bill = False
    _header_source = False
    _nlines = 0
    _maxlen = 0
    _since_heading = 99
    _heading_seen = False

    def _name_definition(self, text: str) -> None:
        """'3. "Forged digital likeness" means ...' names its clause after the defined term."""
        last = self.clauses[-1]
        body = _strip_labels(text)
        m = _DEFINITION.match(body)
        if m and last.title == last.label:
            sep = ". " if last.label[0].isalnum() else " "
            last.title = f"{last.label}{sep}\u201c{m.group('term').strip()}\u201d"
            last.title = last.title.replace("\u201c", '"').replace("\u201d", '"')

    def feed(self, line: str, page: int | None = None) -> None:
        s = line.strip()
        if page != self._page:
            self.flush()
            self._page = page
        if not s:
            self.boundary()
            return
        if "  " in s or "\t" in s:
            s = _SPACES.sub(" ", s)
        self._heading_seen = False
        self._take(s)
        if self._heading_seen:
            self._prev = "boundary"
            self._since_heading = 0
            return
        self._since_heading += 1
        self._prev = _line_end(s)
        # a line much shorter than the page's lines ends its paragraph (a title, a last line), and so
        # does an unterminated line right under a heading (the heading's subtitle)
        self._nlines += 1
        if self._prev == "open" and s[-1] != "," and (
                self._since_heading == 1 or (self._nlines > 3 and len(s) < 0.75 * self._maxlen)):
            self._prev = "short"
        self._maxlen = max(self._maxlen, len(s))

    def _take(self, s: str) -> None:
        if self._header == "wrap":
            # the value of a long header line, wrapped onto the lines below it (a PDF's "Source: ..."
            # paragraph): it goes on until a heading, another header line, or a short last line
            kv = _KEY_VALUE.match(s)
            if classify_line(s) is None and not (kv and _HEADER_KEYS.match(kv.group("key").rstrip("."))):
                self._lines.append(s)
                if _line_end(s) == "stop" and len(s) < 0.75 * max(len(x) for x in self._lines):
                    self.flush()
                    self._header = "kv"
                return
            self.flush()
            self._header = "kv"
        # Header lines of a bill or page (before any structure): "Bill ID: S1", "Introduced by ...".
        if not self._seen_structure:
            kv = _KEY_VALUE.match(s)
            if kv and (self._header == "kv" or _HEADER_KEYS.match(kv.group("key").rstrip(".")) or
                       self._prev == "boundary"):
                if self._header != "kv" or self._lines:
                    self.flush()
                self._header = "kv"
                self._header_bill = self._header_bill or bool(_BILL_KEYS.match(kv.group("key")))
                self._header_source = bool(_SOURCE_KEYS.match(kv.group("key").rstrip(".")))
                self._lines.append(s)
                if len(s) >= _WRAP_CHARS and _line_end(s) != "stop":
                    self._header = "wrap"  # a long value that does not end here wraps onto the next line
                    return
                self.flush()  # one line per paragraph
                return
            if _INTRODUCED.match(s):
                self.flush()
                self._header = "intro"
                self._header_bill = True
                self._lines.append(s)
                return
        if _ENACTING.match(s):
            self.flush()
            self._header = ""
            self._lines.append(s)
            return
        sec = self._section_line(s)
        if sec:
            return
        heading = classify_line(s) if self._headings else None
        if heading is None and self._headings and is_generic_heading(s) and len(s) < 40:
            heading = Heading(1, s.rstrip(":").strip())
        if heading is not None:
            self.flush()
            self._header = ""
            self._open_heading(heading)
            return
        if self._clause_line(s):
            return
        if self._header == "kv":
            self.flush()
            self._header = ""
        self._lines.append(s)

    def _open_heading(self, heading: Heading) -> None:
        self._heading_seen = True
        if not self.first_heading and not is_generic_heading(heading.title) and not is_bare_label(heading.title):
            self.first_heading = heading.title
        if heading.level <= 2:
            while self.struct and self.struct[-1].level >= heading.level:
                self.struct.pop()
            self.struct.append(heading)
            self.clauses = []
            if not is_generic_heading(heading.title):
                self._seen_structure = True
            return
        tokens = _label_tokens(heading.title)
        if tokens:
            kind, value, label = self._resolve(tokens[0][0], tokens[0][1])
            self._push_clause(kind, value, label, heading.title)
        else:
            self.clauses = [_Clause("heading", 0, heading.title, heading.title)]
        self._seen_structure = True

    def _section_line(self, s: str) -> bool:
        m = _SECTION_LABEL.match(s)
        if not m:
            return False
        rest = m.group("rest").strip()
        if not rest or rest[0].islower() or rest[0] in ",;)":
            return False  # a heading line (classify_line decides) or a reference ("Section 16.B of the MBA")
        raw = m.group("label")
        number = (m.group("n1") or m.group("n2") or m.group("n3") or "").rstrip(".:")
        ends_with_stop = raw.endswith(".") or raw.endswith(":")
        title, body = "", rest
        t = _SECTION_TITLE.match(rest)
        if t and len(t.group("title").split()) <= 8 and not _VERBISH.search(t.group("title")):
            title, body = t.group("title").strip(), t.group("body")
        if not title and rest.endswith(".") and len(rest.split()) <= 8 and not _VERBISH.search(rest) \
                and rest[0].isupper():
            title, body = rest[:-1].strip(), ""  # "SEC. 4. Rules." — a heading line
        if not ends_with_stop and not title:
            return False
        if m.group("sign"):
            label = f"{m.group('sign')} {number}"
        elif m.group("word"):
            label = f"{m.group('word').rstrip('.')}{'. ' if m.group('word').startswith(('SEC.', 'Sec.')) else ' '}{number}"
            label = label.replace("SEC ", "SEC. ").replace("Sec ", "Sec. ") if m.group("word") in ("SEC", "Sec") else label
        else:
            label = f"{m.group('art').rstrip('.')} {number}"
        level = 1 if m.group("art") else 2
        self.flush()
        self._header = ""
        heading = Heading(level, f"{label}. {title}" if title else label)
        self._open_heading(heading)
        if not body:
            return True  # label and title only: a heading, not text
        self._heading_seen = False  # the line is text as well: how it ends still counts
        tokens = _label_tokens(body)
        for kind, value, text_label in tokens:
            k, v, lab = self._resolve(kind, value, upper_text=_upper_text(body))
            self._push_clause(k, v, lab, lab)
        self._fresh_clause = bool(tokens)
        self._lines.append(s)
        return True

    def _clause_line(self, s: str) -> bool:
        tokens = _label_tokens(s)
        if not tokens:
            return False
        upper = _upper_text(s)
        kind, value, label = self._resolve(tokens[0][0], tokens[0][1], upper_text=upper)
        body = _strip_labels(s)
        starts_upper = bool(body) and (body[0].isupper() or body[0] in "\"\u201c(\u00a7" or body[0].isdigit())
        sibling = next((c for c in reversed(self.clauses) if c.kind == kind), None)
        seq = sibling is not None and value == sibling.value + 1
        first = sibling is None and value == 1
        prev = self._prev
        ok = ((seq and (prev in ("boundary", "stop", "conj", "short") or starts_upper)) or
              (first and (prev in ("boundary", "stop") or (prev == "short" and starts_upper))) or
              (prev in ("boundary", "stop") and starts_upper and (len(tokens) > 1 or kind != "dupper" or first or seq)))
        if kind in ("dupper", "dlower") and not (seq or first):
            ok = ok and prev == "boundary"  # "J. Smith" at a line start is not a clause
        if not ok:
            return False
        self.flush()
        self._header = ""
        self._push_clause(kind, value, label, label)
        for k2, v2, _ in tokens[1:]:
            k, v, lab = self._resolve(k2, v2, upper_text=upper)
            self._push_clause(k, v, lab, lab)
        self._fresh_clause = True
        self._seen_structure = True
        self._lines.append(s)
        return True

    def _resolve(self, kind: str, value: str, upper_text: bool = False) -> tuple[str, int, str]:
        """Kind and ordinal of a label token; (i) is a letter after (h), else a roman numeral."""
        paren = kind == "p"
        if value.isdigit() or (value[:-1].isdigit() and value[-1].isalpha()):
            n = int(re.match(r"\d+", value).group(0))
            return ("pnum" if paren else "num"), n, (f"({value})" if paren else value)
        if upper_text:
            value = value.lower()  # an upper-case insertion: "(A)" is really "(a)"
        case = "upper" if value.isupper() else "lower"
        letter_kind = ("" if paren else "d") + case
        roman_kind = ("" if paren else "d") + ("ROMAN" if case == "upper" else "roman")
        shown = f"({value})" if paren else value
        letter = ord(value[0].lower()) - 96 if (len(value) == 1 or (len(value) == 2 and value[0] == value[1])) else None
        if letter is not None and len(value) == 2:
            letter += 26
        roman = _roman_value(value)
        if roman is not None and letter is not None:
            sib_letter = next((c for c in reversed(self.clauses) if c.kind == letter_kind), None)
            sib_roman = next((c for c in reversed(self.clauses) if c.kind == roman_kind), None)
            if sib_letter is not None and sib_letter.value + 1 == letter:
                return letter_kind, letter, shown
            if sib_roman is not None and sib_roman.value + 1 == roman:
                return roman_kind, roman, shown
            if roman == 1 and (sib_letter is None or sib_letter.value != 8):
                return roman_kind, roman, shown
            return letter_kind, letter, shown
        if roman is not None:
            return roman_kind, roman, shown
        return letter_kind, letter or 0, shown

    def _push_clause(self, kind: str, value: int, label: str, title: str) -> None:
        for i, c in enumerate(self.clauses):
            if c.kind == kind:
                del self.clauses[i:]
                break
        self.clauses.append(_Clause(kind, value, label, title))


def _label_tokens(text: str) -> list[tuple[str, str, str]]:
    """The chain of labels at the start of `text`: "1. (A) FOR ..." -> [("d","1"), ("p","A")]."""
    out = []
    pos = 0
    while len(out) < 4:
        m = _LABEL_TOKEN.match(text, pos)
        if not m:
            break
        if m.group("p") is not None:
            out.append(("p", m.group("p"), m.group(0)))
        else:
            value = m.group("d")
            if len(value) > 1 and not value.isdigit() and _roman_value(value) is None:
                break
            out.append(("d", value, m.group(0)))
        pos = m.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
    return out


def _strip_labels(text: str) -> str:
    pos = 0
    for _ in range(4):
        m = _LABEL_TOKEN.match(text, pos)
        if not m:
            break
        pos = m.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
    return text[pos:]


def _upper_text(text: str) -> bool:
    letters = [ch for ch in _strip_labels(text)[:60] if ch.isalpha()]
    return len(letters) >= 6 and all(ch.isupper() for ch in letters)


def _line_end(s: str) -> str:
    if s[-1] in ".:;!?" or s.endswith((".)", '."', ".\u201d", ":\u2014", "\u2014")):
        return "stop"
    if _CONJ_END.search(s):
        return "conj"
    return "open"
