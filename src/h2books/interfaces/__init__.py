"""What runs above the protocol-neutral exchange: the native handler API (next: ASGI, WSGI)."""
