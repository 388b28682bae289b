"""Sans-IO protocol cores: bytes in, events out, bytes to send. No sockets, no clocks."""
