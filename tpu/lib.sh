# shellcheck shell=bash
# Shared helpers for the tpu/ scripts; sourced, never run.
# Every command that touches the cloud goes through `run`, so --dry-run prints exactly what
# would execute (one line per command, shell-quoted so it can be pasted back) and runs nothing.

DRY_RUN=0

die() {
  printf 'error: %s\n' "$*" >&2
  exit 2
}

# Quote one word only when the shell needs it, so printed commands stay readable.
quote() {
  if [[ "$1" =~ ^[A-Za-z0-9_./=:@,+%^-]+$ ]]; then
    printf '%s' "$1"
  else
    printf '%s' "${1@Q}"
  fi
}

# Print a command as one pasteable line: "+ gcloud compute ...".
show() {
  local word line="+"
  for word in "$@"; do
    line+=" $(quote "$word")"
  done
  printf '%s\n' "$line"
}

run() {
  show "$@"
  if [[ "$DRY_RUN" == 1 ]]; then
    return 0
  fi
  "$@"
}

# A value for option $1 in $2, or die naming the option.
need_value() {
  [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die "option $1 needs a value"
}

check_name() {
  [[ "$1" =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ ]] \
    || die "TPU name '$1' must be lower-case letters, digits and '-', starting with a letter"
}

check_zone() {
  [[ -n "$1" ]] || die "no zone: pass --zone or set TPU_ZONE (e.g. us-central2-b)"
}

# gs://BUCKET[/PREFIX][/]. The prefix becomes a path under the gcsfuse mount, so it is kept to
# characters that need no quoting and may not hold "." or ".." components.
check_bucket() {
  [[ "$1" =~ ^gs://[a-z0-9][-a-z0-9_.]*[a-z0-9](/[A-Za-z0-9_.=+@,-]+)*/?$ ]] \
    || die "bucket path '$1' must look like gs://BUCKET[/PREFIX], the prefix made of letters," \
      "digits and '-_.=+@,' (pass --bucket or set MYOJAX_BUCKET)"
  [[ ! "${1%/}/" =~ /\.\.?/ ]] || die "bucket path '$1' may not hold '.' or '..' components"
}

# Split a checked gs://BUCKET[/PREFIX][/] into BUCKET_NAME and BUCKET_PREFIX (no slashes at
# either end; empty when there is no prefix).
split_bucket() {
  local rest="${1#gs://}"
  rest="${rest%/}"
  # shellcheck disable=SC2034  # read by the scripts that source this file
  BUCKET_NAME="${rest%%/*}"
  BUCKET_PREFIX=""
  if [[ "$rest" == */* ]]; then
    BUCKET_PREFIX="${rest#*/}"
  fi
}

# Where setup.sh mounts the whole bucket with gcsfuse on every worker, and so the POSIX path
# that launch.sh gives the trainer: MOUNT/PREFIX/RUN is gs://BUCKET/PREFIX/RUN.
# shellcheck disable=SC2034  # read by the scripts that source this file
DEFAULT_MOUNT="/mnt/myojax-bucket"

check_mount() {
  [[ "$1" =~ ^(/[A-Za-z0-9_.-]+)+$ && ! "$1/" =~ /\.\.?/ ]] \
    || die "mount point '$1' must be an absolute path without '.', '..', spaces or a trailing '/'"
}

# gs://BUCKET/PREFIX as seen on a worker: MOUNT[/PREFIX] (after split_bucket).
mounted_prefix() {
  if [[ -n "$BUCKET_PREFIX" ]]; then
    printf '%s/%s' "$1" "$BUCKET_PREFIX"
  else
    printf '%s' "$1"
  fi
}

check_run_name() {
  [[ "$1" =~ ^[A-Za-z0-9][-A-Za-z0-9_.]*$ ]] \
    || die "run name '$1' may hold only letters, digits, '-', '_' and '.'"
}

# Flags shared by every gcloud call: zone, and the project when one is given.
gcloud_location() {
  LOCATION=(--zone="$ZONE")
  if [[ -n "$PROJECT" ]]; then
    LOCATION+=(--project="$PROJECT")
  fi
}
