"""The evaluation question sets are well formed, and every must-mention term is in its document."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETS = sorted((ROOT / "benchmarks" / "questions").rglob("*.jsonl"))
DOC_DIRS = [ROOT / "corpus", ROOT / "benchmarks" / "legal" / "docs", ROOT / "benchmarks" / "legal" / "fresh-docs",
            ROOT / "benchmarks" / "legal" / "blind4-docs", ROOT / "benchmarks" / "legal" / "blind5-docs",
            ROOT / "benchmarks" / "legal" / "blind6-docs", ROOT / "benchmarks" / "legal" / "blind7-docs",
            ROOT / "benchmarks" / "legal" / "blind8-docs",
            ROOT / "benchmarks" / "legal" / "blind9-docs",
            ROOT / "benchmarks" / "legal" / "blind10-docs",
            ROOT / "benchmarks" / "legal" / "blind11-docs",
            ROOT / "benchmarks" / "legal" / "blind12-docs",
            ROOT / "benchmarks" / "legal" / "blind13-docs",
            ROOT / "benchmarks" / "legal" / "blind14-docs",
            ROOT.parent / "shared" / "realdocs"]


def _find(name: str) -> Path | None:
    for d in DOC_DIRS:
        if (d / name).is_file():
            return d / name
    return None


def _flat(text: str) -> str:
    return " ".join(text.lower().replace("\u2019", "'").split())


@pytest.mark.parametrize("path", SETS, ids=lambda p: str(p.relative_to(ROOT)))
def test_question_set_lines_are_complete_and_terms_are_verbatim(path):
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert lines
    ids = set()
    for ln in lines:
        item = json.loads(ln)
        assert item["id"] not in ids, item["id"]
        ids.add(item["id"])
        assert item["question"].strip()
        if not item.get("answerable", True):
            assert not item.get("must_mention"), item["id"]
            continue
        assert item["must_mention"], item["id"]
        names = [item["doc"]] if item.get("doc") else [s.strip() for s in str(item.get("source", "")).split(",")]
        files = [f for f in (_find(n) for n in names if n) if f is not None]
        if not files:
            if item.get("doc") and not (ROOT.parent / "shared" / "realdocs").is_dir():
                continue  # the shared real texts are not on this machine
            pytest.fail(f"{item['id']}: no document {names}")
        text = _flat(" ".join(f.read_text(encoding="utf-8") for f in files))
        for term in item["must_mention"]:
            assert _flat(term) in text, (item["id"], term)
