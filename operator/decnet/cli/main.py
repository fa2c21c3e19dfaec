"""`kubectl decnet`: the DECNET verbs people miss in plain kubectl.

kubectl finds `kubectl-decnet` on PATH (pip installs it) and runs it as
`kubectl decnet ...`. Everything here is a thin read or a one-annotation patch
through the API server with the user's kubeconfig and RBAC; the output comes
from the pure functions in decnet.cli.render.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from lightkube import ALL_NS, ApiError, Client, ConfigError, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from decnet.cli import eventview, render
from decnet.kube import names


def _resource(kind: str, plural: str) -> Any:
    # lightkube keeps a registry: asking twice (or after the operator did) returns one class.
    return create_namespaced_resource(names.GROUP, names.VERSION, kind, plural)


def _client(args: argparse.Namespace) -> Client:
    path = args.kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    if path:
        config = KubeConfig.from_file(path)
    else:
        config = KubeConfig.from_env()
    return Client(config.get(context_name=args.context), field_manager="kubectl-decnet")


def _namespace(args: argparse.Namespace, client: Client) -> str:
    return str(args.namespace or client.namespace or "default")


def _as_dict(obj: Any) -> dict[str, Any]:
    return dict(obj.to_dict()) if hasattr(obj, "to_dict") else dict(obj)


def cmd_mutate(args: argparse.Namespace) -> int:
    client = _client(args)
    namespace = _namespace(args, client)
    token = render.mutation_token()
    decky = _resource("Decky", names.DECKIES)
    client.patch(
        decky,
        args.decky,
        render.mutate_patch(token),
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )
    annotation = names.ANNOTATION_MUTATE_REQUEST
    print(f"decky.decnet.io/{args.decky} mutation requested ({annotation}={token})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    client = _client(args)
    namespace = ALL_NS if args.all_namespaces else _namespace(args, client)
    deckies = [
        _as_dict(d) for d in client.list(_resource("Decky", names.DECKIES), namespace=namespace)
    ]
    sys.stdout.write(render.status_table(deckies, all_namespaces=bool(args.all_namespaces)))
    return 0


def cmd_topology(args: argparse.Namespace) -> int:
    if args.format == "svg" and shutil.which("dot") is None:
        print(
            "error: --format svg needs Graphviz's `dot` on PATH (e.g. apt-get install graphviz);"
            " --format dot prints the graph source instead",
            file=sys.stderr,
        )
        return 2
    client = _client(args)
    namespace = _namespace(args, client)
    topology = _as_dict(
        client.get(_resource("Topology", names.TOPOLOGIES), args.name, namespace=namespace)
    )
    lans = [_as_dict(o) for o in client.list(_resource("LAN", names.LANS), namespace=namespace)]
    deckies = [
        _as_dict(o) for o in client.list(_resource("Decky", names.DECKIES), namespace=namespace)
    ]
    view = render.topology_view(topology, lans, deckies)
    if args.format == "text":
        sys.stdout.write(render.topology_text(view))
    elif args.format == "dot":
        sys.stdout.write(render.topology_dot(view))
    else:
        svg = subprocess.run(
            ["dot", "-Tsvg"],
            input=render.topology_dot(view),
            capture_output=True,
            text=True,
            check=False,
        )
        if svg.returncode != 0:
            print(f"error: dot failed: {svg.stderr.strip()}", file=sys.stderr)
            return 1
        sys.stdout.write(svg.stdout)
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    """AttackerContact Events (aggregated per decky, source and service)."""
    import json

    from lightkube.resources.core_v1 import Event

    client = _client(args)
    namespace = ALL_NS if args.all_namespaces else _namespace(args, client)
    selector: dict[str, Any] = {"reason": eventview.REASON}
    if args.decky:
        selector["involvedObject.name"] = args.decky
    listing = client.list(Event, namespace=namespace, fields=selector)
    items = eventview.rows((_as_dict(e) for e in listing), args.decky)
    wide = bool(args.all_namespaces)
    if args.output == "json":
        sys.stdout.write(json.dumps({"items": items}, indent=2) + "\n")
    else:
        sys.stdout.write(eventview.table(items, wide))
    if not args.watch:
        return 0
    sys.stdout.flush()
    for _, obj in client.watch(
        Event, namespace=namespace, fields=selector, resource_version=listing.resourceVersion
    ):
        for item in eventview.rows([_as_dict(obj)], args.decky):
            if args.output == "json":
                sys.stdout.write(json.dumps(item) + "\n")
            else:
                sys.stdout.write(eventview.table([item], wide, header=False))
            sys.stdout.flush()
    return 0


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--kubeconfig", help="path to the kubeconfig (default: $KUBECONFIG, ~/.kube/config)"
    )
    common.add_argument("--context", help="kubeconfig context to use")
    common.add_argument("-n", "--namespace", help="namespace (default: the context's)")

    top = argparse.ArgumentParser(prog="kubectl decnet", description="DECNET verbs for kubectl.")
    sub = top.add_subparsers(dest="command", required=True)

    mutate = sub.add_parser(
        "mutate", parents=[common], help="ask the operator to mutate a decky now"
    )
    mutate.add_argument("decky")
    mutate.set_defaults(func=cmd_mutate)

    status = sub.add_parser("status", parents=[common], help="deckies per node, failing ones first")
    status.add_argument("-A", "--all-namespaces", action="store_true")
    status.set_defaults(func=cmd_status)

    events = sub.add_parser(
        "events",
        parents=[common],
        help="attacker contact: who touched which decky, on which service, how often",
    )
    events.add_argument("decky", nargs="?", help="only this decky")
    events.add_argument("-A", "--all-namespaces", action="store_true")
    events.add_argument("-w", "--watch", action="store_true", help="keep printing changes")
    events.add_argument("-o", "--output", choices=["table", "json"], default="table")
    events.set_defaults(func=cmd_events)

    topo = sub.add_parser("topology", parents=[common], help="show a Topology's maze")
    topo.add_argument("name")
    topo.add_argument("--format", choices=["text", "dot", "svg"], default="text")
    topo.set_defaults(func=cmd_topology)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ApiError as error:
        print(f"error: {error.status.message}", file=sys.stderr)
        return 1
    except (ConfigError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
