"""Who may do what: every command × member / organizer / moderator / admin. The in-code check decides,
whatever Discord's default_permissions say (a server admin can change those)."""
from __future__ import annotations

import asyncio

from fakediscord import EPHEMERAL
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
REFUSAL = {
    "organizer": "Only members with the **Organizer** or **Steward** roles (or server administrators) can use `/{}`.",
    "moderator": "Only members with the **Moderator** role (or server administrators) can use `/{}`.",
}


async def test_every_command_for_every_role(tmp_path):
    async with running_world(tmp_path) as w:
        outcomes = {}
        for who in ("member", "organizer", "moderator", "admin"):
            user = w.people[who]
            for name, (options, kind) in COMMANDS.items():
                ix = await w.fake.slash(user, name, **options)
                await w.done(ix, timeout=30, predicate=lambda ix: not ix.text().startswith("\u23f3"))
                if name == "reindex" and kind in ALLOWED[who]:
                    await w.done(ix, timeout=30, predicate=lambda ix: ix.text().startswith(("\u2705", "\u274c")))
                text = ix.text()
                assert not text.startswith("Sorry"), (who, name, text)
                refused = kind is not None and text == REFUSAL[kind].format(name)
                outcomes[(who, name)] = "refused" if refused else "allowed"
                if refused:
                    assert ix.callbacks[0][0] == 4 and ix.messages[0]["flags"] & EPHEMERAL, (who, name)
        expected = {(who, name): "allowed" if kind in ALLOWED[who] else "refused"
                    for who in ALLOWED for name, (_, kind) in COMMANDS.items()}
        assert outcomes == expected
        assert_clean(w.fake)


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

        # Someone with Manage Messages + Manage Server but none of the roles: Discord's defaults would show
        # them /upload and /reindex; the in-code check still refuses.
        helper_role = w.fake.add_role("Helpers", MANAGE_MESSAGES | MANAGE_GUILD)
        helper = w.fake.add_user("hal_helper", [helper_role])
        await w.fake.dispatch("GUILD_ROLE_CREATE", {"guild_id": w.fake.guild_id, "role": helper_role})
        for name in ("upload", "reindex"):
            options, kind = COMMANDS[name]
            ix = await w.done(await w.fake.slash(helper, name, **options))
            assert ix.text() == REFUSAL[kind].format(name)

        # An admin opened /upload to the Steward role in Integrations settings: Stewards (no permissions
        # at all) pass the in-code check because the role is configured.
        steward_role = w.fake.add_role("steward", 0)  # role names match case-insensitively
        steward = w.fake.add_user("sam_steward", [steward_role])
        await w.fake.dispatch("GUILD_ROLE_CREATE", {"guild_id": w.fake.guild_id, "role": steward_role})
        ix = await w.done(await w.fake.slash(steward, "upload", **COMMANDS["upload"][0]), timeout=30)
        assert ix.text().startswith("\u2705 Added **Tiny note**"), ix.text()
        await asyncio.sleep(0)
        assert_clean(w.fake)


async def test_server_owner_counts_as_admin(tmp_path):
    async with running_world(tmp_path) as w:
        owner = w.fake.add_user("owner")
        w.fake.owner_id = owner["id"]
        await w.fake.dispatch("GUILD_UPDATE", {**w.fake.guild(), "owner_id": owner["id"]})
        ix = await w.done(await w.fake.slash(owner, "status"))
        assert ix.messages[0]["embeds"][0]["title"] == "Bot status"
