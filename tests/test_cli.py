"""`python -m bot` as a subprocess, with the fake embedder (EMBEDDING_MODEL=hash-embedder-v1) so it's fast."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, TINY_CORPUS

NEW_DOC = """---
title: Sample Crew Agreement
union: Sample Crew
year: 2025
---
## Artificial intelligence
The employer must give the crew thirty days notice before introducing generative artificial intelligence tools.
"""

ASK_KEYS = {"question", "answer", "abstained", "citations", "latency_ms"}
CITATION_KEYS = {"n", "doc_id", "title", "section", "page_start", "page_end", "quote", "text", "url", "score"}
INGEST_KEYS = {"path", "status", "reason", "doc_id", "pages", "chunks"}
Q_NOTICE = "what notice is required before a scanning session for a digital replica?"


class Cli:
    def __init__(self, root: Path, corpus: Path | None):
        self.root = root
        self.index = root / "index"
        self.corpus = corpus if corpus is not None else root / "no-corpus-here"
        env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "QUERY_MODEL", "LLM_BASE_URL")}
        env.update({
            "INDEX_DIR": str(self.index),
            "CORPUS_DIR": str(self.corpus),
            "EMBEDDING_MODEL": "hash-embedder-v1",
            "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
            "DOTENV_PATH": str(root / "no.env"),
            "PYTHONUNBUFFERED": "1",
        })
        self.env = env

    def build(self):
        """Build the index in-process (no subprocess start-up cost) with the same model name."""
        from bot.config import Settings
        from bot.embedding import HashEmbedder
        from bot.service import Service

        svc = Service.open(Settings(index_dir=self.index, corpus_dir=self.corpus, embedding_model="hash-embedder-v1"),
                           embedder=HashEmbedder())
        svc.close()


@pytest.fixture
def cli(tmp_path, tiny_corpus) -> Cli:
    return Cli(tmp_path, tiny_corpus)


@pytest.fixture
def run_main(cli, monkeypatch, capsys):
    """`bot.cli.main(argv)` in this process, with the same environment as the subprocess runs. Used for the
    secondary checks, so the suite pays the interpreter start-up (~2 s: the CLI imports transformers) only
    for the main contract tests."""
    from bot.cli import main

    def run(*args: str, **env) -> tuple[int, str, str]:
        for key in ("INDEX_DIR", "CORPUS_DIR", "EMBEDDING_MODEL", "DOTENV_PATH"):
            monkeypatch.setenv(key, cli.env[key])
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("DISCORD_TOKEN", raising=False)
        monkeypatch.chdir(cli.root)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def built(cli) -> Cli:
    cli.build()
    return cli


def json_lines(stdout: str) -> list[dict]:
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    return [json.loads(ln) for ln in lines]


# --------------------------------------------------------------------------------------------------
# The subprocess runs. Each `python -m bot` pays ~2 s of interpreter start-up (the CLI imports
# transformers even for the fake model), so the independent runs are started together once per module
# and each test inspects its own result.

STDIN_QUESTIONS = [Q_NOTICE, "", "is generative artificial intelligence a writer?", "who won the Oscar for best picture?"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    base = tmp_path_factory.mktemp("cli")

    def corpus_at(root: Path) -> Path:
        corpus = root / "corpus"
        corpus.mkdir(parents=True)
        for name, text in TINY_CORPUS.items():
            (corpus / name).write_text(text, encoding="utf-8")
        return corpus

    shared = Cli(base / "shared", corpus_at(base / "shared"))
    shared.build()  # read-only commands share one index, as the bot and a CLI would
    fresh = Cli(base / "fresh", corpus_at(base / "fresh"))  # no index yet: `ingest` builds it first
    (fresh.root / "crew.md").write_text(NEW_DOC)
    (fresh.root / "binary.md").write_bytes(b"\x00\x01" * 100)
    (base / "none").mkdir()
    missing = Cli(base / "none", None)  # no index, no corpus

    plan = {
        "ingest": (fresh, ["ingest", "--json", "crew.md", "binary.md", str(fresh.corpus / "state-law.md")], None),
        "ask": (shared, ["ask", "--json", Q_NOTICE], None),
        "ask_stdin": (shared, ["ask", "--json", "-"], "\n".join(STDIN_QUESTIONS) + "\n"),
        "documents": (shared, ["documents", "--json"], None),
        "health": (shared, ["health"], None),
        "console": (shared, [], Q_NOTICE + "\n"),  # no command, no DISCORD_TOKEN: the console
        "no_corpus": (missing, ["ask", Q_NOTICE], None),
    }
    procs = {}
    for name, (cli, args, stdin) in plan.items():
        procs[name] = (subprocess.Popen([sys.executable, "-m", "bot", *args], cwd=cli.root, env=cli.env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE),
                       stdin, args)
    out = {}
    for name, (proc, stdin, args) in procs.items():
        try:
            stdout, stderr = proc.communicate(stdin, timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        out[name] = subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)
    out["_missing_corpus"] = missing.corpus
    return out


def run_result(runs, name) -> subprocess.CompletedProcess:
    proc = runs[name]
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


# --------------------------------------------------------------------------------------------------


def test_ingest_json_one_object_per_file(runs):
    proc = run_result(runs, "ingest")
    assert proc.returncode == 0, proc.stderr
    out = json_lines(proc.stdout)
    assert len(out) == 3
    for obj in out:
        assert INGEST_KEYS <= set(obj), obj
    assert [o["status"] for o in out] == ["added", "refused", "unchanged"]
    assert out[0]["doc_id"] == "sample-crew-agreement" and out[0]["chunks"] > 0 and out[0]["reason"] == ""
    assert out[0]["pages"] is None
    assert out[1]["reason"] and out[1]["doc_id"] == "" and out[1]["chunks"] == 0
    assert out[2]["doc_id"] == "example-state-replica-law"
    assert out[0]["path"].endswith("crew.md") and out[1]["path"].endswith("binary.md")


def test_ingest_all_refused_exits_non_zero(built, run_main, tmp_path):
    bad = tmp_path / "empty.md"
    bad.write_bytes(b"")
    code, out, _ = run_main("ingest", "--json", str(bad))
    assert code != 0
    (obj,) = json_lines(out)
    assert obj["status"] == "refused" and obj["reason"]


def test_ingest_bad_year_option_is_a_clear_error(built, run_main, tmp_path):
    new = tmp_path / "crew.md"
    new.write_text(NEW_DOC)
    code, out, err = run_main("ingest", "--json", "--year", "soon", str(new))  # raises ValueError today
    assert code != 0 or json_lines(out)[0]["status"] == "refused"


def test_ask_json_shape(runs):
    proc = run_result(runs, "ask")
    assert proc.returncode == 0, proc.stderr
    (obj,) = json_lines(proc.stdout)
    assert ASK_KEYS <= set(obj), set(obj)
    assert obj["question"] == Q_NOTICE
    assert obj["abstained"] is False
    assert "48 hours" in obj["answer"]
    assert isinstance(obj["latency_ms"], (int, float)) and obj["latency_ms"] >= 0
    assert obj["citations"]
    for i, c in enumerate(obj["citations"], start=1):
        assert CITATION_KEYS <= set(c), set(c)
        assert c["n"] == i
        assert c["quote"] in c["text"]
        assert isinstance(c["score"], (int, float))
    assert obj["citations"][0]["doc_id"] == "test-guild-2023-agreement"
    assert obj["citations"][0]["section"] == "Digital replicas > Notice"
    assert obj["citations"][0]["url"] == "https://example.org/test-guild-2023"


def test_ask_json_reads_questions_from_stdin(runs):
    proc = run_result(runs, "ask_stdin")
    assert proc.returncode == 0, proc.stderr
    out = json_lines(proc.stdout)
    assert [o["question"] for o in out] == [q for q in STDIN_QUESTIONS if q]  # blank lines skipped
    assert [o["abstained"] for o in out] == [False, False, True]
    assert out[2]["citations"] == []
    for o in out:
        assert ASK_KEYS <= set(o)


def test_ask_plain_text_has_sources_and_disclaimer(built, run_main):
    code, out, _ = run_main("ask", Q_NOTICE)
    assert code == 0
    assert "48 hours" in out
    assert "Sources:" in out
    assert "Not legal advice" in out


def test_documents_json(runs):
    proc = run_result(runs, "documents")
    assert proc.returncode == 0, proc.stderr
    docs = json_lines(proc.stdout)
    assert len(docs) == len(TINY_CORPUS)
    assert "other-guild-2024-writers-agreement" in {d["doc_id"] for d in docs}
    for d in docs:
        assert {"doc_id", "title", "status", "chunks", "sha256"} <= set(d)


def test_documents_remove_rebuild(built, run_main):
    code, out, err = run_main("documents")
    assert code == 0 and "other-guild-2024-writers-agreement" in out

    code, out, err = run_main("remove", "other-guild-2024-writers-agreement")
    assert code == 0, err
    assert "other-guild-2024-writers-agreement" in out

    code, out, err = run_main("rebuild", "--json")
    assert code == 0, err
    rep = json.loads(out.strip().splitlines()[-1])
    assert rep["documents"] == len(TINY_CORPUS) - 1  # the removed corpus document stays removed
    assert rep["embedded"] == 0  # nothing changed: all vectors come from the cache
    assert rep["chunks"] > 0 and rep["refused"] == []

    code, out, _ = run_main("documents")
    assert code == 0
    assert "other-guild-2024-writers-agreement" not in out
    assert "test-guild-2023-agreement" in out
    assert "superseded" in out  # the 2020 agreement is marked


def test_rebuild_recovers_from_a_model_change(built, run_main):
    code, out, err = run_main("ask", Q_NOTICE, EMBEDDING_MODEL="hash-embedder-v2")
    assert code != 0 and "python -m bot rebuild" in err
    code, out, err = run_main("rebuild", EMBEDDING_MODEL="hash-embedder-v2")
    assert code == 0, err
    manifest = json.loads((built.index / "current" / "manifest.json").read_text())
    assert manifest["model"] == "hash-embedder-v2"


def test_rebuild_recovers_from_a_damaged_database(built, run_main):
    (built.index / "current" / "index.sqlite").write_bytes(b"this is not a database" * 100)
    code, out, err = run_main("rebuild")
    assert code == 0, err
    code, out, err = run_main("ask", Q_NOTICE)
    assert code == 0 and "48 hours" in out


def test_remove_unknown_document_is_a_clear_error(built, run_main):
    code, out, err = run_main("remove", "no-such-doc")
    assert code != 0
    assert "no-such-doc" in err and "error" in err.lower()


def test_health_subprocess_exit_code(runs):
    proc = run_result(runs, "health")  # the container health check runs exactly this
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("healthy")


def test_health(cli, run_main):
    code, out, err = run_main("health")
    assert code != 0
    assert "unhealthy" in (out + err).lower()
    assert "rebuild" in out + err
    assert not cli.index.joinpath("current").exists(), "health must not build an index"

    cli.build()
    code, out, err = run_main("health")
    assert code == 0, out + err
    assert out.startswith("healthy")

    code, out, err = run_main("health", EMBEDDING_MODEL="hash-embedder-v2")  # configured for another model
    assert code != 0
    assert "hash-embedder-v1" in out + err


def test_no_index_and_no_corpus_has_no_traceback(runs):
    proc = run_result(runs, "no_corpus")
    assert proc.stdout.strip() or proc.stderr.strip()


def test_no_index_and_no_corpus_is_a_clear_error(runs):
    proc = run_result(runs, "no_corpus")
    assert proc.returncode != 0
    assert "error" in proc.stderr.lower()
    assert "CORPUS_DIR" in proc.stderr or str(runs["_missing_corpus"]) in proc.stderr


def test_console_mode_answers_from_stdin_and_exits_on_eof(runs):
    proc = run_result(runs, "console")
    assert proc.returncode == 0, proc.stderr
    assert "48 hours" in proc.stdout
    assert "Test Guild 2023 Agreement" in proc.stdout
    assert "Not legal advice" in proc.stdout


from tests.test_evaluation import DOC_A, DOC_B  # noqa: E402


def test_eval_docs_builds_a_scratch_index_from_pdfs(tmp_path, run_main):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "penalty_bill.md").write_text("# Penalty bill\n\n" + DOC_A)
    (docs / "crew_notice.txt").write_text(DOC_B)
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(json.dumps(x) for x in [
        {"id": "a1", "doc": "penalty_bill.md", "question": "what is the civil penalty for a first violation",
         "must_mention": ["one thousand dollars"], "answerable": True},
        {"id": "b1", "doc": "crew_notice.txt", "question": "how many days notice before generative AI tools",
         "must_mention": ["thirty days notice"], "answerable": True},
    ]) + "\n")
    code, out, err = run_main("eval", "--qa", str(qa), "--docs", str(docs), "--pdf", "--compare", "--json")
    assert code == 0, err
    rows = {r["mode"]: r for r in map(json.loads, out.strip().splitlines())}
    assert set(rows) == {"engine", "naive", "dense", "keyword"}
    assert all(r["answerable"] == 2 for r in rows.values())
    assert rows["naive"]["hit@5"] == 1.0  # two small documents: the baseline finds both passages
    assert rows["engine"]["hit@5"] == 1.0
    # every quote the engine showed was checked against the PDF page its citation names, and found there
    assert rows["engine"]["quotes_checked"] >= 2 and rows["engine"]["quotes_on_page"] == 1.0
    assert rows["naive"]["quotes_on_page"] is None  # the baseline shows no quotes


def test_ask_json_lines_take_history(built, run_main, monkeypatch):
    import io

    lines = [json.dumps({"question": "and how much notice?", "history": ["scanning session for a digital replica"]}),
             "{not json", "what notice is required before a scanning session for a digital replica?"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    code, out, err = run_main("ask", "--json", "-")
    assert code == 0
    objs = [json.loads(x) for x in out.strip().splitlines()]
    assert [o["question"] for o in objs] == ["and how much notice?", lines[2]]
    assert "48 hours" in objs[0]["answer"]  # the follow-up was answered with its thread's context
    assert "line 2 is not a question object" in err
