"""Generate PDFs for the ingestion tests: well-formed ones with fpdf2, hostile ones byte by byte.

Every helper returns the file's bytes; tests write them into `tmp_path`. Nothing here touches the
network or the real corpus, and every generator is deterministic (fixed creation dates, no random data)
so a failing test can be reproduced exactly.
"""
from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Sequence
from datetime import datetime, timezone

from fpdf import FPDF
from fpdf.enums import XPos, YPos

FIXED_DATE = datetime(2023, 10, 9, 12, 0, 0, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- well-formed (fpdf2)

class _Doc(FPDF):
    """FPDF with optional running header/footer templates; `{page}` is replaced by the page number."""

    def __init__(self, header_text: str | None = None, footer_text: str | None = None):
        super().__init__(format="Letter")
        self._header_text = header_text
        self._footer_text = footer_text
        self.set_auto_page_break(auto=False)
        self.set_creation_date(FIXED_DATE)

    def header(self) -> None:  # called by fpdf2 at the start of every page
        if self._header_text:
            self.set_font("Helvetica", size=9)
            self.set_xy(self.l_margin, 8)
            self.cell(0, 5, self._header_text.format(page=self.page_no()))

    def footer(self) -> None:  # called by fpdf2 at the end of every page
        if self._footer_text:
            self.set_font("Helvetica", size=9)
            self.set_xy(self.l_margin, self.h - 12)
            self.cell(0, 5, self._footer_text.format(page=self.page_no()), align="C")


def text_pdf(
    pages: Sequence[str | Sequence[str]],
    *,
    header: str | None = None,
    footer: str | None = None,
    title: str | None = None,
    author: str | None = None,
    subject: str | None = None,
    owner_password: str | None = None,
    user_password: str | None = None,
) -> bytes:
    """A text PDF: one entry per page, each a string (split on newlines) or a list of lines.

    Every line is written as its own cell, so line breaks in the PDF are exactly the ones given here
    (that is what the hyphenation tests rely on). `owner_password` turns on RC4 encryption (the only
    method fpdf2 supports without the `cryptography` package); `user_password=None` or "" means the
    file opens without a password.
    """
    pdf = _Doc(header, footer)
    if title is not None:
        pdf.set_title(title)
    if author is not None:
        pdf.set_author(author)
    if subject is not None:
        pdf.set_subject(subject)
    if owner_password is not None:
        pdf.set_encryption(owner_password=owner_password, user_password=user_password)
    for page in pages:
        lines = page.split("\n") if isinstance(page, str) else list(page)
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.set_xy(pdf.l_margin, 25)
        for line in lines:
            pdf.cell(0, 6, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


_OPENINGS = (
    "Minimum compensation for writers",
    "Credits and separation of rights",
    "Residuals for reuse on streaming services",
    "Pension and health contributions",
    "Grievance and arbitration procedure",
    "Creative rights and consultation",
    "Working conditions on set",
)
_CLOSINGS = (
    "The parties agree to meet again before the term ends.",
    "Nothing herein limits any other provision of this Agreement.",
    "Payment is due within thirty days of delivery.",
    "Disputes go to the joint standing committee first.",
)


def marker_text(page: int) -> str:
    """The body text of page `page` (1-based) of `contract_pdf`: contains `marker-page-<page>`.

    The first and last lines differ from page to page (as real contract pages do), so only the running
    header/footer repeats.
    """
    if page == 3:
        return "\n".join([
            "ARTICLE 72 GENERATIVE ARTIFICIAL INTELLIGENCE",
            "Section 72.A Definitions",
            "The Company shall disclose any use of generative AI material. marker-page-3",
            _CLOSINGS[page % len(_CLOSINGS)],
        ])
    return "\n".join([
        _OPENINGS[page % len(_OPENINGS)],
        f"Terms of this page are identified by marker-page-{page} for the tests.",
        _CLOSINGS[page % len(_CLOSINGS)],
    ])


def contract_pdf(n_pages: int = 6, *, header: str | None = "WGA MOA 2023 - Page {page}",
                 footer: str | None = "Writers Guild of America {page}") -> bytes:
    """A small 'contract': page N says marker-page-N, page 3 holds ARTICLE 72; running header/footer."""
    return text_pdf(
        [marker_text(p) for p in range(1, n_pages + 1)],
        header=header,
        footer=footer,
        title="2023 WGA Theatrical and Television Basic Agreement",
        author="Writers Guild of America West",
        subject="Memorandum of Agreement",
    )


def image_only_pdf(n_pages: int = 2) -> bytes:
    """A 'scanned' PDF: every page is a picture (of lines that look like text), no text layer."""
    from PIL import Image, ImageDraw

    pdf = _Doc()
    for p in range(n_pages):
        img = Image.new("L", (850, 1100), 255)
        draw = ImageDraw.Draw(img)
        for row in range(20):
            y = 80 + row * 45
            draw.rectangle([60, y, 60 + 600 + (row * 37 + p * 11) % 180, y + 14], fill=30)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        buf.seek(0)
        pdf.add_page()
        pdf.image(buf, x=0, y=0, w=pdf.w, h=pdf.h)
    return bytes(pdf.output())


# --------------------------------------------------------------------------- raw PDF writer

def raw_pdf(objects: Sequence[bytes], *, root: int = 1, version: str = "1.7",
            trailer_extra: bytes = b"") -> bytes:
    """Assemble a PDF from object bodies (object i+1 is objects[i]) with a correct xref table."""
    out = bytearray(b"%PDF-" + version.encode() + b"\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, root, trailer_extra, xref_at)
    return bytes(out)


def stream(data: bytes, extra: bytes = b"") -> bytes:
    """An uncompressed stream object body."""
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def simple_raw_pdf(page_texts: Sequence[str]) -> bytes:
    """A hand-written PDF with one Helvetica text line per page (no fpdf2 involved)."""
    n = len(page_texts)
    # 1 catalog, 2 pages, 3 font, then (page, content) pairs
    kids = b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(n))
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n),
            _FONT]
    for i, text in enumerate(page_texts):
        content = b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text.encode("latin-1")
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                    b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i))
        objs.append(stream(content))
    return raw_pdf(objs)


def zero_pages_pdf() -> bytes:
    return raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])


def kids_cycle_pdf() -> bytes:
    """The page tree loops: Pages(2) -> Pages(3) -> Pages(2) ..., plus one real page."""
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
        b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 6 0 R >> >> "
        b"/Contents 5 0 R >>",
        stream(b"BT /F1 12 Tf 72 720 Td (loop) Tj ET"),
        _FONT,
    ])


def reference_chain_pdf(depth: int = 100_000) -> bytes:
    """/Pages is reached through `depth` indirect objects that each just point at the next one."""
    first_link = 3
    last = first_link + depth  # the real /Pages object
    objs = [b"<< /Type /Catalog /Pages %d 0 R >>" % first_link, _FONT]
    objs += [b"%d 0 R" % (n + 1) for n in range(first_link, last)]
    objs.append(b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % (last + 1))
    objs.append(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
                b"/Resources << /Font << /F1 2 0 R >> >> /Contents %d 0 R >>" % (last, last + 2))
    objs.append(stream(b"BT /F1 12 Tf 72 720 Td (chain) Tj ET"))
    return raw_pdf(objs)


def reference_loop_pdf() -> bytes:
    """/Pages points at object 3, which points at 4, which points back at 3."""
    return raw_pdf([b"<< /Type /Catalog /Pages 3 0 R >>", _FONT, b"4 0 R", b"3 0 R"])


def deep_nesting_pdf(depth: int = 100_000) -> bytes:
    """A page dictionary holding an array nested `depth` levels deep ([[[[...]]]])."""
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Deep " + b"[" * depth + b"]" * depth
        + b" /Contents 4 0 R >>",
        stream(b"BT /F1 12 Tf 72 720 Td (deep) Tj ET"),
    ])


def deflate_bomb(inflated_bytes: int, chunk: int = 1 << 20) -> bytes:
    """A zlib stream of `inflated_bytes` spaces, built in O(chunk) time.

    After a full flush the compressor's dictionary is reset, so every further chunk of identical input
    compresses to identical bytes: compress two chunks, repeat the second block, then close the stream
    with an empty final block and the Adler-32 of the whole (computed chunk by chunk). A 2 GiB bomb is
    about 2 MB and takes well under a second to build.
    """
    if inflated_bytes % chunk:
        raise ValueError("inflated_bytes must be a multiple of chunk")
    n = inflated_bytes // chunk
    data = b" " * chunk
    comp = zlib.compressobj(9)
    first = comp.compress(data) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(data) + comp.flush(zlib.Z_FULL_FLUSH)
    if n == 1:
        body = first
    else:
        body = first + block * (n - 1)
    adler = 1
    for _ in range(n):
        adler = zlib.adler32(data, adler)
    final_empty_fixed_block = b"\x03\x00"
    return body + final_empty_fixed_block + struct.pack(">I", adler)


def flate_bomb_pdf(inflated_bytes: int = 2 << 30) -> bytes:
    """One page whose FlateDecode content stream inflates to `inflated_bytes` (default 2 GiB)."""
    bomb = deflate_bomb(inflated_bytes)
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        stream(bomb, b"/Filter /FlateDecode "),
        _FONT,
    ])


def slow_pdf(pages: int = 3000, ops_per_page: int = 20_000) -> bytes:
    """A small file that is expensive to read: many pages share one content stream full of text ops."""
    ops = b"BT /F1 12 Tf 72 720 Td " + b"(slow) Tj 0 -1 Td " * ops_per_page + b"ET"
    content = zlib.compress(ops, 9)
    page_refs = b" ".join(b"%d 0 R" % (5 + i) for i in range(pages))
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (page_refs, pages),
        _FONT,
        stream(content, b"/Filter /FlateDecode "),
    ]
    objs += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
             b"/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"] * pages
    return raw_pdf(objs)


# --------------------------------------------------------------------------- not PDFs at all

def png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def docx_like_bytes() -> bytes:
    """A ZIP laid out like a Word document (enough for magic-byte sniffing)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


def truncated(data: bytes, fraction: float = 0.5) -> bytes:
    return data[: int(len(data) * fraction)]


def garbage_after_header(size: int = 64 * 1024) -> bytes:
    """`%PDF-1.7` followed by deterministic pseudo-random bytes (an LCG, so no two runs differ)."""
    out = bytearray(b"%PDF-1.7\n")
    x = 12345
    while len(out) < size:
        x = (1103515245 * x + 12345) & 0x7FFFFFFF
        out.append((x >> 16) & 0xFF)
    return bytes(out)



def aes_owner_only_pdf(text: str = "restricted but readable") -> bytes:
    """A PDF encrypted with AES-128 (V4, AESV2) whose user password is empty ("owner password only").

    Such files open without a prompt in any viewer, but pypdf needs the `cryptography` package to decrypt
    AES. The /O and /U entries are computed with pypdf's own (pure MD5/RC4) routines so the empty password
    verifies; the content stream is stored unencrypted, which only matters once an AES provider exists.
    """
    from pypdf._encryption import AlgV4

    rev, key_bits, perms = 4, 128, -3904
    file_id = b"0123456789abcdef"
    o_value = AlgV4.compute_O_value(AlgV4.compute_O_value_key(b"owner", rev, key_bits), b"", rev)
    key = AlgV4.compute_key(b"", rev, key_bits, o_value, perms & 0xFFFFFFFF, file_id, True)
    u_value = AlgV4.compute_U_value(key, rev, file_id)
    encrypt = (b"<< /Filter /Standard /V 4 /R 4 /Length 128 /P %d "
               b"/CF << /StdCF << /AuthEvent /DocOpen /CFM /AESV2 /Length 16 >> >> /StmF /StdCF /StrF /StdCF "
               b"/O <%s> /U <%s> >>" % (perms, o_value.hex().encode(), u_value.hex().encode()))
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        stream(b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text.encode("latin-1")),
        _FONT,
        encrypt,
    ], trailer_extra=b"/Encrypt 6 0 R /ID [<%s> <%s>] " % (file_id.hex().encode(), file_id.hex().encode()))


def text_flood_pdf(chars: int = 1_200_000) -> bytes:
    """One page whose (compressed, tiny) content stream shows `chars` characters of text."""
    ops = b"BT /F1 1 Tf 0 0 Td (" + b"a" * chars + b") Tj ET"
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        stream(zlib.compress(ops, 9), b"/Filter /FlateDecode "),
        _FONT,
    ])
