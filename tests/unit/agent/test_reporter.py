"""The report the agent writes, the Decky -> DeckyWant adapter and the build fallback detection."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from decnet.agent import desired, planner, reporter
from decnet.api import v1alpha1
from decnet.kube import names

NS, NAME, UID = "decoys", "ws-01", "uid-1"


def decky_dict(**status_extra: Any) -> dict[str, Any]:
    inline = base64.b64encode(b"lure").decode()
    return {
        "apiVersion": names.API_VERSION,
        "kind": "Decky",
        "metadata": {
            "name": NAME,
            "namespace": NS,
            "uid": UID,
            "annotations": {names.ANNOTATION_ALLOW_RECREATE: "true"},
        },
        "spec": {
            "services": ["smb"],
            "serviceConfig": {"smb": {"workgroup": "CORP", "password": "s3cret"}},
            "networks": [{"lan": "office"}],
            "files": [
                {"path": "/a.txt", "mode": 0o600, "content": {"inline": inline}},
                {"path": "/b.txt", "content": {"secretKeyRef": {"name": "lures", "key": "b"}}},
            ],
        },
        "status": {
            "plan": {
                "hash": "plan-1",
                "hostname": "WS-01",
                "baseImage": "decnet/base:0.1.0",
                "networks": [
                    {
                        "lan": "office",
                        "network": names.network_name(NS, "office"),
                        "ip": "10.20.0.15",
                        "subnet": "10.20.0.0/24",
                        "gateway": "10.20.0.1",
                    }
                ],
                "services": [
                    {"name": "smb", "image": "decnet/smb:0.1.0", "env": {"B": "2", "A": "1"}}
                ],
                "files": [
                    {"path": "/a.txt", "mode": 0o600, "source": "inline", "sha256": "x"},
                    {"path": "/b.txt", "source": "secret", "name": "lures", "key": "b"},
                ],
            },
            "lifecycle": {"id": "lc-1", "operation": "Deploy", "phase": "Running"},
            **status_extra,
        },
    }


def reader(kind: str, ns: str, name: str, key: str) -> bytes | None:
    return b"from-secret" if (kind, ns, name, key) == ("secret", NS, "lures", "b") else None


def test_a_decky_becomes_the_planners_want() -> None:
    want = desired.want_from_decky(v1alpha1.Decky.model_validate(decky_dict()), reader)
    assert want is not None
    assert (want.namespace, want.name, want.uid, want.plan_hash) == (NS, NAME, UID, "plan-1")
    assert want.home is not None and want.home.internal and want.home.ip == "10.20.0.15"
    assert want.services[0].env == (("A", "1"), ("B", "2"))
    assert want.allow_recreate
    assert want.files is not None
    assert [(f.path, f.content) for f in want.files] == [
        ("/a.txt", b"lure"),
        ("/b.txt", b"from-secret"),
    ]
    assert want.files[1].mode == 0o644
    assert want.config["smb"] == '{"password":"s3cret","workgroup":"CORP"}'
    assert "s3cret" not in repr(want)


def test_an_unplanned_decky_is_ignored() -> None:
    raw = decky_dict()
    del raw["status"]["plan"]
    assert desired.want_from_decky(v1alpha1.Decky.model_validate(raw), reader) is None


def test_a_missing_secret_key_is_a_file_source_error_naming_no_content() -> None:
    with pytest.raises(desired.FileSourceError, match="lures has no key b"):
        desired.want_from_decky(v1alpha1.Decky.model_validate(decky_dict()), lambda *args: None)


def test_the_fingerprint_ignores_the_agents_own_report() -> None:
    a = decky_dict()
    b = decky_dict(agent={"node": "n", "planHash": "plan-1", "state": "Converged"})
    assert desired.fingerprint(a) == desired.fingerprint(b)
    c = decky_dict()
    c["status"]["lifecycle"]["id"] = "lc-2"
    assert desired.fingerprint(a) != desired.fingerprint(c)


def _want() -> planner.DeckyWant:
    want = desired.want_from_decky(v1alpha1.Decky.model_validate(decky_dict()), reader)
    assert want is not None
    return want


def _containers(
    want: planner.DeckyWant, svc_hash: str | None = None
) -> list[planner.ContainerSeen]:
    base = planner.ContainerSeen(
        "b" * 64,
        want.base_name,
        {names.LABEL_ROLE: "base", names.LABEL_CONTAINER_HASH: planner.base_hash(want)},
        "running",
    )
    svc = planner.ContainerSeen(
        "s" * 64,
        want.service_name("smb"),
        {
            names.LABEL_ROLE: "service",
            names.LABEL_SERVICE: "smb",
            names.LABEL_CONTAINER_HASH: svc_hash
            or planner.service_hash(want.services[0], base.id, want.lure_paths),
        },
        "running",
    )
    return [svc, base]


def test_the_report_lists_containers_base_first_with_the_plan_hash() -> None:
    want = _want()
    report = reporter.build_report(
        "node-a", want, "plan-1", "lc-1", "Converged", "", _containers(want)
    )
    assert report["agent"] == {
        "node": "node-a",
        "planHash": "plan-1",
        "state": "Converged",
        "message": "",
        "lifecycleId": "lc-1",
    }
    assert [c["role"] for c in report["containers"]] == ["base", "service"]
    assert [c["planHash"] for c in report["containers"]] == ["plan-1", "plan-1"]
    assert report["containers"][1]["service"] == "smb"


def test_a_stale_container_carries_no_plan_hash() -> None:
    want = _want()
    report = reporter.build_report("n", want, "plan-1", "", "Failed", "x", _containers(want, "old"))
    assert [c["planHash"] for c in report["containers"]] == ["plan-1", ""]


def test_messages_are_capped_at_2000_characters() -> None:
    report = reporter.build_report("n", None, "p", "", "Failed", "e" * 5000, [])
    assert len(report["agent"]["message"]) == 2000


def test_an_identical_report_is_not_written_again() -> None:
    want = _want()
    report = reporter.build_report("n", want, "plan-1", "lc-1", "Converged", "", _containers(want))
    assert reporter.differs({}, report)
    assert not reporter.differs(dict(report), report)
    changed = reporter.build_report("n", want, "plan-1", "lc-2", "Converged", "", _containers(want))
    assert reporter.differs(dict(report), changed)


def test_the_apply_body_carries_only_the_agents_fields() -> None:
    report = reporter.build_report("n", None, "p", "", "Removed", "", [])
    body = reporter.apply_body(NS, NAME, report)
    assert body["apiVersion"] == names.API_VERSION and body["kind"] == "Decky"
    assert set(body["status"]) == {"containers", "agent"}
    assert body["metadata"] == {"name": NAME, "namespace": NS}


def test_a_judged_failure_carries_its_reason_and_a_later_success_drops_it() -> None:
    want = _want()
    failed = reporter.build_report(
        "n", want, "plan-1", "", "Failed", "service smb exited (exit code 3)", [], "ServiceExited"
    )
    assert failed["agent"]["reason"] == "ServiceExited"
    ok = reporter.build_report("n", want, "plan-1", "", "Converged", "", [])
    assert "reason" not in ok["agent"]
    assert reporter.differs({"agent": failed["agent"], "containers": []}, ok)
