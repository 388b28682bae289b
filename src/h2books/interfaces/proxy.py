"""Behind a reverse proxy: the client and scheme the proxy saw, from headers we can trust.

A proxy in front of the server connects from its own address; the original client's
address and scheme travel in `X-Forwarded-For` / `X-Forwarded-Proto` or in RFC 7239's
`Forwarded`. Anyone can send those headers, so they count only when the peer that sent
them is a trusted proxy (`--forwarded-allow-ips`: addresses, CIDR networks, or "*").
Protocol-neutral: ASGI's scope and WSGI's environ both use `forwarded_origin`.

In a chain of proxies each one appends the address it received from, so the list is
read from the right: trusted proxies are skipped, and the first address that is not one
is the client (the leftmost entries may be forged by the client itself).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Address = tuple[str, int]


class TrustedProxies:
    """A set of trusted peers: exact addresses, networks, or everyone ("*")."""

    __slots__ = ("_everyone", "_hosts", "_networks")

    def __init__(self, spec: str | Iterable[str]) -> None:
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        self._everyone = False
        self._hosts: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for raw in items:
            item = raw.strip()
            if not item:
                continue
            if item == "*":
                self._everyone = True
            elif "/" in item:
                try:
                    self._networks.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    raise ValueError(f"not an IP network: {item!r}") from None
            else:
                # A literal (a Unix socket path, "unix:") is compared as it is.
                try:
                    self._hosts.add(str(ipaddress.ip_address(item)))
                except ValueError:
                    self._hosts.add(item)

    def __contains__(self, host: object) -> bool:
        if self._everyone:
            return True
        if not isinstance(host, str):
            return False
        if host in self._hosts:
            return True
        if not self._networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def __repr__(self) -> str:
        parts = ["*"] if self._everyone else [*sorted(self._hosts), *map(str, self._networks)]
        return f"TrustedProxies({','.join(parts)!r})"


def forwarded_origin(
    headers: Sequence[tuple[bytes, bytes]],
    client: Address | None,
    scheme: str,
    trusted: TrustedProxies,
) -> tuple[Address | None, str]:
    """(client, scheme) as the nearest untrusted hop saw them; the connection's own when
    the peer is not trusted or sent no forwarding headers. `Forwarded` wins over the
    X-Forwarded-* pair when both are present."""
    if client is None or client[0] not in trusted:
        return client, scheme
    forwarded: list[bytes] = []
    forwarded_for: list[bytes] = []
    forwarded_proto: list[bytes] = []
    for name, value in headers:
        if name == b"forwarded":
            forwarded.append(value)
        elif name == b"x-forwarded-for":
            forwarded_for.append(value)
        elif name == b"x-forwarded-proto":
            forwarded_proto.append(value)
    if forwarded:
        return _from_forwarded(b",".join(forwarded), client, scheme, trusted)
    if forwarded_for:
        hops = [hop.strip() for hop in b",".join(forwarded_for).decode("latin-1").split(",")]
        client = _nearest_untrusted([(hop, 0) for hop in hops if hop], client, trusted)
    if forwarded_proto:
        proto = forwarded_proto[-1].decode("latin-1").split(",")[-1].strip().lower()
        scheme = _checked_scheme(proto, scheme)
    return client, scheme


def _from_forwarded(
    value: bytes, client: Address, scheme: str, trusted: TrustedProxies
) -> tuple[Address | None, str]:
    """RFC 7239: `for=192.0.2.60;proto=https, for="[2001:db8::1]:4711"`."""
    hops: list[Address] = []
    protos: list[str] = []
    for element in value.decode("latin-1").split(","):
        for pair in element.split(";"):
            key, _, raw = pair.partition("=")
            key = key.strip().lower()
            raw = raw.strip().strip('"')
            if key == "for" and raw:
                hops.append(_node(raw))
            elif key == "proto" and raw:
                protos.append(raw.lower())
    origin: Address | None = _nearest_untrusted(hops, client, trusted) if hops else client
    if protos:
        scheme = _checked_scheme(protos[-1], scheme)
    return origin, scheme


def _node(raw: str) -> Address:
    """A Forwarded node: `192.0.2.60`, `192.0.2.60:47011`, `[2001:db8::1]:4711`, `unknown`."""
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif raw.count(":") == 1:
        host, _, port = raw.partition(":")
    else:
        host, port = raw, ""
    return host, int(port) if port.isdigit() else 0


def _nearest_untrusted(
    hops: list[Address], client: Address, trusted: TrustedProxies
) -> Address | None:
    for hop in reversed(hops):
        if hop[0] not in trusted:
            return hop
    # Every hop is a trusted proxy: the leftmost is as close to the client as we know.
    return hops[0] if hops else client


def _checked_scheme(proto: str, fallback: str) -> str:
    return proto if proto in ("http", "https", "ws", "wss") else fallback
