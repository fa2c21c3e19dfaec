"""Validating admission for what one object cannot check alone.

Clashes answer 409 with who holds the address; invalid references 422.
Only spec changes are judged: the operator's own metadata writes (finalizer,
node label) and a deletion's finalizer removal pass untouched, so the
webhook can never block the operator. The chart registers it with
failurePolicy Fail (a value relaxes it); whatever gets past it anyway is
caught by reconcile, which re-runs these checks (decnet.controller.validation)
and reports Stalled instead of planning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf
from lightkube import ApiError

from decnet.controller import allocation, indexes, metrics, state, validation, views
from decnet.kube import client as kclient
from decnet.kube import names

G, V = names.GROUP, names.VERSION
CONFIG_MAX_BYTES = validation.CONFIG_MAX_BYTES


def _skip(body: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return True
    return old is not None and (old.get("spec") or {}) == (body.get("spec") or {})


def _reject(kind: str, message: str, code: int) -> kopf.AdmissionError:
    metrics.REJECTIONS.labels(kind, str(code)).inc()
    return kopf.AdmissionError(message, code=code)


def decky_problems(
    st: state.State,
    body: Mapping[str, Any],
    lans: Mapping[str, views.Lan] | None = None,
    known: Mapping[str, views.Template] | None = None,
) -> tuple[int, str] | None:
    """(code, message) of the first problem of a Decky, or None."""
    decky = views.Decky.from_obj(body)
    lans = indexes.lans_in(st, decky.namespace) if lans is None else lans
    for net in decky.networks:
        problem = validation.network(decky, net, lans)
        if problem is not None:
            return problem.code, problem.message
        if net.ip:
            holder = _ip_holder(st, decky, net.lan, net.ip)
            if holder:
                return 409, f"{net.ip} on LAN {net.lan} is held by decky {holder}"
    known = indexes.templates(st) if known is None else known
    problem = validation.services(decky, known) or validation.files(decky)
    return (problem.code, problem.message) if problem is not None else None


def _ip_holder(st: state.State, decky: views.Decky, lan: str, ip: str) -> str | None:
    claim = st.one("claim_idx", (decky.namespace, names.ip_claim_name(lan, ip)))
    if claim and claim.holder_name != decky.name:
        return str(claim.holder_name)
    for name, ips in indexes.addresses_on(st, decky.namespace, lan):
        if name != decky.name and ip in ips:
            return name
    return None


def lan_problems(st: state.State, body: Mapping[str, Any]) -> tuple[int, str] | None:
    lan = views.Lan.from_obj(body)
    problem = validation.lan(lan, st.config.limits)
    if problem is not None:
        return problem.code, problem.message
    if not lan.subnet:
        return None
    for (ns, name), other in st.values("lan_views"):
        if (ns, name) == (lan.namespace, lan.name):
            continue
        theirs = other.effective_subnet
        if theirs and allocation.overlaps(lan.subnet, theirs):
            return 409, f"subnet {lan.subnet} overlaps {theirs} of LAN {ns}/{name}"
    return None


async def _lookups(
    st: state.State,
    body: Mapping[str, Any],
) -> tuple[dict[str, views.Lan], dict[str, views.Template]]:
    """The indexes, completed by live reads for what they have not seen yet.

    A LAN and its deckies applied in one `kubectl apply` reach the webhook
    faster than the watch reaches the index; only the API server knows.
    """
    decky = views.Decky.from_obj(body)
    lans = indexes.lans_in(st, decky.namespace)
    known = indexes.templates(st)
    for net in decky.networks:
        if net.lan not in lans:
            obj = await _get(st, kclient.LAN, net.lan, decky.namespace)
            if obj is not None:
                lans[net.lan] = views.Lan.from_obj(obj)
    for svc in set(decky.services) | set(decky.service_config):
        if svc not in known:
            obj = await _get(st, kclient.ServiceTemplate, svc, None)
            if obj is not None:
                known[svc] = views.Template.from_obj(obj)
    return lans, known


async def _get(
    st: state.State, kind: Any, name: str, namespace: str | None
) -> dict[str, Any] | None:
    try:
        obj = await st.client.get(kind, name, namespace=namespace)
    except ApiError as err:
        if err.status.code == 404:
            return None
        raise
    return dict(obj.to_dict())


@kopf.on.validate(
    G, V, names.DECKIES, id="decky", operations=["CREATE", "UPDATE"], ignore_failures=True
)
async def validate_decky(*, body: kopf.Body, memo: Any, old: Any = None, **_: Any) -> None:
    if _skip(body, old):
        return
    st = state.of(memo)
    lans, known = await _lookups(st, body)
    problem = decky_problems(st, body, lans, known)
    if problem:
        raise _reject("Decky", problem[1], problem[0])


@kopf.on.validate(G, V, names.LANS, id="lan", operations=["CREATE", "UPDATE"], ignore_failures=True)
async def validate_lan(*, body: kopf.Body, memo: Any, old: Any = None, **_: Any) -> None:
    if _skip(body, old):
        return
    problem = lan_problems(state.of(memo), body)
    if problem:
        raise _reject("LAN", problem[1], problem[0])
