"""A small fake OpenAI-compatible chat server for tests (aiohttp on 127.0.0.1, port 0, background thread).

    with FakeLLM() as llm:
        llm.push(Reply("An answer [1]."), Reply(status=500), Reply(delay=3.0, content="late [1]."))
        settings = Settings(llm_base_url=llm.base_url, ...)
        ...
        llm.requests[0]["json"]["messages"]

Each POST /v1/chat/completions takes the next scripted Reply (a 500 "no scripted reply" when the script
is empty) and records the request's headers and JSON body. GET /v1/models and /health answer too.
"""
from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass

from aiohttp import web


@dataclass
class Reply:
    content: str | None = None  # the assistant message's content (None -> JSON null)
    status: int = 200
    body: bytes | None = None  # raw response body: overrides `content` (e.g. malformed JSON)
    delay: float = 0.0  # seconds to wait before answering
    finish_reason: str = "stop"
    trickle: float = 0.0  # > 0: send the body one byte at a time, this many seconds apart


def chat_json(content: str | None, finish_reason: str = "stop", model: str = "fake") -> dict:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


class FakeLLM:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[dict] = []
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # -- script ------------------------------------------------------------------------------------
    def push(self, *replies: Reply | str) -> None:
        for r in replies:
            self.replies.append(Reply(content=r) if isinstance(r, str) else r)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> "FakeLLM":
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fakellm", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
            self._loop = None

    def __enter__(self) -> "FakeLLM":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, shutdown_timeout=0.2)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    # -- handlers ----------------------------------------------------------------------------------
    async def _chat(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.requests.append({"path": request.path, "headers": dict(request.headers), "json": body})
        reply = self.replies.popleft() if self.replies else Reply(status=500, body=b'{"error": "no scripted reply"}')
        if reply.delay:
            await asyncio.sleep(reply.delay)
        body = reply.body
        if body is None:
            body = json.dumps(chat_json(reply.content, reply.finish_reason)).encode()
        if reply.trickle:
            resp = web.StreamResponse(status=reply.status, headers={"Content-Type": "application/json"})
            resp.content_length = len(body)
            await resp.prepare(request)
            for i in range(len(body)):
                await resp.write(body[i:i + 1])
                await asyncio.sleep(reply.trickle)
            await resp.write_eof()
            return resp
        return web.Response(status=reply.status, body=body, content_type="application/json")

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})
