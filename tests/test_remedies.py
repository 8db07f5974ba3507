"""Questions about a kind of consequence (jail, a fine, a lawsuit) that the quoted documents never
provide for are answered as partial, with a note saying so first."""
from __future__ import annotations

import pytest

from bot.answering import remedies


@pytest.mark.parametrize("question, kinds", [
    ("can u go to jail for using a dead actors replica", ["criminal"]),
    ("could they get him locked up for it", ["criminal"]),
    ("is it a crime to post one", ["criminal"]),
    ("whats the fine for skipping the label", ["fine"]),
    ("how much are they fined per ad", ["fine"]),
    ("can i sue the advertiser myself", ["lawsuit"]),
    ("can i take them to court and get damages", ["lawsuit"]),
    ("is there jail time or a fine", ["criminal", "fine"]),
    ("how long do i have to file a case under the utah law", ["time limit"]),
    ("deadline for a candidate to file suit?", ["time limit"]),
    ("how long do i have to sue", ["lawsuit", "time limit"]),
])
def test_what_kind_of_consequence_a_question_asks_about(question, kinds):
    assert remedies.asked(question) == kinds


@pytest.mark.parametrize("question", [
    "they stuck the replica clause in the fine print, is that ok",
    "is it fine if they scan me on set",
    "was the model fine-tuned on my voice",
    "whats the penalty for a studio that does this",  # any consequence, damages too: no kind in particular
    "do i get paid when they use my replica",
    "how long before they can go to court if the platform ghosts them",  # a wait, not a time limit
    "how long does the protection last after death",
])
def test_questions_that_ask_for_no_kind_of_consequence(question):
    assert remedies.asked(question) == []


def test_what_a_document_provides_for():
    civil = ("A person who violates this section is liable to the injured party for actual damages. "
             "The court may grant injunctive relief.")
    criminal = ("A person who commits the offense shall be imprisoned for not more than two years, "
                "fined not more than five thousand dollars, or both.")
    assert remedies.provided(civil) == {"lawsuit"}
    assert remedies.provided(criminal) == {"criminal", "fine"}
    jail, sue = remedies.asked("can they go to jail for this"), remedies.asked("can i sue them")
    assert remedies.missing(jail, remedies.provided(civil)) == [remedies.KINDS["criminal"][2]]
    assert remedies.missing(jail, remedies.provided(criminal)) == []
    assert remedies.missing(sue, remedies.provided(civil + " " + criminal)) == []
    assert "time limit" not in remedies.provided("It applies within 90 days of an election.")
    for limit in ("An action under this section may not be brought later than four years after the disclosure.",
                  "Claims must be brought within 3 years.", "within two years after the violation is discovered"):
        assert "time limit" in remedies.provided(limit), limit


CIVIL_LAW = """# SB 900 - Digital replicas of performers

Section 1. Definitions. "Digital replica" means a computer-generated, highly realistic electronic
representation that is readily identifiable as the voice or visual likeness of an individual.

Section 2. Unauthorized use. A person who produces or distributes a digital replica of a performer's voice
or likeness in an audiovisual work without the performer's prior written consent is liable to the
performer in an amount equal to the greater of ten thousand dollars or the actual damages suffered.

Section 3. Relief. The court may grant injunctive relief and shall award reasonable attorney's fees and
costs to a prevailing performer.
"""

CRIMINAL_LAW = """# HB 901 - Unlawful deepfake images

Section 1. Definitions. "Deepfake" means any audio or visual media in an electronic format that is created
or altered in a manner that would falsely appear to a reasonable observer to be an authentic record of
the actual speech or conduct of the individual depicted.

Section 2. Offense. A person who knowingly distributes a deepfake of another person engaging in sexual
conduct without that person's consent shall be imprisoned for not more than five years, fined not more
than ten thousand dollars, or both.
"""


@pytest.fixture(scope="module")
def two_laws(real_embedder, tmp_path_factory):
    from bot.config import Settings
    from bot.service import Service

    root = tmp_path_factory.mktemp("remedies")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "sb900.md").write_text(CIVIL_LAW, encoding="utf-8")
    (corpus / "hb901.md").write_text(CRIMINAL_LAW, encoding="utf-8")
    svc = Service.open(Settings(index_dir=root / "index", corpus_dir=corpus, embedding_model=real_embedder.name),
                       embedder=real_embedder)
    yield svc
    svc.close()


def test_jail_asked_of_a_civil_law_says_it_does_not_provide_for_it_first(two_laws):
    ans = two_laws.ask("can a studio go to jail for making a digital replica of a performer without consent")
    assert not ans.abstained and ans.citations
    assert ans.citations[0].title.startswith("SB 900")
    assert ans.partial
    assert ans.text.startswith("The documents I found don't mention jail, prison or any criminal penalty")


def test_jail_asked_of_a_criminal_law_is_answered(two_laws):
    ans = two_laws.ask("can someone go to jail for sharing a sexual deepfake of me without consent")
    assert not ans.abstained and ans.citations
    assert ans.citations[0].title.startswith("HB 901")
    assert not ans.partial and "imprisoned" in ans.text

