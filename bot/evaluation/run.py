"""Run an evaluation: this engine (hybrid), the naive baseline, dense only and keyword only, over the
same documents in the same run.

With `docs`, a scratch index is built from those folders alone (PDF, Markdown, text; no shipped corpus),
optionally after turning Markdown and text into PDFs the way an organizer would upload them.
"""
from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..ingest.parse import SUPPORTED_SUFFIXES, Limits, parse_file, pdf_pages_to_document, read_pdf
from .baseline import NaiveHybrid
from .scoring import evaluate

ROWS = ("engine", "naive", "dense", "keyword")


def _files(dirs: list[Path]) -> list[Path]:
    out = []
    for d in dirs:
        d = Path(d)
        if d.is_file():
            out.append(d)
            continue
        if not d.is_dir():
            raise FileNotFoundError(f"--docs {d}: no such folder")
        out.extend(sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
                          and f.name.lower() != "readme.md" and not f.name.startswith(".")))
    return out


@contextmanager
def scratch_service(settings, docs: list[Path], *, as_pdf: bool = False, embedder=None):
    """A Service over a temporary index holding only `docs`; yields (service, {file name or stem: doc_id})."""
    from ..service import Service, _default_embedder

    work = Path(tempfile.mkdtemp(prefix="eval-"))
    try:
        empty = work / "corpus"
        empty.mkdir()
        s = settings.with_(index_dir=work / "index", corpus_dir=empty)
        svc = Service(s, embedder or _default_embedder(s))
        files = _files(docs)
        if as_pdf:
            from .topdf import file_to_pdf

            pdf_dir = work / "pdf"
            pdf_dir.mkdir()
            files = [file_to_pdf(f, pdf_dir) for f in files]
        doc_ids: dict[str, str] = {}
        for f in files:
            r = svc.ingest_paths([f])[0]
            if r.status == "refused":
                raise ValueError(f"{f.name} was refused: {r.reason}")
            doc_ids[f.name] = doc_ids[f.stem] = r.doc_id
        try:
            yield svc, doc_ids
        finally:
            svc.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def pdf_extracts(svc) -> dict:
    """doc_id -> `PdfExtract` (the page texts indexing read) of every indexed PDF, each read once."""
    limits = Limits.from_settings(svc.settings)
    out = {}
    for row in svc._current().store.document_rows():
        path = Path(row["source_path"])
        if path.suffix.lower() == ".pdf" and path.is_file():
            out[row["doc_id"]] = read_pdf(path, limits)
    return out


def baseline_for(svc, extracts: dict | None = None) -> NaiveHybrid:
    """The naive hybrid over exactly the documents the service has indexed (PDFs from `extracts` when given)."""
    gen = svc._current()
    limits = Limits.from_settings(svc.settings)
    extracts = extracts or {}
    documents = []
    for row in gen.store.document_rows():
        ex = extracts.get(row["doc_id"])
        doc = pdf_pages_to_document(ex.pages, ex.meta) if ex else parse_file(Path(row["source_path"]), limits)
        documents.append((row["doc_id"], doc.text))
    return NaiveHybrid(svc.embedder, documents)


class _Mode:
    def __init__(self, svc, mode):
        self.svc, self.mode = svc, mode

    def ask(self, question, history=(), mode=None):
        return self.svc.ask(question, history=history, mode=self.mode)


def run(svc, items: list[dict], rows=ROWS, doc_ids: dict[str, str] | None = None):
    """Score each row over `items`; returns [EvalResult]."""
    svc.ask("warm up")  # first call pays one-off costs; not a member's question
    extracts = pdf_extracts(svc)
    pages = {doc_id: ex.pages for doc_id, ex in extracts.items()} or None  # quotes are checked on their pages
    results = []
    for row in rows:
        if row == "naive":
            results.append(evaluate(baseline_for(svc, extracts), items, doc_ids=doc_ids, label="naive"))
        else:
            mode = "hybrid" if row == "engine" else row
            results.append(evaluate(_Mode(svc, mode), items, doc_ids=doc_ids, label=row, pages=pages))
    return results
