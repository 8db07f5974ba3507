"""Optional cross-encoder re-ranker (RERANK_MODEL in .env; off by default).

No cross-encoder with its weights inside a package exists on the package index today, and models are
loaded offline, so this slot is for servers that have one installed or cached. A 6-layer MiniLM
cross-encoder costs about 215 ms for 20 pairs on 2 cores: re-rank a short list only.
"""
from __future__ import annotations

import logging
import os

from ..errors import ConfigError

log = logging.getLogger(__name__)


class CrossEncoderReranker:
    def __init__(self, name: str, top_n: int = 12):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import CrossEncoder

        try:
            self.model = CrossEncoder(name, device="cpu")
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(
                f"Could not load the re-ranker {name!r} offline ({exc.__class__.__name__}). Install or cache it "
                "first, or leave RERANK_MODEL empty."
            ) from None
        self.name = name
        self.top_n = top_n

    def rerank(self, question: str, cands: list) -> list:
        """Re-order the first `top_n` candidates by cross-encoder score; the rest keep their order.
        The fused score is replaced by a rank-based score so later stages see the new order."""
        head, tail = cands[: self.top_n], cands[self.top_n:]
        if len(head) < 2:
            return cands
        scores = self.model.predict([(question, c.row["text"]) for c in head])
        order = sorted(range(len(head)), key=lambda i: float(scores[i]), reverse=True)
        top = head[0].fused
        ranked = [head[i] for i in order]
        for r, c in enumerate(ranked):
            c.boosts["rerank"] = float(scores[order[r]])
            c.fused = top - r * 1e-4
        return ranked + tail


def load_reranker(name: str):
    return CrossEncoderReranker(name) if name else None
