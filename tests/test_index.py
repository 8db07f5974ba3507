"""bot.service / bot.index / bot.store / bot.vectors with the fake embedder: ingest, replace, refuse, remove,
rebuild (atomic swap, cache, failure), repair, manifest, uploads, concurrency."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.embedding import HashEmbedder
from bot.errors import BusyError, IndexModelMismatchError, NotFoundError
from bot.index import IndexLayout
from bot.service import Service

from conftest import TEST_GUILD_2023, TINY_CORPUS

NEW_DOC = """---
title: Sample Crew Agreement
union: Sample Crew
year: 2025
---
## Artificial intelligence
The employer must give the crew thirty days notice before introducing generative artificial intelligence tools.
No crew member may be laid off because of generative artificial intelligence.
"""

NEW_DOC_EDITED = NEW_DOC.replace("thirty days notice", "sixty days notice").replace(
    "No crew member may be laid off", "No crew member may be dismissed")


# --------------------------------------------------------------------------------------------------
# helpers


def current_dir(settings) -> Path:
    target = IndexLayout(settings.index_dir).current_target()
    assert target is not None, "no current generation"
    return target


def disk_state(settings) -> dict:
    """What is on disk in the current generation: SQLite rows, FTS rows, FAISS file and sidecar."""
    import faiss

    gen = current_dir(settings)
    conn = sqlite3.connect(f"file:{gen / 'index.sqlite'}?mode=ro", uri=True)
    try:
        docs = {r[0]: r[1] for r in conn.execute("SELECT doc_id, sha256 FROM documents")}
        chunk_ids = {r[0] for r in conn.execute("SELECT id FROM chunks")}
        chunk_texts = {r[0]: r[1] for r in conn.execute("SELECT id, text FROM chunks")}
        fts_ids = {r[0] for r in conn.execute("SELECT rowid FROM chunks_fts")}
        per_doc = {r[0]: r[1] for r in conn.execute("SELECT doc_id, COUNT(*) FROM chunks GROUP BY doc_id")}
        declared = {r[0]: r[1] for r in conn.execute("SELECT doc_id, chunks FROM documents")}
        version = int(conn.execute("SELECT value FROM meta WHERE key='vectors_version'").fetchone()[0])
    finally:
        conn.close()
    index = faiss.read_index(str(gen / "vectors.faiss"))
    faiss_ids = set(faiss.vector_to_array(index.id_map).tolist()) if hasattr(index, "id_map") else None
    side = json.loads((gen / "vectors.json").read_text())
    return {
        "dir": gen, "docs": docs, "chunk_ids": chunk_ids, "chunk_texts": chunk_texts, "fts_ids": fts_ids,
        "per_doc": per_doc, "declared": declared, "version": version, "faiss_ntotal": index.ntotal,
        "faiss_ids": faiss_ids, "sidecar": side, "manifest": json.loads((gen / "manifest.json").read_text()),
    }


def assert_consistent(settings, svc=None) -> dict:
    st = disk_state(settings)
    assert st["fts_ids"] == st["chunk_ids"], "FTS rows and chunk rows disagree"
    assert st["faiss_ntotal"] == len(st["chunk_ids"]), "FAISS file and SQLite disagree"
    if st["faiss_ids"] is not None:
        assert st["faiss_ids"] == st["chunk_ids"]
    assert st["sidecar"]["version"] == st["version"]
    assert st["sidecar"]["count"] == st["faiss_ntotal"]
    assert {d: st["per_doc"].get(d, 0) for d in st["docs"]} == st["declared"]
    assert set(st["manifest"]["documents"]) == set(st["docs"])
    if svc is not None:
        status = svc.status()
        assert status["documents"] == len(st["docs"])
        assert status["chunks"] == len(st["chunk_ids"])
        assert svc._current().vectors.ntotal == len(st["chunk_ids"])  # the live FAISS index too
    return st


def open_service(settings, **kw) -> Service:
    return Service.open(settings, embedder=HashEmbedder(**kw))


@pytest.fixture
def settings(hash_settings, tiny_corpus):
    return hash_settings()


@pytest.fixture
def svc(settings):
    s = open_service(settings)
    yield s
    s.close()


@pytest.fixture
def incoming(tmp_path) -> Path:
    d = tmp_path / "incoming"
    d.mkdir()
    return d


def doc_by_title(svc, title):
    matches = [d for d in svc.documents() if d.title == title]
    assert len(matches) == 1, [d.title for d in svc.documents()]
    return matches[0]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------------
# open / first build


def test_open_builds_index_from_corpus(svc, settings):
    st = assert_consistent(settings, svc)
    titles = sorted(d.title for d in svc.documents())
    assert titles == sorted(["Test Guild 2023 Agreement", "Test Guild 2020 Agreement",
                             "Other Guild 2024 Writers Agreement", "Example State Replica Law"])
    assert all(n > 0 for n in st["declared"].values())
    ids = {d.doc_id for d in svc.documents()}
    assert "test-guild-2023-agreement" in ids  # doc ids are slugs of titles
    for d in svc.documents():
        assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", d.doc_id)


# --------------------------------------------------------------------------------------------------
# ingest: added / unchanged / replaced


def test_ingest_added_then_unchanged(svc, settings, incoming):
    f = incoming / "crew.md"
    f.write_text(NEW_DOC)
    before = disk_state(settings)
    (r,) = svc.ingest_paths([f])
    assert r.status == "added", r
    assert r.doc_id == "sample-crew-agreement"
    assert r.chunks > 0 and r.reason == ""
    st = assert_consistent(settings, svc)
    assert len(st["docs"]) == len(before["docs"]) + 1
    assert st["docs"][r.doc_id] == sha(f)

    (again,) = svc.ingest_paths([f])
    assert again.status == "unchanged"
    assert again.doc_id == r.doc_id
    after = assert_consistent(settings, svc)
    assert after["chunk_ids"] == st["chunk_ids"] and after["version"] == st["version"]


def test_edited_upload_is_replaced_and_old_chunks_gone(svc, settings, incoming):
    f = incoming / "crew.md"
    f.write_text(NEW_DOC)
    (first,) = svc.ingest_paths([f])
    old = disk_state(settings)
    old_ids = {i for i, t in old["chunk_texts"].items() if "thirty days" in t}
    assert old_ids
    uploads_before = set(IndexLayout(settings.index_dir).uploads.iterdir())

    f.write_text(NEW_DOC_EDITED)  # same path, same title, new content
    (r,) = svc.ingest_paths([f])
    assert r.status == "replaced", r
    assert r.doc_id == first.doc_id
    st = assert_consistent(settings, svc)
    texts = " ".join(st["chunk_texts"].values())
    assert "thirty days" not in texts and "laid off" not in texts
    assert "sixty days" in texts
    assert len(st["chunk_ids"]) == len(old["chunk_ids"]) - len(old_ids) + r.chunks - (
        old["per_doc"][first.doc_id] - len(old_ids))
    assert len(st["docs"]) == len(old["docs"])
    assert st["docs"][r.doc_id] == sha(f)
    # the stored copy of the old version is gone; exactly one copy of the new one
    uploads_after = set(IndexLayout(settings.index_dir).uploads.iterdir())
    assert len(uploads_after) == len(uploads_before)
    stored = [p for p in uploads_after if p.read_bytes() == f.read_bytes()]
    assert len(stored) == 1
    # and the answer uses the new text
    ans = svc.ask("what notice must the employer give the crew before generative artificial intelligence tools?")
    assert any("sixty days" in c.text for c in ans.citations), ans.text
    assert not any("thirty days" in c.text for c in ans.citations)


def test_edited_corpus_file_is_replaced(svc, settings, tiny_corpus):
    path = tiny_corpus / "test-guild-2023.md"
    before = doc_by_title(svc, "Test Guild 2023 Agreement")
    path.write_text(TEST_GUILD_2023.replace("48 hours notice", "72 hours notice"))
    (r,) = svc.ingest_paths([path])
    assert r.status == "replaced"
    assert r.doc_id == before.doc_id
    st = assert_consistent(settings, svc)
    texts = " ".join(st["chunk_texts"].values())
    assert "72 hours notice" in texts and "48 hours notice" not in texts
    assert len(svc.documents()) == len(TINY_CORPUS)


# --------------------------------------------------------------------------------------------------
# refused files


def _refusal_cases():
    cases = [
        ("empty.md", lambda: b"", "empty"),
        ("blank.txt", lambda: b"\n \n\t\n", "empty"),
        ("binary.md", lambda: b"\x00\x01\x02binary\x00" * 50, "not_supported"),
        ("latin1.txt", lambda: "caf\xe9 r\xe9sum\xe9 ".encode("latin-1") * 20, "not_supported"),
    ]
    try:
        import pdfgen
    except ImportError:  # pragma: no cover - pdfgen is owned by the PDF tests
        return cases
    cases += [
        ("picture.pdf", pdfgen.png_bytes, "not_pdf"),
        ("locked.pdf", lambda: pdfgen.text_pdf(["secret terms"], owner_password="o", user_password="member"),
         "encrypted"),
    ]
    return cases


@pytest.mark.parametrize("name, make, code", _refusal_cases(), ids=[c[0] for c in _refusal_cases()])
def test_refused_file_leaves_index_unchanged(svc, settings, incoming, name, make, code):
    f = incoming / name
    f.write_bytes(make())
    before = disk_state(settings)
    uploads_before = sorted(IndexLayout(settings.index_dir).uploads.iterdir())
    docs_before = [d.doc_id for d in svc.documents()]

    (r,) = svc.ingest_paths([f])
    assert r.status == "refused"
    assert r.reason_code == code, (r.reason_code, r.reason)
    assert r.reason and len(r.reason) > 15  # a sentence a person can act on
    assert r.doc_id == "" and r.chunks == 0

    after = assert_consistent(settings, svc)
    assert after["dir"] == before["dir"]
    assert after["chunk_ids"] == before["chunk_ids"]
    assert after["docs"] == before["docs"]
    assert after["version"] == before["version"]
    assert [d.doc_id for d in svc.documents()] == docs_before
    assert sorted(IndexLayout(settings.index_dir).uploads.iterdir()) == uploads_before


def test_missing_file_is_refused_not_raised(svc, incoming):
    (r,) = svc.ingest_paths([incoming / "does-not-exist.md"])
    assert r.status == "refused"
    assert r.reason


def test_one_bad_file_does_not_stop_the_others(svc, settings, incoming):
    good1 = incoming / "a-good.md"
    good1.write_text(NEW_DOC)
    bad = incoming / "b-bad.md"
    bad.write_bytes(b"\x00\xff\x00" * 30)
    good2 = incoming / "c-good.txt"
    good2.write_text("Second Upload\n\nThe studio must pay residuals when a digital replica is reused.\n")
    results = svc.ingest_paths([good1, bad, good2])
    assert [r.status for r in results] == ["added", "refused", "added"]
    # a folder works the same way (files found in it, in name order)
    folder_results = svc.ingest_paths([incoming])
    assert [r.status for r in folder_results] == ["unchanged", "refused", "unchanged"]
    assert_consistent(settings, svc)


# --------------------------------------------------------------------------------------------------
# remove, tombstones


def test_remove_deletes_document_fully(svc, settings):
    doc = doc_by_title(svc, "Other Guild 2024 Writers Agreement")
    before = disk_state(settings)
    info = svc.remove(doc.doc_id)
    assert info.doc_id == doc.doc_id
    st = assert_consistent(settings, svc)
    assert doc.doc_id not in st["docs"]
    assert len(st["chunk_ids"]) == len(before["chunk_ids"]) - before["per_doc"][doc.doc_id]
    assert "literary material" not in " ".join(st["chunk_texts"].values())
    assert doc.doc_id not in {d.doc_id for d in svc.documents()}
    ans = svc.ask("is generative artificial intelligence a writer? literary material")
    assert all(c.doc_id != doc.doc_id for c in ans.citations)
    with pytest.raises(NotFoundError):
        svc.remove(doc.doc_id)


def test_remove_unknown_id(svc):
    with pytest.raises(NotFoundError) as exc:
        svc.remove("no-such-document")
    assert "no-such-document" in str(exc.value)


def test_rebuild_does_not_resurrect_removed_corpus_document_but_keeps_uploads(svc, settings, incoming):
    f = incoming / "crew.md"
    f.write_text(NEW_DOC)
    (up,) = svc.ingest_paths([f])
    assert up.status == "added"
    f.unlink()  # the original is gone: the index keeps its own copy
    removed = doc_by_title(svc, "Other Guild 2024 Writers Agreement")
    svc.remove(removed.doc_id)

    rep = svc.rebuild()
    ids = {d.doc_id for d in svc.documents()}
    assert removed.doc_id not in ids, "a removed corpus document came back after rebuild"
    assert up.doc_id in ids, "an uploaded document was lost by rebuild"
    assert rep.documents == len(TINY_CORPUS)  # 4 corpus - 1 removed + 1 upload
    st = assert_consistent(settings, svc)
    assert "literary material" not in " ".join(st["chunk_texts"].values())
    # survives a second rebuild too (the tombstone is carried into the new generation)
    svc.rebuild()
    assert removed.doc_id not in {d.doc_id for d in svc.documents()}
    # and re-ingesting the corpus file on purpose brings it back
    (r,) = svc.ingest_paths([settings.corpus_dir / "other-guild-2024.md"])
    assert r.status == "added"
    svc.rebuild()
    assert "other-guild-2024-writers-agreement" in {d.doc_id for d in svc.documents()}


def test_removed_upload_is_not_resurrected(svc, incoming):
    f = incoming / "crew.md"
    f.write_text(NEW_DOC)
    (up,) = svc.ingest_paths([f])
    svc.remove(up.doc_id)
    svc.rebuild()
    assert up.doc_id not in {d.doc_id for d in svc.documents()}


# --------------------------------------------------------------------------------------------------
# rebuild


def _chunk_texts_by_doc(settings):
    gen = current_dir(settings)
    conn = sqlite3.connect(f"file:{gen / 'index.sqlite'}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT doc_id, ordinal, text, section, page_start, page_end, char_start, char_end FROM chunks "
            "ORDER BY doc_id, ordinal")]
    finally:
        conn.close()


def test_rebuild_with_nothing_changed_embeds_nothing(svc, settings):
    texts_before = _chunk_texts_by_doc(settings)
    docs_before = {d.doc_id: d.sha256 for d in svc.documents()}
    calls = []
    real_encode = svc.embedder.encode
    svc.embedder.encode = lambda texts, *a, **k: calls.append(len(texts)) or real_encode(texts, *a, **k)
    rep = svc.rebuild()
    assert rep.embedded == 0
    assert sum(calls) == 0, "rebuild re-embedded unchanged chunks"
    assert rep.documents == len(TINY_CORPUS)
    assert rep.chunks == len(texts_before)
    assert _chunk_texts_by_doc(settings) == texts_before
    assert {d.doc_id: d.sha256 for d in svc.documents()} == docs_before
    assert_consistent(settings, svc)


def test_rebuild_embeds_only_new_text(svc, settings, tiny_corpus):
    (tiny_corpus / "crew.md").write_text(NEW_DOC)
    rep = svc.rebuild()
    n_new = next(d.chunks for d in svc.documents() if d.title == "Sample Crew Agreement")
    assert rep.embedded == n_new


def test_rebuild_swaps_generation_atomically(svc, settings):
    layout = IndexLayout(settings.index_dir)
    old = layout.current_target()
    assert layout.current.is_symlink()
    stages = []
    rep = svc.rebuild(progress=lambda p: stages.append(p.stage))
    new = layout.current_target()
    assert new != old
    assert new.parent == layout.generations
    assert layout.current.is_symlink()
    assert not old.exists(), "the previous generation was not cleaned up"
    assert sorted(p.name for p in layout.generations.iterdir()) == [new.name]
    assert not list(settings.index_dir.glob("tmp-*")), "temporary build dir left behind"
    assert not list(settings.index_dir.glob(".current-*"))
    assert stages[-1] == "done" and "swapping" in stages
    assert rep.documents == len(TINY_CORPUS)
    assert_consistent(settings, svc)
    assert svc.ask("what notice is required before a scanning session for a digital replica?").citations


def test_failed_rebuild_keeps_old_index_serving(svc, settings, tiny_corpus, monkeypatch):
    layout = IndexLayout(settings.index_dir)
    old = layout.current_target()
    before = disk_state(settings)
    docs_before = [d.doc_id for d in svc.documents()]
    (tiny_corpus / "crew.md").write_text(NEW_DOC)  # something new, so the build must embed

    real_encode = svc.embedder.encode
    broken = {"on": True}

    def boom(texts, *a, **k):
        if broken["on"]:
            raise RuntimeError("embedding backend exploded")
        return real_encode(texts, *a, **k)

    monkeypatch.setattr(svc.embedder, "encode", boom)
    with pytest.raises(RuntimeError, match="exploded"):
        svc.rebuild()
    broken["on"] = False  # the backend recovers (queries need it too)
    assert not svc.rebuilding
    assert layout.current_target() == old
    assert not list(settings.index_dir.glob("tmp-*")), "temporary build dir left behind after a failure"
    assert sorted(p.name for p in layout.generations.iterdir()) == [old.name]
    assert [d.doc_id for d in svc.documents()] == docs_before
    assert disk_state(settings)["chunk_ids"] == before["chunk_ids"]
    ans = svc.ask("what notice is required before a scanning session for a digital replica?")
    assert ans.citations and not ans.abstained
    # once the problem is gone, a rebuild goes through and picks up the new file
    svc.rebuild()
    assert "Sample Crew Agreement" in {d.title for d in svc.documents()}
    assert_consistent(settings, svc)


def test_failed_rebuild_in_parsing_stage_keeps_old_index(svc, settings, monkeypatch):
    import bot.service as service_mod

    layout = IndexLayout(settings.index_dir)
    old = layout.current_target()

    def broken_parse(*a, **k):
        raise MemoryError("simulated")

    monkeypatch.setattr(service_mod, "parse_file", broken_parse)
    with pytest.raises(MemoryError):
        svc.rebuild()
    assert layout.current_target() == old
    assert not list(settings.index_dir.glob("tmp-*"))
    assert svc.ask("what notice is required before a scanning session for a digital replica?").citations


# --------------------------------------------------------------------------------------------------
# model mismatch, repair


def test_index_built_with_another_model_is_refused(svc, settings):
    svc.close()
    with pytest.raises(IndexModelMismatchError) as exc:
        open_service(settings, name="hash-embedder-v2")
    msg = str(exc.value)
    assert "python -m bot rebuild" in msg
    assert "hash-embedder-v1" in msg and "hash-embedder-v2" in msg


def test_rebuild_with_new_model_replaces_other_model_index(svc, settings, incoming):
    f = incoming / "crew.md"
    f.write_text(NEW_DOC)
    (up,) = svc.ingest_paths([f])
    svc.close()
    other = Service(settings.with_(embedding_model="hash-embedder-v2"), HashEmbedder(name="hash-embedder-v2"))
    try:
        other.rebuild()
        assert disk_state(settings)["manifest"]["model"] == "hash-embedder-v2"
        titles = {d.title for d in other.documents()}
        assert "Sample Crew Agreement" in titles, "uploads lost when rebuilding for a new model"
        assert len(titles) == len(TINY_CORPUS) + 1
    finally:
        other.close()


def test_rebuild_for_new_model_keeps_upload_metadata_and_tombstones(svc, settings):
    up = svc.ingest_bytes(b"The studio must pay residuals when a digital replica is reused in another film.\n",
                          "memo.txt", meta={"title": "Residuals Memo", "union": "Sample Crew", "year": "2025"})
    assert up.status == "added" and up.doc_id == "residuals-memo"
    removed = doc_by_title(svc, "Other Guild 2024 Writers Agreement")
    svc.remove(removed.doc_id)
    svc.close()
    other = Service(settings.with_(embedding_model="hash-embedder-v2"), HashEmbedder(name="hash-embedder-v2"))
    try:
        other.rebuild()
        docs = {d.doc_id: d for d in other.documents()}
        assert removed.doc_id not in docs, "a removed corpus document came back after a model change"
        assert "residuals-memo" in docs, sorted(docs)
        assert docs["residuals-memo"].title == "Residuals Memo"
        assert docs["residuals-memo"].union == "Sample Crew" and docs["residuals-memo"].year == 2025
    finally:
        other.close()


def test_bad_year_override_does_not_raise(svc, incoming):
    f = incoming / "crew.md"
    f.write_text(NEW_DOC)
    results = svc.ingest_paths([f], meta={"year": "next year"})
    assert len(results) == 1 and results[0].status in ("added", "refused")


def test_damaged_database_is_reported_and_rebuild_recovers(svc, settings, incoming):
    from bot.errors import IndexCorruptError

    up = svc.ingest_bytes(NEW_DOC.encode(), "crew.md")
    gen = current_dir(settings)
    svc.close()
    for p in gen.glob("index.sqlite*"):
        p.unlink()
    (gen / "index.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(IndexCorruptError) as exc:
        open_service(settings)
    assert "damaged" in str(exc.value) or "index" in str(exc.value).lower()
    fresh = Service(settings, HashEmbedder())
    try:
        fresh.rebuild()
        titles = {d.title for d in fresh.documents()}
        assert {"Test Guild 2023 Agreement", "Sample Crew Agreement"} <= titles  # corpus + kept upload file
        assert_consistent(settings, fresh)
        assert up.status == "added"
    finally:
        fresh.close()


def test_missing_vector_file_is_rebuilt_from_sqlite(svc, settings):
    st = disk_state(settings)
    svc.close()
    (st["dir"] / "vectors.faiss").unlink()
    s2 = open_service(settings)
    try:
        after = assert_consistent(settings, s2)
        assert after["faiss_ntotal"] == len(st["chunk_ids"])
        ans = s2.ask("what notice is required before a scanning session for a digital replica?")
        assert ans.citations and "48 hours" in ans.text
    finally:
        s2.close()


def test_stale_vector_file_is_repaired(svc, settings, incoming):
    gen = current_dir(settings)
    stale = {n: (gen / n).read_bytes() for n in ("vectors.faiss", "vectors.json")}
    f = incoming / "crew.md"
    f.write_text(NEW_DOC)
    (r,) = svc.ingest_paths([f])
    assert r.status == "added"
    svc.close()
    for n, data in stale.items():  # as if the process died before the vector file was saved
        (gen / n).write_bytes(data)
    s2 = open_service(settings)
    try:
        st = assert_consistent(settings, s2)
        assert r.doc_id in st["docs"]
        ans = s2.ask("what notice must the employer give the crew before generative artificial intelligence tools?")
        assert any(c.doc_id == r.doc_id for c in ans.citations), ans.text
    finally:
        s2.close()


def test_corrupt_vector_file_is_repaired(svc, settings):
    gen = current_dir(settings)
    svc.close()
    (gen / "vectors.faiss").write_bytes(b"not a faiss index at all")
    s2 = open_service(settings)
    try:
        assert_consistent(settings, s2)
        assert s2.ask("what notice is required before a scanning session for a digital replica?").citations
    finally:
        s2.close()


def test_manifest_describes_the_index(svc, settings, tiny_corpus, incoming):
    st = disk_state(settings)
    m = st["manifest"]
    assert m["model"] == "hash-embedder-v1"
    assert m["dimension"] == HashEmbedder().dimension
    assert m["chunk_tokens"] == settings.chunk_tokens
    assert m["chunk_overlap"] == settings.chunk_overlap
    built = dt.datetime.fromisoformat(m["built_at"])
    assert abs((dt.datetime.now(dt.timezone.utc) - built).total_seconds()) < 3600
    expected = {}
    for d in svc.documents():
        expected[d.doc_id] = d.sha256
    assert m["documents"] == expected
    corpus_hashes = {sha(p) for p in tiny_corpus.iterdir()}
    assert set(m["documents"].values()) == corpus_hashes
    # updated on every write
    f = incoming / "crew.md"
    f.write_text(NEW_DOC)
    (r,) = svc.ingest_paths([f])
    m2 = disk_state(settings)["manifest"]
    assert m2["documents"][r.doc_id] == sha(f)
    assert m2["model"] == m["model"] and m2["dimension"] == m["dimension"]


# --------------------------------------------------------------------------------------------------
# ingest_bytes (uploads)


def _all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_ingest_bytes_uses_a_generated_name(svc, settings, tmp_path):
    evil = "../../evil.md"
    r = svc.ingest_bytes(NEW_DOC.encode(), evil)
    assert r.status == "added", r
    assert not any(p.name == "evil.md" for p in _all_files(tmp_path)), "user filename used on disk"
    uploads = IndexLayout(settings.index_dir).uploads
    assert not (uploads / evil).resolve().exists()  # where a naive join would have written it
    stored = [p for p in uploads.iterdir() if p.read_bytes() == NEW_DOC.encode()]
    assert len(stored) == 1
    assert re.fullmatch(r"[0-9a-f]{16,}\.md", stored[0].name), stored[0].name
    info = next(d for d in svc.documents() if d.doc_id == r.doc_id)
    assert Path(info.source_path).resolve() == stored[0].resolve()
    assert "evil" not in info.source_path
    # kept across rebuilds
    svc.rebuild()
    assert r.doc_id in {d.doc_id for d in svc.documents()}


@pytest.mark.parametrize("name", ["../../../etc/passwd", "/abs/path/x.md", "..", "", "nul\x00byte.md", "a" * 300 + ".md"])
def test_ingest_bytes_odd_filenames(svc, tmp_path, name):
    r = svc.ingest_bytes(b"Odd Name Doc\n\nThe producer must obtain consent before any reuse of footage.\n", name)
    assert r.status == "added", r
    uploads = IndexLayout(svc.settings.index_dir).uploads
    for p in _all_files(tmp_path):
        assert p.name not in ("passwd", "x.md") and "\x00" not in p.name
    assert all(re.fullmatch(r"[0-9a-f]{16,}\.\w+", p.name) for p in uploads.iterdir())


def test_ingest_bytes_refuses_oversize(hash_settings, tiny_corpus):
    settings = hash_settings(max_upload_mb=0.001)  # ~1 KB
    s = open_service(settings)
    try:
        before = disk_state(settings)
        r = s.ingest_bytes(("The producer must obtain consent. " * 200).encode(), "big.md")
        assert r.status == "refused"
        assert r.reason_code == "too_large"
        assert "MB" in r.reason
        assert list(IndexLayout(settings.index_dir).uploads.iterdir()) == []
        assert disk_state(settings)["chunk_ids"] == before["chunk_ids"]
    finally:
        s.close()


def test_ingest_bytes_refused_content_stores_nothing(svc, settings):
    r = svc.ingest_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "contract.pdf")
    assert r.status == "refused" and r.reason
    assert list(IndexLayout(settings.index_dir).uploads.iterdir()) == []


def test_ingest_bytes_same_content_twice_is_unchanged(svc, settings):
    a = svc.ingest_bytes(NEW_DOC.encode(), "crew.md")
    b = svc.ingest_bytes(NEW_DOC.encode(), "crew-copy.md")
    assert (a.status, b.status) == ("added", "unchanged")
    assert a.doc_id == b.doc_id
    assert len(list(IndexLayout(settings.index_dir).uploads.iterdir())) == 1


# --------------------------------------------------------------------------------------------------
# concurrency


def _big_corpus(corpus: Path, n: int = 40) -> None:
    for i in range(n):
        (corpus / f"filler-{i:02d}.md").write_text(
            f"---\ntitle: Filler Agreement {i}\nunion: Filler Union {i % 5}\nyear: {2000 + i}\n---\n"
            + "\n\n".join(f"## Part {p}\nClause {p} of filler agreement {i} covers working hours, meal breaks "
                          f"and travel for crew members in region {p}. Overtime is paid after ten hours."
                          for p in range(6)))


def test_concurrent_asks_during_rebuild(hash_settings, tiny_corpus):
    _big_corpus(tiny_corpus)
    settings = hash_settings()
    svc = open_service(settings)
    try:
        started = threading.Event()
        done = threading.Event()
        errors: list[BaseException] = []
        answers: list = []

        overlapped = threading.Event()
        during = []

        def slow_progress(p):
            started.set()
            # hold the build until the askers have been answered while it runs (bounded wait)
            if not overlapped.wait(20):
                overlapped.set()  # give up waiting once; the assertion below reports it

        def rebuild():
            try:
                svc.rebuild(progress=slow_progress)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                done.set()

        def asker(k):
            try:
                started.wait(10)
                n = 0
                while not done.is_set() or n < 3:
                    busy = svc.rebuilding
                    ans = svc.ask("what notice is required before a scanning session for a digital replica?")
                    answers.append(ans)
                    if busy and svc.rebuilding:
                        during.append(ans)
                        if len(during) >= 16:
                            overlapped.set()
                    n += 1
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        layout = IndexLayout(settings.index_dir)
        seen_targets: list = []

        def watcher():
            # `current` must name an existing generation at every instant of the swap
            while not done.is_set():
                target = layout.current_target()
                if target is None:  # resolved the old link just as it was cleaned up: resolve again
                    target = layout.current_target()
                seen_targets.append(target)

        old = layout.current_target()
        threads = [threading.Thread(target=asker, args=(k,)) for k in range(8)] + [threading.Thread(target=watcher)]
        for t in threads:
            t.start()
        rb = threading.Thread(target=rebuild)
        rb.start()
        rb.join(120)
        for t in threads:
            t.join(120)
        assert not rb.is_alive() and not any(t.is_alive() for t in threads)
        assert not errors, errors
        assert IndexLayout(settings.index_dir).current_target() != old
        assert len(answers) >= 8 * 3
        assert len(during) >= 16, "asks did not overlap the rebuild"
        assert seen_targets and None not in seen_targets
        for ans in answers:
            assert not ans.abstained and ans.citations, ans.text
            assert "48 hours" in ans.text
            for c in ans.citations:
                assert c.quote in c.text
        assert_consistent(settings, svc)
    finally:
        svc.close()


def test_second_rebuild_while_one_runs_is_busy(svc, settings):
    release = threading.Event()
    entered = threading.Event()
    result: dict = {}

    def blocking_progress(p):
        entered.set()
        release.wait(30)

    def first():
        try:
            result["report"] = svc.rebuild(progress=blocking_progress)
        except BaseException as exc:  # noqa: BLE001
            result["error"] = exc

    t = threading.Thread(target=first)
    t.start()
    try:
        assert entered.wait(30), "first rebuild never started"
        assert svc.rebuilding
        with pytest.raises(BusyError) as exc:
            svc.rebuild()
        assert str(exc.value)
        # reads keep working while the rebuild is held up
        assert svc.ask("what notice is required before a scanning session for a digital replica?").citations
    finally:
        release.set()
        t.join(60)
    assert "error" not in result, result.get("error")
    assert result["report"].documents == len(TINY_CORPUS)
    assert not svc.rebuilding
    svc.rebuild()  # and after it finished, a new one is allowed


def test_writes_from_two_service_instances_serialise(settings, incoming):
    """Two processes (here: two Service objects on one INDEX_DIR) writing one after the other both land."""
    a = open_service(settings)
    b = open_service(settings)
    try:
        f1 = incoming / "one.md"
        f1.write_text(NEW_DOC)
        f2 = incoming / "two.md"
        f2.write_text("# Second Upload\n\nThe studio must pay residuals when a digital replica is reused.\n")
        assert a.ingest_paths([f1])[0].status == "added"
        assert b.ingest_paths([f2])[0].status == "added"
        titles_a = {d.title for d in a.documents()}
        titles_b = {d.title for d in b.documents()}
        assert {"Sample Crew Agreement", "Second Upload"} <= titles_a
        assert titles_a == titles_b
        assert_consistent(settings)
        b.rebuild()
        assert {d.title for d in a.documents()} == titles_a  # a follows b's swap
        assert a.ask("residuals when a digital replica is reused").citations
    finally:
        a.close()
        b.close()
