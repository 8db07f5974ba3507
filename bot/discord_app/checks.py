"""Who may run what. Each check is written once and applied twice (the RoboDanny habit):

- as Discord `default_permissions` — only a *default* for who sees the command, which any server
  admin can change under Server Settings > Integrations;
- as a local check run on every invocation — this one is authoritative: members with one of the
  named roles (from settings) or server administrators pass, everyone else gets an ephemeral
  refusal naming the role they need.

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


def has_any_role(member: discord.abc.User, names: Iterable[str]) -> bool:
    if not isinstance(member, discord.Member):
        return False
    wanted = {n.casefold() for n in names}
    return any(r.name.casefold() in wanted for r in member.roles)


def allowed(settings, kind: Kind, member: discord.abc.User, interaction: discord.Interaction | None = None) -> bool:
    """The authoritative rule: a named role, or server administrator."""
    return is_admin(member, interaction) or has_any_role(member, roles_for(settings, kind))


def _predicate(kind: Kind) -> Callable[[discord.Interaction], bool]:
    def predicate(interaction: discord.Interaction) -> bool:
        settings = interaction.client.settings  # type: ignore[attr-defined]
        if allowed(settings, kind, interaction.user, interaction):
            return True
        name = interaction.command.qualified_name if interaction.command else "this command"
        raise MissingRole(name, roles_for(settings, kind))

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
