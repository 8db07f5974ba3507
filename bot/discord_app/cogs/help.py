"""`/help`: what the bot knows (derived from the indexed documents), how to ask, not legal advice.

For a member who has an organizer or moderator role but not the permission Discord uses as the default
for those commands (Manage Messages / Manage Server), it adds what to ask a server admin: Discord hides
those commands from them until the role is added under Server Settings > Integrations.
"""
from __future__ import annotations

import asyncio

import discord
from discord import app_commands
from discord.ext import commands

from ...models import DISCLAIMER
from .. import checks
from ..client import UnionBot, mark_pending, settled
from ..render import NO_MENTIONS, neutralise, render_help

# kind -> (its top-level commands, the permission Discord requires by default to show them)
ROLE_COMMANDS: dict[checks.Kind, tuple[tuple[str, ...], str]] = {
    "organizer": (("upload", "gaps"), "manage_messages"),
    "moderator": (("reindex", "status"), "manage_guild"),
}


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def visibility_hints(interaction: discord.Interaction, settings) -> list[str]:
    member = interaction.user
    if not isinstance(member, discord.Member) or checks.is_admin(member, interaction):
        return []
    app = interaction.client.user.name if interaction.client.user else "this bot"
    hints = []
    for kind, (names, permission) in ROLE_COMMANDS.items():
        entries = checks.roles_for(settings, kind)
        ids, wanted = checks.split_roles(entries)
        roles = [r for r in member.roles if not r.is_default() and (r.id in ids or r.name.casefold() in wanted)]
        if not roles or getattr(interaction.permissions, permission):
            continue  # no such role, or Discord shows the commands by default anyway
        role = neutralise(roles[0].name)
        cmds = _and([f"`/{n}`" for n in names])
        hints.append(f"You have the **{role}** role, so you may use {cmds}. If they are not in your `/` menu, ask a "
                     f"server admin to add the **{role}** role to them under Server Settings \u2192 Integrations \u2192 "
                     f"{neutralise(app)}.")
    return hints


class Help(commands.Cog):
    def __init__(self, bot: UnionBot):
        self.bot = bot

    @app_commands.command(name="help")
    async def help(self, interaction: discord.Interaction) -> None:
        """What I know, how to ask, and what I am not (legal advice)."""
        await interaction.response.defer(ephemeral=True, thinking=True)  # before touching the index
        mark_pending(interaction)
        docs = await asyncio.to_thread(self.bot.service.documents)
        embed = render_help(docs, DISCLAIMER)
        hints = visibility_hints(interaction, self.bot.settings)
        if hints:
            embed.add_field(name="Your commands", value="\n\n".join(hints)[:1024], inline=False)
        await interaction.edit_original_response(embed=embed, allowed_mentions=NO_MENTIONS)
        settled(interaction)


async def setup(bot: UnionBot) -> None:
    await bot.add_cog(Help(bot))
