"""A self-signed server certificate made at start, the way a fresh install has one.

A distribution's first boot makes a "snakeoil" certificate: RSA 2048, subject and
issuer both CN=<hostname>, the hostname as its only DNS name, ten years of validity.
The services that speak TLS present the same, so a scanner's certificate check sees
an ordinary, unconfigured server. The key lives in memory; Python's ssl module can
only load it from a file, so it passes through a private temporary directory that
is removed before the service accepts its first connection.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def certificate_pem(hostname: str, extra_names: tuple[str, ...] = (),
                    now: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for a self-signed server certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64] or "localhost")])
    start = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    dns = [hostname or "localhost", *(n for n in extra_names if n and n != hostname)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(hostname: str | None = None, extra_names: tuple[str, ...] = (),
                   alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
    """A TLS server context holding a fresh self-signed certificate for `hostname`."""
    cert_pem, key_pem = certificate_pem(hostname or socket.gethostname(), extra_names)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    scratch = tempfile.mkdtemp()
    try:
        path = os.path.join(scratch, "server.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem + cert_pem)
        ctx.load_cert_chain(path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ctx
