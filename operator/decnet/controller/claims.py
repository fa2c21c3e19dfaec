"""AddressClaims: one object per held address or subnet, named after it.

The API server's name uniqueness makes allocation atomic across processes (the way
Kubernetes allocates Service IPs with IPAddress objects): the first create wins, a
409 names the holder. In-memory reservations in the State keep this process's own
concurrent allocations apart before the API server is asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from lightkube import ApiError

from decnet.controller import allocation, indexes, leadership, lifecycle, metrics, state, views
from decnet.kube import client as kclient
from decnet.kube import names

log = structlog.get_logger("decnet.controller")
MAX_ALLOCATION_TRIES = 64


async def claim(
    st: state.State,
    ns: str,
    claim_name: str,
    address: str,
    lan: str | None,
    holder: Mapping[str, str],
) -> str | None:
    """Create the claim; returns None when we hold it, else the other holder's name."""
    spec: dict[str, Any] = {"address": address, "holder": dict(holder)}
    if lan:
        spec["lan"] = lan
    body = {
        "apiVersion": names.API_VERSION,
        "kind": "AddressClaim",
        "metadata": {
            "name": claim_name,
            "namespace": ns,
            "labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY},
            # A cluster's garbage collector releases a claim whose holder is gone even
            # when the operator was down; sweep() does it where none runs.
            "ownerReferences": [
                {
                    "apiVersion": names.API_VERSION,
                    "kind": holder["kind"],
                    "name": holder["name"],
                    "uid": holder["uid"],
                }
            ],
        },
        "spec": spec,
    }
    try:
        await st.client.create(kclient.AddressClaim.from_dict(body), namespace=ns)
        metrics.CLAIMS.inc()
        return None
    except ApiError as err:
        if err.status.code != 409:
            raise
    try:
        existing = await st.client.get(kclient.AddressClaim, claim_name, namespace=ns)
    except ApiError as err:
        if err.status.code == 404:
            return await claim(st, ns, claim_name, address, lan, holder)
        raise
    other = dict(existing.to_dict()).get("spec", {}).get("holder", {})
    if other.get("uid") == holder["uid"]:
        return None
    return str(other.get("name", "?"))


async def release(st: state.State, ns: str, claim_name: str) -> None:
    try:
        await st.client.delete(kclient.AddressClaim, claim_name, namespace=ns)
    except ApiError as err:
        if err.status.code != 404:
            raise


def orphaned(claims: Sequence[Mapping[str, Any]], live_uids: set[str]) -> list[tuple[str, str]]:
    """(namespace, name) of claims whose holder no longer exists."""
    out = []
    for one in claims:
        meta = one.get("metadata") or {}
        holder = (one.get("spec") or {}).get("holder") or {}
        if str(holder.get("uid") or "") not in live_uids:
            out.append((str(meta.get("namespace")), str(meta.get("name"))))
    return out


async def sweep(st: state.State) -> int:
    """Release AddressClaims whose holder vanished while the operator was down.

    Claims are listed before their possible holders: a holder created after the
    claim listing cannot own a listed claim it does not appear with, so a claim
    being made right now is never taken for an orphan.
    """
    claims = [dict(c.to_dict()) async for c in st.client.list(kclient.AddressClaim, namespace="*")]
    live: set[str] = set()
    for kind in (kclient.Decky, kclient.LAN):
        async for obj in st.client.list(kind, namespace="*"):
            live.add(str(obj.metadata.uid))
    orphans = orphaned(claims, live)
    for ns, name in orphans:
        await release(st, ns, name)
        log.info("claim.orphan_released", claim=f"{ns}/{name}")
    return len(orphans)


async def sweep_at_start(st: state.State) -> None:
    await leadership.wait_active()  # a paused replica's indexes are not current
    try:
        await sweep(st)
    except Exception:  # noqa: BLE001 - a failed sweep only delays; claims stay held
        log.warning("claim.sweep_failed", exc_info=True)


async def allocate(
    st: state.State,
    decky: views.Decky,
    uid: str,
    status: Mapping[str, Any],
    lans: Mapping[str, views.Lan],
) -> tuple[list[dict[str, str]], lifecycle.Stall | None]:
    """One address per attached LAN, claimed before it is published."""
    current = {a.get("lan"): a.get("ip") for a in status.get("addresses") or ()}
    holder = {"kind": "Decky", "name": decky.name, "uid": uid}
    out: list[dict[str, str]] = []
    for net in decky.networks:
        lan = lans.get(net.lan)
        subnet = lan.effective_subnet if lan else None
        if lan is None or subnet is None:
            continue
        have = current.get(net.lan)
        if have and allocation.contains(subnet, have) and (not net.ip or net.ip == have):
            out.append({"lan": net.lan, "ip": str(have)})
            continue
        if net.ip:
            other = await claim(
                st, decky.namespace, names.ip_claim_name(net.lan, net.ip), net.ip, net.lan, holder
            )
            if other is not None:
                return out, lifecycle.Stall(
                    "AddressHeld", f"{net.ip} on LAN {net.lan} is held by decky {other}"
                )
            out.append({"lan": net.lan, "ip": net.ip})
            continue
        ip = await _allocate_one(st, decky, net.lan, subnet, holder)
        if ip is None:
            return out, lifecycle.Stall("NoFreeAddress", f"LAN {net.lan} has no free address")
        out.append({"lan": net.lan, "ip": ip})
    return out, None


async def _allocate_one(
    st: state.State, decky: views.Decky, lan: str, subnet: str, holder: Mapping[str, str]
) -> str | None:
    reserved = st.reserved[(decky.namespace, lan)]
    # addresses pinned in spec (or held in status) by any decky on the LAN: a pin may
    # not have its claim yet
    pinned = {ip for _, ips in indexes.addresses_on(st, decky.namespace, lan) for ip in ips}
    held = set(indexes.claims_on(st, decky.namespace, lan)) | reserved | pinned
    for tries, ip in enumerate(allocation.candidate_ips(subnet, held)):
        if tries >= MAX_ALLOCATION_TRIES:
            return None
        if ip in reserved:
            continue
        reserved.add(ip)
        other = await claim(st, decky.namespace, names.ip_claim_name(lan, ip), ip, lan, holder)
        if other is None:
            return ip
    return None


async def allocate_subnet(
    st: state.State, lan: views.Lan, pool: str, holder: Mapping[str, str]
) -> str | None:
    """A free /24 out of the pool for a LAN without a subnet, claimed."""
    taken = {
        s for _, other in st.values("lan_views") if (s := other.effective_subnet)
    } | st.reserved_subnets
    for candidate in allocation.candidate_subnets(pool, taken):
        st.reserved_subnets.add(candidate)
        name = names.subnet_claim_name(candidate)
        if await claim(st, lan.namespace, name, candidate, None, holder) is None:
            return candidate
    return None


async def release_stale(st: state.State, ns: str, uid: str, keep: list[dict[str, str]]) -> None:
    """Release the address claims of `uid` that are not in `keep`."""
    wanted = {names.ip_claim_name(a["lan"], a["ip"]) for a in keep}
    for held in indexes.claims_held_by(st, uid):
        if held.namespace == ns and held.name not in wanted:
            await release(st, ns, held.name)
            st.reserved[(ns, str(held.lan))].discard(held.address)
