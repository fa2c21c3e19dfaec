"""The BER codec: what LDAP/SNMP clients encode decodes, and hostile lengths are refused."""

from __future__ import annotations

import pytest
from pyasn1.codec.ber import decoder
from pyasn1.type import univ

from decnet.emulators import ber


def test_encodings_are_what_an_independent_asn1_decoder_reads() -> None:
    encoded = ber.seq([ber.integer(-129), ber.integer(2**31), ber.octets("é"),
                       ber.oid("1.3.6.1.4.1.311.2.2.10"), ber.null(), ber.boolean(True)])
    value, rest = decoder.decode(encoded)
    assert rest == b""
    assert int(value[0]) == -129 and int(value[1]) == 2**31
    assert bytes(value[2]) == "é".encode()
    assert value[3] == univ.ObjectIdentifier("1.3.6.1.4.1.311.2.2.10")
    assert bool(value[5]) is True


def test_long_form_lengths_are_four_bytes_like_active_directory() -> None:
    assert ber.seq([ber.integer(1)], long_form=True) == b"\x30\x84\x00\x00\x00\x03\x02\x01\x01"
    assert ber.length(300) == b"\x82\x01\x2c"


def test_decoding_round_trips_oids_and_integers() -> None:
    tlv = ber.decode(ber.seq([ber.integer(-1), ber.oid((2, 999, 3))]))
    first, second = tlv.children()
    assert first.as_int() == -1
    assert ber.decode_oid(second.value) == (2, 999, 3)


@pytest.mark.parametrize("data", [
    b"\x30\x80\x00\x00",  # indefinite length
    b"\x30\x85\x00\x00\x00\x00\x01",  # five length bytes
    b"\x30\x84\xff\xff\xff\xff",  # runs past the buffer
    b"\x1f\x81\x00",  # multi-byte tag
    b"\x02\x01\x01\x00",  # trailing bytes
    b"\x30",  # truncated header
])
def test_hostile_encodings_are_refused(data: bytes) -> None:
    with pytest.raises(ber.BerError):
        ber.decode(data)


def test_oids_and_integers_have_bounds() -> None:
    with pytest.raises(ber.BerError):
        ber.decode_oid(b"\xff" * 10 + b"\x01")  # arc above 32 bits
    with pytest.raises(ber.BerError):
        ber.decode_int(b"\x01" * 20)
    with pytest.raises(ber.BerError):
        ber.frame_length(b"\x30\x89")
