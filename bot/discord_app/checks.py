"""Who may run what. Each check is written once and applied twice (the RoboDanny habit):

- as Discord `default_permissions` — only a *default* for who sees the command, which any server
  admin can change under Server Settings > Integrations;
- as a local check run on every invocation — this one is authoritative: members with one of the
  configured roles (from settings: role ids, or names) or server administrators pass, everyone else
  gets an ephemeral refusal naming the role they need.

Roles are configured by id (preferred: anyone with Manage Roles can create a role with a given *name*)
or by name (matched case-insensitively). Before any of this, `guild_allowed` keeps the bot to the
servers in ALLOWED_GUILD_IDS.

Mapping (documented in docs/discord.md):
  organizer commands (/upload, /documents remove|replace, /gaps)  default: Manage Messages
  moderator commands (/reindex, /status)                           default: Manage Server
Subcommands can't carry their own default_permissions (Discord applies them per top-level command),
so `/documents` stays visible to everyone and its organizer subcommands rely on the local check.
"""
from __future__ import annotations

from typing import Callable, Iterable, Literal, TypeVar

import discord
from discord import app_commands

T = TypeVar("T")
Kind = Literal["organizer", "moderator"]

DEFAULT_PERMISSIONS: dict[Kind, dict[str, bool]] = {
    "organizer": {"manage_messages": True},
    "moderator": {"manage_guild": True},
}


class MissingRole(app_commands.CheckFailure):
    """Raised by a role check; its message is shown to the member (ephemeral)."""

    def __init__(self, command: str, roles: Iterable[str]):
        self.command = command
        self.roles = tuple(roles)
        super().__init__(missing_role_message(command, self.roles))


NOT_ALLOWED_HERE = ("I only work in the servers I was set up for, so I can't help here. "
                    "A server admin can remove me under Server Settings → Integrations.")
NOT_IN_DMS = "I work in server channels, not in direct messages."


def allowlist(settings) -> frozenset[int]:
    return frozenset(int(g) for g in getattr(settings, "allowed_guild_ids", ()) or ())


def guild_allowed(settings, guild_id: int | None) -> bool:
    """A server the bot may work in: any server when ALLOWED_GUILD_IDS is empty (the bot then refuses
    to start if the application is public), else only the listed ones. Never a DM."""
    if guild_id is None:
        return False
    ids = allowlist(settings)
    return not ids or int(guild_id) in ids


def split_roles(entries: Iterable[str]) -> tuple[frozenset[int], frozenset[str]]:
    """(role ids, casefolded role names) from ORGANIZER_ROLES / MODERATOR_ROLES entries."""
    ids, names = set(), set()
    for e in entries:
        e = str(e).strip()
        if e.isdigit():
            ids.add(int(e))
        elif e.startswith("<@&") and e.endswith(">") and e[3:-1].isdigit():  # a pasted role mention
            ids.add(int(e[3:-1]))
        elif e:
            names.add(e.casefold())
    return frozenset(ids), frozenset(names)


def role_labels(entries: Iterable[str], guild: discord.Guild | None) -> tuple[str, ...]:
    """The configured roles as members know them: ids shown as the role's name in this server."""
    out = []
    for e in entries:
        e = str(e).strip()
        ids, _ = split_roles([e])
        if ids:
            role = guild.get_role(next(iter(ids))) if guild is not None else None
            if role is None:
                continue  # an id of a role in another server (or deleted): nothing a member could ask for
            out.append(role.name)
        elif e:
            out.append(e)
    return tuple(dict.fromkeys(out))


def _quote_roles(roles: tuple[str, ...]) -> str:
    names = [f"**{r}**" for r in roles]
    if not names:
        return "no role is configured"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def missing_role_message(command: str, roles: tuple[str, ...]) -> str:
    if not roles:
        return f"Only server administrators can use `/{command}` (no role is configured for it)."
    plural = "role" if len(roles) == 1 else "roles"
    return f"Only members with the {_quote_roles(roles)} {plural} (or server administrators) can use `/{command}`."


def roles_for(settings, kind: Kind) -> tuple[str, ...]:
    return tuple(settings.organizer_roles if kind == "organizer" else settings.moderator_roles)


def is_admin(member: discord.abc.User, interaction: discord.Interaction | None = None) -> bool:
    if not isinstance(member, discord.Member):
        return False
    if member.guild_permissions.administrator:
        return True
    return bool(interaction is not None and interaction.permissions.administrator)


def has_any_role(member: discord.abc.User, entries: Iterable[str]) -> bool:
    """One of the configured roles: by id, or by name (case-insensitive)."""
    if not isinstance(member, discord.Member):
        return False
    ids, names = split_roles(entries)
    return any(r.id in ids or r.name.casefold() in names for r in member.roles if not r.is_default())


def allowed(settings, kind: Kind, member: discord.abc.User, interaction: discord.Interaction | None = None) -> bool:
    """The authoritative rule: a configured role, or server administrator."""
    return is_admin(member, interaction) or has_any_role(member, roles_for(settings, kind))


def names_only(settings, kind: Kind) -> bool:
    """Roles configured by name only (anyone with Manage Roles could create one with that name)."""
    ids, names = split_roles(roles_for(settings, kind))
    return bool(names) and not ids


def _predicate(kind: Kind) -> Callable[[discord.Interaction], bool]:
    def predicate(interaction: discord.Interaction) -> bool:
        settings = interaction.client.settings  # type: ignore[attr-defined]
        if allowed(settings, kind, interaction.user, interaction):
            return True
        name = interaction.command.qualified_name if interaction.command else "this command"
        raise MissingRole(name, role_labels(roles_for(settings, kind), interaction.guild))

    return predicate


def require(kind: Kind) -> Callable[[T], T]:
    """Local check plus Discord default_permissions, for a top-level command."""

    def decorator(func: T) -> T:
        func = app_commands.default_permissions(**DEFAULT_PERMISSIONS[kind])(func)
        return app_commands.check(_predicate(kind))(func)

    return decorator


def require_local(kind: Kind) -> Callable[[T], T]:
    """Local check only, for subcommands (Discord has no per-subcommand default_permissions)."""
    return app_commands.check(_predicate(kind))


organizer_only = lambda: require("organizer")  # noqa: E731
moderator_only = lambda: require("moderator")  # noqa: E731
