"""Synthetic data grown from the shipped corpus: bigger indexes and realistic PDFs.

* Sentences of corpus/*.md (parsed by the bot's own Markdown parser and sentence splitter) are shuffled
  and recombined, section by section, into new documents with the source document's metadata.
* Those documents are chunked by the bot's own `chunk_document` and written through the real
  `Store.put_document` + `finalize_generation` path on top of an index of the real corpus built by
  `Service.rebuild`: the on-disk index is exactly what the bot would have written.
* Vectors: by default a synthetic chunk's vector is the token-weighted mean of the real embeddings of its
  sentences and of its "title - section" head, plus Gaussian noise sized to the measured gap between such
  a mean and the real embedding of a chunk (so the vectors are as spread out as real ones). Embedding
  100k chunks for real takes ~20 min on 2 cores; `--real-vectors` does it (cached in the work dir).
* PDFs: fpdf2 pages of headings and paragraphs made of corpus sentences, with a running header/footer.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .common import CORPUS, code_hash

CORE_FILES = ("bot/store.py", "bot/index.py", "bot/vectors.py", "bot/chunking.py", "bot/service.py",
              "bot/ingest/parse.py", "bot/models.py")


@dataclass
class Source:
    path: Path
    meta: object  # bot.models.DocumentMeta
    sections: list[tuple[str, list[str]]] = field(default_factory=list)

    @property
    def n_sentences(self) -> int:
        return sum(len(s) for _, s in self.sections)


def load_sources(corpus_dir: Path = CORPUS, files: list[Path] | None = None) -> list[Source]:
    from bot.chunking import split_sentences
    from bot.ingest.parse import parse_markdown

    out = []
    for path in files or sorted(Path(corpus_dir).glob("*.md")):
        doc = parse_markdown(path.read_text(encoding="utf-8"))
        by_section: dict[str, list[str]] = {}
        for sec in doc.sections:
            body = doc.text[sec.char_start:sec.char_end]
            sents = [body[s:e].strip() for s, e in split_sentences(body)]
            by_section.setdefault(sec.section, []).extend(x for x in sents if len(x) > 20)
        src = Source(path, doc.meta, [(k, v) for k, v in by_section.items() if v])
        if src.sections:
            out.append(src)
    return out


def quick_corpus(workdir: Path, n_docs: int = 6) -> Path:
    """A small corpus (the n smallest shipped documents) for --quick runs."""
    files = sorted(CORPUS.glob("*.md"), key=lambda p: p.stat().st_size)[:n_docs]
    dest = workdir / f"corpus-quick-{n_docs}"
    if not dest.exists():
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in files:
            shutil.copy2(f, tmp / f.name)
        tmp.rename(dest)
    return dest


# -- sentence embeddings (for approximate vectors) ---------------------------------------------------

class SentencePool:
    """Real embeddings of every sentence and every "title - section" head of the sources."""

    def __init__(self, sources: list[Source], embedder, cache_dir: Path):
        from bot.service import embed_text

        self.sources = sources
        self.sent_id: dict[str, int] = {}
        self.head_id: dict[tuple[str, str], int] = {}
        sents, heads = [], []
        for src in sources:
            for section, ss in src.sections:
                key = (src.meta.title, section)
                if key not in self.head_id:
                    self.head_id[key] = len(heads)
                    heads.append(embed_text(src.meta.title, section, "").rstrip("\n"))
                for s in ss:
                    if s not in self.sent_id:
                        self.sent_id[s] = len(sents)
                        sents.append(s)
        self.sentences, self.heads = sents, heads
        digest = hashlib.sha256(json.dumps([embedder.name, sents, heads]).encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"sentence-pool-{digest}.npz"
        if path.exists():
            data = np.load(path)
            self.sent_vecs, self.head_vecs = data["sents"], data["heads"]
            self.sent_tokens, self.head_tokens = data["sent_tokens"], data["head_tokens"]
            self.approx_cos = float(data["approx_cos"]) if "approx_cos" in data else None
        else:
            self.sent_vecs = embedder.encode(sents, batch_size=64)
            self.head_vecs = embedder.encode(heads, batch_size=64)
            self.sent_tokens = np.array(embedder.count_tokens(sents), dtype=np.float32)
            self.head_tokens = np.array(embedder.count_tokens(heads), dtype=np.float32)
            self.approx_cos = None
        self._path = path

    def save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        extra = {"approx_cos": np.float32(self.approx_cos)} if self.approx_cos is not None else {}
        tmp = self._path.with_suffix(".tmp.npz")
        np.savez(tmp, sents=self.sent_vecs, heads=self.head_vecs, sent_tokens=self.sent_tokens,
                 head_tokens=self.head_tokens, **extra)
        tmp.replace(self._path)

    def mixture(self, head: int, sent_ids: list[int], weights: list[float] | None = None) -> np.ndarray:
        w = self.sent_tokens[sent_ids] if weights is None else np.asarray(weights, dtype=np.float32)
        v = self.head_tokens[head] * self.head_vecs[head] + (w[:, None] * self.sent_vecs[sent_ids]).sum(axis=0)
        return (v / (np.linalg.norm(v) or 1.0)).astype(np.float32)


def add_noise(vecs: np.ndarray, cos: float | None, rng: np.random.Generator) -> np.ndarray:
    """Perturb unit vectors so that cos(noisy, clean) is about `cos` (isotropic Gaussian noise)."""
    if not cos or cos >= 0.9999:
        return vecs
    d = vecs.shape[1]
    sigma = np.sqrt(max(1.0 / cos ** 2 - 1.0, 0.0) / d)
    out = vecs + rng.normal(0.0, sigma, size=vecs.shape).astype(np.float32)
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


# -- synthetic documents ------------------------------------------------------------------------------

class MemoCounter:
    """count_tokens with a cache (synthetic documents reuse the same sentences over and over)."""

    def __init__(self, fn):
        self.fn, self.cache = fn, {}

    def __call__(self, texts):
        texts = list(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            for t, n in zip(missing, self.fn(missing)):
                self.cache[t] = n
        return [self.cache[t] for t in texts]


@dataclass
class SynthDoc:
    parsed: object  # ParsedDocument
    source: Source
    spans: list[tuple[int, int, int, int]]  # (start, end, sentence id, head id) in parsed.text
    index: int


def synth_document(sources: list[Source], pool: SentencePool | None, rng: random.Random, index: int,
                   target_sentences: int = 300) -> SynthDoc:
    """One new document: sections of a source document with their sentences shuffled (and a few
    sentences borrowed from the source's other sections), repeated until ~target_sentences."""
    from bot.models import ParsedDocument, Section

    weights = [s.n_sentences for s in sources]
    src = rng.choices(sources, weights=weights)[0]
    meta = type(src.meta)(**{**src.meta.__dict__, "title": f"{src.meta.title} (variant {index})",
                             "sources": []})
    all_sents = [s for _, ss in src.sections for s in ss]
    parts, sections, spans = [], [], []
    pos, n = 0, 0
    while n < target_sentences:
        name, ss = rng.choice(src.sections)
        picked = list(ss)
        rng.shuffle(picked)
        picked = picked[: max(2, int(len(picked) * rng.uniform(0.6, 1.0)))]
        picked += rng.sample(all_sents, k=min(len(all_sents), max(1, len(picked) // 4)))
        rng.shuffle(picked)
        start = pos
        for j, s in enumerate(picked):
            if j:
                parts.append(" ")
                pos += 1
            sid = pool.sent_id.get(s, -1) if pool else -1
            hid = pool.head_id.get((src.meta.title, name), 0) if pool else 0
            spans.append((pos, pos + len(s), sid, hid))
            parts.append(s)
            pos += len(s)
        sections.append(Section(text="".join(parts)[start:], section=name, page_start=None, page_end=None,
                                char_start=start, char_end=pos))
        parts.append("\n\n")
        pos += 2
        n += len(picked)
    text = "".join(parts)
    for sec in sections:
        sec.text = text[sec.char_start:sec.char_end]
    parsed = ParsedDocument(meta=meta, text=text, sections=sections, pages=None, kind="markdown")
    return SynthDoc(parsed, src, spans, index)


def chunk_vectors(doc: SynthDoc, chunks, pool: SentencePool) -> np.ndarray:
    """Approximate vectors: token-weighted mean of the chunk's sentence vectors and its head vector."""
    starts = [s[0] for s in doc.spans]
    out = np.zeros((len(chunks), pool.sent_vecs.shape[1]), dtype=np.float32)
    for k, c in enumerate(chunks):
        i = max(0, bisect.bisect_right(starts, c.char_start) - 1)
        ids, ws, head = [], [], 0
        while i < len(doc.spans) and doc.spans[i][0] < c.char_end:
            s, e, sid, hid = doc.spans[i]
            overlap = min(e, c.char_end) - max(s, c.char_start)
            if overlap > 0 and sid >= 0:
                ids.append(sid)
                ws.append(pool.sent_tokens[sid] * overlap / max(e - s, 1))
                head = hid
            i += 1
        if not ids:  # cannot happen with the bot's splitter, but never leave a zero vector
            ids, ws = [0], [1.0]
        out[k] = pool.mixture(head, ids, ws)
    return out


def measure_approximation(sources, pool: SentencePool, embedder, n: int = 48, seed: int = 7) -> float:
    """Median cosine between the approximate vector of a synthetic chunk and its real embedding."""
    from bot.chunking import chunk_document
    from bot.service import embed_text

    rng = random.Random(seed)
    counter = MemoCounter(embedder.count_tokens)
    texts, approx = [], []
    k = 0
    while len(texts) < n:
        doc = synth_document(sources, pool, rng, 10_000_000 + k, target_sentences=60)
        k += 1
        chunks = chunk_document(doc.parsed, "probe", counter, 180, 40)
        vecs = chunk_vectors(doc, chunks, pool)
        for c, v in list(zip(chunks, vecs))[:4]:
            texts.append(embed_text(doc.parsed.meta.title, c.section, c.text))
            approx.append(v)
    real = embedder.encode(texts[:n], batch_size=32)
    return float(np.median((real * np.stack(approx[:n])).sum(axis=1)))


def approx_vector_stream(sources, pool: SentencePool, n: int, seed: int, noise_cos: float | None,
                         batch: int = 20_000):
    """n approximate chunk vectors without building documents (for the FAISS-only scale benchmark)."""
    rng = np.random.default_rng(seed)
    groups = []  # (head id, sentence ids of that section, sentence ids of the whole document)
    for src in sources:
        doc_ids = [pool.sent_id[s] for _, ss in src.sections for s in ss]
        for name, ss in src.sections:
            groups.append((pool.head_id[(src.meta.title, name)], [pool.sent_id[s] for s in ss], doc_ids))
    gw = np.array([len(g[1]) for g in groups], dtype=np.float64)
    gw /= gw.sum()
    made = 0
    while made < n:
        m = min(batch, n - made)
        out = np.zeros((m, pool.sent_vecs.shape[1]), dtype=np.float32)
        picks = rng.choice(len(groups), size=m, p=gw)
        for k, g in enumerate(picks):
            head, sec, whole = groups[g]
            budget, ids, tokens = 180.0, [], 0.0
            order = rng.permutation(len(sec))
            for j in order:
                sid = sec[j] if rng.random() > 0.2 else whole[rng.integers(len(whole))]
                t = pool.sent_tokens[sid]
                if ids and tokens + t > budget:
                    break
                ids.append(sid)
                tokens += t
            out[k] = pool.mixture(head, ids)
        yield add_noise(out, noise_cos, rng)
        made += m


# -- bulk index builds ----------------------------------------------------------------------------------

def build_index(root: Path, n_chunks: int, embedder, corpus_dir: Path, sources, pool: SentencePool, *,
                seed: int = 0, real_vectors: bool = False, log=print, code: str | None = None) -> dict:
    """An index of (about) n_chunks: the corpus through `Service.rebuild`, then synthetic documents
    through `Store.put_document` and `finalize_generation`. Cached in `root` (keyed by the core's code)."""
    from bot.chunking import chunk_document
    from bot.config import Settings
    from bot.index import finalize_generation, now_iso, open_generation, sha256_bytes, text_hash
    from bot.service import Service, embed_text

    key = {"n": n_chunks, "seed": seed, "real": real_vectors, "code": code or code_hash(*CORE_FILES),
           "corpus": hashlib.sha256("".join(sorted(str(s.path) for s in sources)).encode()).hexdigest()[:10],
           "model": embedder.name, "noise": pool.approx_cos}
    ready = root / "READY.json"
    if ready.exists():
        info = json.loads(ready.read_text())
        if info.get("key") == key:
            return info
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    settings = Settings(index_dir=root / "index", corpus_dir=Path(corpus_dir))
    svc = Service(settings, embedder)
    svc.rebuild()
    svc.close()
    gen = open_generation(svc.layout.current_target(), embedder.name)
    gen.store.conn.execute("PRAGMA synchronous=OFF")
    have = gen.store.counts()[1]
    corpus_chunks = have
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    counter = MemoCounter(embedder.count_tokens)
    k = 0
    pending = []  # (doc, chunks) waiting for real embeddings

    def flush_real():
        texts = [embed_text(d.parsed.meta.title, c.section, c.text) for d, cs in pending for c in cs]
        vecs = embedder.encode(texts, batch_size=64)
        off = 0
        for d, cs in pending:
            write(d, cs, vecs[off:off + len(cs)])
            off += len(cs)
        pending.clear()

    def write(doc, chunks, vecs):
        title = doc.parsed.meta.title
        gen.store.put_document(
            doc_id=f"synthetic-{doc.index}", source_key=f"synthetic:{doc.index}", origin="upload",
            source_path=str(root / "synthetic" / f"{doc.index}.md"),
            sha256=sha256_bytes(doc.parsed.text.encode()), kind="markdown", meta=doc.parsed.meta, meta_override={},
            pages=None, chunks=chunks, vectors=vecs,
            text_hashes=[text_hash(embed_text(title, c.section, c.text)) for c in chunks], added_at=now_iso())

    while have < n_chunks:
        doc = synth_document(sources, pool, rng, k, target_sentences=rng.randint(150, 450))
        k += 1
        chunks = chunk_document(doc.parsed, f"synthetic-{doc.index}", counter, settings.chunk_tokens,
                                settings.chunk_overlap)
        chunks = chunks[: n_chunks - have]
        if not chunks:
            continue
        have += len(chunks)
        if real_vectors:
            pending.append((doc, chunks))
            if sum(len(c) for _, c in pending) >= 2048:
                flush_real()
        else:
            write(doc, chunks, add_noise(chunk_vectors(doc, chunks, pool), pool.approx_cos, nrng))
        if k % 200 == 0:
            log(f"  building {n_chunks}: {have} chunks")
    if pending:
        flush_real()
    finalize_generation(gen)
    docs, chunks = gen.store.counts()
    kind = gen.vectors.kind
    gen.close()
    info = {"key": key, "index_dir": str(root / "index"), "documents": docs, "chunks": chunks,
            "corpus_chunks": corpus_chunks, "vector_index": kind}
    ready.write_text(json.dumps(info))
    return info


def copy_index(info: dict, dest: Path) -> Path:
    """A private copy of a built index (for benchmarks that write to it)."""
    src = Path(info["index_dir"])
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest, symlinks=True)
    return dest


# -- PDFs ------------------------------------------------------------------------------------------------

_ASCII = {"\u2014": "-", "\u2013": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
          "\u2026": "...", "\u2022": "-", "\u00a0": " ", "\u2011": "-", "\u2212": "-", "\u00ad": ""}


def _latin1(text: str) -> str:
    for a, b in _ASCII.items():
        text = text.replace(a, b)
    return text.encode("latin-1", "replace").decode("latin-1")


def make_pdf(path: Path, sources: list[Source], pages: int, seed: int, title: str | None = None) -> Path:
    """A text PDF of exactly `pages` pages: numbered articles with paragraphs of corpus sentences."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    rng = random.Random(seed)
    src = rng.choice(sources)
    title = title or f"{src.meta.title} - synthetic agreement {seed}"

    class Doc(FPDF):
        def header(self):
            self.set_font("Helvetica", size=8)
            self.set_xy(self.l_margin, 8)
            self.cell(0, 4, _latin1(f"{title[:80]}"))
            self.set_xy(self.l_margin, 18)

        def footer(self):
            self.set_font("Helvetica", size=8)
            self.set_xy(self.l_margin, self.h - 12)
            self.cell(0, 4, f"Page {self.page_no()}", align="C")
            self.set_x(self.l_margin)

    pdf = Doc(format="Letter")
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_title(_latin1(title))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.multi_cell(0, 7, _latin1(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    article = 0

    def fits(text: str, line_h: float, extra: float = 0.0) -> bool:
        """False if writing `text` now would start page pages+1."""
        if pdf.page_no() < pages:
            return True
        lines = pdf.multi_cell(0, line_h, text, dry_run=True, output="LINES")
        return pdf.get_y() + len(lines) * line_h + extra <= pdf.h - pdf.b_margin

    while True:
        src = rng.choice(sources) if rng.random() < 0.3 else src
        name, ss = rng.choice(src.sections)
        article += 1
        heading = _latin1(f"ARTICLE {article}. {name.split(' > ')[-1].upper()}")
        pdf.set_font("Helvetica", "B", 11)
        if not fits(heading, 6, extra=12):
            break
        pdf.multi_cell(0, 6, heading, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("Helvetica", size=10)
        sents = list(ss)
        rng.shuffle(sents)
        full = False
        for p in range(0, len(sents), 4):
            para = _latin1(" ".join(sents[p:p + 4]))
            if not fits(para, 5):
                full = True
                break
            pdf.multi_cell(0, 5, para, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(2)
        if full:
            break
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(pdf.output()))
    return path


def pdf_set(workdir: Path, sources, count: int, pages: int, seed: int) -> list[Path]:
    out = []
    for i in range(count):
        p = workdir / "pdfs" / f"synthetic-{pages}p-{seed + i}.pdf"
        if not p.exists():
            make_pdf(p, sources, pages, seed + i)
        out.append(p)
    return out


def sanitize_name(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
