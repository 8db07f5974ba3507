"""A follow-up in a thread asks about the document the thread is about, unless it names another one."""
from __future__ import annotations

FEES = ("Section {i}. In an action under this section the court shall award the prevailing party "
        "reasonable attorney's fees and costs, rule {i}.")


def _upload(svc, name: str, text: str) -> str:
    r = svc.ingest_bytes(text.encode(), name)
    assert r.status == "added", r.reason
    return r.doc_id


def _two_states(svc) -> tuple[str, str]:
    # Texas speaks of fees far more often than Washington does, and of nothing else
    texas = _upload(svc, "tx_hb100.md", "# HB 100 - Attorney fees\n\nSTATE OF TEXAS, 2025 session\n\n"
                    + "\n\n".join(FEES.format(i=i) for i in range(1, 40)) + "\n")
    wash = _upload(svc, "WA_SB200_session_law.md",
                   "# SB 200 - Forged digital likeness\n\n2026 session law\n\n"
                   "Section 1. A person who uses a forged digital likeness of an individual in an advertisement "
                   "without the written consent of the individual is liable for damages.\n\n"
                   + FEES.format(i=2) + "\n")
    return texas, wash


def test_a_follow_up_stays_with_the_document_its_thread_is_about(hash_service):
    texas, wash = _two_states(hash_service)
    first = "in WA can i sue over a forged digital likeness of me in an advertisement"
    assert hash_service.ask(first).citations[0].doc_id == wash
    # long enough to be taken on its own words, and naming no state
    follow = "does the court also make the losing side pay my attorney's fees and costs when i win"
    # (the fake embedder's scores are too weak for an answer: what is retrieved is what this checks)
    assert hash_service.ask(follow).candidates[0].doc_id == texas  # on its own it is Texas's question
    ans = hash_service.ask(follow, history=[first])
    assert ans.candidates[0].doc_id == wash, [c.doc_id for c in ans.candidates]


def test_a_follow_up_that_names_another_place_leaves_the_thread(hash_service):
    texas, wash = _two_states(hash_service)
    first = "in WA can i sue over a forged digital likeness of me in an advertisement"
    ans = hash_service.ask("and in texas does the court award attorney's fees and costs", history=[first])
    assert ans.candidates[0].doc_id == texas and wash not in {c.doc_id for c in ans.candidates}


def test_the_thread_is_what_its_earlier_questions_were_about_together(hash_service):
    texas, wash = _two_states(hash_service)
    # the previous question ("and the fees?") is itself a follow-up of one about Washington
    history = ["in WA can i sue over a forged digital likeness of me in an advertisement", "and the fees?"]
    ans = hash_service.ask("does the court award attorney's fees and costs to the winner", history=history)
    assert ans.citations and ans.citations[0].doc_id == wash
