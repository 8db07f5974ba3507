#!/bin/sh
# Container entrypoint (runs under tini). Seeds the index volume on first start, then
# execs the command (default: python -m bot).
#
# If $INDEX_DIR (default /data/index, on the /data volume) is missing or empty and the
# image carries an index built from the shipped corpus at build time ($INDEX_SEED_DIR,
# /app/index-seed), that index is copied into the volume. An existing index is never
# touched. Set INDEX_SEED=0 to skip seeding (then run `python -m bot rebuild` yourself).
set -eu

index="${INDEX_DIR:-/data/index}"
seed="${INDEX_SEED_DIR:-/app/index-seed}"

if [ "${INDEX_SEED:-1}" != "0" ] \
   && [ -d "$seed" ] && [ -n "$(ls -A "$seed" 2>/dev/null)" ] \
   && { [ ! -d "$index" ] || [ -z "$(ls -A "$index" 2>/dev/null)" ]; }; then
    parent="$(dirname "$index")"
    if mkdir -p "$parent" 2>/dev/null && [ -w "$parent" ]; then
        tmp="$(mktemp -d "$parent/.index-seed.XXXXXX")"
        cp -R "$seed/." "$tmp/"
        # another container may have seeded it meanwhile: keep theirs
        if rmdir "$index" 2>/dev/null || [ ! -e "$index" ]; then
            mv "$tmp" "$index" && echo "entrypoint: seeded $index from the index built into the image" >&2
        fi
        rm -rf "$tmp"
    else
        echo "entrypoint: cannot write to $parent (uid $(id -u)); not seeding the index" >&2
    fi
fi

exec "$@"
