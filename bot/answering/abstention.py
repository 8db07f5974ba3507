"""Answer, partial answer, or abstain: decided from how the best passage scores against this index's
own background, never from word lists.

Calibration (per index generation, computed once from its stored vectors): the median cosine between a
passage and its nearest other passage. That is what "closely related text" scores with this model on
these documents; a question whose best passage reaches only a small fraction of it is about something
the index does not hold. The fraction is one number for every index and model, read off the tuning
questions (off-topic ones fall below it, answerable ones rarely do: benchmarks/README.md); on the
held-out questions it catches off-topic questions but not near-topic ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Best passage cosine / the index's nearest-neighbour median cosine, below which nothing is on topic.
ABSTAIN_RATIO = 0.50
# ... and the share of the question's (IDF-weighted) words the best passages must hold to answer anyway.
LEXICAL_RESCUE = 0.67
# A question that names something this index has never seen, or none of whose words the index uses at
# all, is answered only from a passage at least this close (as a share of the neighbour cosine).
NAMED_RATIO = 0.6
SAMPLE = 512


@dataclass(frozen=True)
class Calibration:
    neighbour_cosine: float  # median over sampled passages of the cosine to their nearest other passage
    passages: int

    @property
    def abstain_below(self) -> float:
        return ABSTAIN_RATIO * self.neighbour_cosine


DEFAULT = Calibration(0.85, 0)  # an empty or one-passage index has no neighbours to measure


def from_neighbours(cosines: np.ndarray, passages: int) -> Calibration:
    """The calibration from sampled nearest-other-passage cosines."""
    if passages < 3 or len(cosines) == 0:
        return Calibration(DEFAULT.neighbour_cosine, passages)
    return Calibration(float(np.median(cosines)), passages)


def sample_ids(ids: np.ndarray, sample: int = SAMPLE, seed: int = 0) -> np.ndarray:
    """A fixed sample of passage ids (the same index gives the same calibration)."""
    ids = np.sort(np.asarray(ids))
    if len(ids) <= sample:
        return ids
    return np.random.default_rng(seed).choice(ids, sample, replace=False)


def calibrate_index(vectors) -> Calibration:
    """The calibration of a VectorIndex: one batched nearest-neighbour search over a sample of its
    passages, without reading every stored vector."""
    return from_neighbours(vectors.nearest_other(sample_ids(vectors.ids())), vectors.ntotal)


def calibrate(vectors: np.ndarray, sample: int = SAMPLE, seed: int = 0) -> Calibration:
    """The same calibration from a matrix of normalised vectors (exact)."""
    n = len(vectors)
    if n < 3:
        return from_neighbours(np.zeros(0), n)
    pick = sample_ids(np.arange(n), sample, seed)
    sims = vectors[pick] @ vectors.T
    sims[np.arange(len(pick)), pick] = -1.0
    return from_neighbours(sims.max(axis=1), n)


def decide(best_dense: float, coverage: float, calibration: Calibration, unknown_names: int = 0,
           shares_words: bool = True) -> str:
    """'abstain' or 'answer' (partial answers are decided by what the question asks for: see bot.answering.compose).

    Abstain when the best passage is far below what related text scores in this index and the question's
    words are mostly absent from it; when the question names something this index has never seen and
    either shares no word with the best passages or they are not a close match; and when none of the
    question's words occurs anywhere in the index and the best passage is not a close match."""
    if best_dense < calibration.abstain_below and coverage < LEXICAL_RESCUE:
        return "abstain"
    close = best_dense >= NAMED_RATIO * calibration.neighbour_cosine
    if unknown_names and (coverage == 0 or not close):
        return "abstain"
    if not shares_words and not close:
        return "abstain"
    return "answer"
