"""Which addresses the gateway may fetch client-chosen URLs from (image URLs): public ones only.

A URL a client names is fetched from inside the operator's network, so everything that is not on the
public internet is refused: loopback, private (RFC 1918, fc00::/7), link-local (169.254/16 with the
cloud metadata address, fe80::/10), carrier-grade NAT, unspecified, multicast, reserved and
documentation ranges, and IPv6 forms that carry such an IPv4 address (mapped, NAT64, 6to4). The check
runs on the addresses a connection will really use: on an IP literal in the URL here, on every address
a host name resolves to in `engine.guarded_dns`. Numeric spellings other than dotted quads (2130706433,
0x7f000001, 0177.0.0.1, 127.1) and URLs with credentials are refused outright.

An operator's allow-list (host names and networks) lets an internal image server through.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from yarl import URL

__all__ = ["ADDRESS_REFUSED", "AddressPolicy", "Refused", "is_public"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# what the client is told: the same words whatever the address was, so errors map nothing out
ADDRESS_REFUSED = "this gateway does not fetch from private, loopback or link-local addresses"

# Special-purpose ranges (IANA registries); is_public also asks Python's own `is_global` to be sure.
_REFUSED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)
_REFUSED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/96",  # unspecified, loopback, IPv4-compatible (deprecated)
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, ...)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing
        "fc00::/7",  # unique local (private)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT's IPv4-translated addresses
# a host name as DNS has it (after IDNA encoding), with or without the root's final dot
_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?\.?", re.IGNORECASE)
# a host made of numbers only (decimal, hex or octal parts) that is not a dotted quad
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+))*\.?", re.IGNORECASE)


class Refused(Exception):
    """The URL may not be fetched. `reason` is safe to tell the client; `detail` is for the log."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4, translated), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _TRANSLATED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _unwrap(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        return _embedded_v4(address) or address
    return address


def is_public(address: IPAddress) -> bool:
    """True for an address on the public internet (IPv6 forms of an IPv4 address judged by it)."""
    address = _unwrap(address)
    refused = _REFUSED_V4 if isinstance(address, ipaddress.IPv4Address) else _REFUSED_V6
    if any(address in network for network in refused):
        return False
    return address.is_global and not address.is_multicast


def _parse_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Public addresses, plus the operator's allowed hosts and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, allow: str | Iterable[str]) -> AddressPolicy:
        """From the setting: host names and networks (CIDR or single addresses), comma-separated.
        Raises ValueError naming a bad entry."""
        entries = allow.split(",") if isinstance(allow, str) else allow
        hosts, networks = set(), []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            host = entry.lower().rstrip(".")
            if not _HOST_NAME.fullmatch(host) or _NUMERIC_HOST.fullmatch(host):
                raise ValueError(f"{entry!r} is neither a host name nor a network (e.g. 10.1.0.0/16)")
            hosts.add(host)
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        """The operator allowed this host by name: whatever it resolves to may be fetched."""
        return bool(self.hosts) and host.lower().rstrip(".") in self.hosts

    def allows_address(self, text: str) -> bool:
        address = _parse_address(text)
        return address is not None and self._allows(address)  # one we cannot judge is refused

    def _allows(self, address: IPAddress) -> bool:
        if self.networks:
            plain = _unwrap(address)
            if any(plain in network or address in network for network in self.networks):
                return True
        return is_public(address)

    def check_url(self, url: str) -> str:
        """Raises Refused unless `url` is an http(s) URL this policy lets through; returns its host.

        A host name passes here; its addresses are checked when it is resolved (engine.guarded_dns).
        """
        try:
            parsed = URL(url)
        except (ValueError, TypeError) as exc:
            raise Refused("it is not a valid URL") from exc
        if parsed.scheme not in ("http", "https"):
            raise Refused("only http, https and base64 data: URLs are accepted")
        host = parsed.raw_host
        if not host or not parsed.absolute:
            raise Refused("it is not a valid URL")
        if parsed.raw_user is not None or parsed.raw_password is not None:
            raise Refused("URLs with credentials are not fetched")
        if self.allows_host(host):
            return host
        address = _parse_address(host.rstrip(".") if ":" not in host else host)
        if address is not None:
            if not self._allows(address):
                raise Refused(ADDRESS_REFUSED, f"{host} is not a public address")
        elif _NUMERIC_HOST.fullmatch(host):
            raise Refused(ADDRESS_REFUSED, f"{host} is a numeric host that is not a dotted quad")
        elif not _HOST_NAME.fullmatch(host):
            raise Refused("it is not a valid URL")
        return host
