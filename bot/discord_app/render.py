"""Answers, sources and listings as Discord messages — always within Discord's limits.

Every string that came from a member or a document goes through `neutralise` (mentions made inert),
and every message is built so that no limit can be exceeded: 2,000 characters of content, 10 embeds
and 6,000 characters of embeds per message, 4,096 per description, 25 fields of 256/1,024 per embed.
Long text is split with `bot.textsplit` (paragraph > sentence > word), never cut mid-word.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import discord

from ..feedback import Gap, StoredSource
from ..models import Answer, Citation, DocumentInfo
from ..textsplit import (
    EMBED_DESCRIPTION_LIMIT,
    EMBED_FIELD_LIMIT,
    EMBED_FIELD_NAME_LIMIT,
    EMBED_FIELDS_MAX,
    EMBED_TITLE_LIMIT,
    EMBED_TOTAL_LIMIT,
    EMBEDS_PER_MESSAGE,
    MESSAGE_LIMIT,
    split_text,
    truncate,
)

NO_MENTIONS = discord.AllowedMentions.none()

COLOUR_ANSWER = discord.Colour.blurple()
COLOUR_ABSTAIN = discord.Colour.light_grey()
COLOUR_INFO = discord.Colour.dark_teal()

ABSTAIN_TITLE = "I can't answer that from my documents"
PARTIAL_TITLE = "My documents don't answer this exactly"
COLOUR_PARTIAL = discord.Colour.gold()
QUESTION_ECHO_LIMIT = 300
QUOTE_LIMIT = 400
# Leave headroom under the 6,000 total so a title/footer added later can't tip a message over.
_EMBED_BUDGET = EMBED_TOTAL_LIMIT - 200


_MENTION_SYNTAX = re.compile(r"<(@[!&]?|#)(\d+)>")
_MASKED_LINK = re.compile(r"\[([^\]\n]{1,300})\]\(\s*<?(https?://[^)\s>]+)>?\s*\)")


def neutralise(text: str | None) -> str:
    """Make @everyone/@here, user/role/channel mentions inert text, and turn masked links
    ("[here](https://…)") into visible ones, so text from a document or a member can neither ping
    anyone nor hide where a link goes."""
    text = discord.utils.escape_mentions(text or "")
    text = _MENTION_SYNTAX.sub(lambda m: f"<{m.group(1)}\u200b{m.group(2)}>", text)
    return _MASKED_LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", text)


def echo(text: str | None) -> str:
    """A member's own words shown back: mentions inert and all markdown escaped (no links, code or
    spoilers can be smuggled into the bot's message)."""
    return discord.utils.escape_markdown(neutralise(" ".join((text or "").split())))


@dataclass
class Outgoing:
    """One Discord message to send: content (may be None) and embeds."""

    content: str | None = None
    embeds: list[discord.Embed] = field(default_factory=list)


# ---- answers -------------------------------------------------------------------------------------------

def _source_meta(section: str, pages: str, status: str, year: int | None) -> str:
    bits = []
    if section:
        bits.append(f"\u00a7 {truncate(section, 200)}")
    if pages:
        bits.append(pages)
    if status == "superseded":
        bits.append(f"superseded{f' ({year})' if year else ''}")
    return " \u00b7 ".join(bits)


def source_field(c: Citation) -> tuple[str, str]:
    """(name, value) of one numbered source: title, section, page(s), short quote, link."""
    name = truncate(neutralise(f"[{c.n}] {c.title or c.doc_id}"), EMBED_FIELD_NAME_LIMIT)
    meta = neutralise(_source_meta(c.section, c.pages_label(), c.status, c.year))
    link = f"[Open the source]({c.url})" if c.url and len(c.url) <= 300 and c.url.startswith(("http://", "https://")) else ""
    fixed = len(meta) + len(link) + 8
    quote = truncate(neutralise(" ".join((c.quote or "").split())), min(QUOTE_LIMIT, EMBED_FIELD_LIMIT - fixed))
    lines = [x for x in (meta, f"> {quote}" if quote else "", link) if x]
    value = "\n".join(lines) or "\u2014"
    return name, value[:EMBED_FIELD_LIMIT]


def _body(answer: Answer) -> str:
    body = neutralise(answer.text).strip()
    note = neutralise(answer.note).strip()
    if note and note not in body:
        body = f"{body}\n\n*{note}*" if body else f"*{note}*"
    return body


def is_partial(answer: Answer) -> bool:
    """The documents don't answer the exact question; the answer says so first and shows what they do say."""
    return bool(answer.partial or answer.abstained) and bool(answer.citations)


def render_answer(answer: Answer, *, echo_question: bool = True, union: str | None = None) -> list[Outgoing]:
    """The answer as one or more messages. The caller puts the buttons on the last one."""
    disclaimer = truncate(neutralise(answer.disclaimer), 2048)
    content = None
    if echo_question and answer.question:
        content = f"**Q:** {truncate(echo(answer.question), QUESTION_ECHO_LIMIT)}"
    embeds: list[discord.Embed] = []
    if answer.abstained and not answer.citations:
        text = _body(answer) or "I couldn't find this in the agreements I have, so I won't guess."
        for i, piece in enumerate(split_text(text, EMBED_DESCRIPTION_LIMIT)):
            embeds.append(discord.Embed(title=ABSTAIN_TITLE if i == 0 else None, description=piece, colour=COLOUR_ABSTAIN))
    else:
        partial = is_partial(answer)
        colour = COLOUR_PARTIAL if partial else COLOUR_ANSWER
        title = PARTIAL_TITLE if partial else "Answer" + (f" \u2014 {truncate(neutralise(union), 60)}" if union else "")
        for i, piece in enumerate(split_text(_body(answer), EMBED_DESCRIPTION_LIMIT)):
            embeds.append(discord.Embed(title=title if i == 0 else None, description=piece, colour=colour))
        if not embeds:
            embeds.append(discord.Embed(title=title, description="\u2014", colour=colour))
        embeds.extend(_field_embeds([source_field(c) for c in answer.citations],
                                    "Related sources" if partial else "Sources", colour))
    embeds[-1].set_footer(text=disclaimer)
    return pack(content, embeds)


def _field_embeds(fields: Sequence[tuple[str, str]], title: str, colour: discord.Colour) -> list[discord.Embed]:
    embeds: list[discord.Embed] = []
    current: discord.Embed | None = None
    for name, value in fields:
        if current is None or len(current.fields) >= EMBED_FIELDS_MAX or len(current) + len(name) + len(value) > _EMBED_BUDGET:
            current = discord.Embed(title=title if not embeds else f"{title} (continued)", colour=colour)
            embeds.append(current)
        current.add_field(name=name, value=value, inline=False)
    return embeds


def pack(content: str | None, embeds: Iterable[discord.Embed]) -> list[Outgoing]:
    """Group embeds into messages of at most 10 embeds and 6,000 embed characters each."""
    messages: list[Outgoing] = []
    current = Outgoing(content=truncate(content, MESSAGE_LIMIT) if content else None)
    size = 0
    for embed in embeds:
        n = len(embed)
        if current.embeds and (len(current.embeds) >= EMBEDS_PER_MESSAGE or size + n > EMBED_TOTAL_LIMIT):
            messages.append(current)
            current, size = Outgoing(), 0
        current.embeds.append(embed)
        size += n
    if current.embeds or current.content:
        messages.append(current)
    return messages


def render_sources(sources: Sequence[StoredSource]) -> list[Outgoing]:
    """The full cited passages, one embed per source, for the ephemeral "Show sources" reply."""
    embeds: list[discord.Embed] = []
    for s in sources:
        head = truncate(neutralise(f"[{s.n}] {s.title}"), EMBED_TITLE_LIMIT)
        meta = neutralise(_source_meta(s.section, s.pages, s.status, s.year))
        text = neutralise(s.text or s.quote)
        pieces = split_text(text, EMBED_DESCRIPTION_LIMIT - len(meta) - 4) or ["\u2014"]
        for i, piece in enumerate(pieces):
            desc = f"{meta}\n\n{piece}" if (meta and i == 0) else piece
            url = s.url if (i == 0 and s.url and s.url.startswith(("http://", "https://")) and len(s.url) <= 2000) else None
            embeds.append(discord.Embed(title=head if i == 0 else f"{head} (continued)"[:EMBED_TITLE_LIMIT],
                                        description=desc, url=url, colour=COLOUR_INFO))
    if not embeds:
        return [Outgoing(content="This answer has no sources to show.")]
    return pack(None, embeds)


# ---- documents, help, status, gaps -------------------------------------------------------------------

DOCS_PER_PAGE = 10


def _doc_line(d: DocumentInfo) -> str:
    mark = "\U0001f7e2 current" if d.status == "current" else ("\U0001f5c4\ufe0f superseded" if d.status == "superseded" else d.status)
    facts = ", ".join(str(x) for x in (d.union, d.agreement, d.year) if x)
    dot = " \u00b7 "
    bits = [mark] + ([facts] if facts else []) + ([f"{d.pages} pages"] if d.pages else []) + [f"{d.chunks} passages", f"`{d.doc_id}`"]
    return neutralise(f"**{truncate(d.title, 150)}**\n{dot.join(bits)}")


def document_pages(docs: Sequence[DocumentInfo]) -> int:
    return max(1, -(-len(docs) // DOCS_PER_PAGE))


def render_documents(docs: Sequence[DocumentInfo], page: int) -> discord.Embed:
    pages = document_pages(docs)
    page = min(max(1, page), pages)
    ordered = sorted(docs, key=lambda d: (d.union or "~", -(d.year or 0), d.title))
    chunk = ordered[(page - 1) * DOCS_PER_PAGE : page * DOCS_PER_PAGE]
    if not chunk:
        desc = "No documents are indexed yet."
    else:
        desc = "\n\n".join(_doc_line(d) for d in chunk)
    embed = discord.Embed(title=f"Indexed documents ({len(docs)})", description=truncate(desc, EMBED_DESCRIPTION_LIMIT), colour=COLOUR_INFO)
    embed.set_footer(text=f"Page {page} of {pages}")
    return embed


def coverage_lines(docs: Sequence[DocumentInfo]) -> list[str]:
    """One line per union: its agreements and years, current and superseded."""
    by_union: dict[str, dict[str, set[str]]] = {}
    for d in docs:
        union = d.union or "Other"
        label = d.agreement or d.doc_type or "documents"
        year = f"{d.year}" if d.year else ""
        if d.status == "superseded" and year:
            year += " (superseded)"
        by_union.setdefault(union, {}).setdefault(label, set())
        if year:
            by_union[union][label].add(year)
    lines = []
    for union in sorted(by_union):
        parts = []
        for label, years in sorted(by_union[union].items()):
            parts.append(f"{label}{': ' + ', '.join(sorted(years)) if years else ''}")
        lines.append(neutralise(f"**{union}** \u2014 " + "; ".join(parts)))
    return lines


def render_help(docs: Sequence[DocumentInfo], disclaimer: str) -> discord.Embed:
    lines = coverage_lines(docs)
    coverage = "\n".join(lines) if lines else "No documents are indexed yet \u2014 ask an organizer to upload some."
    embed = discord.Embed(
        title="What I can help with",
        description=(
            "I answer questions about the **AI provisions** in entertainment union agreements, quoting the exact "
            "passage and page I relied on. If my documents don't answer a question, I say so instead of guessing."
        ),
        colour=COLOUR_INFO,
    )
    embed.add_field(name="What I know", value=truncate(coverage, EMBED_FIELD_LIMIT), inline=False)
    embed.add_field(
        name="How to ask",
        value=(
            "\u2022 `/ask question:` \u2014 add `union:` to search one union's documents, `private:True` to see the answer alone.\n"
            "\u2022 Mention me with your question, or reply to one of my answers.\n"
            "\u2022 Follow-ups in a thread on one of my answers are read in context (\"what about background actors?\").\n"
            "\u2022 **Show sources** under an answer shows the full passages; \U0001f44d/\U0001f44e tell organizers what to fix.\n"
            "\u2022 `/documents list` shows every indexed document, current or superseded."
        ),
        inline=False,
    )
    embed.add_field(name="This is not legal advice",
                    value=truncate(f"I quote and cite the documents; I can't tell you how they apply to your situation. "
                                   f"{disclaimer}", EMBED_FIELD_LIMIT), inline=False)
    return embed


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "\u2014"
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h {m:02d}m"
    if m:
        return f"{m}m {s:02d}s"
    return f"{s}s"


def render_status(status: dict, *, latency_ms: float | None, bot_uptime_s: float, reindex: str | None) -> discord.Embed:
    embed = discord.Embed(title="Bot status", colour=COLOUR_INFO)
    embed.add_field(name="Index", value=f"{status.get('documents', '?')} documents \u00b7 {status.get('chunks', '?')} passages")
    embed.add_field(name="Model", value=truncate(f"{status.get('model', '?')} ({status.get('dimension', '?')} dims)", 1024))
    embed.add_field(name="Last build", value=str(status.get("built_at") or "\u2014"))
    if status.get("updated_at") and status.get("updated_at") != status.get("built_at"):
        embed.add_field(name="Last change", value=str(status["updated_at"]))
    embed.add_field(name="Uptime", value=f"core {_duration(status.get('uptime_s'))} \u00b7 gateway session {_duration(bot_uptime_s)}")
    embed.add_field(name="Gateway latency", value="\u2014" if latency_ms is None else f"{latency_ms:.0f} ms")
    embed.add_field(name="Rebuild", value=reindex or ("running" if status.get("rebuilding") else "idle"), inline=False)
    return embed


def rebuild_progress_text(p, started: float | None = None) -> str:
    """A progress line for /reindex from a RebuildProgress."""
    stage = {"parsing": "Reading documents", "embedding": "Embedding passages", "indexing": "Writing the index",
             "swapping": "Swapping in the new index", "done": "Done"}.get(p.stage, p.stage)
    parts = [f"\u23f3 Rebuilding the index \u2014 {stage}",
             f"documents {p.documents_done}/{p.documents_total}"]
    if p.chunks_total:
        parts.append(f"passages {p.chunks_done}/{p.chunks_total}")
    parts.append(f"elapsed {_duration(p.elapsed_s)}")
    if p.eta_s is not None and p.eta_s >= 1 and p.stage not in ("done",):
        parts.append(f"about {_duration(p.eta_s)} left")
    return " \u00b7 ".join(parts) + "\nMembers keep getting answers from the current index meanwhile."


def render_gaps(gaps: Sequence[Gap], retention_days: float) -> list[Outgoing]:
    unanswered = [g for g in gaps if g.kind == "unanswered"]
    downvoted = [g for g in gaps if g.kind == "downvoted"]

    def when(ts: float) -> str:
        return f"<t:{int(ts)}:R>"

    def lines(items: Sequence[Gap], votes: bool) -> str:
        out = []
        for g in items:
            tally = f" \u00b7 \U0001f44d {g.up} / \U0001f44e {g.down}" if votes else ""
            out.append(f"\u2022 {truncate(echo(g.question), 300)} \u2014 {when(g.created_at)}{tally}")
        return "\n".join(out)

    intro = (f"Questions are kept for {retention_days:g} days, without member names. "
             "Unanswered questions show which documents are missing; \U0001f44e answers show what to check.")
    embeds = [discord.Embed(title="Gaps", description=intro if gaps else
                            intro + "\n\nNothing to report \u2014 no unanswered or \U0001f44e questions.", colour=COLOUR_INFO)]
    for title, items, votes in (("Unanswered questions", unanswered, False), ("Answers rated \U0001f44e", downvoted, True)):
        if not items:
            continue
        for i, piece in enumerate(split_text(lines(items, votes), EMBED_DESCRIPTION_LIMIT)):
            embeds.append(discord.Embed(title=f"{title} ({len(items)})" if i == 0 else None, description=piece, colour=COLOUR_INFO))
    return pack(None, embeds)

