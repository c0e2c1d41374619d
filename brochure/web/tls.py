"""The clinic server's own certificate, when the clinic has none: a private root (CA) and a server
certificate it signs for the server's host names.

Both live in one folder readable by this user only (beside the delivery
record). The root is made once and kept for ten years: each desk PC
installs it once (the README shows how on Windows). The server certificate
is remade whenever the host names change or it has less than 30 days left;
desks that trust the root never notice.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from brochure.base.errors import BrochureError

ROOT_NAME = "brochure-root-ca.crt"
ROOT_KEY = "brochure-root-ca.key"
SERVER_NAME = "server.crt"
SERVER_KEY = "server.key"
#: A server certificate lives 397 days (what browsers accept at most), and is remade 30 days before.
SERVER_DAYS = 397
RENEW_DAYS = 30
ROOT_YEARS = 10


class CertificateError(BrochureError):
    """A certificate or key cannot be made, read or used."""


@dataclass(frozen=True)
class Own:
    """The files of a certificate made here: the chain to serve, its key, and the root to install."""

    certificate: Path
    key: Path
    root: Path


def own_certificate(folder: Path, hosts: Sequence[str]) -> Own:
    """A certificate for ``hosts`` signed by this server's own root, kept in ``folder`` (made if needed)."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        root_cert, root_key = _root(folder)
        _server(folder, hosts, root_cert, root_key)
    except OSError as exc:
        raise CertificateError.at(
            str(folder), None, f"cannot keep the certificates here: {exc.strerror}", None
        ) from None
    return Own(folder / SERVER_NAME, folder / SERVER_KEY, folder / ROOT_NAME)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _root(folder: Path):  # noqa: ANN202 - (x509.Certificate, private key)
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path, key_path = folder / ROOT_NAME, folder / ROOT_KEY
    if cert_path.exists() and key_path.exists():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        except ValueError:
            raise CertificateError.at(
                str(cert_path),
                None,
                "the server's root certificate or its key is damaged",
                "restore it from the backup",
            ) from None
        return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "brochure clinic server"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"brochure root {_now():%Y-%m-%d}"),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365 * ROOT_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return cert, key


def _server(folder: Path, hosts: Sequence[str], root_cert, root_key) -> None:  # noqa: ANN001
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names = _alt_names(hosts)
    cert_path, key_path = folder / SERVER_NAME, folder / SERVER_KEY
    if cert_path.exists() and key_path.exists():
        try:
            [current, *_chain] = x509.load_pem_x509_certificates(cert_path.read_bytes())
            has = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            fresh = current.not_valid_after_utc - _now() > dt.timedelta(days=RENEW_DAYS)
            if fresh and set(has) == set(names) and current.issuer == root_cert.subject:
                return
        except (ValueError, x509.ExtensionNotFound):
            pass  # damaged or not ours: make a new one
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(root_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    chain = cert.public_bytes(serialization.Encoding.PEM) + root_cert.public_bytes(serialization.Encoding.PEM)
    _write_private(cert_path, chain, mode=0o644)


def _alt_names(hosts: Sequence[str]) -> list:
    from cryptography import x509

    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _key_pem(key) -> bytes:  # noqa: ANN001
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` whole (a new file renamed over the old one), readable as ``mode`` says."""
    part = path.with_name(f".{path.name}.part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.chmod(part, mode)
    os.replace(part, path)
