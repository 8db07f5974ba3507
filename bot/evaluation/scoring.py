"""Evaluate answers against a JSONL file of {question, must_mention, answerable}.

Metrics: hit@1 / hit@5 (at least two thirds of the must-mention terms found in the top-1 / top-5 cited
passages), MRR (1 / the smallest k whose top-k passages hold them), answer coverage (share of
must-mention terms in the answer text), abstention accuracy (unanswerable questions the bot declined:
no answer, or "my documents don't cover ..." first), false abstentions (answerable questions it declined),
p50/p95 latency. When a question names its document (`doc`), only citations of that document count.
"""
from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..retrieval.analysis import stem

MODES = ("dense", "keyword", "hybrid")  # + "rerank" when RERANK_MODEL is set


def normalise(text: str) -> str:
    """Lower-case, unify quotes/dashes, drop punctuation around words, simple word forms."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = text.replace("\u2013", "-").replace("\u2014", "-").replace("isn't", "is not").replace("n't", " not")
    words = re.findall(r"[a-z0-9$%]+(?:[.,][0-9]+)*", text)
    return " " + " ".join(stem(w) for w in words) + " "


def contains(haystack_norm: str, term: str) -> bool:
    return normalise(term) in haystack_norm


def load_qa(path: Path) -> list[dict]:
    items = []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line:
                items.append(json.loads(line))
    return items


@dataclass
class EvalResult:
    mode: str
    n_answerable: int = 0
    n_unanswerable: int = 0
    hit1: int = 0
    hit5: int = 0
    rr: float = 0.0
    coverage: float = 0.0
    abstain_correct: int = 0
    false_abstain: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    quotes: int = 0  # quotes checked against the pages their citation names (PDF documents only)
    quotes_on_page: int = 0  # of those, found verbatim (whitespace aside) on those pages
    off_page: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        na = max(self.n_answerable, 1)
        lat = sorted(self.latencies)
        p = lambda q: lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))] if lat else 0.0  # noqa: E731
        return {
            "mode": self.mode,
            "answerable": self.n_answerable,
            "unanswerable": self.n_unanswerable,
            "hit_rate": round(self.hit5 / na, 3),
            "hit@1": round(self.hit1 / na, 3),
            "hit@5": round(self.hit5 / na, 3),
            "mrr": round(self.rr / na, 3),
            "answer_coverage": round(self.coverage / na, 3),
            "abstention_accuracy": round(self.abstain_correct / self.n_unanswerable, 3) if self.n_unanswerable else None,
            "false_abstentions": self.false_abstain,
            "p50_ms": round(statistics.median(lat), 1) if lat else 0.0,
            "p95_ms": round(p(0.95), 1),
            "quotes_on_page": round(self.quotes_on_page / self.quotes, 3) if self.quotes else None,
            "quotes_checked": self.quotes,
        }


HIT_SHARE = 2 / 3  # a passage set "hits" when it holds at least two thirds of the must-mention terms


def _enough(seen_norm: str, terms: list[str]) -> bool:
    found = sum(contains(seen_norm, t) for t in terms)
    return found >= HIT_SHARE * len(terms) - 1e-9


def _passage_rank(passages: list[str], terms: list[str]) -> int | None:
    """1-based rank k of the smallest prefix of passages that together hold enough of the terms."""
    if not terms:
        return None
    seen = ""
    for k, text in enumerate(passages, start=1):
        seen += normalise(text)
        if _enough(seen, terms):
            return k
    return None


_WS = re.compile(r"\s+")
_ELLIPSIS = re.compile(r"\s*(?:\u2026|\.\.\.)\s*")


def _ws(text: str) -> str:
    return _WS.sub(" ", text).strip()


def quote_on_page(quote: str, page_start: int | None, page_end: int | None, pages: list[str]) -> bool | None:
    """Whether every piece of `quote` (pieces joined by an ellipsis) occurs verbatim, whitespace aside, on the
    pages `page_start`..`page_end` (1-based) of a document whose page texts are `pages`; None when the
    citation names no page or a page the document does not have."""
    if not page_start or page_start > len(pages):
        return None
    end = min(max(page_end or page_start, page_start), len(pages))
    named = _ws(" ".join(pages[page_start - 1:end]))
    pieces = [_ws(x).strip("\"\u201c\u201d ") for x in _ELLIPSIS.split(quote)]
    pieces = [x for x in pieces if x]
    return bool(pieces) and all(x in named for x in pieces)


def declined(ans) -> bool:
    """The answer does not answer: no answer at all, or only "my documents don't cover ..." first."""
    return bool(ans.abstained or getattr(ans, "partial", False))


def evaluate(asker, items: list[dict], mode: str = "hybrid", history_key: str = "history",
             doc_ids: dict[str, str] | None = None, label: str | None = None,
             pages: dict[str, list[str]] | None = None) -> EvalResult:
    """Ask every question through `asker.ask(question, history=..., mode=...)` (the service, or the
    naive baseline) and score it. With `doc_ids` (QA `doc` file name -> indexed doc_id), only citations
    of the question's own document count: others keep their rank but hold nothing. With `pages` (doc_id ->
    page texts of its PDF), every quote the answer shows is checked against the pages its citation names."""
    res = EvalResult(label or mode)
    for item in items:
        q = item["question"]
        ans = asker.ask(q, history=item.get(history_key) or (), mode=mode)
        res.latencies.append(ans.latency_ms)
        for c in ans.citations if pages else ():
            doc_pages = pages.get(c.doc_id)
            ok = quote_on_page(c.quote, c.page_start, c.page_end, doc_pages) if doc_pages and c.quote else None
            if ok is not None:
                res.quotes += 1
                res.quotes_on_page += ok
                if not ok:
                    res.off_page.append({"id": item.get("id"), "doc_id": c.doc_id, "pages": (c.page_start, c.page_end),
                                         "quote": c.quote[:200]})
        own = None
        if doc_ids is not None and item.get("doc"):
            own = doc_ids.get(item["doc"]) or doc_ids.get(Path(item["doc"]).stem)
            if own is None:
                raise ValueError(f"{item.get('id')}: document {item['doc']!r} is not in the evaluation index")
        if item.get("answerable", True):
            res.n_answerable += 1
            terms = item.get("must_mention") or []
            passages = [c.text if own is None or c.doc_id == own else "" for c in ans.citations[:5]]
            rank = _passage_rank(passages, terms)
            if rank is not None:
                res.hit5 += 1
                res.rr += 1.0 / rank
                if rank == 1:
                    res.hit1 += 1
            text_norm = normalise(ans.text)
            cov = sum(contains(text_norm, t) for t in terms) / len(terms) if terms else 1.0
            res.coverage += cov
            if declined(ans):
                res.false_abstain += 1
            if rank is None or declined(ans):
                res.failures.append({"id": item.get("id"), "question": q, "abstained": ans.abstained,
                                     "partial": getattr(ans, "partial", False),
                                     "missing": [t for t in terms if not contains(normalise(" ".join(passages)), t)],
                                     "cited": [c.doc_id for c in ans.citations]})
        else:
            res.n_unanswerable += 1
            if declined(ans):
                res.abstain_correct += 1
            else:
                res.failures.append({"id": item.get("id"), "question": q, "abstained": False,
                                     "cited": [c.doc_id for c in ans.citations]})
    return res


def format_table(summaries: list[dict]) -> str:
    cols = ["mode", "answerable", "unanswerable", "hit@1", "hit@5", "mrr", "answer_coverage", "abstention_accuracy",
            "false_abstentions", "p50_ms"]
    if any(s.get("quotes_on_page") is not None for s in summaries):
        cols.append("quotes_on_page")
    head = "| " + " | ".join(cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    rows = ["| " + " | ".join(str(s.get(c)) for c in cols) + " |" for s in summaries]
    return "\n".join([head, sep, *rows])
