#!/usr/bin/env bash
# Follow the log of a run on a TPU VM worker.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: tpu/logs.sh --name NAME --zone ZONE --run RUN [options]

Show ~/logs/RUN.log of a worker and keep following it (Ctrl-C stops following, not the run).

  --name NAME     TPU name (default: $TPU_NAME)
  --zone ZONE     (default: $TPU_ZONE)
  --project ID    (default: $GCP_PROJECT)
  --run RUN       run name given to launch.sh
  --worker W      worker index, or "all" (interleaved) (default: 0, the one that logs metrics)
  --lines N       lines of history to show first (default: 100)
  --no-follow     print and exit
  --dry-run       print the exact commands and run nothing
  -h, --help      this help
USAGE
}

NAME="${TPU_NAME:-}"
ZONE="${TPU_ZONE:-}"
PROJECT="${GCP_PROJECT:-}"
RUN=""
WORKER="0"
LINES="100"
FOLLOW=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$@"; NAME="$2"; shift 2 ;;
    --zone) need_value "$@"; ZONE="$2"; shift 2 ;;
    --project) need_value "$@"; PROJECT="$2"; shift 2 ;;
    --run) need_value "$@"; RUN="$2"; shift 2 ;;
    --worker) need_value "$@"; WORKER="$2"; shift 2 ;;
    --lines) need_value "$@"; LINES="$2"; shift 2 ;;
    --no-follow) FOLLOW=0; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
check_name "$NAME"
check_zone "$ZONE"
check_run_name "$RUN"
[[ "$WORKER" =~ ^([0-9]+|all)$ ]] || die "--worker must be a worker index or 'all', got '$WORKER'"
[[ "$LINES" =~ ^[0-9]+$ ]] || die "--lines must be a number, got '$LINES'"
gcloud_location

if [[ "$FOLLOW" == 1 ]]; then
  TAIL="tail -n $LINES -F logs/$RUN.log"
else
  TAIL="tail -n $LINES logs/$RUN.log"
fi
run gcloud compute tpus tpu-vm ssh "$NAME" "${LOCATION[@]}" --worker="$WORKER" --command="$TAIL"
