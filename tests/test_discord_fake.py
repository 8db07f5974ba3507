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
