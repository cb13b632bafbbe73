#!/usr/bin/env bash
# Copy a run's results (metrics, reports, worker logs; checkpoints optional) from GCS.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: tpu/fetch.sh --bucket gs://BUCKET/PREFIX --run RUN [options]

Mirror gs://BUCKET/PREFIX/RUN into DEST/RUN (incremental: rerun to update).

  --bucket PATH         gs:// prefix given to launch.sh (default: $MYOJAX_BUCKET)
  --run RUN             run name
  --dest DIR            local directory (default: results)
  --with-checkpoints    also copy checkpoints (large); by default they stay in the bucket
  --dry-run             print the exact commands and run nothing
  -h, --help            this help
USAGE
}

BUCKET="${MYOJAX_BUCKET:-}"
RUN=""
DEST="results"
CHECKPOINTS=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bucket) need_value "$@"; BUCKET="$2"; shift 2 ;;
    --run) need_value "$@"; RUN="$2"; shift 2 ;;
    --dest) need_value "$@"; DEST="$2"; shift 2 ;;
    --with-checkpoints) CHECKPOINTS=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
check_bucket "$BUCKET"
check_run_name "$RUN"

filter=()
if [[ "$CHECKPOINTS" == 0 ]]; then
  filter=(--exclude='(^|.*/)checkpoints/.*')
fi
run mkdir -p "$DEST/$RUN"
run gcloud storage rsync --recursive "${filter[@]}" "${BUCKET%/}/$RUN" "$DEST/$RUN"
