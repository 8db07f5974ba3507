"""Smoke test of the whole pipeline with the fake embedder: ingest Markdown, ask, cite verbatim."""
from pathlib import Path

from bot.config import Settings
from bot.embedding import HashEmbedder
from bot.service import Service

DOC = """---
title: Test Guild 2023 Agreement
union: Test Guild
year: 2023
status: current
source_url: https://example.org/tg
---
# Test Guild 2023 Agreement

## Consent for digital replicas
A producer must get clear and conspicuous consent before creating a digital replica of a performer.
The performer must receive 48 hours notice before a scan.

## Pay
Scanning time is paid as work time.
"""


def test_ingest_and_ask_cites_verbatim(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tg.md").write_text(DOC)
    settings = Settings(index_dir=tmp_path / "index", corpus_dir=corpus)
    svc = Service.open(settings, embedder=HashEmbedder())
    try:
        ans = svc.ask("how much notice before a scan for a digital replica?")
        assert not ans.abstained
        assert ans.citations, ans.text
        c = ans.citations[0]
        assert c.title == "Test Guild 2023 Agreement"
        assert c.quote in c.text
        assert "48 hours" in ans.text
        assert "[1]" in ans.text
    finally:
        svc.close()
