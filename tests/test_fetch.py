"""bot.fetch: http(s) only, size/time limits, private addresses refused on every hop."""
import asyncio
import ipaddress

import pytest
from aiohttp import web

from bot import fetch
from bot.errors import RefusedError
from bot.fetch import address_allowed, fetch_url


@pytest.fixture
async def site():
    """A small local web server with the pages the tests need."""
    app = web.Application()

    async def doc(request):
        return web.Response(body=b"<html><head><title>T</title></head><body>hello</body></html>", content_type="text/html")

    async def pdf(request):
        return web.Response(body=b"%PDF-1.4 fake", content_type="application/pdf",
                            headers={"Content-Disposition": 'attachment; filename="../../etc/Contract 2023.pdf"'})

    async def big_declared(request):
        return web.Response(body=b"x" * 5000, content_type="text/plain")

    async def big_streamed(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(100):
            await resp.write(b"y" * 1000)
        await resp.write_eof()
        return resp

    release = asyncio.Event()

    async def slow(request):
        try:
            await asyncio.wait_for(release.wait(), 5)
        except asyncio.TimeoutError:
            pass
        return web.Response(text="late")

    async def redirect(request):
        n = int(request.match_info["n"])
        raise web.HTTPFound(f"/redirect/{n - 1}" if n > 0 else "/doc")

    async def to_other_host(request):
        raise web.HTTPFound(f"http://127.0.0.2:{request.url.port}/doc")

    async def missing(request):
        return web.Response(status=404, text="nope")

    app.router.add_get("/doc", doc)
    app.router.add_get("/files/c.pdf", pdf)
    app.router.add_get("/big", big_declared)
    app.router.add_get("/stream", big_streamed)
    app.router.add_get("/slow", slow)
    app.router.add_get("/redirect/{n}", redirect)
    app.router.add_get("/elsewhere", to_other_host)
    app.router.add_get("/missing", missing)
    runner = web.AppRunner(app)
    await runner.setup()
    s = web.TCPSite(runner, "127.0.0.1", 0)
    await s.start()
    port = s._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    release.set()
    await runner.cleanup()


async def test_fetch_ok_with_private_allowed(site):
    got = await fetch_url(f"{site}/doc", max_bytes=10_000, timeout_s=5, allow_private=True)
    assert got.data.startswith(b"<html>")
    assert got.content_type == "text/html"
    assert got.filename == "doc.html"
    assert got.url == f"{site}/doc"


async def test_filename_from_content_disposition_is_sanitised(site):
    got = await fetch_url(f"{site}/files/c.pdf", max_bytes=10_000, timeout_s=5, allow_private=True)
    assert got.filename == "Contract_2023.pdf"


async def test_loopback_refused_by_default(site):
    with pytest.raises(RefusedError) as e:
        await fetch_url(f"{site}/doc", max_bytes=10_000, timeout_s=5)
    assert e.value.reason == "blocked_address"
    assert "private" in str(e.value)


@pytest.mark.parametrize("url", ["http://localhost/x", "http://[::1]/x", "http://10.0.0.1/x", "http://169.254.169.254/latest",
                                 "http://100.64.0.1/", "http://224.0.0.1/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/"])
async def test_private_and_special_addresses_refused(url):
    with pytest.raises(RefusedError) as e:
        await fetch_url(url, max_bytes=1000, timeout_s=2)
    assert e.value.reason == "blocked_address"


@pytest.mark.parametrize("url", ["ftp://example.org/a.pdf", "file:///etc/passwd", "javascript:alert(1)", "not a url", "http://user:pw@example.org/"])
async def test_non_http_refused(url):
    with pytest.raises(RefusedError) as e:
        await fetch_url(url, max_bytes=1000, timeout_s=2)
    assert e.value.reason == "fetch_failed"


async def test_redirect_to_blocked_address_is_rechecked(site, monkeypatch):
    # 127.0.0.1 counts as "public" for this test; 127.0.0.2 stays blocked. The first hop is
    # fetched, the redirect target is refused before any connection is made.
    monkeypatch.setattr(fetch, "_allowed", lambda ip: str(ip) == "127.0.0.1")
    with pytest.raises(RefusedError) as e:
        await fetch_url(f"{site}/elsewhere", max_bytes=10_000, timeout_s=5)
    assert e.value.reason == "blocked_address"
    assert "127.0.0.2" in str(e.value)


async def test_redirects_followed_up_to_five(site):
    got = await fetch_url(f"{site}/redirect/4", max_bytes=10_000, timeout_s=5, allow_private=True)
    assert got.url.endswith("/doc")
    with pytest.raises(RefusedError) as e:
        await fetch_url(f"{site}/redirect/5", max_bytes=10_000, timeout_s=5, allow_private=True)
    assert e.value.reason == "fetch_failed" and "redirected more than 5" in str(e.value)


async def test_declared_size_over_limit(site):
    with pytest.raises(RefusedError) as e:
        await fetch_url(f"{site}/big", max_bytes=1000, timeout_s=5, allow_private=True)
    assert e.value.reason == "too_large"


async def test_streamed_size_over_limit_stops(site):
    with pytest.raises(RefusedError) as e:
        await fetch_url(f"{site}/stream", max_bytes=10_000, timeout_s=5, allow_private=True)
    assert e.value.reason == "too_large"


async def test_timeout(site):
    with pytest.raises(RefusedError) as e:
        await fetch_url(f"{site}/slow", max_bytes=10_000, timeout_s=0.5, allow_private=True)
    assert e.value.reason == "fetch_failed" and "0.5 seconds" in str(e.value)


async def test_http_error_status(site):
    with pytest.raises(RefusedError) as e:
        await fetch_url(f"{site}/missing", max_bytes=10_000, timeout_s=5, allow_private=True)
    assert e.value.reason == "fetch_failed" and "404" in str(e.value)


def test_address_classification():
    ok = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"]
    bad = ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.1.1", "100.64.0.1", "224.0.0.1",
           "0.0.0.0", "240.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "2002:0a00:0001::1", "ff02::1"]
    assert all(address_allowed(ipaddress.ip_address(a)) for a in ok)
    assert not any(address_allowed(ipaddress.ip_address(a)) for a in bad)
