"""Render an Answer as plain text (console, CLI). Discord has its own renderer in bot/discord_app."""
from __future__ import annotations

from .models import Answer, Citation


def source_line(c: Citation) -> str:
    bits = [c.title]
    if c.section:
        bits.append(f"\u00a7 {c.section}")
    if c.pages_label():
        bits.append(c.pages_label())
    if c.status == "superseded":
        bits.append("superseded")
    return " \u2014 ".join(bits)


def render_text(ans: Answer, width_quote: int = 240) -> str:
    lines = [ans.text.replace("**", "")]
    if ans.citations:
        lines.append("")
        lines.append("Sources:")
        for c in ans.citations:
            lines.append(f"  [{c.n}] {source_line(c)}")
            quote = c.quote if len(c.quote) <= width_quote else c.quote[: width_quote].rsplit(" ", 1)[0] + " \u2026"
            lines.append(f"      \u201c{quote}\u201d")
            if c.url:
                lines.append(f"      {c.url}")
    lines.append("")
    lines.append(ans.disclaimer)
    return "\n".join(lines)
