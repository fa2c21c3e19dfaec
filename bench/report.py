"""Writes bench/RESULTS.md from bench/results/*.json, beside the targets in DESIGN.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def load(name: str) -> dict[str, Any] | None:
    path = HERE / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _v(row: dict[str, Any], key: str) -> Any:
    value = row.get(key)
    return "—" if value is None else value


def scale_section(scale: dict[str, Any]) -> list[str]:
    rows = scale["rows"]
    agent = scale["agent_settings"]
    lines = [
        f"## Scale: {rows[-1]['deckies']} deckies over {scale['agents']} simulated nodes ({scale['at']})",
        "",
        f"The real API server, etcd and operator (chart ServiceAccount, webhook on) and"
        f" {scale['agents']} real agent processes with the in-memory engine (`--engine fake`,"
        f" {agent['fake_latency_seconds']} s per Docker call, {agent['workers']} workers,"
        f" resync every {agent['resync_seconds']} s), each its own node and Lease. Deckies"
        f" (base + ssh) applied with `kubectl apply --server-side` in batches of {scale['batch']}"
        f" ({scale.get('apply_parallel', 1)} kubectl processes at once, as Argo CD's parallelism)."
        " planned = the first watch event with status.plan, from the decky's creation;"
        " requests = apiserver_request_total of every client over the step, per decky added;"
        f" idle = {scale['idle_seconds']} s once all were Ready. `python3 bench/bench_scale.py`",
        "",
        "![operator RSS and planned latency against deckies](scale.png)",
        "",
        "| deckies | operator RSS idle (MB) | planned p50 / p99 (s) | from batch start p50 / p99 (s) | Ready p99 (s) | API requests per decky | idle decky writes/min | operator CPU idle (%) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = [
            r["deckies"],
            _v(r, "operator_rss_mb_idle"),
            f"{_v(r, 'planned_p50_seconds')} / {_v(r, 'planned_p99_seconds')}",
            f"{_v(r, 'planned_from_batch_start_p50_seconds')} / {_v(r, 'planned_from_batch_start_p99_seconds')}",
            _v(r, "ready_p99_seconds"),
            _v(r, "api_requests_per_decky"),
            _v(r, "idle_decky_writes_per_minute"),
            _v(r, "operator_cpu_percent_idle"),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    last = rows[-1]
    worst_p99 = max(r["planned_p99_seconds"] or 0 for r in rows)
    worst_idle = max(r.get("idle_decky_writes_per_minute") or 0 for r in rows)
    spread = scale["spread"]
    loss = scale["node_loss"]
    idle_rows = [r for r in rows if r.get("operator_rss_mb_idle") is not None]
    rss_row = idle_rows[-1] if idle_rows else last
    rss = rss_row.get("operator_rss_mb_idle") or 0
    req_rows = [r for r in rows if r.get("api_requests_per_decky") is not None]
    req = req_rows[-1] if req_rows else last
    rss_line = (
        f"- Target operator RSS at idle ≤ 300 MB: {rss} MB at {rss_row['deckies']}"
        f" — {verdict(rss <= 300)}"
    )
    if last is not rss_row and last.get("operator_rss_mb_busy"):
        rss_line += f"; {last['operator_rss_mb_busy']} MB at {last['deckies']} (still busy, no idle reached)"
    p99_line = f"- Target planned p99 ≤ 5 s while applying: worst step {worst_p99} s"
    if last.get("not_planned"):
        p99_line += (
            f", and at {last['deckies']} {last['not_planned']} of the last {last['added']}"
            f" not planned {last['not_planned_after_seconds']} s after the apply"
        )
    lines += [
        "",
        rss_line + ("" if last is rss_row else " — **not met**"),
        p99_line + f" — {verdict(worst_p99 <= 5 and not last.get('not_planned'))}",
        f"- Target 0 idle writes per minute: worst measured step {worst_idle} — {verdict(worst_idle == 0)}",
        f"- API requests per decky for a deploy at {req['deckies']}: {req.get('api_requests_per_decky')}"
        f" (`{json.dumps(req.get('api_requests_top', {}))}`)",
        f"- spread over {spread['nodes']} nodes: max {spread['max']}, min {spread['min']} deckies",
        f"- {len(loss['killed'])} agents killed (SIGKILL) with {loss['deckies']} deckies: marked"
        f" ({json.dumps(loss['marked_reasons'])}) in "
        + (
            f"{loss['marked_seconds']} s"
            if loss["marked_seconds"] is not None
            else f"— not marked within {loss['marked_timeout_seconds']} s"
        )
        + " (Lease duration 40 s); rescheduled: "
        + (
            f"{loss['rescheduled_seconds']} s"
            if loss["rescheduled_seconds"] is not None
            else f"not within {loss['rescheduled_timeout_seconds']} s"
            + (
                ""
                if scale.get("crd_has_node_loss")
                else " (the Decky CRD has no spec.nodeLoss yet)"
            )
        ),
        f"- the {len(loss['killed'])} agents restarted: "
        + (
            f"all their deckies Ready again in {loss['return_ready_seconds']} s"
            if loss.get("return_ready_seconds") is not None
            else f"{loss.get('return_ready_count')} of {loss['deckies']} deckies Ready within"
            f" {loss.get('return_timeout_seconds')} s"
        )
        + " (the fake engine starts empty: a returning agent recreates its containers,"
        " as after a node reboot)",
        "",
    ]
    lines += [f"- {note}" for note in scale.get("notes", [])]
    lines += [
        "- what holds the operator's memory and CPU, and what would fix it:"
        " [bench/scale-memory.md](scale-memory.md)",
        "",
    ]
    return lines


def main() -> None:
    lines = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (bench/report.py); do not edit by hand.",
        "",
    ]
    machine = None
    apply = load("apply")
    if apply:
        machine = apply["machine"]
        lines += [
            f"## apply → Ready vs raw Docker ({apply['at']})",
            "",
            "Base + 2 services per decky; raw Docker = a plain Docker SDK script creating the same",
            f"containers with {apply['agent_workers']} threads, measured in the same run.",
            "",
            f"Each size ran {apply.get('runs', 1)} times (raw and operator alternating); the row is"
            " the median run by ratio, every run's ratio beside it.",
            "",
            "| deckies | raw Docker (s) | apply → Ready (s) | ratio (median) | every run's ratio | overhead (s) | status writes/decky (mean, max of all runs) |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in apply["rows"]:
            ratios = ", ".join(str(r) for r in row.get("ratios", [row["ratio"]]))
            lines.append(
                f"| {row['deckies']} | {row['raw_docker_seconds']} | {row['operator_seconds']} | {row.get('median_ratio', row['ratio'])} "
                f"| {ratios} | {row['overhead_seconds']} | {row['status_writes_per_decky_mean']}, {row['status_writes_per_decky_max']} |"
            )
        lines.append("")
        by_n = {row["deckies"]: row for row in apply["rows"]}
        if 200 in by_n:
            lines.append(
                f"- Target 200 deckies ≤ 1.15 × raw: median ratio {by_n[200].get('median_ratio', by_n[200]['ratio'])} — {verdict(by_n[200].get('median_ratio', by_n[200]['ratio']) <= 1.15)}"
            )
        # (one decky's fraction of a CPU-second is within the noise of the sampling)
        node_rows = [
            r
            for r in apply["rows"]
            if r.get("median_node_cpu_ratio") is not None and r["deckies"] >= 50
        ]
        if node_rows:
            lines.append(
                "- What the node pays in CPU, Docker's side plus its driver (the script, or the"
                " agent), ours against raw; beside it, the CPU of the API server, etcd and"
                " operator, which a cluster runs elsewhere but which shared this machine's"
                f" {machine['cores']} cores with Docker here:"
            )
        for row in node_rows:
            cpu = row["cpu_seconds_during_apply"]
            control = sum(cpu.get(k, 0.0) for k in ("operator", "apiserver", "etcd"))
            node = row["node_cpu_seconds"]
            lines.append(
                f"  - {row['deckies']} deckies: median ratio {row['median_node_cpu_ratio']}"
                f" (runs {row['node_cpu_ratios']}; median run {node['ours']} against"
                f" {node['raw']} CPU-s); control plane {round(control, 1)} CPU-s"
            )
        if 1 in by_n:
            lines.append(
                f"- Target one decky ≤ raw + 0.5 s: overhead {by_n[1]['overhead_seconds']} s — {verdict(by_n[1]['overhead_seconds'] <= 0.5)}"
            )
            lines.append(
                "  (the agent reports a decky only once the containers it started have stayed up"
                " for its `--settle-seconds`, 1.5 s by default: a service that crashes at start is"
                " never shown Ready; `--settle-seconds 0` trades that for speed)"
            )
        for row in apply["rows"]:
            if "median_ready_seconds" in row:
                lines.append(
                    f"- {row['deckies']} deckies: the first Ready {row['first_ready_seconds']} s"
                    f" after the apply began, half of them by {row['median_ready_seconds']} s"
                    f" (all by {row['operator_seconds']} s)"
                )
        worst = max(row["status_writes_per_decky_max"] for row in apply["rows"])
        lines.append(
            f"- Target ≤ 3 status writes per decky for a deploy: max {worst} — {verdict(worst <= 3)}"
        )
        lines.append("")
    idle = load("idle")
    if idle:
        machine = machine or idle["machine"]
        lines += [
            f"## Idle with {idle['deckies']} deckies ({idle['at']})",
            "",
            f"- window: {idle['idle_seconds']} s after all were Ready ({idle['settle_seconds_to_all_ready']} s to settle)",
            f"- operator writes per minute: {idle['operator_writes_per_minute']}; writes to deckies per minute: {idle['decky_writes_per_minute']} — target 0, {verdict(idle['operator_writes_per_minute'] == 0 and idle['decky_writes_per_minute'] == 0)}",
            f"- agent lease renewals per minute: {idle['agent_lease_renewals_per_minute']} (one node, like kubelet's node lease; not counted above)",
            f"- operator RSS: max {idle['operator_rss_mb_max']} MB — target ≤ 200 MB, {verdict(idle['operator_rss_mb_max'] <= 200)}",
            f"- operator CPU: {idle['operator_cpu_percent']} % of one core",
            f"- every write in the window, by writer: `{json.dumps(idle['writes_by_writer'])}`",
            "",
        ]
    restart = load("restart")
    if restart:
        machine = machine or restart["machine"]
        secs = restart["seconds_to_converged"]
        lines += [
            f"## Agent restart with {restart['deckies']} deckies running ({restart['at']})",
            "",
            f"- SIGKILL, restart → converged: {secs} s — target ≤ 5 s, {verdict(secs is not None and secs <= 5)}",
            f"- containers recreated: {restart['containers_recreated']} of {restart['containers']} — target 0, {verdict(restart['containers_recreated'] == 0)}",
            "",
        ]
    ev = load("events")
    if ev:
        t, lat = ev["throughput"], ev["latency"]
        rate = t["events_per_cpu_second"]
        p99 = lat["p99_seconds"]
        lines += [
            f"## Attacker events ({ev['at']})",
            "",
            "The agent's event path (Docker log followers, parse + enrich + checkpoint, spool,"
            " TCP syslog delivery with RFC 6587 octet counting) against a real container and a"
            " receiver in another process.",
            "",
            f"- throughput: {t['delivered']} of {t['events']} events in {t['wall_seconds']} s,"
            f" {t['agent_cpu_seconds']} agent CPU-s → {rate} events per CPU-second"
            f" — target ≥ 2,000, {verdict(rate is not None and rate >= 2000)}",
            f"- latency at {lat['rate_per_second']} events/s for {lat['seconds']} s"
            f" ({lat['events']} events, {lat['missing']} missing): p50 {lat['p50_seconds']} s,"
            f" p99 {p99} s, max {lat['max_seconds']} s"
            f" — target p99 ≤ 2 s, {verdict(p99 is not None and p99 <= 2)}",
            "",
        ]
    emulators = load("emulators")
    if emulators:
        machine = machine or emulators["machine"]
        rows = [r for r in emulators["idle_memory"] if "cgroup_mib" in r]
        worst = max((r["cgroup_mib"] for r in rows), default=0.0)
        lines += [
            f"## The service image: idle memory per emulator container ({emulators['at']})",
            "",
            f"One container of `{emulators['image']}` per service, started with its launcher and"
            f" left idle {emulators['idle_seconds']} s. cgroup = what `docker stats` shows (usage"
            " minus page cache); RSS = the process's VmRSS (shared library pages included).",
            "",
            "| service | cgroup (MiB) | RSS (MiB) |",
            "|---|---:|---:|",
            *[
                f"| {r['service']} | {r.get('cgroup_mib', '-')} | {r.get('rss_mib', r.get('error', '-'))} |"
                for r in emulators["idle_memory"]
            ],
            "",
            f"- Target ≤ 30 MB per emulator container: worst {worst} MiB — {verdict(bool(rows) and worst <= 30)}",
        ]
        run = emulators.get("apply")
        if run:
            lines.append(
                f"- apply → Ready of {run['deckies']} deckies (base + {', '.join(run['services_per_decky'])})"
                f" with the service image: {run['operator_seconds']} s beside raw Docker"
                f" {run['raw_docker_seconds']} s (ratio {run['ratio']})"
            )
        if emulators.get("note"):
            lines.append(f"- {emulators['note']}")
        lines.append("")
    scale = load("scale")
    if scale:
        machine = machine or scale["machine"]
        lines += scale_section(scale)
    if machine:
        lines += ["## Machine", "", *[f"- {k}: {v}" for k, v in machine.items()], ""]
    (HERE / "RESULTS.md").write_text("\n".join(lines))
    print((HERE / "RESULTS.md").read_text())


if __name__ == "__main__":
    main()
