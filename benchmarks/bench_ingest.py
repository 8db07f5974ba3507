"""Writes: ingest throughput (PDF to searchable), incremental add into a big index, unchanged rebuild.

Floors:
* ingest throughput: bare `model.encode` of exactly the texts the ingest embedded (title + section +
  chunk), timed right after each ingest;
* incremental add: the same, for the one PDF's chunks;
* rebuild with nothing changed: the first build of the same corpus, in the same run.
Each round uses a fresh index directory (and so a cold embedding cache) except where the cache is
what is measured (rebuild).
"""
from __future__ import annotations

import shutil
import time

from .common import Row, StageTimer, median
from .context import Context, size_label


def _embed_texts(store, doc_ids: list[str] | None = None) -> list[str]:
    from bot.service import embed_text

    sql = ("SELECT d.title, c.section, c.text FROM chunks c JOIN documents d ON d.doc_id = c.doc_id")
    args: list = []
    if doc_ids:
        sql += f" WHERE c.doc_id IN ({','.join('?' * len(doc_ids))})"
        args = list(doc_ids)
    with store.lock:
        rows = store.conn.execute(sql + " ORDER BY c.id", args).fetchall()
    return [embed_text(r[0], r[1], r[2]) for r in rows]


def _bare_encode(emb, texts: list[str]) -> float:
    t0 = time.perf_counter()
    emb.model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - t0


def _write_stages(emb, st: StageTimer) -> None:
    import bot.service as service_mod
    from bot.store import Store

    st.wrap(service_mod, "parse_file", "parse")
    st.wrap(service_mod, "chunk_document", "chunk")
    st.wrap(emb, "encode", "embed")
    st.wrap(Store, "put_document", "sqlite_write")
    st.wrap(service_mod, "save_after_write", "faiss_manifest_save")
    st.wrap(service_mod, "finalize_generation", "finalize")
    st.wrap(service_mod, "open_generation", "open_generation")
    st.wrap(service_mod.EmbeddingCache, "get_many", "cache_get")
    st.wrap(service_mod.EmbeddingCache, "put_many", "cache_put")


def _stage_summary(totals: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for t in totals for k in t})
    return {k: round(median(t.get(k, 0.0) for t in totals), 3) for k in keys}


def ingest_rows(ctx: Context) -> list[Row]:
    from bot.config import Settings
    from bot.service import Service

    from .synth import pdf_set

    n_pdfs, pages = (1, 2) if ctx.quick else (4, 25)
    pdfs = pdf_set(ctx.workdir, ctx.all_sources, n_pdfs, pages, seed=100)
    emb = ctx.embedder
    empty = ctx.workdir / "empty-corpus"
    empty.mkdir(exist_ok=True)
    rounds = ctx.rounds(full=3, quick=1)
    ctx.log(f"ingest: {n_pdfs} PDFs x {pages} pages, {rounds} rounds")
    rates, floors, stages, chunks = [], [], [], 0
    texts: list[str] = []
    for r in range(rounds):
        d = ctx.runs_dir(f"ingest-{r}")
        shutil.rmtree(d, ignore_errors=True)
        svc = Service.open(Settings(index_dir=d, corpus_dir=empty), embedder=emb)
        if r % 2 == 1:  # odd rounds: the floor first (texts from the previous round's ingest)
            floors.append(len(texts) / _bare_encode(emb, texts))
        st = StageTimer()
        _write_stages(emb, st)
        try:
            t0 = time.perf_counter()
            results = svc.ingest_paths(pdfs)
            t_ingest = time.perf_counter() - t0
        finally:
            st.restore()
        bad = [x for x in results if x.status != "added"]
        if bad:
            raise RuntimeError(f"ingest refused: {bad[0].reason}")
        chunks = sum(x.chunks for x in results)
        texts = _embed_texts(svc._current().store)
        svc.close()
        shutil.rmtree(d, ignore_errors=True)
        if r % 2 == 0:
            floors.append(len(texts) / _bare_encode(emb, texts))
        rates.append(chunks / t_ingest)
        stages.append(dict(st.totals, total=t_ingest))
    value, floor = median(rates), median(floors)
    return [Row("ingest_throughput", f"ingest_throughput ({n_pdfs} PDFs, {n_pdfs * pages} pages, {chunks} chunks)",
                value, "chunks/s", floor, "", value / floor, ">= 0.9x bare encode", value / floor >= 0.9,
                {"rounds": rounds, "stages_s": _stage_summary(stages), "floor": "bare model.encode of the same texts"})]


def incremental_rows(ctx: Context) -> list[Row]:
    from bot.config import Settings
    from bot.service import Service

    from .synth import copy_index, pdf_set

    base_n, pages = (1000, 2) if ctx.quick else (10_000, 50)
    info = ctx.index(base_n)
    pdf = pdf_set(ctx.workdir, ctx.all_sources, 1, pages, seed=200)[0]
    emb = ctx.embedder
    rounds = ctx.rounds(full=3, quick=1)
    ctx.log(f"incremental: one {pages}-page PDF into {size_label(info['chunks'])} chunks, {rounds} rounds")
    times, floors, stages, n_chunks = [], [], [], 0
    texts: list[str] = []
    for r in range(rounds):
        d = copy_index(info, ctx.runs_dir(f"incremental-{r}"))
        svc = Service.open(Settings(index_dir=d, corpus_dir=ctx.corpus_dir), embedder=emb, build_if_missing=False)
        if r % 2 == 1:  # odd rounds: the floor first
            floors.append(_bare_encode(emb, texts))
        st = StageTimer()
        _write_stages(emb, st)
        try:
            t0 = time.perf_counter()
            res = svc.ingest_paths([pdf])[0]
            t_add = time.perf_counter() - t0
        finally:
            st.restore()
        if res.status != "added":
            raise RuntimeError(f"incremental ingest: {res.status} {res.reason}")
        n_chunks = res.chunks
        texts = _embed_texts(svc._current().store, [res.doc_id])
        svc.close()
        shutil.rmtree(d, ignore_errors=True)
        if r % 2 == 0:
            floors.append(_bare_encode(emb, texts))
        times.append(t_add)
        stages.append(dict(st.totals, total=t_add))
    value, floor = median(times), median(floors)
    label = size_label(info["chunks"])
    return [Row("incremental_add", f"incremental_add ({pages}-page PDF, {n_chunks} chunks, into {label})", value, "s",
                floor, "", value / floor, "<= 1.2x encoding its chunks", value / floor <= 1.2,
                {"rounds": rounds, "base_chunks": info["chunks"], "stages_s": _stage_summary(stages)})]


def rebuild_rows(ctx: Context) -> list[Row]:
    from bot.config import Settings
    from bot.service import Service

    from .synth import pdf_set

    n_pdfs, pages = (1, 2) if ctx.quick else (2, 10)
    corpus = ctx.workdir / f"rebuild-corpus-{'q' if ctx.quick else 'f'}"
    if not corpus.exists():
        tmp = corpus.with_name(corpus.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(ctx.corpus_dir, tmp)
        for p in pdf_set(ctx.workdir, ctx.all_sources, n_pdfs, pages, seed=300):
            shutil.copy2(p, tmp / p.name)
        tmp.rename(corpus)
    emb = ctx.embedder
    rounds = ctx.rounds(full=3, quick=1)
    firsts, agains, stages, rep = [], [], [], None
    ctx.log(f"rebuild: corpus + {n_pdfs} PDFs, {rounds} rounds")
    for r in range(rounds):
        d = ctx.runs_dir(f"rebuild-{r}")
        shutil.rmtree(d, ignore_errors=True)
        svc = Service(Settings(index_dir=d, corpus_dir=corpus), emb)
        try:
            t0 = time.perf_counter()
            rep = svc.rebuild()
            firsts.append(time.perf_counter() - t0)
            st = StageTimer()
            _write_stages(emb, st)
            try:
                t0 = time.perf_counter()
                again = svc.rebuild()
                agains.append(time.perf_counter() - t0)
            finally:
                st.restore()
            if again.embedded:
                raise RuntimeError(f"unchanged rebuild embedded {again.embedded} chunks")
            stages.append(dict(st.totals, total=agains[-1]))
        finally:
            svc.close()
            shutil.rmtree(d, ignore_errors=True)
    value, floor = median(agains), median(firsts)
    return [Row("rebuild_unchanged", f"rebuild_unchanged ({rep.documents} docs, {rep.chunks} chunks)", value, "s",
                floor, "s (first build)", value / floor, "<= 0.1x first build (>= 10x faster)", value / floor <= 0.1,
                {"rounds": rounds, "speedup": round(floor / value, 1), "stages_s": _stage_summary(stages)})]
