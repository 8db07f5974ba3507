"""Flat vs HNSW (bot.vectors.VectorIndex, as the bot builds them) at growing sizes, in the same run.

Vectors: synthetic chunk vectors grown from the corpus's real sentence embeddings (benchmarks/synth.py).
Queries: the member questions (real query embeddings) plus real corpus-sentence embeddings. Latency is
one query at a time with k=40 (what retrieval asks for), flat and HNSW interleaved; recall@10 of HNSW is
measured against exact flat search on the same vectors.

The recommended HNSW_THRESHOLD is the size at which exact search starts to cost as much as encoding the
query (measured in the same run): below it, flat search is a small part of an ask and keeps exact
results and cheap removals (HNSW cannot remove: every replace/remove rebuilds it from the store).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .common import Row, median, per_round
from .context import Context, size_label
from .member_questions import questions


def _set_ef(vi, ef: int) -> None:
    import faiss

    faiss.downcast_index(vi.index.index).hnsw.efSearch = ef


def scale_rows(ctx: Context) -> list[Row]:
    import faiss

    from bot.vectors import HNSW_THRESHOLD, VectorIndex

    from .synth import approx_vector_stream

    if ctx.quick:
        sizes = [1000, 3000]
    else:
        sizes = [10_000, 30_000, 100_000]
        if ctx.scale_max and ctx.scale_max > 100_000:
            sizes.append(int(ctx.scale_max))
    pool = ctx.pool
    emb = ctx.embedder
    if ctx.real_vectors:
        # real embeddings: the vectors of the largest benchmark index (built with --real-vectors)
        from bot.store import Store

        info = ctx.index(max(sizes))
        store = Store(Path(info["index_dir"]) / "current" / "index.sqlite")
        try:
            vecs = store.all_vectors(emb.dimension)[1]
        finally:
            store.close()
        sizes = [n for n in sizes if n <= len(vecs)]
        source = f"real embeddings of synthetic chunks ({len(vecs)})"
    else:
        ctx.log(f"scale: generating {size_label(max(sizes))} vectors")
        vecs = np.concatenate(list(approx_vector_stream(ctx.sources, pool, max(sizes), seed=11,
                                                        noise_cos=pool.approx_cos)))
        source = f"sentence mixtures + isotropic noise (cos {pool.approx_cos:.3f} to the mixture)"
    qs = questions()
    qv = np.stack([emb.encode_query(q) for q in qs])
    rng = np.random.default_rng(5)
    extra = pool.sent_vecs[rng.choice(len(pool.sent_vecs), size=min(170, len(pool.sent_vecs)), replace=False)]
    queries = np.ascontiguousarray(np.concatenate([qv, extra]), dtype=np.float32)
    lat_q = queries[: (20 if ctx.quick else 60)]
    # the query-encode time of this run (what flat search is compared with)
    enc = []
    for q in qs[:10]:
        t0 = time.perf_counter()
        emb.encode_query(q)
        enc.append(time.perf_counter() - t0)
    encode_ms = median(enc) * 1000
    d = vecs.shape[1]
    rows, points = [], []
    rounds = ctx.rounds(full=5, quick=2)
    for n in sizes:
        X = vecs[:n]
        ids = np.arange(1, n + 1, dtype=np.int64)
        flat = VectorIndex.build(ids, X, d, "flat")
        t0 = time.perf_counter()
        hnsw = VectorIndex.build(ids, X, d, "hnsw")
        build_s = time.perf_counter() - t0
        _, truth = flat.index.search(queries, 10)
        recall = {}
        for ef in (32, 64, 128, 256):
            _set_ef(hnsw, ef)
            _, got = hnsw.index.search(queries, 10)
            recall[ef] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got)]))
        _set_ef(hnsw, 128)  # what bot.vectors uses
        ctx.log(f"scale @ {size_label(n)}: HNSW built in {build_s:.1f}s, recall@10 {recall[128]:.3f}")
        # latency with FAISS's default OpenMP threads (what the bot does) and with one thread
        lat = {}
        for threads in (0, 1):
            prev = faiss.omp_get_max_threads()
            if threads:
                faiss.omp_set_num_threads(threads)
            try:
                fr, hr = [], []
                for r in range(rounds):
                    f, h = [], []
                    for i, q in enumerate(lat_q):
                        for which in (("f", "h") if (i + r) % 2 == 0 else ("h", "f")):
                            vi = flat if which == "f" else hnsw
                            t0 = time.perf_counter()
                            vi.search(q, 40)
                            (f if which == "f" else h).append(time.perf_counter() - t0)
                    fr.append(f)
                    hr.append(h)
            finally:
                faiss.omp_set_num_threads(prev)
            lat[threads] = [per_round(x, q) * 1000 for x in (fr, hr) for q in (50, 95)]
        f50, f95, h50, h95 = lat[0]
        f50_1, f95_1, h50_1, h95_1 = lat[1]
        points.append((n, f50, h50, f50_1, h50_1))
        label = size_label(n)
        rows.append(Row("scale_flat", f"scale_flat search p50 @ {label}", f50, "ms", None, "", None, "", None,
                        {"p95_ms": round(f95, 3), "p50_ms_1thread": round(f50_1, 3), "p95_ms_1thread": round(f95_1, 3),
                         "index_mb": round(n * d * 4 / 2**20, 1)}))
        rows.append(Row("scale_hnsw", f"scale_hnsw search p50 @ {label}", h50, "ms", f50, "ms (flat)", h50 / f50, "",
                        None, {"p95_ms": round(h95, 3), "p50_ms_1thread": round(h50_1, 3),
                               "p95_ms_1thread": round(h95_1, 3), "build_s": round(build_s, 2),
                               "index_mb_est": round(n * (d * 4 + 32 * 2 * 4 * 1.1) / 2**20, 1)}))
        rows.append(Row("hnsw_recall", f"hnsw_recall (recall@10, efSearch 128) @ {label}", recall[128], "", None, "", None,
                        ">= 0.98", recall[128] >= 0.98, {"recall_ef32": round(recall[32], 4),
                                                         "recall_ef64": round(recall[64], 4),
                                                         "recall_ef256": round(recall[256], 4),
                                                         "queries": len(queries), "vectors": source}))
        del flat, hnsw
    # linear fit of flat latency (ms) against size; HNSW latency grows ~log n, treat as its median.
    # The fit uses the better of default / one-thread latency at each size: on a busy machine OpenMP
    # spinning adds scheduler quanta that have nothing to do with the index type.
    ns = np.array([p[0] for p in points], dtype=np.float64)
    fl = np.array([min(p[1], p[3]) for p in points])
    slope, intercept = np.polyfit(ns, fl, 1) if len(ns) > 1 else (fl[0] / ns[0], 0.0)
    slope = max(slope, 1e-12)
    h_typ = float(np.median([min(p[2], p[4]) for p in points]))
    crossover = max((h_typ - intercept) / slope, 0.0)
    recommended = max((encode_ms - intercept) / slope, 0.0)
    nice = _nice(recommended)
    rows.append(Row("hnsw_threshold", "hnsw_threshold (recommended, chunks)", float(nice), "", float(HNSW_THRESHOLD),
                    "(current)", None, "flat search <= query encode", None,
                    {"flat_ms_per_10k": round(slope * 10_000, 4), "flat_intercept_ms": round(intercept, 4),
                     "hnsw_typical_ms": round(h_typ, 4), "crossover_flat_eq_hnsw": int(crossover),
                     "query_encode_ms_this_run": round(encode_ms, 3), "raw_recommendation": int(recommended)}))
    return rows


def _nice(n: float) -> int:
    """Round down to 1, 2 or 5 x 10^k (a threshold does not need more precision than the fit has)."""
    if n < 1000:
        return 1000
    k = 10 ** int(np.floor(np.log10(n)))
    for m in (5, 2, 1):
        if n >= m * k:
            return m * k
    return k
