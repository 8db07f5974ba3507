"""Documents: `/upload` (file or link), `/documents list|remove|replace`.

Uploads are validated and refused ephemerally before anything slow happens; then the reply is
deferred (ephemeral) and edited as the work progresses. Parsing and indexing run off the event loop
(`asyncio.to_thread`); the core types files by content, not by name, and stores them under a
generated name. When the reply says "searchable", the document is in the index.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Literal, Optional

import discord
from discord import app_commands
from discord.ext import commands

from ...errors import NotFoundError, RefusedError
from ...fetch import fetch_url
from ...models import IngestResult
from ...textsplit import truncate
from ..checks import require, require_local
from ..client import PROGRESS_KEY, UnionBot, mark_pending, settled
from ..render import NO_MENTIONS, document_pages, neutralise, render_documents

log = logging.getLogger(__name__)

Status = Literal["current", "superseded"]
PAGER_TIMEOUT_S = 600.0  # the ◀ ▶ buttons work for 10 minutes (well inside the 15-minute token)
BUSY_REBUILDING = ("\u26a0\ufe0f The index is being rebuilt right now, so documents can't be added, replaced or removed. "
                   "Please try again after the rebuild (`/status` shows its progress).")


def result_text(r: IngestResult, *, source: str) -> str:
    title = neutralise(truncate(r.title or source, 200))
    pages = f"{r.pages} page{'s' if r.pages != 1 else ''}, " if r.pages else ""
    if r.status == "refused":
        return f"\u274c **{neutralise(truncate(source, 200))}** was not added: {neutralise(r.reason) or 'it could not be read.'}"
    if r.status == "unchanged":
        return f"\u2139\ufe0f **{title}** is already indexed (same file) \u2014 {pages}{r.chunks} passages, id `{r.doc_id}`. Nothing changed."
    verb = "Replaced" if r.status == "replaced" else "Added"
    return (f"\u2705 {verb} **{title}** \u2014 {pages}{r.chunks} passages, id `{r.doc_id}`. "
            "It is searchable now: members' questions can cite it.")


def human_size(n: int) -> str:
    if n < 1024 * 1024:
        return f"{max(1, round(n / 1024))} KB"
    return f"{n / 1048576:.1f} MB"


def _meta(title, union, agreement, year, status, url=None) -> dict:
    meta = {"title": title, "union": union, "agreement": agreement, "year": year, "status": status, "url": url}
    return {k: v for k, v in meta.items() if v not in (None, "")}


class Documents(commands.Cog):
    documents = app_commands.Group(name="documents", description="The documents the bot answers from")

    def __init__(self, bot: UnionBot):
        self.bot = bot

    # ---- helpers --------------------------------------------------------------------------------------
    async def _refuse_if_rebuilding(self, interaction: discord.Interaction) -> bool:
        """A rebuild holds the index's writer for its whole run: refuse at once rather than wait past the
        interaction token's 15 minutes."""
        if not self.bot.service.rebuilding:
            return False
        log.info("refused %s by %s: a rebuild is running", interaction.command.qualified_name if interaction.command
                 else "a document change", interaction.user.id)
        await interaction.response.send_message(BUSY_REBUILDING, ephemeral=True, allowed_mentions=NO_MENTIONS)
        return True

    def _too_large(self, size: int) -> str | None:
        s = self.bot.settings
        if size > s.max_upload_bytes:
            return f"That file is {human_size(size)}; the limit is {s.max_upload_mb:g} MB."
        return None

    async def _ingest(self, interaction: discord.Interaction, data: bytes, filename: str, meta: dict,
                      replace: str | None = None) -> IngestResult:
        interaction.extras[PROGRESS_KEY] = True  # an error from here on replaces the progress line
        await interaction.edit_original_response(
            content=f"\u23f3 Reading and indexing **{neutralise(truncate(filename, 100))}** "
                    f"({human_size(len(data))}). Long PDFs can take a minute\u2026")
        result = await asyncio.to_thread(self.bot.service.ingest_bytes, data, filename, meta, replace)
        log.info("upload by %s: %s %s (%s chunks, reason=%s)", interaction.user.id, result.status, result.doc_id,
                 result.chunks, result.reason_code or "-")
        return result

    async def _doc_choices(self, current: str) -> list[app_commands.Choice[str]]:
        try:
            docs = await asyncio.to_thread(self.bot.service.documents)
        except Exception:  # noqa: BLE001 - autocomplete must never error
            log.exception("document autocomplete failed")
            return []
        cur = current.casefold().strip()
        hits = [d for d in docs if cur in d.title.casefold() or cur in d.doc_id.casefold()]
        hits.sort(key=lambda d: (d.status != "current", d.title))
        out = []
        for d in hits[:25]:
            label = f"{d.title} ({d.year}, {d.status})" if d.year else f"{d.title} ({d.status})"
            out.append(app_commands.Choice(name=truncate(label, 100), value=d.doc_id[:100]))
        return out

    # ---- /upload ----------------------------------------------------------------------------------------
    @app_commands.command(name="upload")
    @app_commands.describe(
        file="A PDF, Markdown, text or HTML file",
        url="Or: a link to a page or PDF to fetch",
        title="Title to show in citations (default: from the document)",
        union="Union, e.g. WGA, SAG-AFTRA, DGA",
        agreement="Agreement name, e.g. Minimum Basic Agreement",
        year="Year of the agreement",
        status="Current, or superseded by a newer agreement",
    )
    @require("organizer")
    async def upload(self, interaction: discord.Interaction, file: Optional[discord.Attachment] = None,
                     url: Optional[app_commands.Range[str, 8, 2000]] = None,
                     title: Optional[app_commands.Range[str, 1, 200]] = None,
                     union: Optional[app_commands.Range[str, 1, 40]] = None,
                     agreement: Optional[app_commands.Range[str, 1, 120]] = None,
                     year: Optional[app_commands.Range[int, 1900, 2100]] = None,
                     status: Optional[Status] = None) -> None:
        """Add a document (organizers): attach a file or give a link."""
        if (file is None) == (url is None):
            await interaction.response.send_message(
                "Attach a file **or** give a `url:` (one of the two).", ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        if file is not None and (msg := self._too_large(file.size)):
            await interaction.response.send_message(f"\u274c {msg}", ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        if await self._refuse_if_rebuilding(interaction):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        mark_pending(interaction)
        interaction.extras[PROGRESS_KEY] = True
        if file is not None:
            await interaction.edit_original_response(content=f"\u23f3 Downloading **{neutralise(truncate(file.filename, 100))}**\u2026")
            data = await file.read()
            result = await self._ingest(interaction, data, file.filename, _meta(title, union, agreement, year, status))
            source = file.filename
        else:
            assert url is not None
            await interaction.edit_original_response(content=f"\u23f3 Fetching <{truncate(url, 300)}>\u2026")
            s = self.bot.settings
            try:
                fetched = await fetch_url(url, max_bytes=s.max_upload_bytes, timeout_s=s.fetch_timeout_s,
                                          allow_private=s.allow_private_urls)
            except RefusedError as exc:
                await interaction.edit_original_response(content=f"\u274c Not added: {neutralise(exc.message)}")
                settled(interaction)
                return
            result = await self._ingest(interaction, fetched.data, fetched.filename,
                                        _meta(title, union, agreement, year, status, url=url))
            source = url
        await interaction.edit_original_response(content=result_text(result, source=source), allowed_mentions=NO_MENTIONS)
        interaction.extras[PROGRESS_KEY] = False
        settled(interaction)

    # ---- /documents ---------------------------------------------------------------------------------------
    @documents.command(name="list")
    @app_commands.describe(page="Page number (10 documents per page)")
    async def documents_list(self, interaction: discord.Interaction, page: app_commands.Range[int, 1, 1000] = 1) -> None:
        """List the indexed documents, with current/superseded marks."""
        await interaction.response.defer(ephemeral=True, thinking=True)  # before touching the index
        mark_pending(interaction)
        docs = await asyncio.to_thread(self.bot.service.documents)
        pages = document_pages(docs)
        view = DocumentPager(self.bot, interaction, min(page, pages), pages) if pages > 1 else None
        kwargs = {"view": view} if view is not None else {}
        await interaction.edit_original_response(embed=render_documents(docs, page), allowed_mentions=NO_MENTIONS, **kwargs)
        settled(interaction)

    @documents.command(name="remove")
    @app_commands.describe(document="The document to remove (start typing its title)")
    @require_local("organizer")
    async def documents_remove(self, interaction: discord.Interaction, document: str) -> None:
        """Remove a document from the index (organizers)."""
        if await self._refuse_if_rebuilding(interaction):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        mark_pending(interaction)
        try:
            info = await asyncio.to_thread(self.bot.service.remove, document)
        except NotFoundError:
            await interaction.edit_original_response(
                content=f"\u274c I have no document `{neutralise(truncate(document, 100))}`. Pick one from the suggestions, "
                        "or see `/documents list`.")
            settled(interaction)
            return
        log.info("document %s removed by %s", info.doc_id, interaction.user.id)
        await interaction.edit_original_response(
            content=f"\U0001f5d1\ufe0f Removed **{neutralise(truncate(info.title, 200))}** (`{info.doc_id}`). "
                    "It will no longer be cited.")
        settled(interaction)

    @documents.command(name="replace")
    @app_commands.describe(document="The document to replace (start typing its title)",
                           file="The new version (PDF, Markdown, text or HTML)",
                           status="Status of the new version (default: as before)")
    @require_local("organizer")
    async def documents_replace(self, interaction: discord.Interaction, document: str, file: discord.Attachment,
                                status: Optional[Status] = None) -> None:
        """Replace a document with a new version (organizers)."""
        if msg := self._too_large(file.size):
            await interaction.response.send_message(f"\u274c {msg}", ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        if await self._refuse_if_rebuilding(interaction):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        mark_pending(interaction)
        known = {d.doc_id: d for d in await asyncio.to_thread(self.bot.service.documents)}
        old = known.get(document)
        if old is None:
            await interaction.edit_original_response(
                content=f"\u274c I have no document `{neutralise(truncate(document, 100))}` to replace. "
                        "Pick one from the suggestions, or use `/upload` to add a new one.")
            settled(interaction)
            return
        data = await file.read()
        meta = _meta(old.title, old.union, old.agreement, old.year, status or old.status, old.url or None)
        result = await self._ingest(interaction, data, file.filename, meta, replace=document)
        await interaction.edit_original_response(content=result_text(result, source=file.filename))
        interaction.extras[PROGRESS_KEY] = False
        settled(interaction)

    @documents_remove.autocomplete("document")
    @documents_replace.autocomplete("document")
    async def _document_autocomplete(self, interaction: discord.Interaction, current: str):
        return await self._doc_choices(current)


class DocumentPager(discord.ui.View):
    """◀ ▶ buttons under `/documents list` (ephemeral, for the member who asked). When they time out
    they are disabled, by editing the reply through the command's own interaction."""

    def __init__(self, bot: UnionBot, origin: discord.Interaction, page: int, pages: int):
        super().__init__(timeout=PAGER_TIMEOUT_S)
        self.bot, self.origin, self.page, self.pages = bot, origin, page, pages
        self._sync()

    def _sync(self) -> None:
        self.previous.disabled = self.page <= 1
        self.next.disabled = self.page >= self.pages

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await self.bot.gate(interaction, "documents pager")

    async def _show(self, interaction: discord.Interaction, delta: int) -> None:
        await interaction.response.defer()  # a deferred update: before touching the index
        docs = await asyncio.to_thread(self.bot.service.documents)
        self.pages = document_pages(docs)
        self.page = min(max(1, self.page + delta), self.pages)
        self._sync()
        await interaction.edit_original_response(embed=render_documents(docs, self.page), view=self)

    @discord.ui.button(label="Previous", emoji="\u25c0\ufe0f", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._show(interaction, -1)

    @discord.ui.button(label="Next", emoji="\u25b6\ufe0f", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._show(interaction, +1)

    async def on_timeout(self) -> None:
        for item in self.children:
            item.disabled = True  # type: ignore[attr-defined]
        try:
            await self.origin.edit_original_response(view=self)
        except discord.HTTPException as exc:
            log.info("could not disable the pager buttons: %s", exc)

    async def on_error(self, interaction: discord.Interaction, error: Exception, item) -> None:
        await self.bot.report_error(interaction, error, where="documents pager")


async def setup(bot: UnionBot) -> None:
    await bot.add_cog(Documents(bot))
