"""Command line: `python -m bot [command]` (also the `union-ai-bot` console script).

With no command: the Discord bot if DISCORD_TOKEN is set, otherwise an interactive console that gives
the same answers a Discord member would get.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import sys
import time
from pathlib import Path

from .config import Settings
from .errors import UserError

log = logging.getLogger("bot")


def _setup_logging(level: str, quiet: bool = False) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("sentence_transformers", "transformers", "pypdf", "httpx", "urllib3", "faiss", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for noisy in ("pypdf", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _quiet_model_loading() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _open_service(settings: Settings, build_if_missing: bool = True):
    from .service import Service

    _quiet_model_loading()
    progress = _tqdm_progress() if build_if_missing else None
    return Service.open(settings, build_if_missing=build_if_missing, progress=progress)


def _tqdm_progress():
    """A tqdm bar for long builds (embedding stage), shown on stderr."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    bar = {"bar": None}

    def update(p):
        if p.stage == "embedding" and p.chunks_total:
            if bar["bar"] is None:
                bar["bar"] = tqdm(total=p.chunks_total, desc="embedding chunks", unit="chunk", file=sys.stderr,
                                  disable=not sys.stderr.isatty())
            bar["bar"].n = p.chunks_done
            bar["bar"].refresh()
        elif p.stage == "done" and bar["bar"] is not None:
            bar["bar"].close()

    return update


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bot", description=__doc__.split("\n\n")[0])
    p.add_argument("--index-dir", help="override INDEX_DIR")
    p.add_argument("--corpus-dir", help="override CORPUS_DIR")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO on stderr")
    sub = p.add_subparsers(dest="command")

    s = sub.add_parser("ingest", help="add files or folders (PDF, Markdown, HTML, text) to the index")
    s.add_argument("paths", nargs="+", type=Path)
    s.add_argument("--json", action="store_true", help="one JSON object per file")
    for key in ("title", "union", "agreement", "status", "url", "publisher", "date"):
        s.add_argument(f"--{key}", help=f"set the document's {key} (overrides front matter)")
    s.add_argument("--year", type=int, help="set the document's year, e.g. 2023 (overrides front matter)")

    s = sub.add_parser("rebuild", help="rebuild the whole index from CORPUS_DIR and the documents added since")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("documents", help="list indexed documents")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("remove", help="remove a document by id")
    s.add_argument("doc_id")

    s = sub.add_parser("ask", help="answer one question (or '-' to read one per line from stdin)")
    s.add_argument("question")
    s.add_argument("--json", action="store_true", help="print one JSON object per question")
    s.add_argument("--union", help="only cite documents of this union")
    s.add_argument("--mode", choices=("hybrid", "dense", "keyword", "rerank"), default="hybrid", help=argparse.SUPPRESS)

    s = sub.add_parser("eval", help="evaluate against a JSONL file of questions")
    s.add_argument("--qa", type=Path, required=True, action="append", help="JSONL question file (repeatable)")
    s.add_argument("--docs", type=Path, action="append", help="build a scratch index from this folder alone "
                   "(repeatable; no shipped corpus); questions naming a `doc` are scored on its citations only")
    s.add_argument("--pdf", action="store_true", help="with --docs: turn Markdown/text into PDFs first, "
                   "the way an organizer would upload them")
    s.add_argument("--compare", action="store_true", help="this engine vs the naive hybrid, dense only and "
                   "keyword only, in one run")
    s.add_argument("--json", action="store_true")
    s.add_argument("--failures", action="store_true", help="list the questions that missed")

    sub.add_parser("console", help="interactive console (the default without DISCORD_TOKEN)")
    sub.add_parser("serve", help="run the Discord bot (the default with DISCORD_TOKEN)")

    s = sub.add_parser("sync", help="register the slash commands with Discord (an explicit owner action)")
    s.add_argument("--guild", type=int, help="sync to one server (instant) instead of globally")

    sub.add_parser("health", help="exit 0 if the index opens (and, in bot mode, the gateway is connected)")
    sub.add_parser("status", help="index size, model, last build")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a bad option: argparse already printed the reason
        return int(exc.code or 0)
    try:
        settings = Settings.load()
        if args.index_dir:
            settings = settings.with_(index_dir=Path(args.index_dir))
        if args.corpus_dir:
            settings = settings.with_(corpus_dir=Path(args.corpus_dir))
        quiet = not args.verbose and args.command in ("ask", "eval", "console", None, "documents", "health", "status")
        _setup_logging(settings.log_level, quiet=quiet and not settings.discord_token)
        return _dispatch(args, settings)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.DatabaseError) as exc:  # disk full, permissions, a damaged file
        log.debug("command failed", exc_info=True)
        print(f"error: {exc.__class__.__name__}: {exc}. Nothing was half-written; if the index is damaged, "
              "rebuild it with: python -m bot rebuild", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args, settings: Settings) -> int:
    cmd = args.command
    if cmd is None:
        cmd = "serve" if settings.discord_token else "console"
    if cmd == "ingest":
        svc = _open_service(settings)
        meta = {k: getattr(args, k) for k in ("title", "union", "agreement", "year", "status", "url", "publisher", "date")
                if getattr(args, k)}
        def show(r):
            if args.json:
                print(json.dumps(r.to_json()), flush=True)
            else:
                extra = f" ({r.reason})" if r.reason else f" {r.doc_id}: {r.chunks} chunks" + (
                    f", {r.pages} pages" if r.pages else "")
                print(f"{r.status:9} {r.path}{extra}", flush=True)

        results = svc.ingest_paths(args.paths, meta=meta or None, on_result=show)
        bad = sum(r.status == "refused" for r in results)
        if not results:
            print("no files found (PDF, Markdown, HTML or text)", file=sys.stderr)
            return 1
        return 1 if bad == len(results) else 0
    if cmd == "rebuild":
        from .embedding import load_embedder
        from .service import Service

        _quiet_model_loading()
        # Don't open the current index first: a rebuild must also fix an index built with another
        # model or a damaged one.
        svc = Service(settings, load_embedder(settings.embedding_model))
        try:
            rep = svc.rebuild(_tqdm_progress())
        finally:
            svc.close()
        out = {"documents": rep.documents, "chunks": rep.chunks, "embedded": rep.embedded,
               "refused": [r.to_json() for r in rep.refused], "elapsed_s": rep.elapsed_s}
        print(json.dumps(out) if args.json else
              f"rebuilt {settings.index_dir}: {rep.documents} documents, {rep.chunks} chunks "
              f"({rep.embedded} newly embedded) in {rep.elapsed_s:.1f} s"
              + "".join(f"\n  refused {r.path}: {r.reason}" for r in rep.refused))
        return 0
    if cmd == "documents":
        svc = _open_service(settings)
        docs = svc.documents()
        if args.json:
            for d in docs:
                print(json.dumps(d.__dict__))
        else:
            for d in docs:
                mark = "superseded" if d.status == "superseded" else "current"
                print(f"{d.doc_id:50} {mark:10} {d.year or '':5} {d.chunks:4} chunks  {d.title}")
        return 0
    if cmd == "remove":
        svc = _open_service(settings)
        info = svc.remove(args.doc_id)
        print(f"removed {info.doc_id}: {info.title}")
        return 0
    if cmd == "ask":
        return _ask(args, settings)
    if cmd == "eval":
        return _eval(args, settings)
    if cmd == "console":
        return _console(settings)
    if cmd == "status":
        svc = _open_service(settings, build_if_missing=False)
        print(json.dumps(svc.status(), indent=2))
        return 0
    if cmd == "health":
        return _health(settings)
    if cmd == "serve":
        if not settings.discord_token:
            print("error: DISCORD_TOKEN is not set. Put DISCORD_TOKEN=... in .env (see .env.example), "
                  "or run without it for the console.", file=sys.stderr)
            return 2
        svc = _open_service(settings)
        from .discord_app.client import run_bot

        try:
            run_bot(settings, svc)
        except OSError as exc:  # aiohttp connection errors are OSErrors: DNS, refused, no route
            print(f"error: could not reach Discord ({exc.__class__.__name__}: {exc}). Check the network "
                  "connection; the bot reconnects by itself once it is connected.", file=sys.stderr)
            return 1
        finally:
            svc.close()
        return 0
    if cmd == "sync":
        if not settings.discord_token:
            print("error: DISCORD_TOKEN is not set; `sync` registers commands with Discord and needs it.",
                  file=sys.stderr)
            return 2
        import asyncio

        from .discord_app.client import sync_commands

        try:
            names = asyncio.run(sync_commands(settings, args.guild))
        except OSError as exc:
            print(f"error: could not reach Discord ({exc.__class__.__name__}: {exc}).", file=sys.stderr)
            return 1
        print("synced: " + ", ".join(names))
        return 0
    raise AssertionError(cmd)


def _ask(args, settings: Settings) -> int:
    from .render import render_text

    svc = _open_service(settings)
    questions = sys.stdin if args.question == "-" else [args.question]
    for n, line in enumerate(questions, start=1):
        q = line.strip()
        if args.question == "-" and not q:
            continue
        history: list[str] = []
        if args.question == "-" and q.startswith("{"):
            # one JSON object a line: {"question": ..., "history": [...]} (follow-ups in a thread)
            try:
                obj = json.loads(q)
                q, history = str(obj["question"]), [str(h) for h in obj.get("history") or []]
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                print(f"error: line {n} is not a question object ({exc.__class__.__name__}: {exc}); "
                      'expected {"question": "...", "history": ["..."]}', file=sys.stderr)
                continue
        ans = svc.ask(q, union=args.union, mode=args.mode, history=history)
        if args.json:
            print(json.dumps(ans.to_json()), flush=True)
        else:
            print(render_text(ans), flush=True)
    return 0


def _eval(args, settings: Settings) -> int:
    from .evaluation.run import ROWS, run, scratch_service
    from .evaluation.scoring import format_table, load_qa

    items = [x for f in args.qa for x in load_qa(f)]
    rows = ROWS if args.compare else ("engine",)

    def report(results):
        summaries = [r.summary() for r in results]
        if args.json:
            for s in summaries:
                print(json.dumps(s))
        else:
            where = ", ".join(str(d) for d in args.docs) if args.docs else str(settings.index_dir)
            print(f"{len(items)} questions from {', '.join(str(f) for f in args.qa)} over {where}"
                  + (" (as PDFs)" if args.docs and args.pdf else ""))
            print(format_table(summaries))
        if args.failures:
            for r in results:
                for f in r.failures:
                    print(f"[{r.mode}] " + json.dumps(f), file=sys.stderr)
                for f in r.off_page:
                    print(f"[{r.mode}] quote not on its page: " + json.dumps(f), file=sys.stderr)

    if args.docs:
        with scratch_service(settings, args.docs, as_pdf=args.pdf) as (svc, doc_ids):
            report(run(svc, items, rows, doc_ids=doc_ids))
    else:
        svc = _open_service(settings)
        report(run(svc, items, rows))
    return 0


BANNER = """Union AI-provisions assistant (console). Ask about AI terms in WGA, SAG-AFTRA, DGA, IATSE and
Animation Guild agreements and the laws on digital replicas. Answers cite their sources.
Type a question and press Enter; an empty line or Ctrl-D quits. Not legal advice."""


def _console(settings: Settings) -> int:
    from .render import render_text

    print("Loading the model and index…", file=sys.stderr, flush=True)
    t0 = time.time()
    svc = _open_service(settings)
    st = svc.status()
    print(f"Ready in {time.time() - t0:.1f} s: {st['documents']} documents, {st['chunks']} passages.",
          file=sys.stderr)
    print(BANNER)
    history: list[str] = []
    while True:
        try:
            line = input("\nask> ")
        except EOFError:
            print()
            break
        q = line.strip()
        if not q or q.lower() in ("quit", "exit", ":q"):
            break
        if q.lower() in ("new", "/new", "reset"):
            history.clear()
            print("(new conversation)")
            continue
        ans = svc.ask(q, history=history[-2:])
        history.append(q)
        print()
        print(render_text(ans))
    return 0


def _health(settings: Settings) -> int:
    """0 = healthy. Checks the index opens with the configured model; in bot mode, also that the
    gateway heartbeat file written by the bot is fresh."""
    from .index import IndexLayout, open_generation, require_current

    try:
        layout = IndexLayout(settings.index_dir)
        target = require_current(layout)
        # Derived files (FAISS, manifest) a crash left stale are repaired here, as any open does.
        gen = open_generation(target, settings.embedding_model)
        docs, chunks = gen.store.counts()
        gen.close()
    except UserError as exc:
        print(f"unhealthy: {exc}")
        return 1
    except (OSError, ValueError) as exc:
        print(f"unhealthy: the index at {settings.index_dir} is unreadable ({exc}). Rebuild it with: python -m bot rebuild")
        return 1
    if settings.discord_token:
        hb = settings.index_dir / "heartbeat.json"
        try:
            beat = json.loads(hb.read_text())
        except (OSError, ValueError):
            print("unhealthy: no gateway heartbeat yet")
            return 1
        age = time.time() - float(beat.get("last_event", 0))
        if not beat.get("gateway_connected") or age > 120:
            print(f"unhealthy: gateway not connected (last event {age:.0f} s ago)")
            return 1
    print(f"healthy: {docs} documents, {chunks} chunks")
    return 0
