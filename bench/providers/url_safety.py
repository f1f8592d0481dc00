"""Where an adapter may send a request that an API answer told it about.

Answers name follow-up URLs (fal's status_url, Replicate's urls.get) and image URLs.
A hostile or broken answer could name any host: the key must only travel to the
provider, and image fetches must not reach into the user's own network (cloud
metadata at 169.254.169.254, services on localhost) unless the provider itself lives
there (an emulator or proxy on 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
WEB_SCHEMES = frozenset(DEFAULT_PORTS)

Origin = tuple[str, str, int]


def origin(url: str) -> Origin | None:
    """(scheme, host, port) of an http(s) URL, lower-cased with the default port filled in; else None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number, a malformed IPv6 literal
        return None
    scheme = parts.scheme.lower()
    if scheme not in WEB_SCHEMES or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else DEFAULT_PORTS[scheme]


def same_origin(url: str, allowed: Iterable[str]) -> bool:
    """Does `url` point at the scheme, host and port of one of the `allowed` URLs?"""
    mine = origin(url)
    return mine is not None and any(mine == origin(other) for other in allowed)


def is_private_address(address: str) -> bool:
    """Loopback, private (RFC 1918, ULA), link-local, unspecified, reserved or multicast."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_reserved
        or ip.is_multicast
    )


def is_local_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def host_is_private(host: str) -> bool:
    """A literal address or a local name that is private; names that need DNS are checked by resolving."""
    return is_local_name(host) or is_private_address(host.strip("[]"))


def resolves_to_private(host: str, port: int) -> bool:
    """Whether any address `host` resolves to is private. An unresolvable name is not (the fetch fails)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    return any(is_private_address(str(info[4][0])) for info in infos)
