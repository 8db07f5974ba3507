"""The composition root of the Discord shell.

`UnionBot` is built from `Settings` and a core `Service` (which never imports discord). Shared
resources are made in `setup_hook` (the feedback store, the heartbeat task, the cogs) and released in
`close()`. Cogs are loaded from the explicit `EXTENSIONS` tuple; a cog that fails to load is logged and
the bot carries on without it.

Entry points used by the CLI:
- `run_bot(settings, service)` — `python -m bot serve` when DISCORD_TOKEN is set;
- `sync_commands(settings, guild_id)` — `python -m bot sync [--guild ID]`, the only place slash commands
  are registered with Discord (never on startup).
"""
from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands, tasks

from ..errors import ConfigError, UserError
from ..feedback import FeedbackStore
from . import checks
from .checks import MissingRole
from .render import NO_MENTIONS

log = logging.getLogger(__name__)

EXTENSIONS: tuple[str, ...] = (
    "bot.discord_app.cogs.ask",
    "bot.discord_app.cogs.documents",
    "bot.discord_app.cogs.moderation",
    "bot.discord_app.cogs.help",
    "bot.discord_app.cogs.feedback",
)

APOLOGY = "Sorry \u2014 something went wrong on my side. It has been logged; please try again in a moment."
TOKEN_REJECTED = "Discord rejected DISCORD_TOKEN (reset it in the developer portal, Bot page, and update .env)."
PUBLIC_WITHOUT_ALLOWLIST = (
    "Refusing to start: this application is a Public Bot, so anyone can add it to their own server and change "
    "the documents members see cited, and ALLOWED_GUILD_IDS is not set. Fix one of the two: turn Public Bot off "
    "in the Discord developer portal (Bot page), or set ALLOWED_GUILD_IDS to your server id(s) in .env. "
    "See docs/discord.md."
)
RESTARTING = "🔄 I'm restarting, so I couldn't finish this. Please ask again in a minute."
HEARTBEAT_FILENAME = "heartbeat.json"
HEARTBEAT_EVERY_S = 30.0
PENDING_KEY = "pending_reply"  # interaction.extras flag: the deferred reply still shows "thinking..." or progress


class AppTree(app_commands.CommandTree):
    """One place that keeps commands to our servers and turns command errors into what the member sees."""

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        name = interaction.command.qualified_name if interaction.command else "a command"
        if not await interaction.client.gate(interaction, f"/{name}"):  # type: ignore[attr-defined]
            return False
        if interaction.type is discord.InteractionType.application_command:
            interaction.client.pending[interaction.id] = interaction  # type: ignore[attr-defined]
        return True

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        try:
            await interaction.client.report_error(interaction, error)  # type: ignore[attr-defined]
        finally:
            interaction.client.pending.pop(interaction.id, None)  # type: ignore[attr-defined]


def mark_pending(interaction: discord.Interaction) -> None:
    """The reply was deferred: until `settled()`, a restart replaces it with RESTARTING."""
    interaction.extras[PENDING_KEY] = True


def settled(interaction: discord.Interaction) -> None:
    """The deferred reply now shows its final text (an answer, a result or a refusal)."""
    interaction.extras[PENDING_KEY] = False


def error_text(error: BaseException) -> tuple[str, bool]:
    """(text for the member, expected?) for an exception raised while handling an interaction."""
    original = getattr(error, "original", None) or error
    if isinstance(original, UserError):
        return str(original), True
    if isinstance(error, MissingRole):
        return str(error), True
    if isinstance(error, app_commands.CommandOnCooldown):
        wait = max(1, math.ceil(error.retry_after))
        return f"You're asking a little fast \u2014 please try again in {wait} second{'s' if wait != 1 else ''}.", True
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command works in a server channel, not in direct messages.", True
    if isinstance(error, app_commands.TransformerError):
        return "One of the values you gave isn't valid for its option; please check it and try again.", True
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here.", True
    return APOLOGY, False


def settle_heap() -> None:
    """Collect once, then move every object alive at startup (the imported libraries, the loaded model and
    index) into the garbage collector's permanent generation.

    Without this, each full (generation-2) collection walks that whole heap on the event loop: about 0.2 s
    on a 2-core machine with discord.py, torch, sentence-transformers and FAISS imported, long enough to
    stall heartbeats and interaction deadlines. Objects made later are collected as usual; the frozen ones
    are still freed by reference counting when they die."""
    gc.collect()
    gc.freeze()


class UnionBot(commands.Bot):
    def __init__(self, settings: Any, service: Any, *, message_content: bool = True, feedback: FeedbackStore | None = None,
                 **options: Any):
        intents = discord.Intents.default()
        intents.message_content = message_content  # privileged; see docs/discord.md
        intents.typing = False
        intents.presences = False
        intents.members = False
        super().__init__(
            # No prefix commands: mentions and replies are handled by the ask cog's on_message.
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=intents,
            allowed_mentions=NO_MENTIONS,
            tree_cls=AppTree,
            allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False),
            allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
            max_messages=1000,
            **options,  # e.g. guild_ready_timeout (tests)
        )
        self.settings = settings
        self.service = service
        self.feedback: FeedbackStore | None = feedback
        self._owns_feedback = feedback is None
        self.message_content = message_content
        self.started_at = time.time()
        self.connected_at: float | None = None
        self.gateway_connected = False
        self.last_event = 0.0
        self.failed_extensions: dict[str, str] = {}
        self._heartbeat_lock = asyncio.Lock()
        self._core_pool = None
        self.pending: dict[int, discord.Interaction] = {}  # slash commands still running

    # ---- lifecycle --------------------------------------------------------------------------------
    @property
    def serving(self) -> bool:
        """False for the sync-only instance (no core service)."""
        return self.service is not None

    async def run_core(self, fn, /, *args, **kwargs):
        """Run a slow core call (answering) on the bot's own worker threads, so quick commands
        (/help, /status, buttons) on the default pool are never queued behind a burst of questions."""
        import functools

        if self._core_pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._core_pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="core")
        return await asyncio.get_running_loop().run_in_executor(self._core_pool, functools.partial(fn, *args, **kwargs))

    @property
    def allowed_guild_ids(self) -> frozenset[int]:
        return checks.allowlist(self.settings)

    def guild_allowed(self, guild_id: int | None) -> bool:
        return checks.guild_allowed(self.settings, guild_id)

    async def gate(self, interaction: discord.Interaction, where: str) -> bool:
        """Only our servers (ALLOWED_GUILD_IDS): anything else is refused with a clear message and logged."""
        if self.guild_allowed(interaction.guild_id):
            return True
        text = checks.NOT_IN_DMS if interaction.guild_id is None else checks.NOT_ALLOWED_HERE
        log.warning("refused %s from %s (user %s): not in ALLOWED_GUILD_IDS", where,
                    f"server {interaction.guild_id}" if interaction.guild_id else "a direct message", interaction.user.id)
        try:
            if interaction.type is discord.InteractionType.autocomplete:
                await interaction.response.autocomplete([])
            elif not interaction.response.is_done():
                await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.warning("could not send the refusal for interaction %s: %s", interaction.id, exc)
        return False

    async def _check_application(self) -> None:
        """Refuse to run a public application without an allowlist; warn about roles given by name only."""
        info = await self.application_info()
        if info.bot_public and not self.allowed_guild_ids:
            raise ConfigError(PUBLIC_WITHOUT_ALLOWLIST)
        for kind, key in (("organizer", "ORGANIZER_ROLES"), ("moderator", "MODERATOR_ROLES")):
            if checks.names_only(self.settings, kind):
                log.warning("%s lists role names only (%s): anyone with Manage Roles can create a role with that name "
                            "and get %s rights. Use role ids instead (Server Settings > Roles > right-click > Copy Role ID; "
                            "see docs/discord.md).", key, ", ".join(checks.roles_for(self.settings, kind)), kind)

    async def setup_hook(self) -> None:
        if self.serving:
            await self._check_application()
            if self.feedback is None:
                self.feedback = await asyncio.to_thread(FeedbackStore.open, self.settings)
        for name in EXTENSIONS:
            try:
                await self.load_extension(name)
            except Exception as exc:  # noqa: BLE001 - one broken cog must not take the bot down
                self.failed_extensions[name] = f"{type(exc).__name__}: {exc}"
                log.exception("failed to load extension %s; continuing without it", name)
        if self.serving:
            self.heartbeat.start()
            settle_heap()

    async def tell_pending_restart(self) -> int:
        """Replace every deferred reply that is still "thinking..." (or showing progress) with RESTARTING,
        so no member waits for an answer that will never come. Returns how many were told."""
        told = 0
        for interaction in list(self.pending.values()):
            if not interaction.extras.get(PENDING_KEY):
                continue
            try:
                await interaction.edit_original_response(content=RESTARTING, embeds=[], view=None,
                                                         allowed_mentions=NO_MENTIONS)
                interaction.extras[PENDING_KEY] = False
                told += 1
            except discord.HTTPException as exc:
                log.warning("could not tell interaction %s about the restart: %s", interaction.id, exc)
        if told:
            log.info("told %d pending interaction(s) that the bot is restarting", told)
        return told

    async def on_app_command_completion(self, interaction: discord.Interaction, command) -> None:
        self.pending.pop(interaction.id, None)

    async def close(self) -> None:
        if self.pending and not self.is_closed():
            try:
                await asyncio.wait_for(self.tell_pending_restart(), timeout=5)
            except asyncio.TimeoutError:
                log.warning("timed out telling pending interactions about the restart")
        if self.heartbeat.is_running():
            self.heartbeat.cancel()
        self.gateway_connected = False
        if self.serving:
            await self._write_heartbeat()
        await super().close()
        if self._core_pool is not None:
            self._core_pool.shutdown(wait=False, cancel_futures=True)
            self._core_pool = None
        if self.feedback is not None and self._owns_feedback:
            await asyncio.to_thread(self.feedback.close)
            self.feedback = None

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands; the ask cog listens for mentions, replies and thread follow-ups."""
        return None

    # ---- heartbeat file for the health check -------------------------------------------------------
    def heartbeat_path(self) -> Path:
        return Path(self.settings.index_dir) / HEARTBEAT_FILENAME

    def heartbeat_data(self) -> dict:
        last = self.last_event
        keep_alive = getattr(self.ws, "_keep_alive", None) if self.ws is not None else None
        last_recv = getattr(keep_alive, "_last_recv", None)
        if last_recv is not None:  # heartbeat ACKs count as signs of life, too
            last = max(last, time.time() - (time.perf_counter() - last_recv))
        latency = self.latency
        return {
            "gateway_connected": bool(self.gateway_connected and not self.is_closed()),
            "last_event": round(last, 3),
            "latency_ms": None if (latency is None or math.isinf(latency) or math.isnan(latency)) else round(latency * 1000, 1),
            "written_at": round(time.time(), 3),
            "pid": os.getpid(),
        }

    async def _write_heartbeat(self) -> None:
        path = self.heartbeat_path()

        def write(data: dict) -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, path)

        async with self._heartbeat_lock:  # one writer at a time, so the newest state is the one on disk
            try:
                await asyncio.to_thread(write, self.heartbeat_data())
            except OSError as exc:
                log.warning("could not write %s: %s", path, exc)

    @tasks.loop(seconds=HEARTBEAT_EVERY_S)
    async def heartbeat(self) -> None:
        await self._write_heartbeat()

    @heartbeat.before_loop
    async def _heartbeat_after_ready(self) -> None:
        await self.wait_until_ready()

    async def _connected(self) -> None:
        self.gateway_connected = True
        self.connected_at = self.connected_at or time.time()
        self.last_event = time.time()
        if self.serving:
            await self._write_heartbeat()

    async def on_ready(self) -> None:
        log.info("connected to Discord as %s (%s) in %d guild(s)", self.user, self.user and self.user.id, len(self.guilds))
        for guild in self.guilds:
            if not self.guild_allowed(guild.id):
                # Not left automatically at start: a mistyped ALLOWED_GUILD_IDS would otherwise make the bot
                # leave the union's own server. Everything from it is refused.
                log.warning("in server %s (%s), which is not in ALLOWED_GUILD_IDS: refusing everything from it. "
                            "Remove the bot from that server, or add its id.", guild.name, guild.id)
        self._warn_unknown_roles()
        await self._connected()

    def _warn_unknown_roles(self) -> None:
        ours = [g for g in self.guilds if self.guild_allowed(g.id)]
        if not ours:
            return
        for kind, key in (("organizer", "ORGANIZER_ROLES"), ("moderator", "MODERATOR_ROLES")):
            ids, _ = checks.split_roles(checks.roles_for(self.settings, kind))
            for rid in sorted(ids):
                if not any(g.get_role(rid) for g in ours):
                    log.warning("%s: no role with id %s in the bot's servers (deleted, or a typo?)", key, rid)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        if self.guild_allowed(guild.id):
            log.info("added to server %s (%s)", guild.name, guild.id)
            return
        log.warning("added to server %s (%s), which is not in ALLOWED_GUILD_IDS: leaving it", guild.name, guild.id)
        try:
            await guild.leave()
        except discord.HTTPException as exc:
            log.error("could not leave server %s: %s", guild.id, exc)

    async def on_resumed(self) -> None:
        log.info("gateway session resumed")
        await self._connected()

    async def on_disconnect(self) -> None:
        self.gateway_connected = False
        if self.serving:
            await self._write_heartbeat()

    async def on_socket_event_type(self, event_type: str) -> None:
        self.last_event = time.time()

    # ---- errors ---------------------------------------------------------------------------------------
    async def report_error(self, interaction: discord.Interaction, error: BaseException, *, where: str | None = None) -> None:
        """Tell the member what went wrong (ephemeral); log unexpected errors in full, with traceback."""
        text, expected = error_text(error)
        name = where or (interaction.command.qualified_name if interaction.command else f"interaction type {interaction.type}")
        if expected:
            log.info("refused %s for interaction %s: %s", name, interaction.id, type(getattr(error, "original", None) or error).__name__)
        else:
            original = getattr(error, "original", None) or error
            log.error("unexpected error in %s (interaction %s)", name, interaction.id, exc_info=original)
        await send_ephemeral(interaction, text)


PROGRESS_KEY = "shows_progress"  # interaction.extras flag: the original reply is a progress line to replace
PUBLIC_THINKING_KEY = "public_thinking"  # interaction.extras flag: the original is a public "thinking..." placeholder


async def send_ephemeral(interaction: discord.Interaction, text: str) -> None:
    """Ephemeral message for the member: the response if none was sent yet; else it replaces a progress
    line (see PROGRESS_KEY) or a "thinking..." placeholder, or comes as an ephemeral followup."""
    try:
        if interaction.response.is_done():
            if interaction.extras.pop(PUBLIC_THINKING_KEY, False):
                # A followup would inherit the public visibility of the deferral: remove the placeholder
                # and send the message on its own, visible only to the member.
                try:
                    await interaction.delete_original_response()
                except discord.HTTPException:
                    pass
            if interaction.extras.get(PROGRESS_KEY):
                interaction.extras[PROGRESS_KEY] = False
                await interaction.edit_original_response(content=text, embeds=[], view=None, allowed_mentions=NO_MENTIONS)
                settled(interaction)
                return
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
            settled(interaction)
        else:
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException as exc:
        log.warning("could not send an error message for interaction %s: %s", interaction.id, exc)


# ---- entry points -------------------------------------------------------------------------------------

async def _serve(settings: Any, service: Any, message_content: bool) -> None:
    bot = UnionBot(settings, service, message_content=message_content)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
        except (NotImplementedError, RuntimeError, ValueError):  # not on the main thread / Windows
            pass
    async with bot:
        await bot.start(settings.discord_token)


def run_bot(settings: Any, service: Any) -> None:
    """Run the bot until it is stopped (SIGTERM/SIGINT). The caller owns `service` and closes it."""
    if not settings.discord_token:
        raise ConfigError("DISCORD_TOKEN is not set.")
    message_content = True
    while True:
        try:
            asyncio.run(_serve(settings, service, message_content))
            return
        except discord.PrivilegedIntentsRequired:
            if not message_content:
                raise
            log.warning(
                "The Message Content intent is not enabled for this application in the Discord developer portal. "
                "Continuing without it: slash commands, mentions and replies that ping the bot still work; "
                "follow-ups in threads need to mention the bot. See docs/discord.md."
            )
            message_content = False
        except discord.LoginFailure:
            raise ConfigError(TOKEN_REJECTED) from None
        except discord.ConnectionClosed as exc:
            if exc.code == 4004:  # authentication failed (e.g. the token was reset while running)
                raise ConfigError(TOKEN_REJECTED) from None
            raise


async def sync_commands(settings: Any, guild_id: int | None) -> list[str]:
    """Register the slash commands with Discord (to one guild — instant — or globally), then log out.

    Returns the names of the synced top-level commands (the CLI prints them).
    """
    if not settings.discord_token:
        raise ConfigError("DISCORD_TOKEN is not set.")
    bot = UnionBot(settings, None)
    try:
        async with bot:
            await bot.login(settings.discord_token)  # runs setup_hook: loads the cogs, no gateway connection
            if bot.failed_extensions:
                raise ConfigError("Not syncing: some command modules failed to load: " + ", ".join(bot.failed_extensions))
            if guild_id:
                guild = discord.Object(id=int(guild_id))
                bot.tree.copy_global_to(guild=guild)
                synced = await bot.tree.sync(guild=guild)
            else:
                synced = await bot.tree.sync()
    except discord.LoginFailure:
        raise ConfigError(TOKEN_REJECTED) from None
    names = [c.name for c in synced]
    log.info("synced %d command(s) %s: %s", len(names), f"to guild {guild_id}" if guild_id else "globally", ", ".join(names))
    return names
