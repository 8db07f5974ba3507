"""Asking: `/ask`, a mention of the bot, a reply to one of its answers, a follow-up in a thread on one.

The message-content intent is privileged, so this cog only ever looks at the text of messages that
mention the bot (or its managed role), reply to it, or are posted in a thread started on one of its
answers. Every other message is ignored without being read.

Threads stay quiet: in a thread started on an answer the bot answers a message only if it mentions the
bot, replies to it, or reads as a question from a member of that conversation (the member who asked, or
one who joined it with a question). It never posts refusals or cooldown notices in a thread unless it
was mentioned. Whether a channel is such a thread is looked up by its id in the answer store, whatever
channel type discord.py hands over (an uncached or archived thread arrives as a PartialMessageable).
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from typing import Optional

import discord
from discord import app_commands
from discord.ext import commands

from ...errors import UserError
from ...feedback import StoredAnswer
from ...models import Answer
from .. import checks
from ..client import APOLOGY, PUBLIC_THINKING_KEY, UnionBot, mark_pending, settled
from ..render import NO_MENTIONS, Outgoing, render_answer
from ..views import answer_id_from_components, answer_view

log = logging.getLogger(__name__)

HISTORY_LIMIT = 4
REMEMBERED = 5000  # answer messages / threads whose askers are kept in memory

_FILLERS = {"and", "so", "but", "also", "ok", "okay", "then", "hmm", "um", "oh", "well", "hey", "sorry"}
_QUESTION_WORDS = {
    "what", "how", "why", "when", "where", "who", "whom", "whose", "which", "can", "could", "do", "does", "did",
    "is", "are", "was", "were", "will", "would", "should", "shall", "may", "might", "must", "has", "have", "had",
    "am", "isn't", "aren't", "doesn't", "don't", "didn't", "can't", "won't", "wouldn't", "shouldn't", "if",
    "tell", "explain",
}


def reads_as_question(text: str) -> bool:
    """A follow-up question rather than chatter ("thanks!", "lol", "ok great"): it ends with "?" or
    starts with a question word, and has a few words."""
    words = re.findall(r"[a-z0-9']+", (text or "").casefold())
    if len(words) < 2:
        return False
    if text.rstrip().endswith("?"):
        return True
    while words and words[0] in _FILLERS:
        words.pop(0)
    return len(words) >= 3 and words[0] in _QUESTION_WORDS


async def reply(message: discord.Message, **kwargs) -> discord.Message:
    """A reply that is still sent (as a plain message) if the member deleted their message meanwhile."""
    return await message.channel.send(reference=message.to_reference(fail_if_not_exists=False), mention_author=False,
                                      allowed_mentions=NO_MENTIONS, **kwargs)


class _Bounded(OrderedDict):
    def remember(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > REMEMBERED:
            self.popitem(last=False)


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
        self._askers: _Bounded = _Bounded()  # answer message id -> id of the member who asked (None: unknown)
        self._joined: _Bounded = _Bounded()  # thread id -> ids of members who joined it with a question

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

    async def conversation(self, channel: discord.abc.Messageable | None, reply_to: StoredAnswer | None = None,
                           thread_id: int | None = None) -> tuple[list[str], str | None]:
        """(earlier questions, oldest first; the key the new answer is filed under) for a new question.

        In a thread the key is the thread; a thread started on an answer begins with that answer's
        question(s). A reply to an answer continues that answer's conversation (a reply chain outside a
        thread is keyed by its root answer).
        """
        history: list[str] = []
        key: str | None = None
        if thread_id is None and isinstance(channel, discord.Thread):
            thread_id = channel.id
        if thread_id is not None:
            key = str(thread_id)
            starter = await asyncio.to_thread(self.bot.feedback.answer_for_message, thread_id)  # same id as the thread
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
        mark_pending(interaction)
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
                settled(interaction)
            else:
                kwargs = {"view": view} if view is not None else {}
                msg = await interaction.followup.send(content=out.content, embeds=out.embeds, ephemeral=private,
                                                      wait=True, allowed_mentions=NO_MENTIONS, **kwargs)
            ids.append(msg.id)
        for mid in ids:
            self._askers.remember(mid, interaction.user.id)
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
    def _strip_mentions_of_me(self, content: str, role_id: int | None = None) -> str:
        me = self.bot.user
        if me is None:
            return content.strip()
        content = re.sub(rf"<@!?{me.id}>", " ", content)
        if role_id is not None:
            content = re.sub(rf"<@&{role_id}>", " ", content)
        return content.strip()

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.guild is None or self.bot.user is None:
            return  # other bots, and direct messages, are ignored
        try:
            await self._maybe_answer(message)
        except discord.Forbidden as exc:  # the channel does not let the bot post: nothing it can say there
            log.info("cannot answer message %s in channel %s: %s", message.id, message.channel.id, exc)
        except Exception:  # noqa: BLE001 - never a traceback in Discord; one log line with it instead
            log.exception("unexpected error answering message %s", message.id)
            try:
                await reply(message, content=APOLOGY)
            except discord.HTTPException:
                pass

    def _mentions_me(self, message: discord.Message) -> tuple[bool, int | None]:
        """(mentioned?, the id of the bot's own managed role if that was mentioned)."""
        me = self.bot.user
        assert me is not None
        if any(u.id == me.id for u in message.mentions):
            return True, None
        role = message.guild.self_role if message.guild is not None else None
        if role is not None and role.id in message.raw_role_mentions:
            return True, role.id
        return False, None

    async def _replied_to(self, message: discord.Message) -> tuple[bool, StoredAnswer | None]:
        """(is it a reply to the bot?, the answer it replies to, if it is one)."""
        me = self.bot.user
        ref = message.reference
        if ref is None or ref.message_id is None:
            return False, None
        fb = self.bot.feedback
        stored = await asyncio.to_thread(fb.answer_for_message, ref.message_id)
        resolved = ref.resolved if isinstance(ref.resolved, discord.Message) else None
        if stored is None and resolved is not None and me is not None and resolved.author.id == me.id:
            aid = answer_id_from_components(resolved)
            if aid:
                stored = await asyncio.to_thread(fb.get_answer, aid)
        to_me = stored is not None or (resolved is not None and me is not None and resolved.author.id == me.id)
        return to_me, stored

    async def _starter_asker(self, channel: discord.abc.Messageable) -> int | None:
        """Who asked the question answered by the message a thread was started on (its id is the thread's).
        Known from memory, else read from the starter message (after a restart)."""
        tid = channel.id  # type: ignore[attr-defined]
        if tid in self._askers:
            return self._askers[tid]
        asker = None
        try:
            parent_id = getattr(channel, "parent_id", None)
            if parent_id is None:
                fetched = await self.bot.fetch_channel(tid)
                parent_id = getattr(fetched, "parent_id", None)
            if parent_id is not None:
                starter = await self.bot.get_partial_messageable(parent_id).fetch_message(tid)
                if starter.interaction_metadata is not None:
                    asker = starter.interaction_metadata.user.id
                elif starter.reference is not None and starter.reference.message_id is not None:
                    resolved = starter.reference.resolved
                    if not isinstance(resolved, discord.Message):
                        resolved = await self.bot.get_partial_messageable(parent_id).fetch_message(starter.reference.message_id)
                    asker = resolved.author.id
        except discord.HTTPException as exc:
            log.info("could not read the starter of thread %s: %s", tid, exc)
        self._askers.remember(tid, asker)
        return asker

    async def _in_conversation(self, message: discord.Message) -> bool:
        members = set(self._joined.get(message.channel.id, ()))
        asker = await self._starter_asker(message.channel)
        if asker is not None:
            members.add(asker)
        return message.author.id in members

    async def _maybe_answer(self, message: discord.Message) -> None:
        me = self.bot.user
        assert me is not None and message.guild is not None
        mentioned, my_role = self._mentions_me(message)
        if not self.bot.guild_allowed(message.guild.id):
            if mentioned:
                log.warning("refused a mention from server %s (user %s): not in ALLOWED_GUILD_IDS", message.guild.id,
                            message.author.id)
                await reply(message, content=checks.NOT_ALLOWED_HERE)
            return
        to_me, reply_to = await self._replied_to(message)
        channel = message.channel
        in_answer_thread = False
        if not isinstance(channel, (discord.TextChannel, discord.VoiceChannel, discord.StageChannel)):
            # a thread (maybe uncached or archived: then a PartialMessageable): its id is the starter's
            in_answer_thread = (await asyncio.to_thread(self.bot.feedback.answer_for_message, channel.id)) is not None
        if not (mentioned or to_me or in_answer_thread):
            return  # not for us: its content is not read
        in_thread = in_answer_thread or isinstance(channel, discord.Thread)
        quiet = in_thread and not mentioned  # no refusals or cooldown notices in a thread unless mentioned
        question = self._strip_mentions_of_me(message.content, my_role)
        if in_answer_thread and not (mentioned or to_me):
            if not reads_as_question(question) or not await self._in_conversation(message):
                return  # chatter in the thread ("thanks!", "lol"), or someone else talking
        if not question:
            if mentioned:
                await reply(message, content="Ask me a question after the mention, e.g. \"@me do they need my consent to "
                                             "make a digital replica of me?\" \u2014 or use `/ask`.")
            return  # without the message-content intent, un-mentioned thread messages arrive empty
        if self._message_cooldown is not None:
            retry = self._message_cooldown.update_rate_limit(message)
            if retry:
                if quiet:
                    log.info("cooldown: not answering message %s in thread %s", message.id, channel.id)
                    return
                await reply(message, content=f"You're asking a little fast \u2014 please try again in {max(1, round(retry))} s.")
                return
        history, key = await self.conversation(channel, reply_to, thread_id=channel.id if in_answer_thread else None)
        async with channel.typing():
            try:
                answer = await self.answer(question[:1000], union=None, history=history, context_key=key)
            except UserError as exc:
                if quiet:
                    log.info("not answering message %s in thread %s: %s", message.id, channel.id, type(exc).__name__)
                    return
                await reply(message, content=str(exc))
                return
        await self._send_answer(message, answer)
        if in_thread:
            self._joined.remember(channel.id, set(self._joined.get(channel.id, ())) | {message.author.id})

    async def _send_answer(self, message: discord.Message, answer: Answer) -> None:
        messages: list[Outgoing] = render_answer(answer, echo_question=False)
        ids = []
        for i, out in enumerate(messages):
            view = self._view_for(answer) if i == len(messages) - 1 else None
            kwargs = {"view": view} if view is not None else {}
            if i == 0:
                sent = await reply(message, content=out.content, embeds=out.embeds, **kwargs)
            else:
                sent = await message.channel.send(content=out.content, embeds=out.embeds,
                                                  allowed_mentions=NO_MENTIONS, **kwargs)
            ids.append(sent.id)
            self._askers.remember(sent.id, message.author.id)
        await asyncio.to_thread(self.bot.feedback.link_messages, answer.answer_id, ids)


async def setup(bot: UnionBot) -> None:
    await bot.add_cog(Ask(bot))
