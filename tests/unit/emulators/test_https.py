"""The TLS services' certificate looks like a fresh install's, and plain HTTP gets Apache's page."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from decnet.emulators import tlscert
from decnet.emulators.services import https


def test_certificate_is_self_signed_for_the_hostname_only() -> None:
    cert_pem, key_pem = tlscert.certificate_pem("www.corp.example")
    cert = x509.load_pem_x509_certificate(cert_pem)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "www.corp.example" and cert.issuer == cert.subject
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.corp.example"]
    text = (cert_pem + key_pem).decode().lower() + str(cert.subject).lower()
    for tell in ("honeypot", "decnet", "deception"):
        assert tell not in text
    assert b"PRIVATE KEY" in key_pem


def test_server_context_loads_and_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    # a temp dir of its own: the machine's /tmp changes under other processes
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ctx = tlscert.server_context("db-01")
    assert ctx.get_ca_certs() == []
    assert list(tmp_path.iterdir()) == []


def test_plain_http_on_the_tls_port_gets_apaches_complaint() -> None:
    page = https.plain_http_answer(dict(https.DEFAULTS), "www.x", 443)
    assert page.startswith(b"<!DOCTYPE HTML PUBLIC")
    assert b"speaking plain HTTP to an SSL-enabled server port" in page
    assert b"<address>Apache/2.4.57 (Debian) Server at www.x Port 443</address>" in page
    iis = dict(https.DEFAULTS, serverHeader="Microsoft-IIS/10.0")
    assert https.plain_http_answer(iis, "www.x", 443) == b""


def test_certificate_is_made_in_a_child_process_so_the_service_stays_small() -> None:
    cert_pem, key_pem = tlscert.certificate_pem_isolated("files-02", ("files-02.corp",))
    cert = x509.load_pem_x509_certificate(cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["files-02", "files-02.corp"]
    assert b"PRIVATE KEY" in key_pem
