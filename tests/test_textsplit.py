"""bot.textsplit: pieces within the limit, at paragraph > sentence > word boundaries, markers intact."""
import random
import re

import pytest

from bot.textsplit import (
    EMBED_DESCRIPTION_LIMIT,
    EMBED_FIELD_LIMIT,
    MESSAGE_LIMIT,
    split_text,
    truncate,
)

MARKER = re.compile(r"\[\d+(?:\s*[,\u2013-]\s*\d+)*\]")


def _words(text):
    return text.split()


def test_short_text_is_one_piece():
    assert split_text("  Hello world.  ", 2000) == ["Hello world."]
    assert split_text("", 2000) == []
    assert split_text("   \n ", 2000) == []


def test_paragraph_boundaries_preferred():
    a = "First paragraph. " * 5
    b = "Second paragraph. " * 5
    pieces = split_text(a.strip() + "\n\n" + b.strip(), len(a) + 5)
    assert pieces == [a.strip(), b.strip()]


def test_sentence_boundaries_when_paragraph_too_long():
    text = " ".join(f"Sentence number {i} ends here [{i % 3 + 1}]." for i in range(40))
    pieces = split_text(text, 200)
    assert all(len(p) <= 200 for p in pieces)
    for p in pieces:  # every piece ends at a sentence end, with its marker
        assert p.endswith("].")
        assert p.startswith("Sentence")


def test_word_boundaries_when_sentence_too_long():
    text = " ".join(f"word{i}" for i in range(1000))
    pieces = split_text(text, 100)
    assert all(len(p) <= 100 for p in pieces)
    assert _words(" ".join(pieces)) == _words(text)  # nothing lost, nothing cut mid-word


@pytest.mark.parametrize("limit", [MESSAGE_LIMIT, EMBED_DESCRIPTION_LIMIT, EMBED_FIELD_LIMIT, 50, 10])
def test_random_text_never_over_limit_never_mid_word_markers_whole(limit):
    rng = random.Random(limit)
    paragraphs = []
    for _ in range(30):
        sentences = []
        for _ in range(rng.randint(1, 12)):
            words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 6))) for _ in range(rng.randint(3, 30))]
            if rng.random() < 0.5:
                words.append(rng.choice(["[1]", "[2]", "[12]", "[1, 2]", "[3\u20134]"]))
            sentences.append(" ".join(words) + rng.choice([".", "!", "?", ".\u201d"]))
        paragraphs.append(" ".join(sentences))
    text = "\n\n".join(paragraphs)
    pieces = split_text(text, limit)
    assert pieces and all(0 < len(p) <= limit for p in pieces)
    assert _words(" ".join(pieces)) == _words(text)
    if limit >= 20:  # glued word+marker fits, so markers are whole and never lead a piece
        original_markers = MARKER.findall(text)
        assert MARKER.findall("\n".join(pieces)) == original_markers
        for p in pieces:
            assert not re.match(r"^\[\d", p), "a piece must not start with an orphaned marker"


def test_marker_stays_with_its_word():
    text = ("x" * 45) + " [3] tail"
    pieces = split_text(text, 50)
    assert pieces[0] == "x" * 45 + " [3]"
    assert all(len(p) <= 50 for p in pieces)


def test_overlong_token_is_hard_cut_within_limit():
    url = "https://example.org/" + "a" * 300
    pieces = split_text(f"See {url} now.", 100)
    assert all(len(p) <= 100 for p in pieces)
    assert "".join(pieces).replace(" ", "").startswith("See")


def test_truncate_at_word_boundary():
    assert truncate("short", 10) == "short"
    t = truncate("alpha beta gamma delta", 14)
    assert len(t) <= 14 and t.endswith("\u2026") and t == "alpha beta\u2026"


def test_a_long_enumerating_sentence_is_split_into_its_items_with_their_labels():
    from bot.textsplit import LONG_SENTENCE, sentence_spans, split_sentences

    text = ("For the purposes of this Regulation, the following definitions apply: (1) \u2018AI system\u2019 means a "
            "machine-based system designed to operate with varying levels of autonomy; (3) \u2018provider\u2019 means a "
            "natural or legal person that develops an AI system or has one developed; and (4) \u2018deployer\u2019 means a "
            "natural or legal person using an AI system under its authority, except in the course of a personal "
            "non-professional activity; (60) \u2018deep fake\u2019 means AI-generated image, audio or video content. Next.")
    spans = sentence_spans(text)
    parts = [text[s:e] for s, e in spans]
    assert parts[1].startswith("(3) \u2018provider\u2019") and parts[1].endswith("; and")
    assert parts[2].startswith("(4) \u2018deployer\u2019") and parts[2].endswith("activity;")
    assert parts[3] == "(60) \u2018deep fake\u2019 means AI-generated image, audio or video content."
    assert parts[-1] == "Next."
    assert all(text[s:e] == p for (s, e), p in zip(spans, parts))  # exact offsets
    # a short sentence with an item keeps it: it can be quoted whole
    short = "A person is not liable if the person consented; (b) the use is news. Done."
    assert len(short) < LONG_SENTENCE
    assert split_sentences(short) == ["A person is not liable if the person consented; (b) the use is news.", "Done."]
