"""The bookstore application: its catalogue, the importer and the HTTP handler."""

from h2books.app.bookstore import Bookstore, create_app
from h2books.app.importer import CatalogImportError, import_catalog
from h2books.app.store import CatalogError, CatalogStore, open_catalog

__all__ = [
    "Bookstore",
    "CatalogError",
    "CatalogImportError",
    "CatalogStore",
    "create_app",
    "import_catalog",
    "open_catalog",
]
