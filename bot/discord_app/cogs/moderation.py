"""Moderators: `/reindex` (full rebuild in the background, with progress) and `/status`.

The rebuild runs in a worker thread; the core keeps serving answers from the current index and swaps
in the new one atomically at the end, so members keep getting answers meanwhile. Progress is reported
by editing the deferred reply, at most once every `PROGRESS_EVERY_S` seconds. An interaction token
lasts 15 minutes, so a longer rebuild continues its progress in a channel message (and the reply says
so). If the channel refuses that message (403), the reply says so too and the result goes to the
moderator in a direct message: the reply never keeps its "⏳" after the bot stops updating it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from ...errors import BusyError, UserError
from ..checks import require
from ..client import UnionBot, mark_pending, settled
from ..render import NO_MENTIONS, neutralise, rebuild_progress_text, render_status

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 2.0
TOKEN_LIFETIME_S = 14 * 60  # interaction tokens expire after 15 minutes
MOVED_TO_CHANNEL = "\u21aa\ufe0f The rebuild is taking a while; its progress continues in a message in this channel."
CANT_POST_HERE = ("\u26a0\ufe0f The rebuild is still running, but I'm not allowed to post its progress in this channel. "
                  "I'll send you the result in a direct message.")


class Moderation(commands.Cog):
    def __init__(self, bot: UnionBot):
        self.bot = bot
        self._task: asyncio.Task | None = None
        self._latest: Any = None  # the latest RebuildProgress, written from the worker thread
        self._started: float | None = None

    def _running(self) -> bool:
        return (self._task is not None and not self._task.done()) or bool(self.bot.service.rebuilding)

    def progress_line(self) -> str | None:
        if not self._running():
            return None
        if self._latest is None:
            return "running (starting)"
        p = self._latest
        return f"running \u2014 {p.stage}, documents {p.documents_done}/{p.documents_total}, passages {p.chunks_done}/{p.chunks_total}"

    async def cog_unload(self) -> None:
        if self._task is not None and not self._task.done():
            log.warning("reindex still running in its worker thread while the moderation cog unloads")

    # ---- /reindex ------------------------------------------------------------------------------------
    @app_commands.command(name="reindex")
    @require("moderator")
    async def reindex(self, interaction: discord.Interaction) -> None:
        """Rebuild the whole index in the background (moderators). Answers keep working meanwhile."""
        if self._running():
            line = self.progress_line() or "running"
            await interaction.response.send_message(
                f"A rebuild is already running ({neutralise(line)}). I'll swap in the new index when it is done.",
                ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        await interaction.response.defer(thinking=True)
        mark_pending(interaction)
        self._latest = None
        self._started = time.monotonic()
        log.info("reindex started by %s", interaction.user.id)
        self._task = asyncio.create_task(asyncio.to_thread(self.bot.service.rebuild, self._on_progress))
        await self._follow(interaction, self._task)

    def _on_progress(self, p) -> None:  # called from the worker thread
        self._latest = p

    async def _follow(self, interaction: discord.Interaction, task: asyncio.Task) -> None:
        started = time.monotonic()
        where = "reply"  # then "channel" (after the token's lifetime) or "dm" (when the channel refuses)
        channel_message: discord.Message | None = None
        shown = None

        async def edit_reply(text: str) -> bool:
            try:
                await interaction.edit_original_response(content=text, allowed_mentions=NO_MENTIONS)
                return True
            except discord.HTTPException as exc:
                log.warning("could not edit the /reindex reply: %s", exc)
                return False

        async def show(text: str, final: bool = False) -> None:
            nonlocal where, channel_message
            if where == "reply":
                if time.monotonic() - started < TOKEN_LIFETIME_S and await edit_reply(text):
                    if final:
                        settled(interaction)
                    return
                where = "channel"
            if where == "channel":
                try:
                    if channel_message is None:
                        channel_message = await interaction.channel.send(text, allowed_mentions=NO_MENTIONS)  # type: ignore[union-attr]
                        await edit_reply(MOVED_TO_CHANNEL)
                        settled(interaction)
                    else:
                        await channel_message.edit(content=text, allowed_mentions=NO_MENTIONS)
                    return
                except discord.Forbidden as exc:
                    log.warning("not allowed to post /reindex progress in channel %s (%s); the result goes to %s by DM",
                                interaction.channel_id, exc, interaction.user.id)
                    where = "dm"
                    await edit_reply(CANT_POST_HERE)  # still inside the token's 15 minutes
                    settled(interaction)
                except discord.HTTPException as exc:
                    log.warning("could not post /reindex progress: %s", exc)
                    return
            if where == "dm" and final:
                try:
                    await interaction.user.send(text, allowed_mentions=NO_MENTIONS)
                except discord.HTTPException as exc:
                    log.warning("could not send the /reindex result to %s by DM: %s", interaction.user.id, exc)

        await show("\u23f3 Rebuilding the index\u2026 Members keep getting answers from the current index meanwhile.")
        while not task.done():
            await asyncio.wait({task}, timeout=PROGRESS_EVERY_S)
            latest = self._latest
            if not task.done() and latest is not None and latest is not shown:
                shown = latest
                await show(rebuild_progress_text(latest))
        elapsed = time.monotonic() - started
        try:
            report = task.result()
        except BusyError as exc:
            await show(f"\u26a0\ufe0f {neutralise(str(exc))}", final=True)
            return
        except UserError as exc:
            log.warning("reindex failed: %s", exc)
            await show(f"\u274c The rebuild failed: {neutralise(str(exc))}\nThe previous index is still in use; nothing was lost.",
                       final=True)
            return
        except Exception:  # noqa: BLE001
            log.exception("reindex failed unexpectedly")
            await show("\u274c The rebuild failed unexpectedly (the details are in the bot's log). "
                       "The previous index is still in use; nothing was lost.", final=True)
            return
        refused = ""
        if report.refused:
            names = ", ".join(neutralise(r.path.rsplit("/", 1)[-1]) for r in report.refused[:5])
            more = f" and {len(report.refused) - 5} more" if len(report.refused) > 5 else ""
            refused = f"\n\u26a0\ufe0f {len(report.refused)} file(s) could not be read and were left out: {names}{more}."
        log.info("reindex done: %d documents, %d chunks in %.1f s", report.documents, report.chunks, elapsed)
        await show(f"\u2705 Rebuilt the index: {report.documents} documents, {report.chunks} passages "
                   f"({report.embedded} newly embedded) in {elapsed:.1f} s. The new index is live.{refused}", final=True)

    # ---- /status --------------------------------------------------------------------------------------
    @app_commands.command(name="status")
    @require("moderator")
    async def status(self, interaction: discord.Interaction) -> None:
        """Index size, model, last build, uptime and rebuild state (moderators)."""
        await interaction.response.defer(ephemeral=True, thinking=True)  # before touching the index
        mark_pending(interaction)
        st = await asyncio.to_thread(self.bot.service.status)
        latency = self.bot.latency
        latency_ms = None if latency != latency or latency == float("inf") else latency * 1000
        since = time.time() - (self.bot.connected_at or self.bot.started_at)
        embed = render_status(st, latency_ms=latency_ms, bot_uptime_s=since, reindex=self.progress_line())
        if self.bot.failed_extensions:
            embed.add_field(name="Not loaded", value=", ".join(self.bot.failed_extensions)[:1024], inline=False)
        await interaction.edit_original_response(embed=embed, allowed_mentions=NO_MENTIONS)
        settled(interaction)


async def setup(bot: UnionBot) -> None:
    await bot.add_cog(Moderation(bot))
