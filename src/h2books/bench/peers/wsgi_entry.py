"""The WSGI servers' entry point: ``h2books.bench.peers.wsgi_entry:app``.

Importing it loads the bookstore named by the environment (`DATA_DIR_VARIABLE`).
"""

from h2books.bench.peers.replies import open_bookstore
from h2books.bench.peers.wsgi_app import BookstoreWsgiApp

__all__ = ["app"]

app = BookstoreWsgiApp(*open_bookstore())
