"""Start to ready and peak memory, both measured in fresh child processes.

* Start to ready: process spawn -> first answer possible, with a built index. Measured two ways in the
  same run: `python -m bot ask --json "..."` (the real CLI, wall time until it exits) and
  benchmarks/probe.py, which breaks the same path down (interpreter, import bot, import torch,
  import sentence-transformers, load model, open index, first answer). The floor is "model ready"
  (interpreter + imports + model load + first encode) measured in the same child. The ONNX path
  (QUERY_MODEL=onnx-int8: onnxruntime for queries, torch only loaded if a document is embedded) is
  measured the same way.
* Memory: peak RSS (VmHWM) of a child that opens the index and answers 60 questions, against the peak
  of the same child once the model is loaded (before the index is opened).
"""
from __future__ import annotations

import time

from .common import PYTHON, REPO, Row, child_env, last_json, median, onnx_available, run_child
from .context import Context, size_label

QUESTION = "Do they need my consent to make a digital replica of me?"
QUICK_BATCH = 16


OMP_VARIANTS = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "threads1": {"OMP_NUM_THREADS": "1"},
}


def probe(ctx: Context, info: dict, kind: str, asks: int, batch: int = 0, variant: str = "default",
          fresh: bool = False) -> dict:
    """Run benchmarks/probe.py in a new process (memoised per arguments unless fresh)."""
    cache = ctx.__dict__.setdefault("_probe_cache", {})
    key = (info["index_dir"], kind, asks, batch, variant)
    if key in cache and not fresh:
        return cache[key]
    env = child_env()
    for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS"):  # the variant alone decides these
        env.pop(k, None)
    env.update(OMP_VARIANTS[variant])
    args = [PYTHON, str(REPO / "benchmarks" / "probe.py"), "", info["index_dir"], str(ctx.corpus_dir), kind,
            str(asks), str(batch)]
    args[2] = repr(time.time())  # the child subtracts this from its own first timestamp
    wall, out, _ = run_child(args, timeout=1200, env=env)
    res = last_json(out)
    res["wall_s"] = wall
    cache[key] = res
    return res


def _median_laps(results: list[dict]) -> dict:
    keys = list(results[0]["laps"]) if results else []
    return {k: round(median(r["laps"].get(k, 0.0) for r in results), 3) for k in keys}


def startup_rows(ctx: Context) -> list[Row]:
    info = ctx.index(1000) if ctx.quick else ctx.index(0)
    rounds = ctx.rounds(full=5, quick=1)
    missing = onnx_available()
    ctx.log(f"startup: {rounds} rounds of (CLI, torch probe, onnx probe) on {size_label(info['chunks'])} chunks")
    torch_runs, onnx_runs, cli = [], [], []
    env = child_env(INDEX_DIR=info["index_dir"], CORPUS_DIR=str(ctx.corpus_dir))
    asks = 8 if ctx.quick else 0  # --quick reuses these children for the memory and thread figures
    for r in range(rounds):
        for kind in ("torch",) + (() if missing else ("onnx",)):
            batch = QUICK_BATCH if ctx.quick and kind == "torch" else 0
            (torch_runs if kind == "torch" else onnx_runs).append(
                probe(ctx, info, kind, asks, batch, fresh=not ctx.quick))
        wall, out, _ = run_child([PYTHON, "-m", "bot", "ask", "--json", QUESTION], env=env, timeout=600)
        if '"citations"' not in out:
            raise RuntimeError(f"`python -m bot ask` gave no answer: {out[:300]}")
        cli.append(wall)
    t_ready = median(r["ready_s"] for r in torch_runs)
    t_model = median(r["model_ready_s"] for r in torch_runs)
    t_cli = median(cli)
    label = size_label(info["chunks"])
    rows = [
        Row("startup_cli", f"startup_cli (python -m bot ask, {label} chunks)", t_cli, "s", t_model, "", t_cli / t_model,
            "<= 5 s", t_cli <= 5, {"rounds": rounds, "floor": "model ready (interpreter+imports+load+1 encode)"}),
        Row("startup_ready", f"startup_ready (torch, {label} chunks)", t_ready, "s", t_model, "", t_ready / t_model,
            "<= 5 s", t_ready <= 5, {"laps_s": _median_laps(torch_runs)}),
    ]
    if missing:
        return rows + [Row("startup_onnx", f"startup_onnx (skipped: {missing} not installed)", float("nan"), "")]
    o_ready = median(r["ready_s"] for r in onnx_runs)
    o_model = median(r["model_ready_s"] for r in onnx_runs)
    return rows + [
        Row("startup_onnx", f"startup_onnx (QUERY_MODEL=onnx-int8, {label} chunks)", o_ready, "s", o_model, "",
            o_ready / o_model, "<= 5 s", o_ready <= 5,
            {"laps_s": _median_laps(onnx_runs), "torch_loaded": any(r["torch_loaded"] for r in onnx_runs),
             "speedup_vs_torch": round(t_ready / o_ready, 2)}),
    ]


def memory_rows(ctx: Context, sizes: list[int], onnx_size: int, target_size: int = 10_000) -> list[Row]:
    rows = []
    asks = 8 if ctx.quick else 60
    for n in sizes:
        info = ctx.index(n)
        ctx.log(f"memory @ {size_label(info['chunks'])} (torch)")
        res = probe(ctx, info, "torch", asks, QUICK_BATCH if ctx.quick else 0)
        at = info["chunks"] == target_size
        rows.append(Row("memory_peak", f"memory_peak @ {size_label(info['chunks'])} chunks", res["rss_after_asks_mb"], "MB",
                        res["rss_model_mb"], "", res["rss_after_asks_mb"] / res["rss_model_mb"],
                        "<= 700 MB @10k" if at else "", (res["rss_after_asks_mb"] <= 700) if at else None,
                        {"asks": res["asks"], "open_index_s": res["laps"].get("open_index"),
                         "floor": "VmHWM with the model loaded, before the index is opened"}))
    if onnx_available():
        return rows + [Row("memory_onnx", f"memory_onnx (skipped: {onnx_available()} not installed)", float("nan"), "")]
    info = ctx.index(onnx_size)
    ctx.log(f"memory @ {size_label(info['chunks'])} (onnx)")
    res = probe(ctx, info, "onnx", asks)
    at = info["chunks"] == target_size
    rows.append(Row("memory_onnx", f"memory_onnx @ {size_label(info['chunks'])} chunks (QUERY_MODEL=onnx-int8)",
                    res["rss_after_asks_mb"], "MB", res["rss_model_mb"], "", res["rss_after_asks_mb"] / res["rss_model_mb"],
                    "<= 700 MB @10k" if at else "", (res["rss_after_asks_mb"] <= 700) if at else None,
                    {"asks": res["asks"], "torch_loaded": res["torch_loaded"]}))
    return rows


def omp_rows(ctx: Context, size: int) -> list[Row]:
    """Ask latency and batch-embedding throughput under OpenMP settings, each in fresh children.

    libgomp (torch and faiss) spins its worker threads by default; when the 2 cores are shared with
    other work, a spinning barrier can cost a scheduler quantum per parallel region. The floor is the
    default setting measured in the same rounds (children run in rotating order)."""
    info = ctx.index(size)
    rounds = ctx.rounds(full=3, quick=1)
    asks, batch = (8, QUICK_BATCH) if ctx.quick else (30, 128)
    names = list(OMP_VARIANTS)
    ctx.log(f"omp: {rounds} rounds of {names} on {size_label(info['chunks'])} chunks")
    res: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            res[name].append(probe(ctx, info, "torch", asks, batch, name, fresh=not ctx.quick))

    def m(name, key):
        return median(x[key] for x in res[name])

    rows = []
    label = size_label(info["chunks"])
    for name, what in (("passive", "OMP_WAIT_POLICY=PASSIVE"), ("threads1", "OMP_NUM_THREADS=1")):
        a, a0 = m(name, "ask_p50_ms"), m("default", "ask_p50_ms")
        b, b0 = m(name, "batch_chunks_per_s"), m("default", "batch_chunks_per_s")
        rows.append(Row(f"omp_{name}_ask", f"omp_{name}_ask ({what}, ask p50 @ {label})", a, "ms", a0,
                        "ms (default)", a / a0, "", None,
                        {"p95_ms": m(name, "ask_p95_ms"), "default_p95_ms": m("default", "ask_p95_ms"),
                         "rounds": rounds, "asks": asks}))
        rows.append(Row(f"omp_{name}_batch", f"omp_{name}_batch ({what}, embed {batch} chunks)", b, "chunks/s", b0,
                        "chunks/s (default)", b / b0, "", None, {"rounds": rounds}))
    return rows
