"""What the bot posted, checked for the things a hostile question or document could make it do:
ping someone, show a traceback, or render markdown (a link, a code block, a spoiler) that a member or a
document put there.

These look only at what the fake server received (`FakeDiscord.message_payloads()`), i.e. what Discord
would show. Used by tests/test_hostile_questions.py, tests/test_injection.py and tests/test_load.py.
"""
from __future__ import annotations

import re
from typing import Iterable

from .server import FakeDiscord

ZWSP = "\u200b"

# Mention syntax that Discord turns into a ping or a pill: @everyone/@here, <@id>, <@!id>, <@&id>, <#id>.
# Neutralised forms ("@\u200beveryone", "<@\u200b123>") do not match.
RAW_MENTION = re.compile(r"@(?:everyone|here)\b|<@[!&]?\d+>|<#\d+>")
# Only the ones that can notify someone (user, role, @everyone/@here), with a real-looking snowflake.
RAW_PING = re.compile(r"@(?:everyone|here)\b|<@[!&]?\d{17,20}>")

TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|\b\w+(?:Error|Exception): ")


def payload_texts(payload: dict) -> list[tuple[str, str]]:
    """(where, text) of every string a member can read in one message payload."""
    out = []
    if payload.get("content"):
        out.append(("content", payload["content"]))
    for i, e in enumerate(payload.get("embeds") or []):
        for key in ("title", "description"):
            if e.get(key):
                out.append((f"embeds.{i}.{key}", e[key]))
        for j, f in enumerate(e.get("fields") or []):
            out.append((f"embeds.{i}.fields.{j}.name", f.get("name") or ""))
            out.append((f"embeds.{i}.fields.{j}.value", f.get("value") or ""))
        for key in ("footer", "author"):
            text = (e.get(key) or {}).get("text" if key == "footer" else "name")
            if text:
                out.append((f"embeds.{i}.{key}", text))
    for row in payload.get("components") or []:
        for c in row.get("components") or []:
            if c.get("label"):
                out.append(("components.label", c["label"]))
    return out


def all_texts(fake: FakeDiscord) -> list[tuple[str, str]]:
    return [t for p in fake.message_payloads() for t in payload_texts(p)]


def assert_mentions_disabled(fake: FakeDiscord) -> None:
    """Every message the bot created or edited said allowed_mentions: parse [] and no users/roles."""
    payloads = fake.message_payloads()
    assert payloads, "the bot sent no messages"
    for p in payloads:
        am = p.get("allowed_mentions")
        assert am is not None, f"payload without allowed_mentions: {str(p)[:300]}"
        assert am.get("parse") == [], am
        assert not am.get("users") and not am.get("roles") and not am.get("replied_user"), am


def raw_pings(fake: FakeDiscord) -> list[tuple[str, str]]:
    """(where, match) of ping syntax left intact anywhere in what the bot posted."""
    return [(where, m.group(0)) for where, text in all_texts(fake) for m in RAW_PING.finditer(text)]


def raw_mentions(text: str) -> list[str]:
    return [m.group(0) for m in RAW_MENTION.finditer(text)]


def tracebacks(fake: FakeDiscord) -> list[tuple[str, str]]:
    return [(where, text[:200]) for where, text in all_texts(fake) if TRACEBACK.search(text)]


def assert_no_pings_or_tracebacks(fake: FakeDiscord) -> None:
    assert fake.errors == [], fake.errors
    assert_mentions_disabled(fake)
    assert raw_pings(fake) == [], "mention syntax reached Discord intact"
    assert tracebacks(fake) == [], "traceback text reached Discord"


# ---- markdown -----------------------------------------------------------------------------------------

_ACTIVE = {
    # [text](url) or [text](<url>) -- a masked link (rendered in content, descriptions and field values)
    "masked link": re.compile(r"(?<!\\)\[(?:[^\]\\]|\\.)+\]\(\s*<?\w+:"),
    "code": re.compile(r"(?<!\\)`"),
    "spoiler": re.compile(r"(?<!\\)\|(?<!\\)\|"),
    "bold/italic": re.compile(r"(?<!\\)\*"),
    "underline": re.compile(r"(?<!\\)__"),
    "strikethrough": re.compile(r"(?<!\\)~~"),
    "heading": re.compile(r"(?m)^\s*#{1,3}\s"),
    "block quote": re.compile(r"(?m)^\s*>{1,3}\s"),
    "subtext": re.compile(r"(?m)^\s*-#\s"),
}


def active_markdown(text: str, kinds: Iterable[str] | None = None) -> list[str]:
    """The markdown constructs in `text` that Discord would render (not escaped with a backslash)."""
    names = list(kinds) if kinds is not None else list(_ACTIVE)
    return [name for name in names if _ACTIVE[name].search(text)]


def masked_links(text: str) -> list[str]:
    return [m.group(0) for m in _ACTIVE["masked link"].finditer(text)]


# Where Discord renders masked links: message content, embed descriptions and field values.
LINK_RENDERING = re.compile(r"^(?:content|embeds\.\d+\.description|embeds\.\d+\.fields\.\d+\.value)$")


def rendered_masked_links(fake: FakeDiscord) -> list[tuple[str, str]]:
    """(where, link) of every masked link the bot posted where Discord renders it as a link."""
    return [(where, link) for where, text in all_texts(fake) if LINK_RENDERING.match(where)
            for link in masked_links(text)]


__all__ = ["ZWSP", "RAW_MENTION", "RAW_PING", "TRACEBACK", "payload_texts", "all_texts", "assert_mentions_disabled",
           "raw_pings", "raw_mentions", "tracebacks", "assert_no_pings_or_tracebacks", "active_markdown", "masked_links",
           "rendered_masked_links"]
