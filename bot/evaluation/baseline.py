"""The naive hybrid every quality table is compared with, built over the same documents in the same run.

About forty lines of retrieval on purpose: each document's text cut into 180-word windows (150-word
stride, never across files), dense search with the same embedding model plus SQLite FTS5 bm25 over the
question's words OR-ed together, reciprocal-rank fusion, top 5, no threshold (it never abstains).
A component of the engine earns its place only by beating this on held-out questions.
"""
from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass

import numpy as np

WINDOW = 180
STRIDE = 150
TOP = 5
RRF_K = 60


@dataclass
class BaselinePassage:
    doc_id: str
    text: str
    title: str = ""
    section: str = ""


@dataclass
class BaselineAnswer:
    question: str
    citations: list[BaselinePassage]
    text: str = ""
    abstained: bool = False
    partial: bool = False
    latency_ms: float = 0.0


def windows(text: str, window: int = WINDOW, stride: int = STRIDE) -> list[str]:
    words = text.split()
    if not words:
        return []
    out = []
    for start in range(0, len(words), stride):
        out.append(" ".join(words[start:start + window]))
        if start + window >= len(words):
            break
    return out


class NaiveHybrid:
    def __init__(self, embedder, documents: list[tuple[str, str]]):
        """documents: (doc_id, full text) pairs."""
        self.embedder = embedder
        self.passages = [BaselinePassage(d, w) for d, text in documents for w in windows(text)]
        self.vectors = embedder.encode([p.text for p in self.passages], batch_size=64) if self.passages else \
            np.zeros((0, embedder.dimension), dtype=np.float32)
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute("CREATE VIRTUAL TABLE p USING fts5(text, tokenize='porter unicode61')")
        self.db.executemany("INSERT INTO p(rowid, text) VALUES (?, ?)",
                            [(i, p.text) for i, p in enumerate(self.passages)])

    def search(self, question: str, k: int = TOP) -> list[BaselinePassage]:
        q = self.embedder.encode_query(question)
        dense = list(np.argsort(-(self.vectors @ q))[:40]) if len(self.passages) else []
        words = [w for w in re.findall(r"[A-Za-z0-9]+", question.lower())]
        kw: list[int] = []
        if words:
            match = " OR ".join(f'"{w}"' for w in dict.fromkeys(words))
            kw = [r[0] for r in self.db.execute(
                "SELECT rowid FROM p WHERE p MATCH ? ORDER BY bm25(p) LIMIT 40", (match,))]
        fused: dict[int, float] = {}
        for ranked in (dense, kw):
            for rank, i in enumerate(ranked):
                fused[int(i)] = fused.get(int(i), 0.0) + 1.0 / (RRF_K + rank)
        best = sorted(fused, key=fused.get, reverse=True)[:k]
        return [self.passages[i] for i in best]

    def ask(self, question: str, history=(), **_) -> BaselineAnswer:
        t0 = time.perf_counter()
        full = " ".join([*history, question]) if history else question
        cites = self.search(full)
        return BaselineAnswer(question, cites, text=" ".join(c.text for c in cites[:1]),
                              latency_ms=(time.perf_counter() - t0) * 1000)
