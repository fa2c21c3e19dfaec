"""crdgen: the committed CRDs are what the models generate, and staleness is caught."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from decnet.api import crdgen, v1alpha1

ROOT = Path(__file__).resolve().parents[3]


def test_committed_crds_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert crdgen.main(["--check", "--root", str(ROOT)]) == 0, capsys.readouterr().out


def test_check_reports_a_diff_for_an_edited_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert crdgen.main(["--root", str(tmp_path)]) == 0
    target = tmp_path / "crds" / "decnet.io_deckies.yaml"
    target.write_text(target.read_text().replace("shortNames:\n    - dk", "shortNames:\n    - d"))
    capsys.readouterr()
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "--- a/crds/decnet.io_deckies.yaml" in out
    assert "+    - dk" in out


def test_check_flags_a_generated_file_no_kind_produces(tmp_path: Path) -> None:
    crdgen.main(["--root", str(tmp_path)])
    (tmp_path / "crds" / "decnet.io_gone.yaml").write_text(crdgen.HEADER)
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 1
    crdgen.main(["--root", str(tmp_path)])
    assert not (tmp_path / "crds" / "decnet.io_gone.yaml").exists()


def test_output_is_deterministic() -> None:
    assert crdgen.outputs() == crdgen.outputs()


def test_crds_carry_names_columns_and_status_subresource() -> None:
    docs = {path.name: yaml.safe_load(path.read_text()) for path in (ROOT / "crds").glob("*.yaml")}
    assert set(docs) == {
        f"decnet.io_{m.crd.plural}.yaml"  # type: ignore[attr-defined]
        for m in v1alpha1.KINDS
    }
    decky = docs["decnet.io_deckies.yaml"]
    assert decky["spec"]["names"]["shortNames"] == ["dk"]
    assert decky["spec"]["names"]["categories"] == ["decnet"]
    version = decky["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Ready",
        "Node",
        "IP",
        "Services",
        "Reason",
        "Last-Contact",
        "Phase",
        "Age",
    ]
    assert version["subresources"] == {"status": {}}
    assert docs["decnet.io_topologies.yaml"]["spec"]["names"]["shortNames"] == ["topo"]
    st = docs["decnet.io_servicetemplates.yaml"]["spec"]
    assert st["names"]["shortNames"] == ["st"]
    assert st["scope"] == "Cluster"
    sink = docs["decnet.io_eventsinks.yaml"]["spec"]
    assert sink["scope"] == "Cluster"
    assert sink["names"]["shortNames"] == ["es"]
    assert (ROOT / "crds" / "decnet.io_deckies.yaml").read_text().startswith(crdgen.HEADER)


def test_chart_crds_are_the_generated_crds_in_helms_crds_directory() -> None:
    """Helm installs a chart's crds/ before its templates (so the chart's ServiceTemplates
    need no hook) and never deletes them on uninstall (so no object is lost by accident)."""
    for path in sorted((ROOT / "crds").glob("decnet.io_*.yaml")):
        chart_copy = ROOT / "charts/decnet-operator/crds" / path.name
        assert chart_copy.read_text() == path.read_text(), path.name
        assert "{{" not in chart_copy.read_text()
    assert not (ROOT / "charts/decnet-operator/templates/crds").exists()
