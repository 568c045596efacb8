"""fetch_url and its address policy, against servers on loopback only.

Refusal tests point at a raw TCP listener that counts connections: a refused fetch must
not even open a socket to it. Happy-path tests use a permissive policy, since loopback is
all a test can reach.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.typedefs import Handler
from hypothesis import given
from hypothesis import strategies as st

from bot.inputs.fetch import (
    BlockedAddressError,
    FetchError,
    SafeResolver,
    fetch_url,
    is_public_address,
    make_session,
)

IMG = b"\x89PNG pretend image bytes " * 4
PRIVATE = "private or local addresses"


def permit_all(ip: IPv4Address | IPv6Address) -> bool:
    return True


# --- the address policy ---------------------------------------------------------------

REFUSED = {
    "127.0.0.1": "loopback",
    "10.0.0.1": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local cloud metadata",
    "100.64.0.1": "shared CGNAT",
    "0.0.0.0": "unspecified",
    "224.0.0.1": "multicast",
    "255.255.255.255": "broadcast",
    "192.0.0.8": "IETF protocol block, global on 3.11",
    "192.0.0.170": "IETF protocol block",
    "198.18.0.1": "benchmarking",
    "198.51.100.7": "documentation",
    "240.0.0.1": "reserved",
    "::1": "v6 loopback",
    "::": "v6 unspecified",
    "fe80::1": "v6 link-local",
    "fe80::1%eth0": "v6 link-local with zone",
    "fc00::1": "unique local",
    "fec0::1": "site-local (deprecated, global to Python)",
    "ff02::1": "v6 multicast",
    "2001:db8::1": "v6 documentation",
    "::ffff:127.0.0.1": "v4-mapped loopback",
    "::ffff:10.0.0.1": "v4-mapped private",
    "::ffff:0:7f00:1": "v4-translated loopback",
    "::7f00:1": "v4-compatible loopback",
    "2002:7f00:1::1": "6to4 of 127.0.0.1",
    "2002:0a00:0001::1": "6to4 of 10.0.0.1",
    "2001:0:4136:e378:8000:63bf:f5ff:fffe": "Teredo, client 10.0.0.1",
    "64:ff9b::7f00:1": "NAT64 of 127.0.0.1",
    "64:ff9b::a00:1": "NAT64 of 10.0.0.1",
    "64:ff9b:1::808:808": "local-use NAT64",
}
ALLOWED = {
    "8.8.8.8": "public",
    "1.1.1.1": "public",
    "2606:4700:4700::1111": "public v6",
    "::ffff:8.8.8.8": "v4-mapped public",
    "2002:0808:0808::1": "6to4 of 8.8.8.8",
    "64:ff9b::808:808": "NAT64 of 8.8.8.8",
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7": "Teredo, server and client public",
}


@pytest.mark.parametrize("address", REFUSED, ids=REFUSED.get)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public_address(ip_address(address))


@pytest.mark.parametrize("address", ALLOWED, ids=ALLOWED.get)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(ip_address(address))


@given(st.ip_addresses(v=4))
def test_ipv6_wrappers_share_the_verdict_of_their_ipv4(v4: IPv4Address) -> None:
    n = int(v4)
    wrappers = [
        IPv6Address(0xFFFF << 32 | n),  # ::ffff:a.b.c.d
        IPv6Address(0x2002 << 112 | n << 80 | 1),  # 6to4
        IPv6Address(0x0064_FF9B << 96 | n),  # NAT64
    ]
    assert [is_public_address(w) for w in wrappers] == [is_public_address(v4)] * 3


# --- test doubles -----------------------------------------------------------------------


@dataclass
class FakeDNS(AbstractResolver):
    """Resolves names from a table, remembering what it was asked."""

    table: dict[str, str]
    asked: list[str] = field(default_factory=list)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addr = self.table[host]
        kind = socket.AF_INET6 if ":" in addr else socket.AF_INET
        return [
            ResolveResult(hostname=host, host=addr, port=port, family=kind, proto=0, flags=0)
        ]

    async def close(self) -> None:
        pass


@dataclass
class Listener:
    """A bare TCP server that counts connections and answers any request with 200 "ok"."""

    port: int = 0
    connections: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


@pytest.fixture
async def listen() -> AsyncIterator[Callable[[str], Awaitable[Listener]]]:
    servers: list[asyncio.Server] = []

    async def start(host: str) -> Listener:
        listener = Listener()
        server = await asyncio.start_server(listener.handle, host, 0)
        listener.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return listener

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@dataclass
class Site:
    base: str
    hits: list[str]

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    """An aiohttp app on 127.0.0.1 with the responses the happy-path tests need."""
    hits: list[str] = []
    release = asyncio.Event()  # lets stalled handlers finish at teardown

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        hits.append(request.path)
        return await handler(request)

    async def img(request: web.Request) -> web.Response:
        return web.Response(body=IMG)

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()  # no Content-Length at all
        await resp.prepare(request)
        remaining = int(request.match_info["n"])
        while remaining:
            step = min(remaining, 1000)
            await resp.write(b"x" * step)
            remaining -= step
        await resp.write_eof()
        return resp

    async def claims_huge(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 10**9
        await resp.prepare(request)
        await release.wait()  # never sends the body: reading it would only time out
        return resp

    async def countdown(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n == 0:
            return web.Response(body=IMG)
        return web.Response(status=302, headers={"Location": f"/r/{n - 1}"})

    async def redirect(request: web.Request) -> web.Response:
        headers = {"Location": request.query["to"]} if "to" in request.query else {}
        return web.Response(status=int(request.query.get("code", 302)), headers=headers)

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), body=b"nope")

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(body=IMG)

    app = web.Application(middlewares=[count])
    app.add_routes(
        [
            web.get("/img", img),
            web.get("/dir/img", img),
            web.get("/chunked/{n}", chunked),
            web.get("/claims-huge", claims_huge),
            web.get("/r/{n}", countdown),
            web.get("/redirect", redirect),
            web.get("/dir/redirect", redirect),
            web.get("/status/{code}", status),
            web.get("/slow", slow),
        ]
    )
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    yield Site(f"http://127.0.0.1:{runner.addresses[0][1]}", hits)
    release.set()
    await runner.cleanup()


async def fetch_with(
    url: str, *, max_bytes: int = 10_000, timeout: float = 5.0, **session_options: Any
) -> bytes:
    """fetch_url through a make_session(**session_options) session."""
    async with make_session(**session_options) as session:
        return await fetch_url(url, max_bytes=max_bytes, timeout=timeout, session=session)


# --- refusals that must not touch the network --------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.1:{port}/x.png",
        "http://[::ffff:127.0.0.1]:{port}/x.png",
        "http://127.1:{port}/x.png",
        "http://2130706433:{port}/x.png",
        "http://0x7f000001:{port}/x.png",
        "http://localhost:{port}/x.png",
        "http://LOCALHOST.:{port}/x.png",
        "http://cdn.localhost:{port}/x.png",
    ],
)
async def test_local_targets_are_refused_before_connecting(
    listen: Callable[[str], Awaitable[Listener]], template: str
) -> None:
    victim = await listen("127.0.0.1")
    with pytest.raises(FetchError) as refused:
        await fetch_url(template.format(port=victim.port), max_bytes=10_000, timeout=5)
    assert victim.connections == 0
    if "0x7f" not in template:  # that one is up to the system resolver: refused or unknown
        assert PRIVATE in str(refused.value)


async def test_hostname_resolving_to_loopback_is_refused_by_the_resolver(
    listen: Callable[[str], Awaitable[Listener]],
) -> None:
    victim = await listen("127.0.0.1")
    dns = FakeDNS({"localtest.example": "127.0.0.1"})
    with pytest.raises(FetchError, match=PRIVATE):
        await fetch_with(f"http://localtest.example:{victim.port}/", resolver=dns)
    assert dns.asked == ["localtest.example"]  # the early checks let it through
    assert victim.connections == 0


async def test_safe_resolver_keeps_only_allowed_answers() -> None:
    dns = FakeDNS({"a": "10.0.0.1", "b": "8.8.8.8"})
    safe = SafeResolver(dns, is_public_address)
    assert [r["host"] for r in await safe.resolve("b", 80)] == ["8.8.8.8"]
    with pytest.raises(BlockedAddressError):
        await safe.resolve("a", 80)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1:{port}/x.png", "http:// and https://"),
        ("file:///etc/passwd", "http:// and https://"),
        ("gopher://127.0.0.1:{port}/", "http:// and https://"),
        ("http://user:pass@127.0.0.1:{port}/x.png", "username or password"),
        ("http://user@127.0.0.1:{port}/x.png", "username or password"),
        ("http://[::1/x.png", "valid link"),
        ("http:///x.png", "valid link"),
        ("http://xn--/x.png", "valid link"),
    ],
)
async def test_bad_links_are_refused_even_with_a_permissive_policy(
    listen: Callable[[str], Awaitable[Listener]], url: str, message: str
) -> None:
    victim = await listen("127.0.0.1")
    with pytest.raises(FetchError, match=message):
        await fetch_with(url.format(port=victim.port), allow=permit_all)
    assert victim.connections == 0


async def test_proxy_settings_from_the_environment_are_ignored(
    site: Site, listen: Callable[[str], Awaitable[Listener]], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = await listen("127.0.0.1")
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert await fetch_with(site.url("/img"), allow=permit_all) == IMG
    assert proxy.connections == 0


async def test_sessions_not_made_by_make_session_are_rejected() -> None:
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(TypeError):
            await fetch_url("http://example.com/", max_bytes=10, session=plain)


# --- happy path (permissive policy) and limits ---------------------------------------------


async def test_fetches_bytes(site: Site) -> None:
    assert await fetch_with(site.url("/img"), allow=permit_all) == IMG
    assert site.hits == ["/img"]


async def test_fetches_through_a_resolved_hostname(site: Site) -> None:
    url = site.url("/img").replace("127.0.0.1", "ok.example")
    dns = FakeDNS({"ok.example": "127.0.0.1"})
    assert await fetch_with(url, allow=permit_all, resolver=dns) == IMG
    assert dns.asked == ["ok.example"]


async def test_default_policy_is_the_production_one(site: Site) -> None:
    with pytest.raises(FetchError, match=PRIVATE):
        await fetch_with(site.url("/img"))
    assert site.hits == []


async def test_body_up_to_the_cap_is_accepted(site: Site) -> None:
    body = await fetch_with(site.url("/chunked/5000"), max_bytes=5000, allow=permit_all)
    assert body == b"x" * 5000


async def test_unannounced_body_over_the_cap_is_cut_off(site: Site) -> None:
    with pytest.raises(FetchError, match="over 5 KB"):
        await fetch_with(site.url("/chunked/5001"), max_bytes=5000, allow=permit_all)


async def test_announced_oversize_body_is_refused_without_reading(site: Site) -> None:
    # The server never sends the body, so trying to read it would end in a timeout instead.
    start = time.monotonic()
    with pytest.raises(FetchError, match="over 8 MB"):
        await fetch_with(site.url("/claims-huge"), max_bytes=8_000_000, timeout=3, allow=permit_all)
    assert time.monotonic() - start < 2


async def test_redirects_are_followed_up_to_the_limit(site: Site) -> None:
    assert await fetch_with(site.url("/r/3"), allow=permit_all) == IMG
    assert site.hits == ["/r/3", "/r/2", "/r/1", "/r/0"]


async def test_one_redirect_too_many_is_refused(site: Site) -> None:
    with pytest.raises(FetchError, match="redirects too often"):
        await fetch_with(site.url("/r/4"), allow=permit_all)
    assert site.hits == ["/r/4", "/r/3", "/r/2", "/r/1"]


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
async def test_every_redirect_status_is_followed(site: Site, code: int) -> None:
    assert await fetch_with(site.url(f"/redirect?code={code}&to=img"), allow=permit_all) == IMG
    assert site.hits == ["/redirect", "/img"]


async def test_relative_location_resolves_against_the_current_url(site: Site) -> None:
    assert await fetch_with(site.url("/dir/redirect?to=img"), allow=permit_all) == IMG
    assert site.hits == ["/dir/redirect", "/dir/img"]


async def test_redirect_to_another_scheme_is_refused(site: Site) -> None:
    with pytest.raises(FetchError, match="http:// and https://"):
        await fetch_with(site.url("/redirect?to=file:///etc/passwd"), allow=permit_all)


async def test_redirect_to_an_invalid_idna_host_is_refused(site: Site) -> None:
    with pytest.raises(FetchError, match="valid link"):
        await fetch_with(site.url("/redirect?to=http://xn--/x.png"), allow=permit_all)
    assert site.hits == ["/redirect"]


async def test_redirect_without_location_is_refused(site: Site) -> None:
    with pytest.raises(FetchError, match="redirects nowhere"):
        await fetch_with(site.url("/redirect"), allow=permit_all)


def only_first_loopback(ip: IPv4Address | IPv6Address) -> bool:
    """A policy under which 127.0.0.1 plays "public" and 127.0.0.2 plays "private"."""
    return ip == IPv4Address("127.0.0.1")


@pytest.mark.parametrize("target", ["127.0.0.2", "inside.example"])
async def test_redirect_to_a_refused_address_is_not_followed(
    site: Site, listen: Callable[[str], Awaitable[Listener]], target: str
) -> None:
    inside = await listen("127.0.0.2")
    dns = FakeDNS({"inside.example": "127.0.0.2"})
    url = site.url(f"/redirect?to=http://{target}:{inside.port}/secret")
    with pytest.raises(FetchError, match=PRIVATE):
        await fetch_with(url, allow=only_first_loopback, resolver=dns)
    assert site.hits == ["/redirect"]
    assert inside.connections == 0


async def test_redirect_to_a_permitted_address_is_followed(
    site: Site, listen: Callable[[str], Awaitable[Listener]]
) -> None:
    # Control for the test above: the same redirect reaches the listener when allowed.
    inside = await listen("127.0.0.2")
    url = site.url(f"/redirect?to=http://127.0.0.2:{inside.port}/secret")
    assert await fetch_with(url, allow=permit_all) == b"ok"
    assert inside.connections == 1


# --- failures become friendly messages -------------------------------------------------------


async def test_slow_server_times_out(site: Site) -> None:
    start = time.monotonic()
    with pytest.raises(FetchError, match="too long"):
        await fetch_with(site.url("/slow"), timeout=0.3, allow=permit_all)
    assert time.monotonic() - start < 2


@pytest.mark.parametrize(("code", "phrase"), [(404, "Not Found"), (500, "Internal Server Error")])
async def test_error_status_is_reported(site: Site, code: int, phrase: str) -> None:
    with pytest.raises(FetchError, match=f"HTTP {code} \\({phrase}\\)"):
        await fetch_with(site.url(f"/status/{code}"), allow=permit_all)


async def test_unknown_host_is_reported() -> None:
    with pytest.raises(FetchError, match="couldn't find that website"):
        await fetch_with("http://nowhere.example/", resolver=FakeDNS({}))


async def test_refused_connection_is_reported() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, so nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError, match="couldn't connect"):
        await fetch_with(f"http://127.0.0.1:{port}/", allow=permit_all)
