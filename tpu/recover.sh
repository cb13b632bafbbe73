#!/usr/bin/env bash
# Bring a preempted TPU VM (or a suspended queued resource) back and resume its study.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: tpu/recover.sh --name NAME --zone ZONE --bucket gs://BUCKET/PREFIX --run RUN [options] [-- ARGS...]

Resume a study after its TPU stopped under it. A preempted spot TPU VM stays PREEMPTED and a
suspended queued resource stays SUSPENDED: neither comes back by itself, and rerunning
launch.sh on it does nothing. This script asks gcloud for the node's state and then:

  READY / ACTIVE        (the hosts restarted, e.g. after maintenance) setup.sh, launch.sh
  anything else, or no such node: delete.sh --yes, create.sh (--queued --wait for a queued
                        resource), setup.sh, launch.sh

Give it the options you gave create.sh, setup.sh and launch.sh. The study resumes from the
checkpoints in the bucket: finished runs are skipped and the current one continues from its
last checkpoint (study runs save every 30 minutes as well as by steps, keeping two).

  --name NAME        TPU name (default: $TPU_NAME)
  --zone ZONE        (default: $TPU_ZONE)
  --project ID       (default: $GCP_PROJECT)
  --type TYPE        create.sh --type (default: v4-32)
  --version VERSION  create.sh --version (default: create.sh's)
  --queued           the node is a queued resource (create.sh --queued)
  --spot             recreate it on spot capacity (create.sh --spot)
  --bucket PATH      setup.sh and launch.sh --bucket (default: $MYOJAX_BUCKET)
  --mount DIR        setup.sh and launch.sh --mount (default: $MYOJAX_MOUNT, else
                     /mnt/myojax-bucket)
  --ref REF          setup.sh --ref: the revision to install (default: HEAD; use the one the
                     study started with)
  --stage gs://...   setup.sh --data: token shards to stage on every worker's ~/data again
  --run RUN          launch.sh --run: the study's run name
  --preset PRESET    launch.sh --preset (default: gpt2)
  --data DIR         launch.sh --data (e.g. ~/data after --stage)
  --dry-run          print the exact commands and run nothing (the state query is printed
                     and the node is taken to be PREEMPTED)
  -h, --help         this help
  -- ARGS...         passed on to launch.sh (and so to experiments.scaling) unchanged
USAGE
}

NAME="${TPU_NAME:-}"
ZONE="${TPU_ZONE:-}"
PROJECT="${GCP_PROJECT:-}"
BUCKET="${MYOJAX_BUCKET:-}"
MOUNT="${MYOJAX_MOUNT:-$DEFAULT_MOUNT}"
TYPE="v4-32"
VERSION=""
QUEUED=0
SPOT=0
REF="HEAD"
STAGE=""
RUN=""
PRESET="gpt2"
DATA=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$@"; NAME="$2"; shift 2 ;;
    --zone) need_value "$@"; ZONE="$2"; shift 2 ;;
    --project) need_value "$@"; PROJECT="$2"; shift 2 ;;
    --type) need_value "$@"; TYPE="$2"; shift 2 ;;
    --version) need_value "$@"; VERSION="$2"; shift 2 ;;
    --queued) QUEUED=1; shift ;;
    --spot) SPOT=1; shift ;;
    --bucket) need_value "$@"; BUCKET="$2"; shift 2 ;;
    --mount) need_value "$@"; MOUNT="$2"; shift 2 ;;
    --ref) need_value "$@"; REF="$2"; shift 2 ;;
    --stage) need_value "$@"; STAGE="$2"; shift 2 ;;
    --run) need_value "$@"; RUN="$2"; shift 2 ;;
    --preset) need_value "$@"; PRESET="$2"; shift 2 ;;
    --data) need_value "$@"; DATA="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) die "unknown option '$1' (see --help; pass experiment arguments after --)" ;;
  esac
done
check_name "$NAME"
check_zone "$ZONE"
check_bucket "$BUCKET"
check_run_name "$RUN"
gcloud_location

HERE="$(dirname "${BASH_SOURCE[0]}")"
node=(--name "$NAME" --zone "$ZONE")
if [[ -n "$PROJECT" ]]; then
  node+=(--project "$PROJECT")
fi
dry=()
if [[ "$DRY_RUN" == 1 ]]; then
  dry=(--dry-run)
fi

# The node's state: READY/PREEMPTED/... for a TPU VM, ACTIVE/SUSPENDED/... for a queued
# resource, NOT_FOUND when gcloud knows no such node.
if [[ "$QUEUED" == 1 ]]; then
  describe=(gcloud compute tpus queued-resources describe "$NAME" "${LOCATION[@]}"
    --format='value(state.state)')
else
  describe=(gcloud compute tpus tpu-vm describe "$NAME" "${LOCATION[@]}" --format='value(state)')
fi
show "${describe[@]}"
if [[ "$DRY_RUN" == 1 ]]; then
  state="PREEMPTED"
  echo "# dry run: taking $NAME to be $state"
else
  state="$("${describe[@]}" 2>/dev/null)" || state="NOT_FOUND"
fi
echo "$NAME: ${state:-UNKNOWN}"

case "$state" in
  READY | ACTIVE) echo "$NAME is $state: installing and relaunching only" ;;
  *)
    if [[ "$state" != NOT_FOUND ]]; then
      delete=("${node[@]}" --yes)
      if [[ "$QUEUED" == 1 ]]; then
        delete+=(--queued)
      fi
      bash "$HERE/delete.sh" "${delete[@]}" "${dry[@]}"
    fi
    create=("${node[@]}" --type "$TYPE")
    if [[ -n "$VERSION" ]]; then
      create+=(--version "$VERSION")
    fi
    if [[ "$QUEUED" == 1 ]]; then
      create+=(--queued --wait)
    fi
    if [[ "$SPOT" == 1 ]]; then
      create+=(--spot)
    fi
    bash "$HERE/create.sh" "${create[@]}" "${dry[@]}"
    ;;
esac

setup=("${node[@]}" --bucket "$BUCKET" --mount "$MOUNT" --ref "$REF")
if [[ -n "$STAGE" ]]; then
  setup+=(--data "$STAGE")
fi
bash "$HERE/setup.sh" "${setup[@]}" "${dry[@]}"

launch=("${node[@]}" --bucket "$BUCKET" --mount "$MOUNT" --run "$RUN" --preset "$PRESET")
if [[ -n "$DATA" ]]; then
  launch+=(--data "$DATA")
fi
bash "$HERE/launch.sh" "${dry[@]}" "${launch[@]}" -- "$@"
