"""bot.answering.compose (through Service.ask) with the fake embedder over a small hand-written corpus: verbatim
quotes, consistent citation numbers, document names, superseded handling, abstention, odd input,
union filter, rendering."""
from __future__ import annotations

import re

import pytest

from bot.config import Settings
from bot.embedding import HashEmbedder
from bot.ingest.parse import Limits, parse_file
from bot.models import DISCLAIMER, Answer
from bot.render import render_text
from bot.service import Service

from conftest import TINY_CORPUS

QUESTIONS = [
    "what notice is required before a scanning session for a digital replica?",
    "do they need my consent to create a digital replica?",
    "is generative artificial intelligence a writer?",
    "what can the estate of a deceased performer recover?",
    "what is the pay for a scan?",
    "can they train AI on writers' scripts?",
    "is 24 hours notice enough before a scanning session for a digital replica?",
]

MARKER = re.compile(r"\[(\d+)\]")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("answer") / "corpus"
    d.mkdir()
    for name, text in TINY_CORPUS.items():
        (d / name).write_text(text, encoding="utf-8")
    return d


def _service(corpus_dir, **overrides) -> Service:
    root = corpus_dir.parent / ("index-" + "-".join(f"{k}{v}" for k, v in sorted(overrides.items())))
    settings = Settings(index_dir=root, corpus_dir=corpus_dir, embedding_model="hash-embedder-v1", **overrides)
    return Service.open(settings, embedder=HashEmbedder())


@pytest.fixture(scope="module")
def svc(corpus_dir):
    s = _service(corpus_dir)
    yield s
    s.close()


@pytest.fixture(scope="module")
def doc_texts(corpus_dir) -> dict[str, str]:
    """title -> full parsed text of each corpus document (what a quote must come from)."""
    out = {}
    for p in corpus_dir.iterdir():
        doc = parse_file(p, Limits())
        out[doc.meta.title] = doc.text
    return out


def check_citations(ans: Answer, doc_texts: dict[str, str] | None = None) -> None:
    """The invariants every answer must satisfy."""
    numbers = [c.n for c in ans.citations]
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    markers = {int(n) for n in MARKER.findall(ans.text)}
    assert markers == set(numbers), (markers, numbers, ans.text)
    for c in ans.citations:
        assert c.quote.strip(), c
        assert c.quote in c.text, (c.quote, c.text)
        assert c.title and c.doc_id
        if doc_texts is not None:
            assert c.title in doc_texts, c.title
            assert c.text in doc_texts[c.title]
            assert c.quote in doc_texts[c.title]


def paragraph_of(text: str, title: str) -> str:
    paras = [p for p in text.split("\n\n") if title in p and not p.startswith("See also")]
    assert paras, (title, text)
    return paras[0]


# --------------------------------------------------------------------------------------------------
# citations


@pytest.mark.parametrize("question", QUESTIONS)
def test_quotes_verbatim_and_numbers_consistent(svc, doc_texts, question):
    ans = svc.ask(question)
    assert not ans.abstained, ans.text
    assert ans.citations, ans.text
    check_citations(ans, doc_texts)


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_numbers_consistent_with_small_top_k(corpus_dir, doc_texts, top_k):
    s = _service(corpus_dir, top_k=top_k)
    try:
        for q in QUESTIONS:
            check_citations(s.ask(q), doc_texts)
    finally:
        s.close()


def test_answer_names_the_document_and_quotes_it(svc):
    ans = svc.ask("what notice is required before a scanning session for a digital replica?")
    assert "Test Guild 2023 Agreement" in ans.text
    assert "48 hours" in ans.text
    first = ans.citations[0]
    assert first.title == "Test Guild 2023 Agreement"
    assert first.section == "Digital replicas > Notice"
    assert first.url == "https://example.org/test-guild-2023"
    assert first.status == "current" and first.year == 2023
    assert first.page_start is None  # Markdown has no pages


def test_answer_names_law(svc):
    ans = svc.ask("what can the estate of a deceased performer recover?")
    assert "Example State Replica Law" in ans.text
    assert "ten thousand dollars" in ans.text
    assert ans.citations[0].doc_id == "example-state-replica-law"


# --------------------------------------------------------------------------------------------------
# superseded documents


def test_superseded_document_is_labelled_and_current_listed_first(svc):
    ans = svc.ask("what notice is required before a scanning session for a digital replica?")
    check_citations(ans)
    by_doc = {c.doc_id: c for c in ans.citations}
    assert "test-guild-2020-agreement" in by_doc and "test-guild-2023-agreement" in by_doc, ans.text
    assert by_doc["test-guild-2020-agreement"].status == "superseded"
    assert by_doc["test-guild-2023-agreement"].status == "current"
    assert ans.citations[0].doc_id == "test-guild-2023-agreement"
    assert ans.text.index("Test Guild 2023 Agreement") < ans.text.index("Test Guild 2020 Agreement")
    assert "superseded" in paragraph_of(ans.text, "Test Guild 2020 Agreement").lower()
    rendered = render_text(ans)
    line = [ln for ln in rendered.splitlines() if "Test Guild 2020 Agreement" in ln and ln.strip().startswith("[")]
    assert line and "superseded" in line[0]


def test_current_document_leads_even_when_superseded_matches_better(svc):
    ans = svc.ask("is 24 hours notice enough before a scanning session for a digital replica?")
    check_citations(ans)
    docs = [c.doc_id for c in ans.citations]
    assert "test-guild-2023-agreement" in docs, ans.text
    assert docs[0] == "test-guild-2023-agreement", ans.text
    body = ans.text.split("See also")[0]
    assert "48 hours" in body, ans.text
    assert body.index("Test Guild 2023 Agreement") < body.index("Test Guild 2020 Agreement")


def test_superseded_label_in_answer_text(svc):
    ans = svc.ask("is 24 hours notice enough before a scanning session for a digital replica?")
    para = paragraph_of(ans.text, "Test Guild 2020 Agreement")
    assert "superseded" in para.lower()
    old = [c for c in ans.citations if c.doc_id == "test-guild-2020-agreement"]
    assert old and old[0].status == "superseded"


# --------------------------------------------------------------------------------------------------
# abstention and odd input


@pytest.mark.parametrize("question", [
    "who won the Oscar for best picture?",
    "what's the best pizza topping in Naples?",
    "how do I reset my wifi router password?",
])
def test_off_topic_abstains_with_no_citations(svc, question):
    ans = svc.ask(question)
    assert ans.abstained
    assert ans.citations == []
    assert not MARKER.search(ans.text), ans.text
    assert ans.text.strip()


@pytest.mark.parametrize("question", ["", "   ", "\n\t  \n", "🤖", "🤖🎬😀", "???", "…", "👍 👍"])
def test_empty_or_wordless_question_gets_a_clear_message(svc, question):
    ans = svc.ask(question)
    assert isinstance(ans, Answer)
    assert ans.abstained
    assert ans.citations == []
    assert "question" in ans.text.lower()
    assert ans.disclaimer == DISCLAIMER
    assert "Not legal advice" in render_text(ans)


def test_year_the_documents_do_not_cover_is_said(svc):
    ans = svc.ask("what does the 2029 Test Guild agreement say about scans?")
    check_citations(ans)
    assert ans.abstained or "2029" in ans.text
    if ans.citations:  # a partial answer must say what it cannot cover
        assert "2029" in ans.text


def test_how_much_question_answered_by_a_duration_is_a_full_answer(svc):
    """'how much notice' is answered by '48 hours': not a partial 'don't cover the amount' answer."""
    ans = svc.ask("how much notice before a scanning session for a digital replica?")
    assert "48 hours" in ans.text
    assert not ans.abstained, ans.text
    assert "don't cover" not in ans.text


def test_five_thousand_character_question(svc, doc_texts):
    q = ("what notice is required before a scanning session for a digital replica? " * 80)[:5000]
    assert len(q) == 5000
    ans = svc.ask(q)
    check_citations(ans, doc_texts)
    assert not ans.abstained and "48 hours" in ans.text
    rambling = "what notice is required before a scanning session for a digital replica? " + "so anyway " * 500
    ans = svc.ask(rambling)
    check_citations(ans, doc_texts)
    assert ans.latency_ms >= 0


def test_question_with_markup_and_injection_is_just_text(svc, doc_texts):
    ans = svc.ask('"digital replica" AND consent OR (notice* NEAR scan) -- ; DROP TABLE chunks; <script>')
    check_citations(ans, doc_texts)
    assert svc.ask("what notice is required before a scanning session for a digital replica?").citations


# --------------------------------------------------------------------------------------------------
# union filter


def test_union_filter_only_cites_that_union(svc):
    q = "do they need my consent to create a digital replica?"
    unfiltered = svc.ask(q)
    assert {c.union for c in unfiltered.citations} - {"Test Guild"}, "test needs another union in the results"
    ans = svc.ask(q, union="Test Guild")
    assert ans.citations and not ans.abstained
    assert {c.union for c in ans.citations} == {"Test Guild"}
    check_citations(ans)
    other = svc.ask("is generative artificial intelligence a writer?", union="Other Guild")
    assert other.citations
    assert {c.union for c in other.citations} == {"Other Guild"}


@pytest.mark.parametrize("union", ["Other Guild", "No Such Union"])
def test_union_filter_with_nothing_relevant_abstains(svc, union):
    ans = svc.ask("what can the estate of a deceased performer recover?", union=union)
    assert ans.abstained
    assert ans.citations == []


# --------------------------------------------------------------------------------------------------
# rendering


def test_render_text_has_sources_quotes_and_disclaimer(svc):
    ans = svc.ask("what notice is required before a scanning session for a digital replica?")
    out = render_text(ans)
    assert out.rstrip().endswith(DISCLAIMER)
    assert "Not legal advice" in out
    assert "Sources:" in out
    assert "**" not in out
    for c in ans.citations:
        assert f"[{c.n}] {c.title}" in out
        assert c.quote[:60] in out
    assert "https://example.org/test-guild-2023" in out


def test_render_text_abstention_has_disclaimer_and_no_sources(svc):
    out = render_text(svc.ask("who won the Oscar for best picture?"))
    assert "Sources:" not in out
    assert out.rstrip().endswith(DISCLAIMER)


def test_answer_json_shape(svc):
    data = svc.ask("what notice is required before a scanning session for a digital replica?").to_json()
    assert {"question", "answer", "abstained", "citations", "latency_ms"} <= set(data)
    for c in data["citations"]:
        assert {"n", "doc_id", "title", "section", "page_start", "page_end", "quote", "text", "url", "score"} <= set(c)
