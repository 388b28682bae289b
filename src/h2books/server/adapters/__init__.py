"""One adapter per protocol between a sans-IO core and the protocol-neutral `Exchange`."""
