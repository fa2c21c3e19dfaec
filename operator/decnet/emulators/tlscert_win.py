"""A self-signed server certificate like the one Windows makes for RDP and LDAPS.

Remote Desktop on a host without a PKI presents a certificate it made itself:
RSA 2048, SHA-256, subject and issuer CN = the host's name, valid six months.
A client (and nmap's ssl-cert) sees exactly that here. The key lives in memory;
`ssl` can only load a chain from files, so it is written to a private (0700)
temporary directory, loaded, and removed at once. The key is made at the first
handshake (`Lazy`), so an idle service carries neither it nor `cryptography`.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import ssl
import tempfile
from typing import Any


def make(common_name: str, days: int = 182) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for a self-signed server certificate."""
    from cryptography import x509  # imported here: ~9 MB that waits for the first client
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "localhost")])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=True,
            data_encipherment=True, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return cert_pem, key_pem


def server_context(common_name: str) -> ssl.SSLContext:
    """A TLS server context presenting a fresh self-signed certificate for common_name."""
    cert_pem, key_pem = make(common_name)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # Windows Server 2019 speaks no TLS 1.3
    folder = tempfile.mkdtemp()
    try:
        os.chmod(folder, 0o700)
        path = os.path.join(folder, "server.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key_pem + cert_pem)
        ctx.load_cert_chain(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return ctx


class Lazy:
    """Stands in for an SSLContext and makes the real one at the first handshake.

    A service whose TLS port is rarely touched (LDAPS beside LDAP) then pays for
    the key and the cryptography import only once a client arrives.
    """

    def __init__(self, common_name: str) -> None:
        self.common_name = common_name
        self._ctx: ssl.SSLContext | None = None

    def context(self) -> ssl.SSLContext:
        if self._ctx is None:
            self._ctx = server_context(self.common_name)
        return self._ctx

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        return self.context().wrap_bio(*args, **kwargs)
