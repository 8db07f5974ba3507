"""Golden questions over the shipped corpus with the real packaged model (slow).

The questions are the shared dev set (`../shared/eval/dev.jsonl`, or $SHARED_DIR/eval/dev.jsonl). For each
answerable question the document family its `source` names must be cited; the unanswerable ones must
abstain; every quote must be verbatim. And a quality floor on hit@5 (bot.evaluate), so a retrieval or
answering regression fails CI.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from bot.evaluation.scoring import evaluate
from bot.ingest.parse import Limits, parse_file

pytestmark = pytest.mark.slow


def _dev_path() -> Path:
    shared = os.environ.get("SHARED_DIR")
    base = Path(shared) if shared else Path(__file__).resolve().parents[1].parent / "shared"
    return base / "eval" / "dev.jsonl"


DEV = _dev_path()
ITEMS: list[dict] = []
if DEV.is_file():
    ITEMS = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]

# Expected document families per question, derived from each question's `source` field: every tuple is one
# family (any of its doc_id prefixes satisfies it) and every family must be cited. "A + B" sources need both.
# Doc ids are slugs of the corpus titles, e.g. "WGA 2023 MBA ..." -> "wga-2023-minimum-basic-agreement-...".
WGA_2023 = ("wga-2023-",)
SAG_TV_2023 = ("sag-aftra-2023-tv-theatrical",)
SAG_TV_2026 = ("sag-aftra-2026-tv-theatrical",)
SAG_IMA_2025 = ("sag-aftra-video-game-strike-2024-2025",)
SAG_COMMERCIALS_2025 = ("sag-aftra-2025-commercials",)
LEADERS = "union-leaders-and-negotiators"
EXPECTED: dict[str, list[tuple[str, ...]]] = {
    "q025": [SAG_TV_2023],  # SAG-AFTRA 2023 TV/Theatrical Contracts; Digital Replicas 101; TheWrap
    "q086": [SAG_TV_2023, SAG_TV_2026],  # 2023 TV/Theatrical + 2026 TV/Theatrical coverage
    "q072": [("federal-no-fakes-act",)],  # NO FAKES Act of 2026, S. 4591
    "q052": [("sag-aftra-and-narrativ",)],  # SAG-AFTRA–Narrativ agreement
    "q028": [SAG_TV_2023],  # SAG-AFTRA (2023) strike coverage
    "q088": [SAG_TV_2026 + (LEADERS,), ("dga-2026-", LEADERS)],  # 2026 SAG-AFTRA and DGA coverage
    "q013": [WGA_2023],  # WGA 2023 MBA, Article 72
    "q078": [("uk-equity-and-pact",)],  # Equity–Pact negotiations
    "q029": [SAG_TV_2023],  # SAG-AFTRA 2023 ratification
    "q066": [("california-ab-1836",)],  # California AB 1836
    "q003": [WGA_2023],  # WGA 2023 MBA, Article 72
    "q040": [("sag-aftra-2024-sound-recordings",)],  # 2024 Sound Recordings Code
    "q011": [WGA_2023],  # WGA 2023 negotiations coverage
    "q032": [("sag-aftra-and-netflix",), SAG_TV_2023],  # SAG-AFTRA–Netflix 2022 + 2023 TV/Theatrical
    "q082": [("dga-2023-",), WGA_2023],  # DGA 2023 + WGA 2023 coverage
    "q054": [("dga-2023-",)],  # DGA 2023 Basic Agreement/FLTTA
    "q047": [SAG_IMA_2025],  # 2025 Interactive Media Agreement
    "q043": [SAG_IMA_2025],  # 2025 Interactive Media Agreement
    "q016": [SAG_TV_2023],  # 2023 TV/Theatrical Contracts
    "q030": [SAG_TV_2023, SAG_COMMERCIALS_2025],  # 2023 TV/Theatrical + 2025 Commercials page
    "q083": [SAG_TV_2023, SAG_COMMERCIALS_2025],  # 2023 TV/Theatrical + 2025 Commercials
    "q017": [SAG_TV_2023],  # 2023 TV/Theatrical Contracts
    "q073": [("federal-no-fakes-act",), ("california-ab-2602", "california-ab-1836")],  # NO FAKES + CA laws
    "q068": [("new-york-digital-replica",)],  # New York GBL §396-b amendment
    "q085": [SAG_IMA_2025, SAG_TV_2026],  # 2025 IMA + 2026 TV/Theatrical
    "q036": [("sag-aftra-2023-tv-animation",)],  # 2023 TV Animation Agreements
    "q004": [WGA_2023],  # WGA 2023 MBA, Article 72
    "q020": [SAG_TV_2023],  # 2023 TV/Theatrical Contracts
    "q063": [("the-animation-guild-2024",)],  # Animation Guild 2024 Master Agreement
    "q087": [SAG_TV_2023, ("california-ab-1836",)],  # 2023 TV/Theatrical + California AB 1836
    "q031": [SAG_TV_2023 + (LEADERS,)],  # SAG-AFTRA 2023 coverage
    "q022": [SAG_TV_2023],  # 2023 TV/Theatrical Contracts
    "q005": [WGA_2023],  # WGA 2023 MBA, Article 72
}

# Known failures today (the answer composer is still being tuned). strict=False: they may start passing.
KNOWN_FAILURES = {
    "q030": "cites the 2023 TV/Theatrical rule but no longer the 2025 Commercials page: passages are embedded "
            "without their document title, which held better on new questions (benchmarks/README.md)",
    "q087": "names no state; California AB 1836 was reached only through a synonym that pointed 'dead' at that "
            "law (removed: no word list may point at a specific law); the SAG-AFTRA rule is cited",
    "q086": "cites only the 2026 TV/Theatrical document (which restates the 2023 rule), not the 2023 one",
    "q032": "cites the Netflix document (and a Netflix news item) but not the 2023 TV/Theatrical Contracts",
}

HIT5_FLOOR = 0.90


def _marks(item):
    reason = KNOWN_FAILURES.get(item["id"])
    return [pytest.mark.xfail(strict=False, reason=reason)] if reason else []


ANSWERABLE = [pytest.param(it, id=it["id"], marks=_marks(it)) for it in ITEMS if it.get("answerable", True)]
UNANSWERABLE = [pytest.param(it, id=it["id"], marks=_marks(it)) for it in ITEMS if not it.get("answerable", True)]

needs_dev = pytest.mark.skipif(not ITEMS, reason=f"golden questions not found at {DEV} (set SHARED_DIR)")


class CachedAsk:
    """Answer each (question, history, mode) once per session; `evaluate` and the per-question tests share it."""

    def __init__(self, svc):
        self.svc = svc
        self.cache: dict = {}

    def ask(self, question, *, history=(), mode="hybrid", union=None):
        key = (question, tuple(history or ()), mode, union)
        if key not in self.cache:
            self.cache[key] = self.svc.ask(question, history=history, mode=mode, union=union)
        return self.cache[key]


@pytest.fixture(scope="session")
def asker(corpus_service):
    return CachedAsk(corpus_service)


@pytest.fixture(scope="session")
def doc_texts(corpus_service) -> dict[str, str]:
    """doc_id -> full text of the document as parsed (what every quote must come from)."""
    out = {}
    for d in corpus_service.documents():
        out[d.doc_id] = parse_file(Path(d.source_path), Limits()).text
    return out


def _check_verbatim(ans, doc_texts):
    numbers = [c.n for c in ans.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    assert {int(n) for n in re.findall(r"\[(\d+)\]", ans.text)} == set(numbers), ans.text
    for c in ans.citations:
        assert c.quote and c.quote in c.text, (c.doc_id, c.quote)
        assert c.text in doc_texts[c.doc_id], c.doc_id
        assert c.quote in doc_texts[c.doc_id], c.doc_id


@needs_dev
def test_every_golden_question_has_an_expected_family():
    missing = [it["id"] for it in ITEMS if it.get("answerable", True) and it["id"] not in EXPECTED]
    assert not missing, f"add the expected document family for {missing} to EXPECTED"
    assert sum(1 for it in ITEMS if not it.get("answerable", True)) == 3


@needs_dev
def test_expected_families_exist_in_the_corpus(corpus_service):
    ids = {d.doc_id for d in corpus_service.documents()}
    for qid, families in EXPECTED.items():
        for family in families:
            assert any(i.startswith(p) for p in family for i in ids), (qid, family, sorted(ids))


@needs_dev
@pytest.mark.parametrize("item", ANSWERABLE)
def test_answerable_question_cites_expected_family(asker, doc_texts, item):
    ans = asker.ask(item["question"])
    _check_verbatim(ans, doc_texts)
    assert not ans.abstained, ans.text
    cited = [c.doc_id for c in ans.citations]
    for family in EXPECTED[item["id"]]:
        assert any(d.startswith(p) for p in family for d in cited), (
            f"{item['id']}: expected a citation from {family}; cited {cited}")


@needs_dev
@pytest.mark.parametrize("item", UNANSWERABLE)
def test_unanswerable_question_abstains(asker, doc_texts, item):
    ans = asker.ask(item["question"])
    _check_verbatim(ans, doc_texts)
    assert ans.abstained or ans.partial, ans.text  # no answer, or "my documents don't cover ..." first


@needs_dev
def test_dev_set_quality_floor(asker):
    res = evaluate(asker, ITEMS)
    s = res.summary()
    assert s["hit@5"] >= HIT5_FLOOR, (s, res.failures)
