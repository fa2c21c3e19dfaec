"""The only place that runs iptables: observe this agent's chains, apply egress actions.

Thin on purpose; every decision is in `decnet.agent.egress`. Contents change through
`iptables-restore --noflush` (one atomic transaction per family, so a chain is never
seen half-filled), hooks with single commands. `-w` waits for the xtables lock that
dockerd and kube-proxy take too. A failure raises `FirewallError` with iptables' text.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from decnet.agent import egress

TIMEOUT = 60
# Built-in chains a hook may sit in (FORWARD when dockerd keeps no DOCKER-USER).
BUILTINS = ("INPUT", "FORWARD", "OUTPUT")


class FirewallError(Exception):
    """iptables refused or is missing; the message is its output (capped)."""


@dataclass(frozen=True)
class Family:
    save: str  # iptables / ip6tables
    restore: str


IPV4 = Family("iptables", "iptables-restore")
IPV6 = Family("ip6tables", "ip6tables-restore")


def _run(args: Sequence[str], stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            list(args), input=stdin, capture_output=True, text=True, timeout=TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise FirewallError(f"{args[0]}: {error}") from error
    if done.returncode != 0:
        raise FirewallError(f"{' '.join(args)}: {(done.stderr or done.stdout).strip()[:500]}")
    return done.stdout


def available(family: Family = IPV4) -> bool:
    return shutil.which(family.save) is not None and shutil.which(family.restore) is not None


@dataclass(frozen=True)
class Seen:
    ruleset: egress.Ruleset
    # builtin -> the rule lines as iptables prints them (to place and dedupe hooks)
    builtins: dict[str, list[str]]
    has_docker_user: bool


def observe(node: str, family: Family = IPV4) -> Seen:
    """This agent's chains and where they are hooked, from one `iptables -S`."""
    prefix = egress.chain_prefix(node)
    chains: dict[str, list[str]] = {}
    builtins: dict[str, list[str]] = {}
    has_docker_user = False
    for line in _run([family.save, "-w", "-S"]).splitlines():
        parts = line.split(" ", 2)
        if parts[0] == "-N" and len(parts) >= 2:
            has_docker_user |= parts[1] == egress.HOOK_FORWARD
            if parts[1].startswith(prefix):
                chains.setdefault(parts[1], [])
        elif parts[0] == "-A" and len(parts) == 3:
            chain, rule = parts[1], parts[2]
            if chain.startswith(prefix):
                chains.setdefault(chain, []).append(rule)
            elif chain in (egress.HOOK_FORWARD, *BUILTINS):
                builtins.setdefault(chain, []).append(rule)
    hooks: dict[str, str] = {}
    for builtin, rules in builtins.items():
        # hooked = our jump comes before any rule that is not a decnet agent's jump
        for rule in rules:
            target = rule.removeprefix("-j ")
            if rule.startswith("-j ") and target.startswith(prefix):
                hooks[builtin] = target
                break
            if not (rule.startswith("-j DN") and " " not in target):
                break
    ruleset = egress.Ruleset({c: tuple(r) for c, r in chains.items()}, hooks)
    return Seen(ruleset, builtins, has_docker_user)


def _restore_text(chains: dict[str, tuple[str, ...]]) -> str:
    lines = ["*filter"]
    lines.extend(f":{chain} - [0:0]" for chain in sorted(chains))
    for chain in sorted(chains):
        lines.extend(f"-A {chain} {rule}" for rule in chains[chain])
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def execute(action: egress.Action, seen: Seen, family: Family = IPV4) -> None:
    if isinstance(action, egress.Apply):
        _run([family.restore, "-w", "--noflush"], _restore_text(dict(action.chains)))
    elif isinstance(action, egress.Hook):
        _run([family.save, "-w", "-I", action.builtin, "1", "-j", action.chain])
        _drop_jumps(action.builtin, action.chain, family, keep_first=True)
    elif isinstance(action, egress.Unhook):
        _drop_jumps(action.builtin, action.chain, family, keep_first=False)
    elif isinstance(action, egress.DeleteChain):
        for builtin in seen.builtins:
            _drop_jumps(builtin, action.chain, family, keep_first=False)
        _run([family.save, "-w", "-F", action.chain])
        _run([family.save, "-w", "-X", action.chain])


def _drop_jumps(builtin: str, chain: str, family: Family, keep_first: bool) -> None:
    """Remove jumps to `chain` from `builtin` (by rule number, last first); with
    keep_first the one just inserted at the top stays."""
    current = [
        line.split(" ", 2)[2]
        for line in _run([family.save, "-w", "-S", builtin]).splitlines()
        if line.startswith("-A ")
    ]
    numbers = [i + 1 for i, rule in enumerate(current) if rule == f"-j {chain}"]
    if keep_first and numbers and numbers[0] == 1:
        numbers = numbers[1:]
    for number in reversed(numbers):
        _run([family.save, "-w", "-D", builtin, str(number)])


def _for_family(ruleset: egress.Ruleset, seen: Seen) -> egress.Ruleset:
    """Without DOCKER-USER (ip6tables off in dockerd) the forward hook is FORWARD itself."""
    if seen.has_docker_user:
        return ruleset
    hooks = {("FORWARD" if b == egress.HOOK_FORWARD else b): c for b, c in ruleset.hooks.items()}
    return egress.Ruleset(ruleset.chains, hooks)


def sync(node: str, want: egress.Ruleset, family: Family = IPV4) -> list[egress.Action]:
    """Make iptables hold `want` for this node; returns what was done."""
    seen = observe(node, family)
    actions = egress.plan(node, _for_family(want, seen), seen.ruleset)
    for action in actions:
        execute(action, seen, family)
    return actions


def cleanup(node: str, family: Family = IPV4) -> list[egress.Action]:
    """Remove every hook and chain of this node's agent (uninstall, tests)."""
    seen = observe(node, family)
    actions = egress.cleanup(node, seen.ruleset)
    # hooks not at the top are not in seen.ruleset.hooks: DeleteChain drops those too
    for action in actions:
        execute(action, seen, family)
    return actions
