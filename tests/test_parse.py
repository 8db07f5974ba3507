"""bot.ingest.parse / bot.ingest.structure: text, metadata and section paths from Markdown, HTML, text, PDF pages."""
from __future__ import annotations

import pytest

from bot.errors import RefusedError
from bot.ingest.parse import (
    Limits,
    meta_from_dict,
    parse_file,
    parse_front_matter,
    parse_html,
    parse_markdown,
    parse_text,
    pdf_pages_to_document,
)
from bot.ingest.structure import SectionTracker, classify_line

from conftest import TEST_GUILD_2020, TEST_GUILD_2023


def _offsets_exact(doc):
    """Every section's text is exactly the slice of the document text it claims."""
    for s in doc.sections:
        assert doc.text[s.char_start:s.char_end] == s.text, s


def _section_of(doc, needle: str) -> str:
    hits = [s.section for s in doc.sections if needle in s.text]
    assert len(hits) == 1, (needle, [(s.section, s.text) for s in doc.sections])
    return hits[0]


# --------------------------------------------------------------------------------------------------
# Markdown: front matter


def test_front_matter_all_keys_and_sources_list():
    doc = parse_markdown(TEST_GUILD_2023)
    m = doc.meta
    assert m.title == "Test Guild 2023 Agreement"
    assert m.union == "Test Guild"
    assert m.agreement == "Performers Agreement"
    assert m.year == 2023 and isinstance(m.year, int)
    assert m.status == "current"
    assert m.doc_type == "contract"
    assert m.url == "https://example.org/test-guild-2023"  # source_url -> url
    assert m.sources == ["https://example.org/test-guild-2023", "https://example.org/test-guild-faq"]
    # front matter is not document text
    assert "source_url" not in doc.text and "---" not in doc.text
    assert doc.kind == "markdown" and doc.pages is None


def test_front_matter_aliases_and_note():
    raw = """---
title: "Quoted Title"
type: law
outlet: 'Example Times'
date: 2024-09-17
url: https://example.org/x
note: Some note here.
unknown_key: ignored
---
Body text of the law.
"""
    m = parse_markdown(raw).meta
    assert m.title == "Quoted Title"  # quotes removed
    assert m.doc_type == "law"  # type -> doc_type
    assert m.publisher == "Example Times"  # outlet -> publisher
    assert m.date == "2024-09-17"
    assert m.url == "https://example.org/x"
    assert m.note == "Some note here."
    assert m.year is None  # no year key: not guessed from the date


@pytest.mark.parametrize("block", [
    "sources:\n- https://a.example\n- https://b.example\n",
    "sources: [https://a.example, https://b.example]\n",
])
def test_front_matter_other_yaml_list_forms(block):
    doc = parse_markdown(f"---\ntitle: T\n{block}year: 2024\n---\nBody text.\n")
    assert doc.meta.sources == ["https://a.example", "https://b.example"]
    assert doc.meta.year == 2024


def test_front_matter_single_source_becomes_list():
    m = meta_from_dict({"sources": "https://example.org/only"})
    assert m.sources == ["https://example.org/only"]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("superseded", "superseded"),
        ("Superseded", "superseded"),
        ("SUPERSEDED", "superseded"),
        ("Superseded by the 2026 agreement", "superseded"),
        ("current", "current"),
        ("Current", "current"),
        ("in force", "current"),
    ],
)
def test_status_normalisation(raw, expected):
    assert meta_from_dict({"status": raw}).status == expected


def test_status_defaults_to_current():
    assert meta_from_dict({}).status == "current"
    assert parse_markdown(TEST_GUILD_2020).meta.status == "superseded"


@pytest.mark.parametrize(
    "raw, expected",
    [("2023", 2023), ("2023-10-09", 2023), ("2023-2026", 2023), ("'2024'", 2024), ("circa", None), ("", None)],
)
def test_year_parsing(raw, expected):
    doc = parse_markdown(f"---\ntitle: T\nyear: {raw}\n---\nSome body text.\n")
    assert doc.meta.year == expected


def test_front_matter_crlf_and_bom():
    raw = "\ufeff---\r\ntitle: Windows File\r\nyear: 2022\r\n---\r\n## Part\r\nLine one.\r\n"
    doc = parse_markdown(raw)
    assert doc.meta.title == "Windows File"
    assert doc.meta.year == 2022
    assert doc.text == "Line one."
    assert doc.sections[0].section == "Part"


def test_no_front_matter_returns_body_unchanged():
    data, body = parse_front_matter("# Heading\n\ntext ---\n")
    assert data == {} and body == "# Heading\n\ntext ---\n"


# --------------------------------------------------------------------------------------------------
# Markdown: structure


MD = """# The Document Title

Intro paragraph before any section.

## Article 72 Generative AI

### 72.A Definitions
Generative AI is not a person.
A wrapped line that
continues here.

### 72.B Disclosure
The company must disclose AI material.

## Article 73 Other

- first item
- second **bold** item with a [link](https://example.org)
1. numbered item

```
# a comment, not a heading
print("code")
```

Closing paragraph of Article 73.
"""


def test_markdown_headings_become_section_paths():
    doc = parse_markdown(MD)
    assert doc.meta.title == "The Document Title"  # H1 becomes the title, not a section
    assert _section_of(doc, "Intro paragraph") == ""
    assert _section_of(doc, "not a person") == "Article 72 Generative AI > 72.A Definitions"
    assert _section_of(doc, "disclose AI material") == "Article 72 Generative AI > 72.B Disclosure"
    # a level-2 heading pops the level-3 one
    assert _section_of(doc, "first item") == "Article 73 Other"
    assert "The Document Title" not in doc.text
    _offsets_exact(doc)


def test_markdown_wrapped_lines_join_into_one_paragraph():
    doc = parse_markdown(MD)
    assert "A wrapped line that continues here." in doc.text


def test_markdown_list_items_are_separate_paragraphs_without_markup():
    doc = parse_markdown(MD)
    paras = doc.text.split("\n\n")
    assert "first item" in paras
    assert "second bold item with a link" in paras  # emphasis and link targets stripped
    assert "1. numbered item" in paras  # an ordered item keeps its number: in legal text it is the label
    assert "https://example.org" not in doc.text
    assert "**" not in doc.text


def test_markdown_code_fences_do_not_make_headings():
    doc = parse_markdown(MD)
    assert "```" not in doc.text
    # the '# ...' line inside the fence is not a heading: the section stays "Article 73 Other"
    assert _section_of(doc, "Closing paragraph") == "Article 73 Other"
    assert all("comment" not in s.section for s in doc.sections)


def test_markdown_front_matter_title_beats_h1():
    doc = parse_markdown("---\ntitle: From Front Matter\n---\n# From H1\n\nBody.\n")
    assert doc.meta.title == "From Front Matter"


# --------------------------------------------------------------------------------------------------
# HTML


HTML = """<!doctype html>
<html><head>
<title>Fallback &amp; Title</title>
<meta property="og:title" content="WGA Deal Explained">
<meta property="og:site_name" content="Example News">
<meta property="article:published_time" content="2023-09-27T10:00:00Z">
<meta property="og:url" content="https://news.example.org/wga">
<script>var tracking = "SCRIPT_TEXT";</script>
<style>.x { color: red } /* STYLE_TEXT */</style>
</head><body>
<header><a href="/">HEADER_TEXT</a></header>
<nav><ul><li>NAV_TEXT</li></ul></nav>
<h1>Big headline</h1>
<p>Lead paragraph about the deal.</p>
<h2>Artificial intelligence</h2>
<p>AI is <b>not</b> a writer.</p>
<h3>Training</h3>
<p>The guild reserves its rights.</p>
<h2>Pay</h2>
<p>Minimums rise.</p>
<footer>FOOTER_TEXT &copy; 2023</footer>
<script>console.log("SCRIPT_TWO")</script>
</body></html>
"""


def test_html_meta_tags():
    doc = parse_html(HTML)
    m = doc.meta
    assert m.title == "WGA Deal Explained"  # og:title wins over <title>
    assert m.publisher == "Example News"
    assert m.date == "2023-09-27"
    assert m.year == 2023
    assert m.url == "https://news.example.org/wga"
    assert doc.kind == "html"


def test_html_title_tag_when_no_og_title():
    doc = parse_html("<html><head><title>Only &amp; Title</title></head><body><p>Some text.</p></body></html>")
    assert doc.meta.title == "Only & Title"
    assert doc.meta.year is None


def test_html_boilerplate_stripped():
    doc = parse_html(HTML)
    for junk in ("SCRIPT_TEXT", "SCRIPT_TWO", "STYLE_TEXT", "HEADER_TEXT", "NAV_TEXT", "FOOTER_TEXT", "tracking"):
        assert junk not in doc.text
    assert "Lead paragraph about the deal." in doc.text
    assert "AI is not a writer." in doc.text  # inline tags don't split a paragraph


def test_html_h2_h3_sections():
    doc = parse_html(HTML)
    assert _section_of(doc, "Lead paragraph") == ""
    assert _section_of(doc, "not a writer") == "Artificial intelligence"
    assert _section_of(doc, "reserves its rights") == "Artificial intelligence > Training"
    assert _section_of(doc, "Minimums rise") == "Pay"
    _offsets_exact(doc)


# --------------------------------------------------------------------------------------------------
# Plain text structure (bot/ingest/structure.py)


@pytest.mark.parametrize(
    "line, level, title",
    [
        ("ARTICLE 72", 1, "ARTICLE 72"),
        ("ARTICLE 72 GENERATIVE ARTIFICIAL INTELLIGENCE", 1, "ARTICLE 72 GENERATIVE ARTIFICIAL INTELLIGENCE"),
        ("Article XIV", 1, "Article XIV"),
        ("Sideletter 5", 1, "Sideletter 5"),
        ("SIDE LETTER RE: ARTIFICIAL INTELLIGENCE", 1, "SIDE LETTER RE: ARTIFICIAL INTELLIGENCE"),
        ("Exhibit A", 1, "Exhibit A"),
        ("Section 16.B", 2, "Section 16.B"),
        ("SECTION 7-202 Definitions", 2, "SECTION 7-202 Definitions"),
        ("§ 927 Scope:", 2, "§ 927 Scope"),
        ("72.C. Training", 2, "72.C. Training"),
        ("(a) Consent Requirements", 3, "(a) Consent Requirements"),
    ],
)
def test_classify_heading_lines(line, level, title):
    h = classify_line(line)
    assert h is not None, line
    assert (h.level, h.title) == (level, title)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        "The Company shall notify the Guild of any use of generative AI material in a timely manner.",
        "Section 16.B of the Basic Agreement applies to all literary material written under this MBA.",
        "x" * 130,
    ],
)
def test_body_lines_are_not_headings(line):
    assert classify_line(line) is None


def test_section_tracker_nesting():
    t = SectionTracker()
    t.see(classify_line("ARTICLE 72"))
    t.see(classify_line("Section 72.A Definitions"))
    assert t.path() == "ARTICLE 72 > Section 72.A Definitions"
    t.see(classify_line("Section 72.B Disclosure"))
    assert t.path() == "ARTICLE 72 > Section 72.B Disclosure"
    t.see(classify_line("Sideletter 5"))
    assert t.path() == "Sideletter 5"


def test_plain_text_sections():
    raw = (
        "Preamble text before the articles.\n\n"
        "ARTICLE 72 GENERATIVE ARTIFICIAL INTELLIGENCE\n"
        "Section 72.B Disclosure\n"
        "The Company shall disclose any GAI material\nto the writer.\n\n"
        "Section 16.B\n"
        "Separated rights are kept.\n\n"
        "Sideletter 5\n"
        "Side letter text.\n"
    )
    doc = parse_text(raw)
    assert doc.kind == "text"
    assert _section_of(doc, "Preamble") == ""
    assert _section_of(doc, "disclose any GAI") == "ARTICLE 72 GENERATIVE ARTIFICIAL INTELLIGENCE > Section 72.B Disclosure"
    assert "The Company shall disclose any GAI material to the writer." in doc.text
    assert _section_of(doc, "Separated rights") == "ARTICLE 72 GENERATIVE ARTIFICIAL INTELLIGENCE > Section 16.B"
    assert _section_of(doc, "Side letter text") == "Sideletter 5"
    _offsets_exact(doc)


def test_wrapped_body_line_starting_with_article_keeps_its_text():
    raw = ("The Company shall comply with the terms set out in\n"
           "Article 72 of this Agreement and the writer may\n"
           "request a meeting with the Company.\n")
    doc = parse_text(raw)
    assert "Article 72 of this Agreement and the writer may" in doc.text
    assert {s.section for s in doc.sections} == {""}


def test_wrapped_body_line_starting_with_section_keeps_its_text():
    pages = ["Writers may consult under\nSection 16.B of the MBA on separated rights and\nthe credits process."]
    doc = pdf_pages_to_document(pages)
    assert "Section 16.B of the MBA on separated rights and" in doc.text


# --------------------------------------------------------------------------------------------------
# PDF pages -> document


def test_pdf_pages_keep_exact_page_numbers():
    pages = [
        "ARTICLE 72 GENERATIVE AI\nIntro on page one.",
        "Continues on page two.",
        "",  # a page without text keeps its number (page 4 stays page 4)
        "Section 72.B Disclosure\nPage four text.",
        "ARTICLE 73\nPage five text\nwrapped here.",
    ]
    doc = pdf_pages_to_document(pages, {"title": "The PDF Title"})
    assert doc.kind == "pdf"
    assert doc.pages == 5
    assert doc.meta.title == "The PDF Title"
    got = [(s.section, s.page_start, s.page_end, s.text) for s in doc.sections]
    assert got == [
        ("ARTICLE 72 GENERATIVE AI", 1, 1, "Intro on page one."),
        ("ARTICLE 72 GENERATIVE AI", 2, 2, "Continues on page two."),
        ("ARTICLE 72 GENERATIVE AI > Section 72.B Disclosure", 4, 4, "Page four text."),
        ("ARTICLE 73", 5, 5, "Page five text wrapped here."),
    ]
    _offsets_exact(doc)


def test_pdf_short_metadata_title_ignored():
    doc = pdf_pages_to_document(["Some text."], {"title": "x"})
    assert doc.meta.title == ""


def test_pdf_file_pages_through_extractor(tmp_path):
    """The real extractor (tests/pdfgen.py) + pdf_pages_to_document: page N's marker lands on page N."""
    pdfgen = pytest.importorskip("pdfgen")
    path = tmp_path / "contract.pdf"
    path.write_bytes(pdfgen.contract_pdf(5))
    doc = parse_file(path, Limits())
    assert doc.kind == "pdf" and doc.pages == 5
    for page in range(1, 6):
        marker = f"marker-page-{page}"
        owners = [s for s in doc.sections if marker in s.text]
        assert owners, (marker, doc.text)
        assert all(s.page_start == s.page_end == page for s in owners), (marker, owners)
    article = [s for s in doc.sections if "marker-page-3" in s.text][0]
    assert article.section.startswith("ARTICLE 72")
    _offsets_exact(doc)


# --------------------------------------------------------------------------------------------------
# parse_file: typed by content, refusals


def test_parse_file_sniffs_content_not_name(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("<!doctype html><html><head><title>Real HTML</title></head><body><p>Hello there.</p></body></html>")
    doc = parse_file(p, Limits())
    assert doc.kind == "html"
    assert doc.meta.title == "Real HTML"


def test_parse_file_title_from_filename_when_missing(tmp_path):
    p = tmp_path / "my_great-doc.txt"
    p.write_text("Just some body text without any title.\n")
    assert parse_file(p, Limits()).meta.title == "My Great Doc"


def test_parse_file_meta_override_wins(tmp_path):
    p = tmp_path / "doc.md"
    p.write_text(TEST_GUILD_2023)
    doc = parse_file(p, Limits(), {"title": "Override", "year": "2021", "union": ""})
    assert doc.meta.title == "Override"
    assert doc.meta.year == 2021
    assert doc.meta.union == "Test Guild"  # empty override values don't erase


@pytest.mark.parametrize(
    "content, code",
    [
        (b"", "empty"),
        (b"---\ntitle: Only front matter\n---\n", "empty"),
        (b"\n\n   \n", "empty"),
    ],
)
def test_parse_file_refuses_empty(tmp_path, content, code):
    p = tmp_path / "empty.md"
    p.write_bytes(content)
    with pytest.raises(RefusedError) as exc:
        parse_file(p, Limits())
    assert exc.value.reason == code
    assert exc.value.message.strip()


def test_parse_file_refuses_too_large(tmp_path):
    p = tmp_path / "big.txt"
    p.write_text("word " * 1000)
    with pytest.raises(RefusedError) as exc:
        parse_file(p, Limits(max_bytes=100))
    assert exc.value.reason == "too_large"
    assert "big.txt" in exc.value.message
