"""`/help`: what the bot knows (derived from the indexed documents), how to ask, not legal advice."""
from __future__ import annotations

import asyncio

import discord
from discord import app_commands
from discord.ext import commands

from ...models import DISCLAIMER
from ..client import UnionBot
from ..render import NO_MENTIONS, render_help


class Help(commands.Cog):
    def __init__(self, bot: UnionBot):
        self.bot = bot

    @app_commands.command(name="help")
    async def help(self, interaction: discord.Interaction) -> None:
        """What I know, how to ask, and what I am not (legal advice)."""
        docs = await asyncio.to_thread(self.bot.service.documents)
        await interaction.response.send_message(embed=render_help(docs, DISCLAIMER), ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)


async def setup(bot: UnionBot) -> None:
    await bot.add_cog(Help(bot))
