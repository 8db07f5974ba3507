"""PDF text extraction on generated PDFs (page numbers, headers, hyphens, metadata) and `clean_pages`."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import pdfgen
from bot.errors import RefusedError
from bot.ingest.pdf import SCANNED_MESSAGE, PdfExtract, clean_pages, extract_pdf
from bot.ingest.sniff import detect_kind

LIMITS = dict(max_bytes=25 * 1024 * 1024, max_pages=100, timeout_s=10.0, memory_mb=512)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def extract(path: Path, **overrides) -> PdfExtract:
    return extract_pdf(path, **{**LIMITS, **overrides})


# --------------------------------------------------------------------------- whole PDFs

@pytest.fixture(scope="module")
def contract(tmp_path_factory) -> PdfExtract:
    path = write(tmp_path_factory.mktemp("contract"), "moa.pdf", pdfgen.contract_pdf(6))
    return extract(path)


def test_page_numbers_are_the_physical_pages(contract: PdfExtract):
    assert contract.page_count == 6
    assert len(contract.pages) == 6
    for number, text in enumerate(contract.pages, start=1):
        assert f"marker-page-{number}" in text
        others = [n for n in range(1, 7) if n != number]
        assert not any(f"marker-page-{n}" in text for n in others), (number, text)


def test_structure_lines_stay_at_line_starts(contract: PdfExtract):
    lines = contract.pages[2].split("\n")
    assert lines[0] == "ARTICLE 72 GENERATIVE ARTIFICIAL INTELLIGENCE"
    assert lines[1] == "Section 72.A Definitions"
    assert "The Company shall disclose any use of generative AI material. marker-page-3" in lines


def test_running_header_and_footer_are_removed(contract: PdfExtract):
    joined = "\n".join(contract.pages)
    assert "WGA MOA" not in joined
    assert "Writers Guild of America" not in joined
    # ...and nothing else went with them: every page keeps its first and last body line.
    for number, text in enumerate(contract.pages, start=1):
        body = pdfgen.marker_text(number).split("\n")
        assert text.split("\n") == body


def test_metadata_is_read(contract: PdfExtract):
    assert contract.meta["title"] == "2023 WGA Theatrical and Television Basic Agreement"
    assert contract.meta["author"] == "Writers Guild of America West"
    assert contract.meta["subject"] == "Memorandum of Agreement"
    assert contract.meta["creation_date"].startswith("2023-10-09T12:00:00")
    assert all(isinstance(v, str) for v in contract.meta.values())


def test_undecodable_metadata_is_ignored(tmp_path: Path):
    # A hand-written PDF with an /Info dictionary full of junk: a UTF-16 BOM followed by a lone surrogate, a
    # non-string subject, an invalid date; the author is fine and must survive.
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
        b"/Contents 5 0 R >>",
        pdfgen.stream(b"BT /F1 12 Tf 72 720 Td (Article 1 text) Tj ET"),
        b"<< /Title <FEFFD800> /Author (Jane Doe) /Subject 42 /Creator <9F7F> /CreationDate (D:2023-99-99) >>",
    ]
    path = write(tmp_path, "junk-meta.pdf", pdfgen.raw_pdf(objs, trailer_extra=b"/Info 6 0 R "))
    result = extract(path)
    assert result.pages == ["Article 1 text"]
    assert result.meta == {"author": "Jane Doe"}


def test_words_hyphenated_across_lines_are_joined(tmp_path: Path):
    page = [
        "The Producer shall nego-",
        "tiate in good faith before using",
        "AI-generated material or the likeness of any non-",
        "union performer. A non-union performer is covered.",
        "The Union may request the AI-",
        "generated output.",
    ]
    result = extract(write(tmp_path, "hyphens.pdf", pdfgen.text_pdf([page])))
    assert result.pages[0].split("\n") == [
        "The Producer shall negotiate",
        "in good faith before using",
        "AI-generated material or the likeness of any non-union",
        "performer. A non-union performer is covered.",
        "The Union may request the AI-generated",
        "output.",
    ]


def test_pages_without_text_keep_their_number(tmp_path: Path):
    result = extract(write(tmp_path, "gap.pdf", pdfgen.text_pdf(["first marker-page-1", [], "third marker-page-3"])))
    assert result.page_count == 3
    assert result.pages[1] == ""
    assert "marker-page-3" in result.pages[2]


def test_hand_written_pdf_without_fpdf(tmp_path: Path):
    result = extract(write(tmp_path, "raw.pdf", pdfgen.simple_raw_pdf(["one", "two", "three"])))
    assert result.pages == ["one", "two", "three"]
    assert result.unreadable_pages == []


def test_password_protected_pdf_is_refused(tmp_path: Path):
    data = pdfgen.text_pdf(["secret terms"], owner_password="owner", user_password="member")
    with pytest.raises(RefusedError) as err:
        extract(write(tmp_path, "locked.pdf", data))
    assert err.value.reason == "encrypted"
    assert err.value.message == "This PDF is password-protected. Upload an unprotected copy."


def test_encrypted_pdf_with_empty_user_password_is_ingested(tmp_path: Path):
    data = pdfgen.text_pdf(["open terms marker-page-1", "more terms marker-page-2"], owner_password="owner")
    result = extract(write(tmp_path, "owner-only.pdf", data))
    assert result.page_count == 2
    assert "marker-page-1" in result.pages[0] and "marker-page-2" in result.pages[1]


def test_aes_encrypted_pdf_without_aes_support_is_refused_as_encrypted(tmp_path: Path):
    if importlib.util.find_spec("cryptography") is not None:
        pytest.skip("with `cryptography` installed pypdf decrypts AES itself")
    with pytest.raises(RefusedError) as err:
        extract(write(tmp_path, "aes.pdf", pdfgen.aes_owner_only_pdf()))
    assert err.value.reason == "encrypted"
    assert "AES" in err.value.message


def test_image_only_pdf_is_refused_as_scanned(tmp_path: Path):
    with pytest.raises(RefusedError) as err:
        extract(write(tmp_path, "scan.pdf", pdfgen.image_only_pdf(3)))
    assert err.value.reason == "scanned"
    assert err.value.message == SCANNED_MESSAGE


def test_pdf_with_only_headers_and_page_numbers_counts_as_scanned(tmp_path: Path):
    # A scanned contract whose producer stamped a text header on each image: no real text.
    data = pdfgen.text_pdf([[], [], [], []], header="WGA MOA 2023 - Page {page}", footer="{page}")
    with pytest.raises(RefusedError) as err:
        extract(write(tmp_path, "stamped-scan.pdf", data))
    assert err.value.reason == "scanned"


def test_many_pages_within_the_limit(tmp_path: Path):
    n = 60
    data = pdfgen.text_pdf([pdfgen.marker_text(p) for p in range(1, n + 1)], footer="Page {page} of 60")
    result = extract(write(tmp_path, "long.pdf", data), max_pages=n)
    assert result.page_count == n
    assert result.pages == [pdfgen.marker_text(p) for p in range(1, n + 1)]


def test_detect_kind_types_pdf_by_content_not_name():
    data = pdfgen.simple_raw_pdf(["x"])
    assert detect_kind(data[:4096], "contract.txt") == "pdf"
    assert detect_kind(b"\n" * 100 + data[:900], "") == "pdf"  # header within the first 1024 bytes


@pytest.mark.parametrize(
    ("head", "name", "kind"),
    [
        (b"<!DOCTYPE html><html><body>AI</body></html>", "page.txt", "html"),
        (b"\xef\xbb\xbf  <html lang='en'><head><title>x</title>", "", "html"),
        (b"<p>Article 72</p>", "fragment.html", "html"),
        (b"---\ntitle: MOA\n---\nBody", "moa.txt", "markdown"),
        (b"# Article 72\n\nText", "", "markdown"),
        (b"Article 72\nplain words", "notes.md", "markdown"),
        (b"Article 72\nplain words <html> later", "notes.txt", "text"),
        ("Résumé of Article 72 — AI".encode(), "", "text"),
        (b"\xef\xbb\xbfBOM then text", "a.txt", "text"),
        (("x" * 4095 + "\u00e9").encode()[:4096], "", "text"),  # a 4 KB prefix may end inside a character
    ],
)
def test_detect_kind_for_text_formats(head: bytes, name: str, kind: str):
    assert detect_kind(head, name) == kind


# --------------------------------------------------------------------------- clean_pages (no PDFs)

def test_clean_keeps_page_count_and_empty_pages():
    assert clean_pages(["", "text", "  \n \t "]) == ["", "text", ""]


def test_clean_normalises_whitespace_but_keeps_line_breaks():
    raw = "  ARTICLE 72 \t GENERATIVE  AI\r\nSection 16.B\rText\u00a0with\u2003odd spaces\n\n\n\nNext para  \n"
    assert clean_pages([raw]) == ["ARTICLE 72 GENERATIVE AI\nSection 16.B\nText with odd spaces\n\nNext para"]


def test_clean_drops_control_and_zero_width_characters_and_expands_ligatures():
    assert clean_pages(["de\u200bﬁned\x00 terms\x0cof ser\ufeffvice \ud800ok"]) == ["defined terms\nof service ok"]


def test_clean_joins_hyphenated_line_breaks_only():
    raw = "The parties shall nego-\ntiate in good faith.\nAI-generated material stays hyphenated."
    assert clean_pages([raw]) == [
        "The parties shall negotiate\nin good faith.\nAI-generated material stays hyphenated."]


def test_clean_hyphen_edge_cases():
    page = "\n".join([
        "Covers the AI-",  # an acronym keeps its hyphen
        "generated script.",
        "any non-",  # a compound used elsewhere in the document keeps its hyphen
        "union member; non-union terms apply.",
        "well-",  # next line starts with a capital: not a word break
        "Known Producer",
        "co-",  # a word broken twice
        "op-",
        "eration",
        "Section 16-",  # not preceded by a letter
        "b applies",
        "The pro\u00ad",  # soft hyphen: always removed
        "ducer and pro\u00adducer.",
        "The end-",  # end of page: nothing to join with
    ])
    assert clean_pages([page])[0].split("\n") == [
        "Covers the AI-generated",
        "script.",
        "any non-union",
        "member; non-union terms apply.",
        "well-",
        "Known Producer",
        "cooperation",
        "Section 16-",
        "b applies",
        "The producer",
        "and producer.",
        "The end-",
    ]


def test_clean_does_not_join_across_paragraphs():
    assert clean_pages(["nego-\n\ntiate"]) == ["nego-\n\ntiate"]


def _pages(n: int, header: str | None, footer: str | None, body=lambda p: [f"Body line {chr(64 + p)} text"]):
    pages = []
    for p in range(1, n + 1):
        lines = ([header.format(p=p)] if header else []) + body(p) + ([footer.format(p=p)] if footer else [])
        pages.append("\n".join(lines))
    return pages


def test_clean_drops_running_header_with_varying_page_number():
    pages = clean_pages(_pages(5, "WGA MOA 2023 — Page {p}", "Confidential draft"))
    assert pages == [f"Body line {chr(64 + p)} text" for p in range(1, 6)]


def test_clean_drops_footer_with_page_number_offset_by_front_matter():
    pages = clean_pages(_pages(6, None, "2023 Basic Agreement {p}"))
    assert pages == [f"Body line {chr(64 + p)} text" for p in range(1, 7)]
    # Cover and contents (physical pages 1-4) are unnumbered; printed page 1 is physical page 5.
    raw = [f"Front matter {chr(64 + p)}\ncontents entry {chr(96 + p)}" for p in range(1, 5)]
    raw += [f"Body {chr(64 + p)}\n2023 Basic Agreement {p - 4}" for p in range(5, 11)]
    cleaned = clean_pages(raw)
    assert cleaned[:4] == raw[:4]
    assert cleaned[4:] == [f"Body {chr(64 + p)}" for p in range(5, 11)]


def test_clean_drops_alternating_running_headers():
    pages = []
    for p in range(1, 11):
        header = "Writers Guild of America" if p % 2 else "2023 Theatrical Agreement"
        pages.append(f"{header}\nClause {chr(64 + p)} body")
    assert clean_pages(pages) == [f"Clause {chr(64 + p)} body" for p in range(1, 11)]


def test_clean_keeps_article_headings_at_page_tops():
    articles = [3, 7, 12, 13, 20]
    raw = [f"WGA MOA 2023 — Page {p}\nARTICLE {a}\nText of article {a}."
           for p, a in enumerate(articles, start=1)]
    assert clean_pages(raw) == [f"ARTICLE {a}\nText of article {a}." for a in articles]


def test_clean_keeps_repeated_lines_in_the_body():
    # The same sentence on every page, but not at an edge: it is content.
    raw = [f"Opening {chr(64 + p)}\nSee Article 72 for AI terms.\nClosing {chr(64 + p)}" for p in range(1, 7)]
    assert clean_pages(raw) == raw


def test_clean_keeps_single_line_pages():
    assert clean_pages(["Same line"] * 4) == ["Same line"] * 4


def test_clean_needs_three_pages_to_call_a_line_a_header():
    raw = ["Header\nBody one", "Header\nBody two"]
    assert clean_pages(raw) == raw


@pytest.mark.parametrize("marker", ["{p}", "- {p} -", "— {p} —", "Page {p} of 90", "page {p}", "{p} / 90",
                                    "{p} | P a g e"])
def test_clean_drops_page_number_lines(marker: str):
    raw = [f"Clause {chr(64 + p)} text\n{marker.format(p=p)}" for p in (1, 2)]
    assert clean_pages(raw) == ["Clause A text", "Clause B text"]


def test_clean_drops_roman_page_numbers_at_edges_only():
    assert clean_pages(["Preface text\niv"]) == ["Preface text"]
    assert clean_pages(["iv\nvi\nvii\nmiddle\nmix\nend text"]) == ["middle\nmix\nend text"]


def test_clean_keeps_bare_numbers_that_are_not_page_numbers():
    raw = ["Intro text\nmore intro", "72\nGENERATIVE ARTIFICIAL INTELLIGENCE\nbody", "Closing text\n2023"]
    assert clean_pages(raw) == raw
