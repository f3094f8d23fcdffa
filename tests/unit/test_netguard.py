"""The address policy for client-chosen URLs, and the resolver that applies it to every resolved address."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pydantic
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from engine.guarded_dns import GuardedResolver
from engine.netguard import ADDRESS_REFUSED, AddressPolicy, Refused, is_public
from engine.settings import Settings

REFUSED = [
    "0.0.0.0",
    "0.1.2.3",
    "10.1.2.3",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",  # cloud metadata
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.2.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::127.0.0.1",  # IPv4-compatible
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "::ffff:0:127.0.0.1",  # IPv4-translated
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::1",  # local-use NAT64
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "2001::1",  # Teredo
    "2001:db8::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",
    "ff02::1",
    "100::1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED)
def test_special_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    assert not AddressPolicy().allows_address(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are(address: str) -> None:
    assert AddressPolicy().allows_address(address)


def test_something_that_is_not_an_address_is_refused() -> None:
    assert not AddressPolicy().allows_address("localhost")


def test_the_allow_list_takes_hosts_and_networks() -> None:
    policy = AddressPolicy.parse(" Images.Internal. , 10.20.0.0/16,192.168.1.7, fd00::/8,,")
    assert policy.hosts == {"images.internal"}
    assert policy.allows_host("IMAGES.internal.") and not policy.allows_host("other.internal")
    assert policy.allows_address("10.20.3.4") and policy.allows_address("::ffff:10.20.3.4")
    assert policy.allows_address("192.168.1.7") and not policy.allows_address("192.168.1.8")
    assert policy.allows_address("fd00::5") and not policy.allows_address("fc00::5")
    assert not policy.allows_address("127.0.0.1") and not policy.allows_address("169.254.169.254")


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "http://x", "a b", "0x7f000001", "-x-", "127.1"])
def test_a_bad_allow_list_entry_is_named(entry: str) -> None:
    with pytest.raises(ValueError, match=repr(entry).replace("(", r"\(").replace(")", r"\)")):
        AddressPolicy.parse(entry)


def test_a_bad_allow_list_fails_the_settings() -> None:
    with pytest.raises(pydantic.ValidationError, match="neither a host name nor a network"):
        Settings(image_fetch_allow="10.0.0.0/8,http://images")
    assert Settings(image_fetch_allow="images.internal,10.0.0.0/8").image_fetch_allow


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/x", ADDRESS_REFUSED),
        ("http://[::ffff:127.0.0.1]/x", ADDRESS_REFUSED),
        ("http://[fe80::1%25eth0]/x", ADDRESS_REFUSED),
        ("http://0x7f000001/x", ADDRESS_REFUSED),
        ("http://0x08080808/x", ADDRESS_REFUSED),  # a public address, but an odd spelling
        ("http://2130706433/x", ADDRESS_REFUSED),
        ("http://0177.0.0.1/x", ADDRESS_REFUSED),
        ("http://127.1/x", ADDRESS_REFUSED),
        ("http://127.0.0.1./x", ADDRESS_REFUSED),
        ("http://user@example.com/x", "URLs with credentials are not fetched"),
        ("http://:pw@example.com/x", "URLs with credentials are not fetched"),
        ("file:///etc/passwd", "only http, https and base64 data: URLs are accepted"),
        ("http:///x", "it is not a valid URL"),
        ("http://[::1/x", "it is not a valid URL"),
        ("http://exa mple.com/x", "it is not a valid URL"),
        ("http://%31%32%37.0.0.1/x", "it is not a valid URL"),
    ],
)
def test_urls_refused_before_any_connection(url: str, reason: str) -> None:
    with pytest.raises(Refused) as refused:
        AddressPolicy().check_url(url)
    assert refused.value.reason == reason


def test_host_names_and_public_addresses_pass_the_url_check() -> None:
    policy = AddressPolicy.parse("127.0.0.1")
    assert policy.check_url("https://Example.COM/cat.png") == "example.com"
    assert policy.check_url("https://bücher.example./cat.png") == "xn--bcher-kva.example."
    assert policy.check_url("http://8.8.8.8:8080/cat.png") == "8.8.8.8"
    assert policy.check_url("http://127.0.0.1:9/cat.png") == "127.0.0.1"  # allowed


class _Inner(AbstractResolver):
    """A resolver answering from a table, counting its lookups."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups += 1
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.table[host]
        ]

    async def close(self) -> None:
        pass


def _resolve(resolver: GuardedResolver, host: str) -> list[str]:
    return [r["host"] for r in asyncio.run(resolver.resolve(host, 80, socket.AF_UNSPEC))]


def test_the_resolver_returns_only_allowed_addresses() -> None:
    inner = _Inner({"mixed.example": ["93.184.215.14", "127.0.0.1", "2606:4700::1111", "fe80::1"]})
    assert _resolve(GuardedResolver(AddressPolicy(), inner), "mixed.example") == [
        "93.184.215.14",
        "2606:4700::1111",
    ]


def test_a_name_with_no_allowed_address_is_refused_without_saying_where() -> None:
    inner = _Inner({"metadata.example": ["169.254.169.254"], "rebind.example": ["127.0.0.1", "::1"]})
    resolver = GuardedResolver(AddressPolicy(), inner)
    for host in ("metadata.example", "rebind.example"):
        with pytest.raises(Refused) as refused:
            _resolve(resolver, host)
        assert refused.value.reason == ADDRESS_REFUSED  # what the client sees
        assert host in refused.value.detail  # what the log says


def test_every_resolution_is_checked_again() -> None:
    """DNS rebinding: the name answered a public address first, loopback the next time."""
    inner = _Inner({"rebind.example": ["93.184.215.14"]})
    resolver = GuardedResolver(AddressPolicy(), inner)
    assert _resolve(resolver, "rebind.example") == ["93.184.215.14"]
    inner.table["rebind.example"] = ["127.0.0.1"]
    with pytest.raises(Refused):
        _resolve(resolver, "rebind.example")
    assert inner.lookups == 2


def test_allowed_names_and_networks_pass_the_resolver() -> None:
    inner = _Inner({"images.internal": ["10.1.2.3", "127.0.0.1"], "other.internal": ["10.9.9.9", "10.1.0.9"]})
    resolver = GuardedResolver(AddressPolicy.parse("images.internal,10.1.0.0/16"), inner)
    assert _resolve(resolver, "images.internal") == ["10.1.2.3", "127.0.0.1"]
    assert _resolve(resolver, "other.internal") == ["10.1.0.9"]
