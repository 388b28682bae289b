"""The ASGI servers' entry point: ``h2books.bench.peers.asgi_entry:app``.

Importing it loads the bookstore named by the environment (`DATA_DIR_VARIABLE`):
servers import an app by name, so this is the only way to hand it its data.
"""

from h2books.bench.peers.asgi_app import BookstoreApp
from h2books.bench.peers.replies import open_bookstore

__all__ = ["app"]

app = BookstoreApp(*open_bookstore())
