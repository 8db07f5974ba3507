"""Asking through Discord, end to end: the real discord.py client, the real Service (HashEmbedder),
the fake Discord server. Assertions are on what the server received, i.e. what members would see."""
from __future__ import annotations

import logging
import re

from fakediscord import EPHEMERAL, custom_ids, message_text
from fakediscord.harness import assert_clean, running_world

from bot.discord_app.client import APOLOGY
from bot.discord_app.render import ABSTAIN_TITLE, PARTIAL_TITLE
from bot.errors import IndexMissingError
from bot.models import DISCLAIMER, Answer
from bot.textsplit import split_text

SAG = "SAG-AFTRA 2023 TV/Theatrical Agreement - Digital Replicas"
DGA = "DGA 2020 Basic Agreement - Creative Rights"
CONSENT_Q = "Do they need my consent to make a digital replica of me?"


def spy_asks(w):
    """Record the (question, history) of every call to the real Service.ask."""
    calls = []
    real = w.service.ask

    def ask(question, *, union=None, history=()):
        calls.append((question, list(history), union))
        return real(question, union=union, history=history)

    w.service.ask = ask
    return calls


def sources(message: dict) -> list[dict]:
    return [f for e in message["embeds"] for f in e.get("fields") or []]


async def test_slash_ask_defers_then_edits_in_a_cited_answer(tmp_path):
    async with running_world(tmp_path) as w:
        ix = await w.ask(w.member, CONSENT_Q)
        assert ix.callbacks[0][0] == 5, "the command must defer first"
        assert w.fake.requests_to("PATCH", "/messages/@original"), "then edit the deferred reply"
        [msg] = ix.messages
        assert not msg["flags"] & EPHEMERAL
        assert msg["content"] == f"**Q:** {CONSENT_Q}"
        answer, src = msg["embeds"][0], msg["embeds"][-1]
        assert answer["title"] == "Answer"
        assert "[1]" in answer["description"] and "clear and conspicuous consent" in answer["description"]
        assert src["title"] == "Sources"
        first = src["fields"][0]
        assert first["name"] == f"[1] {SAG}"
        assert "\u00a7 Consent to create a digital replica" in first["value"]
        assert "> A producer must obtain clear and conspicuous consent" in first["value"]
        assert msg["embeds"][-1]["footer"]["text"] == DISCLAIMER
        aid = ix_answer_id(msg)
        assert custom_ids(msg) == [f"ua:src:{aid}", f"ua:vote:up:{aid}", f"ua:vote:down:{aid}"]
        assert_clean(w.fake)


def ix_answer_id(msg: dict) -> str:
    return custom_ids(msg)[0].rsplit(":", 1)[1]


async def test_private_ask_is_ephemeral_and_union_filter_applies(tmp_path):
    async with running_world(tmp_path) as w:
        calls = spy_asks(w)
        ix = await w.ask(w.member, "Is AI a writer?", union="wga", private=True)
        assert ix.callbacks[0] == (5, {"flags": EPHEMERAL})
        assert all(m["flags"] & EPHEMERAL for m in ix.messages)
        assert calls[-1][2] == "WGA", "the union option is matched to the indexed union's spelling"
        assert ix.messages[0]["embeds"][0]["title"] == "Answer \u2014 WGA"
        assert "WGA 2023 Minimum Basic Agreement" in ix.text()
        choices = await w.fake.autocomplete(w.member, "ask", "union", "sag", question="x")
        assert [c["value"] for c in choices] == ["SAG-AFTRA"]
        assert_clean(w.fake)


async def test_mention_is_answered_with_a_reply(tmp_path):
    async with running_world(tmp_path) as w:
        m = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> {CONSENT_Q}")
        [reply] = await w.fake.until(lambda: w.fake.replies_to(m), what="the reply")
        assert reply["message_reference"]["message_id"] == m["id"]
        assert "[1]" in reply["embeds"][0]["description"]
        assert sources(reply)[0]["name"] == f"[1] {SAG}"
        assert reply["content"] == "", "the question is visible above the reply; it is not echoed"
        assert w.fake.requests_to("POST", "/typing"), "shows 'typing...' while it works"
        assert_clean(w.fake)


async def test_messages_not_addressed_to_the_bot_are_ignored(tmp_path):
    async with running_world(tmp_path) as w:
        calls = spy_asks(w)
        await w.fake.user_says(w.member, CONSENT_Q)
        other = await w.fake.user_says(w.admin, "hello everyone")
        await w.fake.user_says(w.member, "replying to a person", reply_to=other)
        await w.fake.user_says(w.member, f"<@{w.fake.app_id}>")  # a bare mention gets a hint, not an answer
        await w.fake.until(lambda: w.fake.bot_messages(), what="the hint")
        assert calls == []
        [hint] = w.fake.bot_messages()
        assert "Ask me a question after the mention" in hint["content"]


async def test_reply_to_an_answer_is_a_follow_up_in_context(tmp_path):
    async with running_world(tmp_path) as w:
        calls = spy_asks(w)
        ix = await w.ask(w.member, CONSENT_Q)
        answer_msg = ix.messages[-1]
        m = await w.fake.user_says(w.member, "what about background actors?", reply_to=answer_msg)
        [reply] = await w.fake.until(lambda: w.fake.replies_to(m), what="the follow-up answer")
        assert calls[-1][:2] == ("what about background actors?", [CONSENT_Q])
        names = [f["name"] for f in sources(reply)]
        assert names[0] == f"[1] {SAG}", names
        assert "\u00a7 Background actors" in sources(reply)[0]["value"]
        # the same reply without the ping (content still readable with the message-content intent)
        m2 = await w.fake.user_says(w.member, "and for stand-ins?", reply_to=answer_msg, ping_reply=False)
        await w.fake.until(lambda: w.fake.replies_to(m2), what="the second follow-up")
        assert calls[-1][1] == [CONSENT_Q], "a reply to the first answer follows up on the first question"
        # a reply to the follow-up's answer continues the chain from its root
        [reply2] = w.fake.replies_to(m2)
        m3 = await w.fake.user_says(w.member, "do they get paid for it?", reply_to=reply)
        await w.fake.until(lambda: w.fake.replies_to(m3), what="the reply to the reply")
        assert calls[-1][1] == [CONSENT_Q, "what about background actors?"], "the chain back to its root"
        assert "[1]" in message_text(reply2)
        assert_clean(w.fake)


async def test_thread_follow_up_uses_the_earlier_question(tmp_path):
    async with running_world(tmp_path) as w:
        calls = spy_asks(w)
        ix = await w.ask(w.member, CONSENT_Q)
        thread = await w.fake.create_thread(w.member, ix.messages[0], "consent follow-up")
        m = await w.fake.user_says(w.member, "what about background actors?", channel_id=thread["id"])
        [reply] = await w.fake.until(lambda: w.fake.replies_to(m), what="the answer in the thread")
        assert reply["channel_id"] == thread["id"]
        assert calls[-1][:2] == ("what about background actors?", [CONSENT_Q])
        names = [f["name"] for f in sources(reply)]
        assert names[0] == f"[1] {SAG}", names
        assert "\u00a7 Background actors" in sources(reply)[0]["value"]

        # a second follow-up in the same thread sees both earlier questions, oldest first
        m2 = await w.fake.user_says(w.member, "and do they have to pay them?", channel_id=thread["id"])
        await w.fake.until(lambda: w.fake.replies_to(m2), what="the second answer in the thread")
        assert calls[-1][1] == [CONSENT_Q, "what about background actors?"]
        assert_clean(w.fake)


def _long_answer(real: Answer) -> Answer:
    cite = real.citations[0]
    paragraphs = []
    for p in range(12):
        sentences = [f"Paragraph {p} sentence {s} explains consent, compensation and disclosure duties in detail "
                     f"so that members understand their rights under the agreement [{(s % 3) + 1}]." for s in range(14)]
        paragraphs.append(" ".join(sentences))
    text = "\n\n".join(paragraphs)
    cites = []
    for n in range(1, 31):
        c = type(cite)(**{**cite.__dict__})
        c.n = n
        c.title = f"{cite.title} \u2014 volume {n} " + "with a very long subtitle " * 12
        c.quote = "word " * 400
        c.section = "Article 72 > " * 30
        cites.append(c)
    return Answer(question=real.question, text=text, abstained=False, citations=cites, answer_id=real.answer_id,
                  latency_ms=real.latency_ms)


async def test_long_answer_is_split_within_every_discord_limit(tmp_path):
    async with running_world(tmp_path) as w:
        real_ask = w.service.ask
        made = []

        def long_ask(question, **kw):
            a = _long_answer(real_ask(question, **kw))
            made.append(a)
            return a

        w.service.ask = long_ask
        ix = await w.ask(w.member, CONSENT_Q)
        await w.fake.until(lambda: len(ix.messages) >= 2 and custom_ids(ix.messages[-1]), what="all parts")
        msgs = ix.messages
        assert len(msgs) >= 3
        for m in msgs:
            assert len(m["content"] or "") <= 2000 and len(m["embeds"]) <= 10
            assert sum(len(message_text({"embeds": [e]})) for e in m["embeds"]) <= 6000 + 10 * 3
            for e in m["embeds"]:
                assert len(e.get("description") or "") <= 4096 and len(e.get("fields") or []) <= 25
                assert all(len(f["value"]) <= 1024 and len(f["name"]) <= 256 for f in e.get("fields") or [])
        descriptions = [e["description"] for m in msgs for e in m["embeds"] if e.get("title") != "Sources"
                        and not (e.get("title") or "").startswith("Sources") and e.get("description")]
        assert " ".join(descriptions).split() == made[0].text.split(), "nothing lost, nothing cut mid-word"
        for d in descriptions:
            assert not re.match(r"^\[\d", d), "a piece never starts with an orphaned [n] marker"
            assert d.rstrip().endswith((".", "]")), "pieces end at sentence boundaries"
        n_fields = sum(len(e.get("fields") or []) for m in msgs for e in m["embeds"])
        assert n_fields == 30, "every source is listed"
        assert [bool(custom_ids(m)) for m in msgs] == [False] * (len(msgs) - 1) + [True], "buttons on the last part only"
        assert msgs[-1]["embeds"][-1]["footer"]["text"] == DISCLAIMER

        # the same answer as a reply to a mention
        m = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> {CONSENT_Q}")
        await w.fake.until(lambda: len([b for b in w.fake.bot_messages() if b["id"] not in {x["id"] for x in msgs}]) >= 3
                           and any(custom_ids(b) for b in w.fake.bot_messages()[len(msgs):]), what="the long reply")
        assert_clean(w.fake)
        assert len(split_text(made[0].text, 4096)) >= 3


async def test_abstention_says_so_plainly_without_sources(tmp_path):
    async with running_world(tmp_path) as w:
        ix = await w.ask(w.member, "What are the pension contribution rates?")
        [msg] = ix.messages
        assert msg["embeds"][0]["title"] == ABSTAIN_TITLE
        assert all(not e.get("fields") for e in msg["embeds"]), "no sources on an abstention"
        assert "[1]" not in ix.text()
        assert msg["components"] == [], "no buttons: nothing to show or rate"
        assert msg["embeds"][-1]["footer"]["text"] == DISCLAIMER
        gaps = w.bot.feedback.gaps()
        assert [g.question for g in gaps] == ["What are the pension contribution rates?"]
        assert_clean(w.fake)


async def test_partial_answer_says_first_what_the_documents_do_not_cover(tmp_path):
    async with running_world(tmp_path) as w:
        ix = await w.ask(w.member, "What does the 2029 DGA agreement say about AI?")
        [msg] = ix.messages
        first = msg["embeds"][0]
        assert first["title"] == PARTIAL_TITLE
        assert first["description"].startswith("My documents don't cover 2029 specifically")
        assert first["description"].count("don't cover 2029") == 1
        assert msg["embeds"][-1]["title"] == "Related sources"
        assert custom_ids(msg), "related passages can be opened and rated"
        assert [g.kind for g in w.bot.feedback.gaps()] == ["unanswered"], "it still counts as a gap for organizers"
        assert_clean(w.fake)


async def test_everyone_and_mentions_in_a_question_are_inert(tmp_path):
    async with running_world(tmp_path) as w:
        role = w.roles["organizer"]
        q = f"@everyone @here <@&{role['id']}> <@{w.admin['id']}> {CONSENT_Q}"
        ix = await w.ask(w.member, q)
        m = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> {q}")
        await w.fake.until(lambda: w.fake.replies_to(m), what="the reply")
        echo = ix.messages[0]["content"]
        assert "@\u200beveryone" in echo and "@\u200bhere" in echo
        assert f"<@\u200b&{role['id']}>" in echo and f"<@\u200b{w.admin['id']}>" in echo
        for b in w.fake.bot_messages():
            text = message_text(b)
            assert "@everyone" not in text and "@here" not in text
            assert not re.search(r"<@[!&]?\d+>", text), text
        assert_clean(w.fake)  # allowed_mentions {"parse": []} (and replied_user off) on every single payload
        assert w.bot.allowed_mentions.to_dict() == {"parse": []}


async def test_an_exception_inside_a_command_gives_an_apology_not_a_traceback(tmp_path, caplog):
    async with running_world(tmp_path) as w:
        def broken(*a, **k):
            raise RuntimeError("kaboom: internal detail")

        w.service.ask = broken
        with caplog.at_level(logging.ERROR):
            ix = await w.ask(w.member, CONSENT_Q)
            m = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> {CONSENT_Q}")
            [reply] = await w.fake.until(lambda: w.fake.replies_to(m), what="the apology reply")
        assert ix.text() == APOLOGY
        assert ix.ephemeral, "the apology is shown only to the member; the public 'thinking...' is removed"
        assert w.fake.requests_to("DELETE", "/messages/@original")
        assert reply["content"] == APOLOGY
        for b in w.fake.bot_messages():
            assert "Traceback" not in message_text(b) and "kaboom" not in message_text(b)
        logged = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
        assert len(logged) >= 2, "each failure is one log line with its traceback"
        assert any("kaboom" in str(r.exc_info[1]) for r in logged)

        # a UserError is shown as-is (it is written for people)
        def missing(*a, **k):
            raise IndexMissingError("No index is loaded yet; an organizer needs to run a rebuild.")

        w.service.ask = missing
        ix = await w.ask(w.member, CONSENT_Q)
        assert ix.text() == "No index is loaded yet; an organizer needs to run a rebuild."
        assert ix.ephemeral
        assert_clean(w.fake)


async def test_ask_cooldown_is_per_member_with_a_friendly_retry_time(tmp_path):
    async with running_world(tmp_path, ask_cooldown_rate=1, ask_cooldown_seconds=60) as w:
        first = await w.ask(w.member, CONSENT_Q)
        assert "[1]" in first.text()
        second = await w.fake.slash(w.member, "ask", question="Is AI a writer?")
        await w.done(second)
        assert second.callbacks[0][0] == 4 and second.messages[0]["flags"] & EPHEMERAL
        assert re.fullmatch(r"You're asking a little fast \u2014 please try again in (5\d|60) seconds\.", second.text()), second.text()
        other = await w.ask(w.organizer, "Is AI a writer?")  # another member is not affected
        assert "[1]" in other.text()
        # mentions have the same per-member rate (their own bucket, counted the same way)
        m1 = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> Is AI a writer?")
        [r1] = await w.fake.until(lambda: w.fake.replies_to(m1), what="the first mention's answer")
        assert "[1]" in message_text(r1)
        m2 = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> Is AI a writer?")
        [r2] = await w.fake.until(lambda: w.fake.replies_to(m2), what="the cooldown reply")
        assert re.fullmatch(r"You're asking a little fast \u2014 please try again in (5\d|60) s\.", r2["content"]), r2["content"]
        assert_clean(w.fake)


async def test_help_describes_the_documents_and_is_not_legal_advice(tmp_path):
    async with running_world(tmp_path) as w:
        ix = await w.done(await w.fake.slash(w.member, "help"))
        assert ix.messages[0]["flags"] & EPHEMERAL
        text = ix.text()
        assert "**DGA** \u2014 Basic Agreement: 2020 (superseded)" in text
        assert "**SAG-AFTRA** \u2014 TV/Theatrical Agreement: 2023" in text
        assert "**WGA** \u2014 Minimum Basic Agreement: 2023" in text
        assert "/ask" in text and "This is not legal advice" in text and DISCLAIMER in text
        assert_clean(w.fake)
