"""Decide what kind of document a file is from its first bytes, never from its name alone.

`detect_kind` answers "pdf", "html", "markdown" or "text", or raises `RefusedError` with a message that
says what the file looks like and what is accepted. The filename only breaks ties (Markdown vs. plain
text, a bare HTML fragment) and sharpens messages ("named .pdf but ...").
"""
from __future__ import annotations

import codecs
import logging
import re
from pathlib import PurePath

from ..errors import RefusedError

logger = logging.getLogger(__name__)

ACCEPTED = "Upload a PDF, Markdown (.md), HTML or plain-text (UTF-8) file."
PDF_MAGIC = b"%PDF-"
SNIFF_BYTES = 1024  # how far into the file the PDF header may sit (as PDF readers allow)
MARKDOWN_EXTENSIONS = {".md", ".markdown", ".mdown", ".mkd"}
HTML_EXTENSIONS = {".html", ".htm", ".xhtml"}
_HTML_MARKERS = ("<!doctype html", "<html", "<head", "<body")
_MD_HEADING = re.compile(r"^#{1,6}[ \t]+\S", re.MULTILINE)

# (magic prefix, what it looks like). Checked in order; first match wins. None = needs a closer look.
_SIGNATURES: tuple[tuple[bytes, str | None], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", None),  # bitmap: too short to trust alone; handled in _binary_kind
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Microsoft Office file (.doc, .xls or .ppt)"),
    (b"{\\rtf", "an RTF document"),
    (b"%!PS", "a PostScript file"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"BZh", None),  # bzip2: checked with its block magic in _binary_kind
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\xfd7zXZ\x00", "an XZ-compressed file"),
    (b"MZ", "a Windows program (.exe or .dll)"),
    (b"\x7fELF", "a Linux program (ELF executable)"),
    (b"\xca\xfe\xba\xbe", "a Mac or Java program"),
    (b"\xcf\xfa\xed\xfe", "a Mac program (Mach-O executable)"),
    (b"\xfe\xed\xfa\xcf", "a Mac program (Mach-O executable)"),
    (b"OggS", "an audio or video file (Ogg)"),
    (b"ID3", "an MP3 audio file"),
    (b"fLaC", "a FLAC audio file"),
    (b"\x1aE\xdf\xa3", "a video file (Matroska/WebM)"),
    (b"SQLite format 3\x00", "an SQLite database"),
)

_ZIP_BY_EXTENSION = {
    ".docx": "a Word document (.docx)",
    ".xlsx": "an Excel spreadsheet (.xlsx)",
    ".pptx": "a PowerPoint presentation (.pptx)",
    ".odt": "an OpenDocument text file (.odt)",
    ".epub": "an EPUB e-book",
    ".pages": "an Apple Pages document",
}
_CONVERT_HINT = {
    "a Word document (.docx)": "Save or export it as PDF first.",
    "an OpenDocument text file (.odt)": "Save or export it as PDF first.",
    "an Apple Pages document": "Export it as PDF first.",
    "an old-style Microsoft Office file (.doc, .xls or .ppt)": "Save or export it as PDF first.",
    "an RTF document": "Save or export it as PDF first.",
}


def _extension(filename: str) -> str:
    return PurePath(filename).suffix.lower() if filename else ""


def _binary_kind(head: bytes, filename: str = "") -> str | None:
    """What a binary file looks like ("a PNG image"), or None if it is not a known binary format."""
    for prefix, description in _SIGNATURES:
        if not head.startswith(prefix):
            continue
        if prefix == b"BM":
            if len(head) >= 14 and head[6:10] == b"\x00\x00\x00\x00":
                return "a BMP image"
            continue
        if prefix == b"BZh":
            if len(head) >= 10 and head[4:10] == b"1AY&SY":
                return "a bzip2-compressed file"
            continue
        if description == "a ZIP archive":
            by_ext = _ZIP_BY_EXTENSION.get(_extension(filename))
            if by_ext:
                return by_ext
            if b"word/" in head or b"[Content_Types].xml" in head:
                return "a Microsoft Office document (.docx, .xlsx or .pptx)"
            return description
        return description
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if head[4:8] == b"ftyp":
        return "an audio or video file (MP4/MOV)"
    return None


def _is_cut_prefix(head: bytes) -> bool:
    """Whether `head` looks like a buffer-sized prefix (512, 1024, 4096, ... bytes) rather than a whole file."""
    n = len(head)
    return n >= 512 and n & (n - 1) == 0


def _decode_text(head: bytes) -> str:
    """Decode as UTF-8 (BOM allowed). Raises RefusedError("not_supported") for NUL bytes, UTF-16/32 and
    invalid UTF-8. A character cut off at the very end is tolerated only when `head` is a buffer-sized
    prefix (see `_is_cut_prefix`); a short file ending in a stray byte is invalid.
    """
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise RefusedError("not_supported", "This file is UTF-32 text. Save it as UTF-8 and upload it again.")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise RefusedError("not_supported", "This file is UTF-16 text. Save it as UTF-8 and upload it again.")
    if b"\x00" in head:
        raise RefusedError(
            "not_supported",
            f"This file contains binary data (NUL bytes), so it is not a text document. {ACCEPTED}",
        )
    decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
    try:
        return decoder.decode(head, final=not _is_cut_prefix(head))
    except UnicodeDecodeError as exc:
        raise RefusedError(
            "not_supported",
            f"This file is not valid UTF-8 text (byte 0x{head[exc.start]:02x} at position {exc.start}), so it "
            "is either binary or saved in an older encoding such as Windows-1252. If it is text, save it as "
            f"UTF-8 and upload it again. {ACCEPTED}",
        ) from None


def describe(head: bytes, filename: str = "") -> str:
    """A short phrase for what `head` looks like: "a PDF", "a PNG image", "an HTML web page", ..."""
    if not head:
        return "an empty file"
    if PDF_MAGIC in head[:SNIFF_BYTES]:
        return "a PDF"
    binary = _binary_kind(head, filename)
    if binary:
        return binary
    try:
        text = _decode_text(head)
    except RefusedError:
        return "binary data"
    if _looks_like_html(text, filename):
        return "an HTML web page"
    if not text.strip():
        return "blank text"
    return "plain text"


def _looks_like_html(text: str, filename: str) -> bool:
    start = text.lstrip()[:2048].lower()
    if not start.startswith("<"):
        return False
    if any(marker in start for marker in _HTML_MARKERS):
        return True
    return _extension(filename) in HTML_EXTENSIONS  # a bare fragment such as "<p>...</p>" named .html


def _looks_like_markdown(text: str, filename: str) -> bool:
    if _extension(filename) in MARKDOWN_EXTENSIONS:
        return True
    stripped = text.lstrip("\r\n")
    if re.match(r"---[ \t]*\r?\n", stripped):  # YAML front matter
        return True
    return bool(_MD_HEADING.search(text))


def detect_kind(head: bytes, filename: str = "") -> str:
    """Return "pdf", "html", "markdown" or "text" for a file starting with `head`.

    Pass a power-of-two prefix of the file (e.g. `data[:4096]`) or all of it: a multi-byte character cut
    off at the end of such a prefix is not an encoding error. The kind is decided by content; `filename` only
    distinguishes Markdown from plain text and sharpens refusal messages. Raises RefusedError with
    reason "empty", "not_pdf" (named .pdf but is something else) or "not_supported".
    """
    if not head:
        raise RefusedError("empty", f"This file is empty (0 bytes). {ACCEPTED}")
    if PDF_MAGIC in head[:SNIFF_BYTES]:
        return "pdf"

    looks_like = describe(head, filename)
    if _extension(filename) == ".pdf":
        logger.info("refused %r: named .pdf but looks like %s", filename, looks_like)
        raise RefusedError(
            "not_pdf",
            f"This file is named .pdf but is not a PDF (its content starts like {looks_like}). "
            "Upload the actual PDF file.",
        )

    binary = _binary_kind(head, filename)
    if binary:
        hint = _CONVERT_HINT.get(binary)
        advice = f"{hint} {ACCEPTED}" if hint else ACCEPTED
        raise RefusedError("not_supported", f"This file looks like {binary}, which the bot can't read. {advice}")

    text = _decode_text(head)  # raises not_supported for NUL bytes / invalid UTF-8
    if not text.strip():
        raise RefusedError("empty", f"This file has no text in it (only blank space). {ACCEPTED}")
    if _looks_like_html(text, filename):
        return "html"
    if _looks_like_markdown(text, filename):
        return "markdown"
    return "text"
