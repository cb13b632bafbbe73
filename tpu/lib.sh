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

check_bucket() {
  [[ "$1" =~ ^gs://[a-z0-9][-a-z0-9_.]*[a-z0-9](/.*)?$ ]] \
    || die "bucket path '$1' must look like gs://BUCKET[/PREFIX] (pass --bucket or set MYOJAX_BUCKET)"
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
