"""A fake Discord (REST + gateway) for the unmodified discord.py client. Loopback only.

What it models, closely enough for discord.py 2.7 and for asserting what members would see:

Gateway   HELLO, IDENTIFY -> READY (guild unavailable) -> GUILD_CREATE, heartbeats and ACKs, sessions
          with sequence numbers; `drop_connection()` closes the socket server-side, events dispatched
          while the bot is away are buffered, and RESUME (op 6) replays them and sends RESUMED.
Events    MESSAGE_CREATE (plain, mentions, replies), THREAD_CREATE + messages in threads,
          INTERACTION_CREATE: slash commands (options, subcommands, attachments in data.resolved),
          autocomplete (type 4) and button clicks (type 3, with the message and custom_id).
REST      messages (create/edit/get, JSON or multipart payload_json + files), typing, threads,
          interaction callbacks 1/4/5/6/7/8/9 (`?with_response=true` answers with the resource),
          webhook followups, @original GET/PATCH/DELETE, command sync (global and guild) and
          attachment downloads over http://127.0.0.1.
Limits    Message payloads are validated like Discord does (content 2,000; 10 embeds; 6,000 embed
          characters; description 4,096; 25 fields of 256/1,024; custom_id 100; ...). A violation
          answers 400 "Invalid Form Body" and is recorded in `errors`, so a test can assert none happened.
          Command definitions are checked at sync (names, 1-100 character descriptions, option order),
          and a second response to one interaction is refused (40060), as on Discord.

Refusals Discord's "no", so a test fails where real Discord would:
          - Message Content intent: a session that did not ask for intent bit 15 gets messages with
            empty content/embeds/attachments/components, except messages that mention the bot, DMs and
            the bot's own (REST GET of a message likewise).
          - Interaction deadlines on `clock` (tests move it with `clock.advance()`): no initial response
            within 3 s -> 404 10062 Unknown interaction; followups/edits after 15 minutes -> 401 50027.
          - Permissions: `deny(channel, "send_messages", ...)` -> 403 50013 on send/typing/embeds/files/
            thread creation (an edit that adds embeds without Embed Links keeps its text, drops the embeds); `slash()` raises CommandNotShown when Discord would hide the command
            (default member permissions, unless `allow_command()` adds an Integrations override).
          - A reply whose referenced message was deleted -> 400 50035 unless fail_if_not_exists is false.
          - `rate_limit(method, fragment)` -> 429 with Retry-After (and the headers discord.py reads).
World     guilds (`add_guild()`, `bot_added_to()`; DELETE /users/@me/guilds/{id} leaves), the bot's
          managed role, DMs (`user_dms()`, POST /users/@me/channels), `delete_message()`,
          `archive_thread()` (archived threads are not in GUILD_CREATE; posting unarchives them).

Every REST request is recorded in `requests` (method, path, query, JSON payload, files, status).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import WSMsgType, web

DISCORD_EPOCH_MS = 1420070400000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
ALL_PERMISSIONS = (1 << 53) - 1
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
MANAGE_MESSAGES = 1 << 13
EVERYONE_PERMISSIONS = 0x63584C0  # view channel, send messages, read history, embed links, attach files, use app commands...
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
CREATE_PUBLIC_THREADS = 1 << 35
SEND_MESSAGES_IN_THREADS = 1 << 38
PERMISSION_BITS = {"send_messages": SEND_MESSAGES, "embed_links": EMBED_LINKS, "attach_files": ATTACH_FILES,
                   "create_public_threads": CREATE_PUBLIC_THREADS, "send_messages_in_threads": SEND_MESSAGES_IN_THREADS}
BOT_INVITE_PERMISSIONS = 274877991936  # the invite link in docs/discord.md
MESSAGE_CONTENT_INTENT = 1 << 15
INITIAL_RESPONSE_S = 3.0  # an interaction must be answered (or deferred) within 3 seconds
TOKEN_LIFETIME_S = 15 * 60  # its token then works for followups and edits for 15 minutes


def jr(obj: Any, status: int = 200) -> web.Response:
    # discord.py parses JSON only when Content-Type is exactly "application/json"
    return web.Response(body=json.dumps(obj).encode(), status=status, headers={"Content-Type": "application/json"})


_ids = itertools.count((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22)


def snow() -> str:
    return str(next(_ids))


def iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())


@dataclass
class Request:
    method: str
    path: str
    query: dict
    json: Any
    files: list = field(default_factory=list)
    status: int = 0
    t: float = field(default_factory=time.monotonic)


@dataclass
class Session:
    id: str
    seq: int = 0
    events: list = field(default_factory=list)  # (seq, frame)
    ws: web.WebSocketResponse | None = None
    intents: int = 0


@dataclass
class Interaction:
    """A member's interaction and everything the bot did in response."""

    fake: "FakeDiscord"
    id: str
    token: str
    type: int
    user: dict
    channel_id: str
    name: str = ""
    message_id: str | None = None  # for component clicks: the message the button is on
    callbacks: list = field(default_factory=list)  # (type, data)
    original_id: str | None = None
    followup_ids: list = field(default_factory=list)
    deferred: bool = False
    choices: list | None = None  # autocomplete result
    created: float = 0.0  # on the fake's clock
    guild_id: str | None = None
    expired: bool = False  # a callback came after the 3-second deadline (and was refused)

    @property
    def acked(self) -> bool:
        return bool(self.callbacks)

    @property
    def original(self) -> dict | None:
        return self.fake.messages.get(self.original_id) if self.original_id else None

    @property
    def followups(self) -> list[dict]:
        return [self.fake.messages[i] for i in self.followup_ids]

    @property
    def messages(self) -> list[dict]:
        """The visible response messages: the original (unless still loading) and the followups."""
        out = []
        if self.original is not None and not (self.original["flags"] & LOADING):
            out.append(self.original)
        return out + self.followups

    @property
    def ephemeral(self) -> bool:
        return bool(self.messages) and all(m["flags"] & EPHEMERAL for m in self.messages)

    def text(self) -> str:
        """Everything a member reads in the response: content and embed text, in order."""
        return "\n".join(message_text(m) for m in self.messages)


def message_text(m: dict) -> str:
    parts = [m.get("content") or ""]
    for e in m.get("embeds") or []:
        parts += [e.get("title") or "", e.get("description") or ""]
        for f in e.get("fields") or []:
            parts += [f.get("name") or "", f.get("value") or ""]
        parts.append((e.get("footer") or {}).get("text") or "")
    return "\n".join(p for p in parts if p)


def custom_ids(m: dict) -> list[str]:
    return [c.get("custom_id") for row in m.get("components") or [] for c in row.get("components") or [] if c.get("custom_id")]


# ---- validation like Discord's ------------------------------------------------------------------------

def validate_message(payload: dict, *, creating: bool, has_files: bool = False) -> list[str]:
    errors = []
    content = payload.get("content")
    if content is not None and len(content) > 2000:
        errors.append(f"content: must be 2000 or fewer in length ({len(content)})")
    embeds = payload.get("embeds") or []
    if len(embeds) > 10:
        errors.append(f"embeds: must be 10 or fewer in length ({len(embeds)})")
    total = 0
    for i, e in enumerate(embeds):
        title, desc = e.get("title") or "", e.get("description") or ""
        if len(title) > 256:
            errors.append(f"embeds.{i}.title: must be 256 or fewer in length")
        if len(desc) > 4096:
            errors.append(f"embeds.{i}.description: must be 4096 or fewer in length ({len(desc)})")
        fields = e.get("fields") or []
        if len(fields) > 25:
            errors.append(f"embeds.{i}.fields: must be 25 or fewer in length")
        size = len(title) + len(desc)
        for j, f in enumerate(fields):
            name, value = f.get("name") or "", f.get("value") or ""
            if not name or not value:
                errors.append(f"embeds.{i}.fields.{j}: name and value are required")
            if len(name) > 256:
                errors.append(f"embeds.{i}.fields.{j}.name: must be 256 or fewer in length")
            if len(value) > 1024:
                errors.append(f"embeds.{i}.fields.{j}.value: must be 1024 or fewer in length ({len(value)})")
            size += len(name) + len(value)
        footer = (e.get("footer") or {}).get("text") or ""
        if len(footer) > 2048:
            errors.append(f"embeds.{i}.footer.text: must be 2048 or fewer in length")
        author = (e.get("author") or {}).get("name") or ""
        if len(author) > 256:
            errors.append(f"embeds.{i}.author.name: must be 256 or fewer in length")
        size += len(footer) + len(author)
        if not (title or desc or fields or footer or author or e.get("image") or e.get("thumbnail")):
            errors.append(f"embeds.{i}: embed is empty")
        total += size
    if total > 6000:
        errors.append(f"embeds: total size must be 6000 or fewer ({total})")
    rows = payload.get("components") or []
    if len(rows) > 5:
        errors.append("components: must be 5 or fewer in length")
    for r, row in enumerate(rows):
        children = row.get("components") or []
        if len(children) > 5:
            errors.append(f"components.{r}: must be 5 or fewer in length")
        for c, comp in enumerate(children):
            cid = comp.get("custom_id")
            if cid is not None and not 1 <= len(cid) <= 100:
                errors.append(f"components.{r}.components.{c}.custom_id: must be 1-100 characters")
            if len(comp.get("label") or "") > 80:
                errors.append(f"components.{r}.components.{c}.label: must be 80 or fewer in length")
    if creating and not (content or embeds or has_files or payload.get("attachments") or rows or payload.get("sticker_ids")
                         or payload.get("poll")):
        errors.append("Cannot send an empty message")
    return errors


def validate_commands(commands: list) -> list[str]:
    """Discord's rules for application command definitions (names, descriptions, option counts)."""
    import re

    name_ok = re.compile(r"^[-_\w]{1,32}$")
    errors = []

    def check(obj: dict, where: str, top: bool) -> None:
        if not name_ok.match(obj.get("name", "")) or obj["name"] != obj["name"].lower():
            errors.append(f"{where}.name: invalid {obj.get('name')!r}")
        if (obj.get("type", 1) == 1 or not top) and not 1 <= len(obj.get("description") or "") <= 100:
            errors.append(f"{where}.description: must be 1-100 characters ({len(obj.get('description') or '')})")
        options = obj.get("options") or []
        if len(options) > 25:
            errors.append(f"{where}.options: must be 25 or fewer")
        required_seen_optional = False
        for i, o in enumerate(options):
            check(o, f"{where}.options.{i}", False)
            if o.get("type") not in (1, 2):
                if o.get("required") and required_seen_optional:
                    errors.append(f"{where}.options.{i}: required options must come before optional ones")
                if not o.get("required"):
                    required_seen_optional = True
            for j, c in enumerate(o.get("choices") or []):
                if not 1 <= len(c.get("name") or "") <= 100:
                    errors.append(f"{where}.options.{i}.choices.{j}.name: must be 1-100 characters")

    if len(commands) > 100:
        errors.append("too many commands")
    for n, c in enumerate(commands):
        check(c, str(n), True)
    return errors


def validate_choices(choices: list) -> list[str]:
    errors = []
    if len(choices) > 25:
        errors.append("choices: must be 25 or fewer in length")
    for i, c in enumerate(choices):
        if not 1 <= len(c.get("name") or "") <= 100:
            errors.append(f"choices.{i}.name: must be 1-100 characters")
        v = c.get("value")
        if isinstance(v, str) and len(v) > 100:
            errors.append(f"choices.{i}.value: must be 100 or fewer in length")
    return errors


class CommandNotShown(AssertionError):
    """Discord does not show this command to this member (default member permissions or an
    Integrations override), so they cannot run it at all."""


class Clock:
    """The fake's sense of time for interaction deadlines; tests move it with `advance()`."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Guild:
    id: str
    name: str
    owner_id: str
    channel_id: str
    roles: list = field(default_factory=list)
    members: dict = field(default_factory=dict)
    joined: bool = True  # the bot is in it (False after it left)


@dataclass
class RateLimit:
    method: str
    fragment: str
    retry_after: float
    times: int


class FakeDiscord:
    """Guilds (one to start with, `add_guild()` for more), each with one text channel (plus threads),
    any number of members and roles; DM channels; the bot's own managed role in every guild."""

    def __init__(self, host: str = "127.0.0.1"):
        self.host, self.port = host, 0
        self.app_id = snow()
        self.bot_user = {"id": self.app_id, "username": "unionbot", "discriminator": "0", "global_name": None,
                         "avatar": None, "bot": True}
        self.bot_public = True  # "Public Bot" on the portal's Bot page (Discord's default for a new app)
        self.clock = Clock()
        self.users: dict[str, dict] = {}
        self.guilds: dict[str, Guild] = {}
        self.threads: dict[str, dict] = {}
        self.dm_channels: dict[str, dict] = {}  # channel id -> DM channel payload
        self.dms_closed: set[str] = set()  # users who don't accept DMs from the bot (50007)
        self.denied: dict[str, int] = {}  # channel id -> permission bits denied to the bot there
        self.command_overrides: dict[tuple[str, str], dict[str, bool]] = {}  # (guild, command) -> {role/user id: allow}
        self.rate_limits: list[RateLimit] = []
        self.messages: dict[str, dict] = {}
        self.deleted: set[str] = set()
        self.files: dict[str, tuple[str, bytes, str]] = {}
        self.global_commands: list[dict] = []
        self.guild_commands: dict[str, list[dict]] = {}
        self.interactions: dict[str, Interaction] = {}
        self.by_token: dict[str, Interaction] = {}
        self.requests: list[Request] = []
        self.errors: list[tuple[Request, list[str]]] = []
        self.gateway_log: list[dict] = []  # what the bot sent on the gateway (op, and d without token)
        self.sessions: dict[str, Session] = {}
        self.identifies = 0
        self.resumes = 0
        # intents this application is not allowed (like a privileged intent not enabled in the portal):
        # IDENTIFY asking for one is closed with 4014, as Discord does
        self.disallowed_intents = 0
        self._changed = asyncio.Event()
        self.primary = self._make_guild("Local 42")
        self.runner: web.AppRunner | None = None

    # ---- the first guild, as plain attributes ---------------------------------------------------------
    @property
    def guild_id(self) -> str:
        return self.primary.id

    @property
    def channel_id(self) -> str:
        return self.primary.channel_id

    @property
    def roles(self) -> list[dict]:
        return self.primary.roles

    @property
    def members(self) -> dict[str, dict]:
        return self.primary.members

    @property
    def owner_id(self) -> str:
        return self.primary.owner_id

    @owner_id.setter
    def owner_id(self, value: str) -> None:
        self.primary.owner_id = value

    # ---- world building ------------------------------------------------------------------------------
    @staticmethod
    def _role_payload(rid: str, name: str, permissions: int, position: int, **extra) -> dict:
        role = {"id": rid, "name": name, "permissions": str(permissions), "position": position, "color": 0, "hoist": False,
                "managed": False, "mentionable": False, "flags": 0, "icon": None, "unicode_emoji": None}
        role.update(extra)
        return role

    def _make_guild(self, name: str) -> Guild:
        g = Guild(id=snow(), name=name, owner_id=snow(), channel_id=snow())
        g.roles.append(self._role_payload(g.id, "@everyone", EVERYONE_PERMISSIONS, 0))
        # Discord gives every bot a managed role named after it, tagged with its id, on joining
        bot_role = self._role_payload(snow(), self.bot_user["username"], BOT_INVITE_PERMISSIONS, 1, managed=True,
                                      tags={"bot_id": self.app_id})
        g.roles.append(bot_role)
        self.guilds[g.id] = g
        self._member(self.bot_user, [bot_role["id"]], g)
        return g

    def add_guild(self, name: str = "Another server") -> Guild:
        """Another server the bot is in (before the bot connects: it is in READY)."""
        return self._make_guild(name)

    async def bot_added_to(self, name: str = "Someone else's server") -> Guild:
        """Someone adds the bot to a new server while it runs: GUILD_CREATE arrives for it."""
        g = self._make_guild(name)
        payload = self.guild(g)
        del payload["unavailable"]  # absent for a join (false means "available again after an outage")
        await self.dispatch("GUILD_CREATE", payload)
        return g

    def bot_managed_role(self, guild: Guild | None = None) -> dict:
        g = guild or self.primary
        return next(r for r in g.roles if (r.get("tags") or {}).get("bot_id") == self.app_id)

    def add_role(self, name: str, permissions: int = 0, guild: Guild | None = None) -> dict:
        g = guild or self.primary
        role = self._role_payload(snow(), name, permissions, len(g.roles))
        g.roles.append(role)
        return role

    def add_user(self, name: str, roles: list[dict] = (), guild: Guild | None = None) -> dict:
        user = {"id": snow(), "username": name, "discriminator": "0", "global_name": name, "avatar": None, "bot": False}
        self.users[user["id"]] = user
        self._member(user, [r["id"] for r in roles], guild or self.primary)
        return user

    def add_member(self, user: dict, guild: Guild, roles: list[dict] = ()) -> None:
        """An existing user joins another guild."""
        self._member(user, [r["id"] for r in roles], guild)

    def _member(self, user: dict, role_ids: list[str], guild: Guild) -> None:
        guild.members[user["id"]] = {"user": user, "roles": list(role_ids), "joined_at": iso(), "deaf": False, "mute": False,
                                     "flags": 0, "nick": None, "avatar": None, "pending": False, "premium_since": None}

    def guild_of(self, channel_id: str) -> Guild | None:
        if channel_id in self.threads:
            return self.guilds[self.threads[channel_id]["guild_id"]]
        return next((g for g in self.guilds.values() if g.channel_id == channel_id), None)

    def permissions_of(self, user_id: str, guild: Guild | None = None) -> int:
        g = guild or self.primary
        if user_id == g.owner_id:
            return ALL_PERMISSIONS
        role_ids = set(g.members[user_id]["roles"]) | {g.id}
        perms = 0
        for r in g.roles:
            if r["id"] in role_ids:
                perms |= int(r["permissions"])
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def _member_payload(self, user_id: str, with_user: bool = True, permissions: bool = False,
                        guild: Guild | None = None) -> dict:
        g = guild or self.primary
        mem = dict(g.members[user_id])
        if not with_user:
            mem.pop("user")
        if permissions:
            mem["permissions"] = str(self.permissions_of(user_id, g))
        return mem

    def channel(self, guild: Guild | None = None) -> dict:
        g = guild or self.primary
        denied = self.denied.get(g.channel_id, 0)
        overwrites = [{"id": self.app_id, "type": 1, "allow": "0", "deny": str(denied)}] if denied else []
        return {"id": g.channel_id, "type": 0, "guild_id": g.id, "name": "general", "position": 0,
                "permission_overwrites": overwrites, "nsfw": False, "parent_id": None, "topic": None,
                "last_message_id": None, "rate_limit_per_user": 0, "flags": 0}

    def channel_payload(self, channel_id: str) -> dict:
        if channel_id in self.threads:
            return self.threads[channel_id]
        if channel_id in self.dm_channels:
            return self.dm_channels[channel_id]
        return self.channel(self.guild_of(channel_id))

    def guild(self, guild: Guild | None = None) -> dict:
        g = guild or self.primary
        return {"id": g.id, "name": g.name, "owner_id": g.owner_id, "icon": None, "splash": None,
                "discovery_splash": None, "features": [], "roles": g.roles, "emojis": [], "stickers": [],
                "channels": [self.channel(g)],
                # only active threads are sent with a guild; archived ones the bot must fetch (or never sees)
                "threads": [t for t in self.threads.values() if t["guild_id"] == g.id and not t["thread_metadata"]["archived"]],
                "members": [self._member_payload(self.app_id, guild=g)], "member_count": len(g.members), "large": False,
                "unavailable": False, "presences": [], "voice_states": [], "joined_at": iso(), "verification_level": 0,
                "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0, "premium_tier": 0,
                "system_channel_flags": 0, "preferred_locale": "en-US", "nsfw_level": 0, "afk_timeout": 300,
                "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [], "application_id": None,
                "description": None, "banner": None, "vanity_url_code": None, "premium_subscription_count": 0,
                "max_members": 500000, "max_video_channel_users": 25, "nsfw": False}

    # ---- what Discord refuses --------------------------------------------------------------------------
    async def deny(self, channel_id: str, *permissions: str) -> None:
        """Deny the bot a permission in a channel (a channel overwrite), e.g. deny(cid, "send_messages").
        Names: send_messages, send_messages_in_threads, embed_links, attach_files, create_public_threads."""
        for p in permissions:
            self.denied[channel_id] = self.denied.get(channel_id, 0) | PERMISSION_BITS[p]
        if channel_id not in self.threads and channel_id not in self.dm_channels:
            await self.dispatch("CHANNEL_UPDATE", self.channel(self.guild_of(channel_id)))

    def _denied_bits(self, channel_id: str) -> int:
        bits = self.denied.get(channel_id, 0)
        if channel_id in self.threads:  # a thread takes its parent's overwrites
            bits |= self.denied.get(self.threads[channel_id]["parent_id"], 0)
        return bits

    def bot_permissions_in(self, channel_id: str) -> int:
        return ALL_PERMISSIONS & ~self._denied_bits(channel_id)

    def allow_command(self, name: str, *, role: dict | None = None, user: dict | None = None, allow: bool = True,
                      guild: Guild | None = None) -> None:
        """What an admin does under Server Settings > Integrations > the bot > a command: add a role or
        member to it (or deny them). Overrides replace the command's default member permissions."""
        g = guild or self.primary
        target = role["id"] if role is not None else user["id"] if user is not None else g.id  # g.id = @everyone
        self.command_overrides.setdefault((g.id, name.split()[0]), {})[target] = allow

    def command_visible(self, user_id: str, command: dict, guild: Guild | None = None) -> bool:
        """Whether Discord shows (and lets this member run) the command in this guild."""
        g = guild or self.primary
        perms = self.permissions_of(user_id, g)
        if perms & ADMINISTRATOR:
            return True
        overrides = self.command_overrides.get((g.id, command["name"]), {})
        if user_id in overrides:
            return overrides[user_id]
        role_values = [overrides[r] for r in g.members[user_id]["roles"] if r in overrides]
        if role_values:
            return any(role_values)
        if g.id in overrides:
            return overrides[g.id]
        dmp = command.get("default_member_permissions")
        if dmp is None:
            return True
        dmp = int(dmp)
        return dmp != 0 and perms & dmp == dmp

    def rate_limit(self, method: str, fragment: str, retry_after: float = 0.5, times: int = 1) -> None:
        """The next `times` requests `method` to a path containing `fragment` answer 429 with Retry-After."""
        self.rate_limits.append(RateLimit(method, fragment, retry_after, times))

    @property
    def message_content_granted(self) -> bool:
        """Whether the bot's gateway session asked for (and was allowed) the Message Content intent."""
        sessions = list(self.sessions.values())
        if not sessions:
            return not self.disallowed_intents & MESSAGE_CONTENT_INTENT
        return bool(sessions[-1].intents & MESSAGE_CONTENT_INTENT)

    def _content_visible(self, m: dict) -> bool:
        return (m["author"]["id"] == self.app_id or not m.get("guild_id")
                or any(u["id"] == self.app_id for u in m.get("mentions") or []))

    def as_seen(self, m: dict, message_content: bool) -> dict:
        """A message as the bot receives it: without the Message Content intent, content, embeds,
        attachments and components are empty unless the message mentions the bot, is a DM, or is the
        bot's own (the referenced message of a reply is treated the same way)."""
        if message_content:
            return m
        out = m if self._content_visible(m) else {**m, "content": "", "embeds": [], "attachments": [], "components": []}
        ref = m.get("referenced_message")
        if isinstance(ref, dict):
            out = {**out, "referenced_message": self.as_seen(ref, False)}
        return out

    async def delete_message(self, message: dict) -> None:
        """A member deletes their message."""
        m = self.messages.pop(message["id"], None)
        self.deleted.add(message["id"])
        if m is not None:
            await self.dispatch("MESSAGE_DELETE", {"id": m["id"], "channel_id": m["channel_id"], "guild_id": m.get("guild_id")})

    async def archive_thread(self, thread: dict) -> None:
        """The thread goes inactive (auto-archive): THREAD_UPDATE archived; discord.py drops it from its cache."""
        thread["thread_metadata"]["archived"] = True
        thread["thread_metadata"]["archive_timestamp"] = iso()
        await self.dispatch("THREAD_UPDATE", thread)

    async def _unarchive_if_needed(self, channel_id: str) -> bool:
        t = self.threads.get(channel_id)
        if t is None or not t["thread_metadata"]["archived"]:
            return False
        t["thread_metadata"]["archived"] = False
        return True

    # ---- change notification -----------------------------------------------------------------------------
    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
        """Wait until predicate() is truthy (re-checked on every request/event); return its value."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            ev = self._changed
            try:
                await asyncio.wait_for(ev.wait(), min(remaining, 0.25))
            except asyncio.TimeoutError:
                pass

    # ---- gateway --------------------------------------------------------------------------------------------
    async def dispatch(self, t: str, d: dict) -> None:
        for s in list(self.sessions.values()):
            s.seq += 1
            data = d
            if t in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
                data = self.as_seen(d, bool(s.intents & MESSAGE_CONTENT_INTENT))
            frame = {"op": 0, "t": t, "s": s.seq, "d": data}
            s.events.append((s.seq, frame))
            if s.ws is not None and not s.ws.closed:
                try:
                    await s.ws.send_str(json.dumps(frame))
                except ConnectionError:
                    s.ws = None
        self._notify()

    @property
    def connected(self) -> bool:
        return any(s.ws is not None and not s.ws.closed for s in self.sessions.values())

    async def close_connections(self, code: int) -> None:
        """Close every gateway socket with `code` and forget the sessions (4004 = authentication failed)."""
        sessions, self.sessions = self.sessions, {}
        for s in sessions.values():
            if s.ws is not None:
                await s.ws.close(code=code)
        self._notify()

    async def drop_connection(self, code: int = 4000) -> None:
        """Close every gateway socket from the server side (as Discord does on a hiccup)."""
        for s in self.sessions.values():
            if s.ws is not None:
                ws, s.ws = s.ws, None
                await ws.close(code=code, message=b"fake: connection dropped")
        self._notify()

    async def gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        session: Session | None = None
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            p = json.loads(msg.data)
            op, d = p.get("op"), p.get("d")
            self.gateway_log.append({"op": op, "d": {k: v for k, v in (d or {}).items() if k != "token"} if isinstance(d, dict) else d})
            if op == 1:
                await ws.send_str(json.dumps({"op": 11}))
            elif op == 2:  # IDENTIFY
                self.identifies += 1
                intents = int((d or {}).get("intents", 0))
                if intents & self.disallowed_intents:
                    await ws.close(code=4014, message=b"Disallowed intent(s).")
                    break
                session = Session(id=uuid.uuid4().hex, ws=ws, intents=intents)
                self.sessions = {session.id: session}  # one bot connection at a time
                session.seq += 1
                joined = [g for g in self.guilds.values() if g.joined]
                ready = {"op": 0, "t": "READY", "s": session.seq, "d": {
                    "v": 10, "user": self.bot_user, "guilds": [{"id": g.id, "unavailable": True} for g in joined],
                    "session_id": session.id, "resume_gateway_url": f"ws://{self.host}:{self.port}/",
                    "application": {"id": self.app_id, "flags": 0}, "private_channels": [], "relationships": [],
                    "user_settings": {}, "session_type": "normal", "shard": [0, 1]}}
                session.events.append((session.seq, ready))
                await ws.send_str(json.dumps(ready))
                for g in joined:
                    await self.dispatch("GUILD_CREATE", self.guild(g))
            elif op == 6:  # RESUME
                session = self.sessions.get(d.get("session_id"))
                if session is None:
                    await ws.send_str(json.dumps({"op": 9, "d": False}))
                    continue
                self.resumes += 1
                session.ws = ws
                for seq, frame in session.events:
                    if seq > (d.get("seq") or 0):
                        await ws.send_str(json.dumps(frame))
                session.seq += 1
                frame = {"op": 0, "t": "RESUMED", "s": session.seq, "d": {}}
                session.events.append((session.seq, frame))
                await ws.send_str(json.dumps(frame))
            self._notify()
        if session is not None and session.ws is ws:
            session.ws = None
        self._notify()
        return ws

    # ---- what members do ------------------------------------------------------------------------------------
    def _store_file(self, name: str, data: bytes, ctype: str = "application/octet-stream") -> dict:
        fid = snow()
        self.files[fid] = (name, data, ctype)
        url = f"http://{self.host}:{self.port}/attachments/{self.channel_id}/{fid}/{name}"
        return {"id": fid, "filename": name, "size": len(data), "url": url, "proxy_url": url, "content_type": ctype}

    def _new_message(self, author: dict, channel_id: str, content: str, **extra) -> dict:
        g = self.guild_of(channel_id)
        m = {"id": snow(), "channel_id": channel_id, "author": author, "content": content,
             "timestamp": iso(), "edited_timestamp": None, "tts": False,
             "mention_everyone": "@everyone" in content or "@here" in content,
             "mentions": [], "mention_roles": [], "attachments": [], "embeds": [], "components": [], "pinned": False,
             "type": 0, "flags": 0}
        if g is not None:
            m["guild_id"] = g.id
        for uid, user in [(self.app_id, self.bot_user), *self.users.items()]:
            if f"<@{uid}>" in content or f"<@!{uid}>" in content:
                mention = dict(user)
                if g is not None and uid in g.members:
                    mention["member"] = self._member_payload(uid, with_user=False, guild=g)
                m["mentions"].append(mention)
        m["mention_roles"] = [r["id"] for r in (g.roles if g else []) if f"<@&{r['id']}>" in content]
        m.update(extra)
        if g is not None and author["id"] in g.members:
            m["member"] = self._member_payload(author["id"], with_user=False, guild=g)
        self.messages[m["id"]] = m
        return m

    async def user_says(self, user: dict, content: str, *, channel_id: str | None = None, reply_to: dict | None = None,
                        ping_reply: bool = True, files: list[tuple[str, bytes]] = ()) -> dict:
        """A member posts a message (optionally as a reply, optionally in a thread or another guild's channel).
        Posting in an archived thread unarchives it (THREAD_UPDATE after the message)."""
        cid = channel_id or self.channel_id
        g = self.guild_of(cid)
        extra: dict = {}
        if files:
            extra["attachments"] = [self._store_file(n, d) for n, d in files]
        if reply_to is not None:
            extra["type"] = 19
            extra["message_reference"] = {"type": 0, "message_id": reply_to["id"], "channel_id": reply_to["channel_id"],
                                          "guild_id": g.id if g else None}
            extra["referenced_message"] = self.messages.get(reply_to["id"], reply_to)
        m = self._new_message(user, cid, content, **extra)
        if reply_to is not None and ping_reply:
            author = reply_to["author"]
            if all(u["id"] != author["id"] for u in m["mentions"]):
                m["mentions"].append({**author, "member": self._member_payload(author["id"], with_user=False, guild=g)}
                                     if g is not None and author["id"] in g.members else author)
        unarchived = await self._unarchive_if_needed(cid)
        if cid in self.threads:
            self.threads[cid]["message_count"] += 1
            self.threads[cid]["last_message_id"] = m["id"]
        await self.dispatch("MESSAGE_CREATE", m)
        if unarchived:
            await self.dispatch("THREAD_UPDATE", self.threads[cid])
        return m

    def _dm_channel(self, user: dict) -> dict:
        for ch in self.dm_channels.values():
            if ch["recipients"][0]["id"] == user["id"]:
                return ch
        ch = {"id": snow(), "type": 1, "recipients": [user], "last_message_id": None, "flags": 0}
        self.dm_channels[ch["id"]] = ch
        return ch

    async def user_dms(self, user: dict, content: str) -> dict:
        """A member writes to the bot in a direct message (no guild)."""
        ch = self._dm_channel(user)
        m = self._new_message(user, ch["id"], content)
        await self.dispatch("MESSAGE_CREATE", m)
        return m

    def dms_to(self, user: dict) -> list[dict]:
        """Messages the bot sent to `user` in a DM."""
        ch = self._dm_channel(user)
        return [m for m in self.messages.values() if m["channel_id"] == ch["id"] and m["author"]["id"] == self.app_id]

    async def create_thread(self, user: dict, message: dict, name: str = "Follow-up") -> dict:
        """A member starts a thread on `message` (the thread's id is the message's id, as on Discord)."""
        g = self.guild_of(message["channel_id"])
        thread = {"id": message["id"], "guild_id": g.id, "parent_id": message["channel_id"], "owner_id": user["id"],
                  "name": name, "type": 11, "last_message_id": None, "rate_limit_per_user": 0, "message_count": 0,
                  "member_count": 1, "flags": 0, "total_message_sent": 0,
                  "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "archive_timestamp": iso(),
                                      "locked": False, "create_timestamp": iso()}}
        self.threads[thread["id"]] = thread
        self.messages[message["id"]]["thread"] = thread
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return thread

    def _command(self, name: str, guild: Guild | None = None) -> dict:
        g = guild or self.primary
        top = name.split()[0]
        for c in self.guild_commands.get(g.id, []) + self.global_commands:
            if c["name"] == top:
                return c
        raise AssertionError(f"/{top} is not synced (commands: {[c['name'] for c in self.global_commands]})")

    def _options(self, definition: dict, path: list[str], values: dict, resolved: dict, focused: str | None) -> list[dict]:
        if path:
            sub = next(o for o in definition.get("options", []) if o["name"] == path[0] and o["type"] in (1, 2))
            return [{"name": sub["name"], "type": sub["type"], "options": self._options(sub, path[1:], values, resolved, focused)}]
        out = []
        known = {o["name"]: o for o in definition.get("options", [])}
        for key, value in values.items():
            if key not in known:
                raise AssertionError(f"unknown option {key!r} (known: {list(known)})")
            opt = known[key]
            if opt["type"] == 11:  # attachment: (filename, bytes[, content_type])
                att = self._store_file(*value)
                resolved.setdefault("attachments", {})[att["id"]] = att
                value = att["id"]
            entry = {"name": key, "type": opt["type"], "value": value}
            if key == focused:
                entry["focused"] = True
            out.append(entry)
        return out

    def _interaction_base(self, user: dict, itype: int, channel_id: str | None) -> tuple[Interaction, dict]:
        cid = channel_id or self.channel_id
        g = self.guild_of(cid)
        ix = Interaction(self, snow(), uuid.uuid4().hex, itype, user, cid, created=self.clock.now(),
                         guild_id=g.id if g else None)
        self.interactions[ix.id] = ix
        self.by_token[ix.token] = ix
        payload = {"id": ix.id, "token": ix.token, "type": itype, "version": 1, "application_id": self.app_id,
                   "channel_id": cid, "channel": self.channel_payload(cid),
                   "app_permissions": str(self.bot_permissions_in(cid)), "attachment_size_limit": 10 * 1024 * 1024,
                   "locale": "en-US", "entitlements": []}
        if g is not None:
            payload.update({"guild_id": g.id, "guild": {"id": g.id, "locale": "en-US", "features": []},
                            "member": self._member_payload(user["id"], permissions=True, guild=g), "guild_locale": "en-US",
                            "authorizing_integration_owners": {"0": g.id}, "context": 0})
        else:
            payload.update({"user": user, "authorizing_integration_owners": {"0": "0"}, "context": 1})
        return ix, payload

    def _check_visible(self, user: dict, cmd: dict, cid: str | None, name: str) -> None:
        g = self.guild_of(cid or self.channel_id)
        if g is not None and not self.command_visible(user["id"], cmd, g):
            raise CommandNotShown(f"Discord does not show /{name} to {user['username']} "
                                  f"(default member permissions {cmd.get('default_member_permissions')}, no override)")

    async def slash(self, user: dict, name: str, *, channel_id: str | None = None, **options) -> Interaction:
        """A member runs a slash command: slash(user, "documents remove", document="wga").

        Raises CommandNotShown if Discord would not offer the command to this member."""
        g = self.guild_of(channel_id or self.channel_id)
        cmd = self._command(name, g)
        self._check_visible(user, cmd, channel_id, name)
        parts = name.split()
        resolved: dict = {}
        opts = self._options(cmd, parts[1:], {k: v for k, v in options.items() if v is not None}, resolved, None)
        ix, payload = self._interaction_base(user, 2, channel_id)
        ix.name = name
        payload["data"] = {"id": cmd["id"], "name": cmd["name"], "type": 1, "options": opts, "resolved": resolved,
                           "guild_id": cmd.get("guild_id")}
        await self.dispatch("INTERACTION_CREATE", payload)
        return ix

    async def autocomplete(self, user: dict, name: str, focused: str, current: str, *, channel_id: str | None = None,
                           wait: bool = True, **others) -> list[dict] | Interaction:
        g = self.guild_of(channel_id or self.channel_id)
        cmd = self._command(name, g)
        self._check_visible(user, cmd, channel_id, name)
        parts = name.split()
        values = {**{k: v for k, v in others.items() if v is not None}, focused: current}
        opts = self._options(cmd, parts[1:], values, {}, focused)
        ix, payload = self._interaction_base(user, 4, channel_id)
        ix.name = name
        payload["data"] = {"id": cmd["id"], "name": cmd["name"], "type": 1, "options": opts, "guild_id": cmd.get("guild_id")}
        await self.dispatch("INTERACTION_CREATE", payload)
        if not wait:
            return ix
        await self.until(lambda: ix.choices is not None, what=f"autocomplete of /{name} {focused}")
        return ix.choices

    async def click(self, user: dict, message: dict, custom_id: str) -> Interaction:
        """A member clicks the button `custom_id` on `message`."""
        message = self.messages[message["id"]]
        assert custom_id in custom_ids(message), f"no button {custom_id!r} on the message (has {custom_ids(message)})"
        for row in message.get("components") or []:
            for c in row.get("components") or []:
                if c.get("custom_id") == custom_id and c.get("disabled"):
                    raise AssertionError(f"the button {custom_id!r} is disabled")
        ix, payload = self._interaction_base(user, 3, message["channel_id"])
        ix.message_id = message["id"]
        payload["message"] = message
        payload["data"] = {"custom_id": custom_id, "component_type": 2}
        await self.dispatch("INTERACTION_CREATE", payload)
        return ix

    # ---- helpers for tests ----------------------------------------------------------------------------------
    def bot_messages(self, channel_id: str | None = None) -> list[dict]:
        return [m for m in self.messages.values() if m["author"]["id"] == self.app_id
                and (channel_id is None or m["channel_id"] == channel_id) and not m["flags"] & LOADING]

    def replies_to(self, message: dict) -> list[dict]:
        return [m for m in self.bot_messages() if (m.get("message_reference") or {}).get("message_id") == message["id"]]

    def requests_to(self, method: str, fragment: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and fragment in r.path]

    def refused(self, status: int | None = None) -> list[Request]:
        """Requests the fake answered with an error status (4xx/5xx), optionally only `status`."""
        return [r for r in self.requests if r.status >= 400 and (status is None or r.status == status)]

    def message_payloads(self) -> list[dict]:
        """Every JSON body the bot sent that creates or edits a message."""
        out = []
        for r in self.requests:
            body = r.json if isinstance(r.json, dict) else None
            if body is None or r.method not in ("POST", "PATCH"):
                continue
            if "/callback" in r.path:
                if body.get("type") in (4, 7) and body.get("data") is not None:
                    out.append(body["data"])
            elif "/messages" in r.path or r.path.startswith("/webhooks/"):
                out.append(body)
        return out

    # ---- REST -------------------------------------------------------------------------------------------------
    async def _read_payload(self, request: web.Request) -> tuple[Any, list[dict]]:
        if request.content_type.startswith("multipart/"):
            payload, atts = {}, []
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                elif part.name and part.name.startswith("files["):
                    data = await part.read(decode=False)
                    atts.append(self._store_file(part.filename or "file", bytes(data),
                                                 part.headers.get("Content-Type", "application/octet-stream")))
            return payload, atts
        if request.can_read_body:
            raw = await request.read()
            return (json.loads(raw) if raw else None), []
        return None, []

    def _error(self, req: Request, errors: list[str], code: int = 50035) -> web.Response:
        self.errors.append((req, errors))
        req.status = 400
        return jr({"code": code, "message": "Invalid Form Body" if code == 50035 else errors[0],
                   "errors": {"_errors": [{"code": "BASE_TYPE_INVALID", "message": e} for e in errors]}}, status=400)

    @staticmethod
    def _forbidden(code: int = 50013, message: str = "Missing Permissions") -> web.Response:
        return jr({"code": code, "message": message}, status=403)

    @staticmethod
    def _apply(message: dict, body: dict, atts: list[dict]) -> None:
        for key in ("content", "embeds", "components", "flags"):
            if key in body and body[key] is not None:
                if key == "flags":
                    message["flags"] = (message["flags"] & (EPHEMERAL | LOADING)) | int(body["flags"])
                else:
                    message[key] = body[key]
            elif key in body and body[key] is None and key != "flags":
                message[key] = "" if key == "content" else []
        if "attachments" in body or atts:
            message["attachments"] = atts + [a for a in message.get("attachments", [])
                                             if any(str(b.get("id")) == str(a["id"]) for b in body.get("attachments") or [])]

    def _bot_message(self, channel_id: str, body: dict, atts: list[dict], *, flags: int = 0, **extra) -> dict:
        m = self._new_message(self.bot_user, channel_id, "", **extra)
        m["mention_everyone"] = False
        m["mentions"] = []
        m["flags"] = flags
        self._apply(m, body, atts)
        m["flags"] |= flags
        return m

    def _rate_limited(self, req: Request) -> web.Response | None:
        for rl in self.rate_limits:
            if rl.times > 0 and rl.method == req.method and rl.fragment in req.path:
                rl.times -= 1
                return web.Response(
                    body=json.dumps({"message": "You are being rate limited.", "retry_after": rl.retry_after,
                                     "global": False, "code": 0}).encode(), status=429,
                    headers={"Content-Type": "application/json", "Retry-After": str(max(1, round(rl.retry_after))),
                             "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                             "X-RateLimit-Reset-After": str(rl.retry_after), "X-RateLimit-Bucket": "fake-bucket",
                             "X-RateLimit-Scope": "user", "Via": "1.1 google"})
        return None

    async def rest(self, request: web.Request) -> web.Response:
        path, method = "/" + request.match_info["tail"], request.method
        body, atts = await self._read_payload(request)
        req = Request(method, path, dict(request.query), body, [a["filename"] for a in atts])
        self.requests.append(req)
        try:
            resp = self._rate_limited(req) or await self._route(req, body if body is not None else {}, atts)
        finally:
            self._notify()
        req.status = req.status or resp.status
        return resp

    async def _route(self, req: Request, body: Any, atts: list[dict]) -> web.Response:
        path, method, parts = req.path, req.method, req.path.strip("/").split("/")
        if path == "/users/@me":
            return jr(self.bot_user)
        if path in ("/oauth2/applications/@me", "/applications/@me"):
            return jr({"id": self.app_id, "name": "unionbot", "icon": None, "description": "", "bot_public": self.bot_public,
                       "bot_require_code_grant": False, "verify_key": "0" * 64, "flags": 0, "owner": self.bot_user,
                       "team": None, "summary": "", "rpc_origins": [], "interactions_endpoint_url": None})
        if path in ("/gateway", "/gateway/bot"):
            return jr({"url": f"ws://{self.host}:{self.port}/", "shards": 1,
                       "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}})
        if parts[:3] == ["users", "@me", "guilds"] and len(parts) == 4 and method == "DELETE":  # leave a guild
            g = self.guilds.get(parts[3])
            if g is None or not g.joined:
                return jr({"code": 10004, "message": "Unknown Guild"}, status=404)
            g.joined = False
            await self.dispatch("GUILD_DELETE", {"id": g.id})
            return web.Response(status=204)
        if path == "/users/@me/channels" and method == "POST":  # open a DM
            user = self.users.get(str(body.get("recipient_id")))
            if user is None:
                return jr({"code": 10013, "message": "Unknown User"}, status=404)
            return jr(self._dm_channel(user))

        # /applications/{app}/commands  and  /applications/{app}/guilds/{g}/commands
        if parts[0] == "applications" and parts[-1] == "commands":
            guild = parts[3] if len(parts) == 5 else None
            if method == "PUT":
                errors = validate_commands(body)
                if errors:
                    return self._error(req, errors)
                synced = []
                for c in body:
                    c = {**c, "id": snow(), "application_id": self.app_id, "version": snow(), "type": c.get("type", 1),
                         "description": c.get("description", ""), "options": c.get("options", []),
                         # Discord answers permissions as a string, whatever the client sent
                         "default_member_permissions": None if c.get("default_member_permissions") is None
                         else str(c["default_member_permissions"])}
                    if guild:
                        c["guild_id"] = guild
                    synced.append(c)
                if guild:
                    self.guild_commands[guild] = synced
                else:
                    self.global_commands = synced
                return jr(synced)
            return jr(self.guild_commands.get(guild, []) if guild else self.global_commands)

        # interaction callbacks
        if parts[0] == "interactions" and parts[-1] == "callback":
            return self._callback(req, parts[1], parts[2], body, atts)

        # webhooks: followups and @original
        if parts[0] == "webhooks" and len(parts) >= 3:
            return await self._webhook(req, parts, body, atts)

        # channels
        if parts[0] == "channels":
            cid = parts[1]
            g = self.guild_of(cid)
            if g is None and cid not in self.dm_channels or g is not None and not g.joined:
                return jr({"code": 10003, "message": "Unknown Channel"}, status=404)
            in_thread = cid in self.threads
            denied = self._denied_bits(cid)
            send_bit = SEND_MESSAGES_IN_THREADS if in_thread else SEND_MESSAGES
            if len(parts) == 2 and method == "GET":
                return jr(self.channel_payload(cid))
            if parts[2:] == ["typing"] and method == "POST":
                if denied & send_bit:
                    return self._forbidden()
                return web.Response(status=204)
            if parts[2:] == ["messages"] and method == "POST":
                errors = validate_message(body, creating=True, has_files=bool(atts))
                if errors:
                    return self._error(req, errors)
                if cid in self.dm_channels and self.dm_channels[cid]["recipients"][0]["id"] in self.dms_closed:
                    return self._forbidden(50007, "Cannot send messages to this user")
                if denied & send_bit or (body.get("embeds") and denied & EMBED_LINKS) or (atts and denied & ATTACH_FILES):
                    return self._forbidden()
                extra = {}
                ref = body.get("message_reference")
                if ref:
                    ref = {k: (str(v) if k.endswith("_id") and v is not None else v) for k, v in ref.items()}
                    target = self.messages.get(str(ref.get("message_id")))
                    if target is None:
                        if ref.get("fail_if_not_exists", True):
                            return self._error(req, ["message_reference: Unknown message"])
                        ref = None  # Discord sends it as a plain message
                if ref:
                    extra = {"type": 19, "message_reference": {**ref, "channel_id": ref.get("channel_id") or cid,
                                                               "guild_id": g.id if g else None},
                             "referenced_message": target}
                unarchived = await self._unarchive_if_needed(cid)
                m = self._bot_message(cid, body, atts, **extra)
                await self.dispatch("MESSAGE_CREATE", m)
                if unarchived:
                    await self.dispatch("THREAD_UPDATE", self.threads[cid])
                return jr(m)
            if len(parts) == 4 and parts[2] == "messages":
                m = self.messages.get(parts[3])
                if m is None or m["channel_id"] != cid:
                    return jr({"code": 10008, "message": "Unknown Message"}, status=404)
                if method == "GET":
                    return jr(self.as_seen(m, self.message_content_granted))
                if method == "PATCH":
                    errors = validate_message(body, creating=False)
                    if errors:
                        return self._error(req, errors)
                    if body.get("embeds") and denied & EMBED_LINKS:
                        # an edit is not refused: the embeds are dropped (discord-api-docs #2601, #5648)
                        body = {**body, "embeds": []}
                    self._apply(m, body, atts)
                    m["edited_timestamp"] = iso()
                    await self.dispatch("MESSAGE_UPDATE", m)
                    return jr(m)
            if len(parts) == 5 and parts[2] == "messages" and parts[4] == "threads" and method == "POST":
                if denied & CREATE_PUBLIC_THREADS:
                    return self._forbidden()
                starter = self.messages.get(parts[3])
                if starter is None:
                    return jr({"code": 10008, "message": "Unknown Message"}, status=404)
                thread = await self.create_thread(self.bot_user, starter, body.get("name", "thread"))
                return jr(thread)
        return jr({"message": f"fake: {method} {path} not implemented", "code": 0}, status=404)

    def _callback(self, req: Request, iid: str, token: str, body: dict, atts: list[dict]) -> web.Response:
        ix = self.interactions.get(iid)
        if ix is None or ix.token != token:
            return jr({"code": 10062, "message": "Unknown interaction"}, status=404)
        if self.clock.now() - ix.created > INITIAL_RESPONSE_S:
            ix.expired = True
            return jr({"code": 10062, "message": "Unknown interaction"}, status=404)
        if ix.acked:
            return self._error(req, ["Interaction has already been acknowledged."], code=40060)
        ctype = body.get("type")
        data = body.get("data") or {}
        m = None
        if ctype in (4, 7):
            errors = validate_message(data, creating=ctype == 4, has_files=bool(atts))
            if errors:
                return self._error(req, errors)
        if ctype == 8:
            errors = validate_choices(data.get("choices") or [])
            if errors:
                return self._error(req, errors)
        ix.callbacks.append((ctype, data))
        meta = {"id": ix.id, "type": ix.type, "user": ix.user, "authorizing_integration_owners": {"0": ix.guild_id or "0"}}
        if ctype == 4:
            m = self._bot_message(ix.channel_id, data, atts, flags=int(data.get("flags") or 0) & EPHEMERAL,
                                  interaction_metadata=meta, webhook_id=self.app_id, application_id=self.app_id, type=20)
            ix.original_id = m["id"]
        elif ctype == 5:
            ix.deferred = True
            m = self._bot_message(ix.channel_id, {"content": ""}, [], flags=LOADING | (int(data.get("flags") or 0) & EPHEMERAL),
                                  interaction_metadata=meta, webhook_id=self.app_id, application_id=self.app_id, type=20)
            ix.original_id = m["id"]
        elif ctype == 6:
            ix.deferred = True
            ix.original_id = ix.message_id  # a deferred update: @original is the message the button is on
        elif ctype == 7:
            target = self.messages[ix.message_id] if ix.message_id else None
            if target is not None:
                self._apply(target, data, atts)
                target["edited_timestamp"] = iso()
                m = target
                ix.original_id = ix.message_id
        elif ctype == 8:
            ix.choices = data.get("choices") or []
        if m is not None and ctype in (4, 5) and not m["flags"] & EPHEMERAL:
            asyncio.ensure_future(self.dispatch("MESSAGE_CREATE", m))
        if req.query.get("with_response") in ("1", "true", "True"):
            resource: dict = {"type": ctype}
            if m is not None:
                resource["message"] = m
            return jr({"interaction": {"id": ix.id, "type": ix.type, "response_message_id": m and m["id"],
                                       "response_message_loading": ctype == 5,
                                       "response_message_ephemeral": bool(m and m["flags"] & EPHEMERAL)},
                       "resource": resource})
        return web.Response(status=204)

    async def _webhook(self, req: Request, parts: list[str], body: Any, atts: list[dict]) -> web.Response:
        app_id, token = parts[1], parts[2]
        ix = self.by_token.get(token)
        if app_id != self.app_id or ix is None:
            return jr({"code": 10015, "message": "Unknown Webhook"}, status=404)
        if self.clock.now() - ix.created > TOKEN_LIFETIME_S:
            return jr({"code": 50027, "message": "Invalid Webhook Token"}, status=401)
        if not ix.acked:
            return jr({"code": 10015, "message": "Unknown Webhook (interaction not acknowledged)"}, status=404)
        if len(parts) == 3 and req.method == "POST":  # followup
            errors = validate_message(body, creating=True, has_files=bool(atts))
            if errors:
                return self._error(req, errors)
            original = ix.original
            if ix.deferred and original is not None and original["flags"] & LOADING:
                # The first followup after a deferred response replaces the "thinking..." message
                # and keeps the deferral's visibility (Discord ignores the followup's ephemeral flag).
                original["flags"] &= ~LOADING
                self._apply(original, {k: v for k, v in body.items() if k != "flags"}, atts)
                m = original
                if not m["flags"] & EPHEMERAL:
                    await self.dispatch("MESSAGE_UPDATE", m)
            else:
                flags = int(body.get("flags") or 0) & EPHEMERAL
                meta = {"id": ix.id, "type": ix.type, "user": ix.user, "authorizing_integration_owners": {"0": ix.guild_id or "0"}}
                m = self._bot_message(ix.channel_id, {k: v for k, v in body.items() if k != "flags"}, atts, flags=flags,
                                      interaction_metadata=meta, webhook_id=self.app_id, application_id=self.app_id)
                ix.followup_ids.append(m["id"])
                if not flags:
                    await self.dispatch("MESSAGE_CREATE", m)
            if req.query.get("wait") in ("true", "1", "True"):
                return jr(m)
            return web.Response(status=204)
        if len(parts) == 5 and parts[3] == "messages":
            mid = parts[4]
            m = ix.original if mid == "@original" else self.messages.get(mid)
            if m is None or (mid != "@original" and mid not in ix.followup_ids and mid != ix.original_id):
                return jr({"code": 10008, "message": "Unknown Message"}, status=404)
            if req.method == "GET":
                return jr(m)
            if req.method == "PATCH":
                errors = validate_message(body, creating=False)
                if errors:
                    return self._error(req, errors)
                m["flags"] &= ~LOADING
                self._apply(m, body, atts)
                m["edited_timestamp"] = iso()
                if not m["flags"] & EPHEMERAL:
                    await self.dispatch("MESSAGE_UPDATE", m)
                return jr(m)
            if req.method == "DELETE":
                self.messages.pop(m["id"], None)
                return web.Response(status=204)
        return jr({"message": f"fake: {req.method} {req.path} not implemented", "code": 0}, status=404)

    async def cdn(self, request: web.Request) -> web.Response:
        entry = self.files.get(request.match_info["fid"])
        if entry is None:
            return web.Response(status=404)
        name, data, ctype = entry
        return web.Response(body=data, headers={"Content-Type": ctype or "application/octet-stream"})

    # ---- lifecycle ----------------------------------------------------------------------------------------------
    async def start(self) -> "FakeDiscord":
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self.gateway)
        app.router.add_get("/attachments/{cid}/{fid}/{name}", self.cdn)
        app.router.add_route("*", "/api/v10/{tail:.*}", self.rest)
        self.runner = web.AppRunner(app, shutdown_timeout=1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for s in self.sessions.values():
            if s.ws is not None:
                await s.ws.close()
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"
