#!/usr/bin/env bash
# Builds (cached) a tiny checker on Prometheus' own PromQL parser, from the Go module
# proxy, and prints its path. `promql-check` reads one expression per line on stdin and
# exits non-zero naming each line that does not parse.
set -euo pipefail
VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
CACHE_ROOT="${DECNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/decnet-operator}"
bin="$CACHE_ROOT/bin/promql-check-$VERSION/promql-check"
if [[ ! -x "$bin" ]]; then
  work="$CACHE_ROOT/src/promql-check-$VERSION"
  mkdir -p "$work" "$(dirname "$bin")"
  cat > "$work/go.mod" <<GO
module decnet.io/testbed/promqlcheck

go 1.25

require github.com/prometheus/prometheus $VERSION
GO
  cat > "$work/main.go" <<'GO'
package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	p := parser.NewParser(parser.Options{})
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	bad, line := 0, 0
	for scanner.Scan() {
		line++
		if scanner.Text() == "" {
			continue
		}
		if _, err := p.ParseExpr(scanner.Text()); err != nil {
			fmt.Printf("line %d: %v\n", line, err)
			bad++
		}
	}
	if bad > 0 {
		os.Exit(1)
	}
}
GO
  (cd "$work" && GOFLAGS=-mod=mod go mod tidy >&2 && GOFLAGS=-mod=mod go build -trimpath -o "$bin" . >&2)
fi
echo "$bin"
