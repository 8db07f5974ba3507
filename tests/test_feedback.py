"""bot.feedback: answers and votes stored without member ids; gaps; purge; migrations."""
import sqlite3
import threading
import time

from bot.feedback import MIGRATIONS, FeedbackStore
from bot.models import Answer, Citation


def _answer(aid, question="What does Article 72 say?", abstained=False):
    cites = [] if abstained else [
        Citation(n=1, doc_id="d1", title="WGA 2023 MBA", section="Article 72 > Disclosure", page_start=4, page_end=5,
                 quote="must disclose", text="The company must disclose ...", url="https://example.org", score=0.8, year=2023)
    ]
    return Answer(question=question, text="" if abstained else "Yes [1].", abstained=abstained, citations=cites, answer_id=aid)


def test_record_and_read_back_with_sources(tmp_path):
    store = FeedbackStore(tmp_path / "state.sqlite")
    store.record_answer(_answer("a1"), context_key=123, message_ids=[555, 556])
    got = store.get_answer("a1")
    assert got.question == "What does Article 72 say?" and not got.abstained
    assert got.sources[0].title == "WGA 2023 MBA" and got.sources[0].pages == "pp. 4\u20135"
    assert store.answer_for_message(556).answer_id == "a1"
    assert store.answer_for_message(999) is None
    assert store.context_questions(123) == ["What does Article 72 say?"]


def test_votes_one_per_member_changeable_and_no_member_ids_stored(tmp_path):
    path = tmp_path / "state.sqlite"
    store = FeedbackStore(path)
    store.record_answer(_answer("a1"))
    member = 123456789012345678
    r = store.vote("a1", member, +1)
    assert (r.value, r.previous, r.up, r.down) == (1, None, 1, 0)
    r = store.vote("a1", member, +1)
    assert (r.previous, r.up, r.down) == (1, 1, 0)  # same vote twice counts once
    r = store.vote("a1", member, -1)
    assert (r.previous, r.up, r.down) == (1, 0, 1)  # changed, not added
    store.vote("a1", 42, +1)
    assert store.votes("a1") == (1, 1)
    assert store.vote("unknown", member, 1) is None
    store.close()
    raw = sqlite3.connect(path)
    dump = "\n".join(raw.iterdump())
    assert str(member) not in dump and "'42'" not in dump and ", 42," not in dump
    voters = [r[0] for r in raw.execute("SELECT voter FROM votes")]
    assert all(len(v) == 64 for v in voters)


def test_salt_is_per_install_and_stable(tmp_path):
    a = FeedbackStore(tmp_path / "a.sqlite")
    b = FeedbackStore(tmp_path / "b.sqlite")
    assert a.voter_key(1) != b.voter_key(1)
    key = a.voter_key(1)
    a.close()
    assert FeedbackStore(tmp_path / "a.sqlite").voter_key(1) == key


def test_gaps_lists_abstentions_and_net_downvoted(tmp_path):
    store = FeedbackStore(tmp_path / "s.sqlite")
    now = time.time()
    store.record_answer(_answer("good"), now=now - 30)
    store.record_answer(_answer("abst", "Is there a 2029 DGA deal?", abstained=True), now=now - 20)
    store.record_answer(_answer("bad", "Bad one?"), now=now - 10)
    store.record_answer(_answer("mixed", "Mixed?"), now=now - 5)
    store.vote("good", 1, 1)
    store.vote("bad", 1, -1)
    store.vote("bad", 2, -1)
    store.vote("bad", 3, 1)
    store.vote("mixed", 1, -1)
    store.vote("mixed", 2, 1)
    gaps = store.gaps(10)
    assert [(g.kind, g.answer_id) for g in gaps] == [("downvoted", "bad"), ("unanswered", "abst")]
    assert (gaps[0].up, gaps[0].down) == (1, 2)
    assert len(store.gaps(1)) == 1


def test_purge_removes_old_answers_and_their_votes(tmp_path):
    store = FeedbackStore(tmp_path / "s.sqlite")
    now = time.time()
    store.record_answer(_answer("old"), now=now - 100 * 86400, message_ids=[1])
    store.record_answer(_answer("new"), now=now - 1 * 86400)
    store.vote("old", 1, -1)
    assert store.purge(90) == 1
    assert store.get_answer("old") is None and store.get_answer("new") is not None
    assert store.answer_for_message(1) is None
    assert store.votes("old") == (0, 0)
    assert store.gaps() == []


def test_migrations_numbered_with_user_version(tmp_path):
    path = tmp_path / "s.sqlite"
    store = FeedbackStore(path)
    assert store.schema_version == len(MIGRATIONS)
    store.close()
    # reopening is a no-op
    assert FeedbackStore(path).schema_version == len(MIGRATIONS)


def test_thread_safe_votes(tmp_path):
    store = FeedbackStore(tmp_path / "s.sqlite")
    store.record_answer(_answer("a"))
    threads = [threading.Thread(target=store.vote, args=("a", i, 1 if i % 2 else -1)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.votes("a") == (20, 20)


def test_context_questions_latest_in_order(tmp_path):
    store = FeedbackStore(tmp_path / "s.sqlite")
    now = time.time()
    for i in range(6):
        store.record_answer(_answer(f"q{i}", f"question {i}"), context_key="t", now=now + i)
    assert store.context_questions("t", limit=3) == ["question 3", "question 4", "question 5"]

    assert store.context_questions("t", limit=3, until=now + 2) == ["question 0", "question 1", "question 2"]
