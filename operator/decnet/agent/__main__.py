"""`python3 -m decnet.agent`: the node agent."""

import sys

from decnet.agent import main

sys.exit(main.main())
