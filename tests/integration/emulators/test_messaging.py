"""SIP over TCP and MQTT as real clients see them (mosquitto_pub, paho-mqtt)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading

import paho.mqtt.client as mqtt
from tests import emulator_harness as h
from tests.support import require


def test_sip_over_tcp_answers_options_with_the_configured_agent() -> None:
    with h.run("sip", {"userAgent": "FPBX-16.0.40(18.9.0)"}) as emu:
        request = ("OPTIONS sip:100@127.0.0.1 SIP/2.0\r\n"
                   "Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK-t1\r\n"
                   "From: <sip:scanner@127.0.0.1>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\n"
                   "Call-ID: tcp-1\r\nCSeq: 1 OPTIONS\r\nUser-Agent: sipvicious\r\n"
                   "Content-Length: 0\r\n\r\n")
        with socket.create_connection(("127.0.0.1", emu.port(5060)), timeout=20) as sock:
            sock.sendall(request.encode() * 2)  # two requests on one connection
            f = sock.makefile("rb")
            answers = []
            for _ in range(2):
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    head += f.readline()
                answers.append(head.decode())
        assert all(a.startswith("SIP/2.0 200 OK\r\n") for a in answers)
        assert "Server: FPBX-16.0.40(18.9.0)\r\n" in answers[0]
        event = emu.wait_event("request", method="OPTIONS", proto="tcp")
        assert event.get("user_agent") == "sipvicious" and event.get("to") == "sip:100@127.0.0.1"


def test_sip_invite_is_challenged_and_reported() -> None:
    with h.run("sip") as emu:
        invite = ("INVITE sip:9001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;"
                  "branch=z9hG4bK-i1\r\nFrom: <sip:attacker@evil.example>;tag=2\r\n"
                  "To: <sip:9001@127.0.0.1>\r\nCall-ID: inv-1\r\nCSeq: 1 INVITE\r\n"
                  "Content-Length: 0\r\n\r\n")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            answer = b""
            for _ in range(5):
                sock.sendto(invite.encode(), ("127.0.0.1", emu.port(5060)))
                try:
                    answer = sock.recv(4096)
                    break
                except TimeoutError:
                    continue
        assert answer.startswith(b"SIP/2.0 407 Proxy Authentication Required")
        event = emu.wait_event("request", method="INVITE")
        assert (event.get("from"), event.get("to")) == ("sip:attacker@evil.example",
                                                        "sip:9001@127.0.0.1")


def test_mosquitto_pub_credentials_are_captured() -> None:
    require(shutil.which("mosquitto_pub") is not None, "mosquitto_pub (mosquitto-clients)")
    with h.run("mqtt") as emu:
        run = subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(emu.port(1883)), "-i", "cam-12",
             "-u", "admin", "-P", "admin123", "-t", "cmd", "-m", "x", "-q", "1"],
            capture_output=True, text=True, timeout=30)
        assert run.returncode != 0 and "bad user name or password" in run.stderr
        event = emu.wait_event("auth", client_id="cam-12")
        assert (event.get("username"), event.get("password"), event.get("result")) == \
            ("admin", "admin123", "rejected")


def test_configured_user_subscribes_and_publishes_v5() -> None:
    with h.run("mqtt", {"users": {"iot": "s3nsor"}, "version": "mosquitto version 2.0.18"}
               ) as emu:
        got: list[tuple[str, bytes]] = []
        connected, received = threading.Event(), threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="plc-1",
                             protocol=mqtt.MQTTv5)
        client.username_pw_set("iot", "s3nsor")
        client.on_connect = lambda c, u, f, rc, p: connected.set()

        def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
            got.append((m.topic, m.payload))
            received.set()

        client.on_message = on_message
        client.connect("127.0.0.1", emu.port(1883))
        client.loop_start()
        try:
            assert connected.wait(20)
            client.subscribe("$SYS/broker/version")
            assert received.wait(20)
            client.publish("factory/line1/cmd", b"STOP" * 1000, qos=1).wait_for_publish(20)
        finally:
            client.disconnect()
            client.loop_stop()
        assert got == [("$SYS/broker/version", b"mosquitto version 2.0.18")]
        data = emu.wait_event("data", topic="factory/line1/cmd")
        assert data.get("size") == "4000" and data.get("client_id") == "plc-1"
        assert len(data.get("payload")) == 512
        assert emu.wait_event("auth", client_id="plc-1").get("protocol") == "MQTT/5"
