"""Feedback: the answer buttons (registered here so they work after a restart), `/gaps`, and the daily purge."""
from __future__ import annotations

import asyncio
import logging

import discord
from discord import app_commands
from discord.ext import commands, tasks

from ..checks import require
from ..client import UnionBot, mark_pending, settled
from ..render import NO_MENTIONS, render_gaps
from ..views import DYNAMIC_ITEMS

log = logging.getLogger(__name__)


class Feedback(commands.Cog):
    def __init__(self, bot: UnionBot):
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(*DYNAMIC_ITEMS)
        if self.bot.serving:
            self.purge.start()

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*DYNAMIC_ITEMS)
        self.purge.cancel()

    @tasks.loop(hours=24)
    async def purge(self) -> None:
        """Delete questions and ratings older than GAPS_RETENTION_DAYS (at start, then daily)."""
        try:
            await asyncio.to_thread(self.bot.feedback.purge, self.bot.settings.gaps_retention_days)
        except Exception:  # noqa: BLE001
            log.exception("feedback purge failed")

    @app_commands.command(name="gaps")
    @app_commands.describe(limit="How many questions to show (default 20)")
    @require("organizer")
    async def gaps(self, interaction: discord.Interaction, limit: app_commands.Range[int, 1, 100] = 20) -> None:
        """Recent questions I couldn't answer and answers rated 👎 (organizers)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        mark_pending(interaction)
        days = self.bot.settings.gaps_retention_days
        await asyncio.to_thread(self.bot.feedback.purge, days)
        gaps = await asyncio.to_thread(self.bot.feedback.gaps, limit)
        messages = render_gaps(gaps, days)
        for i, out in enumerate(messages):
            if i == 0:
                await interaction.edit_original_response(content=out.content, embeds=out.embeds, allowed_mentions=NO_MENTIONS)
                settled(interaction)
            else:
                await interaction.followup.send(content=out.content, embeds=out.embeds, ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)


async def setup(bot: UnionBot) -> None:
    await bot.add_cog(Feedback(bot))
