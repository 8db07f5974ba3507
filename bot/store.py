"""SQLite storage of one index generation: documents, chunks (with their vectors), FTS5 keywords.

SQLite is the source of truth; the FAISS file is a cache rebuilt from the vectors stored here
whenever its version does not match (so a crash between the two can never leave them disagreeing).
Schema changes are numbered migrations applied with PRAGMA user_version.
"""
from __future__ import annotations

import json
import re
import sqlite3
import threading
from pathlib import Path
from typing import Iterable

import numpy as np

from .models import Chunk, DocumentInfo, DocumentMeta

MIGRATIONS: list[str] = [
    # 1: initial schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE documents (
        doc_id TEXT PRIMARY KEY,
        source_key TEXT NOT NULL,
        origin TEXT NOT NULL,             -- corpus | upload
        source_path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        union_name TEXT NOT NULL DEFAULT '',
        agreement TEXT NOT NULL DEFAULT '',
        year INTEGER,
        status TEXT NOT NULL DEFAULT 'current',
        doc_type TEXT NOT NULL DEFAULT '',
        url TEXT NOT NULL DEFAULT '',
        publisher TEXT NOT NULL DEFAULT '',
        date TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT '',
        sources TEXT NOT NULL DEFAULT '[]',
        meta_override TEXT NOT NULL DEFAULT '{}',
        pages INTEGER,
        chunks INTEGER NOT NULL DEFAULT 0,
        added_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX documents_source_key ON documents(source_key);
    CREATE INDEX documents_sha ON documents(sha256);
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY,
        doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
        ordinal INTEGER NOT NULL,
        text TEXT NOT NULL,
        section TEXT NOT NULL DEFAULT '',
        page_start INTEGER,
        page_end INTEGER,
        char_start INTEGER NOT NULL,
        char_end INTEGER NOT NULL,
        text_hash TEXT NOT NULL,
        vector BLOB NOT NULL
    );
    CREATE INDEX chunks_doc ON chunks(doc_id);
    CREATE VIRTUAL TABLE chunks_fts USING fts5(text, section, title, tokenize = 'porter unicode61');
    CREATE TABLE tombstones (source_key TEXT PRIMARY KEY, removed_at TEXT NOT NULL);
    """,
    # 2: the raw (unstemmed) vocabulary of the indexed text, for "does the corpus know this word / is it a typo"
    """
    CREATE TABLE words (word TEXT PRIMARY KEY) WITHOUT ROWID;
    """,
    # 3: where each page starts inside a chunk, so a citation names the page of its quote
    """
    ALTER TABLE chunks ADD COLUMN page_map TEXT NOT NULL DEFAULT '';
    """,
    # 4: the name the file had when it was uploaded (uploads are stored under generated names); it often
    # says whose law a bill is ("WA_SB5886.pdf")
    """
    ALTER TABLE documents ADD COLUMN file_name TEXT NOT NULL DEFAULT '';
    """,
]

_VOCAB_WORD = re.compile(r"[a-z][a-z0-9'\-]*[a-z0-9]|[a-z]")


def vocabulary(text: str) -> set[str]:
    return {w.strip("'-") for w in _VOCAB_WORD.findall(text.lower())}


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30)
    else:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        with conn:
            conn.executescript("BEGIN;" + script + f"; PRAGMA user_version = {number};")


_FTS_TOKEN = re.compile(r"[A-Za-z0-9$%][A-Za-z0-9$%.\-']*")


def fts_query(terms: Iterable[str]) -> str:
    """Build a safe FTS5 OR-query from terms (each quoted, so user text can't inject syntax)."""
    quoted = []
    for t in terms:
        t = t.replace('"', "").strip()
        if t:
            quoted.append(f'"{t}"')
    return " OR ".join(quoted)


class Store:
    """One generation's database. Reads are safe from many threads (serialised by a lock)."""

    def __init__(self, path: Path, readonly: bool = False):
        self.path = Path(path)
        self.conn = connect(self.path, readonly=readonly)
        self.lock = threading.RLock()
        if not readonly:
            migrate(self.conn)
            self._backfill_words()

    def _backfill_words(self) -> None:
        has_words = self.conn.execute("SELECT 1 FROM words LIMIT 1").fetchone()
        has_chunks = self.conn.execute("SELECT 1 FROM chunks LIMIT 1").fetchone()
        if has_chunks and not has_words:
            with self.conn:
                for (text,) in self.conn.execute("SELECT text FROM chunks").fetchall():
                    self._add_words(text)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    # -- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self.lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value, conn: sqlite3.Connection | None = None) -> None:
        (conn or self.conn).execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, str(value)),
        )

    def vectors_version(self) -> int:
        return int(self.get_meta("vectors_version", "0") or 0)

    def data_version(self) -> int:
        with self.lock:
            return self.conn.execute("PRAGMA data_version").fetchone()[0]

    # -- documents ------------------------------------------------------------------------------
    def find_by_sha(self, sha: str) -> sqlite3.Row | None:
        with self.lock:
            return self.conn.execute("SELECT * FROM documents WHERE sha256=?", (sha,)).fetchone()

    def find_by_source_key(self, key: str) -> sqlite3.Row | None:
        with self.lock:
            return self.conn.execute("SELECT * FROM documents WHERE source_key=?", (key,)).fetchone()

    def get_document(self, doc_id: str) -> sqlite3.Row | None:
        with self.lock:
            return self.conn.execute("SELECT * FROM documents WHERE doc_id=?", (doc_id,)).fetchone()

    def doc_ids(self) -> set[str]:
        with self.lock:
            return {r[0] for r in self.conn.execute("SELECT doc_id FROM documents")}

    def documents(self) -> list[DocumentInfo]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT * FROM documents ORDER BY status, union_name, year DESC, title"
            ).fetchall()
        return [row_to_info(r) for r in rows]

    def document_rows(self) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute("SELECT * FROM documents").fetchall()

    def section_starts(self) -> list[tuple[str, str, int]]:
        """Each document's distinct top-level section headings, with the ordinal of the first chunk under
        each: (doc_id, heading, ordinal)."""
        with self.lock:
            return [tuple(r) for r in self.conn.execute(
                "SELECT doc_id, top, MIN(ordinal) FROM (SELECT doc_id, ordinal, "
                "substr(section, 1, instr(section || ' > ', ' > ') - 1) AS top FROM chunks WHERE section != '') "
                "GROUP BY doc_id, top").fetchall()]

    def tombstones(self) -> set[str]:
        with self.lock:
            return {r[0] for r in self.conn.execute("SELECT source_key FROM tombstones")}

    def counts(self) -> tuple[int, int]:
        with self.lock:
            d = self.conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            c = self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return d, c

    # -- writes (callers hold the index write lock) ---------------------------------------------
    def put_document(
        self,
        *,
        doc_id: str,
        source_key: str,
        origin: str,
        source_path: str,
        sha256: str,
        kind: str,
        meta: DocumentMeta,
        meta_override: dict,
        pages: int | None,
        chunks: list[Chunk],
        vectors: np.ndarray,
        text_hashes: list[str],
        added_at: str,
        replace_doc_id: str | None = None,
        file_name: str = "",
    ) -> list[int]:
        """Insert a document and its chunks in ONE transaction (replacing `replace_doc_id` if given).

        Returns the new chunk ids. Nothing is visible to readers until the transaction commits.
        """
        assert len(chunks) == len(vectors) == len(text_hashes)
        with self.lock, self.conn:
            removed: list[int] = []
            if replace_doc_id:
                removed = self._delete_document(replace_doc_id)
            self.conn.execute(
                """INSERT INTO documents(doc_id, source_key, origin, source_path, sha256, kind, title, union_name,
                   agreement, year, status, doc_type, url, publisher, date, note, sources, meta_override, pages,
                   chunks, added_at, file_name) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                (
                    doc_id, source_key, origin, source_path, sha256, kind, meta.title, meta.union, meta.agreement,
                    meta.year, meta.status, meta.doc_type, meta.url, meta.publisher, meta.date, meta.note,
                    json.dumps(meta.sources), json.dumps(meta_override), pages, len(chunks), added_at, file_name,
                ),
            )
            self.conn.execute("DELETE FROM tombstones WHERE source_key=?", (source_key,))
            ids = []
            for chunk, vec, th in zip(chunks, vectors, text_hashes):
                cur = self.conn.execute(
                    """INSERT INTO chunks(doc_id, ordinal, text, section, page_start, page_end, char_start,
                       char_end, text_hash, vector, page_map) VALUES(?,?,?,?,?,?,?,?,?,?,?)""",
                    (doc_id, chunk.ordinal, chunk.text, chunk.section, chunk.page_start, chunk.page_end,
                     chunk.char_start, chunk.char_end, th, np.asarray(vec, dtype=np.float32).tobytes(),
                     json.dumps(chunk.page_map) if chunk.page_map else ""),
                )
                cid = cur.lastrowid
                ids.append(cid)
                self._add_words(chunk.text)
                self.conn.execute(
                    "INSERT INTO chunks_fts(rowid, text, section, title) VALUES(?,?,?,?)",
                    (cid, chunk.text, chunk.section, _fts_title(meta)),
                )
            self._add_words(_fts_title(meta))
            self._bump_version()
        self.last_removed = removed
        return ids

    def _add_words(self, text: str) -> None:
        self.conn.executemany("INSERT OR IGNORE INTO words(word) VALUES(?)", [(w,) for w in vocabulary(text)])

    def has_word(self, word: str) -> bool:
        with self.lock:
            return self.conn.execute("SELECT 1 FROM words WHERE word=?", (word.lower(),)).fetchone() is not None

    def near_words(self, word: str) -> list[str]:
        """Words of similar length sharing the first letter (candidates for a typo check)."""
        w = word.lower()
        with self.lock:
            return [r[0] for r in self.conn.execute(
                "SELECT word FROM words WHERE word >= ? AND word < ? AND length(word) BETWEEN ? AND ?",
                (w[0], chr(ord(w[0]) + 1), len(w) - 2, len(w) + 2))]

    def delete_document(self, doc_id: str, tombstone_key: str | None = None, removed_at: str = "") -> list[int]:
        with self.lock, self.conn:
            removed = self._delete_document(doc_id)
            if tombstone_key:
                self.conn.execute(
                    "INSERT OR REPLACE INTO tombstones(source_key, removed_at) VALUES(?, ?)", (tombstone_key, removed_at)
                )
            self._bump_version()
        return removed

    def _delete_document(self, doc_id: str) -> list[int]:
        ids = [r[0] for r in self.conn.execute("SELECT id FROM chunks WHERE doc_id=?", (doc_id,))]
        self.conn.executemany("DELETE FROM chunks_fts WHERE rowid=?", [(i,) for i in ids])
        self.conn.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
        self.conn.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
        return ids

    def _bump_version(self) -> None:
        row = self.conn.execute("SELECT value FROM meta WHERE key='vectors_version'").fetchone()
        self.set_meta("vectors_version", int(row[0] if row else 0) + 1)

    def add_tombstone(self, key: str, removed_at: str) -> None:
        with self.lock, self.conn:
            self.conn.execute("INSERT OR REPLACE INTO tombstones(source_key, removed_at) VALUES(?, ?)", (key, removed_at))

    # -- chunk reads ----------------------------------------------------------------------------
    def all_vectors(self, dimension: int) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            rows = self.conn.execute("SELECT id, vector FROM chunks ORDER BY id").fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, dimension), dtype=np.float32)
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dimension)
        return ids, vecs.copy()

    def document_text(self, doc_id: str) -> str:
        """A document's chunk texts in reading order, joined (overlaps included)."""
        with self.lock:
            rows = self.conn.execute("SELECT text FROM chunks WHERE doc_id = ? ORDER BY ordinal", (doc_id,)).fetchall()
        return "\n".join(r[0] for r in rows)

    def chunk_rows(self, ids: list[int]) -> dict[int, sqlite3.Row]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self.lock:
            rows = self.conn.execute(
                f"""SELECT c.id, c.doc_id, c.ordinal, c.text, c.section, c.page_start, c.page_end,
                    c.char_start, c.char_end, c.page_map, d.title, d.union_name, d.agreement, d.year, d.status, d.doc_type,
                    d.url, d.note, d.date FROM chunks c JOIN documents d ON d.doc_id = c.doc_id
                    WHERE c.id IN ({marks})""",
                ids,
            ).fetchall()
        return {r["id"]: r for r in rows}

    def neighbour_ids(self, pairs: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Chunk ids by (doc_id, ordinal), for the given pairs that exist."""
        if not pairs:
            return {}
        by_doc: dict[str, set[int]] = {}
        for doc_id, ordinal in pairs:
            by_doc.setdefault(doc_id, set()).add(ordinal)
        out: dict[tuple[str, int], int] = {}
        with self.lock:  # one query per document, on the doc_id index
            for doc_id, ordinals in by_doc.items():
                marks = ",".join("?" * len(ordinals))
                for cid, ordinal in self.conn.execute(
                        f"SELECT id, ordinal FROM chunks WHERE doc_id = ? AND ordinal IN ({marks})",
                        [doc_id, *sorted(ordinals)]):
                    out[(doc_id, ordinal)] = cid
        return out

    def keyword_search(self, terms: list[str], limit: int) -> list[tuple[int, float]]:
        """bm25 over chunk text (weight 1), section (2) and title (2). Returns (chunk id, score>0)."""
        q = fts_query(terms)
        if not q:
            return []
        with self.lock:
            try:
                rows = self.conn.execute(
                    "SELECT rowid, bm25(chunks_fts, 1.0, 2.0, 2.0) AS s FROM chunks_fts WHERE chunks_fts MATCH ? "
                    "ORDER BY s LIMIT ?",
                    (q, limit),
                ).fetchall()
            except sqlite3.OperationalError:
                return []
        return [(r[0], -r[1]) for r in rows]

    def phrase_hits(self, phrase: str, limit: int = 50) -> list[int]:
        q = '"' + phrase.replace('"', "") + '"'
        with self.lock:
            try:
                return [r[0] for r in self.conn.execute(
                    "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?", (q, limit))]
            except sqlite3.OperationalError:
                return []

    def term_doc_freq(self, terms: list[str]) -> dict[str, int]:
        out = {}
        with self.lock:
            for t in terms:
                q = fts_query([t])
                if not q:
                    continue
                try:
                    out[t] = self.conn.execute("SELECT COUNT(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (q,)).fetchone()[0]
                except sqlite3.OperationalError:
                    out[t] = 0
        return out



def _fts_title(meta: DocumentMeta) -> str:
    return " ".join(x for x in (meta.title, meta.union, meta.agreement, str(meta.year or "")) if x)


def row_to_info(r: sqlite3.Row) -> DocumentInfo:
    return DocumentInfo(
        doc_id=r["doc_id"], title=r["title"], union=r["union_name"], agreement=r["agreement"], year=r["year"],
        status=r["status"], doc_type=r["doc_type"], url=r["url"], source_path=r["source_path"], pages=r["pages"],
        chunks=r["chunks"], sha256=r["sha256"], added_at=r["added_at"],
    )
