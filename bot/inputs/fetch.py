"""Download a user-supplied image link without letting it reach the bot's own network (SSRF).

Every address is checked twice over: IP literals in the URL before each request, and
every DNS answer inside the resolver the connection actually uses, so a hostname that
re-resolves to 127.0.0.1 between a check and the connect (DNS rebinding) gets nowhere.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from http import HTTPStatus
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

IPAddress = IPv4Address | IPv6Address
AddressPolicy = Callable[[IPAddress], bool]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# IETF protocol assignments (dummy address, anycast services): Python calls 192.0.0.8-10
# global, but no image link has business pointing into this block.
_IETF_PROTOCOL = IPv4Network("192.0.0.0/24")
# IPv6 forms that carry an IPv4 address in their low 32 bits: IPv4-compatible, IPv4-mapped,
# IPv4-translated (SIIT) and the well-known NAT64 prefix.
_LOW32_WRAPPERS = tuple(
    IPv6Network(n) for n in ("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96")
)
# RFC 8215 local-use NAT64 prefix: translates into the operator's own network.
_LOCAL_NAT64 = IPv6Network("64:ff9b:1::/48")

_PRIVATE = "I can't fetch links to private or local addresses — upload the image instead."
_INVALID = "That doesn't look like a valid link — check it, or upload the image instead."


class FetchError(ValueError):
    """User-facing refusal with a friendly message."""


def is_public_address(ip: IPAddress) -> bool:
    """True if `ip` is a globally routable unicast address, looking inside IPv6 wrappers of IPv4."""
    if isinstance(ip, IPv6Address):
        if ip in _LOCAL_NAT64:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded:
            return all(map(is_public_address, embedded))
        if ip.is_site_local:  # fec0::/10: deprecated, yet Python still calls it global
            return False
    elif ip in _IETF_PROTOCOL:
        return False
    return ip.is_global and not ip.is_multicast


def _embedded_ipv4(ip: IPv6Address) -> tuple[IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address tunnels or translates to (none for native IPv6)."""
    if any(ip in net for net in _LOW32_WRAPPERS):
        return (IPv4Address(int(ip) & 0xFFFF_FFFF),)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo  # (server, client)
    return ()


class BlockedAddressError(OSError):
    """Raised by SafeResolver when a name resolves only to addresses the policy refuses."""


class SafeResolver(AbstractResolver):
    """Wraps a resolver and drops every answer the address policy refuses.

    Because the connector connects only to what this returns, the address checked is
    the address used.
    """

    def __init__(self, inner: AbstractResolver, allow: AddressPolicy) -> None:
        self._inner = inner
        self._allow = allow

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        allowed = [a for a in answers if self._allow(ip_address(a["host"]))]
        if not allowed:
            raise BlockedAddressError(f"{host} resolves only to refused addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class _GuardedConnector(aiohttp.TCPConnector):
    """A TCPConnector carrying its address policy, so fetch_url applies it to IP literals too."""

    def __init__(self, *, allow: AddressPolicy, resolver: AbstractResolver) -> None:
        super().__init__(resolver=SafeResolver(resolver, allow))
        self.allow = allow


def make_session(
    *,
    timeout: float = 15.0,
    allow: AddressPolicy = is_public_address,
    resolver: AbstractResolver | None = None,
) -> aiohttp.ClientSession:
    """The only kind of session fetch_url accepts. Call inside a running event loop.

    `allow` is the address policy and `resolver` the inner DNS resolver (default: the
    system's, via a thread); both exist for tests. An injected resolver stays owned by
    the caller. Proxies from the environment, cookies and content-encoding are all off:
    the bytes counted against the size cap are the bytes that arrive.
    """
    connector = _GuardedConnector(allow=allow, resolver=resolver or aiohttp.ThreadedResolver())
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(
            total=timeout, sock_connect=timeout / 3, sock_read=timeout / 3
        ),
        trust_env=False,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"Accept-Encoding": "identity"},
    )


async def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float = 15.0,
    max_redirects: int = 3,
    session: aiohttp.ClientSession | None = None,
) -> bytes:
    """Download `url` (http/https, public addresses only) and return at most `max_bytes` bytes.

    `timeout` bounds the whole fetch, redirects included. Every failure is a FetchError.
    """
    if session is None:
        async with make_session(timeout=timeout) as own:
            return await fetch_url(
                url, max_bytes=max_bytes, timeout=timeout, max_redirects=max_redirects, session=own
            )
    connector = session.connector
    if not isinstance(connector, _GuardedConnector):
        raise TypeError("fetch_url needs a session from make_session()")
    try:
        async with asyncio.timeout(timeout):
            return await _follow(session, _parse(url), connector.allow, max_bytes, max_redirects)
    except TimeoutError as exc:
        raise FetchError(
            "That link took too long to answer — try again later, or upload the image instead."
        ) from exc
    except aiohttp.ClientError as exc:
        raise FetchError(_explain(exc)) from exc


async def _follow(
    session: aiohttp.ClientSession,
    url: URL,
    allow: AddressPolicy,
    max_bytes: int,
    max_redirects: int,
) -> bytes:
    """GET `url`, following redirects by hand so every hop passes the same checks."""
    for _ in range(max_redirects + 1):
        _check_url(url, allow)
        async with session.get(url, allow_redirects=False) as resp:
            if resp.status not in _REDIRECTS:
                return await _read_body(resp, max_bytes)
            location = resp.headers.get("Location")
        if not location:
            raise FetchError(
                "That link redirects nowhere — link the image directly, or upload it."
            )
        url = url.join(_parse(location)).with_fragment(None)
    raise FetchError("That link redirects too often — link the image directly, or upload it.")


def _parse(url: str) -> URL:
    try:
        return URL(url)
    except (TypeError, ValueError):
        raise FetchError(_INVALID) from None


def _check_url(url: URL, allow: AddressPolicy) -> None:
    """Refuse what the resolver can't see: bad schemes, credentials, IP-literal and local hosts."""
    if url.scheme not in ("http", "https"):
        raise FetchError("I only fetch http:// and https:// links — upload the image instead.")
    if url.user is not None or url.password is not None:
        raise FetchError(
            "I don't fetch links containing a username or password — upload the image instead."
        )
    try:
        host, raw_host = url.host, url.raw_host
    except UnicodeError:  # a name that is not valid IDNA, e.g. "xn--" (yarl decodes it lazily, here)
        raise FetchError(_INVALID) from None
    if not host or not raw_host:
        raise FetchError(_INVALID)
    try:
        literal = ip_address(host)
    except ValueError:
        # aiohttp skips DNS for anything that looks numeric (e.g. "127.1", "2130706433"),
        # so an address the ipaddress module can't read must never reach it.
        if ":" in raw_host or raw_host.replace(".", "").isdigit():
            raise FetchError(_PRIVATE) from None
        name = raw_host.rstrip(".").lower()
        if name == "localhost" or name.endswith(".localhost"):
            raise FetchError(_PRIVATE) from None
        return
    if not allow(literal):
        raise FetchError(_PRIVATE)


async def _read_body(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """Return the body of a 2xx response, aborting as soon as it exceeds `max_bytes`."""
    if not 200 <= resp.status < 300:
        try:
            phrase = f" ({HTTPStatus(resp.status).phrase})"
        except ValueError:
            phrase = ""
        raise FetchError(
            f"The link answered HTTP {resp.status}{phrase}"
            " — check it, or upload the image instead."
        )
    too_big = FetchError(f"That file is over {_size(max_bytes)} — send a smaller image.")
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise too_big
    body = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > max_bytes:
            raise too_big
    return bytes(body)


def _size(n: int) -> str:
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if n >= scale:
            return f"{round(n / scale, 1):g} {unit}"
    return f"{n} bytes"


def _explain(exc: aiohttp.ClientError) -> str:
    """A friendly sentence for an aiohttp failure (the details stay in the exception chain)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, BlockedAddressError):
            return _PRIVATE
        if isinstance(exc, aiohttp.ClientSSLError):
            return "That website's secure connection failed — upload the image instead."
        if isinstance(exc.os_error, socket.gaierror):
            return "I couldn't find that website — check the link, or upload the image instead."
        return "I couldn't connect to that website — check the link, or upload the image instead."
    if isinstance(exc, aiohttp.InvalidURL):
        return _INVALID
    return "The download from that link failed — try again later, or upload the image instead."
