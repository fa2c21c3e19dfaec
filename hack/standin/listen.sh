#!/bin/sh
# Stand-in service for local runs without a registry: listens on every port
# in DECNET_PORTS ("80/tcp 443/tcp ...") and logs each connection as an
# RFC 5424 line on stdout, like the real DECNET services do.
service="${DECNET_SERVICE:-service}"
case "$service" in
  http) exec httpd -f -p 80 -h /var/www ;;
esac
for spec in $DECNET_PORTS; do
  port="${spec%/*}"
  proto="${spec#*/}"
  [ "$proto" = "tcp" ] || continue
  DECNET_PORT="$port" nc -ll -p "$port" -e /decnet/banner.sh &
done
echo "<134>1 $(date -u +%Y-%m-%dT%H:%M:%SZ) $(hostname) $service - start - listening on $DECNET_PORTS"
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $!; done
