"""`python3 -m <package> [--queue N]`: install the NFQUEUE rules, then rewrite forever.

The rules send only SYN-ACKs, RSTs and ICMP that the netns itself sends (OUTPUT) to
the queue, with --queue-bypass: while no process reads the queue (not yet started,
crashed, restarting) packets pass unchanged. Run as the base's child; the base's
shell restarts it.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys

from . import nfqueue, rewrite

PROFILES = {"windows": rewrite.WINDOWS}
CHAIN = "OUTPUT"
TABLE = "mangle"


def rules(queue: int) -> list[list[str]]:
    """The iptables rule specs (without -A/-C) that queue the persona's packets."""
    target = ["-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]
    return [
        ["-p", "tcp", "--tcp-flags", "SYN,ACK", "SYN,ACK", *target],
        ["-p", "tcp", "--tcp-flags", "RST", "RST", *target],
        ["-p", "icmp", *target],
    ]


def install(queue: int) -> None:
    for spec in rules(queue):
        present = subprocess.run(["iptables", "-w", "-t", TABLE, "-C", CHAIN, *spec],
                                 capture_output=True).returncode == 0
        if not present:
            subprocess.run(["iptables", "-w", "-t", TABLE, "-A", CHAIN, *spec], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netshape")
    parser.add_argument("--queue", type=int, default=0)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="windows")
    parser.add_argument("--no-rules", action="store_true", help="the rules exist already")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if not args.no_rules:
        install(args.queue)
    profile = PROFILES[args.profile]
    queue = nfqueue.Queue(args.queue)
    ip_id = random.randrange(0x10000)
    for packet_id, packet in queue.packets():
        try:
            out = rewrite.shape(packet, ip_id, profile)
        except Exception:  # never hold a packet back: pass it unchanged
            out = None
        ip_id = (ip_id + 1) & 0xFFFF
        queue.accept(packet_id, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
