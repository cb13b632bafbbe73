#!/usr/bin/env bash
# Create a Cloud TPU VM, directly or through a queued resource.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: tpu/create.sh --name NAME --zone ZONE [options]

Create a TPU VM (all workers of a pod slice) to run myojax on.

  --name NAME        TPU name (default: $TPU_NAME)
  --zone ZONE        e.g. us-central2-b (default: $TPU_ZONE)
  --project ID       GCP project (default: $GCP_PROJECT, else gcloud's default)
  --type TYPE        accelerator type (default: v4-32 = 4 hosts x 4 chips)
  --version VERSION  TPU VM runtime (default: tpu-ubuntu2204-base; v5e: v2-alpha-tpuv5-lite,
                     v5p: v2-alpha-tpuv5, v6e: v2-alpha-tpuv6e)
  --queued           request a queued resource (waits for capacity) instead of creating now
  --wait             with --queued: poll every 60 s until the resource is ACTIVE
  --spot             spot (preemptible) capacity; runs resume from their last checkpoint
  --dry-run          print the exact commands and run nothing
  -h, --help         this help
USAGE
}

NAME="${TPU_NAME:-}"
ZONE="${TPU_ZONE:-}"
PROJECT="${GCP_PROJECT:-}"
TYPE="v4-32"
VERSION="tpu-ubuntu2204-base"
QUEUED=0
WAIT=0
SPOT=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$@"; NAME="$2"; shift 2 ;;
    --zone) need_value "$@"; ZONE="$2"; shift 2 ;;
    --project) need_value "$@"; PROJECT="$2"; shift 2 ;;
    --type) need_value "$@"; TYPE="$2"; shift 2 ;;
    --version) need_value "$@"; VERSION="$2"; shift 2 ;;
    --queued) QUEUED=1; shift ;;
    --wait) WAIT=1; shift ;;
    --spot) SPOT=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
check_name "$NAME"
check_zone "$ZONE"
[[ "$TYPE" =~ ^v[0-9]+[a-z]*(-[a-z]+)?-[0-9]+$ ]] || die "accelerator type '$TYPE' should look like v4-32 or v5litepod-16"
if [[ "$WAIT" == 1 && "$QUEUED" == 0 ]]; then
  die "--wait applies to --queued requests only"
fi
gcloud_location

extra=()
if [[ "$SPOT" == 1 ]]; then
  extra+=(--spot)
fi

if [[ "$QUEUED" == 0 ]]; then
  run gcloud compute tpus tpu-vm create "$NAME" "${LOCATION[@]}" \
    --accelerator-type="$TYPE" --version="$VERSION" "${extra[@]}"
  exit 0
fi

# The queued resource carries the same name as the TPU VM it will create.
run gcloud compute tpus queued-resources create "$NAME" "${LOCATION[@]}" --node-id="$NAME" \
  --accelerator-type="$TYPE" --runtime-version="$VERSION" "${extra[@]}"
if [[ "$WAIT" == 1 ]]; then
  describe=(gcloud compute tpus queued-resources describe "$NAME" "${LOCATION[@]}"
    --format='value(state.state)')
  if [[ "$DRY_RUN" == 1 ]]; then
    show "${describe[@]}"
    echo "# repeated every 60 s until the state is ACTIVE"
    exit 0
  fi
  while true; do
    state="$("${describe[@]}")"
    echo "queued resource $NAME: $state"
    case "$state" in
      ACTIVE) break ;;
      FAILED | SUSPENDED) die "queued resource $NAME is $state" ;;
    esac
    sleep 60
  done
fi
