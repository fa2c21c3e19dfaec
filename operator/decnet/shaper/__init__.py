"""Packet persona: rewrites the headers a Windows host would send differently from Linux.

Netns sysctls give a decky the TTL of its archetype, but `nmap -O` also weighs the
order of the TCP options in a SYN-ACK, the window it announces, how IP IDs grow,
the code of an ICMP echo reply and the ack field of a bare RST. Those are set by
the kernel and no sysctl changes them, so the decky's base queues the few packets
that carry them (SYN-ACK, RST, ICMP: never data) to this small process with
NFQUEUE, which rewrites the headers and recomputes the checksums.

Standard library only (the part python3-minimal has): the package is copied into
the base image under a neutral name and runs there with `python3 -m <name>`.
`rewrite` is the pure part (bytes in, bytes out), `nfqueue` speaks nfnetlink,
`__main__` installs the iptables rules and runs the loop. It never reads past the
headers of what it is given.
"""
