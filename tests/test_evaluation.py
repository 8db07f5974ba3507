"""The evaluation tools: the two-thirds hit rule, own-document scoring, the naive baseline, scratch
indexes from a folder of documents (as PDFs), and `ask --json -` with thread history."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from bot.evaluation.baseline import NaiveHybrid, windows
from bot.evaluation.scoring import _passage_rank, evaluate, quote_on_page

DOC_A = ("Section 1. Definitions. A digital replica means a computer-generated copy of a performer's voice "
         "or likeness.\n\nSection 2. Penalty. A person who violates this section is liable for a civil penalty "
         "of one thousand dollars for a first violation.\n")
DOC_B = "The employer must give the crew thirty days notice before introducing generative artificial intelligence tools.\n"


def test_hit_needs_two_thirds_of_the_terms():
    terms = ["one thousand dollars", "first violation", "civil penalty"]
    assert _passage_rank(["a civil penalty of one thousand dollars"], terms) == 1  # 2 of 3
    assert _passage_rank(["a civil penalty", "nothing", "for a first violation"], terms) == 3
    assert _passage_rank(["civil penalty only"], terms) is None  # 1 of 3


def test_windows_stride_and_never_empty():
    words = " ".join(f"w{i}" for i in range(400))
    parts = windows(words)
    assert [len(p.split()) for p in parts] == [180, 180, 100]
    assert parts[1].split()[0] == "w150"
    assert windows("") == []


class _Asker:
    def __init__(self, cites, abstained=False, partial=False):
        self.cites, self.abstained, self.partial = cites, abstained, partial

    def ask(self, question, history=(), mode=None):
        return SimpleNamespace(text="", abstained=self.abstained, partial=self.partial, latency_ms=1.0,
                               citations=[SimpleNamespace(doc_id=d, text=t) for d, t in self.cites])


def test_only_the_questions_own_document_counts():
    item = {"question": "fine?", "doc": "a.md", "must_mention": ["one thousand dollars"], "answerable": True}
    wrong_doc = _Asker([("b", "one thousand dollars"), ("a", "one thousand dollars")])
    res = evaluate(wrong_doc, [item], doc_ids={"a.md": "a", "b.md": "b"})
    assert (res.hit1, res.hit5) == (0, 1) and res.rr == pytest.approx(0.5)
    with pytest.raises(ValueError, match="not in the evaluation index"):
        evaluate(wrong_doc, [{**item, "doc": "missing.md"}], doc_ids={"a.md": "a"})


def test_a_partial_answer_is_declined_on_both_sides():
    answerable = {"question": "q", "must_mention": ["x"], "answerable": True}
    unanswerable = {"question": "q", "must_mention": [], "answerable": False}
    res = evaluate(_Asker([("a", "x")], partial=True), [answerable, unanswerable])
    assert res.false_abstain == 1 and res.abstain_correct == 1


def test_naive_baseline_finds_the_passage():
    from bot.embedding import HashEmbedder

    nh = NaiveHybrid(HashEmbedder(), [("a", DOC_A), ("b", DOC_B)])
    top = nh.search("how much is the civil penalty for a first violation")
    assert top[0].doc_id == "a" and "one thousand dollars" in top[0].text
    assert nh.ask("notice before generative artificial intelligence tools").citations[0].doc_id == "b"


def test_a_quote_counts_as_on_its_page_only_where_the_page_holds_it():
    pages = ["Section 1. A digital replica means a computer-generated\ncopy of a performer's voice.",
             "Section 2. A person who violates this section is liable for a civil penalty."]
    assert quote_on_page("A digital replica means a computer-generated copy", 1, 1, pages) is True  # line break aside
    assert quote_on_page("A digital replica means a computer-generated copy", 2, 2, pages) is False  # wrong page
    assert quote_on_page("\u201cA digital replica means \u2026 copy of a performer's voice.\u201d", 1, 1, pages) is True
    assert quote_on_page("A digital replica means \u2026 liable for a civil penalty", 1, 1, pages) is False
    assert quote_on_page("A digital replica means \u2026 liable for a civil penalty", 1, 2, pages) is True  # a span
    assert quote_on_page("liable for a civil fine", 2, 2, pages) is False  # not verbatim
    assert quote_on_page("anything", None, None, pages) is None and quote_on_page("anything", 3, 3, pages) is None


def test_off_page_quotes_are_counted_and_listed():
    pages = {"a": ["the first page says one thing", "the second page says another"]}

    class Quoting:
        def ask(self, question, history=(), mode=None):
            cite = lambda q, p: SimpleNamespace(doc_id="a", text=q, quote=q, page_start=p, page_end=p)  # noqa: E731
            return SimpleNamespace(text="", abstained=False, partial=False, latency_ms=1.0,
                                   citations=[cite("the first page says", 1), cite("the second page says", 1)])

    res = evaluate(Quoting(), [{"id": "q1", "question": "q", "must_mention": ["page"], "answerable": True}], pages=pages)
    assert (res.quotes, res.quotes_on_page) == (2, 1)
    assert res.summary()["quotes_on_page"] == 0.5
    assert res.off_page == [{"id": "q1", "doc_id": "a", "pages": (1, 1), "quote": "the second page says"}]
