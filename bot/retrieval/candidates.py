"""Hybrid retrieval: FAISS (dense) + FTS5 bm25 (keywords), fused by reciprocal rank, then boosted by
what the question names (an article, a bill, a union, a year) and by current-over-superseded.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..ingest.structure import GENERIC_HEADINGS
from . import places
from .analysis import QueryInfo

RRF_K = 60
KEYWORD_WEIGHT = 0.7  # the keyword list's weight in the fusion (dense = 1), fitted on the tuning questions
K_DENSE = K_KEYWORD = 40  # candidates each list contributes


@dataclass
class Candidate:
    chunk_id: int
    row: object  # sqlite3.Row with chunk + document columns
    dense: float = 0.0  # cosine similarity (0 if not in the dense list)
    dense_rank: int | None = None
    keyword: float = 0.0
    keyword_rank: int | None = None
    fused: float = 0.0
    boosts: dict = field(default_factory=dict)

    @property
    def doc_id(self) -> str:
        return self.row["doc_id"]


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()


def _matches_union(row, union: str) -> bool:
    u = f" {_norm(union)} "
    name = f" {_norm(row['union_name'])} "
    if u.strip() == "sag":
        u = " sag aftra "
    return u in name or (not row["union_name"].strip() and u in f" {_norm(row['title'])} ")


def retrieve(
    gen,
    q: QueryInfo,
    query_vec: np.ndarray | None,
    *,
    mode: str = "hybrid",
    k_dense: int = K_DENSE,
    k_keyword: int = K_KEYWORD,
    union_filter: str | None = None,
    limit: int = 12,
    idf: dict[str, float] | None = None,
    doc_places: dict[str, set[str]] | None = None,
    lexical: "tuple[list[tuple[int, float]], set[int]] | None" = None,
    set_aside: set[str] | None = None,
    stats: dict | None = None,
    front_matter: dict[str, int] | None = None,
    thread_docs: set[str] | None = None,
) -> list[Candidate]:
    """Return the best candidates, best first. mode: hybrid | dense | keyword. `lexical` is what
    `lexical_hits` returned for this question, when the caller ran it already (alongside the encode);
    `set_aside` the documents `other_places` gave, when the caller worked them out already (it searched
    `lexical` that much deeper). When documents were set aside, `stats` (if given) receives `topic_cosine`:
    the best passage cosine in the whole index (how on-topic the question is for this index).
    `front_matter` maps a legally structured document to the ordinal of its first chunk under an article,
    section or part. `thread_docs` are the documents a follow-up's thread is about (the one its previous
    question's answer led with)."""
    other = set_aside if set_aside is not None else other_places(q, doc_places) if mode == "hybrid" else set()
    widen = WIDEN if other or thread_docs else 1
    dense_hits: list[tuple[int, float]] = []
    if mode in ("hybrid", "dense") and query_vec is not None:
        dense_hits = gen.vectors.search(query_vec, k_dense * widen)
    kw_hits, ref_hits = lexical if lexical is not None else lexical_hits(
        gen, q, idf, mode=mode, k_keyword=k_keyword * widen)
    ids = list(dict.fromkeys([i for i, _ in dense_hits] + [i for i, _ in kw_hits] + sorted(ref_hits)))
    rows = gen.store.chunk_rows(ids)
    in_thread: dict[int, float] = {}
    if thread_docs:
        # a follow-up: the thread's document's passages are ranked among themselves (from the deeper
        # search), the others as usual
        for weight, hits in ((1.0, dense_hits), (KEYWORD_WEIGHT, kw_hits)):
            mine = [cid for cid, _ in hits if cid in rows and rows[cid]["doc_id"] in thread_docs]
            for rank, cid in enumerate(mine[:k_dense if weight == 1.0 else k_keyword]):
                in_thread[cid] = in_thread.get(cid, 0.0) + weight / (RRF_K + rank)
        if not other:
            dense_hits, kw_hits = dense_hits[:k_dense], kw_hits[:k_keyword]
    if other:
        if stats is not None and dense_hits:
            stats["topic_cosine"] = dense_hits[0][1]
        # the question names a jurisdiction whose law the index holds: other jurisdictions' laws are not
        # what it asks about, so each list is ranked without them (from a deeper search)
        rows = {i: r for i, r in rows.items() if r["doc_id"] not in other}
        dense_hits = [h for h in dense_hits if h[0] in rows][:k_dense]
        kw_hits = [h for h in kw_hits if h[0] in rows][:k_keyword]
        ref_hits = {i for i in ref_hits if i in rows}
    cands: dict[int, Candidate] = {}
    for rank, (cid, score) in enumerate(dense_hits):
        if cid in rows:
            c = cands.setdefault(cid, Candidate(cid, rows[cid]))
            c.dense, c.dense_rank = score, rank
            c.fused += 1.0 / (RRF_K + rank)
    for rank, (cid, score) in enumerate(kw_hits):
        if cid in rows:
            c = cands.setdefault(cid, Candidate(cid, rows[cid]))
            c.keyword, c.keyword_rank = score, rank
            c.fused += KEYWORD_WEIGHT / (RRF_K + rank)
    for cid in ref_hits:
        if cid in rows:
            cands.setdefault(cid, Candidate(cid, rows[cid]))
    for cid, fused in in_thread.items():
        if cid not in rows:
            continue
        c = cands.setdefault(cid, Candidate(cid, rows[cid]))
        c.fused = max(c.fused, THREAD_WEIGHT * fused)
    if query_vec is not None and mode == "hybrid":
        # dense score for keyword-only candidates, so every candidate has a comparable cosine
        missing = [c for c in cands.values() if c.dense_rank is None]
        if missing:
            vecs = _vectors_for(gen, [c.chunk_id for c in missing])
            for c in missing:
                if c.chunk_id in vecs:
                    c.dense = float(vecs[c.chunk_id] @ query_vec)
    out = list(cands.values())
    if union_filter:
        out = [c for c in out if _matches_union(c.row, union_filter)]
    if mode == "hybrid":
        for c in out:
            _boost(c, q, ref_hits, doc_places or {}, front_matter or {})
    out.sort(key=lambda c: c.fused, reverse=True)
    return out[:limit]


WIDEN = 8  # how much deeper each list is searched when other jurisdictions' laws are set aside


def other_places(q: QueryInfo, doc_places: dict[str, set[str]] | None) -> set[str]:
    """The documents that are another jurisdiction's law, when the question names a jurisdiction and the
    index holds law of it; else nothing. Federal law stays for a question about a state."""
    if not q.places or not doc_places:
        return set()
    named = set(q.places)
    if not any(where & named for where in doc_places.values()):
        return set()  # nothing of the named place is indexed: the answer says so, from what there is
    state = any(places.is_state(p) for p in named)
    return {d for d, where in doc_places.items() if not where & named and not ("US" in where and state)}


def lexical_hits(gen, q: QueryInfo, idf: dict[str, float] | None, *, mode: str = "hybrid",
                 k_keyword: int = K_KEYWORD) -> tuple[list[tuple[int, float]], set[int]]:
    """The SQLite side of a search: bm25 hits for the question's terms and the chunks quoting its
    article/section references. Needs no query vector, so it can run while the question is encoded."""
    kw_hits: list[tuple[int, float]] = []
    if mode in ("hybrid", "keyword"):
        kw_hits = gen.store.keyword_search(keyword_terms(q, idf, gen.vectors.ntotal), k_keyword)
    ref_hits: set[int] = set()
    if mode == "hybrid":
        for ref in q.references:
            ref_hits.update(gen.store.phrase_hits(ref))
    return kw_hits, ref_hits


COMMON_IDF = 1.8  # ~ a term in more than 1 chunk in 5: it ranks little and costs a long posting-list scan


LARGE_INDEX = 5000  # chunks; below this every term is cheap and all of them help ranking


def keyword_terms(q: QueryInfo, idf: dict[str, float] | None, n_chunks: int = 0) -> list[str]:
    """The terms sent to FTS5: the question's words plus the document words for member words. On a large
    index the very common words are left out: they barely change bm25 ranking but make FTS5 score
    most of the index's rows."""
    terms = list(q.terms)
    expansions = [e for e in list(q.expansions)[:6] if e not in terms]  # a word counts once
    if idf and n_chunks > LARGE_INDEX:
        if len(terms) > 3:
            rare = [t for t in terms if idf.get(t, COMMON_IDF + 1) >= COMMON_IDF]
            terms = rare if len(rare) >= 2 else sorted(terms, key=lambda t: -idf.get(t, 0.0))[:3]
        # a common phrase ("digital replica" in an index of replica rules) is the dearest term of all:
        # FTS5 compares its words' positions in every row that has them
        expansions = [e for e in expansions if idf.get(e, COMMON_IDF + 1) >= COMMON_IDF]
    return terms + expansions


def _vectors_for(gen, ids: list[int]) -> dict[int, np.ndarray]:
    return gen.vectors.vectors(ids)


# Boosts are in RRF units: one rank near the top is worth about 1/(RRF_K+r)^2 ~ 0.0003.
BOOST_REF = 0.01
BOOST_UNION = 0.002
BOOST_PLACE = 0.004  # the question names the document's state or country ("in WA", "the eu rules")
PLACE_DEMOTE = 0.5
THREAD_WEIGHT = 1.0  # a follow-up's passages from its thread's document: ranked among themselves
BOOST_AGREEMENT = 0.0015
BOOST_YEAR = 0.0015
BOOST_CURRENT = 0.0006
BOOST_SUPERSEDED = 0.003
BOOST_HEADER = 0.004
HEADER_CHARS = 250
_ENACTING = re.compile(
    r"\b(?:do enact as follows|be it enacted|is hereby enacted|introduced by|read (?:twice|the first time)|"
    r"ordered (?:to be )?printed)\b", re.I)
# A passage outside the operative text (recitals, findings, statements of intent or purpose, a preamble,
# the legislative counsel's digest) explains the law; the rule a member asks about is in the articles
# and sections. Such a passage ranks a little lower, never out.
BOOST_NON_OPERATIVE = 0.004
_NON_OPERATIVE = re.compile(
    r"\b(?:recitals?|findings|legislative (?:intent|declaration)|intent|purposes?|preamble|whereas|digest)\b", re.I)


# What a passage holding the kind of value a question asks for (`QueryInfo.asks`) looks like: stricter
# than the answer's check, since a number alone is a label here ("(1)", "Sec. 59"). Such a passage ranks
# a little higher ("how long do i have to sue" -> "not later than four years").
_NUM_WORD = (r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
             r"forty|fifty|sixty|seventy|eighty|ninety|hundred)")
_PERCENT = r"\d(?:\.\d+)?\s?%|\bpercent\b"
VALUE_KINDS = {
    "amount": re.compile(rf"\$\s?\d|\bdollars\b|{_PERCENT}", re.I),
    "length of time": re.compile(rf"\b{_NUM_WORD}(?:[\s-]+{_NUM_WORD})?[\s-]+(?:seconds?|minutes?|hours?|days?|"
                                 r"weeks?|months?|years?)\b", re.I),
    "date": re.compile(r"\b(?:January|February|March|April|May|June|July|August|September|October|November|"
                       r"December)\s+\d{1,2}\b|\b\d{4}-\d{2}-\d{2}\b"),
    "percentage": re.compile(_PERCENT, re.I),
}
BOOST_VALUE = 0.002


def _top_is_generic(section: str) -> bool:
    top = (section or "").split(" > ")[0].strip()
    return not top or top.lower() in GENERIC_HEADINGS


def _boost(c: Candidate, q: QueryInfo, ref_hits: set[int], doc_places: dict[str, set[str]],
           front_matter: dict[str, int] | None = None) -> None:
    row = c.row
    if q.asks and any(VALUE_KINDS[k].search(row["text"]) for k in q.asks if k in VALUE_KINDS):
        c.boosts["value"] = BOOST_VALUE
    title_union = f"{row['title']} {row['union_name']} {row['agreement']}"
    if c.chunk_id in ref_hits:
        c.boosts["reference"] = BOOST_REF
    if q.unions:
        if any(_matches_union(row, u) for u in q.unions):
            c.boosts["union"] = BOOST_UNION
        elif row["union_name"] and row["doc_type"] not in ("law", "bill", "fact-check"):
            c.boosts["union"] = -BOOST_UNION / 2
    if q.places:
        where = doc_places.get(c.doc_id)
        if where and where & set(q.places):
            c.boosts["place"] = BOOST_PLACE
        elif where and not ("US" in where and any(places.is_state(p) for p in q.places)):
            # another jurisdiction's law, unless it is federal law and the question is about a state
            c.boosts["place"] = -BOOST_PLACE * PLACE_DEMOTE
    if q.agreements:
        ag = _norm(title_union)
        if any(_norm(a) in ag for a in q.agreements):
            c.boosts["agreement"] = BOOST_AGREEMENT
    if q.years:
        if row["year"] in q.years:
            c.boosts["year"] = BOOST_YEAR
        elif row["year"] and any(str(y) in row["text"] for y in q.years):
            c.boosts["year"] = BOOST_YEAR / 3
    if len(row["text"]) < HEADER_CHARS and (
            (row["ordinal"] <= 1 and not (row["section"] or "").strip()) or _ENACTING.search(row["text"])):
        # a bill's header block (its title, number, session) or its enacting clause and sponsors' line:
        # it names the topic but answers nothing
        c.boosts["header"] = -BOOST_HEADER
    if _NON_OPERATIVE.search(row["section"] or "") or (
            row["ordinal"] < (front_matter or {}).get(c.doc_id, -1) and _top_is_generic(row["section"])):
        # (or the front matter of a law laid out in parts, articles and sections: its title, sponsors,
        # bill information, digest or summary, before the first of them)
        c.boosts["non_operative"] = -BOOST_NON_OPERATIVE
    if row["status"] == "current" and not (q.years and row["year"] not in q.years):
        c.boosts["current"] = BOOST_CURRENT
    elif row["status"] == "superseded" and q.wants_current:
        c.boosts["current"] = -BOOST_SUPERSEDED  # "what does the current deal say": not the old one
    c.fused += sum(c.boosts.values())
