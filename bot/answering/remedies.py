"""Which kinds of consequence a question asks about, and which ones a document provides for.

A member asks "can they go to jail for this?", "what's the fine?", "can I sue?" or "how long do I have to
sue?". A law that sets only civil remedies never says "jail", and a criminal statute never says "damages":
when none of the documents an answer cites provides for the kind of consequence asked about anywhere in
its text, the answer says so first instead of quoting the nearest clause as if it answered. This is
general legal vocabulary (how statutes and contracts name penalties and remedies), not a list of
documents or questions.
"""
from __future__ import annotations

import re

# kind -> (how a member asks about it, how a document provides for it, what the answer says is missing)
KINDS: dict[str, tuple[re.Pattern, re.Pattern, str]] = {
    "criminal": (
        re.compile(r"\b(?:jail|prison|imprison\w*|locked\s+(?:\w+\s+)?up|lock\s+(?:\w+\s+)?up|behind bars|arrest(?:ed)?"
                   r"|criminal(?:ly)?|crimes?|felon(?:y|ies)|misdemeanou?rs?|prosecut\w*)\b", re.I),
        re.compile(r"\b(?:imprison\w*|jail|prisons?|felon(?:y|ies)|misdemeanou?rs?|crimes?|criminal(?:ly)?|guilty"
                   r"|convict\w*|incarcerat\w*|prosecut\w*|penal code)\b", re.I),
        "jail, prison or any criminal penalty",
    ),
    "fine": (
        # "the fine print", "is that fine", "fine-tuned" are not fines; a member's "penalty" is any
        # consequence (damages too), so it asks for no kind in particular
        re.compile(r"(?<!\bis )(?<!\bit )(?<!\bit's )(?<!\bits )(?<!\bbe )(?<!\bthats )(?<!\bthat's )(?<!\bwas )"
                   r"(?<!\bseems )(?<!\bsounds )(?<!\blooks )"
                   r"\bfine[sd]?\b(?!\s*(?:print|line|tun\w*|-tun\w*|with|by)\b)", re.I),
        re.compile(r"\b(?:fines?|fined|penalt(?:y|ies)|forfeit\w*)\b", re.I),
        "a fine or penalty",
    ),
    "lawsuit": (
        re.compile(r"\b(?:sue|sues|suing|sued|lawsuits?|damages|civil (?:action|suit|case|claim)"
                   r"|take\s+(?:them|him|her|it|\w+)\s+to\s+court)\b", re.I),
        re.compile(r"\b(?:civil action|cause of action|right of action|bring an action|an action|actions?\s+(?:for|under|against)"
                   r"|damages|plaintiffs?|liable|liability|injunct\w*|equitable|relief|remed(?:y|ies)|recover\w*"
                   r"|sue|sues|sued|suing|lawsuits?|claims?)\b", re.I),
        "a lawsuit or damages",
    ),
    "time limit": (
        re.compile(r"\b(?:how long|deadline|time limit|too late|how much time|statute of limitations?|limitations? period)\b"
                   # "how long before they can go to court" asks for a wait, not for a time limit
                   r"(?=(?:(?!\b(?:before|until|till|after)\b).){0,60}\b(?:sue|suing|file|filing|lawsuit|suit|case|claim"
                   r"|action)\b)"
                   r"|\b(?:sue|suing|file|filing|lawsuit|suit|case|claim)\b.{0,40}\b(?:deadline|time limit|too late)\b"
                   r"|\bstatute of limitations?\b", re.I),
        re.compile(r"\bstatutes? of limitations?\b|\blimitations? period|\bperiod of limitations?\b"
                   r"|\b(?:brought|commenced|filed|begun)\s+(?:\w+\s+){0,3}(?:within|later than|more than)\b"
                   r"|\bwithin\s+(?:\w+\s+){0,2}(?:years?|months?)\s+(?:after|of|from)\b", re.I),
        "a time limit for bringing a lawsuit",
    ),
}


def asked(question: str) -> list[str]:
    """The kinds of consequence the member's question asks about, in `KINDS` order."""
    return [kind for kind, (asks, _, _) in KINDS.items() if asks.search(question)]


def provided(text: str) -> frozenset[str]:
    """The kinds of consequence a document's text provides for (or at least names)."""
    return frozenset(kind for kind, (_, says, _) in KINDS.items() if says.search(text))


def missing(kinds: list[str], provides) -> list[str]:
    """What the answer should say is missing: each kind asked about (`asked(...)`) that none of the
    cited documents provides for. `provides` is the union of `provided(...)` over those documents."""
    return [KINDS[kind][2] for kind in kinds if kind not in provides]
