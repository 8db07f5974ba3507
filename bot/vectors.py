"""FAISS vector index whose ids are SQLite chunk ids. Vectors are normalised: inner product = cosine.

The index type is chosen by size: exact flat search while it is fast enough, HNSW beyond.
"""
from __future__ import annotations

import json
import os
import threading
import uuid
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from .threads import one_thread

HNSW_THRESHOLD = 100_000  # chunks; below this exact search is fast enough on 2 cores (see benchmarks/)


def _faiss():
    import faiss

    return faiss


class VectorIndex:
    def __init__(self, dimension: int, kind: str = "flat"):
        faiss = _faiss()
        self.dimension = dimension
        self.kind = kind
        if kind == "hnsw":
            base = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = 200
            base.hnsw.efSearch = 256
        else:
            base = faiss.IndexFlatIP(dimension)
        self.index = faiss.IndexIDMap2(base)
        self.lock = threading.RLock()

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, dimension: int, kind: str = "auto") -> "VectorIndex":
        if kind == "auto":
            kind = "hnsw" if len(ids) >= HNSW_THRESHOLD else "flat"
        vi = cls(dimension, kind)
        if len(ids):
            vi.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
        return vi

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids, vectors) -> None:
        if len(ids) == 0:
            return
        with self.lock:
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids) -> bool:
        """Remove ids. Returns False if this index type cannot remove (caller rebuilds from the store)."""
        if len(ids) == 0:
            return True
        if self.kind != "flat":
            return False
        faiss = _faiss()
        with self.lock:
            self.index.remove_ids(faiss.IDSelectorArray(np.asarray(ids, dtype=np.int64)))
        return True

    def vectors(self, ids) -> dict[int, np.ndarray]:
        """The stored vectors of these ids (ids the index can't reconstruct are left out)."""
        out = {}
        with self.lock:
            for cid in ids:
                try:
                    out[int(cid)] = self.index.reconstruct(int(cid))
                except RuntimeError:  # not in the index
                    pass
        return out

    def ids(self) -> np.ndarray:
        """The ids held by the index."""
        faiss = _faiss()
        with self.lock:
            return faiss.vector_to_array(self.index.id_map).copy()

    def nearest_other(self, ids) -> np.ndarray:
        """For each of these stored ids, the cosine of its nearest other vector (one batched search)."""
        vecs = self.vectors(ids)
        keys = [int(i) for i in ids if int(i) in vecs]
        if not keys or self.ntotal < 2:
            return np.zeros(0, dtype=np.float32)
        q = np.ascontiguousarray(np.stack([vecs[i] for i in keys]), dtype=np.float32)
        with self.lock:
            scores, found = self.index.search(q, 2)
        out = [next((float(s) for s, f in zip(srow, frow) if f != key and f != -1), float("nan"))
               for key, srow, frow in zip(keys, scores, found)]
        return np.asarray([x for x in out if x == x], dtype=np.float32)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        if self.ntotal == 0:
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        faiss = _faiss()
        # One question, one thread: FAISS splits a single query's exact scan badly (2 threads 2.0 ms, 1
        # thread 0.5 ms at 10k; 20 against 8.5 ms at 100k).
        flat = self.kind == "flat"
        with one_thread(faiss.omp_get_max_threads, faiss.omp_set_num_threads) if flat else nullcontext(), self.lock:
            scores, ids = self.index.search(q, min(k, self.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def save(self, path: Path, version: int) -> None:
        """Write atomically: temp file + rename, then the sidecar naming the store version it matches."""
        faiss = _faiss()
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")  # unique: two processes may repair at once
        with self.lock:
            faiss.write_index(self.index, str(tmp))
        fsync_path(tmp)
        os.replace(tmp, path)
        side = path.with_suffix(".json")
        tmp_side = side.with_name(f".{side.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp_side.write_text(json.dumps({"version": version, "count": self.ntotal, "kind": self.kind}))
        fsync_path(tmp_side)
        os.replace(tmp_side, side)

    @classmethod
    def load(cls, path: Path, dimension: int) -> tuple["VectorIndex", int]:
        """Load and return (index, store version it matches). Raises on any problem."""
        faiss = _faiss()
        path = Path(path)
        side = json.loads(path.with_suffix(".json").read_text())
        index = faiss.read_index(str(path))
        if index.d != dimension:
            raise ValueError(f"vector file has dimension {index.d}, expected {dimension}")
        vi = cls.__new__(cls)
        vi.dimension = dimension
        vi.kind = side.get("kind", "flat")
        vi.index = index
        vi.lock = threading.RLock()
        if vi.ntotal != side.get("count"):
            raise ValueError("vector file count does not match its sidecar")
        return vi, int(side["version"])


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory, so a rename inside it is durable)."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
