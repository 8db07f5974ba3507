"""What the benchmarks share within one run: the work dir, the loaded model, sources, built indexes."""
from __future__ import annotations

import sys
import time
from functools import cached_property
from pathlib import Path

from .common import CORPUS


class Context:
    def __init__(self, workdir: Path, quick: bool = False, repeats: int | None = None, real_vectors: bool = False,
                 scale_max: int | None = None, verbose: bool = True):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.quick = quick
        self.repeats = repeats
        self.real_vectors = real_vectors
        self.scale_max = scale_max
        self.verbose = verbose
        self.t0 = time.perf_counter()
        from .synth import CORE_FILES
        from .common import code_hash

        # Hashed once per run: the core may be edited while a run is going; an index is built at most
        # once per run, and rebuilt by a later run if the core's on-disk code changed.
        self.code = code_hash(*CORE_FILES)

    def log(self, msg: str) -> None:
        if self.verbose:
            print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    def rounds(self, full: int, quick: int = 2) -> int:
        return self.repeats or (quick if self.quick else full)

    @cached_property
    def embedder(self):
        from bot.embedding import SentenceTransformerEmbedder

        self.log("loading the embedding model (torch)")
        return SentenceTransformerEmbedder()

    @cached_property
    def corpus_dir(self) -> Path:
        if self.quick:
            from .synth import quick_corpus

            return quick_corpus(self.workdir, 6)
        return CORPUS

    @cached_property
    def sources(self):
        from .synth import load_sources

        return load_sources(self.corpus_dir)

    @cached_property
    def all_sources(self):
        """Sentences of the whole shipped corpus (PDF text), even in --quick runs."""
        from .synth import load_sources

        return load_sources(CORPUS)

    @cached_property
    def pool(self):
        from .synth import SentencePool, measure_approximation

        self.log(f"embedding the sentence pool of {len(self.sources)} documents")
        pool = SentencePool(self.sources, self.embedder, self.workdir / "cache")
        if pool.approx_cos is None:
            pool.approx_cos = measure_approximation(self.sources, pool, self.embedder, n=16 if self.quick else 64)
            self.log(f"approximate vectors: median cosine to the real embedding {pool.approx_cos:.3f}")
        pool.save()
        return pool

    def index(self, n_chunks: int) -> dict:
        """A built index of about n_chunks (0 = the corpus alone), cached in the work dir."""
        from .synth import build_index

        tag = "real" if self.real_vectors else "approx"
        root = self.workdir / f"index-{'q' if self.quick else 'f'}-{n_chunks}-{tag}"
        t = time.perf_counter()
        info = build_index(root, n_chunks, self.embedder, self.corpus_dir, self.sources, self.pool,
                           real_vectors=self.real_vectors, log=self.log, code=self.code)
        if time.perf_counter() - t > 1:
            self.log(f"built index of {info['chunks']} chunks in {time.perf_counter() - t:.1f}s")
        return info

    def runs_dir(self, name: str) -> Path:
        p = self.workdir / "runs" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def size_label(n: int) -> str:
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)
