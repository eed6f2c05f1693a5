#!/usr/bin/env bash
# Installs the OPA CLI at the version Gatekeeper v3.23.0 pins (its go.mod: github.com/open-policy-agent/opa v1.17.1),
# so `opa test` on policies/gatekeeper/rego runs the same Rego engine Gatekeeper embeds.
# Idempotent: skips when the cached binary exists. Prints the binary path last.
set -euo pipefail
OPA_VERSION=v1.17.1 # keep in step with test/gatekeeper/go.mod (gatekeeper v3.23.0 -> opa v1.17.1)
TOOLS="${SIGPIN_TOOLS:-$HOME/.cache/sigpin-tools}"
DEST="$TOOLS/opa-$OPA_VERSION"
if [ -x "$DEST/opa" ]; then
  echo "$DEST/opa"
  exit 0
fi
command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null 2>&1 || { echo "setup-opa: go not found (needed to build opa $OPA_VERSION)" >&2; exit 1; }
rm -rf "$DEST.tmp" && mkdir -p "$DEST.tmp"
# CGO off: a static binary that does not depend on the build machine's libc.
install() { GOBIN="$DEST.tmp" CGO_ENABLED=0 GOFLAGS=-buildvcs=false go install "github.com/open-policy-agent/opa@$OPA_VERSION"; }
# Offline first: the module cache's download folder serves as a proxy (its modules were checksum-verified when
# they were downloaded). `go install mod@version` cannot use GOPROXY=off: it looks the module up for deprecations.
if ! GOPROXY="file://$(go env GOMODCACHE)/cache/download" GOSUMDB=off install 2>/dev/null; then
  install
fi
"$DEST.tmp/opa" version >/dev/null
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
echo "$DEST/opa"
