"""Trusting the local CA in the user's NSS database, so Chrome and Chromium on Linux accept it.

Chrome speaks HTTP/2 only over TLS, and only to a server whose certificate chains to
an authority it trusts. On Linux, Chrome and Chromium read the user's trust anchors
from the NSS database ``~/.pki/nssdb``; `trust_ca` adds the local CA there with the
trust flags ``C,,`` (a CA trusted to issue server certificates) using ``certutil``
from NSS (Debian's ``libnss3-tools``), and `untrust_ca` takes it out again.

The CA is stored under a nickname carrying its fingerprint, so the database can tell
this CA from an older one made in another data directory, and both calls are
idempotent. Other systems keep trust elsewhere; `manual_steps` says how.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = [
    "CERTUTIL_PACKAGES",
    "NICKNAME_PREFIX",
    "TrustError",
    "ca_nickname",
    "default_nssdb",
    "is_trusted",
    "manual_steps",
    "trust_ca",
    "untrust_ca",
]

NICKNAME_PREFIX = "h2books local CA"
# A CA trusted for TLS server certificates; nothing for e-mail or code signing.
_SSL_CA_TRUST = "C,,"
_CERTUTIL_TIMEOUT = 60.0
CERTUTIL_PACKAGES = (
    "sudo apt-get install libnss3-tools (Debian, Ubuntu), "
    "sudo dnf install nss-tools (Fedora), brew install nss (macOS)"
)


class TrustError(Exception):
    """Trusting or untrusting failed; the message is one line, meant for the user."""

    user_facing = True


def default_nssdb() -> Path:
    """The database Chrome and Chromium read on Linux: ``$HOME/.pki/nssdb``."""
    return Path.home() / ".pki" / "nssdb"


def ca_nickname(ca_cert: Path) -> str:
    """The nickname `trust_ca` stores ``ca_cert`` under: the prefix and a fingerprint."""
    return _nickname(_read_ca(Path(ca_cert)))


def trust_ca(ca_cert: Path, nssdb: Path | None = None) -> str:
    """Trust ``ca_cert`` for TLS servers in ``nssdb`` (default `default_nssdb`).

    Creates the database (with an empty password, as Chrome does) when it does not
    exist. Returns what was done, in a sentence; raises `TrustError`.
    """
    ca_path = Path(ca_cert)
    certificate = _read_ca(ca_path)
    certutil = _find_certutil()
    database = default_nssdb() if nssdb is None else Path(nssdb)
    nickname = _nickname(certificate)
    created = _ensure_database(certutil, database)
    flags = _listed(certutil, database).get(nickname)
    if flags is not None and _trusts_servers(flags):
        return f"already trusted: {nickname} is in the NSS database {database}; nothing to do"
    if flags is None:
        _run(
            certutil,
            ["-A", "-d", _db(database), "-n", nickname, "-t", _SSL_CA_TRUST, "-i", str(ca_path)],
        )
    else:
        # Present but not trusted for servers (someone edited its flags): fix the flags.
        _run(certutil, ["-M", "-d", _db(database), "-n", nickname, "-t", _SSL_CA_TRUST])
    where = "a new NSS database" if created else "the NSS database"
    return (
        f"trusted: {nickname} added to {where} {database}; Chrome and Chromium on Linux "
        "now accept the server's certificate (restart the browser if it is running)"
    )


def untrust_ca(ca_cert: Path, nssdb: Path | None = None) -> str:
    """Remove ``ca_cert`` from ``nssdb`` again. Returns what was done; raises `TrustError`."""
    certificate = _read_ca(Path(ca_cert))
    certutil = _find_certutil()
    database = default_nssdb() if nssdb is None else Path(nssdb)
    nickname = _nickname(certificate)
    if not _database_exists(database) or nickname not in _listed(certutil, database):
        return f"not trusted: {nickname} is not in the NSS database {database}; nothing to do"
    _run(certutil, ["-D", "-d", _db(database), "-n", nickname])
    return f"untrusted: {nickname} removed from the NSS database {database}"


def is_trusted(ca_cert: Path, nssdb: Path | None = None) -> bool:
    """Whether ``nssdb`` trusts ``ca_cert`` for TLS servers."""
    certificate = _read_ca(Path(ca_cert))
    certutil = _find_certutil()
    database = default_nssdb() if nssdb is None else Path(nssdb)
    if not _database_exists(database):
        return False
    flags = _listed(certutil, database).get(_nickname(certificate))
    return flags is not None and _trusts_servers(flags)


def manual_steps(ca_cert: Path | str = "ca.pem") -> str:
    """How to trust ``ca_cert`` by hand where ``h2books cert --trust`` does not reach."""
    ca = str(ca_cert)
    return "\n".join(
        [
            "Other systems and browsers:",
            "  macOS (Chrome, Safari and Edge use the keychain):",
            f'    security add-trusted-cert -r trustRoot -k ~/Library/Keychains/login.keychain-db "{ca}"',
            f'    undo: security remove-trusted-cert "{ca}"',
            "  Windows (Chrome and Edge use the Windows certificate store), in a command prompt:",
            f'    certutil -addstore -user Root "{ca}"',
            "    or double-click the file > Install Certificate > Current User > Place all "
            'certificates in "Trusted Root Certification Authorities"',
            f'    undo: certutil -delstore -user Root "{NICKNAME_PREFIX}"',
            "  Firefox (its own store, on every system): Settings > Privacy & Security > "
            "Certificates > View Certificates > Authorities > Import, and tick "
            '"Trust this CA to identify websites"',
        ]
    )


# --- helpers ---------------------------------------------------------------------------


def _read_ca(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TrustError(f"CA certificate {path} does not exist") from None
    except OSError as exc:
        raise TrustError(f"cannot read CA certificate {path}: {exc.strerror or exc}") from exc
    try:
        certificate = x509.load_pem_x509_certificate(data)
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except (ValueError, x509.ExtensionNotFound) as exc:
        raise TrustError(f"{path} is not a PEM CA certificate") from exc
    if not constraints.value.ca:
        raise TrustError(f"{path} is not a CA certificate (basicConstraints cA is false)")
    return certificate


def _nickname(certificate: x509.Certificate) -> str:
    der = certificate.public_bytes(serialization.Encoding.DER)
    return f"{NICKNAME_PREFIX} {hashlib.sha256(der).hexdigest()[:16]}"


def _find_certutil() -> str:
    path = shutil.which("certutil")
    if path is None:
        raise TrustError(
            f"certutil (from NSS) is not installed; install it with {CERTUTIL_PACKAGES}"
        )
    return path


def _db(database: Path) -> str:
    return f"sql:{database}"


def _database_exists(database: Path) -> bool:
    return (database / "cert9.db").is_file()


def _ensure_database(certutil: str, database: Path) -> bool:
    """Create an empty-password database unless one is there; returns whether it was made."""
    if _database_exists(database):
        return False
    try:
        database.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise TrustError(f"cannot create {database}: {exc.strerror or exc}") from exc
    _run(certutil, ["-N", "-d", _db(database), "--empty-password"])
    return True


def _listed(certutil: str, database: Path) -> dict[str, str]:
    """Nickname -> trust flags ("SSL,S/MIME,JAR/XPI") of every certificate in the database."""
    output = _run(certutil, ["-L", "-d", _db(database)])
    listed = {}
    for line in output.splitlines():
        parts = line.rstrip().rsplit(None, 1)
        # Entries end with three comma-separated flag sets; the header lines do not.
        if len(parts) == 2 and parts[1].count(",") == 2:
            listed[parts[0].strip()] = parts[1]
    return listed


def _trusts_servers(flags: str) -> bool:
    return "C" in flags.split(",", 1)[0]


def _run(certutil: str, arguments: list[str]) -> str:
    try:
        result = subprocess.run(
            [certutil, *arguments],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_CERTUTIL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TrustError(f"cannot run {certutil}: {exc}") from exc
    if result.returncode != 0:
        detail = " ".join((result.stderr or result.stdout).split()) or f"exit {result.returncode}"
        raise TrustError(f"certutil {arguments[0]} failed: {detail}")
    return result.stdout
