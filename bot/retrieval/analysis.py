"""Understand a member's question: content terms, synonyms members use, and filters it implies.

Everything here is deterministic string work: no model, no I/O.
"""
from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass, field

from . import places

STOPWORDS = set(
    """a about above after again against all am an and any are aren't as at be because been before being below
    between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each few
    for from further had hadn't has hasn't have haven't having he her here hers herself him himself his how i i'm if
    in into is isn't it it's its itself let's me more most my myself no nor not of off on once only or other ought our
    ours ourselves out over own same she should shouldn't so some such than that that's the their theirs them
    themselves then there there's these they they're this those through to too under until up very was wasn't we
    we're were weren't what what's whats when where which while who who's whom why will with won't would wouldn't you
    your yours yourself yourselves im ive id dont doesnt cant wont isnt arent didnt hey hi hello pls please plz thanks
    thx lol lmao ok okay quick question q just really actually like also still even ever now right get got gets
    getting say says said tell told know need want wants make made thing things stuff guys anyone someone something
    anything here there way yes yeah new old one does do did any anybody mean means us my me our their they them it
    its can could would should will shall may might must much many lot lots kind sort bit""".split()
)

# Words that set the scene of a question but are never what it asks about: a document not
# containing them says nothing about whether it answers ("they told me TONIGHT ...").
INCIDENTAL = set(
    """today tonight tomorrow yesterday morning evening night afternoon week weekend month months year years
    day days hour hours minute minutes time times season seasons episode episodes show shows set sets shoot
    shooting gig gigs job jobs work working worked call called calls callback audition auditions agent agents
    manager managers mom dad mother father wife husband son daughter brother sister friend friends family
    relative relatives parent parents kid kids guy guys people person member members union unions thanks
    please help confused wondering asking question questions answer answers heard hear hearing read reading
    saw seen told tell telling basically literally honestly totally seriously pretty super kinda sorta gonna
    wanna gotta whole thing things stuff part parts different same other another every each again allowed
    okay sure exactly true false real fine legal illegal happen happens happened happening""".split()
)


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Levenshtein distance, stopping early once it exceeds `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


# Words members type -> words the documents use (added to the keyword query, never replacing). General
# domain vocabulary only: no entry may point a member word at a specific document, bill or law.
SYNONYMS: dict[str, list[str]] = {
    "sag": ["SAG-AFTRA"],
    "aftra": ["SAG-AFTRA"],
    "bg": ["background"],
    "extra": ["background"],
    "extras": ["background"],
    "scan": ["digital replica", "scanning"],
    "scanned": ["digital replica", "scanning"],
    "scans": ["digital replica", "scanning"],
    "scanning": ["digital replica"],
    "clone": ["digital replica", "voice"],
    "cloned": ["digital replica", "voice"],
    "deepfake": ["digital replica"],
    "deepfakes": ["digital replica"],
    "double": ["digital replica"],
    "likeness": ["digital replica"],
    "replica": ["digital replica"],
    "game": ["Interactive Media", "video game"],
    "games": ["Interactive Media", "video game"],
    "videogame": ["Interactive Media", "video game"],
    "gaming": ["Interactive Media", "video game"],
    "ima": ["Interactive Media"],
    "ad": ["commercials"],
    "ads": ["commercials"],
    "commercial": ["commercials"],
    "directors": ["DGA"],
    "director": ["DGA"],
    "writers": ["WGA"],
    "writer": ["WGA"],
    "screenwriter": ["WGA", "writer"],
    "screenwriters": ["WGA", "writer"],
    "mba": ["WGA", "Minimum Basic Agreement"],
    "crew": ["IATSE"],
    "iatse": ["IATSE"],
    "tag": ["Animation Guild"],
    "labels": ["Sound Recordings"],
    "label": ["Sound Recordings"],
    "singer": ["Sound Recordings"],
    "singers": ["Sound Recordings"],
    "vocals": ["Sound Recordings", "voice"],
    "music": ["Sound Recordings"],
    "dead": ["deceased"],
    "died": ["deceased"],
    "late": ["deceased"],
    "estate": ["deceased"],
    "train": ["training"],
    "trained": ["training"],
    "traning": ["training"],
    "paid": ["compensation", "pay"],
    "pay": ["compensation"],
    "money": ["compensation"],
    "chatgpt": ["generative artificial intelligence"],
    "ai": ["artificial intelligence"],
    "genai": ["generative artificial intelligence"],
    "gai": ["generative artificial intelligence"],
    "studios": ["AMPTP"],
    "studio": ["AMPTP"],
    "producers": ["AMPTP"],
    "uk": ["Equity", "Pact"],
    "aussie": ["Australia", "MEAA"],
    "aussies": ["Australia", "MEAA"],
    "brit": ["Equity"],
    "brits": ["Equity"],
    "diff": ["different"],
    "britain": ["Equity"],
    "british": ["Equity"],
    "canada": ["ACTRA"],
    "canadian": ["ACTRA"],
    "australia": ["MEAA"],
    "australian": ["MEAA"],
    "ny": ["New York"],
    "ca": ["California"],
    "strike": ["strike"],
    "picket": ["picket line", "strike"],
}

# Union / agreement signals: pattern -> (field, value)
_UNION_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"\bsag(?:-?aftra)?\b|\bscreen actors\b|\baftra\b", re.I), "SAG-AFTRA"),
    (re.compile(r"\bwga\b|\bwriters? guild\b|\bwriters?\b|\bscreenwriters?\b|\bmba\b", re.I), "WGA"),
    (re.compile(r"\bdga\b|\bdirectors?\b", re.I), "DGA"),
    (re.compile(r"\biatse\b|\bcrew\b|\bstagehands?\b", re.I), "IATSE"),
    (re.compile(r"\banimation guild\b|\btag\b", re.I), "The Animation Guild"),
    (re.compile(r"\bteamsters?\b|\bbasic crafts\b", re.I), "Teamsters"),
    (re.compile(r"\bequity\b|\bpact\b|\buk\b|\bbritish\b|\bbritain\b", re.I), "Equity"),
    (re.compile(r"\bactra\b|\bcanad", re.I), "ACTRA"),
    (re.compile(r"\bmeaa\b|\baustralia", re.I), "MEAA"),
]

_AGREEMENT_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"\bvideo ?games?\b|\bgames?\b|\bgaming\b|\binteractive media\b|\bima\b", re.I), "Interactive Media"),
    (re.compile(r"\bcommercials?\b|\bads?\b|\badvert", re.I), "Commercials"),
    (re.compile(r"\bsound recordings?\b|\brecord labels?\b|\blabels?\b|\bsingers?\b|\bvocals\b", re.I), "Sound Recordings"),
    (re.compile(r"\btv animation\b|\bvoice actors? in (?:tv )?animation\b|\banimation\b", re.I), "Animation"),
    (re.compile(r"\btv\b|\btelevision\b|\btheatrical\b|\bfilm\b|\bmovies?\b", re.I), "TV/Theatrical"),
]

# Exact references that must hit the passage that names them.
_REFERENCE = re.compile(
    r"\b(?:article|art\.?)\s*(\d+[a-z]?)\b|\b(\d{1,3}\.[A-Z])\b|\b(sec(?:tion)?\.?\s*\d+(?:[.\-][0-9A-Za-z]+)*)|"
    r"\b((?:ab|sb|hr|h\.r\.|s\.)\s*\d{2,5})\b|\b(sideletter\s*\w*)|(§\s*[\d.\-a-z]+)",
    re.I,
)

_WORD = re.compile(r"[A-Za-z0-9$][A-Za-z0-9$%.'\-]*[A-Za-z0-9%]|[A-Za-z0-9]")
_YEAR = re.compile(r"\b(19[5-9]\d|20[0-4]\d)\b")
_DEAL = r"(?:deals?|contracts?|agreements?|mba|laws?|acts?|bills?|codes?|negotiations?|talks|strikes?|ima|moa)"
_TARGET_YEAR = re.compile(
    r"\b(19[5-9]\d|20[0-4]\d)(?=(?:\s+[\w'/-]+){0,3}?\s+" + _DEAL + r"\b)|"
    r"\b" + _DEAL + r"\s+(?:of|from|in|for)\s+(19[5-9]\d|20[0-4]\d)\b",
    re.I,
)


_CURRENT = re.compile(r"\b(?:current(?:ly)?|right now|now|today|latest|newest|still|in force|in effect|anymore)\b", re.I)


@dataclass
class QueryInfo:
    text: str
    terms: list[str]  # content words as typed (lower-case)
    expansions: list[str]  # synonyms the documents use
    references: list[str]  # exact references ("Article 72", "16.B", "AB 2602")
    unions: list[str] = field(default_factory=list)
    agreements: list[str] = field(default_factory=list)
    years: list[int] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    proper: list[str] = field(default_factory=list)  # capitalised names in the question
    target_years: list[int] = field(default_factory=list)  # years of a deal/law the question asks about
    places: list[str] = field(default_factory=list)  # jurisdictions the question names ("in WA" -> "WA")
    wants_current: bool = False  # "the current contract", "now", "still in effect": the rule in force
    asks: list[str] = field(default_factory=list)  # kinds of value asked for ("how long" -> length of time)


# What kind of value a question asks for: "how much" an amount, "how long" a length of time, ...
VALUE_QUESTIONS: list[tuple[str, re.Pattern]] = [
    ("percentage", re.compile(r"\bwhat\s*%|\bwhat percent|\bpercentage\b|\bvote share\b|%\s*(?:voted|of)\b", re.I)),
    ("date", re.compile(r"\bwhat (?:date|day)\b|\bwhich (?:date|day)\b|\bexactly when\b", re.I)),
    # "how much proof" asks for a standard, "how much time" for a length of time, not for an amount
    ("amount", re.compile(r"\bhow much\b(?!\s+(?:proof|evidence|time)\b)|\b(?:scale|hourly|day|daily|weekly) rate\b|"
                          r"\bper (?:script|episode|hour|day)\b|\bminimum (?:pay|rate|fee)\b|\bminimums?\b(?!\s+basic)|"
                          r"\bdues\b", re.I)),
    ("number", re.compile(r"\bhow many\b", re.I)),
    ("length of time", re.compile(r"\bhow long\b|\bhow much time\b", re.I)),
    # "who negotiated", "who was president" ask for a person; "who can sue", "who counts as", "who has to
    # follow this", "who's liable" ask for a kind of person, which a clause answers without naming anyone
    ("name", re.compile(r"(?:^\s*who\b|\bwho (?:won|is|was|heads|leads|negotiated|signed)\b)(?!\s+(?:even\s+|actually\s+)?"
                        r"(?:can|could|may|might|must|should|would|will|has to|have to|needs? to|counts?|gets?|decides?|"
                        r"sets?|gives?|owns?|pays?|qualif\w*|(?:is )?(?:allowed|liable|responsible|covered|protected)|is an?|"
                        r"are)\b|(?:'s|\u2019s|s)\s+(?:a|an|allowed|liable|responsible|covered|protected)\b)", re.I)),
]


def asked_kinds(question: str) -> list[str]:
    """The kinds of value a question asks for, in `VALUE_QUESTIONS` order."""
    return [label for label, asks in VALUE_QUESTIONS if asks.search(question)]


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A tiny suffix stripper, enough to match simple word forms (scans/scanned/scanning)."""
    w = word.lower()
    for suf in ("ations", "ation", "ings", "ing", "ies", "ied", "ers", "ed", "es", "er", "ly", "s"):
        if len(w) > len(suf) + 2 and w.endswith(suf):
            if suf in ("ies", "ied"):
                return w[: -len(suf)] + "y"
            return w[: -len(suf)]
    return w


def tokenize(text: str) -> list[str]:
    return [m.group(0) for m in _WORD.finditer(text)]


_JOINED_REF = re.compile(r"\b(ab|sb|hr|s)(\d{2,5})\b", re.I)


_NUMBER = re.compile(r"\$?\d[\d,.]*%?")
# words after which a number names something ("article 72", "law 50/51", "season 1"), not a value
_LABEL_WORDS = {"article", "art", "section", "sec", "§", "law", "laws", "rule", "rules", "code", "chapter", "title",
                "part", "paragraph", "para", "clause", "subsection", "ab", "sb", "hb", "hr", "ssb", "bill", "act",
                "season", "episode", "ep", "local", "no", "number", "schedule", "exhibit", "appendix", "page", "step"}
# what a value is counted in: money, shares, time ("48 hrs", "$500", "2x scale", "87%")
_UNIT_WORDS = re.compile(
    r"^(?:%|percent|pct|k|bucks?|dollars?|cents?|usd|eur|euros?|pounds?|gbp|x|times|scale|hours?|hrs?|h|days?|"
    r"weeks?|wks?|months?|mos?|years?|yrs?|minutes?|mins?|seconds?|secs?)$", re.I)


def asked_numbers(words: list[str]) -> list[str]:
    """The numbers of a question that are values it asks about ("is it $500?", "48 hrs notice", "87%"),
    not labels ("article 72", "civil rights law 50/51", "season 1") and not the size of a scenario
    ("if they made like 500 copies", "3 videos")."""
    out: list[str] = []
    label = False
    for i, w in enumerate(words):
        if not _NUMBER.fullmatch(w) or _YEAR.fullmatch(w):
            label = w.lower().strip(".") in _LABEL_WORDS
            continue
        if label:  # still set by the word before the first number: "law 50 51" are both labels
            continue
        nxt = words[i + 1].lower() if i + 1 < len(words) else ""
        valued = w.startswith("$") or w.endswith("%") or bool(_UNIT_WORDS.match(nxt))
        if valued or not nxt or nxt in STOPWORDS or _NUMBER.fullmatch(nxt):
            out.append(w)
    return out


def analyse(question: str, own: str | None = None) -> QueryInfo:
    text = " ".join(question.split())
    text = _JOINED_REF.sub(lambda m: f"{m.group(1).upper()} {m.group(2)}", text)  # "ab2602" -> "AB 2602"
    words = tokenize(text)
    terms: list[str] = []
    expansions: list[str] = []
    proper: list[str] = []
    for i, w in enumerate(words):
        lw = w.lower().strip(".'")
        if lw in STOPWORDS or len(lw) < 2 and not lw.isdigit():
            continue
        if lw not in terms:
            terms.append(lw)
        for syn in SYNONYMS.get(lw, []):
            if syn not in expansions:
                expansions.append(syn)
        is_name = w[0].isupper() and not w.isupper() and i > 0 and not words[i - 1].endswith((".", "?", "!"))
        is_acronym = w.isupper() and 2 <= len(w) <= 5
        if (is_name or is_acronym) and lw not in STOPWORDS:
            proper.append(w)
    refs = []
    for m in _REFERENCE.finditer(text):
        ref = next(g for g in m.groups() if g)
        if m.group(1):
            ref = f"Article {m.group(1).upper()}"
        refs.append(" ".join(ref.split()))
    unions = [u for p, u in _UNION_PATTERNS if p.search(text)]
    agreements = [a for p, a in _AGREEMENT_PATTERNS if p.search(text)]
    years = sorted({int(y) for y in _YEAR.findall(text)})
    # a year the question is *about* ("the 2029 DGA deal"), not one mentioned in passing ("scanned in 2024")
    target_years = sorted({int(m.group(1) or m.group(2)) for m in _TARGET_YEAR.finditer(text)})
    numbers = asked_numbers(words)
    where = places.in_question(text)
    if own is not None and own.strip() != question.strip():
        # a follow-up that names its own jurisdiction, union or agreement ("and in texas?") asks about that
        # one, not the one its thread named
        mine = " ".join(own.split())
        where = places.in_question(mine) or where
        unions = [u for p, u in _UNION_PATTERNS if p.search(mine)] or unions
        agreements = [a for p, a in _AGREEMENT_PATTERNS if p.search(mine)] or agreements
    return QueryInfo(text=text, terms=terms, expansions=expansions, references=refs, unions=unions,
                     agreements=agreements, years=years, numbers=numbers, proper=proper, target_years=target_years,
                     places=where, wants_current=bool(_CURRENT.search(text)) and not target_years,
                     asks=asked_kinds(text if own is None else own))


def with_history(question: str, history: list[str] | tuple[str, ...]) -> str:
    """Fold a thread's earlier questions into a follow-up ("what about background actors?")."""
    if not history:
        return question
    q = question.strip()
    short = len(tokenize(q)) <= 9
    elliptical = re.match(r"^(?:and|but|what about|how about|same|also|what if|and for|ok(?:ay)?|so)\b", q, re.I)
    if short or elliptical:
        return f"{history[-1].strip()} {q}"
    return q
