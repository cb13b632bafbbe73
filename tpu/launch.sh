#!/usr/bin/env bash
# Launch the scaling study on every worker of a TPU VM, detached, logging to ~/logs.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: tpu/launch.sh --name NAME --zone ZONE --bucket gs://BUCKET/PREFIX --run RUN --data DIR [options] [-- ARGS...]

Start `python -m experiments.scaling --preset PRESET --out MOUNT/PREFIX/RUN --data DIR ARGS...` on every
worker at once (one JAX process per host; MYOJAX_DISTRIBUTED=1 makes each call
jax.distributed.initialize(), which finds its peers from the TPU metadata). MOUNT is where
tpu/setup.sh mounted gs://BUCKET with gcsfuse, so MOUNT/PREFIX/RUN is gs://BUCKET/PREFIX/RUN and
every host sees the same run directory; a worker where BUCKET is not mounted on MOUNT starts
nothing and says so. The processes are detached (nohup + setsid): closing the ssh session does
not stop them. Each worker logs to ~/logs/RUN.log and, when the run ends, copies that log with
`gcloud storage cp` to gs://BUCKET/PREFIX/RUN/logs/HOST.log.

  --name NAME        TPU name (default: $TPU_NAME)
  --zone ZONE        (default: $TPU_ZONE)
  --project ID       (default: $GCP_PROJECT)
  --bucket PATH      gs:// prefix for checkpoints and results (default: $MYOJAX_BUCKET)
  --mount DIR        where setup.sh mounted the bucket (default: $MYOJAX_MOUNT, else
                     /mnt/myojax-bucket)
  --run RUN          run name: results go to PATH/RUN (rerunning resumes from its checkpoints)
  --preset PRESET    model preset or family (default: gpt2 = all four GPT-2 sizes)
  --data DIR         token shards, the same directory on every worker (tpu/setup.sh --data
                     stages them to ~/data); required by --preset gpt2 (smoke, cpu and
                     cpu-large bring their own corpus)
  --dry-run          print the exact commands and run nothing
  -h, --help         this help
  -- ARGS...         passed on to experiments.scaling unchanged
USAGE
}

NAME="${TPU_NAME:-}"
ZONE="${TPU_ZONE:-}"
PROJECT="${GCP_PROJECT:-}"
BUCKET="${MYOJAX_BUCKET:-}"
MOUNT="${MYOJAX_MOUNT:-$DEFAULT_MOUNT}"
RUN=""
PRESET="gpt2"
DATA=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$@"; NAME="$2"; shift 2 ;;
    --zone) need_value "$@"; ZONE="$2"; shift 2 ;;
    --project) need_value "$@"; PROJECT="$2"; shift 2 ;;
    --bucket) need_value "$@"; BUCKET="$2"; shift 2 ;;
    --mount) need_value "$@"; MOUNT="$2"; shift 2 ;;
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
check_mount "$MOUNT"
# Every worker would exit on its own ("--preset gpt2 needs --data DIR") after this script said
# "started": refuse here instead.
for word in "$@"; do
  [[ "$word" != --data && "$word" != --data=* ]] || DATA="${DATA:-(given after --)}"
done
case "$PRESET" in
  smoke | cpu | cpu-large) ;;
  *) [[ -n "$DATA" ]] || die "--preset $PRESET needs --data DIR (token shards, the same path on" \
    "every worker: see tpu/README.md, Data)" ;;
esac
split_bucket "$BUCKET"
gcloud_location

# The trainer writes through POSIX paths only, so it gets the run directory on the gcsfuse
# mount; the log copy goes straight to the bucket with gcloud storage.
OUT="$(mounted_prefix "$MOUNT")/$RUN"
LOG_URL="gs://$BUCKET_NAME${BUCKET_PREFIX:+/$BUCKET_PREFIX}/$RUN/logs"
LOG="logs/$RUN.log"
# What each worker runs, quoted word by word so ARGS arrive unchanged.
job="../venv/bin/python -m experiments.scaling"
for word in --preset "$PRESET" --out "$OUT"; do
  job+=" $(quote "$word")"
done
# A leading ~/ means the worker's home (where setup.sh --data stages shards), not this machine's.
if [[ "$DATA" == \~/* ]]; then
  job+=" --data \"\$HOME\"/$(quote "${DATA#\~/}")"
elif [[ -n "$DATA" && "$DATA" != "(given after --)" ]]; then
  job+=" --data $(quote "$DATA")"
fi
for word in "$@"; do
  job+=" $(quote "$word")"
done
job="cd myojax && $job; status=\$?; cd; gcloud storage cp $LOG $LOG_URL/\$(hostname).log || true; exit \$status"
# Refuse to start unless this worker has the bucket on MOUNT (setup.sh; a reboot drops it):
# without it the run directory would be a local directory that the other hosts do not see.
M="$(quote "$MOUNT")"
CHECK="[[ \"\$(findmnt -n -o SOURCE --mountpoint $M)\" == $BUCKET_NAME ]] && ls $M > /dev/null \
|| { echo \"\$(hostname): gs://$BUCKET_NAME is not mounted on $M (or the mount died): run tpu/setup.sh\" >&2; exit 1; }"
REMOTE="$CHECK; mkdir -p logs && MYOJAX_DISTRIBUTED=1 nohup setsid bash -c ${job@Q} > $LOG 2>&1 < /dev/null & \
echo \"\$(hostname): started $RUN (log ~/$LOG)\""

run gcloud compute tpus tpu-vm ssh "$NAME" "${LOCATION[@]}" --worker=all --command="$REMOTE"
