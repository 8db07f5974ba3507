"""The sandboxed half of PDF extraction: runs in its own interpreter, reads one PDF with pypdf.

Started by `bot.ingest.pdf.extract_pdf` as `python -I <this file>`; never imported by the bot itself.
It deliberately imports nothing from `bot` (so a heavy or broken package import can never eat the
memory budget) and only the standard library before the limits are in place.

Protocol: one JSON object on stdin
    {"path": str, "max_pages": int, "memory_mb": int, "cpu_s": int}
and one JSON object on the ORIGINAL stdout (fd 1 is redirected to stderr so stray prints cannot
corrupt the answer):
    {"status": "ok", "pages": [raw text per physical page], "meta": {...},
     "unreadable_pages": [1-based page numbers whose text could not be extracted], "log": [...]}
    {"status": "refused", "reason": <RefusedError code>, "message": <text for people>,
     "detail": <technical detail for the log>, "log": [...]}
`log` holds pypdf's own warnings (capped); the parent logs them at DEBUG.

Raw text is returned uncleaned; cleaning happens in the parent (`clean_pages`).
"""
from __future__ import annotations

import io
import json
import logging
import os
import resource
import sys

MAX_LOG_RECORDS = 40
# No real page holds more than ~20k characters; these caps bound the clean-up work in the parent.
MAX_PAGE_CHARS = 1_000_000
MAX_TEXT_CHARS = 30_000_000
META_FIELDS = ("title", "author", "subject", "creator", "producer")
REPAIR_HINT = "Try opening it and saving or printing it again as PDF, then upload that copy."


class _Refused(Exception):
    def __init__(self, reason: str, message: str, detail: str = ""):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.detail = detail


class _Collector(logging.Handler):
    """Keeps the first few log records (pypdf warns a lot on real-world files) and counts the rest."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < MAX_LOG_RECORDS:
            try:
                self.records.append(f"{record.name}: {record.getMessage()}"[:300])
            except Exception:  # a malformed log call must not break extraction
                self.dropped += 1
        else:
            self.dropped += 1

    def lines(self) -> list[str]:
        if self.dropped:
            return self.records + [f"... {self.dropped} more pypdf warnings"]
        return list(self.records)


def _limit_resources(memory_mb: int, cpu_s: int) -> None:
    def lower(kind: int, value: int) -> None:
        soft, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(kind, (value, value))

    lower(resource.RLIMIT_AS, memory_mb * 1024 * 1024)
    lower(resource.RLIMIT_CPU, cpu_s)  # backstop in case the parent is gone and cannot kill us
    lower(resource.RLIMIT_CORE, 0)


def _clean_meta_text(value: object) -> str | None:
    """Metadata string as text, or None if it is missing, not text, or not decodable."""
    try:
        if hasattr(value, "get_object"):
            value = value.get_object()
        if isinstance(value, bytes):
            value = value.decode("utf-8")  # pypdf could not decode it; accept only clean UTF-8
        if not isinstance(value, str):
            return None
        text = "".join(ch if ch.isprintable() else " " for ch in str(value))
        text = " ".join(text.split())[:500]
        return text or None
    except Exception:
        return None


def _read_meta(reader) -> dict[str, str]:
    meta: dict[str, str] = {}
    try:
        info = reader.metadata
    except Exception:
        return meta
    if not info:
        return meta
    for name in META_FIELDS:
        try:
            value = _clean_meta_text(info.get("/" + name.capitalize()))
        except Exception:
            value = None
        if value:
            meta[name] = value
    try:
        created = info.creation_date
        if created is not None:
            meta["creation_date"] = created.isoformat()
    except Exception:  # malformed date strings raise ValueError (or worse); ignore them
        pass
    return meta


def _structure_problem(exc: BaseException) -> str:
    """A plain-language description of why the document structure could not be read."""
    text = str(exc).lower()
    if isinstance(exc, RecursionError) or "depth" in text or "nest" in text:
        return "its internal structure is nested too deeply to read"
    if "cycl" in text or "loop" in text:
        if "page" in text:
            return "its list of pages loops back on itself"
        return "its internal references loop back on themselves"
    if "/pages" in text or "root" in text or "page tree" in text or "kids" in text:
        return "its list of pages is missing or broken"
    if "xref" in text or "startxref" in text or "trailer" in text:
        return "its table of contents (cross-reference table) is broken"
    return "its internal structure could not be parsed"


_AES_MESSAGE = (
    "This PDF is encrypted with AES, which this server cannot decrypt (even if it opens without a password "
    "elsewhere). Upload an unprotected copy, e.g. made with 'Print to PDF'."
)


def _unreadable_file(data: bytes, exc: BaseException | str) -> _Refused:
    """The refusal for a file pypdf could not open, worded by what its bytes look like."""
    if b"endobj" not in data:  # not a single PDF object: garbage behind a PDF header
        return _Refused(
            "corrupt",
            "This file starts like a PDF, but what follows is not PDF data, so it can't be read. It may be "
            f"damaged or not really a PDF. {REPAIR_HINT}",
            repr(exc),
        )
    # A PDF ends with its cross-reference table, trailer and %%EOF (readers look in the last 1024 bytes);
    # a file without them was almost certainly cut off.
    if b"%%EOF" not in data[-1024:]:
        return _Refused(
            "corrupt",
            "This PDF is incomplete: it does not end the way a PDF must, so it was probably cut off during "
            "download or upload. Upload the complete file.",
            repr(exc),
        )
    return _Refused(
        "corrupt",
        f"This PDF is damaged and can't be read: {_structure_problem(exc)}. {REPAIR_HINT}",
        repr(exc),
    )


def _open(pypdf, data: bytes):
    """A PdfReader with the empty password applied, and its page count."""
    from pypdf.errors import DependencyError

    reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:
            ok = reader.decrypt("")
        except NotImplementedError as exc:  # e.g. certificate (public-key) security
            raise _Refused(
                "encrypted",
                "This PDF uses a kind of encryption this bot cannot open. Upload an unprotected copy.",
                repr(exc),
            ) from None
        except DependencyError:
            raise
        if not ok:
            raise _Refused("encrypted", "This PDF is password-protected. Upload an unprotected copy.")
    return reader, len(reader.pages)


def _extract(pypdf, path: str, max_pages: int) -> dict:
    from pypdf.errors import DependencyError, LimitReachedError

    with open(path, "rb") as fh:
        data = fh.read()
    try:
        reader, page_count = _open(pypdf, data)
    except (_Refused, MemoryError, DependencyError):
        raise
    except Exception as exc:  # pypdf raises many types (incl. AttributeError) on broken structure
        raise _unreadable_file(data, exc) from None
    # A file pypdf could open has its cross-reference table and trailer, so it was not cut off; junk
    # after %%EOF (some servers and mail gateways append it) does not matter.
    del data
    if page_count == 0:
        raise _Refused("empty", "The PDF has no pages.")
    if page_count > max_pages:
        raise _Refused(
            "too_many_pages",
            f"This PDF has {page_count} pages; the limit is {max_pages}. Split it into smaller files "
            "and upload those.",
        )

    meta = _read_meta(reader)
    pages: list[str] = []
    unreadable: list[int] = []
    total = 0
    for number in range(1, page_count + 1):
        try:
            text = reader.pages[number - 1].extract_text() or ""
        except LimitReachedError as exc:
            if "decompress" in str(exc).lower():
                what = "holds compressed data that expands far beyond a safe size"
            else:
                what = "is more complex than the reader's safety limits allow"
            raise _Refused(
                "resource_limit",
                f"Page {number} of this PDF {what}, so reading was stopped. {REPAIR_HINT}",
                repr(exc),
            ) from None
        except (MemoryError, RecursionError, DependencyError):
            raise
        except Exception as exc:  # one broken page must not cost the whole document
            logging.getLogger("pypdf").warning("page %d: text extraction failed: %r", number, exc)
            text = ""
            unreadable.append(number)
        total += len(text)
        if len(text) > MAX_PAGE_CHARS or total > MAX_TEXT_CHARS:
            raise _Refused(
                "resource_limit",
                f"This PDF holds far more text than a real document would ({total:,} characters by page "
                f"{number}), so reading was stopped. {REPAIR_HINT}",
            )
        pages.append(text)
    if len(unreadable) == page_count:
        raise _Refused(
            "corrupt",
            f"This PDF is damaged and can't be read: the text of none of its {page_count} pages could be "
            f"extracted. {REPAIR_HINT}",
        )
    return {"status": "ok", "pages": pages, "meta": meta, "unreadable_pages": unreadable}


def _refusal(reason: str, message: str, detail: str) -> dict:
    return {"status": "refused", "reason": reason, "message": message, "detail": detail}


def main() -> int:
    # Keep the real stdout for the answer; anything else printed goes to stderr.
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    request = json.loads(sys.stdin.read())
    _limit_resources(int(request["memory_mb"]), int(request["cpu_s"]))

    collector = _Collector()
    for name in ("pypdf", "py.warnings"):
        lg = logging.getLogger(name)
        lg.addHandler(collector)
        lg.setLevel(logging.WARNING)
        lg.propagate = False
    logging.captureWarnings(True)

    out_of_memory = False
    result: dict = {}
    try:
        try:
            import pypdf
            from pypdf.errors import DependencyError
        except ImportError as exc:
            # Shared libraries are mapped at import: under a tiny RLIMIT_AS that fails as ImportError.
            if "map" in str(exc) or "memory" in str(exc).lower():
                raise MemoryError(str(exc)) from None
            raise  # a broken installation: crash loudly, the parent logs our stderr
        try:
            result = _extract(pypdf, request["path"], int(request["max_pages"]))
        except DependencyError as exc:  # AES without the `cryptography` package
            result = _refusal("encrypted", _AES_MESSAGE, repr(exc))
    except _Refused as exc:
        result = _refusal(exc.reason, exc.message, exc.detail)
    except MemoryError:
        out_of_memory = True  # build the answer after the except block, once the big objects are freed
    except RecursionError as exc:
        result = _refusal(
            "corrupt", f"This PDF is damaged and can't be read: {_structure_problem(exc)}. {REPAIR_HINT}",
            repr(exc),
        )
    if out_of_memory:
        # The message is left to the parent, which words it with the limit it chose.
        result = _refusal("resource_limit", "", "MemoryError")
    result["log"] = collector.lines()
    # ensure_ascii: pypdf can return lone surrogates, which a UTF-8 stream cannot carry.
    json.dump(result, answer)
    answer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
