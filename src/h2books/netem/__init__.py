"""Network conditions for the crawl and the bench: a packet-level link emulator.

- `link.py`: the link model, sans-IO (delay, rate, drop-tail queue, loss, jitter, reorder);
- `conditions.py`: `Conditions`, the link as the user states it (``--rtt --bandwidth --loss``);
- `tun.py`, `namespaces.py`: TUN devices, and the namespaces this process made (and only those);
- `forwarder.py`: the process that moves packets between the two TUN devices (the topology
  is in its docstring); `emulator.py`: `EmulatedLink`, bringing it up and down;
- `proxy.py`: the fallback without root: a userspace TCP/UDP delay proxy (no loss for TCP);
- `network.py`: `emulated_network`, which picks one of the two for a client.
"""

from h2books.netem.conditions import Conditions

__all__ = ["Conditions"]
