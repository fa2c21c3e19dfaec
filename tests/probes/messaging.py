"""Messaging-family probes: a SIP OPTIONS/REGISTER over UDP, and paho-mqtt."""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import threading

import paho.mqtt.client as mqtt
from tests.probes import NMAP, Expect, Port, probe

NMAP["sip"] = (5060, "udp", "Asterisk")
NMAP["mqtt"] = (1883, "tcp", "mqtt")


def sip_request(method: str, host: str, lport: int, user: str, extra: str = "") -> bytes:
    # a SIP request as softphones and sipvicious write it (RFC 3261 text over UDP)
    return (
        f"{method} sip:{host} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
        f"From: <sip:{user}@{host}>;tag={secrets.token_hex(4)}\r\n"
        f"To: <sip:{user}@{host}>\r\nCall-ID: {secrets.token_hex(8)}@probe\r\n"
        f"CSeq: 1 {method}\r\nContact: <sip:{user}@127.0.0.1:{lport}>\r\n"
        f"Max-Forwards: 70\r\nUser-Agent: probe-phone/1.0\r\n{extra}Content-Length: 0\r\n\r\n"
    ).encode()


def exchange(sock: socket.socket, data: bytes, addr: tuple[str, int]) -> str:
    for _ in range(5):  # UDP: resend, as SIP's timer A does
        sock.sendto(data, addr)
        try:
            return sock.recv(8192).decode()
        except TimeoutError:
            continue
    raise AssertionError(f"no SIP answer from {addr}")


@probe("sip")
def sip(host: str, port: Port) -> list[Expect]:
    addr = (host, port(5060))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.bind(("0.0.0.0", 0))
        lport = sock.getsockname()[1]
        options = exchange(sock, sip_request("OPTIONS", host, lport, "probe"), addr)
        assert options.startswith("SIP/2.0 200 OK") and "Asterisk" in options, options
        challenge = exchange(sock, sip_request("REGISTER", host, lport, "1001"), addr)
        assert challenge.startswith("SIP/2.0 401"), challenge
        realm = re.search(r'realm="([^"]*)"', challenge)
        nonce = re.search(r'nonce="([^"]*)"', challenge)
        assert realm and nonce, challenge
        ha1 = hashlib.md5(f"1001:{realm[1]}:1001".encode()).hexdigest()
        ha2 = hashlib.md5(f"REGISTER:sip:{host}".encode()).hexdigest()
        response = hashlib.md5(f"{ha1}:{nonce[1]}:{ha2}".encode()).hexdigest()
        auth = (f'Authorization: Digest username="1001", realm="{realm[1]}", '
                f'nonce="{nonce[1]}", uri="sip:{host}", response="{response}", '
                "algorithm=MD5\r\n")
        answer = exchange(sock, sip_request("REGISTER", host, lport, "1001", auth), addr)
        assert answer.startswith("SIP/2.0 403"), answer
    return [
        Expect("request", {"method": "OPTIONS", "user_agent": "probe-phone/1.0",
                           "from": f"sip:probe@{host}"}),
        Expect("auth", {"username": "1001", "password_hash": response,
                        "hash_type": "sip-digest", "realm": realm[1]}),
    ]


@probe("mqtt")
def mqtt_probe(host: str, port: Port) -> list[Expect]:
    done = threading.Event()
    codes: list[str] = []

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object,
                   props: object) -> None:
        codes.append(str(reason))
        done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="probe-sensor-7")
    client.username_pw_set("admin", "mqtt-probe")
    client.on_connect = on_connect
    client.connect(host, port(1883), keepalive=30)
    client.loop_start()
    try:
        assert done.wait(20), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    assert codes and codes[0] != "Success", codes  # a guessed password is refused
    return [Expect("auth", {"client_id": "probe-sensor-7", "username": "admin",
                            "password": "mqtt-probe"})]
