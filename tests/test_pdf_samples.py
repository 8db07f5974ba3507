"""Every real-world sample PDF (py-pdf/sample-files, flattened into <shared>/pdf-samples) is either
extracted with exactly the page count recorded in files.json, or refused with a specific reason.

The samples are read with the production default limits (`Settings()`), in parallel, once per module.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.config import Settings
from bot.errors import RefusedError
from bot.ingest.pdf import PdfExtract, extract_pdf


def _samples_dir() -> Path:
    shared = os.environ.get("SHARED_DIR")
    base = Path(shared) if shared else Path(__file__).resolve().parents[1].parent / "shared"
    return base / "pdf-samples"


SAMPLES = _samples_dir()
if not (SAMPLES / "files.json").is_file():
    pytest.skip(f"real-world PDF samples not found at {SAMPLES} (set SHARED_DIR)", allow_module_level=True)

pytestmark = pytest.mark.slow  # ~30 files, one of them a 117-page book: 10-20 s in all

# files.json is keyed by the original "folder/file.pdf"; the flattened name is "folder_file.pdf".
EXPECTED = {
    entry["path"].replace("/", "_", 1): entry
    for entry in json.loads((SAMPLES / "files.json").read_text(encoding="utf-8"))["data"]
}
FILES = sorted(p.name for p in SAMPLES.glob("*.pdf"))

# Pages made only of pictures (ImageMagick / PIL output): refused as scanned, unless pypdf finds a
# little text on some page, in which case they must come back with every page.
IMAGE_ONLY = {
    "007-imagemagick-images_imagemagick-ASCII85Decode.pdf",
    "007-imagemagick-images_imagemagick-CCITTFaxDecode.pdf",
    "007-imagemagick-images_imagemagick-images.pdf",
    "007-imagemagick-images_imagemagick-lzw.pdf",
    "019-grayscale-image_grayscale-image.pdf",
    "023-cmyk-image_cmyk-image.pdf",
}
# Files that no reader can take as they are, with the refusal they must get.
KNOWN_REFUSALS = {
    "005-libreoffice-writer-password_libreoffice-writer-password.pdf": "encrypted",
    # The catalog's /Pages points at object 172, which is not in the file: no page tree, so no page
    # numbers we could trust (pypdf: "Invalid object in /Pages").
    "017-unreadable-meta-data_unreadablemetadata.pdf": "corrupt",
}
SPECIFIC_REASONS = {"encrypted", "scanned", "corrupt", "empty", "too_many_pages", "too_large", "timeout",
                    "resource_limit"}


def _read(name: str) -> PdfExtract | RefusedError | BaseException:
    s = Settings()
    try:
        return extract_pdf(SAMPLES / name, max_bytes=s.max_upload_bytes, max_pages=s.max_pdf_pages,
                           timeout_s=s.pdf_timeout_s, memory_mb=s.pdf_memory_mb)
    except BaseException as exc:  # recorded; the tests below say which kinds are acceptable
        return exc


@pytest.fixture(scope="module")
def outcomes() -> dict[str, PdfExtract | BaseException]:
    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 1))) as pool:
        return dict(zip(FILES, pool.map(_read, FILES)))


def test_every_sample_is_listed_in_files_json():
    assert FILES, f"no PDFs in {SAMPLES}"
    assert [f for f in FILES if f not in EXPECTED] == []


@pytest.mark.parametrize("name", FILES)
def test_sample_is_extracted_with_exact_pages_or_refused_specifically(name: str, outcomes):
    outcome = outcomes[name]
    expected = EXPECTED[name]
    if isinstance(outcome, PdfExtract):
        assert name not in KNOWN_REFUSALS, f"expected a {KNOWN_REFUSALS.get(name)} refusal"
        assert outcome.page_count == expected["pages"]
        assert len(outcome.pages) == expected["pages"]
        assert any(any(ch.isalnum() for ch in page) for page in outcome.pages)
        assert all(isinstance(v, str) for v in outcome.meta.values())
        return
    assert isinstance(outcome, RefusedError), f"{name} raised {outcome!r}"
    assert outcome.reason in SPECIFIC_REASONS
    assert len(outcome.message) > 20
    if name in KNOWN_REFUSALS:
        assert outcome.reason == KNOWN_REFUSALS[name], outcome.message
    elif name in IMAGE_ONLY:
        assert outcome.reason == "scanned", outcome.message
    else:
        pytest.fail(f"{name} has a text layer but was refused: {outcome.reason}: {outcome.message}")


def test_the_encrypted_sample_is_refused_as_encrypted(outcomes):
    encrypted = [name for name in FILES if EXPECTED[name].get("encrypted")]
    assert encrypted, "files.json lists no encrypted sample"
    for name in encrypted:
        outcome = outcomes[name]
        assert isinstance(outcome, RefusedError) and outcome.reason == "encrypted", name
        assert outcome.message == "This PDF is password-protected. Upload an unprotected copy."


def test_page_numbers_printed_by_latex_are_not_in_the_text(outcomes):
    # pdflatex puts a bare page number at the foot of each page; cleaning must drop it, nothing else.
    book = outcomes["004-pdflatex-4-pages_pdflatex-4-pages.pdf"]
    assert isinstance(book, PdfExtract)
    for number, text in enumerate(book.pages, start=1):
        assert text.split("\n")[-1].strip() != str(number)
        assert len(text) > 1000


def test_multi_page_book_keeps_its_page_order(outcomes):
    book = outcomes["009-pdflatex-geotopo_GeoTopo-komprimiert.pdf"]
    assert isinstance(book, PdfExtract)
    assert book.page_count == 117
    assert "Geometrie und Topologie" in book.pages[0]
    assert book.meta.get("title") == "Geometrie und Topologie"
    # Running heads like "7 1.2. METRISCHE RÄUME" (page number + section) are gone from the page tops.
    assert not any(page.split("\n")[0].endswith("METRISCHE RÄUME") for page in book.pages)


def test_summary(outcomes, capsys):
    refused = Counter(o.reason for o in outcomes.values() if isinstance(o, RefusedError))
    ingested = sum(1 for o in outcomes.values() if isinstance(o, PdfExtract))
    crashed = [name for name, o in outcomes.items() if not isinstance(o, (PdfExtract, RefusedError))]
    with capsys.disabled():
        by_reason = ", ".join(f"{reason} {count}" for reason, count in sorted(refused.items()))
        print(f"\nPDF samples: tried {len(outcomes)}, ingested {ingested}, refused {sum(refused.values())}"
              f" ({by_reason})")
    assert crashed == []
    assert ingested + sum(refused.values()) == len(FILES)
    assert ingested >= len(FILES) - len(IMAGE_ONLY) - len(KNOWN_REFUSALS)
