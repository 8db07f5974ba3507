"""Moderators and organizers: /reindex in the background with progress, /status, /gaps."""
from __future__ import annotations

import asyncio
import logging
import re
import time

from fakediscord import EPHEMERAL, custom_ids
from fakediscord.harness import assert_clean, running_world, slow_rebuild

CONSENT_Q = "Do they need my consent to make a digital replica of me?"


async def test_reindex_runs_in_background_while_members_keep_getting_answers(tmp_path):
    async with running_world(tmp_path) as w:
        slow_rebuild(w)
        seen_rebuilding = []
        real_ask = w.service.ask

        def ask(question, **kw):
            seen_rebuilding.append(w.service.rebuilding)
            return real_ask(question, **kw)

        w.service.ask = ask
        t0 = time.monotonic()
        rx = await w.fake.slash(w.moderator, "reindex")
        await w.fake.until(lambda: w.service.rebuilding, what="the rebuild to start")
        assert rx.callbacks[0] == (5, {}), "deferred publicly"

        # members keep asking while it runs, and get cited answers from the current index
        asks = await asyncio.gather(*[w.ask(w.member if i % 2 else w.organizer, q) for i, q in enumerate(
            [CONSENT_Q, "Is generative AI a writer?", "Must the company disclose AI material to the writer?"])])
        for a in asks:
            assert "[1]" in a.text() and a.messages[-1]["embeds"][-1]["title"] == "Sources"
        assert any(seen_rebuilding), "the answers were given while the rebuild was running"

        # a second /reindex is told one is running
        second = await w.done(await w.fake.slash(w.admin, "reindex"))
        assert second.callbacks[0][0] == 4 and second.messages[0]["flags"] & EPHEMERAL
        assert second.text().startswith("A rebuild is already running (running")
        assert "I'll swap in the new index when it is done." in second.text()

        await w.done(rx, timeout=30, predicate=lambda ix: ix.text().startswith("\u2705"))
        assert re.fullmatch(r"\u2705 Rebuilt the index: 3 documents, 6 passages \(\d+ newly embedded\) in [\d.]+ s\. "
                            r"The new index is live\.", rx.text()), rx.text()
        edits = [r for r in w.fake.requests_to("PATCH", f"/webhooks/{w.fake.app_id}/{rx.token}/messages/@original")]
        texts = [e.json["content"] for e in edits]
        assert texts[0].startswith("\u23f3 Rebuilding the index")
        progress = [e for e in edits[1:-1]]
        assert progress, "progress was shown"
        assert any("documents 3/3" in e.json["content"] and "elapsed" in e.json["content"] for e in progress)
        times = [edits[0].t] + [e.t for e in progress]
        assert all(b - a >= 1.9 for a, b in zip(times, times[1:])), "progress edits are throttled to one per ~2 s"
        assert time.monotonic() - t0 < 20
        assert not w.service.rebuilding
        after = await w.ask(w.member, CONSENT_Q)
        assert "[1]" in after.text()
        assert_clean(w.fake)


async def test_failed_reindex_keeps_the_old_index_and_says_why(tmp_path, monkeypatch, caplog):
    async with running_world(tmp_path) as w:
        import bot.service as service_mod

        def disk_full(*a, **k):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(service_mod, "finalize_generation", disk_full)
        with caplog.at_level(logging.ERROR):
            rx = await w.fake.slash(w.moderator, "reindex")
            await w.done(rx, timeout=30, predicate=lambda ix: ix.text().startswith("\u274c"))
        # A full disk is an expected failure: its reason is shown, and logged in one line.
        assert rx.text() == ("\u274c The rebuild failed: the disk is full ([Errno 28] No space left on device); "
                             "free some space and rebuild again. Nothing was changed: the previous index is still "
                             "serving.\nThe previous index is still in use; nothing was lost.")
        assert any("No space left" in r.getMessage() for r in caplog.records)
        ask = await w.ask(w.member, CONSENT_Q)
        assert "[1]" in ask.text(), "the old index still answers"

        from bot.errors import IndexCorruptError

        def corrupt(progress=None):
            raise IndexCorruptError("The embedding cache could not be read.")

        w.service.rebuild = corrupt
        rx2 = await w.fake.slash(w.moderator, "reindex")
        await w.done(rx2, timeout=30, predicate=lambda ix: ix.text().startswith("\u274c"))
        assert rx2.text() == ("\u274c The rebuild failed: The embedding cache could not be read.\n"
                              "The previous index is still in use; nothing was lost.")
        assert_clean(w.fake)


async def test_status_for_moderators(tmp_path):
    async with running_world(tmp_path) as w:
        ix = await w.done(await w.fake.slash(w.moderator, "status"))
        [msg] = ix.messages
        assert msg["flags"] & EPHEMERAL
        fields = {f["name"]: f["value"] for f in msg["embeds"][0]["fields"]}
        assert fields["Index"] == "3 documents \u00b7 6 passages"
        assert fields["Model"] == "hash-embedder-v1 (256 dims)"
        assert fields["Rebuild"] == "idle"
        assert re.match(r"\d{4}-\d\d-\d\dT", fields["Last build"])
        assert fields["Uptime"].startswith("core ")
        assert_clean(w.fake)


async def test_gaps_lists_unanswered_and_downvoted_without_names(tmp_path):
    async with running_world(tmp_path) as w:
        await w.ask(w.member, "What are the pension contribution rates?")
        good = await w.ask(w.member, CONSENT_Q)
        down = custom_ids(good.messages[-1])[2]
        await w.done(await w.fake.click(w.member, good.messages[-1], down))
        ix = await w.done(await w.fake.slash(w.organizer, "gaps"))
        assert all(m["flags"] & EPHEMERAL for m in ix.messages)
        text = ix.text()
        assert "Questions are kept for 90 days, without member names." in text
        assert "Unanswered questions (1)\n\u2022 What are the pension contribution rates? \u2014 <t:" in text
        assert f"Answers rated \U0001f44e (1)\n\u2022 {CONSENT_Q} \u2014 <t:" in text
        assert "\U0001f44d 0 / \U0001f44e 1" in text
        for person in w.people.values():
            assert person["username"] not in text and person["id"] not in text
        assert_clean(w.fake)
