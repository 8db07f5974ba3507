"""What a question asks for: a number it names is a value only when it is one ("$950", "48 hrs", "87%"),
not a label ("law 50/51", "season 1") or the size of a scenario ("500 copies"); a follow-up asks for what
its own words ask for, not what the thread's first question did; a length of time may be said in words."""
from __future__ import annotations

import pytest

from bot.retrieval.analysis import analyse, asked_numbers, tokenize


@pytest.mark.parametrize("question, numbers", [
    ("is the day rate $950 now", ["$950"]),
    ("is the 48 hrs notice thing real", ["48"]),
    ("did members ratify it with 87%", ["87%"]),
    ("why do some say the strike was 146 days and others 148", ["146", "148"]),
    ("is it 500 or 1000?", ["500", "1000"]),
    ("if they made like 500 copies is that 500 separate violations?", []),
    ("does this take away my right to sue under ny civil rights law 50/51", []),
    ("what does article 72 say", []),
    ("can they reuse my replica from season 1 in a new movie", []),
    ("did the 2023 deal change anything", []),  # a year is not an asked-for number
])
def test_numbers_that_are_values(question, numbers):
    assert asked_numbers(tokenize(question)) == numbers
    assert analyse(question).numbers == numbers


DAMAGES = """# Personality Rights Act

## Section 4. Damages

A person who uses a forged likeness in an advertisement without consent is liable for statutory damages of
$3,000 or actual damages, whichever is greater, plus noneconomic damages.

## Section 5. Single act

For computing statutory damages, use of a likeness in one work is a single act of infringement regardless
of the number of copies made or the number of times the work is shown.

## Section 6. Disclosure

A video that uses synthetic media must carry the words "This video has been manipulated" for the duration
of the video, in a size easily readable by the average viewer.
"""


def test_a_follow_up_asks_for_its_own_values_not_the_threads(hash_service):
    r = hash_service.ingest_bytes(DAMAGES.encode(), "rights.md")
    assert r.status == "added", r.reason
    ans = hash_service.ask("and if they made like 500 copies of the ad is that 500 separate acts of infringement?",
                           history=["how much can i get if a company uses a forged likeness of me in an ad"])
    assert not ans.abstained
    assert "single act of infringement" in ans.text
    assert not ans.partial and "don't cover" not in ans.text, ans.text
    # the thread's own question still asks for an amount, and gets one
    first = hash_service.ask("how much can i get if a company uses a forged likeness of me in an ad")
    assert "$3,000" in first.text and not first.partial, first.text


def test_how_long_is_answered_by_a_length_of_time_in_words(hash_service):
    r = hash_service.ingest_bytes(DAMAGES.encode(), "rights.md")
    assert r.status == "added", r.reason
    ans = hash_service.ask("how long does the manipulated note have to stay on a synthetic media video")
    assert "for the duration" in ans.text.replace("\n", " ")
    assert not ans.partial, ans.text


GUILD = """---
title: Harbor Guild 2024 Agreement — AI terms
union: Harbor Guild
agreement: Harbor Guild Basic Agreement
year: 2024
status: current
doc_type: contract
---

# Harbor Guild 2024 Agreement

## Term

The 2024 Harbor Guild agreement runs from May 1, 2024 to April 30, 2027.

## Digital replicas

The producer must obtain the member's written consent before creating a digital replica, and must pay
for each day of use of the replica.
"""


def test_the_year_of_a_deal_is_the_agreements_year_not_a_date_in_it(hash_service):
    r = hash_service.ingest_bytes(GUILD.encode(), "harbor-2024.md")
    assert r.status == "added", r.reason
    ans = hash_service.ask("what did the harbor guild get on digital replicas in the 2027 contract")
    assert ans.partial and ans.text.startswith("My documents don't cover 2027 specifically"), ans.text
    ans = hash_service.ask("what did the harbor guild get on digital replicas in the 2024 contract")
    assert not ans.partial, ans.text


RATIFIED = """---
title: Harbor Guild 2025 Agreement — ratification
union: Harbor Guild
agreement: Harbor Guild Basic Agreement
year: 2025
status: current
doc_type: contract
---

# Harbor Guild 2025 Agreement

## Ratification vote of the Harbor Guild agreement

Harbor Guild members voted on the basic agreement in a mail ballot that closed in the spring. The basic
agreement was approved by the membership after a long campaign. The basic agreement passed with 85.9% yes.
"""


def test_a_value_the_question_asks_for_is_taken_from_the_quoted_passage(hash_service):
    """"how much did it pass by" asks for a figure: when the passage the answer quotes holds one in a
    sentence the lead did not bring, that sentence joins the answer instead of a "don't cover" note."""
    r = hash_service.ingest_bytes(RATIFIED.encode(), "harbor-2025.md")
    assert r.status == "added", r.reason
    ans = hash_service.ask("how much did the harbor guild basic agreement vote pass by")
    assert "85.9%" in ans.text, ans.text
    assert not ans.partial and "don't cover" not in ans.text, ans.text


def test_a_sources_do_not_give_sentence_is_not_the_value_asked_for():
    """A sentence saying the sources lack the figure does not answer "how much", even when it quotes some
    other figure; a plain sentence with a figure does."""
    from bot.answering.compose import _Sent, asked_value

    def sent(text):
        return _Sent(0, 0, len(text), text, score=1.0, lex=1.0, lex_all=1.0)

    q = "how much do writers get per script for ai training licences"
    lacking = sent("The sources do not give the amounts beyond one claim of $321 million for the health plan.")
    assert asked_value(q, [lacking]) == "the amount you asked for"
    assert asked_value("how many members voted", [sent("The report did not say how many of 160,000 voted.")]) \
        == "the number you asked for"
    # "does not give notice" is a rule, not a statement about the sources: its figure answers
    assert asked_value(q, [sent("The producer does not give writers less than $500 per script.")]) == ""


@pytest.mark.parametrize("question, asks_name", [
    ("who negotiated for sag in 2023", True),
    ("who was the wga chief negotiator in 2023", True),
    ("who wrote ab 1836 and when did it take effect", True),
    ("who can sue over a fake ai election ad in ca", False),
    ("who counts as a 'personality' under this, do u have to be famous", False),
    ("who has to follow this, like how big does the ai company have to be", False),
    ("who even gets to say yes after the performer dies", False),
    ("who's allowed to take someone to court over it", False),
    ("who is liable if the ad runs", False),
    ("who's the president of the union", True),
])
def test_who_asks_for_a_name_only_about_a_person_not_a_kind_of_person(question, asks_name):
    from bot.answering.compose import asked_value

    assert (asked_value(question, []) == "the name you asked for") == asks_name


def test_the_value_sentence_is_added_without_dropping_what_was_chosen():
    """The sought sentence goes right after the lead; nothing chosen before is cut for it (the last one may
    be the current agreement's counterpart of a superseded rule)."""
    from bot.answering.compose import MAX_SENTENCES, _seek_value, _Sent

    def sent(i, text):
        return _Sent(0, i * 100, i * 100 + len(text), text, score=1.0 - i / 100, lex=0.5, lex_all=0.5)

    chosen = [sent(i, f"Members voted on the basic agreement in round {w}.") for i, w in
              enumerate(("one", "two", "three", "four", "five", "six"))]
    assert len(chosen) > MAX_SENTENCES
    value = sent(9, "The basic agreement passed with 85.9% of members voting yes.")
    out = _seek_value("what % of members voted yes on the basic agreement", chosen + [value], chosen)
    assert out[0] is chosen[0] and out[1] is value
    assert out[2:] == chosen[1:]


NO_WORDING = """---
title: Harbor Drivers 2024 Agreement - No AI Wording Found
union: Harbor Drivers
year: 2024
status: current
---
# Harbor Drivers 2024 Agreement - No AI Wording Found

No specific artificial intelligence contract wording in the 2024 Harbor Drivers agreement or its side letters was found in the sources for this corpus. Automation was discussed at the bargaining table.
"""


def test_an_answer_that_opens_with_a_not_found_sentence_is_partial(hash_service):
    """When the passage that answers says the thing was not found, the member is told so first and the
    answer counts as not answering, even when that sentence shares few of the question's words (and its
    "no ... was found" spans a long clause)."""
    r = hash_service.ingest_bytes(NO_WORDING.encode(), "harbor-drivers-2024.md")
    assert r.status == "added", r.reason
    ans = hash_service.ask("what does the harbor drivers deal say about robot trucks taking driver jobs")
    assert ans.citations and ans.citations[0].title.startswith("Harbor Drivers 2024"), ans.text
    assert ans.partial and not ans.abstained, ans.text
    assert ans.text.startswith("My documents don't answer that"), ans.text
    assert "was found in the sources for this corpus" in ans.text, ans.text  # the sentence itself is quoted


PERCENT_NOT_FOUND = """---
title: Harbor Drivers 2025 Agreement
union: Harbor Drivers
year: 2025
status: current
---
# Harbor Drivers 2025 Agreement

## Ratification of the Harbor Drivers 2025 Agreement

Harbor Drivers members voted on the 2025 agreement in May 2025, after 80% of the board voted yes on April 27, 2025. Member ballots were due on May 21, 2025. The ratification percentage was not found in the sources for this corpus.

## Money terms of the Harbor Drivers 2025 Agreement

The Harbor Drivers 2025 Agreement raises wages by 5%, 4% and 3% over three years. The sources do not give more detail.
"""


def test_a_passage_saying_the_asked_for_kind_of_value_was_not_found_answers_the_question(hash_service):
    """"what % of members voted yes" is not answered by the board's 80%: the passage says the
    ratification percentage was not found, and so does the answer. A question asking for another kind
    of value (a date) is answered as before."""
    r = hash_service.ingest_bytes(PERCENT_NOT_FOUND.encode(), "harbor-drivers-2025.md")
    assert r.status == "added", r.reason
    ans = hash_service.ask("what % of harbor drivers members voted yes on the 2025 agreement")
    assert ans.partial and ans.text.startswith("My documents don't"), ans.text
    assert "ratification percentage was not found" in ans.text, ans.text
    ans = hash_service.ask("when were harbor drivers member ballots due on the 2025 agreement")
    assert not ans.partial and "May 21, 2025" in ans.text, ans.text


@pytest.mark.parametrize("question, kinds", [
    ("how much can i get if i win", ["amount"]),
    ("how much proof do i need that they knew", []),  # a standard of proof, not an amount
    ("how much time do i have to sue", ["length of time"]),
    ("how long does the label have to stay on screen", ["length of time"]),
    ("what date does it take effect", ["date"]),
    ("can they scan me without asking", []),
])
def test_kinds_of_value_a_question_asks_for(question, kinds):
    from bot.retrieval.analysis import asked_kinds

    assert asked_kinds(question) == kinds
    assert analyse(question).asks == kinds


def test_an_amount_in_words_is_an_amount():
    from bot.answering.compose import _Sent, asked_value

    def sent(text):
        return _Sent(0, 0, len(text), text, score=1.0, lex=1.0, lex_all=1.0)

    q = "how much can i get in liquidated damages"
    assert asked_value(q, [sent("Liquidated damages of one hundred fifty thousand dollars may be awarded.")]) == ""
    assert asked_value(q, [sent("Liquidated damages may be awarded.")]) == "the amount you asked for"


LIMITS = """# Intimate Images Act

## Section 3. Remedies

A depicted individual may bring a civil action against a person who discloses a fabricated intimate image
and may recover damages and court costs.

## Section 4. Time to bring an action

An action under this chapter must be brought not later than four years from the date the disclosure was
discovered.
"""


def test_a_passage_holding_the_kind_of_value_asked_for_ranks_higher(hash_service):
    r = hash_service.ingest_bytes(LIMITS.encode(), "limits.md")
    assert r.status == "added", r.reason
    import bot.retrieval.candidates as C

    def rank_of(needle, question):
        ans = hash_service.ask(question)
        texts = [c.row["text"] for c in ans.candidates]
        boosted = [c.boosts.get("value", 0) for c in ans.candidates if needle in c.row["text"]]
        return [i for i, t in enumerate(texts) if needle in t][0], boosted[0]

    q = "how long do i have to bring a civil action over a fabricated intimate image"
    rank, boost = rank_of("four years", q)
    assert boost == C.BOOST_VALUE > 0 and rank == 0
    # the same words without "how long" ask for no length of time: no passage is lifted for one
    assert rank_of("four years", "can i bring a civil action over a fabricated intimate image")[1] == 0
