#!/usr/bin/env bash
# Delete a TPU VM (or the queued resource that created it). Results in GCS are kept.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: tpu/delete.sh --name NAME --zone ZONE [options]

Delete the TPU VM NAME. Anything not yet copied off the workers (e.g. ~/logs) is lost;
checkpoints and results already in the bucket stay.

  --name NAME     TPU name (default: $TPU_NAME)
  --zone ZONE     (default: $TPU_ZONE)
  --project ID    (default: $GCP_PROJECT)
  --queued        it was created with create.sh --queued: delete the queued resource and its VM
  --yes           do not ask for confirmation
  --dry-run       print the exact commands and run nothing
  -h, --help      this help
USAGE
}

NAME="${TPU_NAME:-}"
ZONE="${TPU_ZONE:-}"
PROJECT="${GCP_PROJECT:-}"
QUEUED=0
YES=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$@"; NAME="$2"; shift 2 ;;
    --zone) need_value "$@"; ZONE="$2"; shift 2 ;;
    --project) need_value "$@"; PROJECT="$2"; shift 2 ;;
    --queued) QUEUED=1; shift ;;
    --yes) YES=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
check_name "$NAME"
check_zone "$ZONE"
gcloud_location

confirm=()
if [[ "$YES" == 1 ]]; then
  confirm=(--quiet)  # gcloud asks otherwise
fi
if [[ "$QUEUED" == 1 ]]; then
  run gcloud compute tpus queued-resources delete "$NAME" "${LOCATION[@]}" --force "${confirm[@]}"
else
  run gcloud compute tpus tpu-vm delete "$NAME" "${LOCATION[@]}" "${confirm[@]}"
fi
