"""A self-made CA and serving certificate for the admission webhook.

The API server only calls webhooks over TLS and needs the CA in the
webhook configuration (kopf puts `cafile` there). Generating both at start
keeps local runs and tests free of cert-manager; in a cluster the chart can
mount a Secret instead (DECNET_WEBHOOK_CERT_DIR with tls.crt, tls.key, ca.crt).
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclasses.dataclass(frozen=True)
class Bundle:
    certfile: Path
    pkeyfile: Path
    cafile: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def generate(directory: Path, sans: Sequence[str], days: int = 365) -> Bundle:
    """Write ca.crt, tls.crt and tls.key into `directory` and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("decnet-operator-webhook-ca"))
        .issuer_name(_name("decnet-operator-webhook-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(sans[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(_san(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    bundle = Bundle(directory / "tls.crt", directory / "tls.key", directory / "ca.crt")
    bundle.cafile.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    bundle.certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    bundle.pkeyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    bundle.pkeyfile.chmod(0o600)
    return bundle


def mounted(directory: Path) -> Bundle:
    """Certificates from a mounted Secret (kubernetes.io/tls plus ca.crt)."""
    return Bundle(directory / "tls.crt", directory / "tls.key", directory / "ca.crt")
