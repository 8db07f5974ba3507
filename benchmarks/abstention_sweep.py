"""Trade-off curve for the abstention thresholds: abstention accuracy vs false abstentions.

    python -m benchmarks.abstention_sweep [--qa FILE ...]

Re-runs the evaluation with the dense-score threshold below which weak keyword support makes the bot
abstain (answer.SUPPORT_DENSE) and the coverage floor (answer.MIN_COVERAGE) moved over a grid. The
near-topic checks (unknown terms, target years, asked-for values, not-found statements) stay on: they
don't depend on a threshold. The shipped values are marked with *.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_QA = [REPO.parent / "shared" / "eval" / "dev.jsonl", REPO / "benchmarks" / "questions" / "members.jsonl"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qa", nargs="*", type=Path, default=[p for p in DEFAULT_QA if p.exists()])
    args = ap.parse_args(argv)
    from bot import answer
    from bot.config import Settings
    from bot.evaluation.scoring import evaluate, load_qa
    from bot.service import Service

    svc = Service.open(Settings.load())
    sets = {p.name: load_qa(p) for p in args.qa}
    shipped = (answer.SUPPORT_DENSE, answer.MIN_COVERAGE)
    grid = [(d, c) for d in (0.40, 0.45, 0.50, 0.55, 0.60) for c in (0.2, 0.34, 0.5)]
    print("| support_dense | min_coverage | " + " | ".join(f"{n}: abstention acc / false abst." for n in sets) + " |")
    print("|---|---|" + "---|" * len(sets))
    for d, c in grid:
        answer.SUPPORT_DENSE, answer.MIN_COVERAGE = d, c
        cells = []
        for items in sets.values():
            s = evaluate(svc, items).summary()
            cells.append(f"{s['abstention_accuracy']} / {s['false_abstentions']}")
        mark = " *" if (d, c) == shipped else ""
        print(f"| {d}{mark} | {c}{mark} | " + " | ".join(cells) + " |", flush=True)
    answer.SUPPORT_DENSE, answer.MIN_COVERAGE = shipped
    return 0


if __name__ == "__main__":
    sys.exit(main())
