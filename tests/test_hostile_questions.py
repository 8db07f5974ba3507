"""Hostile questions, straight into `Service.ask` and through the fake Discord (`/ask`, a mention, `/gaps`).

Each question gets an answer (with real, numbered sources) or a clear refusal. Nothing the bot posts can
ping anyone: every payload has allowed_mentions with parse [] and no users or roles, and mention syntax
echoed back is neutralised. No traceback ever reaches Discord. The echoed question can't add formatting
(a link, a code block, a spoiler) to the bot's message.

The questions the xfail tests pin are bugs, described in each reason.
"""
from __future__ import annotations

import re

import pytest

from fakediscord import message_text
from fakediscord.harness import CORPUS, make_settings, running_world
from fakediscord.safety import (
    RAW_PING, TRACEBACK, ZWSP, active_markdown, all_texts, assert_no_pings_or_tracebacks, raw_mentions,
    rendered_masked_links, tracebacks,
)

from bot.discord_app.client import APOLOGY
from bot.discord_app.render import ABSTAIN_TITLE, PARTIAL_TITLE, QUESTION_ECHO_LIMIT

SAG = "SAG-AFTRA 2023 TV/Theatrical Agreement - Digital Replicas"
WGA = "WGA 2023 Minimum Basic Agreement - Article 72 Generative AI"
CONSENT_Q = "Do they need my consent to make a digital replica of me?"
TITLES = {re.search(r"^title: (.+)$", text, re.M).group(1) for text in CORPUS.values()}
WORDS = "Please ask a question in words"

# name -> (question, what must come back)
#   "words":  the refusal that asks for a question in words
#   "refuse": an abstention (no sources)
#   a title:  an answer whose first source is that document
#   None:     an answer with sources, or a clear refusal -- either is fine
HOSTILE: dict[str, tuple[str, str | None]] = {
    "empty": ("", "words"),
    "whitespace": ("   \t\n  \u3000 ", "words"),
    "5000 chars": (((CONSENT_Q + " ") * 90)[:5000], SAG),
    "5000 chars of one letter": ("x" * 5000, "refuse"),
    "only emoji": ("\U0001f600\U0001f389\U0001f525\U0001f916\U0001f44d\U0001f3fd\U0001f468\u200d\U0001f469\u200d\U0001f467",
                   "words"),
    "mixed scripts": ("\u0647\u0644 \u064a\u062d\u062a\u0627\u062c\u0648\u0646 \u0645\u0648\u0627\u0641\u0642\u062a\u064a "
                      "digital replica consent \u6570\u5b57\u590d\u5236\u54c1 \u540c\u610f\u5417?", SAG),
    "arabic and CJK only": ("\u0647\u0644 \u064a\u062d\u062a\u0627\u062c\u0648\u0646 \u0625\u0644\u0649 "
                            "\u0645\u0648\u0627\u0641\u0642\u062a\u064a\u061f \u4ed6\u4eec\u9700\u8981\u6211\u7684"
                            "\u540c\u610f\u5417\uff1f", "refuse"),
    "bidi and control characters": ("consent\u0000\u202e replica\u200b?", None),
    "@everyone @here": ("@everyone @here do they need my consent for a digital replica?", SAG),
    "short mentions": ("<@123> <@&456> <#789> consent digital replica?", None),
    "masked link": ("[click](https://evil.example) do they need my consent for a digital replica?", None),
    "code fence": ("``` do they need my consent ``` for a digital replica?", SAG),
    "backtick runs": ("`````` consent ` replica", SAG),
    "spoiler": ("||spoiler|| is AI a writer?", WGA),
    "heading": ("# heading\nIs AI a writer?", WGA),
    "fake citation": (f"{CONSENT_Q} [1] [2] [99]", None),
}


# ---- straight into the core ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from bot.embedding import HashEmbedder
    from bot.service import Service

    svc = Service.open(make_settings(tmp_path_factory.mktemp("hostile")), HashEmbedder())
    yield svc
    svc.close()


def check_core_answer(ans, expect) -> None:
    assert ans.text.strip(), "an empty answer"
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", ans.text)}
    assert [c.n for c in ans.citations] == list(range(1, len(ans.citations) + 1))
    assert markers <= {c.n for c in ans.citations}, f"[n] markers without a source: {markers} in {ans.text[:200]!r}"
    for c in ans.citations:
        assert c.title in TITLES, c.title
        assert " ".join(c.quote.split()).rstrip(" \u2026") in " ".join(c.text.split()), "a quote not in its passage"
    if not ans.citations:
        assert ans.abstained, "an answer without sources must be an abstention"
    if expect == "words":
        assert ans.abstained and not ans.citations and ans.text.startswith(WORDS), ans.text
    elif expect == "refuse":
        assert ans.abstained and not ans.citations and "My documents don't cover that" in ans.text, ans.text
    elif expect is not None:
        assert not ans.abstained and ans.citations and ans.citations[0].title == expect, (ans.abstained, ans.text[:200])


@pytest.mark.parametrize("name", list(HOSTILE))
def test_service_answers_or_refuses_a_hostile_question(service, name):
    question, expect = HOSTILE[name]
    ans = service.ask(question)
    check_core_answer(ans, expect)
    assert ans.latency_ms < 5000


@pytest.mark.parametrize("name", ["fake citation", "quoted answer"])
def test_citation_markers_in_a_question_do_not_change_the_answer(service, name):
    plain, marked = {
        "fake citation": (CONSENT_Q, f"{CONSENT_Q} [1] [2] [99]"),
        "quoted answer": ("A producer must obtain clear and conspicuous consent. Does that apply to background actors?",
                          "A producer must obtain clear and conspicuous consent [1]. Does that apply to background actors?"),
    }[name]
    want, got = service.ask(plain), service.ask(marked)
    assert (got.abstained, [c.chunk_id for c in got.citations]) == (want.abstained, [c.chunk_id for c in want.citations])
    assert not got.note, got.note


# ---- through Discord ------------------------------------------------------------------------------------

def sources_fields(messages: list[dict]) -> list[dict]:
    return [f for m in messages for e in m["embeds"] if (e.get("title") or "").startswith(("Sources", "Related sources"))
            for f in e.get("fields") or []]


def check_discord_answer(messages: list[dict], expect, *, echoed: str | None) -> None:
    """`messages`: what the member sees. `echoed`: the question if the bot echoes it (slash), else None."""
    assert messages, "no response"
    text = "\n".join(message_text(m) for m in messages)
    assert APOLOGY not in text and not TRACEBACK.search(text), text[:300]
    first = messages[0]
    title = first["embeds"][0].get("title") if first["embeds"] else None
    assert title in ("Answer", ABSTAIN_TITLE, PARTIAL_TITLE), (title, text[:300])
    assert (first["embeds"][0].get("description") or "").strip()
    fields = sources_fields(messages)
    bodies = " ".join(e.get("description") or "" for m in messages for e in m["embeds"]
                      if not (e.get("title") or "").startswith(("Sources", "Related sources")))
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", bodies)}
    assert markers <= set(range(1, len(fields) + 1)), f"[n] without a listed source: {markers}, {len(fields)} sources"
    if title != ABSTAIN_TITLE:
        assert fields, "an answer without sources"
    if expect == "words":
        assert title == ABSTAIN_TITLE and WORDS in text, text[:300]
    elif expect == "refuse":
        assert title == ABSTAIN_TITLE and not fields, text[:300]
    elif expect is not None:
        assert title == "Answer" and fields[0]["name"] == f"[1] {expect}", text[:300]
    content = first.get("content") or ""
    if echoed is None or not echoed.strip():
        assert content == "", content
    else:
        assert content.startswith("**Q:** ") and len(content) <= len("**Q:** ") + QUESTION_ECHO_LIMIT, content[:100]
        assert "\n" not in content, "the echo is one line (so it can't start a heading, list or quote)"
        assert not RAW_PING.search(content), content


async def test_slash_ask_answers_or_refuses_every_hostile_question(tmp_path):
    async with running_world(tmp_path) as w:
        for name, (question, expect) in HOSTILE.items():
            ix = await w.ask(w.member, question)
            try:
                check_discord_answer(ix.messages, expect, echoed=question)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}") from exc
        assert_no_pings_or_tracebacks(w.fake)


async def test_mentioned_bot_answers_or_refuses_every_hostile_question(tmp_path):
    async with running_world(tmp_path) as w:
        for name, (question, expect) in HOSTILE.items():
            m = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> {question}")
            [reply] = await w.fake.until(lambda: w.fake.replies_to(m), what=f"the reply to {name!r}")
            if expect == "words" and not question.strip():
                assert "Ask me a question after the mention" in reply["content"], reply["content"]
                continue
            try:
                check_discord_answer([reply], expect, echoed=None)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}") from exc
        assert_no_pings_or_tracebacks(w.fake)


async def test_echoed_mentions_of_real_members_and_roles_are_inert(tmp_path):
    async with running_world(tmp_path) as w:
        member, admin, role = w.member["id"], w.admin["id"], w.roles["organizer"]["id"]
        question = f"@everyone @here <@{member}> <@!{admin}> <@&{role}> do they need my consent for a digital replica?"
        ix = await w.ask(w.organizer, question)
        echo = ix.messages[0]["content"]
        assert f"@{ZWSP}everyone" in echo and f"@{ZWSP}here" in echo
        assert f"<@{ZWSP}{member}>" in echo and f"<@{ZWSP}!{admin}>" in echo and f"<@{ZWSP}&{role}>" in echo
        assert not RAW_PING.search(ix.text())
        assert_no_pings_or_tracebacks(w.fake)


async def test_echoed_short_and_channel_mentions_are_neutralised(tmp_path):
    async with running_world(tmp_path) as w:
        ix = await w.ask(w.member, f"<@123> <@&456> <#789> <#{w.fake.channel_id}> consent digital replica?")
        assert raw_mentions(ix.messages[0]["content"]) == []


MARKDOWN = {
    "masked link": ("[Claim your back pay](https://evil.example) do they need my consent?", "masked link", True),
    "code fence": ("```py do they need my consent ``` for a replica?", "code", True),
    "inline code": ("`consent` for a `digital replica`?", "code", True),
    "spoiler": ("||spoiler|| is AI a writer?", "spoiler", True),
    "bold": ("**is AI a writer?**", "bold/italic", True),
    "strikethrough": ("~~is AI a writer?~~", "strikethrough", True),
    "heading": ("# heading\nIs AI a writer?", "heading", False),
    "block quote": ("> quoted\nIs AI a writer?", "block quote", False),
    "subtext": ("-# small\nIs AI a writer?", "subtext", False),
}
LINE_START = {"heading", "block quote", "subtext"}
ECHO_BUG = ("BUG: render_answer (bot/discord_app/render.py) echoes the question as "
            "f'**Q:** {truncate(neutralise(...))}' without escaping markdown, so a member's [text](url), code, "
            "spoiler or bold markup renders in the bot's own message (a masked phishing link under the bot's name). "
            "Fix: discord.utils.escape_markdown(neutralise(q)) before truncate (and don't cut after a backslash).")


@pytest.mark.parametrize("name", [k
                                  for k, v in MARKDOWN.items()])
async def test_echoed_question_cannot_add_formatting(tmp_path, name):
    question, kind, _ = MARKDOWN[name]
    async with running_world(tmp_path) as w:
        ix = await w.ask(w.member, question)
        content = ix.messages[0]["content"]
        assert content.startswith("**Q:** ")
        # line-start markup is judged on the whole message; inline markup on the echo (the "**Q:**" is the bot's)
        where = content if kind in LINE_START else content[len("**Q:** "):]
        assert active_markdown(where, [kind]) == [], f"{kind} renders in {content!r}"
        assert rendered_masked_links(w.fake) == []


GAPS_QUESTIONS = [
    "[Claim your back pay](https://evil.example) what is the weather on Mars? @everyone",
    "<@&456> ||who won the game|| on Mars?",
]


async def test_gaps_list_of_hostile_questions_pings_nobody(tmp_path):
    async with running_world(tmp_path) as w:
        for q in GAPS_QUESTIONS:
            ix = await w.ask(w.member, q)
            assert ix.messages[0]["embeds"][0]["title"] == ABSTAIN_TITLE
        gaps = await w.done(await w.fake.slash(w.organizer, "gaps"))
        text = gaps.text()
        assert "what is the weather on Mars" in text and f"@{ZWSP}everyone" in text
        assert not RAW_PING.search(text)
        assert_no_pings_or_tracebacks(w.fake)


async def test_gaps_list_cannot_render_a_members_link(tmp_path):
    async with running_world(tmp_path) as w:
        await w.ask(w.member, GAPS_QUESTIONS[0])
        await w.done(await w.fake.slash(w.organizer, "gaps"))
        assert rendered_masked_links(w.fake) == []


async def test_a_core_failure_on_a_hostile_question_shows_the_apology_not_the_traceback(tmp_path):
    async with running_world(tmp_path) as w:
        def explode(question, **kw):
            raise RuntimeError(f'Traceback (most recent call last):\n  File "/srv/bot/service.py", line 1\n{question}')

        w.service.ask = explode
        ix = await w.ask(w.member, "@everyone ``` [x](https://evil.example)")
        assert ix.text() == APOLOGY
        m = await w.fake.user_says(w.member, f"<@{w.fake.app_id}> @everyone ``` kaboom")
        [reply] = await w.fake.until(lambda: w.fake.replies_to(m), what="the apology")
        assert reply["content"] == APOLOGY
        assert tracebacks(w.fake) == [] and not any("kaboom" in t for _, t in all_texts(w.fake))
        assert_no_pings_or_tracebacks(w.fake)
