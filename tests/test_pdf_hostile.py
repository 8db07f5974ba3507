"""Hostile and broken uploads: each ends in a specific RefusedError, quickly, and the caller survives.

Limits are small (10 s, 512 MB) so the suite stays fast; every call is timed against timeout + margin.
"""
from __future__ import annotations

import os
import time
import zlib
from pathlib import Path

import pytest

import pdfgen
from bot.errors import RefusedError
from bot.ingest import pdf as pdf_module
from bot.ingest.pdf import extract_pdf
from bot.ingest.sniff import detect_kind

TIMEOUT_S = 10.0
MARGIN_S = 5.0  # interpreter start-up and a loaded CI machine
LIMITS = dict(max_bytes=25 * 1024 * 1024, max_pages=100, timeout_s=TIMEOUT_S, memory_mb=512)


def refuse(tmp_path: Path, name: str, data: bytes, **overrides) -> RefusedError:
    """Write `data`, extract it, and return the RefusedError (failing if it was accepted or was slow)."""
    path = tmp_path / name
    path.write_bytes(data)
    limits = {**LIMITS, **overrides}
    started = time.monotonic()
    with pytest.raises(RefusedError) as err:
        extract_pdf(path, **limits)
    elapsed = time.monotonic() - started
    assert elapsed < limits["timeout_s"] + MARGIN_S, f"took {elapsed:.1f}s"
    assert err.value.message and err.value.message == str(err.value)
    return err.value


# --------------------------------------------------------------------------- broken files

def test_truncated_pdf(tmp_path: Path):
    err = refuse(tmp_path, "half.pdf", pdfgen.truncated(pdfgen.contract_pdf(6)))
    assert err.reason == "corrupt"
    assert "incomplete" in err.message and "cut off" in err.message


def test_pdf_cut_just_before_its_end_marker_is_refused_as_incomplete(tmp_path: Path):
    data = pdfgen.contract_pdf(6)
    assert data.rstrip().endswith(b"%%EOF")
    err = refuse(tmp_path, "no-eof.pdf", data.rstrip()[: -len(b"%%EOF")])
    assert err.reason == "corrupt" and "incomplete" in err.message


def test_junk_after_the_end_marker_is_tolerated(tmp_path: Path):
    # Some servers and mail gateways append bytes after %%EOF; every reader ignores them.
    path = tmp_path / "trailing-junk.pdf"
    path.write_bytes(pdfgen.simple_raw_pdf(["one", "two"]) + b"<html>appended</html>\n" * 200)
    assert extract_pdf(path, **LIMITS).pages == ["one", "two"]


def test_garbage_after_pdf_header(tmp_path: Path):
    err = refuse(tmp_path, "garbage.pdf", pdfgen.garbage_after_header())
    assert err.reason == "corrupt"
    assert "not PDF data" in err.message


def test_pdf_with_zero_pages(tmp_path: Path):
    err = refuse(tmp_path, "zero.pdf", pdfgen.zero_pages_pdf())
    assert (err.reason, err.message) == ("empty", "The PDF has no pages.")


def test_page_tree_with_a_kids_cycle(tmp_path: Path):
    err = refuse(tmp_path, "cycle.pdf", pdfgen.kids_cycle_pdf())
    assert err.reason == "corrupt"
    assert "loops back on itself" in err.message


def test_indirect_reference_chain_100k_long(tmp_path: Path):
    err = refuse(tmp_path, "chain.pdf", pdfgen.reference_chain_pdf(100_000))
    assert err.reason == "corrupt"
    assert err.message.startswith("This PDF is damaged and can't be read")


def test_indirect_reference_loop(tmp_path: Path):
    err = refuse(tmp_path, "loop.pdf", pdfgen.reference_loop_pdf())
    assert err.reason == "corrupt"


def test_arrays_nested_100k_deep(tmp_path: Path):
    err = refuse(tmp_path, "deep.pdf", pdfgen.deep_nesting_pdf(100_000))
    assert err.reason == "corrupt"


# --------------------------------------------------------------------------- resource exhaustion

def test_deflate_bomb_generator_inflates_to_the_promised_size():
    bomb = pdfgen.deflate_bomb(8 << 20)
    inflater = zlib.decompressobj()
    out = inflater.decompress(bomb)
    assert inflater.eof and not inflater.unused_data  # well-formed, checksum included
    assert len(out) == 8 << 20 and out.count(b" ") == len(out)
    assert len(bomb) < (8 << 20) / 500


@pytest.fixture(scope="module")
def bomb_pdf(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.pdf"
    path.write_bytes(pdfgen.flate_bomb_pdf(2 << 30))  # 2 GiB of content in about 2 MB
    return path


def test_decompression_bomb_is_stopped(bomb_pdf: Path):
    assert bomb_pdf.stat().st_size < 4 << 20
    started = time.monotonic()
    try:
        result = extract_pdf(bomb_pdf, **LIMITS)
    except RefusedError as err:
        assert err.reason in {"resource_limit", "timeout"}
        assert "Page 1" in err.message or "512 MB" in err.message
    else:  # acceptable only if it stayed within limits, which it did if we got here at all
        assert result.page_count == 1
    assert time.monotonic() - started < TIMEOUT_S + MARGIN_S


def test_decompression_bomb_under_a_tight_memory_limit(bomb_pdf: Path):
    # 100 MB is less than pypdf's own 75 MB inflate cap plus the interpreter, so the address-space
    # limit of the child trips first: the child dies of MemoryError, the caller gets a refusal.
    with pytest.raises(RefusedError) as err:
        extract_pdf(bomb_pdf, **{**LIMITS, "memory_mb": 100})
    assert err.value.reason == "resource_limit"
    assert "needed more than 100 MB" in err.value.message


def test_reader_that_cannot_even_start_within_the_memory_limit(tmp_path: Path):
    err = refuse(tmp_path, "ok.pdf", pdfgen.simple_raw_pdf(["fine"]), memory_mb=16)
    assert err.reason == "resource_limit"
    assert "needed more than 16 MB" in err.message


def test_page_with_an_absurd_amount_of_text(tmp_path: Path):
    data = pdfgen.text_flood_pdf(1_200_000)
    assert len(data) < 10_000
    err = refuse(tmp_path, "flood.pdf", data)
    assert err.reason == "resource_limit"
    assert "far more text than a real document" in err.message


def test_slow_pdf_is_killed_at_the_time_limit(tmp_path: Path):
    # 200 pages sharing one content stream of 20k text operations: minutes of work in a ~100 KB file.
    data = pdfgen.slow_pdf(pages=200)
    assert len(data) < 200_000
    started = time.monotonic()
    err = refuse(tmp_path, "slow.pdf", data, timeout_s=2.0, max_pages=500)
    assert err.reason == "timeout"
    assert "longer than 2 seconds" in err.message
    assert time.monotonic() - started >= 2.0


def test_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path, monkeypatch):
    def no_worker(*args, **kwargs):
        raise AssertionError("the PDF must not be parsed")

    monkeypatch.setattr(pdf_module, "_run_worker", no_worker)
    data = pdfgen.contract_pdf(3)
    err = refuse(tmp_path, "big.pdf", data, max_bytes=len(data) - 1)
    assert err.reason == "too_large"
    assert "the limit is" in err.message
    path = tmp_path / "huge.pdf"
    with open(path, "wb") as fh:  # sparse: 31.2 MB on paper, nothing on disk
        fh.write(b"%PDF-1.7\n")
        fh.truncate(int(31.2 * 1024 * 1024))
    with pytest.raises(RefusedError) as big:
        extract_pdf(path, **{**LIMITS, "max_bytes": 25 * 1024 * 1024})
    assert big.value.reason == "too_large"
    assert big.value.message.startswith("This PDF is 31.2 MB; the limit is 25 MB.")


def test_more_pages_than_the_limit(tmp_path: Path):
    err = refuse(tmp_path, "long.pdf", pdfgen.simple_raw_pdf([f"page {n}" for n in range(1, 13)]), max_pages=10)
    assert err.reason == "too_many_pages"
    assert err.message.startswith("This PDF has 12 pages; the limit is 10.")


# --------------------------------------------------------------------------- not PDFs at all

@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (pdfgen.png_bytes(), "a PNG image"),
        (pdfgen.docx_like_bytes(), "a Microsoft Office document (.docx, .xlsx or .pptx)"),
        (b"<!DOCTYPE html><html><body>Download will start shortly</body></html>", "an HTML web page"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 64, "a Linux program (ELF executable)"),
    ],
)
def test_file_named_pdf_that_is_something_else(tmp_path: Path, data: bytes, looks_like: str):
    expected = f"This file is named .pdf but is not a PDF (its content starts like {looks_like})."
    err = refuse(tmp_path, "contract.pdf", data)
    assert err.reason == "not_pdf"
    assert err.message.startswith(expected)
    with pytest.raises(RefusedError) as sniffed:
        detect_kind(data[:4096], "contract.pdf")
    assert sniffed.value.reason == "not_pdf"
    assert sniffed.value.message.startswith(expected)


def test_empty_file(tmp_path: Path):
    err = refuse(tmp_path, "empty.pdf", b"")
    assert err.reason == "empty"
    with pytest.raises(RefusedError) as sniffed:
        detect_kind(b"", "empty.pdf")
    assert sniffed.value.reason == "empty"


@pytest.mark.parametrize(
    ("data", "name", "fragment"),
    [
        (pdfgen.docx_like_bytes(), "MOA.docx",
         "a Word document (.docx), which the bot can't read. Save or export it as PDF"),
        (pdfgen.docx_like_bytes(), "bundle.zip", "a Microsoft Office document"),
        (b"PK\x03\x04" + b"\x14\x00" * 20, "bundle.zip", "a ZIP archive"),
        (pdfgen.png_bytes(), "scan.png", "a PNG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "photo.jpg", "a JPEG image"),
        (b"GIF89a\x01\x00\x01\x00", "x.gif", "a GIF image"),
        (b"MZ\x90\x00\x03\x00\x00\x00", "setup.exe", "a Windows program"),
        (b"\x7fELF\x02\x01\x01\x00", "a.out", "a Linux program"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 8, "notes.txt.gz", "a gzip-compressed file"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8, "old.doc", "an old-style Microsoft Office file"),
        (b"{\\rtf1\\ansi Contract}", "contract.rtf", "an RTF document"),
    ],
)
def test_known_binary_formats_are_not_supported(data: bytes, name: str, fragment: str):
    with pytest.raises(RefusedError) as err:
        detect_kind(data, name)
    assert err.value.reason == "not_supported"
    assert f"This file looks like {fragment}" in err.value.message
    assert "PDF, Markdown (.md), HTML or plain-text" in err.value.message


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"Article 72\x00\x00binary", "binary data (NUL bytes)"),
        ("Article 72 caf\u00e9".encode("cp1252"), "not valid UTF-8 text (byte 0xe9 at position 14)"),
        ("Article 72".encode("utf-16"), "UTF-16 text"),
    ],
)
def test_text_that_is_not_utf8_is_not_supported(data: bytes, fragment: str):
    with pytest.raises(RefusedError) as err:
        detect_kind(data, "notes.txt")
    assert err.value.reason == "not_supported"
    assert fragment in err.value.message


# --------------------------------------------------------------------------- the child dies

@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "resource_limit"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "resource_limit"),
        ("import sys; sys.stdin.read(); print('not json'); sys.exit(3)", "corrupt"),
        ("raise MemoryError", "resource_limit"),
        ("import sys, json; sys.stdin.read(); print(json.dumps({'status': 'weird'}))", "corrupt"),
        ("import time; time.sleep(60)", "timeout"),
    ],
    ids=["segfault", "killed", "garbage-output", "memory-error", "bad-answer", "hang"],
)
def test_a_worker_that_dies_never_takes_down_the_caller(tmp_path: Path, monkeypatch, script: str, reason: str):
    worker = tmp_path / "worker.py"
    worker.write_text(script + "\n")
    monkeypatch.setattr(pdf_module, "_WORKER", worker)
    pdf = tmp_path / "ok.pdf"
    pdf.write_bytes(pdfgen.simple_raw_pdf(["fine"]))
    started = time.monotonic()
    with pytest.raises(RefusedError) as err:
        extract_pdf(pdf, **{**LIMITS, "timeout_s": 1.5})
    assert err.value.reason == reason
    assert time.monotonic() - started < 1.5 + MARGIN_S
    assert err.value.message


def test_no_worker_process_is_left_behind(tmp_path: Path):
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc")

    def children() -> set[int]:
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == os.getpid():
                    found.add(int(entry.name))
        return found

    before = children()
    refuse(tmp_path, "slow.pdf", pdfgen.slow_pdf(pages=50), timeout_s=1.0)
    assert children() - before == set()


def test_stray_byte_at_the_end_of_a_short_file_is_invalid_utf8():
    with pytest.raises(RefusedError) as err:
        detect_kind("Article 72 caf\u00e9".encode()[:-1], "notes.txt")
    assert err.value.reason == "not_supported"
