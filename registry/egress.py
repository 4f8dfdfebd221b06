"""Which networks the hub's own outbound requests to user-given URLs (webhooks) may reach, and a pinned connection.

A webhook URL is the caller's choice, and the delivery log shows the receiver's status and the start of its answer,
so an unchecked URL would let any writer probe the hub's own machine, its private network and a cloud's metadata
service (169.254.169.254). `VITRINE_WEBHOOK_ALLOWED_NETWORKS` names what may be reached, as Gitea's
`ALLOWED_HOST_LIST` does: `external` (global addresses, the default), `private` (RFC 1918 and IPv6 unique local),
`loopback`, `*` (anything), or CIDR blocks, comma-separated. Link-local and other special addresses are reached only
through `*` or a CIDR naming them.

The check is made on the address actually connected to: the host is resolved once, the first allowed address is
dialled and the request carries the original `Host` (and TLS server name), so a name that re-resolves between check
and connection (DNS rebinding) reaches nothing it should not.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from registry.errors import InvalidInputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

KEYWORDS = ("external", "private", "loopback", "*")
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
SETTING = "VITRINE_WEBHOOK_ALLOWED_NETWORKS"


class BlockedAddressError(InvalidInputError):
    """A URL's host is, or resolves only to, addresses outside the allowed networks."""


@dataclass(frozen=True)
class EgressPolicy:
    """The networks outbound requests may reach (parsed from `VITRINE_WEBHOOK_ALLOWED_NETWORKS`)."""

    keywords: frozenset[str]
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> EgressPolicy:
        """The policy a setting's text names; ValueError naming the bad entry otherwise."""
        keywords: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in (e.strip() for e in text.split(",")):
            if not entry:
                continue
            if entry.lower() in KEYWORDS:
                keywords.add(entry.lower())
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{SETTING}: {entry!r} is neither one of {', '.join(KEYWORDS)} nor a CIDR block "
                                 "such as 10.1.0.0/16") from None
        if not keywords and not networks:
            raise ValueError(f"{SETTING} is empty: name at least one of {', '.join(KEYWORDS)} or a CIDR block")
        return cls(frozenset(keywords), tuple(networks))

    def allows(self, address: IPAddress) -> bool:
        """Whether `address` may be connected to."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if "*" in self.keywords or any(address in n for n in self.networks):
            return True
        if address.is_loopback:
            return "loopback" in self.keywords
        if any(address in n for n in _PRIVATE):
            return "private" in self.keywords
        return "external" in self.keywords and address.is_global and not address.is_multicast

    def describe(self) -> str:
        """What the policy allows, as the setting would name it."""
        return ", ".join([*sorted(self.keywords), *(str(n) for n in self.networks)])


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(policy: EgressPolicy, host: str, port: int) -> IPAddress:
    """The first address of `host` that `policy` allows.

    Raises:
        BlockedAddressError: `host` resolves only to addresses outside the allowed networks.
        OSError: `host` does not resolve.
    """
    literal = _literal(host)
    found = [literal] if literal is not None else list(dict.fromkeys(
        ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])  # without an IPv6 scope (fe80::1%eth0)
        for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))
    for address in found:
        if policy.allows(address):
            return address
    # A name's addresses are not shown: the hub's view of internal DNS is not the caller's to map.
    what = f"{host} is an address" if literal is not None else f"{host} resolves only to addresses"
    raise BlockedAddressError(f"{what} in a network webhooks may not reach (this hub's {SETTING} allows "
                              f"{policy.describe()}).")


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def check_reachable(policy: EgressPolicy, url: str) -> None:
    """Refuse, at registration, a URL whose host is (or resolves only to) a blocked address; a name that does not
    resolve now passes, and is checked again at every delivery."""
    parts = urlsplit(url)
    try:
        resolve(policy, parts.hostname or "", _port(parts))
    except OSError:
        pass


def pinned(policy: EgressPolicy, url: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """`url` rewritten to the allowed address it resolves to, with the `Host` header and httpx extensions
    (the TLS server name) that keep the request what it was; BlockedAddressError or OSError as `resolve`."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    address = resolve(policy, host, _port(parts))
    shown = f"[{address}]" if address.version == 6 else str(address)
    userinfo, _, header_host = parts.netloc.rpartition("@")
    netloc = (f"{userinfo}@" if userinfo else "") + (f"{shown}:{parts.port}" if parts.port else shown)
    extensions = {"sni_hostname": host} if parts.scheme == "https" and _literal(host) is None else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"Host": header_host}, extensions
