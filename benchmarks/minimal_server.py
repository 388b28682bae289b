"""The floor for HTTP/1.1 on this machine: a uvloop TLS server that parses nothing.

    python benchmarks/minimal_server.py --port 9443 --cert CERT --key KEY [--size 171]
    taskset -c 1 h2load --h1 -n 10000 -c 1 -m 1 https://127.0.0.1:9443/

Each read counts the request heads in it (``\\r\\n\\r\\n``) and answers each with one
constant response of ``--size`` body bytes; no parsing, no routing, no Date. Whatever
h2books costs beyond this server's CPU per request is the price of being an HTTP server
(benchmarks/PROFILE.md compares the two). Pin it like the real server (`taskset -c 0`).
"""

from __future__ import annotations

import argparse
import asyncio
import ssl

import uvloop


class Minimal(asyncio.Protocol):
    def __init__(self, response: bytes) -> None:
        self.response = response
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        count = data.count(b"\r\n\r\n")
        if count and self.transport is not None:
            self.transport.write(self.response * count)


async def serve(port: int, context: ssl.SSLContext, response: bytes) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Minimal(response), "127.0.0.1", port, ssl=context)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9443)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--size", type=int, default=171, help="body bytes (a book is ~171)")
    args = parser.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    context.set_alpn_protocols(["http/1.1"])
    body = b"x" * args.size
    response = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
        % (len(body), body)
    )
    uvloop.run(serve(args.port, context, response))


if __name__ == "__main__":
    main()
