"""The connection itself: RESUME after a dropped gateway, the heartbeat file, command sync as an explicit
owner action, a broken cog not taking the bot down, running without the message-content intent."""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import pytest

from fakediscord import FakeDiscord, message_text
from fakediscord.harness import assert_clean, make_settings, pointed_at, running_world

from bot.discord_app import client as client_mod
from bot.discord_app.client import run_bot, sync_commands
from bot.errors import ConfigError

CONSENT_Q = "Do they need my consent to make a digital replica of me?"
MESSAGE_CONTENT = 1 << 15
EXPECTED_COMMANDS = ["ask", "documents", "gaps", "help", "reindex", "status", "upload"]


async def test_dropped_gateway_is_resumed_and_the_next_question_answered(tmp_path):
    async with running_world(tmp_path) as w:
        first = await w.ask(w.member, CONSENT_Q)
        assert "[1]" in first.text()
        assert (w.fake.identifies, w.fake.resumes) == (1, 0)

        await w.fake.drop_connection()
        # the member asks right away, while the bot is still reconnecting: the event is buffered by the
        # session and replayed on RESUME
        m = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> Is generative AI a writer?")
        [reply] = await w.fake.until(lambda: w.fake.replies_to(m), timeout=20, what="the answer after the resume")
        assert "[1]" in message_text(reply)
        assert (w.fake.identifies, w.fake.resumes) == (1, 1), "resumed the same session, did not re-identify"
        resume = [g for g in w.fake.gateway_log if g["op"] == 6]
        assert resume and resume[0]["d"]["seq"] >= 2 and resume[0]["d"]["session_id"]

        again = await w.ask(w.member, "Must the company disclose AI material to the writer?")
        assert "[1]" in again.text()
        path = w.settings.index_dir / "heartbeat.json"
        await w.fake.until(lambda: json.loads(path.read_text())["gateway_connected"], what="connected again")
        assert_clean(w.fake)


async def test_heartbeat_file_reports_the_gateway(tmp_path):
    async with running_world(tmp_path) as w:
        path = w.settings.index_dir / "heartbeat.json"
        await w.fake.until(lambda: path.exists() and json.loads(path.read_text())["gateway_connected"],
                           what="the heartbeat written on connect")
        beat = json.loads(path.read_text())
        assert time.time() - beat["last_event"] < 10
        assert set(beat) >= {"gateway_connected", "last_event", "latency_ms"}
        await w.fake.drop_connection(code=4000)
        await w.fake.until(lambda: json.loads(path.read_text())["gateway_connected"] is False
                           or w.fake.resumes, what="the disconnect to be noted")
        await w.fake.until(lambda: w.fake.resumes == 1 and json.loads(path.read_text())["gateway_connected"],
                           what="the reconnect to be noted")
        await w.stop_bot()
        assert json.loads(path.read_text())["gateway_connected"] is False


async def test_sync_commands_is_an_explicit_owner_action(tmp_path):
    fake = await FakeDiscord().start()
    try:
        with pointed_at(fake):
            settings = make_settings(tmp_path)
            names = await sync_commands(settings, int(fake.guild_id))
            assert sorted(names) == EXPECTED_COMMANDS
            assert sorted(c["name"] for c in fake.guild_commands[fake.guild_id]) == EXPECTED_COMMANDS
            assert fake.global_commands == []
            docs = next(c for c in fake.guild_commands[fake.guild_id] if c["name"] == "documents")
            assert sorted(o["name"] for o in docs["options"]) == ["list", "remove", "replace"]
            assert fake.identifies == 0, "sync logs in over REST only; it never connects to the gateway"

            names = await sync_commands(settings, None)
            assert sorted(c["name"] for c in fake.global_commands) == EXPECTED_COMMANDS
            assert not (settings.index_dir / "state.sqlite").exists(), "sync touches no bot state"
    finally:
        await fake.stop()


async def test_the_bot_never_syncs_on_its_own(tmp_path):
    async with running_world(tmp_path, start=False) as w:
        w.fake.global_commands = [{"name": "placeholder", "id": "1"}]  # so start_bot doesn't sync for the test
        await w.start_bot()
        assert not w.fake.requests_to("PUT", "/commands")


async def test_one_failing_cog_is_logged_not_fatal(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(client_mod, "EXTENSIONS", client_mod.EXTENSIONS[:1] + ("bot.discord_app.cogs.does_not_exist",)
                        + client_mod.EXTENSIONS[1:])
    with caplog.at_level(logging.ERROR):
        async with running_world(tmp_path) as w:
            assert list(w.bot.failed_extensions) == ["bot.discord_app.cogs.does_not_exist"]
            ix = await w.ask(w.member, CONSENT_Q)
            assert "[1]" in ix.text()
            st = await w.done(await w.fake.slash(w.moderator, "status"))
            assert "bot.discord_app.cogs.does_not_exist" in st.text()
    assert any("failed to load extension bot.discord_app.cogs.does_not_exist" in r.getMessage() for r in caplog.records)


async def test_without_the_message_content_intent_mentions_still_work(tmp_path):
    async with running_world(tmp_path, bot_kwargs={"message_content": False}) as w:
        identify = next(g for g in w.fake.gateway_log if g["op"] == 2)
        assert not identify["d"]["intents"] & MESSAGE_CONTENT
        # Discord still delivers the content of messages that mention the bot
        m = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> {CONSENT_Q}")
        [reply] = await w.fake.until(lambda: w.fake.replies_to(m), what="the answer")
        assert "[1]" in message_text(reply)


async def test_with_the_intent_identify_asks_for_it(tmp_path):
    async with running_world(tmp_path) as w:
        identify = next(g for g in w.fake.gateway_log if g["op"] == 2)
        assert identify["d"]["intents"] & MESSAGE_CONTENT
        assert "token" not in identify["d"]


async def test_run_bot_falls_back_when_the_message_content_intent_is_not_enabled(tmp_path, caplog):
    """run_bot as the CLI calls it (its own event loop, in a thread here), against a portal where the
    privileged Message Content intent is off: Discord closes with 4014, the bot reconnects without it."""
    async with running_world(tmp_path, start=False) as w:
        w.fake.disallowed_intents = MESSAGE_CONTENT
        w.fake.global_commands = [{"name": "ask", "id": "1"}]
        outcome = {}

        def target():
            try:
                run_bot(w.settings, w.service)
            except BaseException as exc:  # noqa: BLE001
                outcome["error"] = exc

        with caplog.at_level(logging.WARNING):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            await w.fake.until(lambda: w.fake.connected, timeout=20, what="the second, accepted IDENTIFY")
            identifies = [g["d"]["intents"] for g in w.fake.gateway_log if g["op"] == 2]
            assert len(identifies) == 2
            assert identifies[0] & MESSAGE_CONTENT and not identifies[1] & MESSAGE_CONTENT
            m = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> {CONSENT_Q}")
            [reply] = await w.fake.until(lambda: w.fake.replies_to(m), what="the answer")
            assert "[1]" in message_text(reply)
            # stop it the way Discord would if the token were revoked
            await w.fake.close_connections(4004)
            await asyncio.to_thread(thread.join, 20)
        assert not thread.is_alive()
        assert isinstance(outcome.get("error"), ConfigError) and "rejected DISCORD_TOKEN" in str(outcome["error"])
        assert any("Message Content intent is not enabled" in r.getMessage() for r in caplog.records)
        assert not any(w.settings.discord_token in r.getMessage() for r in caplog.records), "the token is never logged"


def test_run_bot_needs_a_token(tmp_path):
    with pytest.raises(ConfigError):
        run_bot(make_settings(tmp_path, discord_token=""), None)
