"""Jurisdictions: what a question names, whose law a document is, and the retrieval that follows."""
from __future__ import annotations

import pytest

from bot.retrieval.places import in_question, of_document


@pytest.mark.parametrize("question, expected", [
    ("does washington protect my voice from ai fakes", ["WA"]),
    ("how much can i get in WA", ["WA"]),
    ("whats the ny rule on ai actors in ads", ["NY"]),
    ("californias deepfake election law", ["CA"]),
    ("do the eu rules cover chatbots", ["EU"]),
    ("is there a federal law on this", ["US"]),
    ("West Virginia or New Jersey", ["NJ", "WV"]),
    ("what did the french actors union agree on ai", ["FRA"]),
    ("has the korean actors union signed an ai deal", ["KOR"]),
    ("uk actors protections on scans", ["GBR"]),
    ("does the U.K. deal cover it", ["GBR"]),
    ("what did the canadian union get", ["CAN"]),
    ("is it different in Northern Ireland", ["GBR"]),
    ("how long do i have to sue over a deepfake of me in az", ["AZ"]),  # a postal code in lower case
    ("mich election fake - whats the fine", ["MI"]),                   # a short form of the name
    ("what does the Calif. law say", ["CA"]),
    ("does tenn protect my voice", ["TN"]),
    ("can i sue whoever made the ai ad of me in ut", ["UT"]),
    ("mi law on fake election ads, whats the fine the 2nd time", ["MI"]),
    ("is there a U.S. law on this", ["US"]),            # "U.S." followed by a space
    ("what do the E.U. rules say", ["EU"]),
    ("la law - someone spread ai fake nudes of me", ["LA"]),   # a code that is a word, where a law is meant
    ("does la's deepfake law still apply", ["LA"]),
    ("who sponsored la sb 175", ["LA"]),
    ("co - can i sue over a fake of me", ["CO"]),
    ("under PA law can they clone my voice", ["PA"]),
])
def test_the_jurisdiction_a_question_names(question, expected):
    assert in_question(question) == expected


@pytest.mark.parametrize("question", [
    "can they use us in the ad",          # a pronoun, not the United States
    "me and my agent, or my manager",     # ME and OR are words
    "in the la shoot, is it ok",          # LA and OK
    "can i sue in Washington, D.C.",      # the capital, not the state
    "when was the strike and how long was it",  # "was" is not "wa" + s
    "WHAT WAS THE DEAL, IS IT OK",
    "what exactly did crabtree-ireland claim the studios could do",  # a person's name
    "can i get the contract in plain english",  # a language, not a country
    "my 2nd scan and the 3rd one",              # the "nd" of "2nd" names no state
    "my ma says the co workers saw the la times story",  # codes that are words, with no law in sight
    "in law terms, or bill me later",           # "in" and "or" stay words even before "law" and "bill"
    "my colon and conn. cable",                 # words that start like a short form
])
def test_common_words_are_not_places(question):
    assert in_question(question) == []


def test_a_bill_says_whose_it_is_in_its_header_file_name_or_citations():
    ny = "S T A T E  O F  N E W  Y O R K\n6859--A\nAN ACT to amend the general business law"
    assert of_document("Relates to synthetic performers", "", ny) == {"NY"}
    assert of_document("SB 5886 - Personality rights", "WA_SSB5886_session_law.pdf", "Every individual ...") == {"WA"}
    wa_body = "Section 1. ... " + "x " * 2000 + "as defined in RCW 63.60.010 ... and RCW 63.60.020"
    assert of_document("Personality rights", "upload.pdf", wa_body) == {"WA"}
    assert of_document("Article 50", "", "Regulation (EU) 2024/1689 of the European Parliament") == {"EU"}


def test_a_union_document_says_its_country_in_its_title_or_agreement():
    assert of_document("UK Equity and Pact — AI Protections Talks", "", "",
                       meta="Equity Equity–Pact agreement (UK film and TV)") == {"GBR"}
    assert of_document("ACTRA Independent Production Agreement", "", "", meta="ACTRA Canadian IPA") == {"CAN"}
    assert of_document("Australia MEAA — AI Positions", "", "", meta="MEAA") == {"AUS"}


def test_a_document_that_names_no_jurisdiction_has_none():
    body = "The producer shall obtain consent. " * 50 + "California and Texas and New York are mentioned once each."
    assert of_document("Master agreement", "tag-2024.pdf", body) == set()


BILL = """# {title}

{header}

Section 1. A person who produces a digital replica of an individual's voice or likeness for use in an
advertisement without the written consent of the individual is liable to the individual for damages.

Section 2. The consent must be in a separate writing that describes the intended uses.
"""


def _upload(svc, name, title, header):
    r = svc.ingest_bytes(BILL.format(title=title, header=header).encode(), name)
    assert r.status == "added", r.reason
    return r.doc_id


def test_a_question_naming_a_state_leads_with_that_states_law(hash_service):
    texas = _upload(hash_service, "tx_hb100.md", "HB 100 - Digital replicas", "STATE OF TEXAS, 2025 session")
    wash = _upload(hash_service, "WA_SB200_session_law.md", "SB 200 - Digital replicas", "2026 session law")
    for question, want in (("in WA do they need my consent for a digital replica in an ad", wash),
                           ("texas law: do they need my consent for a digital replica in an ad", texas)):
        ans = hash_service.ask(question)
        assert ans.citations and ans.citations[0].doc_id == want, (question, [c.doc_id for c in ans.citations])


def test_the_upload_file_name_survives_a_rebuild(hash_service):
    doc = _upload(hash_service, "WA_SB200_session_law.md", "SB 200 - Digital replicas", "2026 session law")
    before = hash_service._places(hash_service._current())
    assert before[doc] == {"WA"}
    hash_service.rebuild()
    gen = hash_service._current()
    assert gen.store.get_document(doc)["file_name"] == "WA_SB200_session_law.md"
    assert hash_service._places(gen)[doc] == {"WA"}


def test_a_named_state_is_never_echoed_as_a_stray_word(hash_service):
    _upload(hash_service, "NY_S100.md", "S 100 - Digital replicas", "STATE OF NEW YORK")
    _upload(hash_service, "WA_SB200_session_law.md", "SB 200 - Digital replicas", "2026 session law")
    ans = hash_service.ask("under NY's bill do they need my consent for a digital replica in an ad")
    assert "NY's" not in ans.text and not ans.partial, ans.text
    for question in ("under Texas law do they need my consent for a digital replica in an ad",
                     "does the texas law need my consent for a digital replica in an ad"):
        ans = hash_service.ask(question)
        assert ans.partial and ans.text.startswith("My documents don't cover Texas specifically"), ans.text


def test_known_words_joined_by_a_hyphen_are_not_a_name(hash_service):
    _upload(hash_service, "WA_SB200_session_law.md", "SB 200 - Digital replicas", "2026 session law")
    ans = hash_service.ask("is a Consent-written replica in an advertisement allowed")
    assert "Consent-written" not in ans.text, ans.text


def test_asking_for_the_current_rule_ranks_superseded_agreements_down():
    from bot.retrieval.analysis import analyse
    from bot.retrieval.candidates import Candidate, _boost

    row = {"title": "Guild 2020 Agreement", "union_name": "Guild", "agreement": "", "year": 2020,
           "status": "superseded", "doc_type": "contract", "text": "Notice is 24 hours before a scan.",
           "ordinal": 3, "section": "Notice", "doc_id": "g2020"}
    scores = {}
    for question in ("how much notice before a scan under the current contract", "how much notice before a scan",
                     "what did the 2020 contract say about notice"):
        c = Candidate(1, row, fused=0.03)
        _boost(c, analyse(question), set(), {})
        scores[question] = c.fused
    assert scores["how much notice before a scan under the current contract"] < scores["how much notice before a scan"]
    assert scores["what did the 2020 contract say about notice"] >= scores["how much notice before a scan"]


def test_after_an_upload_only_the_new_documents_text_is_read_for_its_place(hash_service, monkeypatch):
    first = _upload(hash_service, "tx_hb100.md", "HB 100 - Digital replicas", "STATE OF TEXAS, 2025 session")
    hash_service._places(hash_service._current())
    read = []
    gen_store = type(hash_service._current().store)
    original = gen_store.document_text
    monkeypatch.setattr(gen_store, "document_text", lambda self, doc_id: read.append(doc_id) or original(self, doc_id))
    second = _upload(hash_service, "WA_SB200_session_law.md", "SB 200 - Digital replicas", "2026 session law")
    where = hash_service._places(hash_service._current())
    assert read == [second]
    assert where[first] == {"TX"} and where[second] == {"WA"}


def test_a_country_the_index_holds_no_law_or_agreement_of_is_named_as_missing(hash_service):
    _upload(hash_service, "uk_replicas.md", "UK Digital Replicas Code", "United Kingdom, 2025")
    _upload(hash_service, "WA_SB200_session_law.md", "SB 200 - Digital replicas", "2026 session law")
    ans = hash_service.ask("what did the french union agree on consent for a digital replica in an ad")
    assert ans.partial and ans.text.startswith("My documents don't cover France specifically"), ans.text
    ans = hash_service.ask("under the british code do they need my consent for a digital replica in an ad")
    assert not ans.partial, ans.text


def test_federal_law_is_not_demoted_for_a_state_question_but_is_for_a_country():
    from bot.retrieval.analysis import analyse
    from bot.retrieval.candidates import Candidate, _boost

    row = {"title": "Federal act", "union_name": "", "agreement": "", "doc_id": "us", "ordinal": 3, "section": "S 1",
           "text": "x" * 400, "status": "", "year": None, "doc_type": "law"}
    for question, demoted in (("in WA do they need consent", False), ("in france do they need consent", True)):
        c = Candidate(1, row)
        _boost(c, analyse(question), set(), {"us": {"US"}})
        assert (c.boosts.get("place", 0) < 0) == demoted, (question, c.boosts)


def test_the_operative_text_outranks_recitals_findings_and_digests():
    from bot.retrieval.analysis import analyse
    from bot.retrieval.candidates import Candidate, _boost

    def row(section):
        return {"title": "Act", "union_name": "", "agreement": "", "doc_id": "a", "ordinal": 3, "section": section,
                "text": "x" * 400, "status": "", "year": None, "doc_type": "law"}

    q = analyse("do they have to tell people it is a deepfake")
    for section, lower in (("Recitals 132–137 > (134)", True), ("Section 1. Findings and intent", True),
                           ("LEGISLATIVE COUNSEL'S DIGEST", True), ("Article 50 > 4", False),
                           ("Section 4 > 2", False), ("Definitions > (60)", False)):
        c = Candidate(1, row(section))
        c.fused = 0.03
        _boost(c, q, set(), {})
        assert (c.fused < 0.03) == lower, (section, c.boosts)


def test_a_bills_enacting_clause_and_sponsors_line_rank_lower_than_its_sections():
    from bot.retrieval.analysis import analyse
    from bot.retrieval.candidates import Candidate, _boost

    def row(text, ordinal=5, section="Full Text"):
        return {"title": "Act", "union_name": "", "agreement": "", "doc_id": "a", "ordinal": ordinal,
                "section": section, "text": text, "status": "", "year": None, "doc_type": ""}

    q = analyse("does the ad have to say it uses an ai actor")
    for text, lower in (
            ("AN ACT to amend the general business law\n\nTHE PEOPLE OF THE STATE OF NEW YORK, REPRESENTED IN "
             "SENATE AND ASSEMBLY, DO ENACT AS FOLLOWS:", True),
            ("Introduced by Sen. SMITH -- read twice and ordered printed", True),
            ("Be it enacted by the People of the State of Illinois, represented in the General Assembly:", True),
            ("An advertisement that uses a synthetic performer shall disclose it.", False),
            # a long passage that merely starts after the enacting clause is operative text
            ("THE PEOPLE OF THE STATE OF CALIFORNIA DO ENACT AS FOLLOWS: SEC. 3. " + "An advertisement shall "
             "disclose the use of a synthetic performer in a clear manner. " * 5, False)):
        c = Candidate(1, row(text))
        c.fused = 0.03
        _boost(c, q, set(), {})
        assert (c.fused < 0.03) == lower, (text[:40], c.boosts)


def test_a_file_name_that_starts_with_a_lower_case_code_names_its_place():
    assert of_document("AB-2602 Contracts against public policy", "ca_ab2602_labor_code.pdf", "Section 1. ...") == {"CA"}
    assert of_document("Digital replicas", "mi-hb5141.pdf", "Sec. 59. ...") == {"MI"}
    # only the first word, and only when more follows: "notes_ca.pdf" or "ca.pdf" name nothing
    assert of_document("Notes", "notes_ca.pdf", "Section 1. ...") == set()
    assert of_document("Notes", "ca.pdf", "Section 1. ...") == set()


def test_other_jurisdictions_are_set_aside_only_when_the_index_holds_the_named_one():
    from bot.retrieval.analysis import analyse
    from bot.retrieval.candidates import other_places

    held = {"tx": {"TX"}, "wa": {"WA"}, "us": {"US"}, "eu": {"EU"}}
    assert other_places(analyse("in WA do they need my consent"), held) == {"tx", "eu"}  # federal law stays
    assert other_places(analyse("under the eu rules do they need my consent"), held) == {"tx", "wa", "us"}
    assert other_places(analyse("texas or washington, do they need my consent"), held) == {"eu"}
    assert other_places(analyse("under florida law do they need my consent"), held) == set()  # none of it held
    assert other_places(analyse("do they need my consent"), held) == set()


def test_a_named_states_law_answers_even_when_another_states_law_matches_better_and_more_often(hash_service):
    sections = "\n\n".join(
        f"Section {i}. A person who produces a digital replica for use in an advertisement needs the written "
        f"consent of the individual, under rule {i}." for i in range(1, 90))
    r = hash_service.ingest_bytes(f"# HB 100 - Digital replicas\n\nSTATE OF TEXAS, 2025 session\n\n{sections}\n".encode(),
                                  "tx_hb100.md")
    assert r.status == "added", r.reason
    texas = r.doc_id
    wash = _upload(hash_service, "WA_SB200_session_law.md", "SB 200 - Likeness", "2026 session law")
    question = "in WA does a digital replica in an advertisement need written consent"
    ans = hash_service.ask(question)
    cited = [c.doc_id for c in ans.citations]
    assert cited and cited[0] == wash and texas not in cited, cited
    ans = hash_service.ask(question.replace("in WA", "in texas"))
    assert ans.citations and ans.citations[0].doc_id == texas


def test_whether_a_question_is_on_topic_is_judged_on_the_whole_index_not_on_the_named_states_law():
    """Setting other states' laws aside picks where the answer comes from; it does not make a question
    the index holds close matches for (in another state's law) look off-topic."""
    from bot.answering.abstention import Calibration
    from bot.answering.compose import compose
    from bot.retrieval.analysis import analyse
    from bot.retrieval.candidates import Candidate

    row = {"title": "SB 200 - Likeness", "union_name": "", "agreement": "", "year": None, "status": "",
           "doc_type": "law", "text": "Section 1. Likeness rights may be licensed only in a signed writing that "
           "lists each use.", "ordinal": 2, "section": "Section 1", "doc_id": "wa", "page_start": 1, "page_end": 1,
           "char_start": 0, "char_end": 80, "page_map": "", "url": "", "note": "", "date": ""}
    question = "in WA does a digital replica in an advertisement need written consent"
    held = {"wa": {"WA"}, "tx": {"TX"}}

    def ask(topic_cosine):
        cand = Candidate(1, row, dense=0.2, fused=0.03)  # far below the index's background (abstain below 0.4)
        return compose(question, analyse(question), [cand], {}, lambda t: True, calibration=Calibration(0.8, 100),
                       doc_places=held, topic_cosine=topic_cosine)

    assert ask(None).abstained  # nothing in the index is close: off-topic
    ans = ask(0.7)  # another state's law is a close match: on topic, answered from the named state's law
    assert not ans.abstained and ans.citations[0].doc_id == "wa", ans.text


def test_a_laws_front_matter_ranks_like_its_recitals():
    """Before a structured law's first article or section come its title, sponsors, digest or summary:
    they name every topic of the bill but state none of its rules."""
    from bot.retrieval.analysis import analyse
    from bot.retrieval.candidates import Candidate, _boost

    def row(ordinal, section, doc_id="bill"):
        return {"title": "Act", "union_name": "", "agreement": "", "doc_id": doc_id, "ordinal": ordinal,
                "section": section, "text": "x" * 400, "status": "", "year": None, "doc_type": ""}

    q = analyse("does a fake of my voice count")
    front = {"bill": 3}  # its first chunk under a section
    for r, lower in ((row(1, ""), True), (row(2, "Document information"), True), (row(3, "Section 1 > (6)"), False),
                     (row(5, ""), False),  # unsectioned text after the structure starts
                     (row(1, "", doc_id="news"), False)):  # a document without legal structure
        c = Candidate(1, r, fused=0.03)
        _boost(c, q, set(), {}, front)
        assert (c.fused < 0.03) == lower, (r["doc_id"], r["ordinal"], c.boosts)


LONG_TITLE = """# SB 77 - Voice and likeness amendments

GENERAL DESCRIPTION: This bill amends provisions on the abuse of a person's voice and likeness, including
simulations of a voice made with generative artificial intelligence, and provides remedies and exemptions.

Chief Sponsor: A. Senator. House Sponsor: B. Representative.

Section 1. Definitions.

(1) "Voice" means a computer-generated sound that is readily identifiable as a particular individual.

Section 2. Abuse of personal identity.

(1) A person may not use the voice of an individual, including a simulation made with generative artificial
intelligence, in an advertisement without the individual's consent.
"""

PROSE = """# Voice cloning in the news

A long report on voice cloning: studios tested simulations of a voice made with generative artificial
intelligence, and several performers said the abuse of a person's voice should need consent.

## What performers said

They want consent before any use of their voice.
"""


def test_the_service_knows_which_uploads_are_structured_laws(hash_service):
    law = hash_service.ingest_bytes(LONG_TITLE.encode(), "sb77.md").doc_id
    news = hash_service.ingest_bytes(PROSE.encode(), "voice_news.md").doc_id
    front = hash_service._front_matter(hash_service._current())
    assert law in front and front[law] > 0
    assert news not in front
    ans = hash_service.ask("is abuse of a person's voice with generative artificial intelligence simulations covered")
    assert ans.citations and ans.citations[0].doc_id == law
    assert ans.citations[0].section.startswith("Section"), [(c.doc_id, c.section) for c in ans.citations]
