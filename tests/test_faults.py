"""Fault injection: SIGKILL at exact and random points of `ingest`, `remove` and `rebuild`; a corrupt or
missing index at start; disk full during a build.

Every crash runs the real CLI code (`bot.cli.main`) in a child process (tests/faultlib.py as a script, with
the fake embedder EMBEDDING_MODEL=hash-embedder-v1) over a tree cloned from one template:

    corpus/    30 Markdown agreements + 1 PDF               (CORPUS_DIR)
    incoming/  16 Markdown + 1 PDF, ingested as uploads     (the `ingest` scenarios)
    index/     built from corpus/, + 4 uploads, then 1 corpus document and 1 upload removed

Deterministic kill points wrap one internal callable and SIGKILL the child on its Nth call (before or
after the original): before/after the SQLite commit, inside the SQLite transaction, between the FAISS save
and the manifest write, between publishing a generation and the symlink swap, during cleanup, file k of n.
Random kill points SIGKILL the child a random delay after it reaches `main()`, spread over the operation's
measured duration (seeded: FAULT_SEED, default 20240601).

After every kill, `faultlib.check_index` verifies: SQLite alone holds whole documents (chunk rows ==
documents.chunks == a clean build's count, FTS rows == chunk ids, no orphans); the generation opens; FAISS
ids == chunk ids; manifest.json == the SQLite documents and hashes; the strict (health) open passes. Then:
nothing acknowledged is lost (a file printed by `ingest --json`, a `remove`/`rebuild` that exited 0), `ask`
answers from the surviving documents, repeating the operation converges, and leftovers (tmp-* folders,
stray generations, *.tmp files) never affect serving and are gone after the next rebuild.

The whole module is `heavy` (about 2-3 minutes on 2 cores). Counts are printed at the end (to the terminal even
without -s) and recorded as the `fault_summary` property (user_properties + JUnit XML testsuite property).
"""
from __future__ import annotations

import collections
import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import faultlib as fl
from faultlib import MODEL, Tree, check_index, clone_tree, run_child, sha256_file

pytestmark = pytest.mark.heavy

SEED = int(os.environ.get("FAULT_SEED", "20240601"))
QUESTION = "Does the producer need clear and conspicuous consent for a digital replica?"
N_TIMED = {"ingest": 4, "remove": 2, "rebuild": 4}

# Filled by the tests, printed and recorded by test_zz_summary.
RESULTS: list[dict] = []


# --------------------------------------------------------------------------------------------------
# The template tree, built once


@dataclass
class World:
    template: Path
    ref_chunks: dict[str, int]  # sha256 -> chunk count of a clean build (whole-document check)
    base: set[str]  # shas in the template index
    base_docs: dict[str, dict]  # doc_id -> row
    incoming: list[Path]  # sorted, as `ingest incoming/` processes them (relative to the template)
    incoming_sha: dict[str, str]  # file name -> sha
    removed_ids: set[str]  # removed before the tests: must stay removed
    corpus_victim: str  # doc_id of a corpus document the remove scenarios remove
    upload_victim: str  # doc_id of an uploaded document
    edited_name: str  # corpus file the replace scenarios edit
    edited_old: str
    edited_new: str
    edited_text: str

    def sha_of_doc(self, doc_id: str) -> str:
        return self.base_docs[doc_id]["sha256"]

    def clone(self, tmp_path: Path, name: str = "tree") -> Tree:
        return clone_tree(self.template, tmp_path / name)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("fault-template")
    t = Tree(root / "tree")
    fl.write_docs(t.corpus, "c", 30, pdf_at=(10,))
    incoming = fl.write_docs(t.incoming, "n", 16, pdf_at=(8,))
    base_up = fl.write_docs(root / "base-up", "u", 4)
    edited_text = fl.markdown_doc("c", 5, variant="edited")
    (root / "edited").mkdir()
    (root / "edited" / "c-005-edited.md").write_text(edited_text, encoding="utf-8")

    svc = t.open_service(build_if_missing=True)
    try:
        ups = svc.ingest_paths(base_up)
        assert [r.status for r in ups] == ["added"] * 4
        by_key = {r["source_key"]: r["doc_id"] for r in svc._current().store.document_rows()}
        svc.remove(by_key["corpus:c-001.md"])
        svc.remove(ups[0].doc_id)
        removed = {by_key["corpus:c-001.md"], ups[0].doc_id}
        corpus_victim, upload_victim = by_key["corpus:c-003.md"], ups[2].doc_id
    finally:
        svc.close()
    state = check_index(t.index)
    assert state is not None and not state.leftovers

    # Reference: every test file ingested once into a scratch clone -> chunk count per content hash.
    ref = clone_tree(t.root, root / "ref")
    svc = ref.open_service()
    try:
        svc.ingest_paths([ref.incoming, *base_up, root / "edited" / "c-005-edited.md", ref.corpus / "c-001.md"])
        ref_chunks = {r["sha256"]: r["chunks"] for r in svc._current().store.document_rows()}
    finally:
        svc.close()
    for s in state.shas:
        assert ref_chunks[s] == next(d["chunks"] for d in state.docs.values() if d["sha256"] == s)
    assert len(ref_chunks) == len(state.docs) + len(incoming) + 3

    return World(
        template=t.root, ref_chunks=ref_chunks, base=state.shas, base_docs=state.docs,
        incoming=[p.relative_to(t.root) for p in incoming],
        incoming_sha={p.name: sha256_file(p) for p in incoming}, removed_ids=removed,
        corpus_victim=corpus_victim, upload_victim=upload_victim, edited_name="c-005.md",
        edited_old=sha256_file(t.corpus / "c-005.md"), edited_new=sha256_file(root / "edited" / "c-005-edited.md"),
        edited_text=edited_text,
    )


# --------------------------------------------------------------------------------------------------
# Checks shared by every kill


def ask_works(tree: Tree, state: fl.IndexState) -> None:
    svc = tree.open_service()
    try:
        ans = svc.ask(QUESTION)
        assert not ans.abstained and ans.citations, f"ask abstained after the fault: {ans.text[:200]}"
        assert {c.doc_id for c in ans.citations} <= set(state.docs)
        st = svc.status()
        assert (st["documents"], st["chunks"]) == (len(state.docs), len(state.chunk_ids))
    finally:
        svc.close()


def settle(tree: Tree, world: World, expected: set[str]) -> None:
    """Leftovers must not affect serving (checked by the caller); the next rebuild removes them all and
    keeps exactly the expected documents."""
    state = check_index(tree.index, world.ref_chunks)
    if state.leftovers:
        svc = tree.open_service()
        try:
            svc.rebuild()
        finally:
            svc.close()
        state = check_index(tree.index, world.ref_chunks)
        assert not state.leftovers, f"leftovers after a rebuild: {state.leftovers}"
    assert state.shas == expected
    assert not (set(state.docs) & world.removed_ids), "a removed document came back"


def _facts(state: fl.IndexState) -> dict:
    """What the kill left behind (before the follow-up): recorded in the summary."""
    return {"stale": state.stale, "orphans": len(state.orphan_uploads), "leftovers": state.leftovers}


def acked_ingest_shas(tree: Tree, result: fl.ChildResult) -> set[str]:
    out = set()
    for obj in result.json_lines:
        if obj.get("status") in ("added", "unchanged", "replaced"):
            out.add(sha256_file(tree.root / obj["path"]))  # relative to the child's cwd, or absolute
    return out


def verify_ingest(world: World, tree: Tree, result: fl.ChildResult, expect_new: int | None) -> dict:
    incoming = {world.incoming_sha[p.name] for p in world.incoming}
    state = check_index(tree.index, world.ref_chunks)
    assert state is not None, "the index has no current generation after the kill"
    present = state.shas
    assert world.base <= present, "documents indexed before the ingest were lost"
    assert present <= world.base | incoming, "unknown documents appeared"
    acked = acked_ingest_shas(tree, result)
    assert acked <= present, "a file acknowledged by `ingest --json` is missing"
    if result.returncode == 0:
        assert present == world.base | incoming
    new = present & incoming
    if expect_new is not None:
        assert len(new) == expect_new, f"expected the first {expect_new} files committed, found {len(new)}"
    order = [world.incoming_sha[p.name] for p in world.incoming]
    assert new == set(order[:len(new)]), "files are committed in order: no gaps"
    ask_works(tree, state)

    # Repeating the ingest converges: what made it in is `unchanged`, the rest is added.
    svc = tree.open_service()
    try:
        res = svc.ingest_paths([tree.incoming])
    finally:
        svc.close()
    for r in res:
        sha = sha256_file(Path(r.path))
        assert r.status == ("unchanged" if sha in present else "added"), (r.path, r.status, r.reason)
    after = check_index(tree.index, world.ref_chunks)
    assert after.shas == world.base | incoming
    ask_works(tree, after)
    settle(tree, world, world.base | incoming)
    return {"new_after_kill": len(new), **_facts(state)}


def verify_replace(world: World, tree: Tree, result: fl.ChildResult, expect_replaced: bool | None) -> dict:
    state = check_index(tree.index, world.ref_chunks)
    old_set, new_set = world.base, (world.base - {world.edited_old}) | {world.edited_new}
    assert state.shas in (old_set, new_set), "the edited document is partial, duplicated or lost"
    replaced = state.shas == new_set
    if result.returncode == 0:
        assert replaced
    if expect_replaced is not None:
        assert replaced == expect_replaced
    ask_works(tree, state)
    svc = tree.open_service()
    try:
        (r,) = svc.ingest_paths([tree.corpus / world.edited_name])
    finally:
        svc.close()
    assert r.status == ("unchanged" if replaced else "replaced"), (r.status, r.reason)
    settle(tree, world, new_set)
    return {"replaced_after_kill": replaced, **_facts(state)}


def verify_remove(world: World, tree: Tree, result: fl.ChildResult, victim: str, expect_removed: bool | None) -> dict:
    from bot.errors import NotFoundError

    state = check_index(tree.index, world.ref_chunks)
    gone = world.base - {world.sha_of_doc(victim)}
    assert state.shas in (world.base, gone), "remove left a partial document or touched other documents"
    removed = victim not in state.docs
    if result.returncode == 0:
        assert removed, "`remove` exited 0 but the document is still there"
    if expect_removed is not None:
        assert removed == expect_removed
    ask_works(tree, state)
    svc = tree.open_service()
    try:
        if removed:
            with pytest.raises(NotFoundError):
                svc.remove(victim)
        else:
            svc.remove(victim)
        svc.rebuild()  # a removal must survive the next rebuild (corpus: tombstone; upload: file gone)
    finally:
        svc.close()
    settle(tree, world, gone)
    assert victim not in check_index(tree.index).docs
    return {"removed_after_kill": removed, **_facts(state)}


def verify_rebuild(world: World, tree: Tree, result: fl.ChildResult, old_gen: Path,
                   expect_swapped: bool | None) -> dict:
    state = check_index(tree.index, world.ref_chunks)
    assert state.shas == world.base, "a rebuild killed mid-way changed the documents"
    assert not (set(state.docs) & world.removed_ids), "a removed document came back"
    swapped = state.generation.resolve() != old_gen.resolve()
    if result.returncode == 0:
        assert swapped
    if expect_swapped is not None:
        assert swapped == expect_swapped, f"expected current {'new' if expect_swapped else 'old'} generation"
    ask_works(tree, state)
    svc = tree.open_service()
    try:
        svc.rebuild()
    finally:
        svc.close()
    after = check_index(tree.index, world.ref_chunks)
    assert not after.leftovers, f"leftovers after the follow-up rebuild: {after.leftovers}"
    settle(tree, world, world.base)
    return {"swapped_after_kill": swapped, **_facts(state)}


# --------------------------------------------------------------------------------------------------
# Deterministic kill points


@dataclass
class Point:
    op: str  # ingest | replace | remove | remove-upload | rebuild | ingest-empty
    label: str
    faults: list[dict]
    expect: object = None  # ingest: files committed; replace/remove: done?; rebuild: swapped?
    stale: tuple[str, ...] | None = None  # derived files the kill must have left stale (proves where it hit)
    orphans: int = 0  # files left in uploads/ that no document points at
    xfail: str | None = None


def _f(target: str, when: str, n: int = 1, match: str | None = None) -> dict:
    return {"target": target, "when": when, "n": n, "match": match}


def _words_kill_n(world: World, files: int) -> tuple[int, int]:
    """`Store._add_words` is called once per chunk and once for the title of each document: the call
    number in the middle of file `files + 1`, and the number of whole files before it."""
    counts = [world.ref_chunks[world.incoming_sha[p.name]] + 1 for p in world.incoming]
    return sum(counts[:files]) + counts[files] // 2, files


ALL = ("faiss", "manifest", "sidecar")
PUT, DEL = "bot.store:Store.put_document", "bot.store:Store.delete_document"
POINTS = [
    # ingest incoming/ (17 files, uploads): the CLI prints its JSON lines only after the last file
    Point("ingest", "file 1 copied into uploads/, before the first SQLite commit", [_f(PUT, "before", 1)], 0, (), 1),
    Point("ingest", "inside the SQLite transaction of file 4 (chunk rows half inserted)", [], "words", (), 1),
    Point("ingest", "file 10/17 (the PDF) committed, FAISS not saved", [_f(PUT, "after", 10)], 10, ALL),
    Point("ingest", "file 6: vectors.faiss replaced, its sidecar not", [_f("os:replace", "before", 6, "vectors.json")],
          6, ("manifest", "sidecar")),
    Point("ingest", "file 12: FAISS saved, manifest not written", [_f("bot.index:write_json_atomic", "before", 12)],
          12, ("manifest",)),
    Point("ingest", "file 3: manifest.json.tmp written, not renamed", [_f("os:replace", "before", 3, "manifest.json")],
          3, ("manifest",)),
    Point("ingest", "file 17/17 saved, before any output", [_f("bot.service:save_after_write", "after", 17)], 17, ()),
    Point("ingest", "file 5 copied into uploads/, not indexed", [_f("shutil:copyfile", "after", 5)], 4, (), 1),
    Point("ingest-empty", "empty INDEX_DIR: the first build's generation moved, `current` not created",
          [_f("os:symlink", "before", 1)]),
    # ingest of an edited corpus file (replace = delete old chunks + insert new, one transaction)
    Point("replace", "edited document: inside the replace transaction", [_f("bot.store:Store._add_words", "before", 5)],
          False, ()),
    Point("replace", "edited document: replace committed, FAISS not saved", [_f(PUT, "after", 1)], True, ALL),
    # remove
    Point("remove", "before the SQLite commit (delete_document #1)", [_f(DEL, "before", 1)], False, ()),
    Point("remove", "inside the delete transaction (rows deleted, not committed)",
          [_f("bot.store:Store._bump_version", "before", 1)], False, ()),
    Point("remove", "committed, FAISS not saved", [_f(DEL, "after", 1)], True, ALL),
    Point("remove", "FAISS saved, manifest not written", [_f("bot.index:write_json_atomic", "before", 1)], True,
          ("manifest",)),
    Point("remove-upload", "upload removed and saved, its file not yet deleted",
          [_f("pathlib:Path.unlink", "before", 1, "uploads")], True, (), 1),
    # rebuild (34 documents into a tmp-* generation, then publish + cleanup)
    Point("rebuild", "loading document 12 into the temp generation", [_f(PUT, "before", 12)], False, ()),
    Point("rebuild", "all documents loaded, before finalize", [_f("bot.service:finalize_generation", "before", 1)],
          False, ()),
    Point("rebuild", "temp FAISS written, temp manifest not", [_f("bot.index:write_json_atomic", "before", 2, "tmp-")],
          False, ()),
    Point("rebuild", "temp generation complete, before publish", [_f("bot.index:IndexLayout.publish", "before", 1)],
          False, ()),
    Point("rebuild", "moved into generations/, `current` not swapped", [_f("os:symlink", "before", 1)], False, ()),
    Point("rebuild", "`current` swapped, before cleanup", [_f("os:replace", "after", 1, "/index/current")], True, ()),
    Point("rebuild", "cleanup: old generation half deleted", [_f("os:unlink", "after", 1, "vectors.faiss")], True, ()),
]


def _record(kind: str, op: str, label: str, outcome: str, ok: bool, **extra) -> None:
    op = {"replace": "ingest", "ingest-empty": "ingest", "remove-upload": "remove"}.get(op, op)
    RESULTS.append({"kind": kind, "op": op, "label": label, "outcome": outcome, "ok": ok, **extra})


def run_scenario(world: World, tree: Tree, op: str, faults: list[dict], kill_after: float | None, expect):
    """Run one operation with faults; verify; return (child result, details)."""
    args: list[str]
    victim = None
    old_gen = fl.current_generation(tree.index)
    if op in ("ingest", "ingest-empty"):
        args = ["ingest", "--json", str(tree.incoming)]
    elif op == "replace":
        (tree.corpus / world.edited_name).write_text(world.edited_text, encoding="utf-8")
        args = ["ingest", "--json", str(tree.corpus / world.edited_name)]
    elif op in ("remove", "remove-upload"):
        victim = world.corpus_victim if op == "remove" else world.upload_victim
        args = ["remove", victim]
    else:
        args = ["rebuild", "--json"]
    result = run_child(tree, args, faults, kill_after=kill_after)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    if faults:
        assert result.killed and result.hits == [faults[0]["label"]], (
            f"kill point not reached (rc={result.returncode}, hits={result.hits}): the code path changed?\n"
            + result.stderr[-2000:])
    else:
        assert result.killed or result.returncode == 0, f"rc={result.returncode}\n{result.stderr[-2000:]}"

    if op == "ingest":
        details = verify_ingest(world, tree, result, expect)
    elif op == "ingest-empty":
        details = verify_ingest_empty(world, tree, result)
    elif op == "replace":
        details = verify_replace(world, tree, result, expect)
    elif op in ("remove", "remove-upload"):
        details = verify_remove(world, tree, result, victim, expect)
    else:
        details = verify_rebuild(world, tree, result, old_gen, expect)
    return result, details


def verify_ingest_empty(world: World, tree: Tree, result: fl.ChildResult) -> dict:
    from bot.errors import IndexMissingError

    assert check_index(tree.index) is None  # killed before `current` existed: still no index
    with pytest.raises(IndexMissingError):
        tree.open_service().close()
    from bot.embedding import HashEmbedder
    from bot.service import Service

    svc = Service(tree.settings(), HashEmbedder())  # the next `ingest` starts from scratch
    try:
        res = svc.ingest_paths([tree.incoming])
    finally:
        svc.close()
    assert [r.status for r in res] == ["added"] * len(world.incoming)
    state = check_index(tree.index, world.ref_chunks)
    incoming = {world.incoming_sha[p.name] for p in world.incoming}
    assert state.shas == incoming
    ask_works(tree, state)
    leftovers = state.leftovers
    assert leftovers, "expected the half-published empty generation as a leftover"
    svc = tree.open_service()
    try:
        svc.rebuild()  # now also indexes corpus/: what matters is that the leftovers are gone
    finally:
        svc.close()
    after = check_index(tree.index, world.ref_chunks)
    assert not after.leftovers and incoming <= after.shas
    return {"leftovers": leftovers, "stale": (), "orphans": len(state.orphan_uploads)}


@pytest.mark.parametrize("point", [pytest.param(p, id=f"{p.op}:{p.label}", marks=(
    [pytest.mark.xfail(strict=True, reason=p.xfail)] if p.xfail else [])) for p in POINTS])
def test_kill_point(world, tmp_path, point: Point):
    faults = [dict(f) for f in point.faults]
    expect = point.expect
    if point.expect == "words":
        n, expect = _words_kill_n(world, 3)
        faults = [_f("bot.store:Store._add_words", "before", n)]
    for f in faults:
        f["label"] = f"{point.op}: {point.label}"
    if point.op == "ingest-empty":
        tree = Tree(tmp_path / "tree")
        shutil.copytree(world.template / "corpus", tree.corpus)
        shutil.copytree(world.template / "incoming", tree.incoming)
    else:
        tree = world.clone(tmp_path)
    ok, outcome, details = False, "failed", {}
    try:
        result, details = run_scenario(world, tree, point.op, faults, None, expect)
        if point.stale is not None:
            assert details["stale"] == point.stale, f"the kill did not leave {point.stale} stale: {details}"
        assert details["orphans"] == point.orphans, f"orphan upload files: {details}"
        ok, outcome = True, "killed at point, index consistent"
    finally:
        _record("point", point.op, point.label, outcome, ok, **{k: v for k, v in details.items() if k != "leftovers"},
                leftovers=len(details.get("leftovers", [])))


# --------------------------------------------------------------------------------------------------
# Random kill points (timing)


def _timed_delays(op: str, duration: float) -> list[float]:
    rng = random.Random(f"{SEED}-{op}")
    n = N_TIMED[op]
    # over the first 90% of the measured time: the last tenth is mostly the interpreter exiting
    return [round(0.9 * duration * (i + rng.random()) / n, 4) for i in range(n)]


@pytest.mark.parametrize("op", ["ingest", "remove", "rebuild"])
def test_kill_at_random_times(world, tmp_path, op):
    # Measure the operation uninterrupted (this run is verified too), then kill at delays spread over it.
    tree = world.clone(tmp_path, "measure")
    result, _ = run_scenario(world, tree, op, [], None, None)
    assert result.returncode == 0 and result.op_seconds
    duration = result.op_seconds
    failures = []
    for i, delay in enumerate(_timed_delays(op, duration)):
        tree = world.clone(tmp_path, f"kill-{i}")
        label = f"SIGKILL {delay * 1000:.0f} ms after main() (of ~{duration * 1000:.0f} ms)"
        try:
            result, details = run_scenario(world, tree, op, [], delay, None)
        except BaseException as exc:
            _record("timed", op, label, f"failed: {str(exc).splitlines()[0][:200]}", False, delay=delay)
            failures.append((label, exc))
            continue
        outcome = "killed before it finished" if result.killed else "finished before the kill"
        _record("timed", op, label, outcome, True, delay=delay, killed=result.killed, **{
            k: v for k, v in details.items() if k != "leftovers"}, leftovers=len(details["leftovers"]))
    if failures:
        raise failures[0][1]


# --------------------------------------------------------------------------------------------------
# What a crash leaves for later


def test_ingest_acknowledges_each_file_as_soon_as_it_is_committed(world, tmp_path):
    tree = world.clone(tmp_path)
    fault = _f("bot.service:save_after_write", "after", 15)
    fault["label"] = "ingest: file 15 saved"
    result = run_child(tree, ["ingest", "--json", str(tree.incoming)], [fault])
    assert result.killed and result.hits == [fault["label"]]
    state = check_index(tree.index, world.ref_chunks)
    assert len(state.shas - world.base) == 15
    # File 15 was killed between its commit and its JSON line; every file before it was acknowledged as it
    # completed (never more than committed: nothing acknowledged is lost).
    assert len(result.json_lines) == 14, f"{len(result.json_lines)} files acknowledged, 15 committed"


def test_health_right_after_a_crash_between_commit_and_faiss_save(world, tmp_path):
    tree = world.clone(tmp_path)
    fault = dict(_f(PUT, "after", 1), label="ingest: file 1 committed")
    result = run_child(tree, ["ingest", "--json", str(tree.incoming / world.incoming[0].name)], [fault])
    assert result.killed and result.hits == [fault["label"]]
    proc = subprocess.run([sys.executable, "-m", "bot", "health"], cwd=tree.root, env=tree.env(),
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0 or "python -m bot rebuild" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert check_index(tree.index, world.ref_chunks).shas == world.base | {world.incoming_sha[world.incoming[0].name]}


@pytest.mark.xfail(strict=True, reason=(
    "crash leftovers in INDEX_DIR/uploads/ are never cleaned, and bot/service.py _rebuild_locked's fallback (old "
    "index unreadable) indexes every file in uploads/ without de-duplicating by sha256: a removed upload comes "
    "back and a file copied twice (killed after the copy, then ingested again) is indexed twice"))
def test_crash_leftovers_in_uploads_do_not_come_back_after_a_damaged_index_rebuild(world, tmp_path):
    tree = world.clone(tmp_path)
    first = tree.incoming / world.incoming[0].name
    kill_copy = dict(_f(PUT, "before", 1), label="ingest: copied, not committed")
    assert run_child(tree, ["ingest", "--json", str(first)], [kill_copy]).hits == [kill_copy["label"]]
    svc = tree.open_service()
    try:
        (r,) = svc.ingest_paths([first])  # the user runs it again: a second copy in uploads/
        assert r.status == "added"
    finally:
        svc.close()
    kill_unlink = dict(_f("pathlib:Path.unlink", "before", 1, "uploads"), label="remove: saved, file kept")
    assert run_child(tree, ["remove", world.upload_victim], [kill_unlink]).hits == [kill_unlink["label"]]
    state = check_index(tree.index, world.ref_chunks)
    assert len(state.orphan_uploads) == 2
    expected = (world.base - {world.sha_of_doc(world.upload_victim)}) | {world.incoming_sha[first.name]}
    assert state.shas == expected
    gen = fl.current_generation(tree.index)
    for p in gen.glob("index.sqlite*"):
        p.unlink()
    (gen / "index.sqlite").write_bytes(b"not a database, " * 4096)  # later, the database is lost
    proc = run_child(tree, ["rebuild", "--json"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = check_index(tree.index, world.ref_chunks)  # fails on the duplicate content
    assert world.sha_of_doc(world.upload_victim) not in after.shas, "a removed upload came back"


# --------------------------------------------------------------------------------------------------
# Corrupt or missing index at start


def _cur(tree: Tree) -> Path:
    return fl.current_generation(tree.index)


def _dangle(tree: Tree) -> None:
    os.unlink(tree.index / "current")
    os.symlink("generations/missing-generation", tree.index / "current")


CORRUPTIONS = {
    "index.sqlite deleted": lambda t: (_cur(t) / "index.sqlite").unlink(),
    "index.sqlite truncated to 0 bytes": lambda t: (_cur(t) / "index.sqlite").write_bytes(b""),
    "index.sqlite garbage": lambda t: (_cur(t) / "index.sqlite").write_bytes(b"not a database, " * 4096),
    "manifest.json garbage": lambda t: (_cur(t) / "manifest.json").write_text("{garbage"),
    "manifest.json deleted": lambda t: (_cur(t) / "manifest.json").unlink(),
    "current symlink deleted": lambda t: (t.index / "current").unlink(),
    "current -> missing dir": _dangle,
    "manifest of another model": lambda t: (_cur(t) / "manifest.json").write_text(
        (_cur(t) / "manifest.json").read_text().replace(MODEL, "other-model-v9")),
    "vectors.faiss garbage": lambda t: (_cur(t) / "vectors.faiss").write_bytes(os.urandom(7000)),
    "vectors.faiss truncated": lambda t: (_cur(t) / "vectors.faiss").write_bytes(
        (_cur(t) / "vectors.faiss").read_bytes()[:4000]),
}
REPAIRED_SILENTLY = {"vectors.faiss garbage", "vectors.faiss truncated"}
SQLITE_LOST = {"index.sqlite deleted", "index.sqlite truncated to 0 bytes", "index.sqlite garbage"}
NO_CURRENT = {"current symlink deleted", "current -> missing dir"}

# Known core bugs (see the report in the test module's docstring of each test); strict xfail until fixed.
XFAIL_START = {}  # (all fixed)
XFAIL_RECOVER = {}  # (all fixed)


@pytest.fixture(scope="module")
def start_runs(world, tmp_path_factory):
    """For every corruption: fresh clones for `python -m bot ask` and `python -m bot health` (the real entry
    point, run in parallel), then `rebuild` on the health clone (health never writes; `rebuild` runs through
    the runner: the same `bot.cli.main`, without the ~1 s transformers import the fake embedder never needs)."""
    base = tmp_path_factory.mktemp("corrupt")
    trees: dict[tuple[str, str], Tree] = {}
    jobs = []
    for i, (name, corrupt) in enumerate(CORRUPTIONS.items()):
        for cmd in ("ask", "health"):
            tree = clone_tree(world.template, base / f"{i}-{cmd}")
            corrupt(tree)
            trees[(name, cmd)] = tree
            args = ["ask", QUESTION] if cmd == "ask" else ["health"]
            jobs.append(((name, cmd), tree, [sys.executable, "-m", "bot", *args]))
    out = _run_parallel(jobs)
    runner = [sys.executable, str(Path(fl.__file__))]
    out.update(_run_parallel([((name, "rebuild"), trees[(name, "health")], [*runner, "rebuild", "--json"])
                              for name in CORRUPTIONS]))
    return out, trees


def _run_parallel(jobs, width: int = 4) -> dict:
    """Run each job's command line, `width` at a time."""
    out, running, pending = {}, [], list(jobs)
    while pending or running:
        while pending and len(running) < width:
            key, tree, cmd = pending.pop(0)
            proc = subprocess.Popen(cmd, cwd=tree.root, env=tree.env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            running.append((key, proc, cmd))
        key, proc, cmd = running.pop(0)
        try:
            stdout, stderr = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        out[key] = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    return out


def _lines(proc) -> list[str]:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]


def _start_param(name: str, table: dict):
    marks = [pytest.mark.xfail(strict=True, reason=table[name])] if name in table else []
    return pytest.param(name, id=name, marks=marks)


@pytest.mark.parametrize("name", [_start_param(n, XFAIL_START) for n in CORRUPTIONS])
def test_corrupt_index_at_start_gives_a_clear_message(world, start_runs, name):
    runs, trees = start_runs
    problems = []  # every command checked, so a failure shows all of what is wrong
    for cmd in ("ask", "health"):
        proc = runs[(name, cmd)]
        lines = _lines(proc)
        if "Traceback" in proc.stderr:
            problems.append(f"{cmd}: Traceback ({lines[-1][:200] if lines else ''})")
            continue
        if name in REPAIRED_SILENTLY:  # a derived file: rebuilt from SQLite without a word to the user
            if cmd == "ask":
                if proc.returncode != 0 or "Sources:" not in proc.stdout:
                    problems.append(f"ask: exit {proc.returncode}, no answer with sources: {lines[:2]}")
            elif not proc.stdout.startswith("healthy") and not (
                    proc.returncode != 0 and len(lines) == 1 and "python -m bot rebuild" in lines[0]):
                # health opens without repairing: healthy (preferred), or at least says what to run
                problems.append(f"health: exit {proc.returncode}: {lines[:2]}")
            continue
        if cmd == "ask" and name in NO_CURRENT and proc.returncode == 0:
            # Building a fresh index instead of failing is acceptable only without losing anything.
            state = check_index(trees[(name, cmd)].index, world.ref_chunks)
            if state.shas != world.base:
                problems.append(f"ask: exit 0 after silently rebuilding from CORPUS_DIR: "
                                f"{len(world.base - state.shas)} documents lost, "
                                f"{len(state.shas - world.base)} removed ones back")
            continue
        if proc.returncode == 0:
            problems.append(f"{cmd}: exit 0: {lines[:2]}")
        elif len(lines) != 1:
            problems.append(f"{cmd}: exit {proc.returncode}, expected one line, got {lines}")
        elif "python -m bot rebuild" not in lines[0]:
            problems.append(f"{cmd}: exit {proc.returncode}, no 'python -m bot rebuild' in {lines[0]!r}")
    RESULTS.append({"kind": "start", "op": "start", "label": name, "ok": not problems,
                    "outcome": "clear" if not problems else "; ".join(problems)[:300]})
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", [_start_param(n, XFAIL_RECOVER) for n in CORRUPTIONS])
def test_rebuild_recovers_from_a_corrupt_index(world, start_runs, name):
    runs, trees = start_runs
    proc = runs[(name, "rebuild")]
    tree = trees[(name, "health")]
    ok = False
    try:
        assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert proc.returncode == 0, _lines(proc)
        state = check_index(tree.index, world.ref_chunks)
        assert not state.leftovers, state.leftovers
        if name in SQLITE_LOST:
            # The database is gone: tombstones can't be known, but nothing uploaded may be lost.
            assert world.base <= state.shas, f"{len(world.base - state.shas)} documents lost"
        else:
            assert state.shas == world.base, (
                f"{len(world.base - state.shas)} documents lost, {len(state.shas - world.base)} removed ones back")
        ask_works(tree, state)
        ok = True
    finally:
        RESULTS.append({"kind": "recover", "op": "start", "label": name, "ok": ok,
                        "outcome": "rebuild recovered" if ok else "rebuild did not recover"})


# --------------------------------------------------------------------------------------------------
# Disk full during a build


DISK_FULL_XFAIL = ("bot/cli.py main catches only UserError: an OSError(ENOSPC) / sqlite3.OperationalError "
                   "('database or disk is full') from Service.rebuild ends in a Traceback")

DISK_FULL_POINTS = {
    "temp FAISS save": _f("bot.vectors:VectorIndex.save", "enospc", 2),
    "temp manifest write": _f("bot.index:write_json_atomic", "enospc", 2, "tmp-"),
    "SQLite insert of document 5": _f("bot.store:Store.put_document", "sqlite_full", 5),
    "publish: after moving into generations/": _f("os:symlink", "enospc", 1),
}
REAL_TMPFS = "real tmpfs too small for the new generation"


@dataclass
class DiskFullRun:
    tree: Tree
    old_gen: Path
    result: fl.ChildResult | None
    regrow: object = None  # tmpfs: gives the filesystem room again
    skipped: str = ""


def _mount_tmpfs(mnt: Path):
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        return None

    def resize(size_bytes: int) -> None:
        size_kb = -(-size_bytes // 4096) * 4
        subprocess.run(["mount", "-o", f"remount,size={size_kb}k", str(mnt)], check=True, capture_output=True)

    return resize


@pytest.fixture(scope="module")
def disk_full_runs(world, tmp_path_factory):
    """A rebuild that runs out of space: at four monkeypatched points (ENOSPC / SQLITE_FULL raised in the
    child), and for real on a tmpfs with room for only half a new generation (root only; else skipped)."""
    base = tmp_path_factory.mktemp("diskfull")
    runs: dict[str, DiskFullRun] = {}
    for i, (name, fault) in enumerate(DISK_FULL_POINTS.items()):
        tree = clone_tree(world.template, base / f"p{i}")
        old = fl.current_generation(tree.index)
        fault = dict(fault, label=f"disk full: {name}")
        result = run_child(tree, ["rebuild", "--json"], [fault])
        assert result.hits == [fault["label"]], f"fault not reached: {result.stderr[-2000:]}"
        runs[name] = DiskFullRun(tree, old, result)
    mnt = base / "tmpfs"
    resize = _mount_tmpfs(mnt)
    if resize is None:
        runs[REAL_TMPFS] = DiskFullRun(None, None, None, skipped="cannot mount a tmpfs here (not root?)")
    try:
        if resize is not None:
            tree = clone_tree(world.template, mnt / "tree")
            old = fl.current_generation(tree.index)
            used = sum(p.stat().st_size for p in tree.root.rglob("*") if p.is_file() and not p.is_symlink())
            gen_size = sum(p.stat().st_size for p in old.iterdir())
            resize(used + gen_size // 2)  # room for half a generation: the new one can't be written
            result = run_child(tree, ["rebuild", "--json"], real_cli=True)
            runs[REAL_TMPFS] = DiskFullRun(tree, old, result, regrow=lambda: resize(used + gen_size * 4))
        yield runs
    finally:
        if resize is not None:
            subprocess.run(["umount", str(mnt)], capture_output=True)
            if os.path.ismount(mnt):
                subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.parametrize("name", [*DISK_FULL_POINTS, REAL_TMPFS])
def test_disk_full_during_rebuild_keeps_old_index_serving(world, disk_full_runs, name):
    run = disk_full_runs[name]
    if run.skipped:
        pytest.skip(run.skipped)
    ok = False
    try:
        assert run.result.returncode != 0, "the rebuild did not fail: the disk was not full?"
        state = check_index(run.tree.index, world.ref_chunks)
        assert state.generation.resolve() == run.old_gen.resolve(), "`current` moved although the build failed"
        assert state.shas == world.base
        assert not list(run.tree.index.glob("tmp-*")), "the failed build left its temp folder"
        for stray in state.leftovers:  # a generation moved but never made current: cleaned by the next rebuild
            assert stray.startswith("generations/"), state.leftovers
        ask_works(run.tree, state)
        if run.regrow:
            run.regrow()
        svc = run.tree.open_service()  # with space again, the next rebuild succeeds and removes any stray
        try:
            svc.rebuild()
        finally:
            svc.close()
        after = check_index(run.tree.index, world.ref_chunks)
        assert not after.leftovers and after.shas == world.base
        ok = True
    finally:
        RESULTS.append({"kind": "diskfull", "op": "rebuild", "label": name, "ok": ok,
                        "outcome": "old index kept serving" if ok else "failed"})


@pytest.mark.parametrize("name", [*DISK_FULL_POINTS, REAL_TMPFS])
def test_disk_full_during_rebuild_is_a_clear_error(disk_full_runs, name):
    run = disk_full_runs[name]
    if run.skipped:
        pytest.skip(run.skipped)
    ok = False
    try:
        stderr = run.result.stderr
        assert run.result.returncode != 0
        assert "Traceback" not in stderr, stderr[-3000:]
        lines = [line for line in stderr.splitlines() if line.strip() and " INFO " not in line]
        assert lines and any(w in lines[-1].lower() for w in ("space", "disk", "full")), lines[-3:]
        ok = True
    finally:
        RESULTS.append({"kind": "diskfull-message", "op": "rebuild", "label": name, "ok": ok,
                        "outcome": "clear error" if ok else "no clear error"})


# --------------------------------------------------------------------------------------------------
# Power loss: a published generation must be on disk (SIGKILL can't show this; strace can)


def test_rebuild_fsyncs_the_database_before_publishing(world, tmp_path):
    strace = shutil.which("strace")
    if not strace:
        pytest.skip("strace not installed")
    tree = world.clone(tmp_path)
    trace = tmp_path / "strace.txt"
    env = tree.env(**{fl.PLAN_VAR: json.dumps({"block_transformers": True})})
    proc = subprocess.run([strace, "-f", "-y", "-o", str(trace), "-e", "trace=pwrite64,write,fsync,fdatasync,rename",
                           sys.executable, str(Path(fl.__file__)), "rebuild", "--json"],
                          cwd=tree.root, env=env, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0 and "ptrace" in proc.stderr:
        pytest.skip(f"strace not permitted: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    last_write = last_sync = publish = None
    for i, line in enumerate(trace.read_text().splitlines()):
        if "/tmp-" in line and "/index.sqlite>" in line:
            if "write" in line.split("(")[0]:
                last_write = i
            elif "sync" in line.split("(")[0]:
                last_sync = i
        if "rename(" in line and "/tmp-" in line and "/generations/" in line and publish is None:
            publish = i
    assert publish is not None and last_write is not None
    assert last_sync is not None and last_write < last_sync < publish, (
        f"index.sqlite last written at trace line {last_write}, last synced at {last_sync}, published at {publish}")


# --------------------------------------------------------------------------------------------------


def test_zz_summary(request, record_testsuite_property):
    """Counts of survived kill points, by operation (printed, and recorded as `fault_summary`)."""
    by_op: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in RESULTS:
        if r["kind"] in ("point", "timed"):
            c = by_op[r["op"]]
            c["total"] += 1
            c["survived"] += bool(r["ok"])
            c[r["kind"]] += 1
            if r["kind"] == "timed":
                c["timed_killed_mid_op" if r.get("killed") else "timed_finished_first"] += 1

    def ratio(kind: str) -> str:
        rs = [r for r in RESULTS if r["kind"] == kind]
        return f"{sum(bool(r['ok']) for r in rs)}/{len(rs)}"

    summary = {
        "seed": SEED,
        "kills": {op: dict(c) for op, c in sorted(by_op.items())},
        "kills_total": sum(c["total"] for c in by_op.values()),
        "kills_survived": sum(c["survived"] for c in by_op.values()),
        "corrupt_at_start_clear_message": ratio("start"),
        "corrupt_at_start_rebuild_recovers": ratio("recover"),
        "disk_full_old_index_serving": ratio("diskfull"),
        "disk_full_clear_message": ratio("diskfull-message"),
        "failed_or_xfail": [f"{r['kind']}: {r['label']}: {r['outcome']}" for r in RESULTS if r["ok"] is False],
    }
    lines = [f"fault summary (FAULT_SEED={SEED}): {summary['kills_survived']}/{summary['kills_total']} SIGKILLs "
             "survived (index consistent, nothing acknowledged lost, repeat converges)"]
    for op, c in sorted(by_op.items()):
        lines.append(f"  {op:8} {c['survived']}/{c['total']}: {c['point']} exact points, {c['timed']} timed "
                     f"({c['timed_killed_mid_op']} killed before finishing, {c['timed_finished_first']} finished first)")
    lines += [
        f"  corrupt/missing index at start: clear message {summary['corrupt_at_start_clear_message']}, "
        f"`rebuild` recovers {summary['corrupt_at_start_rebuild_recovers']}",
        f"  disk full during rebuild: old index kept serving {summary['disk_full_old_index_serving']}, "
        f"clear error {summary['disk_full_clear_message']}",
        *[f"  not ok: {x[:150]}" for x in summary["failed_or_xfail"]],
    ]
    text = "\n".join(lines)
    request.node.user_properties.append(("fault_summary", json.dumps(summary)))  # what record_property does
    record_testsuite_property("fault_summary", json.dumps(summary))  # the JUnit XML report (any junit_family)
    print(text)
    # Also straight to the terminal, whatever the capture mode (-s or not).
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capman is not None:
        with capman.global_and_fixture_disabled():
            reporter.write_line("")
            for line in text.splitlines():
                reporter.write_line(line)
    # the issue asks for at least 10 kill points across ingest, remove and rebuild (whatever -k selected)
    ops = collections.Counter({"replace": "ingest", "ingest-empty": "ingest", "remove-upload": "remove"}.get(p.op, p.op)
                              for p in POINTS) + collections.Counter(N_TIMED)
    assert set(ops) == {"ingest", "remove", "rebuild"} and sum(ops.values()) >= 10, ops
