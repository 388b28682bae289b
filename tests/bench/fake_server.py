"""A misbehaving HTTPS server for the benchmark's failure tests (HTTP/1.1 only).

``python fake_server.py MODE PORT CERT KEY``. It answers ``GET /`` with a
two-book index (so it passes the benchmark's start-up check) and then, for a
book: ``stall`` never answers; ``crash`` exits with code 3.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys

INDEX = b'["1", "2"]'


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mode: str) -> None:
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        target = head.split(b" ", 2)[1]
        if target == b"/":
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(INDEX), INDEX)
            )
            await writer.drain()
        elif mode == "crash":
            os._exit(3)
        else:
            await asyncio.sleep(3600)


async def main(mode: str, port: int, cert: str, key: str) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, mode), "127.0.0.1", port, ssl=context
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]))
