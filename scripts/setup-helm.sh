#!/usr/bin/env bash
# Chart test tools, cached outside the repo and keyed by version (idempotent: skips what is already there):
#   helm, kubeconform     built with `go install` at the pinned versions below
#   kube-schemas-<key>/   kubeconform JSON schemas made offline from the modules' own files:
#                         Kubernetes OpenAPI v3 (k8s.io/kubernetes api/openapi-spec/v3) for built-in kinds, and the
#                         CRD YAML of Gatekeeper, Kyverno, cert-manager, prometheus-operator, Flux and Argo CD.
# Every version used by the chart tests is pinned here, in one place; test/chart/tools.ts reads the paths back
# from `scripts/setup-helm.sh --print-env`.
set -euo pipefail

HELM_MODULE=helm.sh/helm/v3
HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.7.0
# module@version -> CRD files inside it (paths relative to the module root)
K8S_OPENAPI_MODULE=k8s.io/kubernetes@v1.35.0
GATEKEEPER_MODULE=github.com/open-policy-agent/gatekeeper/v3@v3.23.0
KYVERNO_MODULE=github.com/kyverno/kyverno@v1.19.0
CERT_MANAGER_MODULE=github.com/cert-manager/cert-manager@v1.21.2
PROMETHEUS_OPERATOR_MODULE=github.com/prometheus-operator/prometheus-operator@v0.85.0
FLUX_KUSTOMIZE_MODULE=github.com/fluxcd/kustomize-controller@v1.9.6
FLUX_SOURCE_MODULE=github.com/fluxcd/source-controller@v1.9.6
ARGOCD_MODULE=github.com/argoproj/argo-cd/v3@v3.5.7

# The Go toolchain lives in /usr/local/go on these machines; it may be missing from a non-login PATH.
[ -d /usr/local/go/bin ] && PATH="$PATH:/usr/local/go/bin"
repo="$(cd "$(dirname "$0")/.." && pwd)"
tools="${SIGPIN_TOOLS:-$HOME/.cache/sigpin-tools}"
helm_bin="$tools/helm-$HELM_VERSION/helm"
kubeconform_bin="$tools/kubeconform-$KUBECONFORM_VERSION/kubeconform"
converter="$repo/test/chart/tools/kube-schemas.ts"
node_bin="$repo/node_modules/.bin/node"

# The schema cache key covers every source module and the converter itself.
schema_key="$(printf '%s\n' "$K8S_OPENAPI_MODULE" "$GATEKEEPER_MODULE" "$KYVERNO_MODULE" "$CERT_MANAGER_MODULE" \
  "$PROMETHEUS_OPERATOR_MODULE" "$FLUX_KUSTOMIZE_MODULE" "$FLUX_SOURCE_MODULE" "$ARGOCD_MODULE" |
  cat - "$converter" | sha256sum | cut -c1-16)"
schemas_dir="$tools/kube-schemas-$schema_key"

if [ "${1:-}" = --print-env ]; then
  printf 'SIGPIN_HELM=%s\nSIGPIN_KUBECONFORM=%s\nSIGPIN_KUBE_SCHEMAS=%s\n' "$helm_bin" "$kubeconform_bin" "$schemas_dir"
  # Gatekeeper's own chart, from the module (examples/quickstart/gatekeeper-values.yaml is rendered with it)
  if command -v go >/dev/null 2>&1; then
    printf 'SIGPIN_GATEKEEPER_CHART=%s/%s/manifest_staging/charts/gatekeeper\n' "$(go env GOMODCACHE)" "$GATEKEEPER_MODULE"
  fi
  exit 0
fi

command -v go >/dev/null 2>&1 || { echo "setup-helm: go is not installed" >&2; exit 1; }
mkdir -p "$tools"
# One setup at a time (concurrent test runs share the cache).
exec 9>"$tools/setup-helm.lock"
flock 9
# Outside any go.mod, so `go install`/`go mod download` use exactly the versions named here.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

go_install() { # module/cmd@version destination-dir
  local dest="$2"
  echo "setup-helm: go install $1" >&2
  mkdir -p "$dest.tmp"
  GOBIN="$dest.tmp" go install "$1"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
}

[ -x "$helm_bin" ] || go_install "$HELM_MODULE/cmd/helm@$HELM_VERSION" "$(dirname "$helm_bin")"
[ -x "$kubeconform_bin" ] ||
  go_install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" "$(dirname "$kubeconform_bin")"

if [ ! -f "$schemas_dir/.complete" ]; then
  module_dir() { # module@version -> its directory in the module cache (downloads it)
    local dir
    dir="$(go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [ -n "$dir" ] && [ -d "$dir" ] || { echo "setup-helm: go mod download $1 failed" >&2; go mod download "$1"; exit 1; }
    printf '%s' "$dir"
  }
  k8s="$(module_dir "$K8S_OPENAPI_MODULE")"
  gk="$(module_dir "$GATEKEEPER_MODULE")"
  ky="$(module_dir "$KYVERNO_MODULE")"
  cm="$(module_dir "$CERT_MANAGER_MODULE")"
  po="$(module_dir "$PROMETHEUS_OPERATOR_MODULE")"
  fk="$(module_dir "$FLUX_KUSTOMIZE_MODULE")"
  fs="$(module_dir "$FLUX_SOURCE_MODULE")"
  ar="$(module_dir "$ARGOCD_MODULE")"
  crds=(
    "$gk/manifest_staging/charts/gatekeeper/crds/provider-customresourcedefinition.yaml"
    "$gk/manifest_staging/charts/gatekeeper/crds/constrainttemplate-customresourcedefinition.yaml"
    "$gk/manifest_staging/charts/gatekeeper/crds/assign-customresourcedefinition.yaml"
    "$gk/manifest_staging/charts/gatekeeper/crds/assignimage-customresourcedefinition.yaml"
    "$gk/manifest_staging/charts/gatekeeper/crds/assignmetadata-customresourcedefinition.yaml"
    "$gk/manifest_staging/charts/gatekeeper/crds/modifyset-customresourcedefinition.yaml"
    "$gk/manifest_staging/charts/gatekeeper/crds/expansiontemplate-customresourcedefinition.yaml"
    "$gk/manifest_staging/charts/gatekeeper/crds/config-customresourcedefinition.yaml"
    "$ky/config/crds/kyverno/kyverno.io_clusterpolicies.yaml"
    "$ky/config/crds/kyverno/kyverno.io_policies.yaml"
    "$ky/config/crds/policies.kyverno.io/policies.kyverno.io_mutatingpolicies.yaml"
    "$ky/config/crds/policies.kyverno.io/policies.kyverno.io_validatingpolicies.yaml"
    "$ky/config/crds/policies.kyverno.io/policies.kyverno.io_imagevalidatingpolicies.yaml"
    "$cm/deploy/crds/cert-manager.io_certificates.yaml"
    "$cm/deploy/crds/cert-manager.io_issuers.yaml"
    "$cm/deploy/crds/cert-manager.io_clusterissuers.yaml"
    "$po/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"
    "$fk/config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml"
    "$fs/config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml"
    "$fs/config/crd/bases/source.toolkit.fluxcd.io_ocirepositories.yaml"
    "$fs/config/crd/bases/source.toolkit.fluxcd.io_helmrepositories.yaml"
    "$ar/manifests/crds/application-crd.yaml"
  )
  args=(--out "$schemas_dir.tmp" --k8s-openapi "$k8s/api/openapi-spec/v3"
    --gatekeeper-match "$gk/pkg/target/matchcrd_constant.go")
  for f in "${crds[@]}"; do
    [ -f "$f" ] || { echo "setup-helm: CRD file missing: $f" >&2; exit 1; }
    args+=(--crd "$f")
  done
  rm -rf "$schemas_dir.tmp"
  "$node_bin" "$converter" "${args[@]}" >&2
  touch "$schemas_dir.tmp/.complete"
  rm -rf "$schemas_dir" && mv "$schemas_dir.tmp" "$schemas_dir"
  # schemas made by earlier converter or module versions are no longer used
  find "$tools" -maxdepth 1 -name 'kube-schemas-*' ! -name "kube-schemas-$schema_key" -exec rm -rf {} +
fi
echo "setup-helm: helm $HELM_VERSION, kubeconform $KUBECONFORM_VERSION, schemas in $schemas_dir" >&2
