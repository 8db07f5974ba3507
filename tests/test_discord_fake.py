"""The fake Discord itself: it must refuse what Discord refuses, or "no API error" assertions prove nothing."""
from __future__ import annotations

import io

import discord
import pytest
from fakediscord.server import validate_commands, validate_message
from fakediscord.harness import running_world


def test_validation_matches_discord_limits():
    assert validate_message({"content": "x" * 2000}, creating=True) == []
    assert validate_message({"content": "x" * 2001}, creating=True)
    assert validate_message({"content": ""}, creating=True) == ["Cannot send an empty message"]
    assert validate_message({"embeds": [{"description": "d" * 4097}]}, creating=True)
    assert validate_message({"embeds": [{"title": "t" * 257}]}, creating=True)
    assert validate_message({"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]}, creating=True)
    assert validate_message({"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]}, creating=True)
    assert validate_message({"embeds": [{"description": "d" * 3000}, {"description": "d" * 3001}]}, creating=True)
    assert validate_message({"embeds": [{"description": "d"}] * 11}, creating=True)
    assert validate_message({"components": [{"type": 1, "components": [{"type": 2, "custom_id": "c" * 101}]}]}, creating=True)
    assert validate_message({"embeds": [{"description": "d" * 4096, "footer": {"text": "f" * 1904}}]}, creating=True) == []


def test_command_definitions_are_validated():
    ok = {"name": "ask", "description": "Ask", "type": 1, "options": [{"name": "q", "description": "q", "type": 3, "required": True}]}
    assert validate_commands([ok]) == []
    assert validate_commands([{**ok, "description": "d" * 101}])
    assert validate_commands([{**ok, "name": "Ask"}])
    assert validate_commands([{**ok, "options": [{"name": "a", "description": "a", "type": 3},
                                                 {"name": "b", "description": "b", "type": 3, "required": True}]}])


async def test_fake_rejects_over_limit_messages_and_parses_multipart(tmp_path):
    async with running_world(tmp_path) as w:
        channel = w.bot.get_channel(int(w.fake.channel_id))
        with pytest.raises(discord.HTTPException) as e:
            await channel.send("x" * 2001)
        assert e.value.status == 400
        assert w.fake.errors and "content" in w.fake.errors[-1][1][0]

        msg = await channel.send("with a file", file=discord.File(io.BytesIO(b"hello"), "note.txt"),
                                 embed=discord.Embed(description="an embed"))
        stored = w.fake.messages[str(msg.id)]
        assert stored["content"] == "with a file" and stored["embeds"][0]["description"] == "an embed"
        assert stored["attachments"][0]["filename"] == "note.txt"
        req = w.fake.requests_to("POST", f"/channels/{w.fake.channel_id}/messages")[-1]
        assert req.files == ["note.txt"] and req.json["content"] == "with a file"
        assert await msg.attachments[0].read() == b"hello", "attachments are served over http://127.0.0.1"


async def test_fake_refuses_a_second_interaction_response(tmp_path):
    import aiohttp

    async with running_world(tmp_path) as w:
        ix = await w.done(await w.fake.slash(w.member, "help"))
        url = f"{w.fake.api_base}/interactions/{ix.id}/{ix.token}/callback"
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json={"type": 4, "data": {"content": "again"}}) as resp:
                assert resp.status == 400
                assert resp.headers["Content-Type"] == "application/json"
                assert (await resp.json())["code"] == 40060


async def _raw(method: str, url: str, **kw):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, **kw) as resp:
            return resp.status, await resp.json()


async def test_interaction_deadlines_follow_the_fakes_clock(tmp_path):
    async with running_world(tmp_path, start=False) as w:
        w.fake.global_commands = [{"name": "help", "id": "1", "type": 1, "options": [], "default_member_permissions": None}]
        # no bot running: the test answers the interactions itself
        late = await w.fake.slash(w.member, "help")
        w.fake.clock.advance(3.1)
        status, body = await _raw("POST", f"{w.fake.api_base}/interactions/{late.id}/{late.token}/callback",
                                  json={"type": 4, "data": {"content": "too late"}})
        assert (status, body["code"]) == (404, 10062) and late.expired

        ok = await w.fake.slash(w.member, "help")
        status, _ = await _raw("POST", f"{w.fake.api_base}/interactions/{ok.id}/{ok.token}/callback?with_response=true",
                               json={"type": 5, "data": {}})
        assert status == 200
        hook = f"{w.fake.api_base}/webhooks/{w.fake.app_id}/{ok.token}"
        w.fake.clock.advance(14 * 60)
        status, _ = await _raw("PATCH", f"{hook}/messages/@original", json={"content": "still in time"})
        assert status == 200 and ok.text() == "still in time"
        w.fake.clock.advance(61)
        for method, url in (("PATCH", f"{hook}/messages/@original"), ("POST", hook)):
            status, body = await _raw(method, url, json={"content": "after 15 minutes"})
            assert (status, body["code"]) == (401, 50027), method


async def test_channel_permissions_are_enforced_with_403(tmp_path):
    async with running_world(tmp_path) as w:
        channel = w.bot.get_channel(int(w.fake.channel_id))
        await w.fake.deny(w.fake.channel_id, "embed_links", "attach_files")
        await w.fake.until(lambda: not channel.permissions_for(channel.guild.me).embed_links, what="the overwrite")
        with pytest.raises(discord.Forbidden) as e:
            await channel.send(embed=discord.Embed(description="x"))
        assert (e.value.status, e.value.code) == (403, 50013)
        with pytest.raises(discord.Forbidden):
            await channel.send("f", file=discord.File(io.BytesIO(b"x"), "x.txt"))
        plain = await channel.send("plain text is still allowed")
        await plain.edit(content="edited", embed=discord.Embed(description="dropped"))
        assert (w.fake.messages[str(plain.id)]["content"], w.fake.messages[str(plain.id)]["embeds"]) == ("edited", [])
        await w.fake.deny(w.fake.channel_id, "send_messages", "create_public_threads")
        for attempt in (channel.send("x"), channel.typing().__aenter__()):
            with pytest.raises(discord.Forbidden):
                await attempt
        msg = await w.bot.get_channel(int(w.fake.channel_id)).fetch_message(int(w.fake.bot_messages()[-1]["id"]))
        with pytest.raises(discord.Forbidden):
            await msg.create_thread(name="t")
        assert [r.status for r in w.fake.refused()] == [403] * 5
        assert w.fake.errors == [], "403s are refusals, not malformed requests"


async def test_default_member_permissions_hide_commands_unless_overridden(tmp_path):
    from fakediscord import CommandNotShown

    async with running_world(tmp_path, integrations=False) as w:
        with pytest.raises(CommandNotShown):
            await w.fake.slash(w.organizer, "upload", title="x")
        await w.done(await w.fake.slash(w.admin, "status"))  # administrators see everything
        w.fake.allow_command("upload", role=w.roles["organizer"])
        await w.done(await w.fake.slash(w.organizer, "upload", title="x"))
        w.fake.allow_command("upload", user=w.organizer, allow=False)  # a member override beats the role's
        with pytest.raises(CommandNotShown):
            await w.fake.slash(w.organizer, "upload", title="x")


async def test_a_reply_to_a_deleted_message_fails_unless_told_not_to(tmp_path):
    async with running_world(tmp_path) as w:
        m = await w.fake.user_says(w.member, "a question I will delete")
        await w.fake.until(lambda: w.bot._connection._get_message(int(m["id"])), what="the message cached")
        cached = w.bot._connection._get_message(int(m["id"]))
        await w.fake.delete_message(m)
        channel = w.bot.get_channel(int(w.fake.channel_id))
        with pytest.raises(discord.HTTPException) as e:
            await channel.send("reply", reference=cached.to_reference())
        assert (e.value.status, e.value.code) == (400, 50035)
        sent = await channel.send("reply", reference=cached.to_reference(fail_if_not_exists=False))
        assert sent.reference is None and "message_reference" not in w.fake.messages[str(sent.id)]


async def test_rate_limited_route_answers_429_and_discord_py_retries(tmp_path):
    async with running_world(tmp_path) as w:
        channel = w.bot.get_channel(int(w.fake.channel_id))
        w.fake.rate_limit("POST", f"/channels/{w.fake.channel_id}/messages", retry_after=0.4)
        await channel.send("after the wait")
        reqs = w.fake.requests_to("POST", f"/channels/{w.fake.channel_id}/messages")
        assert [r.status for r in reqs] == [429, 200]
        assert reqs[1].t - reqs[0].t >= 0.39, "the retry waited for Retry-After"


def test_without_the_message_content_intent_content_is_empty_except_for_mentions_dms_and_own():
    from fakediscord.server import FakeDiscord

    fake = FakeDiscord()
    member = fake.add_user("m")
    plain = fake._new_message(member, fake.channel_id, "hello", embeds=[{"description": "e"}],
                              attachments=[{"id": "1"}], components=[{"type": 1}])
    seen = fake.as_seen(plain, message_content=False)
    assert (seen["content"], seen["embeds"], seen["attachments"], seen["components"]) == ("", [], [], [])
    assert fake.as_seen(plain, message_content=True)["content"] == "hello"
    mention = fake._new_message(member, fake.channel_id, f"<@{fake.app_id}> hi")
    assert fake.as_seen(mention, False)["content"] == f"<@{fake.app_id}> hi"
    own = fake._new_message(fake.bot_user, fake.channel_id, "mine")
    assert fake.as_seen(own, False)["content"] == "mine"
    dm = fake._new_message(member, fake._dm_channel(member)["id"], "in a DM")
    assert fake.as_seen(dm, False)["content"] == "in a DM"
    reply = fake._new_message(fake.bot_user, fake.channel_id, "answer", referenced_message=plain)
    assert fake.as_seen(reply, False)["referenced_message"]["content"] == ""


async def test_without_the_intent_a_thread_follow_up_needs_a_mention(tmp_path):
    async with running_world(tmp_path, bot_kwargs={"message_content": False}) as w:
        ix = await w.ask(w.member, "Do they need my consent to make a digital replica of me?")
        thread = await w.fake.create_thread(w.member, ix.messages[0])
        quiet = await w.fake.user_says(w.member, "what about background actors?", channel_id=thread["id"])
        loud = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> what about background actors?", channel_id=thread["id"])
        await w.fake.until(lambda: w.fake.replies_to(loud), what="the answer to the mention")
        assert w.fake.replies_to(quiet) == [], "its content arrived empty, so there was nothing to answer"
        assert w.bot._connection._get_message(int(quiet["id"])).content == ""
