"""One module per protocol: PORTS, DEFAULTS and `async def serve(ctx)`."""
