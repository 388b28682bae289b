"""HTTP/2 (RFC 9113): a sans-IO connection core for the server and client roles."""

from . import events
from .connection import H2Config, H2Connection
from .errors import ErrorCode, H2ConnectionError, H2Error, H2UsageError
from .frames import CLIENT_PREFACE
from .settings import SettingCode

__all__ = [
    "CLIENT_PREFACE",
    "ErrorCode",
    "H2Config",
    "H2Connection",
    "H2ConnectionError",
    "H2Error",
    "H2UsageError",
    "SettingCode",
    "events",
]
