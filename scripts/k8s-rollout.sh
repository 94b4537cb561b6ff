#!/usr/bin/env bash
# Worker builds on Kubernetes, one Deployment per build (README "Rolling out
# a new worker build on Kubernetes"). Bookings are Pinned to the build they
# started on, so an old build's workers stay until Temporal reports that
# build drained; only then is its Deployment deleted.
#
#   scripts/k8s-rollout.sh new OVERLAY BUILD IMAGE
#       Write OVERLAY/workers/BUILD/kustomization.yaml: the build's worker
#       Deployment, ScaledObject, PodDisruptionBudget and set-current Job,
#       named flightctl-*-BUILD, labelled flightctl.io/build=BUILD, running
#       IMAGE (REGISTRY/flightctl@sha256:<digest>). Commit it.
#   scripts/k8s-rollout.sh roll OVERLAY NEW [OLD]
#       1. apply build NEW next to the running ones, wait for its pods;
#       2-3. wait for its Job: it waits until NEW's workers poll, then makes
#          NEW the current version (new bookings start on it);
#       4. ask Temporal (`flightctl deployment drained`, run in a NEW pod)
#          every DRAIN_POLL seconds (60) until OLD is DRAINED, then delete
#          OLD's objects. Gives up after DRAIN_TIMEOUT seconds (3600),
#          leaving OLD running.
set -euo pipefail

die() { echo "k8s-rollout: $*" >&2; exit 1; }

# A build id names Kubernetes objects and is a label value: lowercase
# letters, digits and '-', at most 32, so flightctl-set-current-BUILD fits.
check_build() {
  [[ $1 =~ ^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$ ]] ||
    die "build id '$1': 1-32 lowercase letters, digits or '-', not at either end"
}

new_build() {
  local overlay=$1 build=$2 image=$3
  check_build "$build"
  [[ $image =~ ^([^@]+)@(sha256:[0-9a-f]{64})$ ]] ||
    die "image '$image': REGISTRY/flightctl@sha256:<64 hex> (a build's image never changes)"
  local name=${BASH_REMATCH[1]} digest=${BASH_REMATCH[2]}
  [ -f "$overlay/worker/kustomization.yaml" ] ||
    die "$overlay/worker/kustomization.yaml: the environment's worker settings are missing"
  local dir=$overlay/workers/$build
  [ ! -e "$dir" ] || die "$dir exists: a build is written once (a new image is a new build)"
  mkdir -p "$dir"
  cat >"$dir/kustomization.yaml" <<EOF
# Worker build $build (scripts/k8s-rollout.sh new): Deployment
# flightctl-worker-$build, its ScaledObject and PodDisruptionBudget, and Job
# flightctl-set-current-$build. Delete it only once the build is drained.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization

nameSuffix: "-$build"

resources:
  - ../../worker

labels:
  - pairs:
      flightctl.io/build: "$build"
    includeSelectors: true

images:
  - name: flightctl
    newName: $name
    digest: $digest

patches:
  - target: {kind: ScaledObject}
    patch: |-
      - op: replace
        path: /spec/triggers/0/metadata/workerDeploymentBuildId
        value: "$build"
EOF
  echo "wrote $dir/kustomization.yaml"
}

roll() {
  local overlay=$1 new=$2 old=${3:-}
  check_build "$new"
  [ -z "$old" ] || check_build "$old"
  local dir=$overlay/workers/$new
  [ -f "$dir/kustomization.yaml" ] || die "$dir: no such build (write it with: $0 new)"
  [ -z "$old" ] || [ -f "$overlay/workers/$old/kustomization.yaml" ] ||
    die "$overlay/workers/$old: no such build"
  local ns
  ns=$(kubectl kustomize "$dir" | sed -n 's/^  namespace: //p' | head -n 1)
  [ -n "$ns" ] || die "$dir renders no namespace"
  local k=(kubectl --namespace "$ns")

  echo "1/4 build $new: applying its Deployment next to the running builds"
  kubectl apply -k "$dir"
  "${k[@]}" rollout status "deployment/flightctl-worker-$new" --timeout=10m
  echo "2-3/4 build $new: waiting for its pollers, then making it current"
  "${k[@]}" wait --for=condition=complete "job/flightctl-set-current-$new" --timeout=15m
  [ -n "$old" ] || { echo "build $new is current"; return; }

  echo "4/4 build $old: waiting until Temporal reports it drained"
  local poll=${DRAIN_POLL:-60} deadline=$((SECONDS + ${DRAIN_TIMEOUT:-3600})) rc
  while :; do
    rc=0
    "${k[@]}" exec "deployment/flightctl-worker-$new" -c worker -- \
      /usr/local/bin/flightctl deployment drained --build-id "$old" || rc=$?
    case $rc in
      0) break ;;
      2) [ "$SECONDS" -lt "$deadline" ] ||
           die "build $old is not drained after ${DRAIN_TIMEOUT:-3600}s: left running; run again later" ;;
      *) die "asking Temporal about build $old failed (exit $rc): build $old left running" ;;
    esac
    sleep "$poll"
  done
  kubectl delete --ignore-not-found -k "$overlay/workers/$old"
  echo "build $old deleted; remove $overlay/workers/$old from the repository"
}

case "${1:-}" in
  new) [ $# -eq 4 ] || die "usage: $0 new OVERLAY BUILD IMAGE"; new_build "$2" "$3" "$4" ;;
  roll) [ $# -eq 3 ] || [ $# -eq 4 ] || die "usage: $0 roll OVERLAY NEW [OLD]"; roll "$2" "$3" "${4:-}" ;;
  *) die "usage: $0 new OVERLAY BUILD IMAGE | roll OVERLAY NEW [OLD]" ;;
esac
