"""What members asked and how they rated the answers. Pure core: no Discord import.

Stored in SQLite at `<index_dir>/state.sqlite`, next to the index but not part of it (a rebuild never
touches it). Privacy by construction:
- answers: answer id, question text, abstained flag, time, the conversation key (a thread or channel
  id, used to understand follow-ups), and the cited sources (to show them again later). No member ids.
- votes: keyed by HMAC-SHA256(member id) with a random per-install salt kept in this database, so a
  member can change their vote but the table can't be joined back to members without the salt.
- `purge(retention_days)` deletes old answers with their votes and message links.

Schema changes are numbered migrations recorded in PRAGMA user_version (see MIGRATIONS).
Every method is blocking; async callers use `asyncio.to_thread`. One connection, one lock: safe to
call from several threads.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .models import Answer

log = logging.getLogger(__name__)

STATE_FILENAME = "state.sqlite"

MIGRATIONS: tuple[str, ...] = (
    # 1: initial schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE answers (
        answer_id   TEXT PRIMARY KEY,
        question    TEXT NOT NULL,
        abstained   INTEGER NOT NULL,
        created_at  REAL NOT NULL,
        context_key TEXT,
        sources     TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX answers_created ON answers (created_at);
    CREATE INDEX answers_context ON answers (context_key, created_at);
    CREATE TABLE votes (
        answer_id  TEXT NOT NULL REFERENCES answers (answer_id) ON DELETE CASCADE,
        voter      TEXT NOT NULL,
        value      INTEGER NOT NULL CHECK (value IN (-1, 1)),
        updated_at REAL NOT NULL,
        PRIMARY KEY (answer_id, voter)
    );
    CREATE TABLE answer_messages (
        message_id TEXT PRIMARY KEY,
        answer_id  TEXT NOT NULL REFERENCES answers (answer_id) ON DELETE CASCADE
    );
    CREATE INDEX answer_messages_answer ON answer_messages (answer_id);
    """,
)


@dataclass
class StoredSource:
    n: int
    title: str
    section: str
    pages: str  # "p. 4" / "pp. 4–5" / ""
    quote: str
    text: str
    url: str
    status: str = "current"
    year: int | None = None


@dataclass
class StoredAnswer:
    answer_id: str
    question: str
    abstained: bool
    created_at: float
    context_key: str | None
    sources: list[StoredSource] = field(default_factory=list)


@dataclass
class VoteResult:
    value: int
    previous: int | None  # None if this is the member's first vote on the answer
    up: int
    down: int


@dataclass
class Gap:
    kind: str  # "unanswered" | "downvoted"
    answer_id: str
    question: str
    created_at: float
    up: int = 0
    down: int = 0


class FeedbackStore:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()
        self._salt = self._load_salt()

    @classmethod
    def open(cls, settings: Any) -> "FeedbackStore":
        return cls(Path(settings.index_dir) / STATE_FILENAME)

    # ---- schema ---------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        with self._lock:
            version = self.schema_version
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"{self.path} has schema version {version}, newer than this program knows ({len(MIGRATIONS)})"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in (s.strip() for s in script.split(";")):
                        if statement:
                            self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {number}")
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                log.info("feedback store %s migrated to schema %d", self.path.name, number)

    def _load_salt(self) -> bytes:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'voter_salt'").fetchone()
            if row is None:
                salt = secrets.token_hex(32)
                self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('voter_salt', ?)", (salt,))
                row = self._db.execute("SELECT value FROM meta WHERE key = 'voter_salt'").fetchone()
            return bytes.fromhex(row["value"])

    def voter_key(self, member_id: int | str) -> str:
        return hmac.new(self._salt, str(member_id).encode(), hashlib.sha256).hexdigest()

    # ---- answers ----------------------------------------------------------------------------
    def record_answer(
        self,
        answer: Answer,
        *,
        context_key: str | int | None = None,
        message_ids: Iterable[int | str] = (),
        now: float | None = None,
    ) -> None:
        if not answer.answer_id:
            return
        sources = [
            {
                "n": c.n,
                "title": c.title,
                "section": c.section,
                "pages": c.pages_label(),
                "quote": c.quote,
                "text": c.text,
                "url": c.url,
                "status": c.status,
                "year": c.year,
            }
            for c in answer.citations  # a partial answer (abstained, with related passages) keeps them too
        ]
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers (answer_id, question, abstained, created_at, context_key, sources)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    answer.answer_id,
                    answer.question,
                    int(bool(answer.abstained or answer.partial)),  # /gaps lists both
                    time.time() if now is None else now,
                    None if context_key is None else str(context_key),
                    json.dumps(sources, ensure_ascii=False),
                ),
            )
            self._link(answer.answer_id, message_ids)

    def link_messages(self, answer_id: str, message_ids: Iterable[int | str]) -> None:
        """Remember which Discord messages show `answer_id` (replies/threads on them are follow-ups)."""
        with self._lock:
            self._link(answer_id, message_ids)

    def _link(self, answer_id: str, message_ids: Iterable[int | str]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO answer_messages (message_id, answer_id) VALUES (?, ?)",
            [(str(m), answer_id) for m in message_ids],
        )

    def get_answer(self, answer_id: str) -> StoredAnswer | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM answers WHERE answer_id = ?", (answer_id,)).fetchone()
        return _stored(row) if row else None

    def answer_for_message(self, message_id: int | str) -> StoredAnswer | None:
        with self._lock:
            row = self._db.execute(
                "SELECT a.* FROM answer_messages m JOIN answers a USING (answer_id) WHERE m.message_id = ?",
                (str(message_id),),
            ).fetchone()
        return _stored(row) if row else None

    def context_questions(self, context_key: str | int, limit: int = 4, *, until: float | None = None) -> list[str]:
        """Questions asked in one conversation (thread), oldest first, at most `limit` (the latest),
        optionally only those asked at or before `until`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT question FROM answers WHERE context_key = ? AND created_at <= ?"
                " ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (str(context_key), float("inf") if until is None else until, limit),
            ).fetchall()
        return [r["question"] for r in reversed(rows)]

    # ---- votes ------------------------------------------------------------------------------
    def vote(self, answer_id: str, member_id: int | str, value: int, *, now: float | None = None) -> VoteResult | None:
        """Record a member's +1/-1 on an answer (one per member, changeable). None if the answer is unknown."""
        if value not in (1, -1):
            raise ValueError("value must be +1 or -1")
        voter = self.voter_key(member_id)
        with self._lock:
            if self._db.execute("SELECT 1 FROM answers WHERE answer_id = ?", (answer_id,)).fetchone() is None:
                return None
            prev = self._db.execute(
                "SELECT value FROM votes WHERE answer_id = ? AND voter = ?", (answer_id, voter)
            ).fetchone()
            self._db.execute(
                "INSERT INTO votes (answer_id, voter, value, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (answer_id, voter) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (answer_id, voter, value, time.time() if now is None else now),
            )
            up, down = self._tally(answer_id)
        return VoteResult(value=value, previous=prev["value"] if prev else None, up=up, down=down)

    def votes(self, answer_id: str) -> tuple[int, int]:
        with self._lock:
            return self._tally(answer_id)

    def _tally(self, answer_id: str) -> tuple[int, int]:
        row = self._db.execute(
            "SELECT COALESCE(SUM(value = 1), 0) AS up, COALESCE(SUM(value = -1), 0) AS down FROM votes WHERE answer_id = ?",
            (answer_id,),
        ).fetchone()
        return int(row["up"]), int(row["down"])

    # ---- gaps -------------------------------------------------------------------------------
    def gaps(self, limit: int = 20) -> list[Gap]:
        """Recent abstentions and answers with more 👎 than 👍, newest first."""
        with self._lock:
            rows = self._db.execute(
                """
                SELECT a.answer_id, a.question, a.abstained, a.created_at,
                       COALESCE(SUM(v.value = 1), 0) AS up, COALESCE(SUM(v.value = -1), 0) AS down
                FROM answers a LEFT JOIN votes v USING (answer_id)
                GROUP BY a.answer_id
                HAVING a.abstained = 1 OR COALESCE(SUM(v.value), 0) < 0
                ORDER BY a.created_at DESC, a.rowid DESC
                LIMIT ?
                """,
                (limit,),
            ).fetchall()
        return [
            Gap(
                kind="unanswered" if r["abstained"] else "downvoted",
                answer_id=r["answer_id"],
                question=r["question"],
                created_at=r["created_at"],
                up=int(r["up"]),
                down=int(r["down"]),
            )
            for r in rows
        ]

    def purge(self, retention_days: float, *, now: float | None = None) -> int:
        """Delete answers (and their votes and message links) older than `retention_days`. Returns the count."""
        cutoff = (time.time() if now is None else now) - retention_days * 86400
        with self._lock:
            cur = self._db.execute("DELETE FROM answers WHERE created_at < ?", (cutoff,))
        if cur.rowcount:
            log.info("purged %d answers older than %g days", cur.rowcount, retention_days)
        return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _stored(row: sqlite3.Row) -> StoredAnswer:
    sources = [StoredSource(**s) for s in json.loads(row["sources"] or "[]")]
    return StoredAnswer(
        answer_id=row["answer_id"],
        question=row["question"],
        abstained=bool(row["abstained"]),
        created_at=row["created_at"],
        context_key=row["context_key"],
        sources=sources,
    )
