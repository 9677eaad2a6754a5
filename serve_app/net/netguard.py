"""Which URLs the service may fetch or post to on a client's behalf (SSRF guard).

Only ``http``/``https`` URLs without credentials, whose host resolves to public
addresses only. Refused: loopback, private, link-local (cloud metadata at
169.254.169.254), CGNAT, multicast, reserved and documentation ranges, IPv6 forms
that embed an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo), and every
non-canonical IPv4 spelling (``2130706433``, ``0x7f000001``, ``0x7f.1``, ``127.1``,
``0177.0.0.1``): by the WHATWG URL rules a host whose last label is a number is an
IPv4 address, and resolvers disagree on how to read the odd forms.

An operator may let named networks through (``allowed``, e.g. an internal media
server's range); nothing is allowed beyond the public internet by default.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from serve_app.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``(host, port)`` → IP address strings; :func:`system_resolver` by default.
Resolver = Callable[[str, int], list[str]]

_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
        "2001::/32", "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "fec0::/10",
        "ff00::/8",
    )
)  # fmt: skip
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class UrlRefused(InvalidRequest):
    """The URL may not be fetched (scheme, credentials or a non-public address)."""


class HostUnresolved(UrlRefused):
    """The URL's host has no address now (unknown name, or DNS unreachable)."""


@dataclass(frozen=True)
class Target:
    """A checked URL, split for connecting.

    Attributes:
        host: the host name or IP literal (no brackets), lower case.
        host_header: what goes into the ``Host`` header.
        path: path plus query, never empty.
        literal: the IP address when the URL names one directly.
    """

    scheme: str
    host: str
    port: int
    host_header: str
    path: str
    literal: IPAddress | None


def is_public(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses outside every blocked range."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return False
    if any(ip.version == net.version and ip in net for net in _BLOCKED):
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local)


def is_allowed(ip: IPAddress, allowed: Sequence[Network] = ()) -> bool:
    """Public, or inside one of the operator's ``allowed`` networks."""
    return is_public(ip) or any(ip.version == n.version and ip in n for n in allowed)


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    """``["127.0.0.1/32", ...]`` as networks (``ValueError`` for a malformed one)."""
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _numeric_host(host: str) -> bool:
    labels = host.rstrip(".").split(".")
    return bool(labels) and bool(_NUMERIC_LABEL.match(labels[-1]))


def parse_target(url: str, allowed: Sequence[Network] = ()) -> Target:
    """Check the URL's form and host spelling (no DNS yet).

    Raises:
        UrlRefused: not http(s), credentials, no host, a bad port, a non-canonical
            numeric host, or a literal non-public address.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UrlRefused("the URL is malformed") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused(f"only http and https URLs are accepted, not {scheme or 'none'!r}")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("URLs with user names or passwords are not accepted")
    host = (parts.hostname or "").lower()
    if not host:
        raise UrlRefused("the URL has no host")
    literal: IPAddress | None = None
    if ":" in host:
        try:
            literal = ipaddress.IPv6Address(host.split("%")[0])
        except ValueError:
            raise UrlRefused("the URL's host is not a valid IPv6 address") from None
    elif _numeric_host(host):
        try:
            literal = ipaddress.IPv4Address(host)
        except ValueError:
            raise UrlRefused(
                "numeric hosts must be written as a plain dotted IPv4 address"
            ) from None
    if literal is not None and not is_allowed(literal, allowed):
        raise UrlRefused("the URL points at a private, loopback or reserved address")
    port = port or (443 if scheme == "https" else 80)
    if not 0 < port < 65536:
        raise UrlRefused("the URL's port is out of range")
    shown = f"[{host}]" if ":" in host else host
    default = (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port, shown if default else f"{shown}:{port}", path, literal)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives for ``host`` (TCP)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HostUnresolved(f"cannot resolve the URL's host: {exc}") from None
    return [str(info[4][0]) for info in infos]


def resolve_public(
    target: Target, resolver: Resolver, allowed: Sequence[Network] = ()
) -> IPAddress:
    """The address to connect to: the literal, or the first of the resolved ones.

    Every resolved address must be public, so a name with one private record among
    public ones is refused too.

    Raises:
        UrlRefused: no address, or any non-public one.
    """
    if target.literal is not None:
        return target.literal
    addresses = []
    for text in resolver(target.host, target.port):
        try:
            addresses.append(ipaddress.ip_address(text.split("%")[0]))
        except ValueError:
            raise UrlRefused("the URL's host resolved to an invalid address") from None
    if not addresses:
        raise HostUnresolved("the URL's host has no address")
    if not all(is_allowed(a, allowed) for a in addresses):
        raise UrlRefused("the URL's host resolves to a private, loopback or reserved address")
    return addresses[0]
