"""From a Decky (spec + the operator's status.plan) to the planner's DeckyWant.

The plan carries hashes, never secrets; the bytes of files and the service
config come from the spec (or a Secret/ConfigMap key, through a reader the
caller passes in), so they only ever live in memory and inside the container.
The archetype persona adds what the plan does not say: config defaults under
the user's serviceConfig, the base's MAC vendor and its sysctls.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from decnet.agent import hardening, planner
from decnet.api import v1alpha1
from decnet.api.v1alpha1 import personas
from decnet.kube import names

# (v1alpha1.FileSource secret | configMap, namespace, name, key) -> bytes, or None if missing.
RefReader = Callable[[str, str, str, str], bytes | None]


class FileSourceError(Exception):
    """A file's content cannot be read (missing Secret key, bad base64); names no content."""


def fingerprint(raw: Mapping[str, Any]) -> str:
    """Everything a converge depends on; an event that leaves it unchanged needs no work."""
    meta = raw.get("metadata") or {}
    status = raw.get("status") or {}
    relevant = {
        "spec": raw.get("spec"),
        "plan": status.get("plan"),
        "lifecycle": (status.get("lifecycle") or {}).get("id"),
        "deleting": bool(meta.get("deletionTimestamp")),
        "allow": (meta.get("annotations") or {}).get(names.ANNOTATION_ALLOW_RECREATE),
    }
    raw_json = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(raw_json.encode()).hexdigest()


def want_from_decky(decky: v1alpha1.Decky, read_ref: RefReader) -> planner.DeckyWant | None:
    """None when the operator has not planned the decky yet (the agent ignores it)."""
    status = decky.status
    plan = status.plan if status else None
    if plan is None:
        return None
    meta = decky.metadata
    namespace = str(meta.get("namespace", ""))
    annotations = meta.get("annotations") or {}
    spec = decky.spec
    name = str(meta.get("name", ""))
    archetype = spec.archetype
    configs, config_hashes = service_configs(decky, plan)
    return planner.DeckyWant(
        namespace=namespace,
        name=name,
        uid=str(meta.get("uid", "")),
        plan_hash=plan.hash,
        hostname=plan.hostname,
        base_image=plan.base_image,
        forwards_l3=plan.forwards_l3,
        networks=networks_of(plan),
        services=tuple(
            planner.ServiceWant(
                name=s.name,
                image=s.image,
                command=tuple(s.command),
                env=tuple(sorted(s.env.items())),
                config_hash=config_hashes.get(s.name, s.config_hash),
                security=hardening.Security.from_wire(
                    s.security.model_dump(by_alias=True) if s.security else None
                ),
            )
            for s in plan.services
        ),
        files=_files(decky, plan, namespace, read_ref),
        allow_recreate=annotations.get(names.ANNOTATION_ALLOW_RECREATE) == "true",
        config=configs,
        mac_address=personas.mac_address(archetype, f"{namespace}/{name}"),
        sysctls=personas.sysctls(archetype),
        packet_persona=personas.packet_persona(archetype),
    )


def networks_of(plan: v1alpha1.Plan) -> tuple[planner.NetworkWant, ...]:
    return tuple(
        planner.NetworkWant(
            lan=n.lan,
            network=n.network,
            ip=n.ip,
            subnet=n.subnet,
            gateway=n.gateway,
            dmz=n.dmz,
            driver=n.driver,
            parent=n.parent,
            topology=n.topology,
            egress=tuple(planner.EgressWant(e.cidr, e.protocol, tuple(e.ports)) for e in n.egress),
            sniffer=n.sniffer,
            labels=tuple(sorted(n.labels.items())),
        )
        for n in plan.networks
    )


def planned_networks(raw: Mapping[str, Any]) -> tuple[str, tuple[planner.NetworkWant, ...]] | None:
    """(namespace, networks) of a planned, live Decky as a dict; None otherwise.

    A plan that does not parse is skipped (the converge reports it), never fatal.
    """
    meta = raw.get("metadata") or {}
    plan = (raw.get("status") or {}).get("plan")
    if not plan or meta.get("deletionTimestamp"):
        return None
    try:
        parsed = v1alpha1.Plan.model_validate(plan)
    except ValueError:
        return None
    return str(meta.get("namespace", "")), networks_of(parsed)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def service_configs(
    decky: v1alpha1.Decky, plan: v1alpha1.Plan
) -> tuple[dict[str, str], dict[str, str]]:
    """Per service: the config JSON (persona defaults under the user's serviceConfig), and,
    where the persona adds defaults, a config hash that covers them too (an archetype change
    then recreates the service). Without persona defaults the plan's hash stands, so a
    container is never recreated for a change that does not reach it."""
    user = decky.spec.service_config or {}
    archetype = decky.spec.archetype
    configs: dict[str, str] = {}
    hashes: dict[str, str] = {}
    names_ = [s.name for s in plan.services]
    for svc in plan.services:
        own = user.get(svc.name)
        persona = personas.service_defaults(archetype, svc.name, plan.hostname)
        persona.update(personas.sharing_defaults(svc.name, names_))
        configs[svc.name] = _json({**persona, **(own or {})})
        if persona:
            raw = f"{svc.config_hash}\0{_json(persona)}"
            hashes[svc.name] = hashlib.sha256(raw.encode()).hexdigest()[:16]
    return configs, hashes


def _files(
    decky: v1alpha1.Decky, plan: v1alpha1.Plan, namespace: str, read_ref: RefReader
) -> tuple[planner.FileWant, ...]:
    by_path = {f.path: f for f in decky.spec.files or []}
    wants: list[planner.FileWant] = []
    for pf in plan.files:
        content = _content(pf, by_path.get(pf.path), namespace, read_ref)
        wants.append(
            planner.FileWant(
                path=pf.path,
                mode=pf.mode,
                mtime_offset_seconds=pf.mtime_offset_seconds,
                content_sha256=hashlib.sha256(content).hexdigest(),
                content=content,
            )
        )
    return tuple(wants)


def _content(pf: v1alpha1.PlanFile, spec_file: Any, namespace: str, read_ref: RefReader) -> bytes:
    if pf.source == v1alpha1.FileSource.INLINE:
        inline = spec_file.content.inline if spec_file is not None else None
        if inline is None:
            raise FileSourceError(f"file {pf.path}: no inline content in spec.files")
        try:
            return base64.b64decode(inline, validate=True)
        except (binascii.Error, ValueError) as error:
            raise FileSourceError(f"file {pf.path}: inline content is not base64") from error
    name, key = pf.name, pf.key
    if spec_file is not None and not name:
        ref = spec_file.content.secret_key_ref or spec_file.content.config_map_key_ref
        if ref is not None:
            name, key = ref.name, ref.key
    content = read_ref(pf.source, namespace, name, key)
    if content is None:
        raise FileSourceError(f"file {pf.path}: {pf.source} {name} has no key {key}")
    return content
