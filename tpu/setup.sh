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
JAX for TPU, into a virtual environment (~/venv) on Python PYTHON_VERSION, installed by uv
(https://docs.astral.sh/uv/) whatever the image ships (the TPU runtimes' Ubuntu 22.04 has
Python 3.10; jax 0.10 needs >= 3.11). With --data, copy token shards from a bucket to every
worker's ~/data and check each shard's sha256 against its sidecar. Then, on every worker, install gcsfuse and
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
  --data gs://... token shards (python -m myojax.data.prepare output) to stage on every
                  worker's ~/data; then pass `--data ~/data` to tpu/launch.sh
  --python X.Y    Python for the venv (default: 3.12; at least 3.11)
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
DATA=""
PYTHON_VERSION="3.12"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$@"; NAME="$2"; shift 2 ;;
    --zone) need_value "$@"; ZONE="$2"; shift 2 ;;
    --project) need_value "$@"; PROJECT="$2"; shift 2 ;;
    --bucket) need_value "$@"; BUCKET="$2"; shift 2 ;;
    --mount) need_value "$@"; MOUNT="$2"; shift 2 ;;
    --ref) need_value "$@"; REF="$2"; shift 2 ;;
    --data) need_value "$@"; DATA="$2"; shift 2 ;;
    --python) need_value "$@"; PYTHON_VERSION="$2"; shift 2 ;;
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

[[ "$PYTHON_VERSION" =~ ^3\.(1[1-9]|[2-9][0-9])$ ]] \
  || die "--python '$PYTHON_VERSION' must be 3.11 or later (jax 0.10 needs Python >= 3.11)"
[[ -z "$DATA" || "$DATA" =~ ^gs://[a-z0-9][-a-z0-9_.]*[a-z0-9](/[A-Za-z0-9._=+@,/-]*)?$ ]] \
  || die "--data '$DATA' must look like gs://BUCKET/PATH (the shards' prefix)"

# uv installs a standalone CPython of PYTHON_VERSION (the image's python3 may be too old), then
# the same JAX minor version as pyproject.toml pins, with libtpu.
UV="\$HOME/.local/bin/uv"
REMOTE="set -euo pipefail; rm -rf myojax; mkdir -p myojax; tar -xzf myojax.tar.gz -C myojax; \
[[ -x $UV ]] || curl -LsSf https://astral.sh/uv/install.sh | sh; \
rm -rf venv; $UV venv --quiet --python $PYTHON_VERSION venv; \
$UV pip install --quiet --python venv/bin/python 'jax[tpu]>=0.10,<0.11' -e myojax; \
echo \"\$(hostname): myojax $SHA installed on \$(venv/bin/python --version)\""
if [[ -n "$DATA" ]]; then
  # gcloud storage checks each object's CRC32C in transit; load_data then checks every shard's
  # bytes against the sha256 its sidecar records (and its token ids against the vocabulary).
  REMOTE+="; mkdir -p data; gcloud storage rsync --recursive $(quote "$DATA") data; \
venv/bin/python -c 'import sys; from myojax.data.pipeline import load_data; load_data(sys.argv[1])' \
\"\$HOME/data\"; echo \"\$(hostname): shards of $(quote "$DATA") in ~/data, sha256 checked\""
fi

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
