"""Who may do what: every command × member / organizer / moderator / admin. Discord decides who *sees* a
command (default member permissions and Integrations overrides, enforced by the fake); the in-code check
decides who may *run* it, whatever those say (a server admin can change them). Roles are configured by id."""
from __future__ import annotations

import asyncio
import logging

import pytest
from fakediscord import EPHEMERAL, CommandNotShown
from fakediscord.harness import MANAGE_GUILD, MANAGE_MESSAGES, assert_clean, running_world

MD = b"# Tiny note\n\nA tiny note about scheduling of table reads for the writers.\n"

# command -> (options, required kind or None for everyone)
COMMANDS = {
    "ask": (dict(question="Is generative AI a writer?"), None),
    "help": ({}, None),
    "documents list": ({}, None),
    "upload": (dict(file=("note.md", MD, "text/markdown"), title="Tiny note"), "organizer"),
    "documents remove": (dict(document="no-such-document"), "organizer"),
    "documents replace": (dict(document="no-such-document", file=("note.md", MD, "text/markdown")), "organizer"),
    "gaps": ({}, "organizer"),
    "reindex": ({}, "moderator"),
    "status": ({}, "moderator"),
}
ALLOWED = {
    "member": {None},
    "organizer": {None, "organizer"},
    "moderator": {None, "moderator"},
    "admin": {None, "organizer", "moderator"},
}
# What Discord shows (default member permissions, plus the Integrations overrides the harness adds as
# docs/discord.md tells an admin to): /documents is one top-level command, visible to everyone.
SHOWN = {
    "member": {"ask", "help", "documents list", "documents remove", "documents replace"},
    "organizer": {"ask", "help", "documents list", "documents remove", "documents replace", "upload", "gaps"},
    "moderator": {"ask", "help", "documents list", "documents remove", "documents replace", "reindex", "status"},
    "admin": set(COMMANDS),
}
REFUSAL = {
    "organizer": "Only members with the **Organizer** role (or server administrators) can use `/{}`.",
    "moderator": "Only members with the **Moderator** role (or server administrators) can use `/{}`.",
}


async def test_every_command_for_every_role(tmp_path):
    async with running_world(tmp_path) as w:
        outcomes = {}
        for who in ("member", "organizer", "moderator", "admin"):
            user = w.people[who]
            for name, (options, kind) in COMMANDS.items():
                try:
                    ix = await w.fake.slash(user, name, **options)
                except CommandNotShown:
                    outcomes[(who, name)] = "hidden"
                    continue
                await w.done(ix, timeout=30, predicate=lambda ix: not ix.text().startswith("\u23f3"))
                if name == "reindex" and kind in ALLOWED[who]:
                    await w.done(ix, timeout=30, predicate=lambda ix: ix.text().startswith(("\u2705", "\u274c")))
                text = ix.text()
                assert not text.startswith("Sorry"), (who, name, text)
                refused = kind is not None and text == REFUSAL[kind].format(name)
                outcomes[(who, name)] = "refused" if refused else "allowed"
                if refused:
                    assert ix.callbacks[0][0] == 4 and ix.messages[0]["flags"] & EPHEMERAL, (who, name)
        expected = {(who, name): ("allowed" if kind in ALLOWED[who] else "refused") if name in SHOWN[who] else "hidden"
                    for who in ALLOWED for name, (_, kind) in COMMANDS.items()}
        assert outcomes == expected
        assert_clean(w.fake)


async def test_without_the_integrations_step_organizers_do_not_see_their_commands(tmp_path):
    async with running_world(tmp_path, integrations=False) as w:
        for name in ("upload", "gaps"):
            with pytest.raises(CommandNotShown):
                await w.fake.slash(w.organizer, name, **COMMANDS[name][0])
        for name in ("reindex", "status"):
            with pytest.raises(CommandNotShown):
                await w.fake.slash(w.moderator, name)
        # /help tells them what to ask the admin for
        ix = await w.done(await w.fake.slash(w.organizer, "help"))
        assert (
            "You have the **Organizer** role, so you may use `/upload` and `/gaps`. If they are not in your `/` menu, "
            "ask a server admin to add the **Organizer** role to them under Server Settings \u2192 Integrations \u2192 "
            "unionbot."
        ) in ix.text()
        ix = await w.done(await w.fake.slash(w.moderator, "help"))
        assert "You have the **Moderator** role, so you may use `/reindex` and `/status`." in ix.text()
        ix = await w.done(await w.fake.slash(w.member, "help"))
        assert "Integrations" not in ix.text(), "members without a role are not told about it"
        ix = await w.done(await w.fake.slash(w.admin, "help"))
        assert "Integrations" not in ix.text(), "administrators see every command anyway"


async def test_default_permissions_are_only_a_default(tmp_path):
    async with running_world(tmp_path) as w:
        synced = {c["name"]: c for c in w.fake.global_commands}
        assert synced["upload"]["default_member_permissions"] == str(MANAGE_MESSAGES)
        assert synced["gaps"]["default_member_permissions"] == str(MANAGE_MESSAGES)
        assert synced["reindex"]["default_member_permissions"] == str(MANAGE_GUILD)
        assert synced["status"]["default_member_permissions"] == str(MANAGE_GUILD)
        for everyone in ("ask", "help", "documents"):
            assert synced[everyone]["default_member_permissions"] is None
        assert all(c.get("contexts") == [0] for c in synced.values()), "server channels only"

        # Someone with Manage Messages + Manage Server but none of the roles: Discord's defaults show
        # them /upload and /reindex; the in-code check still refuses.
        helper_role = w.fake.add_role("Helpers", MANAGE_MESSAGES | MANAGE_GUILD)
        helper = w.fake.add_user("hal_helper", [helper_role])
        await w.fake.dispatch("GUILD_ROLE_CREATE", {"guild_id": w.fake.guild_id, "role": helper_role})
        for name in ("upload", "reindex"):
            options, kind = COMMANDS[name]
            ix = await w.done(await w.fake.slash(helper, name, **options))
            assert ix.text() == REFUSAL[kind].format(name)
        await asyncio.sleep(0)
        assert_clean(w.fake)


async def test_a_role_that_only_has_the_right_name_gets_no_rights(tmp_path):
    """Roles are configured by id: anyone with Manage Roles can make a role *named* Organizer."""
    async with running_world(tmp_path) as w:
        impostor_role = w.fake.add_role("Organizer", MANAGE_MESSAGES)  # same name, different id
        impostor = w.fake.add_user("ivy_impostor", [impostor_role])
        await w.fake.dispatch("GUILD_ROLE_CREATE", {"guild_id": w.fake.guild_id, "role": impostor_role})
        before = len(w.service.documents())
        ix = await w.done(await w.fake.slash(impostor, "upload", **COMMANDS["upload"][0]))
        assert ix.text() == REFUSAL["organizer"].format("upload")
        assert len(w.service.documents()) == before
        ix = await w.done(await w.fake.slash(w.organizer, "upload", **COMMANDS["upload"][0]), timeout=30)
        assert ix.text().startswith("\u2705 Added **Tiny note**"), ix.text()


async def test_role_names_still_work_but_are_warned_about(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="bot.discord_app.client"):
        async with running_world(tmp_path, organizer_roles=("organizer",), moderator_roles=("Moderator",)) as w:
            ix = await w.done(await w.fake.slash(w.organizer, "upload", **COMMANDS["upload"][0]), timeout=30)
            assert ix.text().startswith("\u2705 Added **Tiny note**"), ix.text()
            ix = await w.done(await w.fake.slash(w.member, "documents remove", document="x"))
            assert ix.text() == "Only members with the **organizer** role (or server administrators) can use `/documents remove`."
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("ORGANIZER_ROLES lists role names only (organizer): anyone with Manage Roles") for m in warned)
    assert any(m.startswith("MODERATOR_ROLES lists role names only (Moderator)") for m in warned)


async def test_no_role_configured_means_administrators_only(tmp_path, caplog):
    async with running_world(tmp_path, organizer_roles=(), moderator_roles=()) as w:
        ix = await w.done(await w.fake.slash(w.organizer, "upload", **COMMANDS["upload"][0]))
        assert ix.text() == "Only server administrators can use `/upload` (no role is configured for it)."
        ix = await w.done(await w.fake.slash(w.admin, "status"))
        assert ix.messages[0]["embeds"][0]["title"] == "Bot status"


async def test_a_role_id_that_is_not_in_the_server_is_warned_about(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="bot.discord_app.client"):
        async with running_world(tmp_path, moderator_roles=("123456789012345678",)) as w:
            ix = await w.done(await w.fake.slash(w.admin, "status"))
            assert ix.messages[0]["embeds"][0]["title"] == "Bot status"
    assert any(r.getMessage() == "MODERATOR_ROLES: no role with id 123456789012345678 in the bot's servers (deleted, or a typo?)"
               for r in caplog.records)


async def test_server_owner_counts_as_admin(tmp_path):
    async with running_world(tmp_path) as w:
        owner = w.fake.add_user("owner")
        w.fake.owner_id = owner["id"]
        await w.fake.dispatch("GUILD_UPDATE", {**w.fake.guild(), "owner_id": owner["id"]})
        ix = await w.done(await w.fake.slash(owner, "status"))
        assert ix.messages[0]["embeds"][0]["title"] == "Bot status"
