"""h2books: a fast pure-Python HTTP/2 + HTTP/1.1 server with its own sans-IO protocol cores."""

from h2books.client import Client
from h2books.http import Handler, Request, Response

__all__ = ["Client", "Handler", "Request", "Response", "__version__"]
__version__ = "0.1.0"
