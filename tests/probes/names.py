"""Name-service probes: dnspython against dns (port 53) and llmnr (port 5355)."""

from __future__ import annotations

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.reversename
from tests.probes import NMAP, Expect, Port, probe

NMAP["dns"] = (53, "tcp", "BIND")
# llmnr: no nmap probe gets an LLMNR answer (it answers only its own names), so nmap
# prints "open|filtered llmnr" from its services table; no NMAP entry claims more.


def udp(query: dns.message.Message, host: str, port: int) -> dns.message.Message:
    for _ in range(5):  # UDP, and a freshly started service: retry as resolvers do
        try:
            return dns.query.udp(query, host, port=port, timeout=3)
        except dns.exception.Timeout:
            continue
    raise AssertionError(f"no DNS answer from {host}:{port}")


@probe("dns")
def dns_probe(host: str, port: Port) -> list[Expect]:
    answer = udp(dns.message.make_query("www.example.com", "A"), host, port(53))
    assert answer.rcode() == dns.rcode.NOERROR and answer.answer, answer
    version = dns.query.tcp(dns.message.make_query("version.bind", "TXT", "CH"), host,
                            port=port(53), timeout=10)
    assert version.answer, version
    return [
        Expect("query", {"qname": "www.example.com", "qtype": "A", "proto": "udp"}),
        Expect("query", {"qname": "version.bind", "qtype": "TXT", "qclass": "CH",
                         "proto": "tcp"}),
    ]


@probe("llmnr")
def llmnr(host: str, port: Port) -> list[Expect]:
    reverse = dns.reversename.from_address(host).to_text(omit_final_dot=True)
    query = dns.message.make_query(reverse, "PTR")
    query.flags = 0  # LLMNR: no RD (that bit is T, tentative)
    answer = udp(query, host, port(5355))
    assert answer.answer, answer  # the host's own name, as Windows answers it
    wpad = dns.message.make_query("wpad", "A")
    wpad.flags = 0
    try:
        dns.query.udp(wpad, host, port=port(5355), timeout=2)
        raise AssertionError("answered for a name that is not its own")
    except dns.exception.Timeout:
        pass
    return [Expect("query", {"qname": reverse, "qtype": "PTR", "answered": "yes"}),
            Expect("query", {"qname": "wpad", "qtype": "A", "answered": "no"})]
