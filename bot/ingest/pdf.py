"""PDF to per-page text, safely.

`extract_pdf` never parses a PDF in the calling process: pypdf runs in a fresh interpreter
(`_pdf_worker.py`) under a wall-clock limit (the child is killed), an address-space limit
(RLIMIT_AS) and a page limit, so a hostile or broken upload ends in a `RefusedError` with a message
fit for Discord, never in a crash, a hang or an out-of-memory bot.

`clean_pages` is the pure text clean-up applied to the raw page texts: it keeps physical page
numbering exact (index 0 = page 1, empty string for a page without text) and keeps line breaks, which
the structure detector downstream relies on ("ARTICLE 72" at a line start).
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RefusedError
from .sniff import PDF_MAGIC, SNIFF_BYTES, describe

logger = logging.getLogger(__name__)

_WORKER = Path(__file__).with_name("_pdf_worker.py")
REPAIR_HINT = "Try opening it and saving or printing it again as PDF, then upload that copy."
SCANNED_MESSAGE = (
    "No extractable text on any page — this looks like a scanned PDF. "
    "Upload a text PDF or a text export."
)


@dataclass
class PdfExtract:
    """Cleaned text per physical page: `pages[0]` is page 1; a page without text is ""."""

    pages: list[str]
    page_count: int
    meta: dict[str, str] = field(default_factory=dict)  # title, author, subject, creator, producer, creation_date
    unreadable_pages: list[int] = field(default_factory=list)  # 1-based pages whose text pypdf could not extract


def _human_size(n_bytes: float) -> str:
    mb = n_bytes / (1024 * 1024)
    if mb >= 1:
        return f"{mb:.1f}".removesuffix(".0") + " MB"
    kb = n_bytes / 1024
    return f"{kb:.1f}".removesuffix(".0") + " KB"


def _size_message(size: int, limit: int) -> str:
    shown, shown_limit = _human_size(size), _human_size(limit)
    if shown == shown_limit:  # 25.04 MB vs 25 MB would both print as "25 MB"
        shown = f"{size / (1024 * 1024):.2f} MB"
    return f"This PDF is {shown}; the limit is {shown_limit}. Split it into smaller files or compress it."


def _memory_message(memory_mb: int) -> str:
    return (
        f"Reading this PDF needed more than {memory_mb} MB of memory, so it was stopped. It may be damaged "
        "or unusually complex; try saving it again as PDF or splitting it into smaller files."
    )


def _timeout_message(timeout_s: float) -> str:
    return (
        f"Reading this PDF took longer than {timeout_s:g} seconds, so it was stopped. It may be damaged or "
        "unusually complex; try saving it again as PDF or splitting it into smaller files."
    )


def extract_pdf(path: str | os.PathLike[str], *, max_bytes: int, max_pages: int, timeout_s: float,
                memory_mb: int) -> PdfExtract:
    """Extract cleaned per-page text from the PDF at `path`, or raise RefusedError.

    Reason codes: empty, too_large, not_pdf, encrypted, corrupt, too_many_pages, timeout,
    resource_limit, scanned. A missing file raises FileNotFoundError (the caller's bug, not the user's).
    Blocking (it waits for a child process); call it via `asyncio.to_thread` from async code.
    """
    if max_bytes <= 0 or max_pages <= 0 or timeout_s <= 0 or memory_mb <= 0:
        raise ValueError("max_bytes, max_pages, timeout_s and memory_mb must be positive")
    path = Path(path)
    size = os.stat(path).st_size
    if size == 0:
        raise RefusedError("empty", "This file is empty (0 bytes).")
    if size > max_bytes:
        raise RefusedError("too_large", _size_message(size, max_bytes))
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if PDF_MAGIC not in head:
        named = "is named .pdf but " if path.suffix.lower() == ".pdf" else ""
        raise RefusedError(
            "not_pdf",
            f"This file {named}is not a PDF (its content starts like {describe(head, path.name)}). "
            "Upload the actual PDF file.",
        )

    started = time.monotonic()
    result = _run_worker(path, max_pages=max_pages, timeout_s=timeout_s, memory_mb=memory_mb)
    elapsed = time.monotonic() - started
    for line in result.get("log", []):
        logger.debug("pypdf (%s): %s", path.name, line)

    if result["status"] == "refused":
        reason = result["reason"]
        message = result.get("message") or (_memory_message(memory_mb) if reason == "resource_limit" else "")
        logger.info("refused PDF %s after %.2fs: %s (%s)", path.name, elapsed, reason, result.get("detail", ""))
        raise RefusedError(reason, message or f"This PDF could not be read. {REPAIR_HINT}")

    raw_pages = [p if isinstance(p, str) else "" for p in result["pages"]]
    pages = clean_pages(raw_pages)
    if not any(_has_text(p) for p in pages):
        logger.info("refused PDF %s: no text on any of %d pages", path.name, len(pages))
        raise RefusedError("scanned", SCANNED_MESSAGE)
    unreadable = [int(n) for n in result.get("unreadable_pages", [])]
    logger.info(
        "extracted PDF %s: %d pages (%d with text, %d unreadable) in %.2fs",
        path.name, len(pages), sum(1 for p in pages if _has_text(p)), len(unreadable), elapsed,
    )
    return PdfExtract(pages=pages, page_count=len(pages), meta=dict(result.get("meta") or {}),
                      unreadable_pages=unreadable)


def _run_worker(path: Path, *, max_pages: int, timeout_s: float, memory_mb: int) -> dict:
    """Run `_pdf_worker.py` on `path`; return its answer, or raise RefusedError if it died or hung."""
    request = {
        "path": str(path.resolve()),
        "max_pages": max_pages,
        "memory_mb": memory_mb,
        "cpu_s": math.ceil(timeout_s) + 5,  # backstop only; the wall-clock kill below comes first
    }
    # -I: isolated mode (ignores PYTHON* variables, user site-packages and the current directory).
    proc = subprocess.Popen(
        [sys.executable, "-I", str(_WORKER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a Ctrl-C aimed at the bot is not delivered to the child
    )
    try:
        try:
            out, err = proc.communicate(json.dumps(request).encode(), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            logger.info("PDF %s: reader killed after %.1fs", path.name, timeout_s)
            raise RefusedError("timeout", _timeout_message(timeout_s)) from None
    finally:
        if proc.poll() is None:  # we are unwinding for another reason (e.g. KeyboardInterrupt)
            proc.kill()
            proc.wait()

    try:
        answer = json.loads(out) if out else None
    except ValueError:
        answer = None
    if isinstance(answer, dict) and (
        (answer.get("status") == "ok" and isinstance(answer.get("pages"), list))
        or (answer.get("status") == "refused" and isinstance(answer.get("reason"), str))
    ):
        return answer

    rc = proc.returncode
    stderr_tail = err[-2000:].decode("utf-8", "replace")
    if rc is not None and rc < 0:
        sig = -rc
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        logger.warning("PDF %s: reader died from signal %s; stderr: %s", path.name, name, stderr_tail)
        if sig == signal.SIGXCPU:
            raise RefusedError("timeout", _timeout_message(timeout_s))
        if sig in (signal.SIGKILL, signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT):
            raise RefusedError("resource_limit", _memory_message(memory_mb))
    elif any(m in stderr_tail for m in ("MemoryError", "Cannot allocate memory", "SystemError: error return without")):
        # A reader that runs out of address space while starting can die with SystemError instead.
        logger.info("PDF %s: reader ran out of memory (limit %d MB)", path.name, memory_mb)
        raise RefusedError("resource_limit", _memory_message(memory_mb))
    logger.error("PDF %s: reader exited with status %s and no answer; stderr: %s", path.name, rc, stderr_tail)
    raise RefusedError(
        "corrupt",
        f"The PDF reader stopped unexpectedly on this file, so it was not added. It may be damaged. {REPAIR_HINT}",
    )


# --------------------------------------------------------------------------- cleaning

ZONE_LINES = 3  # how many non-blank lines at the top / bottom of a page may be header or footer
_MIN_RUNNING_PAGES = 3
_RUNNING_FRACTION = 0.4  # a running header must appear on at least this share of pages
_MAX_RUNNING_LEN = 200  # longer lines are body text, never a running header or footer
_TWO_LETTERS = re.compile(r"[^\W\d_].*?[^\W\d_]")

_LINE_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
_BAD_CHARS = re.compile("[\x00-\x08\x0e-\x1f\x7f\u200b-\u200d\u2060\ufeff\ud800-\udfff]")
_WS = " \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
_SPACES = re.compile(f"[{_WS[1:]}][{_WS}]*| [{_WS}]+")  # any run of blanks except a lone plain space
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st"})
_DIGITS = re.compile(r"\d+")
_SOFT_HYPHEN = "\u00ad"
_BREAK_HYPHENS = ("-", "\u2010", _SOFT_HYPHEN)
_COMPOUND = re.compile(r"\b([^\W\d_]+(?:-[^\W\d_]+)+)\b")

# Lines that can only be page numbers: dropped wherever they are on the page.
_PAGE_NUMBER_EXPLICIT = (
    re.compile(r"(?:page|pg\.?|p\.)\s*\d{1,5}(?:\s*(?:of|/)\s*\d{1,5})?", re.IGNORECASE),  # Page 7 of 90
    re.compile(r"[-–—]\s*\d{1,5}\s*[-–—]"),  # - 7 -
    re.compile(r"\d{1,5}\s*\|\s*p\s?a\s?g\s?e", re.IGNORECASE),  # 7 | Page
)
# Lines that are page numbers when they sit at the top or bottom of a page.
_PAGE_NUMBER_BARE = re.compile(r"(\d{1,5})(?:\s*(?:of|/)\s*\d{1,5})?")  # 7, 7 / 90, 7 of 90
_PAGE_NUMBER_ROMAN = re.compile(r"[-–—]?\s*[ivxlc]{1,7}\s*[-–—]?")  # iv, - iv - (front matter)


def clean_pages(raw_pages: list[str]) -> list[str]:
    """Clean raw per-page text; returns one string per input page (same order, same count).

    - unify line endings, drop control/zero-width characters, expand ligatures (ﬁ -> fi),
      collapse runs of spaces/tabs, strip each line, keep at most one blank line;
    - drop running headers/footers: lines at the top/bottom edge of a page that repeat verbatim on many
      pages, or whose digits track the page number on several pages ("WGA MOA 2023 — Page 7");
    - drop page-number lines ("7", "- 7 -", "Page 7 of 90", "iv");
    - join words hyphenated across a line break ("nego-\\ntiate" -> "negotiate") but keep the hyphen of
      compounds ("AI-\\ngenerated" -> "AI-generated", or a compound used elsewhere in the document).
    Every other line break is kept.
    """
    pages = [_normalise(text) for text in raw_pages]
    pages = _peel_edges(pages)
    compounds = _known_compounds(pages)
    return [_assemble(_join_hyphenated(lines, compounds)) for lines in pages]


def _has_text(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _normalise(text: str) -> list[str]:
    text = _LINE_BREAKS.sub("\n", text or "")
    text = _BAD_CHARS.sub("", text).translate(_LIGATURES)
    lines = []
    for line in text.split("\n"):
        line = _SPACES.sub(" ", line).strip()
        # A soft hyphen only matters at the end of a line (it marks a break); drop it elsewhere.
        body = line.rstrip(_SOFT_HYPHEN).replace(_SOFT_HYPHEN, "")
        if line.endswith(_SOFT_HYPHEN) and body:
            body += _SOFT_HYPHEN
        lines.append(body)
    return lines


def _zone(lines: list[str]) -> list[tuple[int, bool]]:
    """(index, is_top) for the first and the last ZONE_LINES non-blank lines; on a short page a line can
    be in both."""
    filled = [i for i, line in enumerate(lines) if line]
    return [(i, True) for i in filled[:ZONE_LINES]] + [(i, False) for i in filled[-ZONE_LINES:]]


def _key(line: str) -> str:
    return line.casefold()


def _masked(key: str) -> str:
    return _DIGITS.sub("#", key)


def _numbers(key: str) -> list[int]:
    # Long digit runs are never page numbers (and int() refuses more than 4300 digits).
    return [int(d) if len(d) <= 9 else -1 for d in _DIGITS.findall(key)]


@dataclass
class _EdgeRules:
    """What may be peeled off the top/bottom of pages, learned from the whole document."""

    exact: set[tuple[bool, str]] = field(default_factory=set)  # (is_top, key) repeated verbatim
    masked: set[tuple[bool, str]] = field(default_factory=set)  # (is_top, key with digits as #), page-tracking
    page_offsets: set[int] = field(default_factory=set)  # offsets of bare numbers that are page numbers

    def removable(self, line: str, top: bool, page_no: int) -> bool:
        key = _key(line)
        if (top, key) in self.exact or (top, _masked(key)) in self.masked:
            return True
        m = _PAGE_NUMBER_BARE.fullmatch(line)
        if m:
            return int(m.group(1)) - page_no in self.page_offsets
        if _PAGE_NUMBER_ROMAN.fullmatch(line):
            return _is_roman(line.strip("-–— "))
        return _is_explicit_page_number(line)


def _is_explicit_page_number(line: str) -> bool:
    return any(p.fullmatch(line) for p in _PAGE_NUMBER_EXPLICIT)


def _learn_edges(pages: list[list[str]]) -> _EdgeRules:
    rules = _EdgeRules()
    n = len(pages)
    threshold = max(_MIN_RUNNING_PAGES, math.ceil(_RUNNING_FRACTION * n))
    exact: dict[tuple[bool, str], set[int]] = defaultdict(set)
    masked: dict[tuple[bool, str], dict[int, list[int]]] = defaultdict(dict)
    offsets: Counter[int] = Counter()
    for page_no, lines in enumerate(pages, start=1):
        page_offsets = set()
        # A page holding a single line has no header: that line is its content (e.g. one line per slide).
        count_running = sum(1 for line in lines if line) >= 2
        for i, top in _zone(lines):
            line = lines[i]
            m = _PAGE_NUMBER_BARE.fullmatch(line)
            if m:
                page_offsets.add(int(m.group(1)) - page_no)
                continue
            if not count_running or len(line) > _MAX_RUNNING_LEN or not _TWO_LETTERS.search(line):
                continue
            key = _key(line)
            exact[(top, key)].add(page_no)
            if _DIGITS.search(key):
                masked[(top, _masked(key))].setdefault(page_no, _numbers(key))
        offsets.update(page_offsets)

    if n >= _MIN_RUNNING_PAGES:
        rules.exact = {k for k, on_pages in exact.items() if len(on_pages) >= threshold}
        for k, numbers_by_page in masked.items():
            if len(numbers_by_page) < _MIN_RUNNING_PAGES:
                continue
            # Digits may vary only if one of them tracks the page number (same offset from the physical
            # page on several pages): "WGA MOA 2023 - Page 7" on page 7, or a book-style "7 1.2 SCOPE" that
            # runs only through its own section. "ARTICLE 12", "ARTICLE 13" atop new articles do not track.
            width = min(len(nums) for nums in numbers_by_page.values())
            for pos in range(width):
                tracking = Counter(nums[pos] - page_no for page_no, nums in numbers_by_page.items())
                if tracking.most_common(1)[0][1] >= _MIN_RUNNING_PAGES:
                    rules.masked.add(k)
                    break
    # Bare numbers are page numbers when they equal the physical page number, or follow it with a steady
    # offset on several pages (front matter shifts numbering); a lone "72" heading on page 30 stays.
    rules.page_offsets = {0} | {off for off, count in offsets.items() if count >= 3}
    return rules


def _peel_edges(pages: list[list[str]]) -> list[list[str]]:
    """Drop running headers/footers and page numbers, peeling inward from the top and bottom edges.

    Only lines between the edge and the first line of real content are dropped (at most ZONE_LINES from
    each end), so a body line is never removed just because it resembles a header. Explicit page-number
    lines ("Page 7 of 90") are dropped wherever they are.
    """
    rules = _learn_edges(pages)
    cleaned = []
    for page_no, lines in enumerate(pages, start=1):
        drop: set[int] = set()
        filled = [i for i, line in enumerate(lines) if line]
        for order, top in ((filled, True), (list(reversed(filled)), False)):
            for i in order[:ZONE_LINES]:
                if i in drop:
                    continue
                if not rules.removable(lines[i], top, page_no):
                    break
                drop.add(i)
        drop.update(i for i in filled if _is_explicit_page_number(lines[i]))
        cleaned.append([line for i, line in enumerate(lines) if i not in drop])
    return cleaned


def _is_roman(s: str) -> bool:
    return bool(re.fullmatch(r"m{0,3}(cm|cd|d?c{0,3})(xc|xl|l?x{0,3})(ix|iv|v?i{0,3})", s)) and bool(s)


def _known_compounds(pages: list[list[str]]) -> set[str]:
    """Hyphenated words written inside a line somewhere in the document ("non-union", "AI-generated")."""
    found = set()
    for lines in pages:
        for line in lines:
            body = line[:-1] if line.endswith(_BREAK_HYPHENS) else line
            if "-" in body:
                found.update(m.casefold() for m in _COMPOUND.findall(body))
    return found


_MAX_WORD = 64  # longer "words" are not hyphenated prose (and capping them keeps joining linear)


def _fragment(line: str) -> str:
    """The word piece before a line-final hyphen ("nego" in "shall nego-")."""
    return line[-_MAX_WORD - 2:-1].rsplit(" ", 1)[-1]


def _ends_in_break_hyphen(line: str) -> bool:
    return (len(line) >= 2 and line.endswith(_BREAK_HYPHENS) and line[-2].isalpha()
            and len(_fragment(line)) <= _MAX_WORD)


def _join_word(line: str, word: str, compounds: set[str]) -> str:
    hyphen, head = line[-1], line[:-1]
    fragment = _fragment(line)
    letters = [ch for ch in fragment if ch.isalpha()]
    tail = re.sub(r"\W+$", "", word)
    keep = hyphen != _SOFT_HYPHEN and (
        (len(letters) >= 2 and all(ch.isupper() for ch in letters))  # AI-, COVID-
        or f"{fragment}-{tail}".casefold().lstrip("(\"'") in compounds
    )
    return head + ("-" if keep else "") + word


def _join_hyphenated(lines: list[str], compounds: set[str]) -> list[str]:
    """Join words broken across lines: the tail moves up, the rest of its line stays where it was."""
    out = []
    i, n = 0, len(lines)
    pending: str | None = None  # the rest of a line whose first word was moved up
    while pending is not None or i < n:
        if pending is not None:
            line, pending = pending, None
        else:
            line, i = lines[i], i + 1
        while i < n and _ends_in_break_hyphen(line) and lines[i][:1].islower():
            word, _, rest = lines[i].partition(" ")
            i += 1
            line = _join_word(line, word, compounds)
            if rest:
                pending = rest
                break
            # the next line was only the word's tail; the joined word may itself break again
        out.append(line.rstrip(_SOFT_HYPHEN))
    return out


def _assemble(lines: list[str]) -> str:
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue  # at most one blank line, none at the start
        out.append(line)
    return "\n".join(out).strip()
