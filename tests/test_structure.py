"""Legal structure in plain lines (PDF, text, Markdown bodies): section labels, numbered paragraphs,
clauses, definitions, bill headers, titles, and the clause-aware chunks built on them."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bot.chunking import chunk_document, span_section
from bot.ingest.parse import (
    Limits,
    is_real_pdf_title,
    parse_file,
    parse_markdown,
    parse_text,
    pdf_pages_to_document,
)
from bot.textsplit import sentence_spans, split_sentences


def word_count(texts):
    return [len(t.split()) for t in texts]


def _section_of(doc, needle: str) -> str:
    hits = [s.section for s in doc.sections if needle in s.text]
    assert len(hits) == 1, (needle, [(s.section, s.text[:40]) for s in doc.sections])
    return hits[0]


def _offsets_exact(doc):
    for s in doc.sections:
        assert doc.text[s.char_start:s.char_end] == s.text


# --------------------------------------------------------------------------------------------------
# Outline from printed lines (one line per printed line, as pypdf gives them)

BILL_PAGE_1 = """\
An act relating to digital likeness
Bill ID: AB123
Session: 2025
Sponsor: Jane Roe
Status: In committee
Introduced by Sen. ROE -- read twice and ordered printed, and when
printed to be committed to the Committee on Labor
AN ACT to amend the labor law, in relation to digital replicas
Section 1. Section 12-c of the labor law is amended to read as follows:
§ 12-c. Digital replicas. 1. (A) FOR THE PURPOSES OF THIS SECTION,
"DIGITAL REPLICA" MEANS A COMPUTER-GENERATED COPY OF A PERFORMER,
INCLUDING, BUT NOT LIMITED TO:
(I) A VOICE MODEL; OR
(II) A LIKENESS MODEL THAT IS USED IN
A MOTION PICTURE.
(B) "EMPLOYER" MEANS ANY PERSON WHO ENGAGES A PERFORMER.
2. An employer shall not create a digital replica of a performer without
consent, except as provided in subdivision three of this section or in
paragraph (a) of subdivision one.
"""
BILL_PAGE_2 = """\
3. The consent shall be in writing and shall describe the intended uses
of the replica.
§ 2. Severability clause. If any clause of this act is held invalid,
the remainder shall not be affected.
§ 3. This act shall take effect immediately.
"""


@pytest.fixture(scope="module")
def bill():
    return pdf_pages_to_document([BILL_PAGE_1, BILL_PAGE_2])


def test_section_sign_label_with_title_and_inline_labels(bill):
    assert _section_of(bill, "FOR THE PURPOSES") == '§ 12-c. Digital replicas > 1 > (a) "DIGITAL REPLICA"'
    # the label line is text too: the unit starts with its labels
    assert '§ 12-c. Digital replicas. 1. (A) FOR THE PURPOSES OF THIS SECTION, "DIGITAL REPLICA" MEANS' in bill.text


def test_upper_case_insertions_keep_clause_levels(bill):
    assert _section_of(bill, "A VOICE MODEL") == '§ 12-c. Digital replicas > 1 > (a) "DIGITAL REPLICA" > (i)'
    # a wrapped line stays in its clause; "A MOTION PICTURE." does not open clause "A"
    assert _section_of(bill, "A LIKENESS MODEL THAT IS USED IN A MOTION PICTURE.") == \
        '§ 12-c. Digital replicas > 1 > (a) "DIGITAL REPLICA" > (ii)'
    assert _section_of(bill, "ENGAGES A PERFORMER") == '§ 12-c. Digital replicas > 1 > (b) "EMPLOYER"'


def test_reference_at_line_start_is_not_a_clause(bill):
    # "paragraph (a) of subdivision one." wraps onto a new line: still subdivision 2
    assert _section_of(bill, "create a digital replica") == "§ 12-c. Digital replicas > 2"
    assert "in subdivision three of this section or in paragraph (a) of subdivision one." in bill.text


def test_numbered_paragraph_continues_on_the_next_page(bill):
    sec = [s for s in bill.sections if "consent shall be in writing" in s.text][0]
    assert (sec.section, sec.page_start) == ("§ 12-c. Digital replicas > 3", 2)
    assert sec.parent_section == "§ 12-c. Digital replicas"


def test_sections_of_the_act(bill):
    assert _section_of(bill, "is amended to read as follows") == "Section 1"
    assert _section_of(bill, "remainder shall not be affected") == "§ 2. Severability clause"
    # "This act shall take effect immediately." is a sentence, not a title
    assert _section_of(bill, "take effect immediately") == "§ 3"
    _offsets_exact(bill)


def test_bill_header_lines_are_their_own_unit_and_not_the_title(bill):
    header = [s for s in bill.sections if "Bill ID: AB123" in s.text]
    assert len(header) == 1 and header[0].section == "Bill information"
    assert "Status: In committee" in header[0].text
    assert "Section 1" not in header[0].text and "FOR THE PURPOSES" not in header[0].text
    assert _section_of(bill, "Introduced by Sen. ROE") == "Bill information"
    assert bill.meta.title == "An act relating to digital likeness"


SOURCE_NOTE_PAGE = """\
State Act 12 (2024): disclaimers on election ads made with artificial intelligence
Source: State Legislature, Enrolled House Bill No. 12 (regular session of 2024), Public Act 9,
approved November 30, 2024, effective February 13, 2025 (public act page https://example.org/act-9.htm),
as saved in a public repository, a text extraction of the act that is one run of text. Full text of
the act: the new section 59 (statement on political advertisements, civil fines, exemptions).
Bill ID: HB12
Sec. 59. (1) A political advertisement generated by artificial intelligence must state that it was
generated in whole or substantially by artificial intelligence.
"""


def test_a_wrapped_source_note_is_one_block_and_is_not_a_passage():
    doc = pdf_pages_to_document([SOURCE_NOTE_PAGE])
    note = [s for s in doc.sections if "Source:" in s.text]
    # the whole printed paragraph, not its first line with the rest as body text
    assert len(note) == 1 and note[0].section == "Source"
    assert note[0].text.endswith("civil fines, exemptions).")
    assert not [s for s in doc.sections if s.section != "Source" and "approved November 30" in s.text]
    assert _section_of(doc, "Bill ID: HB12") == "Bill information"
    assert _section_of(doc, "must state that it was") == "Sec. 59 > (1)"
    _offsets_exact(doc)
    chunks = chunk_document(doc, "act", word_count)
    assert chunks and not [c for c in chunks if "approved November 30" in c.text or "Source:" in c.text]
    assert any("must state that it was" in c.text for c in chunks)
    # a short header line stays one line: the next printed line is not swallowed
    short = pdf_pages_to_document(["Source: State Legislature\nSec. 1. (1) A person shall not do this.\n"])
    assert _section_of(short, "Source: State Legislature") == "Source"
    assert _section_of(short, "A person shall not") != "Source"


def test_definitions_and_lettered_subparagraphs_in_plain_text():
    raw = (
        "Section 2\n"
        "Unless the context clearly requires otherwise, the definitions in this section apply.\n"
        '1. "Deceased individual" means any individual who has died.\n'
        '2. "Forged digital likeness" means a visual representation of an individual, which:\n'
        "a. Has been digitally created; and\n"
        "b. Misrepresents the conduct of the individual.\n"
        '3. "Name" means the actual name of an individual.\n'
    )
    doc = parse_text(raw)
    assert _section_of(doc, "the definitions in this section apply") == "Section 2"
    assert _section_of(doc, "has died") == 'Section 2 > 1. "Deceased individual"'
    assert _section_of(doc, "digitally created") == 'Section 2 > 2. "Forged digital likeness" > a'
    assert _section_of(doc, "Misrepresents") == 'Section 2 > 2. "Forged digital likeness" > b'
    assert _section_of(doc, "actual name") == 'Section 2 > 3. "Name"'
    assert {s.parent_section for s in doc.sections} == {"Section 2"}


@pytest.mark.parametrize(
    "lines, needle, expected",
    [
        # (i) after (h) is the letter i, not roman one
        (["SEC. 4. Rules.", "(g) First rule applies.", "(h) Second rule applies.", "(i) Third rule applies."],
         "Third rule", "SEC. 4. Rules > (i)"),
        # (i) under (a) is roman one; (b) closes it
        (["SEC. 4. Rules.", "(a) The term includes:", "(i) one thing;", "(ii) another thing.", "(b) Other rule."],
         "another thing", "SEC. 4. Rules > (a) > (ii)"),
        (["SEC. 4. Rules.", "(a) The term includes:", "(i) one thing;", "(ii) another thing.", "(b) Other rule."],
         "Other rule", "SEC. 4. Rules > (b)"),
        # "(b)(1)" opens both levels
        (["Sec. 5. Remedies.", "(a) A court may act.", "(b)(1) Damages may be awarded."],
         "Damages", "Sec. 5. Remedies > (b) > (1)"),
        # a wrapped line beginning with a number is not a numbered paragraph
        (["Article 9", "1. The employer shall pay the performer within", "30 days of the session."],
         "30 days of the session", "Article 9 > 1"),
        (["ARTICLE 72 GENERATIVE AI", "Section 72.B Disclosure", "(a) The Company shall disclose.", "(b) The writer may ask."],
         "writer may ask", "ARTICLE 72 GENERATIVE AI > Section 72.B Disclosure > (b)"),
    ],
)
def test_clause_levels(lines, needle, expected):
    doc = parse_text("\n".join(lines) + "\n")
    assert _section_of(doc, needle) == expected


def test_cross_reference_lines_do_not_open_sections():
    doc = pdf_pages_to_document(["Writers may consult under\nSection 16.B of the MBA on separated rights and\n"
                                 "the credits process, as described in subsection\n(a) of this section."])
    assert {s.section for s in doc.sections} == {""}


def test_markdown_body_labels_under_headings():
    raw = ("# A law\n\n## Section 4\n1. The courts may grant injunctions.\n\n"
           "2. Any person who infringes is liable.\n\nA second paragraph of 2.\n\n## Section 5\nOther text.\n")
    doc = parse_markdown(raw)
    assert _section_of(doc, "injunctions") == "Section 4 > 1"
    assert _section_of(doc, "second paragraph of 2") == "Section 4 > 2"
    assert _section_of(doc, "Other text") == "Section 5"
    assert doc.meta.title == "A law"


def test_markdown_wrapper_heading_is_dropped_under_real_sections():
    raw = "# T\n\n## Full Text\n\nPreamble words.\n\n§ 5-302. Scope. This section applies to all.\n"
    doc = parse_markdown(raw)
    assert _section_of(doc, "Preamble words") == "Full Text"
    assert _section_of(doc, "applies to all") == "§ 5-302. Scope"


# --------------------------------------------------------------------------------------------------
# Titles


@pytest.mark.parametrize("title", ["Microsoft Word - draft_v3.docx", "untitled", "Untitled document",
                                   "contract_final.pdf", "C:\\Users\\x\\bill.doc", "Document1", "Metadata", "ab"])
def test_placeholder_pdf_titles_are_not_titles(title):
    assert not is_real_pdf_title(title)
    doc = pdf_pages_to_document(["Digital Replica Rules for Performers\nSome text follows here."], {"title": title})
    assert doc.meta.title == "Digital Replica Rules for Performers"


def test_real_pdf_title_wins_over_the_first_line():
    doc = pdf_pages_to_document(["Some first line here\nMore."], {"title": "Performers Agreement 2024"})
    assert doc.meta.title == "Performers Agreement 2024"


def test_title_skips_breadcrumbs_generic_headings_labels_and_page_numbers():
    doc = pdf_pages_to_document(["example.org > bills > 2025\nSummary\nPage 1\nSection 1\nThe Personality Rights Act\n"
                                 "Body text starts here."])
    assert doc.meta.title == "The Personality Rights Act"


def test_markdown_generic_h1_is_not_the_title():
    doc = parse_markdown("# Metadata\n\nBill ID: 1\n\n## Performer Consent Act\n\nText.\n")
    assert doc.meta.title == "Performer Consent Act"


def test_upload_title_wins(tmp_path):
    p = tmp_path / "bill.txt"
    p.write_text("Some Heading Of The Bill\nSection 1. Scope. This applies.\n")
    assert parse_file(p, Limits()).meta.title == "Some Heading Of The Bill"
    assert parse_file(p, Limits(), {"title": "Organizer's Title"}).meta.title == "Organizer's Title"


# --------------------------------------------------------------------------------------------------
# Clause-aware chunks


def _check(doc, chunks):
    for c in chunks:
        assert doc.text[c.char_start:c.char_end] == c.text
        assert c.parent_start <= c.char_start < c.char_end <= c.parent_end


def test_chunks_hold_whole_clauses_and_start_with_their_label(bill):
    chunks = chunk_document(bill, "b", word_count, 40, 10)
    _check(bill, chunks)
    by_text = {c.text.split()[0] + " " + c.text.split()[1]: c for c in chunks}
    first = [c for c in chunks if c.text.startswith("§ 12-c. Digital replicas. 1. (A)")]
    assert first and first[0].section.startswith("§ 12-c. Digital replicas > 1 > (a)")
    assert first[0].parent_section == "§ 12-c. Digital replicas"
    parent = [s for s in bill.sections if s.parent_section == "§ 12-c. Digital replicas"]
    assert (first[0].parent_start, first[0].parent_end) == (parent[0].char_start, parent[-1].char_end)
    assert any(t.startswith("3. The") for t in by_text)
    # every chunk of the section starts at a clause label (none of these clauses is over budget)
    for c in chunks:
        if c.parent_section == "§ 12-c. Digital replicas":
            assert re.match(r"(?:§ 12-c\.|\(\w+\)|\d+\.)", c.text), c.text
    # chunks never mix two enclosing sections
    assert all("Severability" not in c.text for c in chunks if c.parent_section != "§ 2. Severability clause")


def test_small_sibling_clauses_share_a_chunk_with_a_label_range():
    raw = "Section 4\n" + "".join(f"{n}. Rule number {n} is short.\n" for n in range(1, 7))
    doc = parse_text(raw)
    chunks = chunk_document(doc, "d", word_count, 12, 0)
    assert [(c.section, c.text[:2]) for c in chunks] == [("Section 4 > 1\u20132", "1."), ("Section 4 > 3\u20134", "3."),
                                                         ("Section 4 > 5\u20136", "5.")]
    assert all(c.parent_section == "Section 4" for c in chunks)


def test_long_clause_is_split_at_sentences_and_keeps_its_path():
    sentences = " ".join(f"Sentence {i} of the long clause ends here." for i in range(12))
    raw = f"Section 9\n(a) Short first clause.\n(b) {sentences}\n(c) Short last clause.\n"
    doc = parse_text(raw)
    chunks = chunk_document(doc, "d", word_count, 30, 8)
    _check(doc, chunks)
    long = [c for c in chunks if c.section == "Section 9 > (b)"]
    assert len(long) >= 3
    assert long[0].text.startswith("(b) Sentence 0")
    for c in long:
        assert c.text.endswith("ends here.") and word_count([c.text])[0] <= 30
    # the clause after it starts its own chunk, at its label
    assert [c.text for c in chunks if c.section.endswith("(c)")] == ["(c) Short last clause."]


def test_items_run_on_in_one_paragraph_are_cut_between_items_and_named_by_them():
    items = "; ".join(f"({n}) \u2018term {n}\u2019 means a thing that is described here at some length, in words" for n in
                      (1, 3, 4, 9, 11, 39, 40, 60))
    raw = f"Article 3\nDefinitions\n(1) For the purposes of this Regulation: {items[4:]}.\n"
    doc = parse_text(raw)
    chunks = [c for c in chunk_document(doc, "d", word_count, 60, 0) if "means" in c.text]
    _check(doc, chunks)
    assert len(chunks) >= 3
    for c in chunks[1:]:
        assert re.match(r"\(\d+\) \u2018term", c.text), c.text  # a piece starts at an item, with its label
        first = re.match(r"\((\d+)\)", c.text).group(0)
        last = re.findall(r"(?:^|; )(\(\d+\)) \u2018", c.text)[-1]
        assert c.section.endswith(first if first == last else f"{first}\u2013{last}"), (c.section, c.text[:40])
    assert chunks[-1].text.endswith("in words.")


def test_span_section_names():
    assert span_section(["A > 1", "A > 1"]) == "A > 1"
    assert span_section(["Section 2", 'Section 2 > 1. "Name"']) == "Section 2"
    assert span_section(['Section 2 > 4. "Fund-raising"', 'Section 2 > 7. "Name"']) == "Section 2 > 4\u20137"
    assert span_section(["S > 1 > (a) > (iv)", "S > 1 > (b)"]) == "S > 1 > (a)(iv)\u2013(b)"


# --------------------------------------------------------------------------------------------------
# Sentences


def test_legal_abbreviations_do_not_end_sentences():
    text = ("Under Sec. 3 of 15 U.S.C. § 1125 et seq. the court held. See Smith et al. v. Jones, No. 22-1234. "
            "As provided in subd. 2 and para. (a) of this section. 1. Providers shall ensure it. "
            "SEC. 2. Definitions apply here.")
    assert split_sentences(text) == [
        "Under Sec. 3 of 15 U.S.C. § 1125 et seq. the court held.",
        "See Smith et al. v. Jones, No. 22-1234.",
        "As provided in subd. 2 and para. (a) of this section.",
        "1. Providers shall ensure it.",
        "SEC. 2. Definitions apply here.",
    ]
    for s, e in sentence_spans(text):
        assert text[s:e] == text[s:e].strip()


# --------------------------------------------------------------------------------------------------
# Real legal texts, uploaded as PDFs


def _realdocs() -> Path:
    shared = os.environ.get("SHARED_DIR")
    base = Path(shared) if shared else Path(__file__).resolve().parents[1].parent / "shared"
    return base / "realdocs"


def _real_pdf(tmp_path_factory, prefix):
    pytest.importorskip("fpdf")
    from bot.evaluation.topdf import file_to_pdf

    found = sorted(_realdocs().glob(f"{prefix}*.md"))
    if not found:
        pytest.skip(f"no {prefix}* text in {_realdocs()}")
    out = tmp_path_factory.mktemp("realpdf")
    pdf = file_to_pdf(found[0], out)
    doc = parse_file(pdf, Limits())
    from bot.ingest.pdf import extract_pdf

    pages = extract_pdf(pdf, max_bytes=10 ** 8, max_pages=50, timeout_s=60, memory_mb=1024).pages
    return doc, pages


def _norm(t):
    return re.sub(r"\s+", " ", t).strip()


def _assert_verbatim_on_pages(doc, pages):
    chunks = chunk_document(doc, "r", word_count, 120, 30)
    assert chunks
    for c in chunks:
        named = " ".join(_norm(pages[n - 1]) for n in range(c.page_start, c.page_end + 1))
        for s, e in sentence_spans(c.text)[:3]:
            assert _norm(c.text[s:e]) in named, (c.page_start, c.text[s:e])
        first = _norm(c.text[:60])
        assert first in _norm(pages[c.page_start - 1]), (c.page_start, first)
    return chunks


@pytest.fixture(scope="module")
def ny(tmp_path_factory):
    return _real_pdf(tmp_path_factory, "NY_")


@pytest.fixture(scope="module")
def wa(tmp_path_factory):
    return _real_pdf(tmp_path_factory, "WA_")


@pytest.fixture(scope="module")
def eu(tmp_path_factory):
    return _real_pdf(tmp_path_factory, "EU_")


def _where(doc, needle):
    hits = [(s.section, s.page_start) for s in doc.sections if needle in s.text]
    assert hits, needle
    return hits[0]


def test_real_ny_bill(ny):
    doc, pages = ny
    assert doc.meta.title.startswith("Relates to requiring advertisements")
    assert _where(doc, "Bill ID: S6859AA") == ("Bill information", 1)
    assert _where(doc, '"SYNTHETIC PERFORMER" MEANS') == ('§ 396-b. Advertisements > 1 > (b) "SYNTHETIC PERFORMER"', 2)
    assert _where(doc, "(IV) A SET OF TECHNIQUES")[0] == \
        '§ 396-b. Advertisements > 1 > (a) "GENERATIVE ARTIFICIAL INTELLIGENCE" > (iv)'
    assert _where(doc, "SHALL DISCLOSE IN")[0] == "§ 396-b. Advertisements > 3"
    assert _where(doc, "Severability clause. If any clause")[0] == "§ 2. Severability clause"
    chunks = _assert_verbatim_on_pages(doc, pages)
    three = [c for c in chunks if c.text.startswith("3. ANY PERSON")]
    assert three and three[0].section.startswith("§ 396-b. Advertisements > 3")
    assert three[0].parent_section == "§ 396-b. Advertisements"
    assert not any("Bill ID" in c.text and "(A)" in c.text for c in chunks)


def test_real_wa_session_law(wa):
    doc, pages = wa
    assert doc.meta.title == "SB 5886 - Personality rights"
    assert _where(doc, "Has been digitally created") == ('Section 2 > 3. "Forged digital likeness" > a', 1)
    assert _where(doc, '"Fund-raising" means')[0] == 'Section 2 > 4. "Fund-raising"'
    assert _where(doc, "The prevailing party may recover") == ("Section 4 > 5", 3)
    chunks = _assert_verbatim_on_pages(doc, pages)
    defn = [c for c in chunks if c.text.startswith('3. "Forged digital likeness" means')]
    assert defn and defn[0].parent_section == "Section 2" and defn[0].page_start == 1


def test_real_eu_article_and_recitals(eu):
    doc, pages = eu
    assert doc.meta.title.startswith("Article 50")
    assert _where(doc, "4. Deployers of an AI system that generates or manipulates image") == ("Article 50 > 4", 1)
    # the unlabelled second subparagraph of paragraph 4 stays in paragraph 4
    assert _where(doc, "Deployers of an AI system that generates or manipulates text")[0] == "Article 50 > 4"
    assert _where(doc, "The AI Office shall encourage") == ("Article 50 > 7", 2)
    sec, page = _where(doc, "(134) Further to the technical solutions")
    assert sec.startswith("Recitals 132") and sec.endswith("> (134)") and page == 3
    _assert_verbatim_on_pages(doc, pages)


def test_a_wrapped_body_line_is_not_a_title():
    page = ("Lorem ipsum dolor sit amet, consetetur sadipscing elitr, sed diam nonumy eirmod tempor\n"
            "invidunt ut labore et dolore magna aliquyam erat, sed diam voluptua. At vero eos et\n")
    assert pdf_pages_to_document([page]).meta.title == ""  # parse_file then falls back to the file name


def test_a_long_title_wrapped_onto_a_second_line_is_the_whole_title():
    page = ("Assembly Bill No. 2839, Chapter 262 (California, 2023-2024) — Elections: deceptive media in\n"
            "advertisements (adds Section 20012 to the Elections Code)\n\n"
            "SEC. 3. Section 20012 is added to the Elections Code, to read:\n"
            "(a) The Legislature finds and declares as follows.\n")
    assert pdf_pages_to_document([page]).meta.title == (
        "Assembly Bill No. 2839, Chapter 262 (California, 2023-2024) — Elections: deceptive media in "
        "advertisements (adds Section 20012 to the Elections Code)")


def test_a_title_with_commas_in_its_parentheses_is_still_a_title():
    page = ("SB 5152 - Synthetic media (Washington State Legislature, 2023-24, Passed Legislature)\n\n"
            "Section 1. The definitions used in chapter 42.17A RCW apply throughout this chapter.\n")
    assert pdf_pages_to_document([page]).meta.title == (
        "SB 5152 - Synthetic media (Washington State Legislature, 2023-24, Passed Legislature)")


def test_a_title_wrapped_over_three_lines_is_whole_and_its_tail_is_never_the_title():
    page = ("California AI Transparency Act — Business and Professions Code, Division 8, Chapter 25 (Sections 22757 to\n"
            "22757.6, added by SB 942, Chapter 291, Statutes of 2024), and Assembly Bill No. 853, Chapter 674 (2025),\n"
            "amending it\n\n"
            "Source: example.org/saved-copy\n\n"
            "BUSINESS AND PROFESSIONS CODE - BPC\n\n"
            "22757. This chapter is known as the AI Transparency Act.\n")
    title = pdf_pages_to_document([page]).meta.title
    assert title.startswith("California AI Transparency Act") and title.endswith("Chapter 674 (2025), amending it")
