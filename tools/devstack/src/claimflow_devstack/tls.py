"""A throwaway certificate authority and a server certificate it signs, for the test servers'
TLS listeners: made per session, valid for 127.0.0.1 and localhost only, never reused."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=2)


@dataclass(frozen=True)
class ServerCertificate:
    ca_file: Path  # the CA's certificate: what clients trust
    key_file: Path  # the server's unencrypted PKCS#8 key
    cert_file: Path  # the server's certificate, then the CA's
    key_and_chain_file: Path  # both in one (Kafka's PEM keystore)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "claimflow test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _new_ca(
    common_name: str, valid_for: datetime.timedelta
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + valid_for)
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
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _leaf(
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    valid_for: datetime.timedelta,
    alternative_names: list[x509.GeneralName] | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new key and the certificate `ca` signs for it, for `usage` (server or client)."""
    ca_key, ca_certificate = ca
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if alternative_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(alternative_names), critical=False
        )
    return key, builder.sign(ca_key, hashes.SHA256())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def issue_server_certificate(directory: Path, server_name: str) -> ServerCertificate:
    """A new CA, and a certificate it signs for `server_name` at 127.0.0.1 and localhost."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _new_ca("claimflow test CA", _VALIDITY)
    key, server = _leaf(
        ca,
        _name(server_name),
        ExtendedKeyUsageOID.SERVER_AUTH,
        _VALIDITY,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))],
    )
    ca_pem = _pem(ca[1])
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(ca_pem)
    key_pem = _key_pem(key)
    files = {
        "key": (directory / f"{server_name}.key", key_pem),
        "cert": (directory / f"{server_name}.crt", _pem(server) + ca_pem),
        "both": (directory / f"{server_name}.pem", key_pem + _pem(server) + ca_pem),
    }
    for path, content in files.values():
        path.write_bytes(content)
        path.chmod(0o600)
    return ServerCertificate(ca_file, files["key"][0], files["cert"][0], files["both"][0])


@dataclass(frozen=True)
class ClientCertificate:
    ca_file: Path  # the CA's certificate: what the server trusts
    key_file: Path  # the client's unencrypted PKCS#8 key
    cert_file: Path  # the client's certificate


def issue_client_certificate(
    directory: Path,
    common_name: str,
    organisation: str,
    *,
    valid_for: datetime.timedelta = _VALIDITY,
) -> ClientCertificate:
    """A new CA, and a client certificate it signs for `common_name` in `organisation`
    (Kubernetes reads them as the user name and group)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _new_ca("claimflow test client CA", valid_for)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    key, client = _leaf(ca, subject, ExtendedKeyUsageOID.CLIENT_AUTH, valid_for)
    ca_file = directory / "client-ca.crt"
    ca_file.write_bytes(_pem(ca[1]))
    key_file = directory / f"{common_name}.key"
    key_file.write_bytes(_key_pem(key))
    key_file.chmod(0o600)
    cert_file = directory / f"{common_name}.crt"
    cert_file.write_bytes(_pem(client))
    return ClientCertificate(ca_file, key_file, cert_file)
