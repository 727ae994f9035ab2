# syntax=docker/dockerfile:1.7
#
# warmline service image: API + console + dialer workers (`warmline up`).
# Build from the repository root (the build context must hold pyproject.toml and the packages):
#
#     docker build -f docker/service.Dockerfile -t warmline/service .
#
# Files sent to the builder are limited by docker/service.Dockerfile.dockerignore.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
# build: a wheel of the project, then a venv with the wheel and its dependencies.
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler only for dependencies that have no wheel on this platform (none on x86_64 today).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY core ./core
COPY agents ./agents
COPY dialer ./dialer
COPY ivr ./ivr
COPY recordings ./recordings
COPY softphone ./softphone
COPY warmline ./warmline

RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install /wheels/warmline-*.whl \
    && /opt/venv/bin/warmline --help >/dev/null

# ---------------------------------------------------------------------------------------------
# runtime
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="warmline" \
      org.opencontainers.image.description="warmline service: API, console, dialer, IVR, recordings QA" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"

# espeak-ng: TTS prompts; sox: resampling prompts for Asterisk; libsndfile1: soundfile (analytics);
# tini: PID 1 that forwards signals and reaps children.
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng sox libsndfile1 tini \
    && rm -rf /var/lib/apt/lists/*

# One numeric id shared with the Asterisk image: group 10001 owns the shared volumes
# (recordings, Asterisk config), so both containers read and write them without root.
ARG WARMLINE_UID=10001
ARG WARMLINE_GID=10001
RUN groupadd --system --gid "${WARMLINE_GID}" warmline \
    && useradd --system --uid "${WARMLINE_UID}" --gid warmline --home-dir /var/lib/warmline \
       --no-create-home --shell /usr/sbin/nologin warmline \
    && install -d -o warmline -g warmline -m 2770 /var/lib/warmline \
    && install -d -o warmline -g warmline -m 2775 /var/lib/warmline/recordings /etc/asterisk \
    && install -d -o warmline -g warmline -m 0700 /var/lib/warmline-keys

COPY --from=build /opt/venv /opt/venv
# Templates and examples (Asterisk templates, example flows and campaigns) for the CLI and the lab.
COPY config /opt/warmline/config
COPY --chmod=0755 docker/service-entrypoint.sh /usr/local/bin/warmline-entrypoint

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WARMLINE_VAR_DIR=/var/lib/warmline \
    WARMLINE_API_PORT=8080

WORKDIR /opt/warmline
VOLUME ["/var/lib/warmline"]
EXPOSE 8080

USER 10001:10001

# /healthz answers 503 while PostgreSQL, the MQTT broker or an Asterisk node is unreachable.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('WARMLINE_API_PORT', '8080') + '/healthz', timeout=4)"]

ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/warmline-entrypoint"]
CMD ["warmline", "up", "--host", "0.0.0.0"]
