#!/usr/bin/env bash
# Install this checkout of myojax (and JAX for TPU) on every worker of a TPU VM, and mount the
# results bucket there with gcsfuse.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: tpu/setup.sh --name NAME --zone ZONE --bucket gs://BUCKET/PREFIX [options]

Copy a git revision of this repository to every worker (~/myojax) and install it, with
JAX for TPU, into a virtual environment (~/venv). Then, on every worker, install gcsfuse and
mount the whole bucket on MOUNT (`gcsfuse --implicit-dirs --rename-dir-limit=1000000 BUCKET
MOUNT`), so that MOUNT/PREFIX/RUN is the same directory on every host: the trainer writes its
run directory through POSIX paths and does not take gs:// paths. The mount is checked by
writing and removing a file under MOUNT/PREFIX.

Safe to rerun: it replaces ~/myojax, keeps a working mount of the same bucket, remounts a
stale one, and refuses a mount point that holds another bucket. Rerun it after a worker
restarts (a reboot drops the mount).

  --name NAME     TPU name (default: $TPU_NAME)
  --zone ZONE     (default: $TPU_ZONE)
  --project ID    (default: $GCP_PROJECT)
  --bucket PATH   gs:// prefix for checkpoints and results (default: $MYOJAX_BUCKET)
  --mount DIR     where the bucket is mounted on every worker
                  (default: $MYOJAX_MOUNT, else /mnt/myojax-bucket)
  --ref REF       git revision to install (default: HEAD; uncommitted changes are NOT copied)
  --dry-run       print the exact commands and run nothing
  -h, --help      this help
USAGE
}

NAME="${TPU_NAME:-}"
ZONE="${TPU_ZONE:-}"
PROJECT="${GCP_PROJECT:-}"
BUCKET="${MYOJAX_BUCKET:-}"
MOUNT="${MYOJAX_MOUNT:-$DEFAULT_MOUNT}"
REF="HEAD"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$@"; NAME="$2"; shift 2 ;;
    --zone) need_value "$@"; ZONE="$2"; shift 2 ;;
    --project) need_value "$@"; PROJECT="$2"; shift 2 ;;
    --bucket) need_value "$@"; BUCKET="$2"; shift 2 ;;
    --mount) need_value "$@"; MOUNT="$2"; shift 2 ;;
    --ref) need_value "$@"; REF="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
check_name "$NAME"
check_zone "$ZONE"
check_bucket "$BUCKET"
check_mount "$MOUNT"
split_bucket "$BUCKET"
gcloud_location

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHA="$(git -C "$REPO" rev-parse --short=12 "$REF^{commit}" 2>/dev/null)" \
  || die "'$REF' is not a commit of $REPO"
ARCHIVE="${TMPDIR:-/tmp}/myojax-$SHA.tar.gz"

# Same JAX minor version as pyproject.toml pins, with libtpu.
REMOTE="set -euo pipefail; rm -rf myojax; mkdir -p myojax; tar -xzf myojax.tar.gz -C myojax; \
python3 -m venv venv; venv/bin/pip install --quiet --upgrade pip; \
venv/bin/pip install --quiet 'jax[tpu]>=0.10,<0.11' -e myojax; \
echo \"\$(hostname): myojax $SHA installed\""

run git -C "$REPO" archive --format=tar.gz --output="$ARCHIVE" "$SHA"
run gcloud compute tpus tpu-vm scp "$ARCHIVE" "$NAME:myojax.tar.gz" "${LOCATION[@]}" --worker=all
# Mount the whole bucket (not only PREFIX): --implicit-dirs shows directories that exist only as
# object name prefixes (e.g. logs copied with gcloud storage), and --rename-dir-limit lets orbax
# rename its temporary checkpoint directory into place (without it a flat bucket refuses
# directory renames). gcsfuse runs as the ssh user, so the files are that user's.
# Idempotent: a live mount of the same bucket is kept, a dead one ("Transport endpoint is not
# connected") is unmounted and mounted again, another bucket on MOUNT is an error.
M="$(quote "$MOUNT")"
B="$(quote "$BUCKET_NAME")"
DIR="$(quote "$(mounted_prefix "$MOUNT")")"
MOUNT_REMOTE="set -euo pipefail; \
if ! command -v gcsfuse > /dev/null; then \
. /etc/os-release; \
curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg \
| sudo tee /usr/share/keyrings/cloud.google.asc > /dev/null; \
echo \"deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt \
gcsfuse-\$VERSION_CODENAME main\" | sudo tee /etc/apt/sources.list.d/gcsfuse.list > /dev/null; \
sudo apt-get update -qq; sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcsfuse; \
fi; \
src=\"\$(findmnt -n -o SOURCE --mountpoint $M || true)\"; \
if [[ -n \"\$src\" && \"\$src\" != $B ]]; then \
echo \"\$(hostname): $M already mounts \$src, not $B; unmount it first\" >&2; exit 1; fi; \
if [[ -n \"\$src\" ]] && ! ls $M > /dev/null 2>&1; then sudo umount $M; src=; fi; \
if [[ -z \"\$src\" ]]; then \
sudo mkdir -p $M; sudo chown \"\$(id -u):\$(id -g)\" $M; \
gcsfuse --implicit-dirs --rename-dir-limit=1000000 $B $M; fi; \
probe=$DIR/.myojax-mount-check-\$(hostname); \
if ! { mkdir -p $DIR && echo ok > \"\$probe\" && [[ \"\$(cat \"\$probe\")\" == ok ]] \
&& rm \"\$probe\"; }; then \
echo \"\$(hostname): cannot write and read back \$probe through the mount\" >&2; exit 1; fi; \
echo \"\$(hostname): gs://$BUCKET_NAME mounted on $M, $DIR writable\""

run gcloud compute tpus tpu-vm ssh "$NAME" "${LOCATION[@]}" --worker=all --command="$REMOTE"
run gcloud compute tpus tpu-vm ssh "$NAME" "${LOCATION[@]}" --worker=all --command="$MOUNT_REMOTE"
