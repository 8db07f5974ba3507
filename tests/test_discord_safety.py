"""Safe on a real Discord server: only our servers, quiet threads, replies that survive a deleted
question, refusals instead of waits, no reply left "thinking..." — against the fake's refusals."""
from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time

import discord
import pytest
from fakediscord import EPHEMERAL, custom_ids, message_text
from fakediscord.harness import assert_clean, running_world, slow_rebuild

from bot.discord_app import checks
from bot.discord_app.client import PUBLIC_WITHOUT_ALLOWLIST, RESTARTING, UnionBot
from bot.discord_app.cogs.ask import reads_as_question
from bot.discord_app.cogs.documents import BUSY_REBUILDING
from bot.discord_app.cogs.moderation import CANT_POST_HERE
from bot.errors import ConfigError

CONSENT_Q = "Do they need my consent to make a digital replica of me?"
MD = b"# Tiny note\n\nA tiny note about scheduling of table reads for the writers.\n"


def spy_asks(w):
    calls = []
    real = w.service.ask

    def ask(question, *, union=None, history=()):
        calls.append((question, list(history)))
        return real(question, union=union, history=history)

    w.service.ask = ask
    return calls


# ---- only our servers ------------------------------------------------------------------------------------

async def test_commands_mentions_buttons_and_uploads_from_another_server_are_refused(tmp_path, caplog):
    async with running_world(tmp_path, start=False) as w:
        other = w.fake.add_guild("Someone else's server")
        stranger = w.fake.add_user("sly_stranger", guild=other)
        other.owner_id = stranger["id"]  # the owner (an admin) of their own server
        await w.start_bot()
        assert {g.id for g in w.bot.guilds} == {int(w.fake.guild_id), int(other.id)}
        answer = (await w.ask(w.member, CONSENT_Q)).messages[-1]
        before = len(w.service.documents())
        calls = spy_asks(w)
        with caplog.at_level(logging.WARNING, logger="bot.discord_app"):
            for name, options in (("ask", dict(question=CONSENT_Q)), ("upload", dict(file=("note.md", MD, "text/markdown"))),
                                  ("documents remove", dict(document="x")), ("status", {}), ("help", {})):
                ix = await w.done(await w.fake.slash(stranger, name, channel_id=other.channel_id, **options))
                assert ix.callbacks[0][0] == 4 and ix.messages[0]["flags"] & EPHEMERAL, name
                assert ix.text() == checks.NOT_ALLOWED_HERE, name
            choices = await w.fake.autocomplete(stranger, "documents remove", "document", "", channel_id=other.channel_id)
            assert choices == [], "no document titles leak to another server"
            # a copy of an answer's buttons posted there (e.g. forwarded)
            copy = w.fake._bot_message(other.channel_id, {"content": "copy", "components": answer["components"]}, [])
            for cid in custom_ids(copy):
                click = await w.done(await w.fake.click(stranger, copy, cid))
                assert click.text() == checks.NOT_ALLOWED_HERE
            m = await w.fake.user_says(stranger, f"<@{w.fake.app_id}> {CONSENT_Q}", channel_id=other.channel_id)
            [r] = await w.fake.until(lambda: w.fake.replies_to(m), what="the refusal of the mention")
            assert r["content"] == checks.NOT_ALLOWED_HERE
        assert calls == [] and len(w.service.documents()) == before
        assert not w.fake.requests_to("GET", "/attachments/"), "the upload was not even downloaded"
        assert w.bot.feedback.votes(custom_ids(answer)[1].rsplit(":", 1)[1]) == (0, 0)
        refused = [r.getMessage() for r in caplog.records if "not in ALLOWED_GUILD_IDS" in r.getMessage()]
        assert any(msg.startswith(f"refused /upload from server {other.id}") for msg in refused), refused
        assert any(msg.startswith(f"refused a mention from server {other.id}") for msg in refused), refused
        assert any(f"in server Someone else's server ({other.id}), which is not in ALLOWED_GUILD_IDS" in msg
                   for msg in refused), "warned at start"
        # our own server is unaffected
        assert "[1]" in (await w.ask(w.member, CONSENT_Q)).text()
        assert_clean(w.fake)


async def test_the_bot_leaves_a_server_that_is_not_listed_when_added_to_it(tmp_path, caplog):
    async with running_world(tmp_path) as w:
        with caplog.at_level(logging.WARNING, logger="bot.discord_app"):
            other = await w.fake.bot_added_to("Leaked invite server")
            await w.fake.until(lambda: w.fake.requests_to("DELETE", f"/users/@me/guilds/{other.id}"), what="leaving")
        assert not other.joined
        await w.fake.until(lambda: w.bot.get_guild(int(other.id)) is None, what="the guild gone from the cache")
        assert [g.id for g in w.bot.guilds] == [int(w.fake.guild_id)]
        assert any(r.getMessage() == f"added to server Leaked invite server ({other.id}), which is not in "
                   "ALLOWED_GUILD_IDS: leaving it" for r in caplog.records)


async def test_a_public_bot_without_an_allowlist_refuses_to_start(tmp_path):
    async with running_world(tmp_path, start=False, allowed_guild_ids=()) as w:
        assert w.fake.bot_public
        bot = UnionBot(w.settings, w.service)
        with pytest.raises(ConfigError) as e:
            async with bot:
                await asyncio.wait_for(bot.start(w.settings.discord_token), 10)  # without the check it would run on
        assert str(e.value) == PUBLIC_WITHOUT_ALLOWLIST
        assert "turn Public Bot off" in str(e.value) and "set ALLOWED_GUILD_IDS" in str(e.value)
        assert w.fake.identifies == 0, "it never connected"

        # A private application (Public Bot off) needs no allowlist: it can only be added by its owner.
        w.fake.bot_public = False
        await w.start_bot()
        assert "[1]" in (await w.ask(w.member, CONSENT_Q)).text()


def test_allowed_guild_ids_are_validated(tmp_path):
    from bot.config import Settings

    s = Settings.load({"ALLOWED_GUILD_IDS": "123456789012345678, 223456789012345678"}, dotenv=False)
    assert s.allowed_guild_ids == ("123456789012345678", "223456789012345678")
    with pytest.raises(ConfigError, match="ALLOWED_GUILD_IDS must be server ids"):
        Settings.load({"ALLOWED_GUILD_IDS": "Local 42"}, dotenv=False)
    assert Settings().organizer_roles == () and Settings().moderator_roles == (), "no role names grant rights by default"


async def test_direct_messages_are_ignored(tmp_path):
    async with running_world(tmp_path) as w:
        calls = spy_asks(w)
        await w.fake.user_dms(w.member, f"<@{w.fake.app_id}> {CONSENT_Q}")
        await w.fake.user_dms(w.member, CONSENT_Q)
        m = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> {CONSENT_Q}")  # a sync point
        await w.fake.until(lambda: w.fake.replies_to(m), what="the answer in the server")
        assert len(calls) == 1
        assert w.fake.dms_to(w.member) == []


# ---- quiet threads -----------------------------------------------------------------------------------------

def test_what_reads_as_a_question():
    for text in ("what about background actors?", "and do they have to pay them?", "is that the same for stand-ins",
                 "so how long is the notice", "pay?  for the scan day?"):
        assert reads_as_question(text), text
    for text in ("thanks!", "lol", "ok great, thanks", "thank you so much", "\U0001f44d", "nice one", "?"):
        assert not reads_as_question(text), text


async def test_a_thread_on_an_answer_stays_quiet(tmp_path):
    async with running_world(tmp_path) as w:
        calls = spy_asks(w)
        ix = await w.ask(w.member, CONSENT_Q)
        thread = await w.fake.create_thread(w.member, ix.messages[0], "consent follow-up")
        tid = thread["id"]
        chatter = [await w.fake.user_says(w.member, text, channel_id=tid) for text in ("thanks!", "lol", "ok great")]
        other = await w.fake.user_says(w.organizer, "what about stunt performers?", channel_id=tid)  # not in it yet
        q = await w.fake.user_says(w.member, "what about background actors?", channel_id=tid)
        [reply] = await w.fake.until(lambda: w.fake.replies_to(q), what="the answer to the asker's question")
        assert reply["channel_id"] == tid and "[1]" in message_text(reply)
        assert all(w.fake.replies_to(m) == [] for m in chatter + [other])
        assert [c[0] for c in calls] == [CONSENT_Q, "what about background actors?"]

        # the organizer joins the conversation with a question that mentions the bot ...
        j = await w.fake.user_says(w.organizer, f"<@{w.fake.app_id}> do background actors get paid for the scan?",
                                   channel_id=tid)
        await w.fake.until(lambda: w.fake.replies_to(j), what="the answer to the mention")
        # ... and from then on their questions are answered without one; their chatter is not
        t = await w.fake.user_says(w.organizer, "thanks, that helps", channel_id=tid)
        q2 = await w.fake.user_says(w.organizer, "is consent needed for each production?", channel_id=tid)
        await w.fake.until(lambda: w.fake.replies_to(q2), what="the joined member's follow-up")
        assert w.fake.replies_to(t) == []
        # a reply to the bot's answer counts as addressed to it
        r = await w.fake.user_says(w.admin, "background actors too", channel_id=tid, reply_to=reply, ping_reply=False)
        await w.fake.until(lambda: w.fake.replies_to(r), what="the answer to a reply")
        assert all("I can't answer" not in message_text(b) for b in w.fake.bot_messages(tid))
        assert_clean(w.fake)


async def test_no_cooldown_notice_or_refusal_in_a_thread_unless_mentioned(tmp_path):
    async with running_world(tmp_path, ask_cooldown_rate=1, ask_cooldown_seconds=60) as w:
        ix = await w.ask(w.member, CONSENT_Q)
        thread = await w.fake.create_thread(w.member, ix.messages[0])
        q1 = await w.fake.user_says(w.member, "what about background actors?", channel_id=thread["id"])
        await w.fake.until(lambda: w.fake.replies_to(q1), what="the first follow-up")
        q2 = await w.fake.user_says(w.member, "and do they have to pay them?", channel_id=thread["id"])  # too fast
        q3 = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> and for stand-ins?", channel_id=thread["id"])
        [notice] = await w.fake.until(lambda: w.fake.replies_to(q3), what="the cooldown notice to the mention")
        assert notice["content"].startswith("You're asking a little fast")
        assert w.fake.replies_to(q2) == [], "no cooldown notice for an un-mentioned message in a thread"
        assert len(w.fake.bot_messages(thread["id"])) == 2


async def test_a_follow_up_in_an_archived_uncached_thread_is_recognised(tmp_path):
    async with running_world(tmp_path) as w:
        calls = spy_asks(w)
        ix = await w.ask(w.member, CONSENT_Q)
        thread = await w.fake.create_thread(w.member, ix.messages[0])
        await w.fake.archive_thread(thread)
        await w.fake.until(lambda: w.bot.get_channel(int(thread["id"])) is None, what="the thread dropped from the cache")
        seen = []

        async def note_channel_type(message):
            seen.append(type(message.channel))

        w.bot.add_listener(note_channel_type, "on_message")
        q = await w.fake.user_says(w.member, "what about background actors?", channel_id=thread["id"])
        [reply] = await w.fake.until(lambda: w.fake.replies_to(q), what="the answer in the archived thread")
        assert discord.PartialMessageable in seen, seen
        assert reply["channel_id"] == thread["id"]
        assert calls[-1] == ("what about background actors?", [CONSENT_Q])

        # after a restart the bot no longer remembers who asked: it reads the thread's starter message
        await w.fake.archive_thread(thread)
        await w.stop_bot()
        await w.start_bot()
        assert w.bot.get_channel(int(thread["id"])) is None, "archived threads are not sent with the guild"
        q2 = await w.fake.user_says(w.member, "do they have to pay them?", channel_id=thread["id"])
        await w.fake.until(lambda: w.fake.replies_to(q2), what="the answer after the restart")
        assert calls[-1][0] == "do they have to pay them?" and calls[-1][1][0] == CONSENT_Q
        assert w.fake.requests_to("GET", f"/messages/{thread['id']}"), "the starter message was read"
        assert_clean(w.fake)


# ---- mentions and replies ------------------------------------------------------------------------------------

async def test_a_mention_of_the_bots_managed_role_counts_as_a_mention(tmp_path):
    async with running_world(tmp_path) as w:
        calls = spy_asks(w)
        role = w.fake.bot_managed_role()
        m = await w.fake.user_says(w.member, f"<@&{role['id']}> {CONSENT_Q}")
        [reply] = await w.fake.until(lambda: w.fake.replies_to(m), what="the answer to the role mention")
        assert "[1]" in message_text(reply)
        assert calls == [(CONSENT_Q, [])], "the role mention is not part of the question"
        other_role = w.roles["organizer"]
        await w.fake.user_says(w.member, f"<@&{other_role['id']}> {CONSENT_Q}")  # another role: not for the bot
        sync = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> Is generative AI a writer?")
        await w.fake.until(lambda: w.fake.replies_to(sync), what="the sync answer")
        assert len(calls) == 2
        assert_clean(w.fake)


async def test_an_answer_is_still_posted_when_the_question_was_deleted(tmp_path, caplog):
    async with running_world(tmp_path) as w:
        loop = asyncio.get_running_loop()
        real = w.service.ask
        posted: list[dict] = []

        def ask_then_the_member_deletes_it(question, **kw):
            answer = real(question, **kw)
            asyncio.run_coroutine_threadsafe(w.fake.delete_message(posted[0]), loop).result(5)
            return answer

        w.service.ask = ask_then_the_member_deletes_it
        with caplog.at_level(logging.ERROR):
            posted.append(await w.fake.user_says(w.member, f"<@{w.fake.app_id}> {CONSENT_Q}"))
            answer = await w.fake.until(lambda: [b for b in w.fake.bot_messages() if b["embeds"]
                                                 and b["channel_id"] == w.fake.channel_id and custom_ids(b)],
                                        what="the answer")
        assert posted[0]["id"] in w.fake.deleted
        [msg] = answer
        assert "[1]" in message_text(msg) and "message_reference" not in msg, "sent as a plain message"
        req = w.fake.requests_to("POST", f"/channels/{w.fake.channel_id}/messages")[-1]
        assert req.json["message_reference"]["fail_if_not_exists"] is False
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "no 'unexpected error' log"
        assert_clean(w.fake)


# ---- refusing instead of waiting, deferring before work ---------------------------------------------------

async def test_document_changes_during_a_rebuild_are_refused_at_once(tmp_path):
    async with running_world(tmp_path) as w:
        slow_rebuild(w)
        rx = await w.fake.slash(w.moderator, "reindex")
        await w.fake.until(lambda: w.service.rebuilding, what="the rebuild to start")
        doc_id = w.service.documents()[0].doc_id
        for name, options in (("upload", dict(file=("note.md", MD, "text/markdown"))),
                              ("documents replace", dict(document=doc_id, file=("note.md", MD, "text/markdown"))),
                              ("documents remove", dict(document=doc_id))):
            t0 = time.monotonic()
            ix = await w.done(await w.fake.slash(w.organizer, name, **options))
            assert time.monotonic() - t0 < 2, f"/{name} answered at once"
            assert ix.callbacks[0][0] == 4 and ix.messages[0]["flags"] & EPHEMERAL
            assert ix.text() == BUSY_REBUILDING
        assert w.service.rebuilding, "all three were refused while the rebuild still ran"
        assert not w.fake.requests_to("GET", "/attachments/")
        await w.done(rx, timeout=30, predicate=lambda ix: ix.text().startswith("\u2705"))
        ix = await w.done(await w.fake.slash(w.organizer, "upload", file=("note.md", MD, "text/markdown"), title="Tiny"),
                          timeout=30)
        assert ix.text().startswith("\u2705 Added **Tiny**"), ix.text()
        assert_clean(w.fake)


async def test_status_and_help_defer_before_reading_the_index(tmp_path):
    async with running_world(tmp_path) as w:
        real_status, real_docs = w.service.status, w.service.documents

        def slow_status():
            w.fake.clock.advance(4)  # longer than Discord's 3 seconds
            return real_status()

        def slow_documents():
            w.fake.clock.advance(4)
            return real_docs()

        w.service.status, w.service.documents = slow_status, slow_documents
        st = await w.done(await w.fake.slash(w.moderator, "status"))
        assert st.callbacks[0] == (5, {"flags": EPHEMERAL}) and not st.expired
        assert st.messages[0]["embeds"][0]["title"] == "Bot status"
        hp = await w.done(await w.fake.slash(w.member, "help"))
        assert hp.callbacks[0] == (5, {"flags": EPHEMERAL}) and not hp.expired
        assert "/ask" in hp.text()
        assert_clean(w.fake)
        assert not w.fake.refused()


async def test_reindex_progress_when_the_channel_refuses_goes_to_a_dm(tmp_path, monkeypatch):
    async with running_world(tmp_path) as w:
        monkeypatch.setattr(sys.modules["bot.discord_app.cogs.moderation"], "TOKEN_LIFETIME_S", 0.5)
        await w.fake.deny(w.fake.channel_id, "send_messages")
        slow_rebuild(w)
        rx = await w.fake.slash(w.moderator, "reindex")
        dm = await w.fake.until(lambda: w.fake.dms_to(w.moderator), timeout=30, what="the result by DM")
        assert dm[0]["content"].startswith("\u2705 Rebuilt the index: 3 documents"), dm[0]["content"]
        assert rx.text() == CANT_POST_HERE, "the reply says where the result went; no '\u23f3' is left"
        refused = w.fake.refused(403)
        assert [r.path for r in refused] == [f"/channels/{w.fake.channel_id}/messages"]
        edits = [r.json["content"] for r in w.fake.requests_to("PATCH", f"/webhooks/{w.fake.app_id}/{rx.token}/")]
        assert edits[0].startswith("\u23f3 Rebuilding the index") and edits[-1] == CANT_POST_HERE
        assert_clean(w.fake)


async def test_reindex_progress_moves_to_the_channel_after_the_token_lifetime(tmp_path, monkeypatch):
    async with running_world(tmp_path) as w:
        monkeypatch.setattr(sys.modules["bot.discord_app.cogs.moderation"], "TOKEN_LIFETIME_S", 0.5)
        slow_rebuild(w)
        rx = await w.fake.slash(w.moderator, "reindex")
        done = await w.fake.until(lambda: [m for m in w.fake.bot_messages(w.fake.channel_id)
                                           if m["content"].startswith("\u2705 Rebuilt")], timeout=30, what="the result")
        assert not done[0].get("interaction_metadata"), "a channel message, not the interaction reply"
        assert "\u23f3" not in rx.text() and rx.text().startswith("\u21aa\ufe0f The rebuild is taking a while")
        assert_clean(w.fake)


async def test_a_restart_tells_pending_replies_to_ask_again(tmp_path):
    async with running_world(tmp_path) as w:
        answered = await w.ask(w.member, CONSENT_Q)
        release = threading.Event()
        real = w.service.ask

        def stuck(question, **kw):
            release.wait(20)
            return real(question, **kw)

        w.service.ask = stuck
        pending = await w.fake.slash(w.member, "ask", question="Is generative AI a writer?")
        await w.fake.until(lambda: pending.deferred, what="the deferral")
        try:
            await w.bot.close()  # what the SIGTERM handler calls
        finally:
            release.set()
        assert pending.text() == RESTARTING
        assert "[1]" in answered.text(), "a finished answer is left alone"
        assert_clean(w.fake)


async def test_an_answer_gets_through_a_429_on_its_route(tmp_path):
    async with running_world(tmp_path) as w:
        w.fake.rate_limit("POST", f"/channels/{w.fake.channel_id}/messages", retry_after=0.3)
        m = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> {CONSENT_Q}")
        [reply] = await w.fake.until(lambda: w.fake.replies_to(m), what="the answer after the 429")
        assert "[1]" in message_text(reply)
        posts = w.fake.requests_to("POST", f"/channels/{w.fake.channel_id}/messages")
        assert [r.status for r in posts] == [429, 200] and posts[1].t - posts[0].t >= 0.29
        assert_clean(w.fake)


SIGTERM_CHILD = r"""
import json, sys, time
import discord, discord.gateway, discord.http, yarl
from pathlib import Path
from bot.config import Settings
from bot.embedding import HashEmbedder
from bot.service import Service
from bot.discord_app.client import run_bot

cfg = json.loads(sys.argv[1])
discord.http.Route.BASE = cfg["api"]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(cfg["gateway"])
settings = Settings(index_dir=Path(cfg["index"]), corpus_dir=Path(cfg["corpus"]), discord_token="fake-token-not-secret",
                    allowed_guild_ids=(cfg["guild"],), ask_cooldown_rate=100)
service = Service.open(settings, HashEmbedder())
real_ask = service.ask

def slow_ask(question, **kw):
    time.sleep(3)  # still answering when SIGTERM arrives
    return real_ask(question, **kw)

service.ask = slow_ask
run_bot(settings, service)
print("stopped cleanly", flush=True)
"""


async def test_sigterm_tells_a_pending_question_to_ask_again(tmp_path):
    import json
    import os
    import signal

    async with running_world(tmp_path) as w:  # syncs the commands, then hands the fake to the child
        await w.stop_bot()
        identifies = w.fake.identifies
        cfg = {"api": w.fake.api_base, "gateway": w.fake.gateway_url, "index": str(tmp_path / "child-index"),
               "corpus": str(w.settings.corpus_dir), "guild": w.fake.guild_id}
        env = {**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1])}
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", SIGTERM_CHILD, json.dumps(cfg), env=env,
                                                     stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            await w.fake.until(lambda: w.fake.identifies > identifies and w.fake.connected, timeout=60,
                               what="the child bot to connect")
            await asyncio.sleep(0.3)  # READY and GUILD_CREATE handled
            ix = await w.fake.slash(w.member, "ask", question=CONSENT_Q)
            await w.fake.until(lambda: ix.deferred, what="the deferral")
            child.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(child.communicate(), 30)
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        assert ix.text() == RESTARTING, out.decode()[-2000:]
        assert child.returncode == 0 and b"stopped cleanly" in out, out.decode()[-2000:]
