"""Trusting the local CA in an NSS database, with the real certutil, and `h2books cert --trust`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from h2books.certs import CertPaths, ensure_certificates
from h2books.trust import (
    NICKNAME_PREFIX,
    TrustError,
    ca_nickname,
    default_nssdb,
    is_trusted,
    manual_steps,
    trust_ca,
    untrust_ca,
)
from tests.conftest import IN_CI, REPO_ROOT


def require_certutil() -> str:
    path = shutil.which("certutil")
    if path is None:
        message = "certutil is not installed (apt-get install libnss3-tools)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def certutil() -> str:
    return require_certutil()


@pytest.fixture
def paths(tmp_path: Path) -> CertPaths:
    return ensure_certificates(tmp_path / "tls")


@pytest.fixture
def nssdb(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".pki" / "nssdb"


def listing(certutil: str, nssdb: Path) -> str:
    done = subprocess.run(
        [certutil, "-L", "-d", f"sql:{nssdb}"], capture_output=True, text=True, check=True
    )
    return done.stdout


def trust_flags(certutil: str, nssdb: Path, nickname: str) -> str | None:
    for line in listing(certutil, nssdb).splitlines():
        if line.startswith(nickname):
            return line[len(nickname) :].strip()
    return None


# --- trust_ca / untrust_ca ------------------------------------------------------------


def test_trust_creates_the_database_and_trusts_for_servers(
    certutil: str, paths: CertPaths, nssdb: Path
) -> None:
    message = trust_ca(paths.ca_cert, nssdb)
    nickname = ca_nickname(paths.ca_cert)
    assert message.startswith(f"trusted: {nickname} added to a new NSS database {nssdb}")
    assert "\n" not in message
    assert (nssdb / "cert9.db").is_file()
    assert trust_flags(certutil, nssdb, nickname) == "C,,"
    assert is_trusted(paths.ca_cert, nssdb)


def test_the_stored_certificate_is_the_ca(certutil: str, paths: CertPaths, nssdb: Path) -> None:
    trust_ca(paths.ca_cert, nssdb)
    done = subprocess.run(
        [certutil, "-L", "-d", f"sql:{nssdb}", "-n", ca_nickname(paths.ca_cert), "-a"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == paths.ca_cert.read_text().split()


def test_trust_again_changes_nothing(certutil: str, paths: CertPaths, nssdb: Path) -> None:
    trust_ca(paths.ca_cert, nssdb)
    before = listing(certutil, nssdb)
    message = trust_ca(paths.ca_cert, nssdb)
    assert message.startswith("already trusted: ")
    assert "nothing to do" in message
    assert listing(certutil, nssdb) == before


def test_trust_uses_an_existing_database(certutil: str, paths: CertPaths, nssdb: Path) -> None:
    nssdb.mkdir(parents=True)
    subprocess.run(
        [certutil, "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True, capture_output=True
    )
    assert "added to the NSS database" in trust_ca(paths.ca_cert, nssdb)


def test_trust_repairs_flags_that_no_longer_trust(
    certutil: str, paths: CertPaths, nssdb: Path
) -> None:
    trust_ca(paths.ca_cert, nssdb)
    nickname = ca_nickname(paths.ca_cert)
    subprocess.run(
        [certutil, "-M", "-d", f"sql:{nssdb}", "-n", nickname, "-t", ",,"],
        check=True,
        capture_output=True,
    )
    assert not is_trusted(paths.ca_cert, nssdb)
    assert trust_ca(paths.ca_cert, nssdb).startswith("trusted: ")
    assert trust_flags(certutil, nssdb, nickname) == "C,,"


def test_untrust_removes_it_and_is_idempotent(certutil: str, paths: CertPaths, nssdb: Path) -> None:
    trust_ca(paths.ca_cert, nssdb)
    nickname = ca_nickname(paths.ca_cert)
    assert untrust_ca(paths.ca_cert, nssdb) == (
        f"untrusted: {nickname} removed from the NSS database {nssdb}"
    )
    assert trust_flags(certutil, nssdb, nickname) is None
    assert not is_trusted(paths.ca_cert, nssdb)
    assert untrust_ca(paths.ca_cert, nssdb).startswith("not trusted: ")


def test_untrust_without_a_database_creates_none(
    certutil: str, paths: CertPaths, nssdb: Path
) -> None:
    assert untrust_ca(paths.ca_cert, nssdb).startswith("not trusted: ")
    assert not is_trusted(paths.ca_cert, nssdb)
    assert not nssdb.exists()


def test_two_cas_are_told_apart(
    certutil: str, paths: CertPaths, nssdb: Path, tmp_path: Path
) -> None:
    other = ensure_certificates(tmp_path / "other-tls")
    assert ca_nickname(other.ca_cert) != ca_nickname(paths.ca_cert)
    assert ca_nickname(paths.ca_cert).startswith(NICKNAME_PREFIX + " ")
    trust_ca(paths.ca_cert, nssdb)
    trust_ca(other.ca_cert, nssdb)
    untrust_ca(paths.ca_cert, nssdb)
    assert not is_trusted(paths.ca_cert, nssdb)
    assert is_trusted(other.ca_cert, nssdb)


def test_the_default_database_is_in_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_nssdb() == tmp_path / ".pki" / "nssdb"


def test_trust_defaults_to_home(
    certutil: str, paths: CertPaths, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    trust_ca(paths.ca_cert)
    assert is_trusted(paths.ca_cert, tmp_path / "home" / ".pki" / "nssdb")


# --- errors ---------------------------------------------------------------------------


def test_missing_certutil_names_the_package(
    paths: CertPaths, nssdb: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    for action in (trust_ca, untrust_ca, is_trusted):
        with pytest.raises(TrustError) as caught:
            action(paths.ca_cert, nssdb)
        message = str(caught.value)
        assert "certutil (from NSS) is not installed" in message
        assert "apt-get install libnss3-tools" in message
        assert "\n" not in message
        assert getattr(caught.value, "user_facing", False) is True
    assert not nssdb.exists()


@pytest.mark.parametrize("which", ["missing", "leaf", "garbage"])
def test_only_a_ca_certificate_is_trusted(
    paths: CertPaths, nssdb: Path, tmp_path: Path, which: str
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    path, reason = {
        "missing": (tmp_path / "absent.pem", "does not exist"),
        "leaf": (paths.cert, "is not a CA certificate"),
        "garbage": (garbage, "is not a PEM CA certificate"),
    }[which]
    with pytest.raises(TrustError, match=reason):
        trust_ca(path, nssdb)
    assert not nssdb.exists()


def test_a_database_that_cannot_be_created(paths: CertPaths, certutil: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TrustError, match=r"^cannot create .*file/nssdb"):
        trust_ca(paths.ca_cert, blocker / "nssdb")


def test_a_broken_database_is_a_one_line_error(
    paths: CertPaths, certutil: str, nssdb: Path
) -> None:
    nssdb.mkdir(parents=True)
    (nssdb / "cert9.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(TrustError, match=r"^certutil -[LAN] failed: ") as caught:
        trust_ca(paths.ca_cert, nssdb)
    assert "\n" not in str(caught.value)


def test_manual_steps_cover_macos_windows_and_firefox(paths: CertPaths) -> None:
    steps = manual_steps(paths.ca_cert)
    assert (
        f'security add-trusted-cert -r trustRoot -k ~/Library/Keychains/login.keychain-db "{paths.ca_cert}"'
        in steps
    )
    assert f'certutil -addstore -user Root "{paths.ca_cert}"' in steps
    assert "Trusted Root Certification Authorities" in steps
    assert "Firefox" in steps


# --- the command line -----------------------------------------------------------------


def h2books(*args: str, home: Path, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "h2books", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
    )


def test_cli_trust_and_untrust_round_trip(certutil: str, tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    first = h2books("cert", "--trust", "--data-dir", str(data), home=home)
    assert first.returncode == 0, first.stderr
    ca = data / "tls" / "ca.pem"
    assert f"CA certificate:     {ca}" in first.stdout
    assert "trusted: h2books local CA " in first.stdout
    assert "security add-trusted-cert" in first.stdout  # the other systems' steps
    assert is_trusted(ca, home / ".pki" / "nssdb")

    again = h2books("cert", "--trust", "--data-dir", str(data), home=home)
    assert again.returncode == 0 and "already trusted: " in again.stdout

    removed = h2books("cert", "--untrust", "--data-dir", str(data), home=home)
    assert removed.returncode == 0 and "untrusted: " in removed.stdout
    assert not is_trusted(ca, home / ".pki" / "nssdb")
    removed_again = h2books("cert", "--untrust", "--data-dir", str(data), home=home)
    assert removed_again.returncode == 0 and "not trusted: " in removed_again.stdout


def test_cli_untrust_never_creates_a_ca(tmp_path: Path) -> None:
    done = h2books("cert", "--untrust", "--data-dir", str(tmp_path / "data"), home=tmp_path)
    assert done.returncode == 0
    assert "there is no local CA" in done.stdout
    assert not (tmp_path / "data").exists()


def test_cli_trust_without_certutil(tmp_path: Path) -> None:
    done = h2books(
        "cert",
        "--trust",
        "--data-dir",
        str(tmp_path / "data"),
        home=tmp_path,
        path=str(tmp_path / "empty-bin"),
    )
    assert done.returncode == 1
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("h2books: error:")]
    assert len(error_lines) == 1
    assert "apt-get install libnss3-tools" in error_lines[0]
    assert "certutil -addstore" in done.stderr  # the manual steps still help
    assert "Traceback" not in done.stderr


def test_cli_trust_and_untrust_exclude_each_other(tmp_path: Path) -> None:
    done = h2books("cert", "--trust", "--untrust", home=tmp_path)
    assert done.returncode == 2
    assert "not allowed with argument" in done.stderr
