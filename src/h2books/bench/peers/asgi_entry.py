"""The ASGI servers' entry point: ``h2books.bench.peers.asgi_entry:app``.

Importing it loads the bookstore named by the environment (`DATA_DIR_VARIABLE`):
servers import an app by name, so this is the only way to hand it its data.
"""

from h2books.bench.peers.asgi_app import BookstoreApp
from h2books.bench.peers.catalog import data_dir_from_environment, load_bodies

__all__ = ["app"]

app = BookstoreApp(load_bodies(data_dir_from_environment()))
