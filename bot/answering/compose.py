"""Compose an extractive answer from retrieved passages, or abstain.

No language model: the answer is made of verbatim sentences of the best passages, each marked [n],
grouped by the contract or law they come from (current before superseded), and led by the sentence
that best answers the question. When the documents cover the topic but not what was asked (a year,
a name, a number they don't contain), the answer says so first. Off-topic questions abstain with no
sources.
"""
from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from dataclasses import dataclass

from .abstention import DEFAULT as DEFAULT_CALIBRATION
from .abstention import Calibration, decide
from ..chunking import split_sentences
from ..models import Answer, Citation
from ..retrieval import places
from ..retrieval.analysis import INCIDENTAL, SYNONYMS, VALUE_QUESTIONS, QueryInfo, asked_numbers, stem, tokenize
from ..retrieval.candidates import VALUE_KINDS, Candidate
from . import remedies

MAX_SENTENCES = 5
RELATED_GAP = 0.12  # a "See also" passage scores within this cosine of the best one (no unrelated upload rides along)
RANK_STEP = 0.15  # how much a sentence loses per retrieval rank of its passage
MAX_PER_PASSAGE = 2
MAX_PASSAGES = 4
MAX_QUOTE = 300
CURRENT_PEER = 0.85  # a current agreement's sentence at least this close to a superseded one's speaks to it too

# Statements that the sources do NOT have something (not mere caveats like "not confirmed").
_NOT_FOUND = re.compile(
    r"\b(?:was|were|is|are|has|have)\s+not\s+(?:been\s+)?found\b|\bnot\s+found\b|"
    r"\bno\b[^.]{0,200}\b(?:was|were)\s+found\b|\bcould not (?:be )?found\b|"
    r"\bcannot (?:say|be answered|tell)\b|\bhas no text\b|\b(?:outcome|result) (?:is|was|remains) unknown\b|"
    r"\b(?:sources?|documents?|reports?)\s+(?:do|does|did)\s+not\s+(?:give|say|state|specify|list|include)\b",
    re.I,
)

_WORD = re.compile(r"[a-z0-9$%]+")

def covered_summary(documents) -> str:
    """What the indexed documents cover, for abstentions: the unions and the laws, from the index itself."""
    unions, laws = [], []
    for d in documents:
        if d.doc_type in ("law", "bill"):
            name = d.title.split(" \u2014 ")[0].split(" (")[0]
            if name not in laws:
                laws.append(name)
        elif d.union and d.union not in ("Industry",) and d.union not in unions:
            unions.append(d.union)
    if not unions and not laws:
        titles = [d.title for d in documents if d.title]
        if not titles:
            return "No documents are indexed yet."
        shown = "; ".join(titles[:8]) + (f"; and {len(titles) - 8} more" if len(titles) > 8 else "")
        return f"The documents I have are: {shown}."
    parts = []
    if unions:
        parts.append("agreements and news of " + ", ".join(unions[:12]))
    if laws:
        parts.append("the laws " + "; ".join(laws[:8]))
    return ("I cover the AI provisions in " + " and ".join(parts) + ". Try asking, for example, "
            "\"Do they need my consent to make a digital replica of me?\"")


COVERED_TOPICS = (
    "I cover the AI provisions of the WGA, SAG-AFTRA (TV/theatrical, video games, commercials, animation, "
    "sound recordings), DGA, IATSE and Animation Guild agreements, the laws on digital replicas "
    "(California AB 2602 and AB 1836, New York, Tennessee's ELVIS Act, the federal NO FAKES bill), and news "
    "from the 2023 strikes. Try asking, for example, \"Do they need my consent to make a digital replica of me?\""
)


@dataclass
class _Sent:
    cand_index: int
    start: int
    end: int
    text: str
    score: float
    lex: float = 0.0
    lex_all: float = 0.0  # including terms the document's title satisfies


@lru_cache(maxsize=4096)
def _stems(text: str) -> frozenset[str]:
    """The stems of a text's words (passages recur from question to question: cached)."""
    return frozenset(stem(w) for w in _WORD.findall(text.lower()))


def doc_label(row) -> str:
    """Name the contract/law and year a statement comes from, with its status."""
    title = row["title"]
    year = row["year"]
    label = f"**{title}**"
    if year and str(year) not in title:
        label += f" ({year})"
    if row["status"] == "superseded":
        note = (row["note"] or "").strip().rstrip(".")
        if note.lower().startswith("superseded"):
            label += f" ({note})"
        else:
            label += f" (superseded{'; ' + note if note else ''})"
    return label


def _term_weights(q: QueryInfo, idf: dict[str, float]) -> dict[str, float]:
    return {t: idf.get(t, 1.0) for t in q.terms}


@lru_cache(maxsize=8192)
def _term_stems(term: str) -> tuple[str, ...]:
    return tuple(stem(p) for p in _WORD.findall(term.lower()))


def _covered(term: str, hay: set[str]) -> bool:
    parts = _term_stems(term)
    return bool(parts) and all(p in hay for p in parts)


def assess(q: QueryInfo, cands: list[Candidate], idf: dict[str, float], vocab_has, question: str,
           doc_places: dict[str, set[str]] | None = None) -> dict:
    """Signals for answer / partial / abstain. `vocab_has(term)` says whether the corpus has a term;
    `question` is the member's own words (`q` may also hold the thread's earlier questions: the values
    asked for are this question's); `doc_places` which jurisdiction each document is the law of
    (bot.retrieval.places)."""
    top = cands[:5]
    best_dense = max((c.dense for c in top), default=0.0)
    core = [_stems(_core_text(c.row)) for c in top]  # the quotable text of each of the best passages
    titles = [_stems(c.row["title"]) for c in top]
    hay = set()
    for i, c in enumerate(top[:3]):
        hay |= core[i] | titles[i] | _stems(c.row["section"] or "")
    # Coverage: IDF-weighted share of the question's terms (or a synonym of them) in the best passages.
    # Terms the corpus has never seen (typos, chat words) cannot be covered and are left out of it.

    total = hit = 0.0
    for t in q.terms:
        if t in INCIDENTAL:
            continue
        if not vocab_has(t) and not any(vocab_has(x.split()[0].lower()) for x in SYNONYMS.get(t, [])):
            continue  # a word this index never uses (chat, a typo, slang) says nothing either way
        w = idf.get(t, 1.0)
        total += w
        if _covered(t, hay) or any(_covered(x, hay) for x in SYNONYMS.get(t, [])):
            hit += w
    coverage = hit / total if total else 0.0
    # Specific things asked for that no retrieved passage contains: a year, a number, a proper name.
    hay5 = set().union(*core, *titles)
    years5 = {int(c.row["year"]) for c in top if c.row["year"]}
    missing = []
    unknown_names: list[str] = []  # names the question uses that this index has never seen
    # A year the question is about ("the 2027 contract") is a year of the documents found, when they have
    # one: a 2024 agreement that runs to 2027 is not "the 2027 contract". Documents without a year (an
    # upload of a bill) may say it in their text.
    undated = set().union(*(core[i] for i, c in enumerate(top) if not c.row["year"]))
    for y in q.target_years:
        if y not in years5 and str(y) not in undated:
            missing.append(str(y))
    bare5 = {w.strip("$%") for w in hay5}
    for n in asked_numbers(tokenize(question)):
        if n.strip("$%").rstrip(".,") not in bare5:
            missing.append(n)
    # A state or country the question names is not a stray name: it is missing only when the index
    # holds the laws of other places and none of this one's.
    held = set().union(*doc_places.values()) if doc_places else set()
    if held:
        missing += [places.NAMES[x][0] for x in q.places if x not in held]
    for p in q.proper:
        lp = p.lower()
        if places.in_question(p):
            continue
        if lp in ("ai", "i", "tv", "us", "usa") or len(lp) < 3:
            continue
        if "-" in lp and all(vocab_has(part) for part in lp.split("-") if part):
            continue  # "AI-written": known words joined, not a name
        if not _covered(lp, hay5) and not vocab_has(lp):
            missing.append(p)
            unknown_names.append(p)
    return {"best_dense": best_dense, "coverage": coverage, "missing": missing, "unknown_names": unknown_names,
            "shares_words": total > 0}


# What a value of each kind the question may ask for (`analysis.VALUE_QUESTIONS`) looks like in a sentence.
_LOOKS = {
    "percentage": re.compile(r"\d+(?:\.\d+)?\s?%|\bpercent\b"),
    "date": VALUE_KINDS["date"],
    "amount": re.compile(r"\$\s?\d|\bdollars\b|\d+(?:\.\d+)?\s*(?:×|x)\s*scale|\bscale\b|\d+(?:\.\d+)?\s?%|\bfull day\b|"
                         r"\bpro rata\b|\b\d+[\s-]*(?:hours?|days?|weeks?|months?|years?)\b"),
    "number": re.compile(r"\b\d+\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|thirty|forty|fifty|"
                         r"seventy)\b", re.I),
    # a length of time is also said in words: "for the duration of the video", "until removed", "in perpetuity"
    "length of time": re.compile(
        r"\b\d+\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|thirty|forty|fifty|seventy)\b"
        r"|\bduration\b|\bthroughout\b|\bentire\b|\buntil\b|\bimmediately\b|\bperpetu\w*|\blife(?:time)?\b"
        r"|\bas long as\b|\bat all times\b|\bexpires?\b", re.I),
    "name": re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z]\.)?\s+[A-Z][a-zA-Z'\-]+"),
}
_ASKS = [(label, asks, _LOOKS[label]) for label, asks in VALUE_QUESTIONS]


VALUE_SUPPORT = 0.25  # share of the question's own words a sentence needs for its value to count as the answer


def asked_value(question: str, sentences: list[_Sent]) -> str:
    """If the member's question asks for a percentage / date / amount / number / name and no answer
    sentence that speaks to the question's own words holds a value of that kind, name what is missing
    ("what % voted for the 2025 deal" is not answered by another vote's percentage)."""
    for label, asks, looks in _ASKS:
        if asks.search(question) and not any(_holds_value(x, looks) for x in sentences):
            return f"the {label} you asked for"
    return ""


def _holds_value(x: _Sent, looks) -> bool:
    return bool(looks.search(x.text)) and not _NOT_FOUND.search(x.text) and x.lex_all >= VALUE_SUPPORT


def _seek_value(question: str, sents: list[_Sent], chosen: list[_Sent]) -> list[_Sent]:
    """When the question asks for a kind of value (a percentage, a date, an amount, a number, a length
    of time, a name) that no chosen sentence holds, the best-scoring sentence that holds one joins the
    answer right after its lead, from a passage the answer already quotes. Only if none of those holds
    one is the value missing. (Taking it from any retrieved passage answered near-topic questions with
    another figure.)"""
    if not chosen:
        return chosen
    quoted = {x.cand_index for x in chosen}
    for label, asks, looks in _ASKS:
        if not asks.search(question) or any(_holds_value(x, looks) for x in chosen):
            continue
        options = [x for x in sents if x not in chosen and x.cand_index in quoted and _holds_value(x, looks)]
        if options:
            pick = max(options, key=lambda x: x.score)
            # nothing is cut to make room: the last sentence may be a current agreement's counterpart
            chosen = [chosen[0], pick, *chosen[1:]]
    return chosen


def compose(question: str, q: QueryInfo, cands: list[Candidate], idf: dict[str, float], vocab_has,
            max_citations: int = 5, covered: str = "",
            calibration: Calibration = DEFAULT_CALIBRATION,
            doc_places: dict[str, set[str]] | None = None, topic_cosine: float | None = None,
            doc_provides=None) -> Answer:
    """`topic_cosine`: when retrieval set other jurisdictions' laws aside, the best passage cosine in the
    whole index. Whether the question is on topic for this index is judged with it; which passages
    answer it, from `cands`. `doc_provides(doc_id)`: the kinds of consequence a whole document provides
    for (`remedies.provided`); with it, an answer none of whose documents provides for the consequence
    asked about ("can they go to jail?" of a civil statute) says so first."""
    if not cands:
        return abstain(question, covered)
    sig = assess(q, cands, idf, vocab_has, question, doc_places)
    if topic_cosine is not None:
        sig["best_dense"] = max(sig["best_dense"], topic_cosine)
    if decide(sig["best_dense"], sig["coverage"], calibration, len(sig["unknown_names"]),
              sig["shares_words"]) == "abstain":
        return abstain(question, covered)

    sents = _score_sentences(q, cands[:6], idf)
    if not sents:
        return abstain(question, covered)
    chosen = _choose(sents, cands[:6], asked_years=set(q.years))
    chosen = _seek_value(question, sents, chosen)
    asked = asked_value(question, chosen)
    if asked:
        sig["missing"].append(asked)
    note = ""
    partial = False
    if sig["missing"]:
        partial = True
        what = ", ".join(dict.fromkeys(sig["missing"]))
        note = f"My documents don't cover {what} specifically; here is what they do say."
    # a "not found" sentence near the top that speaks to the question makes the answer partial; the lead
    # always does, however few of the question's words it shares: an answer that opens with it answers nothing
    # (so does one of a quoted passage saying the very kind of value asked for was not found: it joins the answer)
    elif (unfound := _value_not_found(sents, chosen, question)) is not None or any(
            _NOT_FOUND.search(x.text) and (x is chosen[0] or x.lex_all >= max(0.35, chosen[0].lex_all - 0.05))
            for x in chosen[:3]):
        partial = True
        if unfound is not None:
            chosen = [unfound, *chosen]
        note = "My documents don't answer that: the sources they were written from say it was not found or not confirmed."
    text, citations = _render(chosen, cands, max_citations, asked_years=set(q.years))
    kinds = remedies.asked(question) if doc_provides is not None and not partial else []
    if kinds:
        # "can they go to jail?" of documents none of which (anywhere in its text) provides for any
        # criminal penalty; one cited document that does is enough to answer as usual
        lacking = remedies.missing(kinds, frozenset().union(*(doc_provides(c.doc_id) for c in citations)))
        if lacking:
            sig["missing"] += lacking
            partial = True
            note = f"The documents I found don't mention {' or '.join(lacking)}; here is what they do say."
    if note:
        text = note + "\n\n" + text
    ans = Answer(question=question, text=text, abstained=False, citations=citations, note=note, partial=partial)
    ans.signals = sig  # type: ignore[attr-defined]
    return ans


# How a sentence names each kind of value _ASKS knows ("the ratification percentage was not found").
_KIND_NOUNS = {
    "percentage": re.compile(r"\bpercent(?:age)?s?\b|%|\bshare\b|\bmargin\b", re.I),
    "date": re.compile(r"\bdates?\b|\bday\b|\bwhen\b", re.I),
    "amount": re.compile(r"\bamounts?\b|\brates?\b|\bfees?\b|\bfigures?\b|\bsums?\b|\bprices?\b|\bpay\b", re.I),
    "number": re.compile(r"\bnumbers?\b|\bcounts?\b|\btotals?\b|\bfigures?\b", re.I),
    "length of time": re.compile(r"\blength\b|\bduration\b|\bterm\b|\bperiod\b", re.I),
    "name": re.compile(r"\bnames?\b|\bwho\b|\bidentity\b", re.I),
}
NOT_FOUND_SUPPORT = 0.35  # share of the question's words (title included) such a sentence needs


def _value_not_found(sents: list[_Sent], chosen: list[_Sent], question: str) -> "_Sent | None":
    """When the question asks for a kind of value (a percentage, a date, an amount ...) and a passage the
    answer quotes says that very kind of value was not found ("The ratification percentage was not found"
    for "what % voted yes"), that sentence is the answer, also when the answer did not pick it.
    A "not found" sentence about something else (an outcome, "more detail") does not count."""
    kinds = [_KIND_NOUNS[label] for label, asks, _ in _ASKS if label in _KIND_NOUNS and asks.search(question)]
    if not kinds or not chosen:
        return None
    quoted = {x.cand_index for x in chosen}
    options = [x for x in sents if x not in chosen and x.cand_index in quoted and _NOT_FOUND.search(x.text)
               and x.lex_all >= NOT_FOUND_SUPPORT and any(k.search(x.text) for k in kinds)]
    return max(options, key=lambda x: (x.lex_all, x.score)) if options else None


def abstain(question: str, covered: str = "") -> Answer:
    text = ("My documents don't cover that, so I can't give you an answer I could back with a source. "
            + (covered or COVERED_TOPICS))
    return Answer(question=question, text=text, abstained=True, citations=[])


def _score_sentences(q: QueryInfo, cands: list[Candidate], idf: dict[str, float]) -> list[_Sent]:
    """Score each sentence of the best passages for how directly it answers the question.

    Terms satisfied by the document itself (its title, union, agreement: "SAG", "WGA deal") don't make
    one of its sentences more relevant than another, so they are left out of that document's sentence
    scores.
    """
    exp_stems = {stem(w) for e in q.expansions for w in _WORD.findall(e.lower())}
    best_fused = cands[0].fused or 1.0
    out: list[_Sent] = []
    for i, c in enumerate(cands):
        text = c.row["text"]
        doc_stems = _stems(f"{c.row['title']} {c.row['union_name']} {c.row['agreement']}")
        all_weights = _term_weights(q, idf)
        all_total = sum(all_weights.values()) or 1.0
        weights = {t: w for t, w in all_weights.items() if not _covered(t, doc_stems)}
        total = sum(weights.values()) or 1.0
        rel = c.fused / best_fused
        lo, hi = _core_span(c.row, len(text))
        for k, (s, e) in enumerate(split_sentences(text)):
            if s < lo or e > hi:
                continue
            sent = text[s:e]
            if len(sent) < 25 or not re.search(r"[A-Za-z]{3}", sent) or _mostly_link(sent):
                continue
            st = _stems(sent)
            lex = sum(w for t, w in weights.items() if _covered(t, st)) / total if weights else 0.5
            exp = len(exp_stems & st) / (len(exp_stems) or 1)
            score = 0.5 * lex + 0.1 * exp + 0.3 * rel + 0.3 * max(c.dense, 0.0) - RANK_STEP * i - 0.01 * k
            lex_all = sum(w for t, w in all_weights.items() if _covered(t, st | doc_stems)) / all_total
            out.append(_Sent(i, s, e, sent, score, lex, lex_all))
    out.sort(key=lambda x: x.score, reverse=True)
    return out


def _core_span(row, n: int) -> tuple[int, int]:
    """The part of a passage its answer may quote: all of it, unless context from a neighbouring
    section was added around the matched text (bot.retrieval.context)."""
    return row["core_span"] if "core_span" in row.keys() else (0, n)


def _core_text(row) -> str:
    lo, hi = _core_span(row, len(row["text"]))
    return row["text"][lo:hi]


def _mostly_link(sent: str) -> bool:
    links = sum(len(m) for m in re.findall(r"https?://\S+", sent))
    return links > len(sent) * 0.4


def _similar(a: str, b: str) -> bool:
    """Near-duplicate sentences (overlapping chunks). Sentences whose figures differ are never
    duplicates: "24 hours notice" (2020) and "48 hours notice" (2023) must both be shown."""
    if set(re.findall(r"\d[\d.,%]*", a)) != set(re.findall(r"\d[\d.,%]*", b)):
        return False
    sa, sb = _stems(a), _stems(b)
    if not sa or not sb:
        return False
    return len(sa & sb) / min(len(sa), len(sb)) > 0.7


def _choose(sents: list[_Sent], cands: list[Candidate], asked_years: set[int] = frozenset()) -> list[_Sent]:
    """Passage first, in retrieval order: the best sentence of the top passage and the sentence that
    follows it in the same paragraph (it usually carries the figures), then the best sentence of each
    next passage that speaks to the question's own terms. Weak passages are skipped."""
    by_cand: dict[int, list[_Sent]] = {}
    for x in sents:
        by_cand.setdefault(x.cand_index, []).append(x)
    top_dense = max((c.dense for c in cands[:6]), default=0.0)
    chosen: list[_Sent] = []

    def fresh(x: _Sent) -> bool:
        return x not in chosen and not any(_similar(x.text, c.text) for c in chosen)

    # passages in order of their best sentence (which blends retrieval rank, cosine and term overlap)
    order = sorted(by_cand, key=lambda i: by_cand[i][0].score, reverse=True)
    for rank, i in enumerate(order):
        if len(chosen) >= MAX_SENTENCES or len({c.cand_index for c in chosen}) >= MAX_PASSAGES:
            break
        options = [x for x in by_cand[i] if fresh(x)]
        if not options:
            continue
        pick = options[0]
        if rank > 0 and not (pick.lex >= 0.25 or (pick.lex_all >= 0.5 and cands[i].dense >= top_dense - 0.08)):
            continue
        chosen.append(pick)
        if not [c for c in chosen if c.cand_index == i and c is not pick] and len(chosen) < MAX_SENTENCES:
            follow = _following(pick, by_cand[i], cands[i].row["text"])
            if follow is not None and fresh(follow) and (rank == 0 or follow.lex >= 0.25):
                chosen.append(follow)
    return _with_current_counterparts(chosen, by_cand, cands, fresh, asked_years)


def _with_current_counterparts(chosen: list[_Sent], by_cand: dict[int, list[_Sent]], cands: list[Candidate],
                               fresh, asked_years: set[int] = frozenset()) -> list[_Sent]:
    """When a superseded agreement answers, the current agreement of the same union that also speaks
    to the question is quoted too (it leads in the rendered answer), so members see the rule in force."""
    have_docs = {cands[x.cand_index].doc_id for x in chosen}
    for x in list(chosen):
        old = cands[x.cand_index].row
        if old["status"] != "superseded" or old["year"] in asked_years:
            continue  # "what did the 2023 deal say": the member asked for the old agreement
        for i, c in enumerate(cands):
            row = c.row
            if (row["status"] != "current" or row["doc_id"] in have_docs or row["union_name"] != old["union_name"]
                    or not old["union_name"] or row["doc_type"] in ("news", "fact-check")):
                continue
            options = [y for y in by_cand.get(i, []) if fresh(y) and (y.lex > 0 or y.lex_all >= 0.5)]
            if options and options[0].score >= CURRENT_PEER * x.score:
                chosen.append(options[0])
                have_docs.add(row["doc_id"])
                break
    return chosen


def _following(pick: _Sent, same: list[_Sent], text: str) -> _Sent | None:
    """The sentence right after `pick` in the same paragraph, if there is one."""
    nxt = [x for x in same if x.start > pick.end and x.start - pick.end <= 3]
    if not nxt:
        return None
    gap = text[pick.end:nxt[0].start]
    return None if "\n\n" in gap else min(nxt, key=lambda x: x.start)


def _render(chosen: list[_Sent], cands: list[Candidate], max_citations: int,
            asked_years: set[int] = frozenset()) -> tuple[str, list[Citation]]:
    # Group sentences by document; documents in order of their best sentence, current before superseded
    # of the same union.
    groups: dict[str, list[_Sent]] = {}
    for s in chosen:
        groups.setdefault(cands[s.cand_index].doc_id, []).append(s)
    order = list(groups)
    docs = tuple(order)  # list.sort empties `order` while it sorts: the key must not read it
    first_rank = {d: i for i, d in enumerate(order)}

    best = {d: max(x.score for x in groups[d]) for d in docs}

    def key(doc_id: str):
        row = cands[groups[doc_id][0].cand_index].row
        same_union_current = any(
            cands[groups[o][0].cand_index].row["union_name"] == row["union_name"]
            and cands[groups[o][0].cand_index].row["status"] == "current"
            and best[o] >= CURRENT_PEER * best[doc_id]
            for o in docs if o != doc_id
        )
        demote = 1 if (row["status"] == "superseded" and same_union_current and row["year"] not in asked_years) else 0
        return (demote, first_rank[doc_id])

    order.sort(key=key)
    citations: list[Citation] = []
    n_for: dict[int, int] = {}
    paragraphs = []
    for doc_id in order:
        sents = groups[doc_id]
        # keep the passage's own order of sentences within a document
        sents.sort(key=lambda s: (s.cand_index, s.start))
        row = cands[sents[0].cand_index].row
        parts = []
        for s in sents:
            c = cands[s.cand_index]
            if c.chunk_id not in n_for:
                n_for[c.chunk_id] = len(citations) + 1
                citations.append(_citation(n_for[c.chunk_id], c, s))
            parts.append(_mark(_clean_sentence(s.text), n_for[c.chunk_id]))
        paragraphs.append(f"{doc_label(row)}: " + " ".join(parts))
    # Related passages the answer did not quote, so a member can check them too.
    top_dense = max((c.dense for c in cands), default=0.0)
    related = []
    for c in cands:
        if len(citations) >= max_citations:
            break
        # other passages of the document the answer leads with may follow whatever their cosine
        if c.chunk_id in n_for or (c.dense < top_dense - RELATED_GAP and c.doc_id != citations[0].doc_id):
            continue
        if any(c.row["text"] == cands[k].row["text"] for k in range(len(cands)) if cands[k].chunk_id in n_for):
            continue
        n_for[c.chunk_id] = len(citations) + 1
        lo, hi = _core_span(c.row, len(c.row["text"]))
        first = next((s for s in split_sentences(c.row["text"]) if s[0] >= lo and s[1] <= hi), (lo, hi))
        citations.append(_citation(n_for[c.chunk_id], c, _Sent(0, first[0], first[1], c.row["text"][first[0]:first[1]], 0.0)))
        section = f" \u2014 {c.row['section']}" if c.row["section"] else ""
        related.append(f"[{n_for[c.chunk_id]}] {c.row['title']}{section}")
    if related:
        paragraphs.append("See also: " + "; ".join(related) + ".")
    return "\n\n".join(paragraphs), citations


def _clean_sentence(text: str) -> str:
    return " ".join(text.split())


def _mark(sentence: str, n: int) -> str:
    """A document's sentence, shown as a quotation (it is the document's words, never the bot's
    instruction), with its citation marker: “… consent.” [2]"""
    return f"\u201c{sentence}\u201d [{n}]"


def _citation(n: int, c: Candidate, s: _Sent) -> Citation:
    row = c.row
    quote = s.text
    if len(quote) > MAX_QUOTE:
        cut = quote.rfind(" ", 0, MAX_QUOTE)
        quote = quote[: cut if cut > 40 else MAX_QUOTE]
    page_start, page_end = quote_pages(row, s.start, s.start + len(quote))
    return Citation(
        n=n, doc_id=row["doc_id"], title=row["title"], section=row["section"] or "",
        page_start=page_start, page_end=page_end, quote=quote, text=row["text"],
        url=row["url"] or "", score=round(c.fused, 5), chunk_id=c.chunk_id, status=row["status"],
        year=row["year"], union=row["union_name"],
    )


def quote_pages(row, start: int, end: int) -> tuple[int | None, int | None]:
    """The page(s) the quoted span of a chunk is on (falls back to the chunk's page span)."""
    raw = row["page_map"] if "page_map" in row.keys() else ""
    if not raw:
        return row["page_start"], row["page_end"]
    marks = json.loads(raw)
    first = last = None
    for off, page in marks:
        if off <= start:
            first = page
        if off < end:
            last = page
    return (first if first is not None else row["page_start"]), (last if last is not None else row["page_end"])


def idf_weights(doc_freq: dict[str, int], n_chunks: int) -> dict[str, float]:
    return {t: math.log(1 + (n_chunks + 1) / (df + 0.5)) for t, df in doc_freq.items()}
