"""RFB version and VNC authentication messages, checked against vncdotool's own DES."""

from __future__ import annotations

import struct
import warnings

from decnet.emulators.services import vnc


def test_versions_negotiate_down_to_what_both_speak() -> None:
    v38 = vnc.VERSIONS["3.8"]
    assert vnc.negotiate_minor(b"RFB 003.008\n", v38) == 8
    assert vnc.negotiate_minor(b"RFB 003.889\n", v38) == 8  # Apple
    assert vnc.negotiate_minor(b"RFB 003.007\n", v38) == 7
    assert vnc.negotiate_minor(b"RFB 003.005\n", v38) == 3  # unknown minors act as 3.3
    assert vnc.negotiate_minor(b"RFB 003.008\n", vnc.VERSIONS["3.3"]) == 3
    assert vnc.negotiate_minor(b"SSH-2.0-x\r\n", v38) is None
    assert vnc.server_version({"version": "9.9"}) == v38


def test_the_expected_response_is_what_vncdotool_computes() -> None:
    from vncdotool import rfb

    challenge = bytes(range(16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = rfb.des_encrypt(rfb._vnc_des("passw0rd"), challenge)
    assert vnc.vnc_response("passw0rd", challenge) == expected
    assert vnc.vnc_response("passw0rd-and-more", challenge) == expected  # 8 characters count


def test_security_result_carries_a_reason_only_from_3_8() -> None:
    assert vnc.security_result(8, False, "Authentication failed") == \
        b"\0\0\0\x01\0\0\0\x15Authentication failed"
    assert vnc.security_result(7, False, "x") == b"\0\0\0\x01"
    assert vnc.security_result(3, True, "x") == b"\0\0\0\0"


def test_server_init_names_the_desktop() -> None:
    init = vnc.server_init({"desktopName": "HMI-01", "width": 99999, "height": 600})
    width, height = struct.unpack(">HH", init[:4])
    assert (width, height) == (8192, 600)
    assert init[20:24] == struct.pack(">I", 6) and init[24:] == b"HMI-01"
