"""Asking: `/ask`, a mention of the bot, a reply to one of its answers, a follow-up in a thread on one.

The message-content intent is privileged, so this cog only ever looks at the text of messages that
mention the bot, reply to one of its answers, or are posted in a thread started on one of its answers.
Every other message is ignored without being read.
"""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Optional

import discord
from discord import app_commands
from discord.ext import commands

from ...errors import UserError
from ...feedback import StoredAnswer
from ...models import Answer
from ..client import APOLOGY, PUBLIC_THINKING_KEY, UnionBot
from ..render import NO_MENTIONS, Outgoing, render_answer
from ..views import answer_id_from_components, answer_view

log = logging.getLogger(__name__)

HISTORY_LIMIT = 4


def ask_cooldown(interaction: discord.Interaction) -> Optional[app_commands.Cooldown]:
    """Per-member cooldown on /ask, from settings (ASK_COOLDOWN_RATE per ASK_COOLDOWN_SECONDS)."""
    s = interaction.client.settings  # type: ignore[attr-defined]
    if s.ask_cooldown_rate <= 0 or s.ask_cooldown_seconds <= 0:
        return None
    return app_commands.Cooldown(s.ask_cooldown_rate, s.ask_cooldown_seconds)


def _dedupe(items: list[str]) -> list[str]:
    out: list[str] = []
    for q in items:
        if q and (not out or out[-1] != q):
            out.append(q)
    return out[-HISTORY_LIMIT:]


class Ask(commands.Cog):
    def __init__(self, bot: UnionBot):
        self.bot = bot
        s = bot.settings
        self._message_cooldown = commands.CooldownMapping.from_cooldown(
            max(1, s.ask_cooldown_rate), max(0.001, s.ask_cooldown_seconds), commands.BucketType.user
        ) if s.ask_cooldown_rate > 0 and s.ask_cooldown_seconds > 0 else None
        self._unions: tuple[float, list[str]] = (0.0, [])

    # ---- the core call, shared by every way of asking --------------------------------------------
    async def answer(self, question: str, *, union: str | None, history: list[str], context_key: str | None) -> Answer:
        answer = await self.bot.run_core(self.bot.service.ask, question, union=union, history=tuple(history))
        await asyncio.to_thread(self.bot.feedback.record_answer, answer, context_key=context_key)
        log.info("answer %s: abstained=%s citations=%d history=%d latency_ms=%.0f", answer.answer_id, answer.abstained,
                 len(answer.citations), len(history), answer.latency_ms)
        return answer

    async def _history_for_key(self, key: str, until: float | None = None) -> list[str]:
        """Questions filed under a conversation key, oldest first (a reply chain starts at its root answer)."""
        fb = self.bot.feedback
        questions = await asyncio.to_thread(fb.context_questions, key, HISTORY_LIMIT, until=until)
        if key.startswith("answer:"):
            root = await asyncio.to_thread(fb.get_answer, key.split(":", 1)[1])
            if root is not None:
                questions = [root.question] + questions
        return questions

    async def _questions_up_to(self, stored: StoredAnswer) -> list[str]:
        """The questions that led to a stored answer, ending with its own."""
        if not stored.context_key:
            return [stored.question]
        history = await self._history_for_key(stored.context_key, until=stored.created_at)
        if not history or history[-1] != stored.question:
            history.append(stored.question)
        return history

    async def conversation(self, channel: discord.abc.Messageable | None,
                           reply_to: StoredAnswer | None = None) -> tuple[list[str], str | None]:
        """(earlier questions, oldest first; the key the new answer is filed under) for a new question.

        In a thread the key is the thread; a thread started on an answer begins with that answer's
        question(s). A reply to an answer continues that answer's conversation (a reply chain outside a
        thread is keyed by its root answer).
        """
        history: list[str] = []
        key: str | None = None
        if isinstance(channel, discord.Thread):
            key = str(channel.id)
            starter = await asyncio.to_thread(self.bot.feedback.answer_for_message, channel.id)  # same id as the thread
            if starter is not None and starter.context_key != key:
                history.extend(await self._questions_up_to(starter))
            history.extend(await self._history_for_key(key))
        if reply_to is not None:
            ref_history = await self._questions_up_to(reply_to)
            key = key or reply_to.context_key or f"answer:{reply_to.answer_id}"
            history = [q for q in history if q not in ref_history] + ref_history
        return _dedupe(history), key

    async def _known_unions(self) -> list[str]:
        stamp, unions = self._unions
        if asyncio.get_running_loop().time() - stamp > 60 or not unions:
            docs = await asyncio.to_thread(self.bot.service.documents)
            unions = sorted({d.union for d in docs if d.union})
            self._unions = (asyncio.get_running_loop().time(), unions)
        return unions

    # ---- /ask ----------------------------------------------------------------------------------------
    @app_commands.command(name="ask")
    @app_commands.describe(
        question="Your question, e.g. \"Do they need my consent to make a digital replica of me?\"",
        union="Only search this union's documents (e.g. WGA, SAG-AFTRA)",
        private="Show the answer only to you",
    )
    @app_commands.checks.dynamic_cooldown(ask_cooldown)
    async def ask(self, interaction: discord.Interaction, question: app_commands.Range[str, 2, 1000],
                  union: Optional[app_commands.Range[str, 1, 40]] = None, private: bool = False) -> None:
        """Ask about the AI provisions in the union agreements; answers cite the exact passage and page."""
        await interaction.response.defer(ephemeral=private, thinking=True)
        interaction.extras[PUBLIC_THINKING_KEY] = not private  # an error before the answer is shown stays private
        if union:
            known = {u.casefold(): u for u in await self._known_unions()}
            union = known.get(union.strip().casefold(), union.strip())
        history, key = await self.conversation(interaction.channel)
        answer = await self.answer(question, union=union, history=history, context_key=key)
        messages = render_answer(answer, echo_question=True, union=union)
        ids = []
        for i, out in enumerate(messages):
            view = self._view_for(answer) if i == len(messages) - 1 else None
            if i == 0:
                msg = await interaction.edit_original_response(content=out.content, embeds=out.embeds,
                                                               view=view, allowed_mentions=NO_MENTIONS)
                interaction.extras[PUBLIC_THINKING_KEY] = False
            else:
                kwargs = {"view": view} if view is not None else {}
                msg = await interaction.followup.send(content=out.content, embeds=out.embeds, ephemeral=private,
                                                      wait=True, allowed_mentions=NO_MENTIONS, **kwargs)
            ids.append(msg.id)
        await asyncio.to_thread(self.bot.feedback.link_messages, answer.answer_id, ids)

    @ask.autocomplete("union")
    async def _union_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        try:
            unions = await self._known_unions()
        except Exception:  # noqa: BLE001 - autocomplete must never error
            log.exception("union autocomplete failed")
            return []
        cur = current.casefold()
        return [app_commands.Choice(name=u[:100], value=u[:100]) for u in unions if cur in u.casefold()][:25]

    @staticmethod
    def _view_for(answer: Answer) -> discord.ui.View | None:
        if not answer.citations or not answer.answer_id:
            return None  # a plain abstention: nothing to show or rate (it is listed in /gaps anyway)
        return answer_view(answer.answer_id)

    # ---- mentions, replies, thread follow-ups --------------------------------------------------------
    def _strip_mentions_of_me(self, content: str) -> str:
        me = self.bot.user
        if me is None:
            return content.strip()
        return re.sub(rf"<@!?{me.id}>", " ", content).strip()

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.guild is None or self.bot.user is None:
            return
        try:
            await self._maybe_answer(message)
        except Exception:  # noqa: BLE001 - never a traceback in Discord; one log line with it instead
            log.exception("unexpected error answering message %s", message.id)
            try:
                await message.reply(APOLOGY, mention_author=False, allowed_mentions=NO_MENTIONS)
            except discord.HTTPException:
                pass

    async def _maybe_answer(self, message: discord.Message) -> None:
        me = self.bot.user
        assert me is not None
        mentioned = any(u.id == me.id for u in message.mentions)
        reply_to: StoredAnswer | None = None
        fb = self.bot.feedback
        ref = message.reference
        if ref is not None and ref.message_id is not None:
            reply_to = await asyncio.to_thread(fb.answer_for_message, ref.message_id)
            if reply_to is None and isinstance(ref.resolved, discord.Message) and ref.resolved.author.id == me.id:
                aid = answer_id_from_components(ref.resolved)
                if aid:
                    reply_to = await asyncio.to_thread(fb.get_answer, aid)
        in_answer_thread = False
        if isinstance(message.channel, discord.Thread) and not mentioned and reply_to is None:
            in_answer_thread = (await asyncio.to_thread(fb.answer_for_message, message.channel.id)) is not None
        if not (mentioned or reply_to is not None or in_answer_thread):
            return  # not for us: its content is not read

        question = self._strip_mentions_of_me(message.content)
        if not question:
            if mentioned:
                await message.reply("Ask me a question after the mention, e.g. \"@me do they need my consent to "
                                    "make a digital replica of me?\" \u2014 or use `/ask`.",
                                    mention_author=False, allowed_mentions=NO_MENTIONS)
            return  # without the message-content intent, un-mentioned thread messages arrive empty
        if self._message_cooldown is not None:
            retry = self._message_cooldown.update_rate_limit(message)
            if retry:
                await message.reply(f"You're asking a little fast \u2014 please try again in {max(1, round(retry))} s.",
                                    mention_author=False, allowed_mentions=NO_MENTIONS)
                return
        history, key = await self.conversation(message.channel, reply_to)
        async with message.channel.typing():
            try:
                answer = await self.answer(question[:1000], union=None, history=history, context_key=key)
            except UserError as exc:
                await message.reply(str(exc), mention_author=False, allowed_mentions=NO_MENTIONS)
                return
        await self._send_answer(message, answer)

    async def _send_answer(self, message: discord.Message, answer: Answer) -> None:
        messages: list[Outgoing] = render_answer(answer, echo_question=False)
        ids = []
        for i, out in enumerate(messages):
            view = self._view_for(answer) if i == len(messages) - 1 else None
            kwargs = {"view": view} if view is not None else {}
            if i == 0:
                sent = await message.reply(content=out.content, embeds=out.embeds, mention_author=False,
                                           allowed_mentions=NO_MENTIONS, **kwargs)
            else:
                sent = await message.channel.send(content=out.content, embeds=out.embeds,
                                                  allowed_mentions=NO_MENTIONS, **kwargs)
            ids.append(sent.id)
        await asyncio.to_thread(self.bot.feedback.link_messages, answer.answer_id, ids)


async def setup(bot: UnionBot) -> None:
    await bot.add_cog(Ask(bot))
