#!/usr/bin/env bash
# Put a CPU-only torch wheel for the version pinned in requirements.txt into
# docker/wheels/, where the Dockerfile picks it up instead of downloading torch.
#
# Why: requirements.txt pins torch==X. On PyPI, the Linux x86_64 wheel of torch X is
# the CUDA build (it pulls ~3 GB of nvidia-* packages). The CPU build (X+cpu) is
# published on PyTorch's own CPU index, which not every build machine can reach.
# When a machine already has the +cpu wheel on disk (e.g. in a pip find-links folder),
# this script copies it into the build context.
#
# Looks, in order, at:
#   1. $TORCH_WHEEL (a path to a .whl)
#   2. every find-links folder in pip's configuration / $PIP_FIND_LINKS
#   3. /opt/wheels, ~/wheels
#   4. PyTorch's CPU index via `pip download` (only if reachable; $TORCH_INDEX_URL)
# Only a wheel named torch-X+cpu-cp311-cp311-*.whl is accepted (the image is Python 3.11).
#
# docker/wheels/ is kept out of git (docker/wheels/.gitignore) but IS sent in the
# build context (.dockerignore keeps it). The wheel never lands in the final image:
# it is only used in the build stage.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DEST="$HERE/wheels"
VERSION="$(sed -n 's/^torch==\([^ ;#]*\).*/\1/p' "$ROOT/requirements.txt" | head -n1)"
VERSION="${VERSION%%+*}"
INDEX_URL="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
ARCH="$(uname -m)"

[[ -n "$VERSION" ]] || { echo "fetch-torch-wheel: no torch==X pin in requirements.txt" >&2; exit 1; }
mkdir -p "$DEST"
PATTERN="torch-${VERSION}+cpu-cp311-cp311-*${ARCH}*.whl"

# already there?
existing=$(find "$DEST" -maxdepth 1 -name "$PATTERN" | head -n1)
if [[ -n "$existing" ]]; then
    echo "fetch-torch-wheel: already present: $existing"
    exit 0
fi
# stale torch wheels of another version would be ignored by the Dockerfile, but tidy up
find "$DEST" -maxdepth 1 -name 'torch-*.whl' -delete

candidates=()
[[ -n "${TORCH_WHEEL:-}" ]] && candidates+=("$TORCH_WHEEL")
dirs=()
for d in ${PIP_FIND_LINKS:-}; do dirs+=("${d#file://}"); done
if command -v pip >/dev/null; then
    while IFS= read -r line; do
        for d in ${line#*=}; do d="${d//\'/}"; dirs+=("${d#file://}"); done
    done < <(pip config list 2>/dev/null | grep -E 'find-links=' || true)
fi
dirs+=(/opt/wheels "$HOME/wheels")
for d in "${dirs[@]}"; do
    [[ -d "$d" ]] || continue
    while IFS= read -r f; do candidates+=("$f"); done < <(find "$d" -maxdepth 1 -name "$PATTERN")
done

for f in "${candidates[@]}"; do
    base="$(basename "$f")"
    # shellcheck disable=SC2053
    if [[ -f "$f" && $base == $PATTERN ]]; then
        cp -v "$f" "$DEST/"
        echo "fetch-torch-wheel: using $base"
        exit 0
    fi
done

echo "fetch-torch-wheel: no local torch ${VERSION}+cpu wheel; trying pip download from $INDEX_URL"
if pip download --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
        --index-url "$INDEX_URL" -d "$DEST" "torch==${VERSION}+cpu" 2>&1 | tail -n 3; then
    if find "$DEST" -maxdepth 1 -name "$PATTERN" | grep -q .; then
        echo "fetch-torch-wheel: downloaded"
        exit 0
    fi
fi
echo "fetch-torch-wheel: no CPU wheel found. The Dockerfile will install torch==${VERSION} from" >&2
echo "  \$TORCH_INDEX_URL ($INDEX_URL) at build time instead." >&2
exit 1
