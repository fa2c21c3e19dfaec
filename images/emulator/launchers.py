"""Writes one launcher per service from daemons.tsv (run once, at image build).

A launcher sits where the real daemon would (/usr/sbin/sshd, ...), sets the
process title and name the real daemon shows in `ps`, and starts the service's module.
Usage: python3 launchers.py daemons.tsv PACKAGE
"""

import os
import sys

TEMPLATE = """#!/usr/bin/python3
try:
    import setproctitle
    setproctitle.setproctitle({title!r})
    setproctitle.setthreadtitle({comm!r})
except ImportError:
    pass
import {package}.main
{package}.main.run({service!r})
"""


def main(table: str, package: str) -> None:
    with open(table, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip() or line.startswith("#"):
                continue
            service, path, title = line.rstrip("\n").split("\t")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as out:
                comm = os.path.basename(path)[:15]
                out.write(TEMPLATE.format(title=title, comm=comm, package=package, service=service))
            os.chmod(path, 0o755)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
