"""bot.chunking: sentence splitting, token limits, whole-sentence overlap, sections, offsets and pages."""
from __future__ import annotations

import random
import re

import pytest

from bot.chunking import chunk_document, split_sentences
from bot.embedding import HashEmbedder
from bot.ingest.parse import parse_markdown, pdf_pages_to_document


def _sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def word_count(texts):
    """An exactly additive token counter (one token per whitespace-separated word)."""
    return [len(t.split()) for t in texts]


# --------------------------------------------------------------------------------------------------
# Sentence splitting


def test_abbreviations_do_not_end_sentences():
    text = ("See Art. 16.B of the MBA for details. The U.S. Congress may act, e.g. the NO FAKES Act applies. "
            "Mr. Smith filed No. 446 on Jan. 5. It ended! Did it? Yes.")
    assert _sentences(text) == [
        "See Art. 16.B of the MBA for details.",
        "The U.S. Congress may act, e.g. the NO FAKES Act applies.",
        "Mr. Smith filed No. 446 on Jan. 5.",
        "It ended!",
        "Did it?",
        "Yes.",
    ]


@pytest.mark.parametrize("fragment", ["Art. 16.B", "U.S.", "e.g.", "Sec. 72.A", "i.e.", "H.R. 9551"])
def test_fragments_stay_inside_one_sentence(fragment):
    text = f"The first sentence mentions {fragment} in the middle of it. A Second sentence follows."
    sents = _sentences(text)
    assert len(sents) == 2, sents
    assert fragment in sents[0]


def test_closing_quotes_and_brackets_stay_with_their_sentence():
    text = 'He said "Stop." Then (they left.) Next one.'
    assert _sentences(text) == ['He said "Stop."', "Then (they left.)", "Next one."]


def test_paragraph_breaks_split_and_spans_are_trimmed():
    text = "  First para has no period\n\nSecond paragraph. 2024 was the year.  "
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["First para has no period", "Second paragraph.", "2024 was the year."]
    for s, e in spans:
        assert text[s:e] == text[s:e].strip()


def test_empty_text_has_no_sentences():
    assert split_sentences("") == []
    assert split_sentences("   \n\n ") == []


# --------------------------------------------------------------------------------------------------
# Chunking a Markdown document


def _random_markdown(seed: int = 7) -> str:
    rng = random.Random(seed)
    vocab = ("producer performer consent replica scan notice hours pay union contract article section "
             "training writer disclosure company guild material").split()

    def sentence(n):
        return " ".join(rng.choice(vocab) for _ in range(n)).capitalize() + "."

    def para():
        return " ".join(sentence(rng.randint(1, 22)) for _ in range(rng.randint(2, 10)))

    parts = ["# Title", ""]
    for s in range(4):
        parts += [f"## Section {s}", ""]
        for _ in range(rng.randint(1, 3)):
            parts += [para(), ""]
        if s == 2:
            # one monster sentence, longer than any chunk
            parts += [" ".join(rng.choice(vocab) for _ in range(400)) + ".", ""]
    parts += ["## Tiny", "", "Short.", ""]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def doc():
    return parse_markdown(_random_markdown())


_NOT_INDEXED = re.compile(r"(?:^|> )(?:Sources|References|Source list)$", re.I)


def _check_invariants(doc, chunks, doc_id="doc-1"):
    assert chunks, "no chunks"
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.doc_id == doc_id
        # offsets slice the document text exactly
        assert doc.text[c.char_start:c.char_end] == c.text
        assert c.text == c.text.strip() and c.text
        # a chunk never crosses an enclosing section; several sections in one chunk are sibling clauses
        overlapped = [s for s in doc.sections if s.char_start < c.char_end and c.char_start < s.char_end]
        assert overlapped
        assert {s.parent_section or s.section for s in overlapped} == {c.parent_section or c.section}
        if len({s.section for s in overlapped}) == 1:
            assert overlapped[0].section == c.section
        assert c.parent_start <= c.char_start < c.char_end <= c.parent_end
    # all document text is covered by some chunk (nothing dropped)
    covered = bytearray(len(doc.text))
    for c in chunks:
        covered[c.char_start:c.char_end] = b"\x01" * (c.char_end - c.char_start)
    for s in doc.sections:
        if _NOT_INDEXED.search(s.section):  # source lists are deliberately not indexed
            continue
        for i in range(s.char_start, s.char_end):
            if not doc.text[i].isspace():
                assert covered[i], (s.section, doc.text[max(0, i - 30):i + 30])


@pytest.mark.parametrize("max_tokens, overlap", [(32, 8), (60, 20), (180, 40)])
def test_chunks_within_limit_with_additive_counter(doc, max_tokens, overlap):
    chunks = chunk_document(doc, "doc-1", word_count, max_tokens, overlap)
    _check_invariants(doc, chunks)
    for c in chunks:
        assert word_count([c.text])[0] <= max_tokens, c.text


@pytest.mark.parametrize("max_tokens, overlap", [(32, 8), (180, 40)])
def test_chunks_within_limit_hash_embedder(doc, max_tokens, overlap):
    """With HashEmbedder.count_tokens the limit holds per chunk as the chunker counts it (sum of its
    sentences' counts; the fake's own rounding makes whole-text counts not exactly additive)."""
    count = HashEmbedder().count_tokens
    chunks = chunk_document(doc, "doc-1", count, max_tokens, overlap)
    _check_invariants(doc, chunks)
    for c in chunks:
        assert sum(count(_sentences(c.text))) <= max_tokens, c.text


def test_overlap_is_whole_sentences_and_bounded(doc):
    max_tokens, overlap = 60, 20
    chunks = chunk_document(doc, "doc-1", word_count, max_tokens, overlap)
    sentence_starts = set()
    sentence_ends = set()
    for s in doc.sections:
        for a, b in split_sentences(s.text):
            sentence_starts.add(s.char_start + a)
            sentence_ends.add(s.char_start + b)
    overlaps = 0
    for prev, nxt in zip(chunks, chunks[1:]):
        if prev.section != nxt.section:
            continue
        assert nxt.char_start > prev.char_start  # always progresses
        if nxt.char_start < prev.char_end:
            overlaps += 1
            shared = doc.text[nxt.char_start:prev.char_end]
            assert word_count([shared])[0] <= overlap, shared
            # the overlap starts and ends on sentence boundaries (unless a monster sentence was cut)
            if nxt.char_start in sentence_starts:
                assert prev.char_end in sentence_ends
    assert overlaps > 0, "expected some overlapping chunks"


def test_zero_overlap_means_disjoint_chunks(doc):
    chunks = chunk_document(doc, "doc-1", word_count, 40, 0)
    _check_invariants(doc, chunks)
    for prev, nxt in zip(chunks, chunks[1:]):
        assert nxt.char_start >= prev.char_end


def test_long_sentence_is_split_at_word_boundaries(doc):
    chunks = chunk_document(doc, "doc-1", word_count, 50, 10)
    monster = [c for c in chunks if c.section == "Section 2" and len(c.text.split()) >= 40]
    assert monster
    for c in chunks:
        assert word_count([c.text])[0] <= 50
        # never cut inside a word
        assert c.char_start == 0 or doc.text[c.char_start - 1].isspace()
        assert c.char_end == len(doc.text) or not doc.text[c.char_end].isalnum()


def test_chunks_never_cross_documents():
    a = parse_markdown("## Same\nAlpha one. Alpha two.\n")
    b = parse_markdown("## Same\nBeta one. Beta two.\n")
    ca = chunk_document(a, "a", word_count, 32, 4)
    cb = chunk_document(b, "b", word_count, 32, 4)
    assert all(c.doc_id == "a" and "Beta" not in c.text for c in ca)
    assert all(c.doc_id == "b" and "Alpha" not in c.text for c in cb)


def test_short_sections_are_not_merged_across_paths():
    doc = parse_markdown("## One\nFirst bit.\n\n## Two\nSecond bit.\n\n## One\nThird bit.\n")
    chunks = chunk_document(doc, "d", word_count, 180, 40)
    assert [(c.section, c.text) for c in chunks] == [("One", "First bit."), ("Two", "Second bit."),
                                                      ("One", "Third bit.")]


def test_source_list_sections_are_not_chunked():
    doc = parse_markdown("## Rules\nConsent is required.\n\n## Sources\n- https://example.org/a\n- https://example.org/b\n")
    chunks = chunk_document(doc, "d", word_count, 180, 40)
    assert [c.text for c in chunks] == ["Consent is required."]


def test_markdown_chunks_have_no_pages(doc):
    for c in chunk_document(doc, "d", word_count, 60, 10):
        assert c.page_start is None and c.page_end is None


# --------------------------------------------------------------------------------------------------
# Pages


def _pdf_doc():
    def page(n, sentences):
        return " ".join(f"Sentence {i} of page {n} talks about the replica rules here." for i in range(sentences))

    pages = [
        "ARTICLE 72 GENERATIVE AI\n" + page(1, 5),
        page(2, 5),  # same section continues over the page break
        page(3, 2) + "\nSection 72.B Disclosure\n" + page(3, 3),
        "",  # blank page 4
        page(5, 4),
    ]
    return pdf_pages_to_document(pages)


def _page_of(doc, offset):
    for s in doc.sections:
        if s.char_start <= offset < s.char_end:
            return s.page_start
    raise AssertionError(offset)


def test_page_spans_follow_the_text():
    doc = _pdf_doc()
    chunks = chunk_document(doc, "pdf", word_count, 40, 10)
    _check_invariants(doc, chunks, "pdf")
    spanning = 0
    for c in chunks:
        assert c.page_start == _page_of(doc, c.char_start)
        assert c.page_end == _page_of(doc, c.char_end - 1)
        assert c.page_start <= c.page_end
        pages_named = {int(p) for p in re.findall(r"of page (\d+)", c.text)}
        assert min(pages_named) == c.page_start and max(pages_named) == c.page_end
        spanning += c.page_start != c.page_end
    assert spanning >= 1, "expected a chunk that spans the page 1 -> 2 break"
    # the blank page 4 is skipped: Section 72.B runs from page 3 to page 5
    assert any(c.section.endswith("Section 72.B Disclosure") and c.page_start == 3 for c in chunks)
    assert any(c.section.endswith("Section 72.B Disclosure") and c.page_end == 5 for c in chunks)
    assert all(c.page_start != 4 and c.page_end != 4 for c in chunks)


def test_single_page_chunk():
    doc = pdf_pages_to_document(["Only one page. It has two sentences."])
    (c,) = chunk_document(doc, "p", word_count, 180, 40)
    assert (c.page_start, c.page_end) == (1, 1)
    assert c.text == "Only one page. It has two sentences."


# --------------------------------------------------------------------------------------------------
# The real tokenizer


@pytest.mark.slow
def test_chunks_within_limit_real_tokenizer(real_embedder, doc):
    max_tokens, overlap = 180, 40
    chunks = chunk_document(doc, "doc-1", real_embedder.count_tokens, max_tokens, overlap)
    _check_invariants(doc, chunks)
    counts = real_embedder.count_tokens([c.text for c in chunks])
    assert max(counts) <= max_tokens
    # and the shipped corpus: every chunk fits the limit and the model's window (with its title prefix)
    from conftest import CORPUS

    from bot.service import embed_text

    for path in sorted(CORPUS.glob("*.md"))[:8]:
        d = parse_markdown(path.read_text(encoding="utf-8"))
        cs = chunk_document(d, path.stem, real_embedder.count_tokens, max_tokens, overlap)
        _check_invariants(d, cs, path.stem)
        assert max(real_embedder.count_tokens([c.text for c in cs])) <= max_tokens, path.name
        full = real_embedder.count_tokens([embed_text(d.meta.title, c.section, c.text) for c in cs])
        assert max(full) + 2 <= real_embedder.max_tokens, path.name  # +2: [CLS] and [SEP]
