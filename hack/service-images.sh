#!/usr/bin/env bash
# Builds local stand-in images for the ServiceTemplates in the given files
# (default examples/servicetemplates.yaml), for machines with no registry:
# busybox with listeners on the template's ports; http and telnet run the
# real busybox httpd. Skips images that already exist.
set -euo pipefail
cd "$(dirname "$0")/.."
files=("$@"); [[ ${#files[@]} -gt 0 ]] || files=(examples/servicetemplates.yaml)
bash hack/images.sh >/dev/null
python3 - "${files[@]}" <<'PY' | while IFS=$'\t' read -r image service ports; do
import sys, yaml
for path in sys.argv[1:]:
    for doc in yaml.safe_load_all(open(path)):
        if not doc or doc.get("kind") != "ServiceTemplate":
            continue
        spec = doc["spec"]
        ports = " ".join(f"{p['port']}/{p.get('protocol', 'tcp')}" for p in spec.get("ports", []))
        print(f"{spec['image']}\t{doc['metadata']['name']}\t{ports}")
PY
  if docker image inspect "$image" >/dev/null 2>&1; then continue; fi
  if [[ "$image" == decnet-test/* ]]; then continue; fi
  DOCKER_BUILDKIT=0 docker build -q -t "$image" --build-arg SERVICE="$service" --build-arg PORTS="$ports" hack/standin >/dev/null
  echo "[service-images] built $image (stand-in for $service: $ports)" >&2
done
