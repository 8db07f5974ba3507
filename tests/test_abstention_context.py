"""The calibrated abstention decision and passages stitched from neighbouring chunks."""
from __future__ import annotations

import json

import numpy as np

from bot.answering.abstention import Calibration, calibrate, calibrate_index, decide
from bot.retrieval.context import stitch


def _unit(rows):
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_calibration_is_the_median_nearest_neighbour_cosine():
    vecs = _unit([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.95, 0.05], [0, 0, 1]])
    cal = calibrate(vecs, sample=5)
    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -1)
    assert cal.neighbour_cosine == float(np.median(sims.max(axis=1)))
    assert cal.passages == 5
    assert calibrate(vecs[:2]).neighbour_cosine == 0.85  # too few passages: the default scale


def test_index_calibration_matches_the_exact_one_without_reading_every_vector():
    from bot.vectors import VectorIndex

    rng = np.random.default_rng(3)
    vecs = _unit(rng.normal(size=(40, 8)))
    ids = np.arange(100, 140)
    vi = VectorIndex.build(ids, vecs, 8, kind="flat")
    assert abs(calibrate_index(vi).neighbour_cosine - calibrate(vecs).neighbour_cosine) < 1e-6
    assert calibrate_index(VectorIndex.build(ids[:1], vecs[:1], 8, kind="flat")).neighbour_cosine == 0.85


def test_decide_abstains_far_below_the_index_background_unless_the_words_match():
    cal = Calibration(0.8, 100)  # abstain below 0.4
    assert decide(0.3, 0.2, cal) == "abstain"
    assert decide(0.3, 0.9, cal) == "answer"  # the question's words are in the passage
    assert decide(0.6, 0.2, cal) == "answer"
    # a name the index has never seen: answered only from a close passage that shares a word
    assert decide(0.45, 0.5, cal, unknown_names=1) == "abstain"
    assert decide(0.7, 0.5, cal, unknown_names=1) == "answer"
    assert decide(0.7, 0.0, cal, unknown_names=1) == "abstain"
    # no word of the question anywhere in the index
    assert decide(0.45, 0.0, cal, shares_words=False) == "abstain"
    assert decide(0.7, 0.0, cal, shares_words=False) == "answer"


def _row(doc_text, start, end, page_map, cid=1, ordinal=0, section="Sec. 1"):
    return {"id": cid, "doc_id": "d", "ordinal": ordinal, "text": doc_text[start:end], "section": section,
            "char_start": start, "char_end": end, "page_start": page_map[0][1], "page_end": page_map[-1][1],
            "page_map": json.dumps(page_map)}


def test_stitched_passage_is_verbatim_and_keeps_pages_and_the_matched_chunk():
    doc = "First sentence here. Second sentence on page one.\n\nThird sentence on page two. Fourth one."
    a_end = doc.index(" Second") + len(" Second sentence on page one.")
    b_start = doc.index("Second")  # overlaps a by one sentence
    c_start = doc.index("Third")  # a paragraph break ("\n\n") before it
    a = _row(doc, 0, a_end, [[0, 1]], cid=1, ordinal=0)
    b = _row(doc, b_start, b_start + len("Second sentence on page one."), [[0, 1]], cid=2, ordinal=1)
    c = _row(doc, c_start, len(doc), [[0, 2]], cid=3, ordinal=2, section="Sec. 1 > (b)")
    merged = stitch([c, a, b])
    assert merged["text"] == doc
    assert merged["id"] == 3 and merged["section"] == "Sec. 1 > (b)"  # the matched chunk's id and section
    assert (merged["page_start"], merged["page_end"]) == (1, 2)
    pages = json.loads(merged["page_map"])
    assert pages[0] == [0, 1] and pages[-1] == [c_start, 2]
    # sentences of a paragraph that meet without overlap are one space apart
    d = _row(doc, b_start, b_start + len("Second sentence on page one."), [[0, 1]], cid=4)
    e = _row(doc, 0, len("First sentence here."), [[0, 1]], cid=5)
    assert stitch([e, d])["text"] == doc[:b_start + len("Second sentence on page one.")]


SMALL_SECTIONS = """# Harbor Players Agreement 2024

## Ratification of the Harbor agreement

Harbor members ratified the agreement with 76.1% voting yes.

## Term of the Harbor agreement

The Harbor agreement runs from August 1, 2024 to July 31, 2027.

## What could not be confirmed

The turnout of the Harbor vote was not found in any source.
"""


def _section_text(doc: str, heading: str) -> str:
    return doc.split("## " + heading, 1)[1].split("\n## ", 1)[0]


def test_a_short_section_brings_its_neighbours_as_context_but_only_its_own_text_is_quoted(hash_service):
    import re

    r = hash_service.ingest_bytes(SMALL_SECTIONS.encode(), "harbor.md")
    assert r.status == "added", r.reason
    ans = hash_service.ask("what percent of harbor members ratified the agreement, and when does it run out")
    first = ans.citations[0]
    assert "76.1%" in first.text and "July 31, 2027" in first.text  # the next section came along
    by_n = {c.n: c for c in ans.citations}
    quotes = re.findall(r"\u201c(.+?)\u201d \[(\d+)\]", ans.text)
    assert quotes
    for sentence, n in quotes:
        # every quoted sentence is from the section its citation names, never from the added context
        assert sentence in _section_text(SMALL_SECTIONS, by_n[int(n)].section), (sentence, by_n[int(n)].section)


def test_sentences_outside_the_matched_section_are_never_candidates_for_the_answer():
    from bot.answering.compose import _score_sentences
    from bot.retrieval.analysis import analyse
    from bot.retrieval.candidates import Candidate

    text = ("Harbor members ratified the agreement with 76.1% voting yes.\n\n"
            "The turnout of the Harbor ratification vote was not found in any source.")
    core_end = text.index("\n\n")
    row = {"id": 1, "doc_id": "d", "ordinal": 0, "text": text, "section": "Ratification", "title": "Harbor",
           "union_name": "", "agreement": "", "core_span": (0, core_end)}
    q = analyse("turnout of the harbor ratification vote")
    sents = _score_sentences(q, [Candidate(1, row, dense=0.5, fused=0.03)], {})
    assert [s.text for s in sents] == [text[:core_end]]
    del row["core_span"]
    assert len(_score_sentences(q, [Candidate(1, row, dense=0.5, fused=0.03)], {})) == 2


def test_a_passage_printed_in_capitals_is_quotable():
    # New law is often printed in capitals (Colorado prints whole new parts that way); a sentence with no
    # lower-case letter is still the rule, not a heading to skip.
    from bot.answering.compose import _score_sentences
    from bot.retrieval.analysis import analyse
    from bot.retrieval.candidates import Candidate

    text = ("(3) CONSENT TO THE CREATION OF A DEPICTION DOES NOT, BY ITSELF, CONSTITUTE CONSENT TO ITS "
            "DISCLOSURE.\n\n(4) A PLAINTIFF MAY PROCEED USING A PSEUDONYM.")
    row = {"id": 1, "doc_id": "d", "ordinal": 0, "text": text, "section": "PART 15 > (3)", "title": "A bill",
           "union_name": "", "agreement": ""}
    sents = _score_sentences(analyse("if i agreed to it being made can they share it"),
                             [Candidate(1, row, dense=0.5, fused=0.03)], {})
    assert [s.text for s in sents][0].startswith("(3) CONSENT TO THE CREATION")
    assert len(sents) == 2
