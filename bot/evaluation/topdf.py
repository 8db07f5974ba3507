"""Turn a Markdown or text file into a PDF the way an organizer would: the page as a reader sees it
(markup dropped, links shown as their text), wrapped at the page width, with page numbers.

Needs fpdf2 (a test/evaluation dependency, not a runtime one).
"""
from __future__ import annotations

import re
from pathlib import Path

_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf")
_LATIN1 = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                         "\u2014": "--", "\u2011": "-", "\u2010": "-", "\u2026": "...", "\u00a0": " ",
                         "\u2022": "*", "\u2192": "->"})


def readable_lines(markdown: str) -> list[str]:
    """What a browser shows of a Markdown page, line by line: headings, paragraphs and list items
    without their markup."""
    out = []
    for line in markdown.splitlines():
        s = line.rstrip()
        if re.fullmatch(r"\s*(?:-{3,}|\*{3,}|_{3,})\s*", s):
            out.append("")
            continue
        s = re.sub(r"^\s{0,3}#{1,6}\s+", "", s)  # heading markup
        s = re.sub(r"^\s*>\s?", "", s)  # block quote
        s = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", s)  # images
        s = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", s)  # links -> their text
        s = re.sub(r"(\*\*|__)(.+?)\1", r"\2", s)
        s = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", s)
        s = s.replace("`", "")
        out.append(s)
    return out


def to_pdf(text: str, *, title: str | None = None, markdown: bool = True) -> bytes:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF(format="Letter")
    pdf.set_auto_page_break(auto=True, margin=18)
    font = next((f for f in _FONTS if Path(f).exists()), None)
    if font:
        pdf.add_font("Body", "", font)
        family = "Body"
    else:
        family = "Helvetica"
    if title:
        pdf.set_title(title)

    def clean(s: str) -> str:
        return s if font else s.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")

    pdf.footer = lambda: (pdf.set_y(-12), pdf.set_font(family, size=8),
                          pdf.cell(0, 5, f"Page {pdf.page_no()}", align="C"))
    pdf.add_page()
    pdf.set_font(family, size=10)
    lines = readable_lines(text) if markdown else text.splitlines()
    for line in lines:
        indent = len(line) - len(line.lstrip())
        body = clean(line.strip())
        if not body:
            pdf.ln(3)
            continue
        pdf.set_x(pdf.l_margin + min(indent, 12) * 1.5)
        pdf.multi_cell(0, 5, body, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def file_to_pdf(path: Path, out_dir: Path) -> Path:
    """Write `path` (Markdown or text) as a PDF into `out_dir`; returns the PDF's path. PDFs are copied."""
    path = Path(path)
    target = out_dir / (path.stem + ".pdf")
    if path.suffix.lower() == ".pdf":
        target.write_bytes(path.read_bytes())
        return target
    raw = path.read_text(encoding="utf-8")
    # no PDF title metadata: an organizer's "print to PDF" rarely sets one, so the ingester must find it
    target.write_bytes(to_pdf(raw, markdown=path.suffix.lower() in (".md", ".markdown")))
    return target
