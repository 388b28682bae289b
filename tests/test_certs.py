from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from h2books.certs import (
    CA_COMMON_NAME,
    CertificateError,
    CertPaths,
    check_certificate_pair,
    ensure_certificates,
)

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def paths(tmp_path: Path) -> CertPaths:
    return ensure_certificates(tmp_path / "certs", now=NOW)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def contents(paths: CertPaths) -> dict[str, bytes]:
    return {
        name: getattr(paths, name).read_bytes() for name in ("ca_cert", "ca_key", "cert", "key")
    }


def verify(paths: CertPaths, subject: DNSName | IPAddress, at: dt.datetime = NOW) -> None:
    verifier = (
        PolicyBuilder().store(Store([load(paths.ca_cert)])).time(at).build_server_verifier(subject)
    )
    verifier.verify(load(paths.cert), [])


# --- what is created -------------------------------------------------------------------


def test_files_and_permissions(paths: CertPaths, tmp_path: Path) -> None:
    assert paths == CertPaths.in_directory(tmp_path / "certs")
    for key in (paths.ca_key, paths.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    for cert in (paths.ca_cert, paths.cert):
        assert stat.S_IMODE(cert.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "certs").stat().st_mode) == 0o700
    leftovers = {p.name for p in (tmp_path / "certs").iterdir()} - {
        "ca.pem",
        "ca-key.pem",
        "localhost.pem",
        "localhost-key.pem",
        ".lock",
    }
    assert not leftovers


def test_ca_certificate(paths: CertPaths) -> None:
    ca = load(paths.ca_cert)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CA_COMMON_NAME
    assert ca.issuer == ca.subject
    ca.verify_directly_issued_by(ca)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    assert ca.not_valid_before_utc <= NOW
    assert dt.timedelta(days=3649) <= ca.not_valid_after_utc - NOW <= dt.timedelta(days=3651)
    public_key = ca.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = ca.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    # A stolen CA key can only vouch for loopback names.
    names = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert names.critical
    assert set(names.value.permitted_subtrees or []) == {
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_network("127.0.0.1/32")),
        x509.IPAddress(ipaddress.ip_network("::1/128")),
    }


def test_leaf_certificate(paths: CertPaths) -> None:
    ca, leaf = load(paths.ca_cert), load(paths.cert)
    leaf.verify_directly_issued_by(ca)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == (
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    )
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not usage.value.key_encipherment  # an EC key encrypts nothing
    assert not usage.value.key_cert_sign
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert not constraints.ca
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(days=397)
    assert leaf.not_valid_before_utc <= NOW
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    assert leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    key = serialization.load_pem_private_key(paths.key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"


@pytest.mark.parametrize(
    "subject",
    [
        DNSName("localhost"),
        IPAddress(ipaddress.ip_address("127.0.0.1")),
        IPAddress(ipaddress.ip_address("::1")),
    ],
)
def test_chain_verifies_for_loopback_names(paths: CertPaths, subject: DNSName | IPAddress) -> None:
    verify(paths, subject)


@pytest.mark.parametrize(
    "subject", [DNSName("example.com"), IPAddress(ipaddress.ip_address("127.0.0.2"))]
)
def test_chain_does_not_verify_for_other_names(
    paths: CertPaths, subject: DNSName | IPAddress
) -> None:
    with pytest.raises(VerificationError):
        verify(paths, subject)


# --- real TLS handshakes -----------------------------------------------------------------


def handshake(paths: CertPaths, server_hostname: str) -> bytes:
    """Connect a TLS client trusting only our CA to a TLS server using our leaf."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(paths.cert, paths.key)
    server_context.set_alpn_protocols(["h2", "http/1.1"])
    client_context = ssl.create_default_context(cafile=str(paths.ca_cert))
    client_context.set_alpn_protocols(["h2"])
    server_socket, client_socket = socket.socketpair()
    server_errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server_context.wrap_socket(server_socket, server_side=True) as tls:
                tls.sendall(tls.recv(100).upper())
        except (ssl.SSLError, OSError) as exc:
            server_errors.append(exc)

    server = threading.Thread(target=serve)
    server.start()
    try:
        client_socket.settimeout(10)
        with client_context.wrap_socket(client_socket, server_hostname=server_hostname) as tls:
            assert tls.selected_alpn_protocol() == "h2"
            tls.sendall(b"ping")
            return tls.recv(100)
    finally:
        client_socket.close()
        server.join(10)


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1", "::1"])
def test_tls_handshake_with_the_ca_as_only_trust(paths: CertPaths, server_hostname: str) -> None:
    # The handshake runs at the real time: create certificates for now, not NOW.
    real = ensure_certificates(paths.cert.parent.parent / "real")
    assert handshake(real, server_hostname) == b"PING"


def test_tls_handshake_refuses_another_name(paths: CertPaths) -> None:
    real = ensure_certificates(paths.cert.parent.parent / "real")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"mismatch|match"):
        handshake(real, "example.com")


# --- idempotence and renewal -----------------------------------------------------------------


def test_second_run_keeps_every_file(paths: CertPaths) -> None:
    before = contents(paths)
    assert ensure_certificates(paths.cert.parent, now=NOW + dt.timedelta(days=100)) == paths
    assert contents(paths) == before


def test_leaf_is_renewed_with_the_same_ca_near_expiry(paths: CertPaths) -> None:
    before = contents(paths)
    later = load(paths.cert).not_valid_after_utc - dt.timedelta(days=20)
    ensure_certificates(paths.cert.parent, now=later)
    after = contents(paths)
    assert after["ca_cert"] == before["ca_cert"] and after["ca_key"] == before["ca_key"]
    assert after["cert"] != before["cert"] and after["key"] != before["key"]
    verify(paths, DNSName("localhost"), at=later)
    assert load(paths.cert).not_valid_after_utc > later + dt.timedelta(days=300)


def test_expired_ca_is_replaced_with_its_leaf(paths: CertPaths) -> None:
    before = contents(paths)
    much_later = NOW + dt.timedelta(days=3700)
    ensure_certificates(paths.cert.parent, now=much_later)
    after = contents(paths)
    assert all(after[name] != before[name] for name in after)
    verify(paths, DNSName("localhost"), at=much_later)


def test_leaf_never_outlives_the_ca(paths: CertPaths) -> None:
    ca_end = load(paths.ca_cert).not_valid_after_utc
    near_ca_end = ca_end - dt.timedelta(days=100)
    ensure_certificates(paths.cert.parent, now=near_ca_end)
    assert load(paths.cert).not_valid_after_utc == ca_end
    verify(paths, DNSName("localhost"), at=near_ca_end)


@pytest.mark.parametrize("damaged", ["cert", "key"])
def test_damaged_leaf_is_recreated(paths: CertPaths, damaged: str) -> None:
    before = contents(paths)
    getattr(paths, damaged).write_bytes(b"-----BEGIN garbage-----\n")
    ensure_certificates(paths.cert.parent, now=NOW)
    after = contents(paths)
    assert after["ca_cert"] == before["ca_cert"]
    check_certificate_pair(paths.cert, paths.key)
    verify(paths, DNSName("localhost"))


def test_leaf_with_someone_elses_key_is_recreated(paths: CertPaths, tmp_path: Path) -> None:
    other = ensure_certificates(tmp_path / "other", now=NOW)
    paths.key.write_bytes(other.key.read_bytes())
    ensure_certificates(paths.cert.parent, now=NOW)
    check_certificate_pair(paths.cert, paths.key)


def test_leaf_from_another_ca_is_recreated(paths: CertPaths, tmp_path: Path) -> None:
    other = ensure_certificates(tmp_path / "other", now=NOW)
    paths.cert.write_bytes(other.cert.read_bytes())
    paths.key.write_bytes(other.key.read_bytes())
    ensure_certificates(paths.cert.parent, now=NOW)
    verify(paths, DNSName("localhost"))


def test_missing_ca_key_means_a_new_ca(paths: CertPaths) -> None:
    before = contents(paths)
    paths.ca_key.unlink()
    ensure_certificates(paths.cert.parent, now=NOW)
    assert contents(paths)["ca_cert"] != before["ca_cert"]
    verify(paths, DNSName("localhost"))


def test_loose_key_permissions_are_tightened(paths: CertPaths) -> None:
    paths.key.chmod(0o644)
    paths.ca_key.chmod(0o640)
    ensure_certificates(paths.cert.parent, now=NOW)
    assert stat.S_IMODE(paths.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.ca_key.stat().st_mode) == 0o600


def test_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(CertificateError, match="cannot create certificate directory"):
        ensure_certificates(tmp_path / "file" / "certs")


# --- checking a certificate and key pair ---------------------------------------------------


def test_matching_pair_passes(paths: CertPaths) -> None:
    check_certificate_pair(paths.cert, paths.key)
    check_certificate_pair(paths.ca_cert, paths.ca_key)


def test_chain_file_is_checked_against_its_first_certificate(
    paths: CertPaths, tmp_path: Path
) -> None:
    chain = tmp_path / "chain.pem"
    chain.write_bytes(paths.cert.read_bytes() + paths.ca_cert.read_bytes())
    check_certificate_pair(chain, paths.key)


def write_encrypted_key(paths: CertPaths, target: Path) -> Path:
    key = serialization.load_pem_private_key(paths.key.read_bytes(), password=None)
    target.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    return target


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("mismatch", "private key .*ca-key.pem does not match certificate .*localhost.pem"),
        ("missing cert", "certificate file .*absent.pem does not exist"),
        ("missing key", "private key file .*absent.pem does not exist"),
        ("cert is a key", "certificate file .*localhost-key.pem holds no PEM certificate"),
        ("key is a cert", "private key file .*localhost.pem holds no PEM private key"),
        ("cert is a directory", "cannot read certificate file"),
        ("encrypted key", "is encrypted; an unencrypted key is needed"),
    ],
)
def test_bad_pairs_give_one_line_errors(
    paths: CertPaths, tmp_path: Path, case: str, message: str
) -> None:
    cert, key = paths.cert, paths.key
    absent = tmp_path / "absent.pem"
    if case == "mismatch":
        key = paths.ca_key
    elif case == "missing cert":
        cert = absent
    elif case == "missing key":
        key = absent
    elif case == "cert is a key":
        cert = paths.key
    elif case == "key is a cert":
        key = paths.cert
    elif case == "cert is a directory":
        cert = tmp_path
    elif case == "encrypted key":
        key = write_encrypted_key(paths, tmp_path / "encrypted.pem")
    with pytest.raises(CertificateError, match=message) as caught:
        check_certificate_pair(cert, key)
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file, so unreadable cannot be tested")
def test_unreadable_key(paths: CertPaths) -> None:
    paths.key.chmod(0)
    with pytest.raises(CertificateError, match="cannot read private key file"):
        check_certificate_pair(paths.cert, paths.key)
