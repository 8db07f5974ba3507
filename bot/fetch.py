"""Download one document from a link an organizer gave us, safely. Pure core: no Discord import.

Rules (each refusal is a `RefusedError` whose message can be shown to the organizer):
- http and https only; no credentials in the link;
- the host must resolve to public addresses only (no private, loopback, link-local, multicast,
  reserved, shared or unspecified address) unless `allow_private` — checked before every hop,
  redirects are followed by hand (at most 5) and checked the same way, and the connection itself
  goes through a resolver that applies the same rule, so a DNS answer that changes between the
  check and the connect (rebinding) is refused too;
- at most `max_bytes`: a larger Content-Length is refused at once, and the body is streamed and
  abandoned as soon as it passes the limit;
- at most `timeout_s` for the whole download, redirects included.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from dataclasses import dataclass
from email.message import Message
from typing import Callable
from urllib.parse import unquote

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from .errors import RefusedError

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
_REDIRECT_CODES = {301, 302, 303, 307, 308}
_CHUNK = 64 * 1024
USER_AGENT = "union-ai-bot/0.1 (+document fetcher)"


@dataclass(frozen=True)
class Fetched:
    data: bytes
    url: str  # the final URL, after redirects
    filename: str
    content_type: str


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_allowed(ip: IPAddress) -> bool:
    """True if `ip` is a public unicast address we may connect to."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return address_allowed(mapped)
        if ip.teredo is not None:
            return False
    if (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    ):
        return False
    return ip.is_global  # also excludes shared address space (100.64/10) and the like


# Indirection so tests can mark test addresses as "public" or "private".
_allowed: Callable[[IPAddress], bool] = address_allowed


class _BlockedAddress(OSError):
    pass


class _GuardedResolver(AbstractResolver):
    """Resolver used for the actual connection: refuses hosts that resolve to blocked addresses."""

    def __init__(self, allow_private: bool):
        self._inner = ThreadedResolver()
        self._allow_private = allow_private
        self.blocked: str | None = None

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not self._allow_private:
            for r in results:
                if not _allowed(ipaddress.ip_address(r["host"])):
                    self.blocked = host
                    raise _BlockedAddress(f"{host} resolves to a blocked address")
        return results

    async def close(self) -> None:
        await self._inner.close()


async def _check_host(host: str, port: int, allow_private: bool) -> None:
    if allow_private:
        return
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        if host.lower() in {"localhost", "localhost.localdomain"} or host.lower().endswith(".localhost"):
            raise RefusedError("blocked_address", f"I can't fetch from {host}: it is a local address.")
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise RefusedError("fetch_failed", f"I couldn't find the site {host} ({exc}).") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for ip in addresses:
        if not _allowed(ip):
            raise RefusedError(
                "blocked_address",
                f"I can't fetch from {host}: it points to a private or reserved network address.",
            )


def _validate_url(raw: str) -> yarl.URL:
    try:
        url = yarl.URL(raw.strip())
    except (ValueError, TypeError):
        raise RefusedError("fetch_failed", "That doesn't look like a web link.") from None
    if url.scheme not in ("http", "https"):
        raise RefusedError("fetch_failed", "Only http:// and https:// links can be fetched.")
    if not url.host:
        raise RefusedError("fetch_failed", "That link has no host name.")
    if url.user or url.password:
        raise RefusedError("fetch_failed", "Links with a user name or password are not accepted.")
    return url


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _filename(url: yarl.URL, headers, content_type: str) -> str:
    name = ""
    disposition = headers.get("Content-Disposition", "")
    if disposition:
        msg = Message()
        msg["content-disposition"] = disposition
        name = msg.get_filename() or ""
    if not name:
        name = unquote(url.path.rsplit("/", 1)[-1])
    name = _SAFE_NAME.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip("._")[:120]
    if not name:
        name = _SAFE_NAME.sub("_", url.host or "download")
    if "." not in name:
        ext = {
            "text/html": ".html",
            "application/pdf": ".pdf",
            "text/markdown": ".md",
            "text/plain": ".txt",
        }.get(content_type, "")
        name += ext
    return name


async def fetch_url(url: str, *, max_bytes: int, timeout_s: float, allow_private: bool = False) -> Fetched:
    """Download `url` within the limits above; see the module docstring."""
    current = _validate_url(url)
    resolver = _GuardedResolver(allow_private)
    connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False, limit=2)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
    try:
        async with asyncio.timeout(timeout_s):
            async with aiohttp.ClientSession(
                connector=connector, timeout=timeout, trust_env=False, headers={"User-Agent": USER_AGENT}
            ) as session:
                for hop in range(MAX_REDIRECTS + 1):
                    await _check_host(current.host or "", current.port or 0, allow_private)
                    async with session.get(current, allow_redirects=False) as resp:
                        if resp.status in _REDIRECT_CODES:
                            location = resp.headers.get("Location")
                            if not location:
                                raise RefusedError("fetch_failed", f"The site answered a redirect without a target ({resp.status}).")
                            if hop == MAX_REDIRECTS:
                                raise RefusedError("fetch_failed", f"The link redirected more than {MAX_REDIRECTS} times.")
                            current = _validate_url(str(current.join(yarl.URL(location))))
                            continue
                        if resp.status >= 400:
                            raise RefusedError("fetch_failed", f"The site answered HTTP {resp.status} for that link.")
                        content_type = (resp.content_type or "application/octet-stream").lower()
                        declared = resp.content_length
                        if declared is not None and declared > max_bytes:
                            raise RefusedError("too_large", _too_large(max_bytes))
                        buf = bytearray()
                        async for chunk in resp.content.iter_chunked(_CHUNK):
                            buf += chunk
                            if len(buf) > max_bytes:
                                raise RefusedError("too_large", _too_large(max_bytes))
                        log.info("fetched %s bytes from %s after %d redirect(s)", len(buf), current.host, hop)
                        return Fetched(bytes(buf), str(current), _filename(current, resp.headers, content_type), content_type)
                raise RefusedError("fetch_failed", f"The link redirected more than {MAX_REDIRECTS} times.")  # pragma: no cover
    except RefusedError:
        raise
    except TimeoutError:
        raise RefusedError("fetch_failed", f"The download took longer than {timeout_s:g} seconds.") from None
    except aiohttp.ClientConnectorError as exc:
        if resolver.blocked or isinstance(getattr(exc, "os_error", None), _BlockedAddress):
            raise RefusedError(
                "blocked_address",
                f"I can't fetch from {resolver.blocked or current.host}: it points to a private or reserved network address.",
            ) from None
        raise RefusedError("fetch_failed", f"I couldn't connect to {current.host}.") from None
    except (aiohttp.ClientError, OSError) as exc:
        if resolver.blocked:
            raise RefusedError("blocked_address", f"I can't fetch from {resolver.blocked}: it points to a private or reserved network address.") from None
        raise RefusedError("fetch_failed", f"The download from {current.host} failed ({type(exc).__name__}).") from None


def _too_large(max_bytes: int) -> str:
    return f"The file is larger than the {max_bytes / (1024 * 1024):g} MB limit."
