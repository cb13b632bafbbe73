#!/usr/bin/env bash
# Install this checkout of myojax (and JAX for TPU) on every worker of a TPU VM.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: tpu/setup.sh --name NAME --zone ZONE [options]

Copy a git revision of this repository to every worker (~/myojax) and install it, with
JAX for TPU, into a virtual environment (~/venv). Safe to rerun: it replaces ~/myojax.

  --name NAME     TPU name (default: $TPU_NAME)
  --zone ZONE     (default: $TPU_ZONE)
  --project ID    (default: $GCP_PROJECT)
  --ref REF       git revision to install (default: HEAD; uncommitted changes are NOT copied)
  --dry-run       print the exact commands and run nothing
  -h, --help      this help
USAGE
}

NAME="${TPU_NAME:-}"
ZONE="${TPU_ZONE:-}"
PROJECT="${GCP_PROJECT:-}"
REF="HEAD"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$@"; NAME="$2"; shift 2 ;;
    --zone) need_value "$@"; ZONE="$2"; shift 2 ;;
    --project) need_value "$@"; PROJECT="$2"; shift 2 ;;
    --ref) need_value "$@"; REF="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
check_name "$NAME"
check_zone "$ZONE"
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
run gcloud compute tpus tpu-vm ssh "$NAME" "${LOCATION[@]}" --worker=all --command="$REMOTE"
