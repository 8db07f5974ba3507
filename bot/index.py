"""The on-disk index: a self-describing directory of generations, swapped atomically.

    INDEX_DIR/
      current -> generations/<name>     symlink, replaced atomically (os.replace) on rebuild
      generations/<name>/
        index.sqlite                    documents, chunks + vectors, FTS5 (source of truth)
        vectors.faiss, vectors.json     FAISS ids = chunk ids; sidecar names the store version it matches
        manifest.json                   model, dimension, chunk settings, build time, document hashes
      embed_cache.sqlite                vectors keyed by (model, text hash): unchanged chunks are never re-embedded
      uploads/                          documents added from Discord or the CLI (kept across rebuilds)
      state.sqlite                      answers, votes, gaps (bot/feedback.py)
      .write.lock                       one writer at a time, across processes

Writes to a generation are one SQLite transaction each; the FAISS file and manifest are derived and
repaired on open if a crash left them behind. Rebuilds write a new generation in a temporary folder.
"""
from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import IndexCorruptError, IndexMissingError, IndexModelMismatchError
from .store import Store
from .vectors import VectorIndex, fsync_path

log = logging.getLogger(__name__)

FORMAT = 1


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def write_json_atomic(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")  # unique: two processes may write at once
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class EmbeddingCache:
    """Vectors keyed by (model, text hash), shared by all generations."""

    def __init__(self, path: Path):
        self.conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS cache (model TEXT NOT NULL, hash TEXT NOT NULL, vector BLOB NOT NULL, "
            "PRIMARY KEY(model, hash))"
        )
        self.lock = threading.Lock()

    def get_many(self, model: str, hashes: list[str], dimension: int) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with self.lock:
            for i in range(0, len(hashes), 500):
                part = hashes[i:i + 500]
                marks = ",".join("?" * len(part))
                for h, blob in self.conn.execute(
                    f"SELECT hash, vector FROM cache WHERE model=? AND hash IN ({marks})", [model, *part]
                ):
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape[0] == dimension:
                        out[h] = vec
        return out

    def put_many(self, model: str, items: list[tuple[str, np.ndarray]]) -> None:
        with self.lock, self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO cache(model, hash, vector) VALUES(?,?,?)",
                [(model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items],
            )

    def close(self) -> None:
        self.conn.close()


@dataclass
class Generation:
    path: Path
    store: Store
    vectors: VectorIndex
    vectors_version: int
    manifest: dict

    def close(self) -> None:
        self.store.close()


class IndexLayout:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.current = self.root / "current"
        self.generations = self.root / "generations"
        self.uploads = self.root / "uploads"
        self.cache = self.root / "embed_cache.sqlite"
        self.lockfile = self.root / ".write.lock"

    def ensure(self) -> None:
        for p in (self.root, self.generations, self.uploads):
            p.mkdir(parents=True, exist_ok=True)

    def current_target(self) -> Path | None:
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        path = (self.root / target) if not os.path.isabs(target) else Path(target)
        return path if path.is_dir() else None

    def newest_generation(self) -> Path | None:
        """The most recent complete generation on disk (for recovering a lost `current` link)."""
        if not self.generations.is_dir():
            return None
        done = [p for p in self.generations.iterdir() if (p / "index.sqlite").exists() and (p / "manifest.json").exists()]
        return max(done, key=lambda p: p.name) if done else None

    def new_temp_generation(self) -> Path:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        name = f"{stamp}-{uuid.uuid4().hex[:6]}"
        path = self.root / f"tmp-{name}"
        path.mkdir(parents=True)
        return path

    def publish(self, temp: Path) -> Path:
        """Move a finished temp generation into generations/ and point `current` at it atomically."""
        final = self.generations / temp.name[len("tmp-"):]
        os.replace(temp, final)
        fsync_path(self.generations)
        link_tmp = self.root / f".current-{uuid.uuid4().hex[:6]}"
        os.symlink(os.path.relpath(final, self.root), link_tmp)
        os.replace(link_tmp, self.current)
        fsync_path(self.root)
        return final

    def remove_temp(self) -> None:
        """Remove temporary folders of builds that were interrupted (they can be as large as an index)."""
        for p in self.root.glob("tmp-*"):
            shutil.rmtree(p, ignore_errors=True)

    def cleanup(self, keep: Path | None) -> None:
        """Remove leftovers of interrupted builds and generations no longer current."""
        for p in self.root.glob("tmp-*"):
            shutil.rmtree(p, ignore_errors=True)
        for p in self.root.glob(".current-*"):
            try:
                p.unlink()
            except OSError:
                pass
        if self.generations.is_dir():
            for p in self.generations.iterdir():
                if keep is None or p.resolve() != keep.resolve():
                    shutil.rmtree(p, ignore_errors=True)

    @contextmanager
    def write_lock(self):
        self.ensure()
        with open(self.lockfile, "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def make_manifest(store: Store, model: str, dimension: int, chunk_tokens: int, chunk_overlap: int,
                  built_at: str, vector_kind: str) -> dict:
    docs = {r["doc_id"]: r["sha256"] for r in store.document_rows()}
    n_docs, n_chunks = store.counts()
    return {
        "format": FORMAT,
        "model": model,
        "dimension": dimension,
        "chunk_tokens": chunk_tokens,
        "chunk_overlap": chunk_overlap,
        "built_at": built_at,
        "updated_at": now_iso(),
        "documents": docs,
        "document_count": n_docs,
        "chunk_count": n_chunks,
        "vector_index": vector_kind,
        "vectors_version": store.vectors_version(),
    }


def open_generation(path: Path, model: str, repair: bool = True) -> Generation:
    """Open a generation, checking the model and repairing derived files (FAISS, manifest) if stale."""
    manifest_path = path / "manifest.json"
    db_path = path / "index.sqlite"
    if not db_path.exists() or not manifest_path.exists():
        raise IndexCorruptError(f"The index at {path} is incomplete (missing index.sqlite or manifest.json). "
                                f"Rebuild it with: python -m bot rebuild")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"The index manifest {manifest_path} is unreadable ({exc}). "
                                f"Rebuild it with: python -m bot rebuild") from None
    if manifest.get("model") != model:
        raise IndexModelMismatchError(
            f"The index was built with the embedding model {manifest.get('model')!r}, but this bot is configured "
            f"for {model!r}. Rebuild the index with: python -m bot rebuild"
        )
    dimension = int(manifest["dimension"])
    damaged = f"The index database {db_path} is damaged"
    try:
        # Never create or migrate a database that was not one of ours: an empty or foreign file is damage.
        probe = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            version = probe.execute("PRAGMA user_version").fetchone()[0]
            n_docs = probe.execute("SELECT COUNT(*) FROM documents").fetchone()[0] if version else 0
        finally:
            probe.close()
        if version < 1:
            raise IndexCorruptError(f"{damaged} (empty or not an index). Rebuild it with: python -m bot rebuild")
        if n_docs == 0 and manifest.get("document_count", 0) > 0:
            raise IndexCorruptError(f"{damaged} (its documents are missing). Rebuild it with: python -m bot rebuild")
        store = Store(db_path)
        store.counts()
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptError(f"{damaged} ({exc}). Rebuild it with: python -m bot rebuild") from None
    version = store.vectors_version()
    vectors = None
    try:
        vectors, vfile_version = VectorIndex.load(path / "vectors.faiss", dimension)
        if vfile_version != version or vectors.ntotal != store.counts()[1]:
            log.warning("vector file is stale (file v%s, store v%s): rebuilding it from the store", vfile_version, version)
            vectors = None
    except Exception as exc:  # noqa: BLE001 - any unreadable vector file is rebuilt from the store
        log.warning("vector file unreadable (%s): rebuilding it from the store", exc)
        vectors = None
    if vectors is None:
        if not repair:
            raise IndexCorruptError(f"The vector file in {path} is stale or unreadable.")
        ids, vecs = store.all_vectors(dimension)
        vectors = VectorIndex.build(ids, vecs, dimension)
        vectors.save(path / "vectors.faiss", version)
    if manifest.get("vectors_version") != version or set(manifest.get("documents", {})) != store.doc_ids():
        manifest = make_manifest(store, model, dimension, manifest.get("chunk_tokens", 0),
                                 manifest.get("chunk_overlap", 0), manifest.get("built_at", now_iso()), vectors.kind)
        write_json_atomic(manifest_path, manifest)
    return Generation(path=path, store=store, vectors=vectors, vectors_version=version, manifest=manifest)


def create_generation(path: Path, model: str, dimension: int, chunk_tokens: int, chunk_overlap: int) -> Generation:
    store = Store(path / "index.sqlite")
    with store.conn:
        store.set_meta("model", model)
        store.set_meta("dimension", dimension)
        store.set_meta("vectors_version", 0)
    vectors = VectorIndex.build(np.zeros(0, dtype=np.int64), np.zeros((0, dimension), np.float32), dimension)
    vectors.save(path / "vectors.faiss", 0)
    built = now_iso()
    manifest = make_manifest(store, model, dimension, chunk_tokens, chunk_overlap, built, vectors.kind)
    write_json_atomic(path / "manifest.json", manifest)
    return Generation(path=path, store=store, vectors=vectors, vectors_version=0, manifest=manifest)


def finalize_generation(gen: Generation, vector_kind: str = "auto") -> None:
    """After bulk loading: build the vector index from the store, write vectors + manifest, fsync."""
    dimension = int(gen.manifest["dimension"])
    ids, vecs = gen.store.all_vectors(dimension)
    gen.vectors = VectorIndex.build(ids, vecs, dimension, vector_kind)
    gen.vectors_version = gen.store.vectors_version()
    gen.vectors.save(gen.path / "vectors.faiss", gen.vectors_version)
    gen.store.conn.execute("PRAGMA synchronous=FULL")  # the bulk load ran with synchronous=OFF
    gen.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    fsync_path(gen.path / "index.sqlite")
    gen.manifest = make_manifest(gen.store, gen.manifest["model"], dimension, gen.manifest["chunk_tokens"],
                                 gen.manifest["chunk_overlap"], now_iso(), gen.vectors.kind)
    write_json_atomic(gen.path / "manifest.json", gen.manifest)
    fsync_path(gen.path)


def save_after_write(gen: Generation) -> None:
    """After an incremental write committed to the store: persist vectors and manifest."""
    gen.vectors_version = gen.store.vectors_version()
    gen.vectors.save(gen.path / "vectors.faiss", gen.vectors_version)
    gen.manifest = make_manifest(gen.store, gen.manifest["model"], int(gen.manifest["dimension"]),
                                 gen.manifest["chunk_tokens"], gen.manifest["chunk_overlap"],
                                 gen.manifest["built_at"], gen.vectors.kind)
    write_json_atomic(gen.path / "manifest.json", gen.manifest)


def require_current(layout: IndexLayout) -> Path:
    target = layout.current_target()
    if target is None:
        raise IndexMissingError(
            f"No index found at {layout.root}. Build it with: python -m bot rebuild"
        )
    return target
