"""h2books' own HTTP/1.1 and HTTP/2 clients (asyncio, on the sans-IO cores) and the crawl.

async with h2books.Client("https://localhost:8443", http2=True, cacert=ca) as client:
    response = await client.get("/book?id=1")
    book = response.json()
"""

from h2books.client.client import Client, PushListener
from h2books.client.errors import (
    ClientError,
    ConnectError,
    GoAwayError,
    ProtocolError,
    RemoteClosedError,
    RequestTimeout,
    StreamResetError,
    TLSError,
)
from h2books.client.response import Response
from h2books.client.stats import WireCounts, WireStats

__all__ = [
    "Client",
    "ClientError",
    "ConnectError",
    "GoAwayError",
    "ProtocolError",
    "PushListener",
    "RemoteClosedError",
    "RequestTimeout",
    "Response",
    "StreamResetError",
    "TLSError",
    "WireCounts",
    "WireStats",
]
