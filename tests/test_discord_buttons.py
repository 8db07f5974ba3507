"""The buttons under an answer: Show sources (ephemeral, full passages) and 👍/👎 (one per member,
changeable, stored without member ids), surviving a restart of the bot."""
from __future__ import annotations

import sqlite3

from fakediscord import EPHEMERAL, custom_ids, message_text
from fakediscord.harness import assert_clean, running_world

CONSENT_Q = "Do they need my consent to make a digital replica of me?"


def _ids(msg):
    src, up, down = custom_ids(msg)
    return src, up, down


async def test_show_sources_gives_the_full_passages_ephemerally(tmp_path):
    async with running_world(tmp_path) as w:
        ix = await w.ask(w.member, CONSENT_Q)
        answer = ix.messages[-1]
        src, _, _ = _ids(answer)
        click = await w.done(await w.fake.click(w.organizer, answer, src))
        assert click.callbacks[0][0] == 4
        [shown] = click.messages
        assert shown["flags"] & EPHEMERAL, "only the member who clicked sees it"
        first = shown["embeds"][0]
        assert first["title"] == "[1] SAG-AFTRA 2023 TV/Theatrical Agreement - Digital Replicas"
        assert first["description"].startswith("\u00a7 Consent to create a digital replica")
        # the whole passage, not only the short quote shown under the answer
        assert "The consent must include a reasonably specific description of the intended use" in first["description"]
        assert_clean(w.fake)


async def test_votes_are_stored_one_per_member_and_changeable(tmp_path):
    async with running_world(tmp_path) as w:
        ix = await w.ask(w.member, CONSENT_Q)
        answer = ix.messages[-1]
        _, up, down = _ids(answer)
        aid = up.rsplit(":", 1)[1]

        async def vote(user, cid):
            c = await w.done(await w.fake.click(user, answer, cid))
            assert c.messages[0]["flags"] & EPHEMERAL
            return c.text()

        assert (await vote(w.member, up)).startswith("Thanks \u2014 your \U0001f44d is recorded")
        assert w.bot.feedback.votes(aid) == (1, 0)
        assert "already rated this answer \U0001f44d; it counts once" in await vote(w.member, up)
        assert w.bot.feedback.votes(aid) == (1, 0)
        assert await vote(w.member, down) == "Changed your rating to \U0001f44e."
        assert w.bot.feedback.votes(aid) == (0, 1)
        await vote(w.organizer, down)
        await vote(w.admin, up)
        assert w.bot.feedback.votes(aid) == (1, 2)
        assert [g.answer_id for g in w.bot.feedback.gaps()] == [aid], "a net 👎 answer shows up in /gaps"
        assert_clean(w.fake)

        db = sqlite3.connect(w.settings.index_dir / "state.sqlite")
        dump = "\n".join(db.iterdump())
        for person in (w.member, w.organizer, w.admin):
            assert person["id"] not in dump, "no member id is stored"
        db.close()


async def test_buttons_keep_working_after_a_restart(tmp_path):
    async with running_world(tmp_path) as w:
        ix = await w.ask(w.member, CONSENT_Q)
        answer = ix.messages[-1]
        src, up, _ = _ids(answer)
        await w.stop_bot()
        await w.start_bot()  # a new process would do the same: nothing about the view is kept in memory
        c = await w.done(await w.fake.click(w.member, answer, up))
        assert c.text().startswith("Thanks")
        s = await w.done(await w.fake.click(w.member, answer, src))
        assert "clear and conspicuous consent" in message_text(s.messages[0])
        # and a reply to the old answer is still understood as a follow-up
        m = await w.fake.user_says(w.member, "what about background actors?", reply_to=answer)
        [reply] = await w.fake.until(lambda: w.fake.replies_to(m), what="the follow-up")
        assert "[1]" in message_text(reply)
        assert_clean(w.fake)


async def test_a_failing_button_apologises(tmp_path, caplog):
    async with running_world(tmp_path) as w:
        ix = await w.ask(w.member, CONSENT_Q)
        answer = ix.messages[-1]

        def broken(*a, **k):
            raise RuntimeError("db exploded")

        w.bot.feedback.vote = broken
        c = await w.done(await w.fake.click(w.member, answer, _ids(answer)[1]))
        assert c.text().startswith("Sorry \u2014 something went wrong")
        assert c.messages[0]["flags"] & EPHEMERAL
        assert any(r.exc_info and "db exploded" in str(r.exc_info[1]) for r in caplog.records)
