"""Run the performance benchmarks and print one table: figure | value | floor | ratio | target | met.

    python -m benchmarks.run                 # full run (~30-60 min on 2 quiet cores; indexes are cached)
    python -m benchmarks.run --quick         # tiny sizes, for CI (< 60 s on a quiet machine)
    python -m benchmarks.run --json          # machine-readable results on stdout
    python -m benchmarks.run --only ask,scale

Every figure is a median over repeated runs with its floor measured in the same run (see README.md).
Progress goes to stderr; the table (or JSON) to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks.common import Row, machine_info, setup_env, table  # noqa: E402

# group -> figure families it prints (the smoke test checks that --quick prints every one)
FAMILIES: dict[str, list[str]] = {
    "ask": ["ask_p50", "ask_p95"],
    "ingest": ["ingest_throughput"],
    "incremental": ["incremental_add"],
    "rebuild": ["rebuild_unchanged"],
    "startup": ["startup_cli", "startup_ready", "startup_onnx"],
    "memory": ["memory_peak", "memory_onnx"],
    "omp": ["omp_passive_ask", "omp_passive_batch", "omp_threads1_ask", "omp_threads1_batch"],
    "onnx": ["onnx_query_latency", "onnx_batch_throughput", "onnx_cosine_min", "onnx_top5_overlap"],
    "scale": ["scale_flat", "scale_hnsw", "hnsw_recall", "hnsw_threshold"],
}
ORDER = ["onnx", "ask", "startup", "memory", "omp", "ingest", "incremental", "rebuild", "scale"]
DEFAULT_WORKDIR = Path(os.environ.get("BENCH_WORKDIR") or Path(tempfile.gettempdir()) / "union-ai-bot-bench")


def _sizes(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if part:
            out.append(int(float(part[:-1]) * 1000) if part.endswith("k") else int(part))
    return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes and few rounds (CI smoke test)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--only", default="", help=f"comma-separated groups: {', '.join(ORDER)}")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                   help=f"where indexes, PDFs and caches are kept between runs (default {DEFAULT_WORKDIR})")
    p.add_argument("--fresh", action="store_true", help="delete the work dir first (rebuild every index)")
    p.add_argument("--repeats", type=int, default=None, help="rounds per figure (default: per benchmark)")
    p.add_argument("--ask-sizes", default="", help="index sizes for ask latency (default 1k,10k,100k)")
    p.add_argument("--memory-sizes", default="", help="index sizes for peak memory (default 10k,100k)")
    p.add_argument("--scale-max", type=_sizes, default=None,
                   help="add this size to the flat-vs-HNSW sweep (e.g. 300k); default sweep 10k,30k,100k")
    p.add_argument("--real-vectors", action="store_true",
                   help="embed synthetic chunks with the model instead of approximating (slow: ~20 min / 100k)")
    p.add_argument("--out", type=Path, help="also write the JSON results to this file")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    setup_env()
    groups = [g.strip() for g in args.only.split(",") if g.strip()] or list(ORDER)
    unknown = [g for g in groups if g not in FAMILIES]
    if unknown:
        print(f"unknown group(s): {', '.join(unknown)}; choose from {', '.join(ORDER)}", file=sys.stderr)
        return 2
    if args.fresh and args.workdir.exists():
        import shutil

        shutil.rmtree(args.workdir)
    from .context import Context

    ctx = Context(args.workdir, quick=args.quick, repeats=args.repeats, real_vectors=args.real_vectors,
                  scale_max=(args.scale_max[0] if args.scale_max else None))
    ask_sizes = _sizes(args.ask_sizes) or ([1000] if args.quick else [1000, 10_000, 100_000])
    mem_sizes = _sizes(args.memory_sizes) or ([1000] if args.quick else [10_000, 100_000])
    info = machine_info()
    t_start = time.perf_counter()
    rows: list[Row] = []
    failed: list[str] = []
    for group in [g for g in ORDER if g in groups]:
        t0 = time.perf_counter()
        try:
            rows.extend(_run_group(ctx, group, ask_sizes, mem_sizes))
        except Exception as exc:  # noqa: BLE001 - report and go on with the other groups
            failed.append(group)
            traceback.print_exc()
            for fam in FAMILIES[group]:
                rows.append(Row(fam, f"{fam} FAILED: {exc.__class__.__name__}: {str(exc)[:120]}", float("nan"), ""))
        ctx.log(f"{group} done in {time.perf_counter() - t0:.1f}s")
    elapsed = time.perf_counter() - t_start
    info["loadavg_end"] = Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else ""
    result = {
        "command": " ".join(["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick, "elapsed_s": round(elapsed, 1), "machine": info,
        "rows": [r.to_json() for r in rows], "failed": failed,
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(table(rows))
        print()
        print(details(rows))
        print(f"\n{len(rows)} figures in {elapsed:.0f}s; load average {info['loadavg_start']} -> {info['loadavg_end']}")
    return 1 if failed else 0


def _run_group(ctx, group: str, ask_sizes: list[int], mem_sizes: list[int]) -> list[Row]:
    if group == "ask":
        from .bench_ask import ask_rows

        return ask_rows(ctx, ask_sizes)
    if group == "ingest":
        from .bench_ingest import ingest_rows

        return ingest_rows(ctx)
    if group == "incremental":
        from .bench_ingest import incremental_rows

        return incremental_rows(ctx)
    if group == "rebuild":
        from .bench_ingest import rebuild_rows

        return rebuild_rows(ctx)
    if group == "startup":
        from .bench_startup import startup_rows

        return startup_rows(ctx)
    if group == "memory":
        from .bench_startup import memory_rows

        return memory_rows(ctx, mem_sizes, onnx_size=mem_sizes[0])
    if group == "omp":
        from .bench_startup import omp_rows

        return omp_rows(ctx, 1000 if ctx.quick else 10_000)
    if group == "onnx":
        from .bench_onnx import onnx_rows

        return onnx_rows(ctx)
    if group == "scale":
        from .bench_scale import scale_rows

        return scale_rows(ctx)
    raise ValueError(group)


def details(rows: list[Row]) -> str:
    """One line per figure with its breakdown (stages, laps, recall at other efSearch, ...)."""
    out = []
    for r in rows:
        if r.detail:
            out.append(f"- {r.label}: " + json.dumps(r.detail, separators=(", ", ": ")))
    return "details:\n" + "\n".join(out) if out else ""


if __name__ == "__main__":
    sys.exit(main())
