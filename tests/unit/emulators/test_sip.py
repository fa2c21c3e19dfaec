"""SIP as an Asterisk PBX answers it: OPTIONS fingerprint, Digest capture, INVITE."""

from __future__ import annotations

import hashlib

from decnet.emulators import core
from decnet.emulators.services import sip


def request(method: str, *extra: str, uri: str = "sip:100@10.0.0.5") -> bytes:
    head = [f"{method} {uri} SIP/2.0", "v: SIP/2.0/UDP 10.9.9.9:5070;branch=z9hG4bK-1;rport",
            'f: "scan" <sip:100@10.0.0.5>;tag=abc', "t: <sip:100@10.0.0.5>", "i: call-1",
            f"CSeq: 1 {method}", "User-Agent: friendly-scanner", *extra, "l: 0"]
    return ("\r\n".join(head) + "\r\n\r\n").encode()


def answer(data: bytes, **config: object) -> sip.Answer:
    merged = core.load_config(sip.DEFAULTS)
    merged.update(config)
    req = sip.parse(data)
    assert req is not None
    return sip.respond(merged, req, "10.9.9.9", 40000)


def text(a: sip.Answer) -> str:
    assert a.response is not None
    return a.response.decode()


def test_options_names_the_pbx_from_config() -> None:
    a = answer(request("OPTIONS"))
    out = text(a)
    assert out.startswith("SIP/2.0 200 OK\r\n")
    assert "Server: Asterisk PBX 16.28.0\r\nAllow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, " \
           "SUBSCRIBE, NOTIFY, INFO, PUBLISH\r\n" in out
    assert "Via: SIP/2.0/UDP 10.9.9.9:5070;branch=z9hG4bK-1;rport=40000;received=10.9.9.9\r\n" \
        in out
    assert "Call-ID: call-1\r\n" in out and "To: <sip:100@10.0.0.5>;tag=as" in out
    kind, _, fields = a.notes[0]
    assert kind == "request" and fields["method"] == "OPTIONS"
    assert (fields["from"], fields["to"], fields["user_agent"]) == \
        ("sip:100@10.0.0.5", "sip:100@10.0.0.5", "friendly-scanner")
    assert "Server: FPBX-16.0.40(18.9.0)" in text(answer(request("OPTIONS"),
                                                          userAgent="FPBX-16.0.40(18.9.0)"))


def test_register_is_challenged_then_the_digest_is_captured() -> None:
    challenge = text(answer(request("REGISTER")))
    assert challenge.startswith("SIP/2.0 401 Unauthorized\r\n")
    assert 'WWW-Authenticate: Digest algorithm=MD5, realm="asterisk", nonce="' in challenge
    auth = ('Authorization: Digest username="100", realm="asterisk", nonce="1a2b3c4d", '
            'uri="sip:10.0.0.5", response="0123456789abcdef0123456789abcdef", algorithm=MD5')
    a = answer(request("REGISTER", auth, uri="sip:10.0.0.5"))
    assert text(a).startswith("SIP/2.0 403 Forbidden\r\n")
    kind, _, fields = a.notes[1]
    assert kind == "auth"
    assert (fields["username"], fields["realm"], fields["password_hash"], fields["hash_type"],
            fields["nonce"], fields["uri"]) == ("100", "asterisk",
                                                "0123456789abcdef0123456789abcdef",
                                                "sip-digest", "1a2b3c4d", "sip:10.0.0.5")


def test_a_configured_extension_registers() -> None:
    def md5(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()

    ha1, ha2 = md5("200:asterisk:1234"), md5("REGISTER:sip:10.0.0.5")
    good = md5(f"{ha1}:n0nce:{ha2}")
    auth = (f'Authorization: Digest username="200", realm="asterisk", nonce="n0nce", '
            f'uri="sip:10.0.0.5", response="{good}"')
    a = answer(request("REGISTER", auth, "Contact: <sip:200@10.9.9.9:5070>"), users={"200": "1234"})
    assert text(a).startswith("SIP/2.0 200 OK\r\n") and "Expires: 120\r\n" in text(a)
    assert a.notes[1][2]["result"] == "accepted"


def test_invite_is_challenged_and_then_busy() -> None:
    assert text(answer(request("INVITE"))).startswith("SIP/2.0 407 Proxy Authentication Required")
    auth = 'Proxy-Authorization: Digest username="100", realm="asterisk", nonce="x", uri="sip:1"'
    assert text(answer(request("INVITE", auth), users={"100": "100"})).startswith(
        "SIP/2.0 403 Forbidden")
    assert answer(request("ACK")).response is None
    assert text(answer(request("BYE"))).startswith("SIP/2.0 481 ")
    assert text(answer(request("FOO"))).startswith("SIP/2.0 501 Not Implemented")


def test_garbage_is_not_sip() -> None:
    for data in (b"", b"\x00\xff" * 100, b"GET / HTTP/1.1\r\n\r\n", b"OPTIONS sip:x SIP/3.0\r\n"):
        assert sip.parse(data) is None


def test_header_folding_and_body_bound() -> None:
    req = sip.parse(b"MESSAGE sip:a SIP/2.0\r\nSubject: one\r\n two\r\nContent-Length: 999999"
                    b"\r\n\r\nhello")
    assert req is not None and req.header("subject") == "one two" and req.body == b"hello"
