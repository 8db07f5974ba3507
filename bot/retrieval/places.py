"""Jurisdictions: which state, country or union of countries a question is about, and which one a
document is the law (or bill) of.

A member writes "in WA", "ny's law", "the eu rules", "is there a federal law"; an uploaded bill says who
it belongs to in its header ("STATE OF NEW YORK", "Regulation (EU)", "RCW 63.60"), its file name
("WA_SB5886.pdf") or its title. This is general vocabulary (place names, postal codes, how each
jurisdiction cites its own code), not a list of documents: it names no bill and no document.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import PurePath

# code -> full names (matched case-insensitively as whole words; a trailing possessive "s" is allowed)
NAMES: dict[str, tuple[str, ...]] = {
    "AL": ("Alabama",), "AK": ("Alaska",), "AZ": ("Arizona",), "AR": ("Arkansas",), "CA": ("California",),
    "CO": ("Colorado",), "CT": ("Connecticut",), "DE": ("Delaware",), "DC": ("District of Columbia",),
    "FL": ("Florida",), "GA": ("Georgia",), "HI": ("Hawaii",), "ID": ("Idaho",), "IL": ("Illinois",),
    "IN": ("Indiana",), "IA": ("Iowa",), "KS": ("Kansas",), "KY": ("Kentucky",), "LA": ("Louisiana",),
    "ME": ("Maine",), "MD": ("Maryland",), "MA": ("Massachusetts",), "MI": ("Michigan",), "MN": ("Minnesota",),
    "MS": ("Mississippi",), "MO": ("Missouri",), "MT": ("Montana",), "NE": ("Nebraska",), "NV": ("Nevada",),
    "NH": ("New Hampshire",), "NJ": ("New Jersey",), "NM": ("New Mexico",), "NY": ("New York",),
    "NC": ("North Carolina",), "ND": ("North Dakota",), "OH": ("Ohio",), "OK": ("Oklahoma",), "OR": ("Oregon",),
    "PA": ("Pennsylvania",), "RI": ("Rhode Island",), "SC": ("South Carolina",), "SD": ("South Dakota",),
    "TN": ("Tennessee",), "TX": ("Texas",), "UT": ("Utah",), "VT": ("Vermont",), "VA": ("Virginia",),
    "WA": ("Washington",), "WV": ("West Virginia",), "WI": ("Wisconsin",), "WY": ("Wyoming",),
    "EU": ("European Union",),
    "US": ("United States",),
    # countries (ISO 3166 alpha-3 codes, so none is mistaken for a state's postal code)
    "GBR": ("United Kingdom", "Great Britain", "Britain", "England", "Scotland", "Northern Ireland"),
    "IRL": ("Ireland",), "CAN": ("Canada",), "AUS": ("Australia",), "NZL": ("New Zealand",),
    "FRA": ("France",), "DEU": ("Germany",), "ITA": ("Italy",), "ESP": ("Spain",), "NLD": ("Netherlands",),
    "SWE": ("Sweden",), "DNK": ("Denmark",), "NOR": ("Norway",), "KOR": ("South Korea", "Korea"),
    "JPN": ("Japan",), "CHN": ("China",), "IND": ("India",), "MEX": ("Mexico",), "BRA": ("Brazil",),
    "ZAF": ("South Africa",), "NGA": ("Nigeria",),
}
# A country is also named by its people's adjective ("the french actors union", "British Equity") or by
# "UK". Languages that share the word (English, Spanish) are left out: "plain English" names no country.
_DEMONYMS = {
    "british": "GBR", "scottish": "GBR", "welsh": "GBR", "irish": "IRL", "canadian": "CAN", "australian": "AUS",
    "french": "FRA", "german": "DEU", "italian": "ITA", "dutch": "NLD", "swedish": "SWE", "danish": "DNK",
    "norwegian": "NOR", "korean": "KOR", "japanese": "JPN", "chinese": "CHN", "mexican": "MEX",
    "brazilian": "BRA", "nigerian": "NGA",
}
_COUNTRY_WORDS = [(re.compile(r"\bU\.K\.(?!\w)|\bUK\b|(?<![\w-])uk\b"), "GBR")] + [
    (re.compile(rf"(?<![\w-]){word}\b", re.I), code) for word, code in _DEMONYMS.items()]
# "Northern Ireland" is the United Kingdom, not Ireland
_NORTHERN_IRELAND = re.compile(r"\bNorthern\s+Ireland\b", re.I)

# "West Virginia" must not also count as Virginia, nor "Washington, D.C." as the state
_SHADOWS = {"VA": "WV"}

# Postal codes members type; left out are the ones that are also common words or other abbreviations
# (IN, OR, ME, OK, HI, OH, ID, DE, LA, CO, MA, PA, VA, AR, MO, ...) or chat shorthand (nm, wy).
_CODES_UPPER = {"AL", "AK", "AZ", "CA", "CT", "FL", "GA", "IL", "KS", "KY", "MD", "MI", "MN", "MS", "MT", "NC",
                "ND", "NE", "NH", "NJ", "NM", "NV", "NY", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "WA", "WI",
                "WV", "WY", "EU"}
_CODES_LOWER = {"ny", "nys", "nyc", "ca", "cali", "wa", "tx", "fl", "il", "nj", "tn", "nv", "eu",
                "az", "ga", "mn", "ky", "ks", "nh", "wv", "ut", "mi", "nd", "sd", "vt", "ak"}
# Codes that are also words or other abbreviations name a state only where a law is spoken of: followed
# by "law", "bill", "act", "statute", "code", "legislature", a bill number or "deepfake" ("la law",
# "under pa's deepfake law", "co sb 288"), or opening the question before a dash or colon ("va - can i
# sue"). "in", "or", "me", "ok", "oh", "hi" stay words: "in law", "or bill".
_CONTEXT_CODES = ("la", "co", "ma", "pa", "va", "de", "ar", "mo", "md", "ct", "sc", "nc", "ri", "nm", "mt",
                  "wy", "al")
_CODE_ALT = "|".join(_CONTEXT_CODES)
_LAW_NEXT = (r"(?:'s|s')?\s+(?:state\s+)?(?:laws?|bills?|statutes?|acts?|code|legislature|sb|hb|ab|s\.b\.|"
             r"h\.b\.|deep\s?fakes?)\b")
_CODE_IN_CONTEXT = [re.compile(rf"(?<![\w'-])({_CODE_ALT})(?={_LAW_NEXT})", re.I),
                    re.compile(rf"^\s*({_CODE_ALT})\s*[-\u2013\u2014:]\s", re.I)]

# The short forms of state names people write ("Calif.", "mich", "tenn"); none is an English word
# ("conn" is also a connection, "wash" and "mass" are words).
_ALIASES = {"nyc": "NY", "nys": "NY", "cali": "CA", "calif": "CA", "ariz": "AZ", "mich": "MI", "minn": "MN",
            "tenn": "TN", "fla": "FL", "colo": "CO", "wisc": "WI", "okla": "OK"}
_CODES_LOWER |= set(_ALIASES)

# How a question names its jurisdiction beyond the names above.
_QUESTION_EXTRA = [
    (re.compile(r"(?<!\w)(?:e\.u\.|europe|european)(?!\w)", re.I), "EU"),
    (re.compile(r"(?<!\w)(?:federal(?:ly)?|congress|u\.s\.|nationwide)(?!\w)", re.I), "US"),
    (re.compile(r"\bUS\b"), "US"),
]

# How a legal text names (or cites) its own jurisdiction.
_DOCUMENT_MARKERS = [
    (re.compile(r"\bRCW\b"), "WA"),
    (re.compile(r"\bRegulation \(EU\)|\bDirective \(EU\)|\bEuropean Parliament\b|\bMember States\b"), "EU"),
    (re.compile(r"\bU\.S\.C\.|\bUnited States Code\b|\bCongress of the United States\b"), "US"),
    (re.compile(r"\bILCS\b"), "IL"),
    (re.compile(r"\bTenn\. Code\b"), "TN"),
    (re.compile(r"\bN\.Y\. [A-Z]"), "NY"),
    (re.compile(r"\bCal\. [A-Z][a-z]+\.? Code\b"), "CA"),
]

_NAME_PATTERNS = [
    # not inside a hyphenated name ("Crabtree-Ireland" is a person)
    (re.compile(r"(?<![\w-])" + r"\s+".join(n.split()) + r"(?:'?s)?\b", re.I), code)
    for code, names in NAMES.items() for n in names
]
_WORDS = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][A-Za-z.]*")  # not the "nd" of "2nd"
_SPACED = re.compile(r"\b(?:[A-Z] ){2,}[A-Z]\b")  # "S T A T E  O F  N E W  Y O R K" in bill headers


def is_state(code: str) -> bool:
    """A US state (or DC): federal law also applies there."""
    return len(code) == 2 and code not in ("EU", "US")


def _unspace(text: str) -> str:
    return _SPACED.sub(lambda m: m.group(0).replace(" ", ""), text)


def _names(text: str) -> Counter:
    found: Counter = Counter()
    for pat, code in _NAME_PATTERNS:
        found[code] += len(pat.findall(text))
    for code, shadow in _SHADOWS.items():
        found[code] -= min(found[code], found[shadow])
    if found["WA"]:
        found["WA"] -= min(found["WA"], len(re.findall(r"\bWashington,?\s+D\.?\s?C\b", text)))
    if found["IRL"]:
        found["IRL"] -= min(found["IRL"], len(_NORTHERN_IRELAND.findall(text)))
    for pat, code in _COUNTRY_WORDS:
        found[code] += len(pat.findall(text))
    return +found


def in_question(text: str) -> list[str]:
    """The jurisdictions a question names, in a fixed order."""
    found = set(_names(text))
    for w in _WORDS.findall(text):
        bare = w.rstrip(".")
        if bare in _CODES_UPPER:
            found.add(bare)
        low = bare.lower().removesuffix("'s")  # "ny's"; a bare trailing "s" is not stripped ("was")
        if low in _CODES_LOWER:
            found.add(_ALIASES.get(low, low.upper()))
    for pat in _CODE_IN_CONTEXT:
        found.update(m.group(1).upper() for m in pat.finditer(text))
    for pat, code in _QUESTION_EXTRA:
        if pat.search(text):
            found.add(code)
    return sorted(found)


IDENTITY_CHARS = 1500  # a bill or statute says whose it is in its title and header


def of_document(title: str, file_name: str, text: str, meta: str = "") -> set[str]:
    """The jurisdiction(s) a document belongs to: named in its metadata, title, file name or header, or
    the one its body names or cites far more often than any other."""
    head = _unspace(f"{meta}\n{title}\n{text[:IDENTITY_CHARS]}")
    found = set(_names(head))
    for pat, code in _DOCUMENT_MARKERS:
        if pat.search(head):
            found.add(code)
    toks = [t for t in re.split(r"[^A-Za-z0-9]+", PurePath(file_name).stem) if t]
    for i, tok in enumerate(toks):
        if tok in _CODES_UPPER or tok == "US":
            found.add(tok)
        elif i == 0 and len(toks) > 1 and tok.upper() in _CODES_UPPER:
            found.add(tok.upper())  # "ca_ab2602.pdf": a file name that starts with a code names its place
    if found:
        return found
    body = _unspace(text)
    counts = _names(body)
    for pat, code in _DOCUMENT_MARKERS:
        counts[code] += len(pat.findall(body))
    ranked = counts.most_common(2)
    if ranked and ranked[0][1] >= 2 and (len(ranked) == 1 or ranked[0][1] >= 2 * ranked[1][1]):
        return {ranked[0][0]}
    return set()
