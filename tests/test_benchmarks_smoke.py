"""The benchmarks' --quick mode runs end to end and prints every figure. No timing assertions: this
machine's timings say nothing in CI; the point is that `python -m benchmarks.run` keeps working."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_run_prints_every_figure(tmp_path):
    sys.path.insert(0, str(REPO))
    from benchmarks.run import FAMILIES

    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--workdir", str(tmp_path / "work"), "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=880,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    table = proc.stdout
    assert table.startswith("| figure") and "| value" in table and "| floor" in table
    printed = {line.split("|")[1].strip().split(" ")[0] for line in table.splitlines() if line.startswith("| ")}
    expected = {fam for fams in FAMILIES.values() for fam in fams}
    missing = expected - printed
    assert not missing, f"figures not printed: {sorted(missing)}\n{table}"
    assert "FAILED" not in table, table
    data = json.loads(out.read_text())
    assert {r["family"] for r in data["rows"]} >= expected
    assert data["machine"]["nproc"]
    onnx_present = all(r["value"] is not None for r in data["rows"] if r["family"].startswith("onnx_"))
    if onnx_present:  # the ONNX query path, when installed, answers without importing torch
        startup = next(r for r in data["rows"] if r["family"] == "startup_onnx")
        assert startup["detail"]["torch_loaded"] is False
