"""`python3 -m decnet.controller` runs the operator."""

from decnet.controller import main

main.main()
