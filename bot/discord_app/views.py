"""Buttons under each answer: "Show sources", 👍, 👎.

They are `DynamicItem`s whose custom_id carries the answer id ("ua:src:<id>", "ua:vote:up:<id>"), so
they keep working after a restart without any per-message state: the answer's sources and the votes
live in the feedback store (bot/feedback.py), keyed by that id.
"""
from __future__ import annotations

import asyncio
import logging
import re

import discord

from .render import NO_MENTIONS, render_sources

log = logging.getLogger(__name__)

ANSWER_ID = r"[A-Za-z0-9_-]{1,64}"
_CUSTOM_ID = re.compile(rf"ua:(?:src|vote:(?:up|down)):({ANSWER_ID})")


def answer_id_from_components(message: discord.Message) -> str | None:
    """The answer id carried by a message's buttons, if it is one of our answers."""
    for row in message.components:
        for child in getattr(row, "children", []):
            m = _CUSTOM_ID.fullmatch(getattr(child, "custom_id", None) or "")
            if m:
                return m.group(1)
    return None


class SourcesButton(discord.ui.DynamicItem[discord.ui.Button], template=rf"ua:src:(?P<aid>{ANSWER_ID})"):
    def __init__(self, answer_id: str):
        super().__init__(
            discord.ui.Button(label="Show sources", style=discord.ButtonStyle.secondary,
                              custom_id=f"ua:src:{answer_id}", emoji="\U0001f4c4")
        )
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]):
        return cls(match["aid"])

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await interaction.client.gate(interaction, "the Show sources button")  # type: ignore[attr-defined]

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = interaction.client
        try:
            stored = await asyncio.to_thread(bot.feedback.get_answer, self.answer_id)  # type: ignore[attr-defined]
            if stored is None:
                await interaction.response.send_message(
                    "I no longer have the sources for this answer (it is older than the retention period). "
                    "Ask again to get fresh sources.", ephemeral=True, allowed_mentions=NO_MENTIONS)
                return
            messages = render_sources(stored.sources)
            first, rest = messages[0], messages[1:]
            await interaction.response.send_message(content=first.content, embeds=first.embeds, ephemeral=True,
                                                    allowed_mentions=NO_MENTIONS)
            for out in rest:
                await interaction.followup.send(content=out.content, embeds=out.embeds, ephemeral=True,
                                                allowed_mentions=NO_MENTIONS)
        except Exception as exc:  # noqa: BLE001 - one handler turns the rest into an apology + log line
            await bot.report_error(interaction, exc, where="show sources")  # type: ignore[attr-defined]


VOTE_EMOJI = {1: "\U0001f44d", -1: "\U0001f44e"}


class VoteButton(discord.ui.DynamicItem[discord.ui.Button], template=rf"ua:vote:(?P<dir>up|down):(?P<aid>{ANSWER_ID})"):
    def __init__(self, answer_id: str, direction: str):
        value = 1 if direction == "up" else -1
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                custom_id=f"ua:vote:{direction}:{answer_id}",
                emoji=VOTE_EMOJI[value],
            )
        )
        self.answer_id = answer_id
        self.value = value

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]):
        return cls(match["aid"], match["dir"])

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await interaction.client.gate(interaction, "a vote button")  # type: ignore[attr-defined]

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = interaction.client
        try:
            result = await asyncio.to_thread(bot.feedback.vote, self.answer_id, interaction.user.id, self.value)  # type: ignore[attr-defined]
            emoji = VOTE_EMOJI[self.value]
            if result is None:
                text = "This answer is older than the retention period, so I can't record a vote on it."
            elif result.previous is None:
                text = f"Thanks \u2014 your {emoji} is recorded. Organizers use these to improve the documents."
            elif result.previous == result.value:
                text = f"You already rated this answer {emoji}; it counts once."
            else:
                text = f"Changed your rating to {emoji}."
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        except Exception as exc:  # noqa: BLE001
            await bot.report_error(interaction, exc, where="vote")  # type: ignore[attr-defined]


def answer_view(answer_id: str, *, with_sources: bool = True) -> discord.ui.View:
    """The persistent view under an answer (timeout=None; the custom_ids carry the answer id)."""
    view = discord.ui.View(timeout=None)
    if with_sources:
        view.add_item(SourcesButton(answer_id))
    view.add_item(VoteButton(answer_id, "up"))
    view.add_item(VoteButton(answer_id, "down"))
    return view


DYNAMIC_ITEMS = (SourcesButton, VoteButton)
