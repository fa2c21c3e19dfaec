#!/bin/sh
# One connection: greet, read one line, log it to the container's stdout.
echo "220 ${DECNET_SERVICE:-service} ready"
read -r line
echo "<134>1 $(date -u +%Y-%m-%dT%H:%M:%SZ) $(hostname) ${DECNET_SERVICE:-service} - connection - port=${DECNET_PORT} first_line=\"${line}\"" > /proc/1/fd/1
