"""Local TLS certificates: a private CA and a ``localhost`` certificate it signs.

Browsers speak HTTP/2 only over TLS, so a development server needs a certificate
they accept. `ensure_certificates` keeps, in one directory:

* ``ca.pem`` / ``ca-key.pem``: the "h2books local CA" (10 years), the file a user
  imports into a trust store (or passes as ``curl --cacert``);
* ``localhost.pem`` / ``localhost-key.pem``: the server's certificate for
  ``localhost``, ``127.0.0.1`` and ``::1``, valid 397 days (browsers refuse longer).

Keys are EC P-256 (the cheapest handshakes) and written with mode 0600. The CA is
name-constrained to those loopback names, so even a stolen CA key cannot vouch for
any real site. Calling again keeps valid files, and renews the leaf (same CA) once
it is within 30 days of expiry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; creation is then unlocked
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "CA_COMMON_NAME",
    "CA_VALIDITY",
    "LEAF_VALIDITY",
    "RENEW_BEFORE",
    "CertPaths",
    "CertificateError",
    "check_certificate_pair",
    "ensure_certificates",
]

CA_COMMON_NAME = "h2books local CA"
CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=397)
RENEW_BEFORE = dt.timedelta(days=30)
# Backdating absorbs small clock differences between this machine and its clients.
_BACKDATE = dt.timedelta(minutes=5)

LEAF_DNS_NAMES = ("localhost",)
LEAF_IP_ADDRESSES = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))

_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CertificateError(Exception):
    """A certificate or key is missing, unreadable or unusable; the message is one line."""


@dataclass(frozen=True, slots=True)
class CertPaths:
    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path

    @classmethod
    def in_directory(cls, directory: Path) -> CertPaths:
        return cls(
            ca_cert=directory / "ca.pem",
            ca_key=directory / "ca-key.pem",
            cert=directory / "localhost.pem",
            key=directory / "localhost-key.pem",
        )


def ensure_certificates(directory: Path, *, now: dt.datetime | None = None) -> CertPaths:
    """Create (or keep, or renew) the local CA and the localhost certificate.

    ``now`` (timezone-aware) replaces the clock, for tests.
    """
    now = dt.datetime.now(dt.UTC) if now is None else now.astimezone(dt.UTC)
    directory = Path(directory)
    paths = CertPaths.in_directory(directory)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise CertificateError(f"cannot create certificate directory {directory}: {exc}") from exc
    with _locked(directory):
        try:
            ca = _load_ca(paths, now)
            if ca is None:
                ca = _create_ca(now)
                _write_key(paths.ca_key, ca[1])
                _write_certificate(paths.ca_cert, ca[0])
                leaf_valid = False
            else:
                leaf_valid = _leaf_is_valid(paths, ca[0], now)
            if leaf_valid:
                _tighten_key_permissions(paths)
            else:
                leaf, leaf_key = _create_leaf(ca[0], ca[1], now)
                _write_key(paths.key, leaf_key)
                _write_certificate(paths.cert, leaf)
        except OSError as exc:
            raise CertificateError(f"cannot write certificates in {directory}: {exc}") from exc
    return paths


def check_certificate_pair(cert: Path, key: Path) -> None:
    """Check that ``cert`` (PEM, leaf first) and ``key`` (PEM) exist and belong together.

    Raises `CertificateError` with a one-line message naming the file at fault.
    """
    certificate = _read_certificate(Path(cert))
    private_key = _read_private_key(Path(key))
    if not _same_public_key(certificate, private_key):
        raise CertificateError(f"private key {key} does not match certificate {cert}")


def _read_certificate(path: Path) -> x509.Certificate:
    data = _read_file(path, "certificate")
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateError(f"certificate file {path} holds no PEM certificate") from exc
    return chain[0]


def _read_private_key(path: Path) -> _PrivateKey:
    data = _read_file(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:
        raise CertificateError(
            f"private key {path} is encrypted; an unencrypted key is needed"
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CertificateError(f"private key file {path} holds no PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertificateError(f"private key {path} is {type(key).__name__}, not EC or RSA")
    return key


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise CertificateError(f"{what} file {path} does not exist") from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CertificateError(f"cannot read {what} file {path}: {reason}") from exc


def _load_ca(paths: CertPaths, now: dt.datetime) -> tuple[x509.Certificate, _PrivateKey] | None:
    """The existing CA if it is complete, consistent and not about to expire."""
    try:
        certificate = _read_certificate(paths.ca_cert)
        key = _read_private_key(paths.ca_key)
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        certificate.verify_directly_issued_by(certificate)
    except (CertificateError, x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature):
        return None
    usable = (
        constraints.value.ca
        and _same_public_key(certificate, key)
        and _is_current(certificate, now)
    )
    return (certificate, key) if usable else None


def _leaf_is_valid(paths: CertPaths, ca: x509.Certificate, now: dt.datetime) -> bool:
    try:
        certificate = _read_certificate(paths.cert)
        key = _read_private_key(paths.key)
        certificate.verify_directly_issued_by(ca)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (CertificateError, x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature):
        return False
    return (
        _same_public_key(certificate, key)
        and _is_current(certificate, now)
        and set(names.get_values_for_type(x509.DNSName)) >= set(LEAF_DNS_NAMES)
        and set(names.get_values_for_type(x509.IPAddress)) >= set(LEAF_IP_ADDRESSES)
    )


def _is_current(certificate: x509.Certificate, now: dt.datetime) -> bool:
    return (
        certificate.not_valid_before_utc <= now
        and certificate.not_valid_after_utc - now > RENEW_BEFORE
    )


def _same_public_key(certificate: x509.Certificate, key: _PrivateKey) -> bool:
    encoding, layout = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return certificate.public_key().public_bytes(encoding, layout) == key.public_key().public_bytes(
        encoding, layout
    )


def _create_ca(now: dt.datetime) -> tuple[x509.Certificate, _PrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "h2books"),
            x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME),
        ]
    )
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    loopback = [x509.DNSName(name) for name in LEAF_DNS_NAMES] + [
        x509.IPAddress(ipaddress.ip_network(address)) for address in LEAF_IP_ADDRESSES
    ]
    not_before = now - _BACKDATE
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.NameConstraints(permitted_subtrees=loopback, excluded_subtrees=None),
            critical=True,
        )
        .add_extension(key_id, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(key_id),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _create_leaf(
    ca: x509.Certificate, ca_key: _PrivateKey, now: dt.datetime
) -> tuple[x509.Certificate, _PrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    not_before = now - _BACKDATE
    # Never outlive the CA: a chain is only as valid as its shortest link.
    not_after = min(not_before + LEAF_VALIDITY, ca.not_valid_after_utc)
    alternative_names: list[x509.GeneralName] = [x509.DNSName(name) for name in LEAF_DNS_NAMES]
    alternative_names += [x509.IPAddress(address) for address in LEAF_IP_ADDRESSES]
    ca_key_id = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "h2books"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                ]
            )
        )
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                # Only RSA keys encrypt a premaster secret (TLS 1.2 RSA key exchange).
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return certificate, key


def _write_key(path: Path, key: _PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomically(path, pem, 0o600)


def _write_certificate(path: Path, certificate: x509.Certificate) -> None:
    _write_atomically(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    # The temporary file is created with its final mode, so a key is never readable
    # by others, not even for a moment; the rename makes it appear complete.
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _tighten_key_permissions(paths: CertPaths) -> None:
    for key_path in (paths.ca_key, paths.key):
        if key_path.stat().st_mode & 0o077:
            key_path.chmod(0o600)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise concurrent callers (workers starting together) on one directory."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    try:
        descriptor = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise CertificateError(f"cannot lock certificate directory {directory}: {exc}") from exc
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
