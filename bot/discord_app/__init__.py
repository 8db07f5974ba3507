"""The Discord shell: a thin layer over `bot.service.Service` (see client.py for the composition root)."""
from __future__ import annotations

__all__ = ["UnionBot", "run_bot", "sync_commands"]


def __getattr__(name: str):  # keep `import bot.discord_app` cheap; discord is imported on first use
    if name in __all__:
        from . import client

        return getattr(client, name)
    raise AttributeError(name)
