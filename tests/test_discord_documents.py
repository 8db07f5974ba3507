"""Documents through Discord: /upload (file and link), /documents list|remove|replace."""
from __future__ import annotations

import io
import sys
import zipfile

import pytest
from fakediscord import EPHEMERAL, CommandNotShown, custom_ids
from fakediscord.harness import assert_clean, make_pdf, running_world

SIDELETTER = "SAG-AFTRA 2023 Synthetic Performers Sideletter"
SYNTH_Q = "Must the producer notify the union before using a synthetic performer?"


def sideletter_pdf() -> bytes:
    """Three pages; the synthetic-performer rule is in the middle of page 2."""
    filler = " ".join(f"Section {i}. Meal periods, rest periods and wardrobe fittings are scheduled by the production office."
                      for i in range(25))
    before = " ".join(f"Clause {i}: travel days are paid at the daily rate and per diem is paid in cash." for i in range(10))
    rule = ("Synthetic performers. The producer must notify the union and give it an opportunity to bargain before using "
            "a synthetic performer in place of a human performer.")
    after = " ".join(f"Clause {i}: parking is provided near the stage at no cost to the performer." for i in range(10, 20))
    return make_pdf([filler, f"{before} {rule} {after}", filler.replace("Section", "Paragraph")])


def docx_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


async def test_member_upload_is_refused_ephemerally_naming_the_role(tmp_path):
    async with running_world(tmp_path) as w:
        before = len(w.service.documents())
        with pytest.raises(CommandNotShown):  # Discord hides it (Manage Messages by default)
            await w.fake.slash(w.member, "upload", file=("sideletter.pdf", sideletter_pdf(), "application/pdf"))
        w.fake.allow_command("upload")  # an admin opens /upload to @everyone under Integrations by mistake
        ix = await w.done(await w.fake.slash(w.member, "upload", file=("sideletter.pdf", sideletter_pdf(), "application/pdf")))
        assert ix.callbacks[0][0] == 4 and ix.messages[0]["flags"] & EPHEMERAL
        assert ix.text() == "Only members with the **Organizer** role (or server administrators) can use `/upload`."
        assert not w.fake.requests_to("GET", "/attachments/"), "nothing was downloaded"
        assert len(w.service.documents()) == before
        assert_clean(w.fake)


async def test_organizer_pdf_upload_becomes_searchable_and_is_cited_with_its_page(tmp_path):
    async with running_world(tmp_path) as w:
        ix = await w.fake.slash(w.organizer, "upload", file=("sideletter.pdf", sideletter_pdf(), "application/pdf"),
                                title=SIDELETTER, union="SAG-AFTRA", year=2023, status="current")
        await w.done(ix, timeout=30)
        assert ix.callbacks[0] == (5, {"flags": EPHEMERAL}), "deferred, ephemeral to the organizer"
        progress = [r.json.get("content") for r in w.fake.requests_to("PATCH", "/messages/@original")]
        assert progress[0].startswith("\u23f3 Downloading **sideletter.pdf**")
        assert progress[1].startswith("\u23f3 Reading and indexing **sideletter.pdf**")
        final = ix.text()
        assert final.startswith(f"\u2705 Added **{SIDELETTER}** \u2014 3 pages, ")
        assert "It is searchable now" in final
        doc = next(d for d in w.service.documents() if d.title == SIDELETTER)
        assert (doc.union, doc.year, doc.pages) == ("SAG-AFTRA", 2023, 3)

        ask = await w.ask(w.member, SYNTH_Q)
        src = ask.messages[-1]["embeds"][-1]["fields"][0]
        assert src["name"] == f"[1] {SIDELETTER}"
        assert src["value"].split("\n")[0].split(" \u00b7 ")[-1] == "p. 2", src["value"]  # [§ section ·] page
        assert "must notify the union" in src["value"]
        assert_clean(w.fake)


async def test_non_pdf_renamed_pdf_is_refused_with_the_reason(tmp_path):
    async with running_world(tmp_path) as w:
        before = len(w.service.documents())
        ix = await w.done(await w.fake.slash(w.organizer, "upload", file=("contract.pdf", docx_bytes(), "application/pdf")))
        text = ix.text()
        assert text.startswith("\u274c **contract.pdf** was not added: This file is named .pdf but is not a PDF"), text
        assert "Microsoft Office document" in text
        assert len(w.service.documents()) == before
        assert ix.messages[0]["flags"] & EPHEMERAL
        assert_clean(w.fake)


async def test_too_large_is_refused_before_downloading(tmp_path):
    async with running_world(tmp_path, max_upload_mb=0.01) as w:
        ix = await w.done(await w.fake.slash(w.organizer, "upload", file=("big.pdf", b"%PDF-1.4" + b"0" * 20000, "application/pdf")))
        assert ix.callbacks[0][0] == 4 and ix.messages[0]["flags"] & EPHEMERAL
        assert ix.text() == "\u274c That file is 20 KB; the limit is 0.01 MB."
        assert not w.fake.requests_to("GET", "/attachments/")


async def test_upload_needs_exactly_one_of_file_or_url(tmp_path):
    async with running_world(tmp_path) as w:
        ix = await w.done(await w.fake.slash(w.organizer, "upload", title="Nothing"))
        assert ix.text() == "Attach a file **or** give a `url:` (one of the two)."


async def test_upload_by_link_fetches_and_keeps_the_link(tmp_path):
    async with running_world(tmp_path) as w:
        html = ("<html><head><title>IATSE 2024 Basic Agreement AI summary</title>"
                "<meta property='og:site_name' content='Local 42 News'></head><body><h1>IATSE 2024 AI terms</h1>"
                "<p>Employers must consult the union in advance about new generative AI tools that affect bargaining "
                "unit work, and employees are not required to use generative AI.</p></body></html>").encode()
        link = w.fake._store_file("iatse-ai.html", html, "text/html")["url"]
        ix = await w.fake.slash(w.organizer, "upload", url=link, union="IATSE", year=2024)
        await w.done(ix, timeout=30)
        assert ix.text().startswith("\u2705 Added **IATSE 2024 Basic Agreement AI summary**"), ix.text()
        progress = [r.json.get("content") for r in w.fake.requests_to("PATCH", "/messages/@original")]
        assert progress[0] == f"\u23f3 Fetching <{link}>\u2026"
        doc = next(d for d in w.service.documents() if d.union == "IATSE")
        assert doc.url == link
        ask = await w.ask(w.member, "Are employees required to use generative AI tools under the IATSE agreement?")
        assert "IATSE 2024 Basic Agreement AI summary" in ask.text()
        assert f"[Open the source]({link})" in ask.text()
        assert_clean(w.fake)


async def test_upload_by_link_to_a_private_address_is_refused(tmp_path):
    async with running_world(tmp_path, allow_private_urls=False) as w:
        link = w.fake._store_file("x.html", b"<html><body>secret</body></html>", "text/html")["url"]
        ix = await w.done(await w.fake.slash(w.organizer, "upload", url=link))
        assert ix.text() == ("\u274c Not added: I can't fetch from 127.0.0.1: it points to a private or reserved "
                             "network address.")
        assert not w.fake.requests_to("GET", "/attachments/")


def slow_index_reads(w, seconds: float = 4.0):
    """Each read of the index takes longer than Discord's 3-second deadline (on the fake's clock)."""
    real = w.service.documents

    def documents():
        w.fake.clock.advance(seconds)
        return real()

    w.service.documents = documents


async def test_documents_list_marks_status_and_pages_with_buttons(tmp_path):
    async with running_world(tmp_path) as w:
        ix = await w.done(await w.fake.slash(w.member, "documents list"))
        [msg] = ix.messages
        assert msg["flags"] & EPHEMERAL
        embed = msg["embeds"][0]
        assert embed["title"] == "Indexed documents (3)"
        assert "**DGA 2020 Basic Agreement - Creative Rights**\n\U0001f5c4\ufe0f superseded \u00b7 DGA, Basic Agreement, 2020" in embed["description"]
        assert "\U0001f7e2 current \u00b7 WGA, Minimum Basic Agreement, 2023" in embed["description"]
        assert embed["footer"]["text"] == "Page 1 of 1" and msg["components"] == []

        for i in range(9):  # 12 documents: two pages
            await __import__("asyncio").to_thread(
                w.service.ingest_bytes, f"# Extra {i}\n\nExtra document number {i} about scheduling.\n".encode(),
                f"extra-{i}.md", {"title": f"Extra document {i}", "union": "IATSE", "year": 2024})
        slow_index_reads(w)  # the list and the pager must defer before reading the index
        ix = await w.done(await w.fake.slash(w.member, "documents list"))
        assert ix.callbacks[0] == (5, {"flags": EPHEMERAL})
        msg = ix.messages[0]
        assert msg["embeds"][0]["title"] == "Indexed documents (12)"
        assert msg["embeds"][0]["footer"]["text"] == "Page 1 of 2"
        prev_id, next_id = custom_ids(msg)
        click = await w.fake.click(w.member, msg, next_id)
        turned = await w.fake.until(lambda: w.fake.messages[msg["id"]]["embeds"][0]["footer"]["text"] == "Page 2 of 2"
                                    and w.fake.messages[msg["id"]], what="the page turn")
        assert click.callbacks[0][0] == 6, "a deferred update first; the page is then turned in place"
        assert not click.expired and not ix.expired
        ix2 = await w.done(await w.fake.slash(w.member, "documents list", page=2))
        assert ix2.messages[0]["embeds"][0]["description"] == turned["embeds"][0]["description"]
        assert_clean(w.fake)
        assert not w.fake.refused(), [(r.method, r.path, r.status) for r in w.fake.refused()]


async def test_pager_buttons_are_disabled_when_they_time_out(tmp_path, monkeypatch):
    async with running_world(tmp_path) as w:
        # the module the bot loaded as an extension (load_extension executes a fresh module object)
        monkeypatch.setattr(sys.modules["bot.discord_app.cogs.documents"], "PAGER_TIMEOUT_S", 0.5)
        for i in range(9):
            await __import__("asyncio").to_thread(
                w.service.ingest_bytes, f"# Extra {i}\n\nExtra document number {i} about scheduling.\n".encode(),
                f"extra-{i}.md", {"title": f"Extra document {i}", "union": "IATSE", "year": 2024})
        ix = await w.done(await w.fake.slash(w.member, "documents list"))
        msg = ix.messages[0]

        def buttons():
            return [c for row in w.fake.messages[msg["id"]]["components"] for c in row["components"]]

        assert [b.get("disabled", False) for b in buttons()] == [True, False], "on page 1 only Next works"
        await w.fake.until(lambda: all(b.get("disabled") for b in buttons()), timeout=5, what="the buttons disabled")
        assert [b["label"] for b in buttons()] == ["Previous", "Next"]
        with pytest.raises(AssertionError, match="is disabled"):
            await w.fake.click(w.member, msg, custom_ids(msg)[1])
        assert_clean(w.fake)


async def test_documents_remove_with_autocomplete(tmp_path):
    async with running_world(tmp_path) as w:
        choices = await w.fake.autocomplete(w.organizer, "documents remove", "document", "article 72")
        assert [c["name"] for c in choices] == ["WGA 2023 Minimum Basic Agreement - Article 72 Generative AI (2023, current)"]
        doc_id = choices[0]["value"]
        assert len(await w.fake.autocomplete(w.organizer, "documents remove", "document", "")) == 3

        before = await w.ask(w.member, "Is generative AI a writer under the MBA?")
        assert "WGA 2023" in before.text()
        ix = await w.done(await w.fake.slash(w.organizer, "documents remove", document=doc_id))
        assert ix.text() == (f"\U0001f5d1\ufe0f Removed **WGA 2023 Minimum Basic Agreement - Article 72 Generative AI** "
                             f"(`{doc_id}`). It will no longer be cited.")
        after = await w.ask(w.member, "Is generative AI a writer under the MBA?")
        assert "WGA 2023" not in after.text()

        again = await w.done(await w.fake.slash(w.organizer, "documents remove", document=doc_id))
        assert again.text().startswith(f"\u274c I have no document `{doc_id}`")
        assert_clean(w.fake)


async def test_documents_replace_with_a_new_version(tmp_path):
    async with running_world(tmp_path) as w:
        doc_id = next(d.doc_id for d in w.service.documents() if d.union == "WGA")
        new = ("---\ntitle: ignored\n---\n# WGA Article 72 (revised)\n\n## Training\n\n"
               "The revised Article 72 lets the Guild police the licensing of writers' material for AI training.\n").encode()
        ix = await w.done(await w.fake.slash(w.organizer, "documents replace", document=doc_id, file=("art72-v2.md", new, "text/markdown")),
                          timeout=30)
        assert ix.text().startswith("\u2705 Replaced **WGA 2023 Minimum Basic Agreement - Article 72 Generative AI**"), ix.text()
        docs = [d for d in w.service.documents() if d.union == "WGA"]
        assert [d.doc_id for d in docs] == [doc_id], "same document, new version"
        ask = await w.ask(w.member, "Can the Guild police licensing of writers' material for AI training?")
        assert "police the licensing" in ask.text()
        missing = await w.done(await w.fake.slash(w.organizer, "documents replace", document="nope", file=("x.md", new, "text/markdown")))
        assert missing.text().startswith("\u274c I have no document `nope` to replace.")
        assert_clean(w.fake)


async def test_an_unexpected_ingest_failure_replaces_the_progress_line_with_an_apology(tmp_path, caplog):
    async with running_world(tmp_path) as w:
        def crash(*a, **k):
            raise RuntimeError("parser segfault simulation")

        w.service.ingest_bytes = crash
        ix = await w.fake.slash(w.organizer, "upload", file=("sideletter.pdf", sideletter_pdf(), "application/pdf"))
        await w.done(ix, timeout=30)
        assert ix.text().startswith("Sorry \u2014 something went wrong on my side."), ix.text()
        assert len(ix.messages) == 1 and ix.messages[0]["flags"] & EPHEMERAL, "no stale progress line is left"
        assert "segfault" not in ix.text()
        assert any(r.exc_info and "parser segfault" in str(r.exc_info[1]) for r in caplog.records)
        assert_clean(w.fake)
