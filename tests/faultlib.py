"""Helpers for tests/test_faults.py: crash (SIGKILL), corruption and disk-full fault injection.

Three parts:

* **Documents and index trees** - deterministic Markdown/PDF documents, a template INDEX_DIR built once,
  and `clone_tree` which copies it for one scenario (rewriting the absolute source paths stored in SQLite).
* **The child runner** - this file run as a script: `python tests/faultlib.py <bot CLI args>` runs the real
  `bot.cli.main` with the fault plan from the environment variable `FAULT_PLAN` (JSON) applied first:
  each fault wraps one internal callable (`"bot.store:Store.put_document"`, `"os:replace"`, ...) and on its
  Nth matching call (optionally only calls whose arguments contain `match`) SIGKILLs the process (`when`:
  "before" or "after" the original) or raises a disk-full error ("enospc": OSError(ENOSPC), "sqlite_full":
  sqlite3.OperationalError("database or disk is full")). The runner writes a READY mark (CLOCK_MONOTONIC
  time) just before `main()` and a HIT line when a fault fires, so the parent knows exactly where the
  process died. `run_child` is the parent side (it also kills a child a given delay after READY).
* **The checker** - `check_index` verifies every invariant the issue lists: SQLite chunk rows vs documents,
  FTS rows, whole documents (chunk count equals a clean build's), FAISS ids == chunk ids, manifest ==
  SQLite; and reports which derived files the fault had left stale (before the open repaired them),
  leftovers (tmp-* folders, stray generations, *.tmp files) and orphan files in uploads/.
"""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
MODEL = "hash-embedder-v1"
PLAN_VAR = "FAULT_PLAN"
_os_replace = os.replace  # the real one, for the runner's own files (faults may wrap os.replace)

# --------------------------------------------------------------------------------------------------
# Documents

_TOPICS = [
    ("Digital replicas", "digital replica", "scan"),
    ("Consent", "clear and conspicuous consent", "consent"),
    ("Compensation", "compensation for replica use", "payment"),
    ("Generative artificial intelligence", "generative artificial intelligence", "material"),
    ("Training data", "training of artificial intelligence systems", "scripts"),
    ("Notice", "advance written notice", "session"),
    ("Disclosure", "disclosure of synthetic material", "writer"),
    ("Synthetic performers", "synthetic performer", "likeness"),
    ("Dispute resolution", "joint standing committee", "grievance"),
    ("Estates", "deceased performer", "estate"),
]
_UNIONS = ["Test Guild", "Screen Crew Union", "Writers Local", "Animation Workers", "Directors Council"]
_VERBS = ["must obtain", "shall provide", "may not require", "is required to give", "agrees to negotiate",
          "will disclose", "shall not use", "must pay for"]
_OBJECTS = ["before any production begins", "within thirty days of the request", "for each separate project",
            "at the daily rate of the performer", "in a separate written agreement", "unless the guild agrees",
            "as described in the side letter", "for the life of the agreement"]


def markdown_doc(tag: str, index: int, *, sections: int = 6, paragraphs: int = 3, variant: str = "") -> str:
    """A deterministic Markdown 'agreement' of a few hundred words (several chunks with CHUNK_TOKENS=180).

    Every document has a unique title and a unique marker word (`zq<tag><index>`), so asks can target it."""
    rng = random.Random(f"{tag}-{index}-{variant}")
    union = _UNIONS[index % len(_UNIONS)]
    year = 2015 + index % 10
    marker = f"zq{tag}{index}"
    lines = [
        "---",
        f"title: {union} {tag.upper()} {index:03d} Agreement{(' ' + variant) if variant else ''}",
        f"union: {union}",
        f"year: {year}",
        "status: current",
        "doc_type: contract",
        "---",
        f"# {union} {tag.upper()} {index:03d} Agreement",
        "",
    ]
    for s in range(sections):
        head, phrase, word = _TOPICS[(index + s) % len(_TOPICS)]
        lines += [f"## {head} {s + 1}", ""]
        for p in range(paragraphs):
            sentences = []
            for _ in range(4):
                sentences.append(
                    f"The producer {rng.choice(_VERBS)} {phrase} {rng.choice(_OBJECTS)}, and the {word} "
                    f"remains subject to article {rng.randint(1, 99)}."
                )
            if p == 0:
                sentences.append(f"This clause is identified by {marker} {variant}.".replace(" .", "."))
            lines += [" ".join(sentences), ""]
    return "\n".join(lines)


def pdf_doc(tag: str, index: int, pages: int = 3) -> bytes:
    from pdfgen import text_pdf

    marker = f"zq{tag}{index}"
    body = []
    for p in range(1, pages + 1):
        head, phrase, word = _TOPICS[(index + p) % len(_TOPICS)]
        body.append([
            f"ARTICLE {p} {head.upper()}",
            f"The producer must give {phrase} notice before each {word} session.",
            f"Payment for the {word} is due within thirty days. Marker {marker} page {p}.",
            "Nothing herein limits any other provision of this Agreement.",
        ])
    return text_pdf(body, title=f"{tag.upper()} PDF Agreement {index:03d}", author="Fault Tests")


def write_docs(folder: Path, tag: str, n_md: int, pdf_at: tuple[int, ...] = ()) -> list[Path]:
    """n_md Markdown files plus one PDF at each position in `pdf_at` (sorted names keep that order)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n_md):
        p = folder / f"{tag}-{i:03d}.md"
        p.write_text(markdown_doc(tag, i), encoding="utf-8")
        out.append(p)
    for i in pdf_at:
        p = folder / f"{tag}-{i:03d}p.pdf"  # sorts right after the Markdown file of the same number
        p.write_bytes(pdf_doc(tag, 500 + i))
        out.append(p)
    return sorted(out)


# --------------------------------------------------------------------------------------------------
# Trees: one scenario = root/{index,corpus,incoming,...}


@dataclass
class Tree:
    root: Path

    @property
    def index(self) -> Path:
        return self.root / "index"

    @property
    def corpus(self) -> Path:
        return self.root / "corpus"

    @property
    def incoming(self) -> Path:
        return self.root / "incoming"

    def settings(self):
        from bot.config import Settings

        return Settings(index_dir=self.index, corpus_dir=self.corpus, embedding_model=MODEL)

    def env(self, **extra) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DISCORD_TOKEN", "QUERY_MODEL", "RERANK_MODEL", "LLM_BASE_URL", PLAN_VAR)}
        env.update({
            "INDEX_DIR": str(self.index),
            "CORPUS_DIR": str(self.corpus),
            "EMBEDDING_MODEL": MODEL,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS), env.get("PYTHONPATH", "")]),
            "DOTENV_PATH": str(self.root / "no.env"),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(extra)
        return env

    def open_service(self, build_if_missing: bool = False):
        from bot.embedding import HashEmbedder
        from bot.service import Service

        return Service.open(self.settings(), embedder=HashEmbedder(), build_if_missing=build_if_missing)


def clone_tree(src: Path, dest: Path) -> Tree:
    """Copy a scenario tree; rewrite absolute paths (uploads, corpus files) stored in the current generation."""
    import shutil

    shutil.copytree(src, dest, symlinks=True)
    tree = Tree(dest)
    target = current_generation(tree.index)
    if target is not None:
        conn = sqlite3.connect(str(target / "index.sqlite"))
        with conn:
            conn.execute("UPDATE documents SET source_path = ? || substr(source_path, ?) WHERE source_path LIKE ?",
                         (str(dest), len(str(src)) + 1, str(src) + "/%"))
        conn.close()
    return tree


def current_generation(index: Path) -> Path | None:
    from bot.index import IndexLayout

    return IndexLayout(index).current_target()


# --------------------------------------------------------------------------------------------------
# The child runner (this file as a script)


def _resolve(target: str):
    module_name, _, attr_path = target.partition(":")
    import importlib

    owner = importlib.import_module(module_name)
    parts = attr_path.split(".")
    for p in parts[:-1]:
        owner = getattr(owner, p)
    return owner, parts[-1]


def _install_fault(fault: dict, log_path: str | None) -> None:
    owner, name = _resolve(fault["target"])
    original = getattr(owner, name)
    when = fault.get("when", "before")
    nth = int(fault.get("n", 1))
    match = fault.get("match")
    label = fault.get("label") or f"{fault['target']} {when} #{nth}"
    state = {"count": 0}

    def hit() -> None:
        if log_path:
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.write(fd, (json.dumps({"hit": label, "t": time.monotonic()}) + "\n").encode())
            os.close(fd)

    def die() -> None:
        hit()
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)  # never reached

    def wrapper(*args, **kwargs):
        if match is not None and match not in " ".join(str(a) for a in args):
            return original(*args, **kwargs)
        state["count"] += 1
        if state["count"] != nth:
            return original(*args, **kwargs)
        if when == "before":
            die()
        if when == "enospc":
            import errno

            hit()
            raise OSError(errno.ENOSPC, "No space left on device")
        if when == "sqlite_full":  # what SQLite raises when a write hits ENOSPC
            hit()
            raise sqlite3.OperationalError("database or disk is full")
        result = original(*args, **kwargs)
        die()
        return result

    wrapper.__name__ = getattr(original, "__name__", name)
    setattr(owner, name, wrapper)


def child_main(argv: list[str]) -> int:
    plan = json.loads(os.environ.get(PLAN_VAR) or "{}")
    if plan.get("block_transformers", True):
        # bot.cli imports transformers only to quiet its logging (~1 s of start-up); the fake embedder never
        # needs it. A None entry makes `import transformers` raise ImportError, which the CLI ignores.
        sys.modules["transformers"] = None  # type: ignore[assignment]
    import bot.cli  # noqa: F401 - import the real modules before patching them
    import bot.index  # noqa: F401
    import bot.service  # noqa: F401
    import bot.store  # noqa: F401
    import bot.vectors  # noqa: F401

    for fault in plan.get("faults", []):
        _install_fault(fault, plan.get("log"))
    ready = plan.get("ready")
    if ready:
        Path(ready + ".part").write_text(repr(time.monotonic()))
        _os_replace(ready + ".part", ready)
    from bot.cli import main

    return main(argv)


@dataclass
class ChildResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    hits: list[str] = field(default_factory=list)
    op_seconds: float | None = None  # READY -> exit (or kill)
    killed: bool = False  # died of SIGKILL (its own fault or our timer)

    @property
    def json_lines(self) -> list[dict]:
        out = []
        for line in self.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line cut by the kill
        return out


def run_child(tree: Tree, args: list[str], faults: list[dict] = (), *, kill_after: float | None = None,
              timeout: float = 120, block_transformers: bool = True, real_cli: bool = False) -> ChildResult:
    """Run `bot.cli.main(args)` in a child process with `faults` installed.

    kill_after: SIGKILL the child this many seconds after it reported READY (i.e. after interpreter start-up,
    right before `main()`), unless it has exited already. real_cli: run `python -m bot` itself (no runner,
    no faults; kill_after then counts from the start of the process)."""
    work = tree.root / ".fault"
    work.mkdir(exist_ok=True)
    stamp = f"{time.monotonic_ns()}"
    ready, log = work / f"ready-{stamp}", work / f"log-{stamp}"
    plan = {"faults": list(faults), "ready": str(ready), "log": str(log), "block_transformers": block_transformers}
    cmd = [sys.executable, "-m", "bot", *args] if real_cli else [sys.executable, str(Path(__file__)), *args]
    env = tree.env(**{PLAN_VAR: json.dumps(plan)})
    t_start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=tree.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    t_ready = None
    try:
        if kill_after is not None:
            deadline = time.monotonic() + timeout
            if real_cli:
                t_ready = t_start
            else:
                while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.002)
                t_ready = float(ready.read_text()) if ready.exists() else time.monotonic()
            wait = t_ready + kill_after - time.monotonic()
            if wait > 0:
                try:
                    proc.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    pass
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        raise AssertionError(f"child {args} timed out after {timeout} s:\n{stderr[-3000:]}")
    finally:
        try:  # the PDF workers the child started (same session) must not outlive it
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    t_end = time.monotonic()
    if t_ready is None and ready.exists():
        t_ready = float(ready.read_text())
    hits = []
    if log.exists():
        hits = [json.loads(line)["hit"] for line in log.read_text().splitlines() if line.strip()]
    return ChildResult(args=list(args), returncode=proc.returncode, stdout=stdout, stderr=stderr, hits=hits,
                       op_seconds=(t_end - t_ready) if t_ready is not None else None,
                       killed=proc.returncode == -signal.SIGKILL)


# --------------------------------------------------------------------------------------------------
# The checker


@dataclass
class IndexState:
    generation: Path
    docs: dict[str, dict]  # doc_id -> {sha256, source_key, origin, source_path, chunks}
    tombstones: set[str]
    chunk_ids: set[int]
    leftovers: list[str]  # tmp-* / .current-* / non-current generations / *.tmp files in the generation
    stale: tuple[str, ...] = ()  # derived files that disagreed with SQLite before the open repaired them
    orphan_uploads: list[str] = field(default_factory=list)  # files in uploads/ no document points at

    @property
    def shas(self) -> set[str]:
        return {d["sha256"] for d in self.docs.values()}


def leftovers(index: Path, generation: Path | None) -> list[str]:
    out = [p.name for p in index.glob("tmp-*")] + [p.name for p in index.glob(".current-*")]
    gens = index / "generations"
    if gens.is_dir():
        for p in gens.iterdir():
            if generation is None or p.resolve() != generation.resolve():
                out.append(f"generations/{p.name}")
    if generation is not None:
        out += [f"current/{p.name}" for p in generation.glob("*.tmp")]
    return sorted(out)


def stale_derived_files(generation: Path, chunk_ids: set[int], docs: dict[str, dict]) -> tuple[str, ...]:
    """Which derived files disagree with SQLite right now: "faiss" (unreadable, or not exactly the chunk ids),
    "sidecar" (vectors.json names another store version or count), "manifest" (other documents or version)."""
    import faiss

    db = sqlite3.connect(f"file:{generation / 'index.sqlite'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key='vectors_version'").fetchone()
    finally:
        db.close()
    version = int(row[0]) if row else 0
    stale = []
    try:
        index = faiss.read_index(str(generation / "vectors.faiss"))
        if set(int(i) for i in faiss.vector_to_array(index.id_map)) != chunk_ids:
            stale.append("faiss")
    except Exception:  # noqa: BLE001
        stale.append("faiss")
    try:
        side = json.loads((generation / "vectors.json").read_text())
        if side.get("version") != version or side.get("count") != len(chunk_ids):
            stale.append("sidecar")
    except (OSError, ValueError):
        stale.append("sidecar")
    try:
        manifest = json.loads((generation / "manifest.json").read_text())
        if manifest.get("vectors_version") != version or manifest.get("documents") != {
                k: d["sha256"] for k, d in docs.items()}:
            stale.append("manifest")
    except (OSError, ValueError):
        stale.append("manifest")
    return tuple(sorted(stale))


def check_sqlite(db: Path, ref_chunks: dict[str, int] | None) -> tuple[dict[str, dict], set[int], set[str]]:
    """The source of truth must be consistent on its own (no repair): whole documents, FTS rows, no orphans."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", f"{db}: integrity_check failed"
        docs = {r[0]: {"sha256": r[1], "source_key": r[2], "origin": r[3], "source_path": r[4], "chunks": r[5]}
                for r in conn.execute("SELECT doc_id, sha256, source_key, origin, source_path, chunks FROM documents")}
        per_doc = dict(conn.execute("SELECT doc_id, COUNT(*) FROM chunks GROUP BY doc_id").fetchall())
        chunk_ids = {r[0] for r in conn.execute("SELECT id FROM chunks")}
        fts_ids = {r[0] for r in conn.execute("SELECT rowid FROM chunks_fts")}
        tombstones = {r[0] for r in conn.execute("SELECT source_key FROM tombstones")}
    finally:
        conn.close()
    orphans = set(per_doc) - set(docs)
    assert not orphans, f"chunk rows of documents that do not exist: {sorted(orphans)}"
    for doc_id, d in docs.items():
        assert per_doc.get(doc_id, 0) == d["chunks"], (
            f"partial document {doc_id}: documents.chunks={d['chunks']} but {per_doc.get(doc_id, 0)} chunk rows")
        if ref_chunks is not None:
            assert d["sha256"] in ref_chunks, f"{doc_id}: content {d['sha256'][:12]} is not one of the test files"
            assert d["chunks"] == ref_chunks[d["sha256"]], (
                f"partial document {doc_id}: {d['chunks']} chunks, a clean build has {ref_chunks[d['sha256']]}")
    assert fts_ids == chunk_ids, (
        f"FTS rows != chunk rows: {len(fts_ids - chunk_ids)} extra, {len(chunk_ids - fts_ids)} missing")
    shas = [d["sha256"] for d in docs.values()]
    assert len(shas) == len(set(shas)), "the same content is indexed twice"
    return docs, chunk_ids, tombstones


def check_index(index: Path, ref_chunks: dict[str, int] | None = None) -> IndexState | None:
    """Check an index after a fault. Returns None if there is no current generation (never built).

    1. SQLite alone (before anything repairs the derived files) is consistent and holds whole documents.
    2. Opening the generation (which repairs FAISS + manifest) succeeds; then FAISS ids == chunk ids, the
       manifest lists exactly the SQLite documents and hashes, and the health check's strict open passes.
    """
    import faiss

    from bot.index import IndexLayout, open_generation

    layout = IndexLayout(index)
    target = layout.current_target()
    if target is None:
        return None
    docs, chunk_ids, tombstones = check_sqlite(target / "index.sqlite", ref_chunks)
    stale = stale_derived_files(target, chunk_ids, docs)
    gen = open_generation(target, MODEL)
    try:
        ids = set(int(i) for i in faiss.vector_to_array(gen.vectors.index.id_map))
        assert gen.vectors.ntotal == len(chunk_ids), (
            f"FAISS has {gen.vectors.ntotal} vectors, SQLite {len(chunk_ids)} chunks")
        assert ids == chunk_ids, (
            f"FAISS ids != chunk ids ({len(ids - chunk_ids)} extra, {len(chunk_ids - ids)} missing)")
        assert gen.store.doc_ids() == set(docs)
    finally:
        gen.close()
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["model"] == MODEL
    assert manifest["documents"] == {k: d["sha256"] for k, d in docs.items()}, "manifest documents != SQLite"
    assert manifest["document_count"] == len(docs) and manifest["chunk_count"] == len(chunk_ids)
    side = json.loads((target / "vectors.json").read_text())
    assert side["count"] == len(chunk_ids)
    assert not stale_derived_files(target, chunk_ids, docs), "open_generation did not repair the derived files"
    strict = open_generation(target, MODEL, repair=False)  # what `python -m bot health` does
    strict.close()
    referenced = {Path(d["source_path"]).name for d in docs.values() if d["origin"] == "upload"}
    orphans = sorted(p.name for p in (index / "uploads").glob("*") if p.name not in referenced)
    return IndexState(generation=target, docs=docs, tombstones=tombstones, chunk_ids=chunk_ids,
                      leftovers=leftovers(index, target), stale=stale, orphan_uploads=orphans)


def sha256_file(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
