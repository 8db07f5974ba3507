"""Trade-off curve for the calibrated abstention: abstention accuracy vs false abstentions.

    python -m benchmarks.abstention_sweep [--qa FILE ...]

Re-runs the evaluation with the abstention ratio (best passage cosine / the index's median
nearest-neighbour cosine, `bot.answering.abstention.ABSTAIN_RATIO`) and the lexical rescue share moved
over a grid. Run it on the tuning questions only; the held-out half is scored once, at the end. The
near-topic checks (target years, asked-for values, unknown names, not-found statements) stay on: they
don't depend on a threshold. The shipped values are marked with *.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_QA = [REPO.parent / "shared" / "eval" / "dev.jsonl", REPO / "benchmarks" / "questions" / "members.jsonl",
              REPO / "benchmarks" / "questions" / "tuning" / "corpus.jsonl"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qa", nargs="*", type=Path, default=[p for p in DEFAULT_QA if p.exists()])
    args = ap.parse_args(argv)
    from bot.answering import abstention
    from bot.config import Settings
    from bot.evaluation.scoring import evaluate, load_qa
    from bot.service import Service

    svc = Service.open(Settings.load())
    sets = {p.name: load_qa(p) for p in args.qa}
    shipped = (abstention.ABSTAIN_RATIO, abstention.LEXICAL_RESCUE)
    grid = [(r, c) for r in (0.40, 0.45, 0.50, 0.55, 0.60) for c in (0.5, 0.67, 0.8)]
    print("| abstain_ratio | lexical_rescue | " + " | ".join(f"{n}: abstention acc / false abst." for n in sets) + " |")
    print("|---|---|" + "---|" * len(sets))
    for r, c in grid:
        abstention.ABSTAIN_RATIO, abstention.LEXICAL_RESCUE = r, c
        cells = []
        for items in sets.values():
            s = evaluate(svc, items).summary()
            cells.append(f"{s['abstention_accuracy']} / {s['false_abstentions']}")
        mark = " *" if (r, c) == shipped else ""
        print(f"| {r}{mark} | {c}{mark} | " + " | ".join(cells) + " |", flush=True)
    abstention.ABSTAIN_RATIO, abstention.LEXICAL_RESCUE = shipped
    return 0


if __name__ == "__main__":
    sys.exit(main())
