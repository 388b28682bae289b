"""One entry point for a client: `emulated_network(conditions, target)` picks the link.

With root and ``/dev/net/tun`` it is the packet-level `EmulatedLink`: the client's
thread goes into the client namespace (`client_side()`) and connects to the server's
own address. Without them, the documented fallback: a `DelayProxy`, whose address the
client connects to instead (`connect_to`), and which says that TCP sees no loss.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from h2books.netem.conditions import Conditions
from h2books.netem.emulator import EmulatedLink
from h2books.netem.namespaces import NamespaceError, unavailable_reason
from h2books.netem.proxy import DelayProxy

__all__ = ["EmulatedNetwork", "NamespaceError", "emulated_network"]


@dataclass(slots=True)
class EmulatedNetwork:
    conditions: Conditions
    description: str  # for the report: the conditions and how they are made
    kind: str  # "loopback" | "namespaces" | "proxy"
    connect_to: tuple[str, int] | None = None  # the proxy's address, for the fallback
    link: EmulatedLink | None = field(default=None, repr=False)

    def client_side(self) -> AbstractContextManager[None]:
        """The calling thread on the client's end of the link, for the block."""
        if self.link is not None:
            return self.link.client_side()
        return contextlib.nullcontext()

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "description": self.description, **self.conditions.as_dict()}


@contextlib.contextmanager
def emulated_network(
    conditions: Conditions,
    target: tuple[str, int],
    *,
    fallback: bool = True,
    seed: int | None = None,
    method: str = "auto",
) -> Iterator[EmulatedNetwork]:
    """The link for `conditions` to the server at `target` (host, port), up for the block.

    `method` "auto" takes namespaces where available, else the proxy (unless not
    `fallback`); "proxy" takes the proxy in any case.
    """
    if not conditions.emulated:
        yield EmulatedNetwork(conditions, conditions.describe(), "loopback")
        return
    reason = unavailable_reason() if method == "auto" else f"the {method} was asked for"
    if reason is None:
        with EmulatedLink(conditions, seed=seed) as link:
            yield EmulatedNetwork(conditions, link.describe(), "namespaces", link=link)
        return
    if not fallback:
        raise NamespaceError(f"cannot emulate the link: {reason}")
    with DelayProxy(conditions, target, seed=seed) as proxy:
        description = f"{proxy.describe()}; namespaces unavailable: {reason}"
        yield EmulatedNetwork(conditions, description, "proxy", connect_to=proxy.address)
