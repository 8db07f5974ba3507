"""The ask path's speed work keeps its answers: the SQLite side (term statistics, bm25, reference hits)
runs on a worker thread while the question is encoded, a single query runs single-threaded in FAISS and
torch without changing any other thread's setting, and on a large index common terms and common
expansion phrases are left out of the keyword search, each word counted once."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from bot.retrieval import candidates
from bot.retrieval.analysis import QueryInfo, analyse
from bot.retrieval.candidates import LARGE_INDEX, keyword_terms, lexical_hits, retrieve
from bot.vectors import VectorIndex


def _q(terms, expansions=()):
    return QueryInfo(text=" ".join(terms), terms=list(terms), expansions=list(expansions), references=[])


def test_a_word_named_by_the_question_and_by_an_expansion_counts_once():
    assert keyword_terms(_q(["strike", "long"], ["strike", "work stoppage"]), None) == ["strike", "long", "work stoppage"]


def test_common_expansion_phrases_are_left_out_only_on_a_large_index():
    q = _q(["scan", "consent", "paid", "background"], ["digital replica", "compensation"])
    idf = {"scan": 3.0, "consent": 2.5, "paid": 2.2, "background": 2.9, "digital replica": 0.9, "compensation": 2.4}
    large = keyword_terms(q, idf, LARGE_INDEX + 1)
    assert "digital replica" not in large and "compensation" in large
    assert keyword_terms(q, idf, LARGE_INDEX) == ["scan", "consent", "paid", "background", "digital replica",
                                                  "compensation"]
    # a phrase whose statistics are unknown is kept
    assert "digital replica" in keyword_terms(q, {k: v for k, v in idf.items() if k != "digital replica"},
                                              LARGE_INDEX + 1)


def test_precomputed_lexical_hits_give_the_same_candidates(hash_service):
    gen = hash_service._current()
    for question in ("Do they need my consent to scan me?", "How long is the term of the agreement?",
                     "What does Article 2 say?"):
        q = analyse(question)
        vec = hash_service.embedder.encode_query(question)
        idf = hash_service._idf(gen, q.terms)
        plain = retrieve(gen, q, vec, idf=idf)
        pre = retrieve(gen, q, vec, idf=idf, lexical=lexical_hits(gen, q, idf))
        assert [(c.chunk_id, round(c.fused, 9)) for c in plain] == [(c.chunk_id, round(c.fused, 9)) for c in pre]
        assert plain


def test_ask_runs_the_sqlite_side_on_another_thread(hash_service, monkeypatch):
    seen = []
    real = candidates.lexical_hits

    def spy(*args, **kwargs):
        seen.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr("bot.service.lexical_hits", spy)
    ans = hash_service.ask("Do they need my consent to scan me?")
    assert ans.citations
    assert seen and seen[0].startswith("lexical") and seen[0] != threading.current_thread().name
    # keyword-only asks have nothing to overlap with and stay on the caller's thread
    seen.clear()
    hash_service.ask("Do they need my consent to scan me?", mode="keyword")
    assert seen == [threading.current_thread().name]


def test_a_failure_on_the_sqlite_side_reaches_the_caller(hash_service, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr("bot.service.lexical_hits", broken)
    with pytest.raises(RuntimeError, match="disk I/O error"):
        hash_service.ask("Do they need my consent to scan me?")


def test_phrase_statistics_are_counted_once_per_generation_and_only_on_a_large_index(hash_service, monkeypatch):
    gen = hash_service._current()
    calls = []
    real = gen.store.term_doc_freq

    def counting(terms):
        calls.append(list(terms))
        return real(terms)

    monkeypatch.setattr(gen.store, "term_doc_freq", counting)
    assert hash_service._phrase_idf(gen, ["digital replica"]) == {}  # small index: not needed
    assert calls == []
    monkeypatch.setattr(candidates, "LARGE_INDEX", 0)
    monkeypatch.setattr("bot.service.LARGE_INDEX", 0)
    first = hash_service._phrase_idf(gen, ["digital replica", "consent"])
    again = hash_service._phrase_idf(gen, ["consent", "digital replica"])
    assert first == again and set(first) == {"digital replica", "consent"}
    assert calls == [["digital replica", "consent"]]
    hash_service._idf_cache.clear()  # question-word statistics are not where phrases live
    hash_service._phrase_idf(gen, ["digital replica"])
    assert len(calls) == 1


def test_single_query_search_is_exact_and_leaves_the_thread_count_alone():
    import faiss

    rng = np.random.default_rng(7)
    vecs = rng.standard_normal((500, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    vi = VectorIndex.build(np.arange(500), vecs, 16, kind="flat")
    q = vecs[42]
    before = faiss.omp_get_max_threads()
    hits = vi.search(q, 5)
    assert faiss.omp_get_max_threads() == before
    best = np.argsort(-(vecs @ q))[:5]
    assert [i for i, _ in hits] == [int(i) for i in best]


@pytest.mark.slow
def test_query_encode_is_the_batch_encode_and_restores_torch_threads(real_embedder):
    import torch

    before = torch.get_num_threads()
    one = real_embedder.encode_query("can they scan me and use my face next season?")
    assert torch.get_num_threads() == before
    batch = real_embedder.encode(["can they scan me and use my face next season?"])[0]
    assert float(one @ batch) > 0.9999
