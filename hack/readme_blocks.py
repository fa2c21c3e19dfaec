#!/usr/bin/env python3
"""The README's marked shell blocks, so that the demo and the tests run them as written.

A block is the ```sh fence right after an HTML comment `<!-- NAME ... -->`.

    python3 hack/readme_blocks.py cluster-install     # prints the lines
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def block(name: str, readme: Path = README) -> str:
    found = re.search(
        rf"<!-- {re.escape(name)}\b.*?-->\s*```sh\n(.*?)```", readme.read_text(), re.S
    )
    if not found:
        raise LookupError(f"{readme.name} has no `{name}` block")
    return found.group(1)


if __name__ == "__main__":
    print(block(sys.argv[1]), end="")
