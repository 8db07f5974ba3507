"""Ask latency (warm) at several index sizes, against the floor: query encode + exact FAISS search (the
product's own `VectorIndex.search`, one thread per query).

For every question of a round the full `Service.ask` and the floor are timed back to back (in
alternating order), so both see the same machine load. The term-statistics caches of the service are
cleared before each ask: a member's new question pays its own IDF look-ups, so the number is not
flattered by asking the same 30 questions again. p50 and p95 are taken per round, then the median over
rounds is reported. A separate instrumented round breaks an ask down into its stages.
"""
from __future__ import annotations

import random
import time
from pathlib import Path

from .common import Row, StageTimer, per_round
from .context import Context, size_label
from .member_questions import questions

K_DENSE = 40  # what bot.retrieval.candidates asks FAISS for


def ask_rows(ctx: Context, sizes: list[int], target_size: int = 10_000) -> list[Row]:
    rows: list[Row] = []
    for n in sizes:
        rows.extend(_one_size(ctx, n, target_size))
    return rows


def _one_size(ctx: Context, n: int, target_size: int) -> list[Row]:
    import bot.service as service_mod
    from bot.config import Settings
    from bot.service import Service

    info = ctx.index(n)
    emb = ctx.embedder
    settings = Settings(index_dir=Path(info["index_dir"]), corpus_dir=ctx.corpus_dir)
    svc = Service.open(settings, embedder=emb, build_if_missing=False)
    try:
        gen = svc._current()
        qs = questions()[:8] if ctx.quick else questions()
        for q in qs[:3] if ctx.quick else qs:  # warm-up: page cache, FTS structures, torch kernels
            svc.ask(q)
        rounds = ctx.rounds(full=7, quick=1)
        rng = random.Random(n)
        asks: list[list[float]] = []
        floors: list[list[float]] = []
        ctx.log(f"ask @ {size_label(info['chunks'])}: {rounds} rounds x {len(qs)} questions")
        for r in range(rounds):
            order = list(qs)
            rng.shuffle(order)
            a, f = [], []
            for i, q in enumerate(order):
                for which in ((0, 1) if (i + r) % 2 == 0 else (1, 0)):
                    if which == 0:
                        svc._idf_cache.clear()
                        svc._vocab_cache.clear()
                        t0 = time.perf_counter()
                        svc.ask(q)
                        a.append(time.perf_counter() - t0)
                    else:
                        t0 = time.perf_counter()
                        v = emb.encode_query(q)
                        gen.vectors.search(v, K_DENSE)  # the product's exact search
                        f.append(time.perf_counter() - t0)
            asks.append(a)
            floors.append(f)
        # breakdown: one instrumented pass
        st = StageTimer()
        st.wrap(emb, "encode_query", "encode")
        st.wrap(gen.vectors, "search", "faiss")
        st.wrap(gen.store, "keyword_search", "fts_bm25")
        st.wrap(gen.store, "phrase_hits", "fts_phrase")
        st.wrap(gen.store, "chunk_rows", "chunk_rows")
        st.wrap(gen.store, "term_doc_freq", "idf_counts")
        st.wrap(service_mod, "retrieve", "retrieve_total")
        st.wrap(service_mod.compose, "compose", "compose_total")
        st.wrap(service_mod, "with_context", "context_total")
        t_total = 0.0
        try:
            for q in qs:
                svc._idf_cache.clear()
                svc._vocab_cache.clear()
                t0 = time.perf_counter()
                svc.ask(q)
                t_total += time.perf_counter() - t0
        finally:
            st.restore()
        per_q = {k: round(v / len(qs) * 1000, 3) for k, v in st.totals.items()}
        per_q["ask_total"] = round(t_total / len(qs) * 1000, 3)
        # idf_counts runs inside compose (vocab look-ups) and before it (IDF): report compose without it
        per_q["other_in_retrieve"] = round(per_q.get("retrieve_total", 0) - sum(
            per_q.get(k, 0) for k in ("faiss", "fts_bm25", "fts_phrase", "chunk_rows")), 3)
    finally:
        svc.close()
    p50, p95 = per_round(asks, 50) * 1000, per_round(asks, 95) * 1000
    f50, f95 = per_round(floors, 50) * 1000, per_round(floors, 95) * 1000
    label = size_label(info["chunks"])
    at_target = info["chunks"] == target_size
    detail = {"chunks": info["chunks"], "documents": info["documents"], "vector_index": info["vector_index"],
              "rounds": len(asks), "questions": len(asks[0]) if asks else 0, "breakdown_ms_per_ask": per_q,
              "ask_max_ms": round(max(max(a) for a in asks) * 1000, 1), "floor": "encode_query + faiss search k=40"}
    return [
        Row("ask_p50", f"ask_p50 @ {label} chunks", p50, "ms", f50, "", p50 / f50,
            "<= 1.5x floor @10k" if at_target else "", (p50 <= 1.5 * f50) if at_target else None, detail),
        Row("ask_p95", f"ask_p95 @ {label} chunks", p95, "ms", f95, "", p95 / f95,
            "<= 100 ms @10k" if at_target else "", (p95 <= 100) if at_target else None,
            {"chunks": info["chunks"]}),
    ]


def breakdown_text(rows: list[Row]) -> str:
    out = []
    for r in rows:
        b = r.detail.get("breakdown_ms_per_ask")
        if b:
            parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(b.items(), key=lambda kv: -kv[1]))
            out.append(f"{r.label}: ms per ask: {parts}")
    return "\n".join(out)

