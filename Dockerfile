# syntax=docker/dockerfile:1.7
# One image for every leadflow process. The first argument names the process:
#
#   docker run IMAGE identity | leads | scoring | notify    a stream worker (/healthz, /metrics on its web port)
#   docker run IMAGE api                                     the HTTP API (services.gateway)
#   docker run IMAGE leadflow simulate ...                   the CLI
#
# Build from the repository root: docker build -t leadflow:dev .
# Settings come from LEADFLOW_* variables (deploy/compose/.env.example, deploy/k8s/base/settings.env).
# The build context is an allowlist (.dockerignore): a new top-level directory the services need at run
# time must be added there and below.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- web: Apache ECharts for the ops dashboard, from npm (the API serves its built file) ----------
FROM ${NODE_IMAGE} AS web
WORKDIR /web
COPY deploy/web/package.json deploy/web/package-lock.json ./
RUN npm ci --no-audit --no-fund

# ---- build: a virtualenv in /opt/leadflow with the pinned dependency tree -----------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
RUN python -m venv /opt/leadflow
WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when the pins change, not the code.
COPY pyproject.toml requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/direct.txt \
 && /opt/leadflow/bin/pip install -c requirements.lock -r /tmp/direct.txt

# Then the project itself, still under the lock file's constraints.
COPY README.md ./
COPY leadflow ./leadflow
COPY schemas ./schemas
COPY services ./services
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/leadflow/bin/pip install --no-deps -c requirements.lock . \
 && /opt/leadflow/bin/pip check \
 && cd / && /opt/leadflow/bin/python -c "import services.gateway.app, services.identity.bootstrap, services.leads.bootstrap, services.scoring.bootstrap, services.notify.bootstrap"

# ---- runtime: the virtualenv, two small scripts, a non-root user --------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="leadflow" \
      org.opencontainers.image.description="leadflow stream workers (identity, leads, scoring, notify) and API"

RUN groupadd --system --gid 10001 leadflow \
 && useradd --system --uid 10001 --gid leadflow --home-dir /var/lib/leadflow --shell /usr/sbin/nologin leadflow \
 && mkdir -p /var/lib/leadflow \
 && chown leadflow:leadflow /var/lib/leadflow

COPY --from=build /opt/leadflow /opt/leadflow
COPY --from=web /web/node_modules/echarts/dist/echarts.min.js /opt/leadflow/web/echarts.min.js
ENV LEADFLOW_ECHARTS_FILE=/opt/leadflow/web/echarts.min.js

# leadflow-entrypoint <process> [args]: exec the process as PID 1 (it gets SIGTERM directly), and note
# its /healthz URL for the image's HEALTHCHECK.
COPY --chmod=0755 <<"EOF" /usr/local/bin/leadflow-entrypoint
#!/bin/sh
set -eu
usage() {
    echo "usage: leadflow-entrypoint identity|leads|scoring|notify|api [--web-port N]" >&2
    echo "       leadflow-entrypoint leadflow <cli arguments>" >&2
    exit 64
}
[ "$#" -ge 1 ] || usage
process=$1
shift
case "$process" in
    identity) port=${LEADFLOW_WEB_PORT:-6101} ;;
    leads) port=${LEADFLOW_WEB_PORT:-6102} ;;
    scoring) port=${LEADFLOW_WEB_PORT:-6103} ;;
    notify) port=${LEADFLOW_WEB_PORT:-6104} ;;
    api | gateway) port=${LEADFLOW_API_PORT:-8000} ;;
    leadflow) exec leadflow "$@" ;;
    *) usage ;;
esac
previous=""
for arg in "$@"; do
    case "$previous" in --web-port) port=$arg ;; esac
    case "$arg" in --web-port=*) port=${arg#--web-port=} ;; esac
    previous=$arg
done
echo "http://127.0.0.1:${port}/healthz" > "${TMPDIR:-/tmp}/leadflow-healthz-url" 2>/dev/null || true
case "$process" in
    api | gateway) exec python -m services.gateway "$@" ;;
    *) exec python -m "services.${process}" "$@" ;;
esac
EOF

# leadflow-healthcheck [URL]: exit 0 when GET URL (default: the running process's /healthz) answers 200.
COPY --chmod=0755 <<"EOF" /usr/local/bin/leadflow-healthcheck
#!/opt/leadflow/bin/python
import os
import sys
import urllib.request

if len(sys.argv) > 1:
    url = sys.argv[1]
else:
    with open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "leadflow-healthz-url")) as f:
        url = f.read().strip()
try:
    with urllib.request.urlopen(url, timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # any failure is "unhealthy"; say why for `docker inspect`
    print(f"{url}: {exc}", file=sys.stderr)
    sys.exit(1)
EOF

ENV PATH=/opt/leadflow/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LEADFLOW_WEB_HOST=0.0.0.0 \
    LEADFLOW_API_HOST=0.0.0.0 \
    LEADFLOW_DATA_DIR=/var/lib/leadflow/faust/{conf.id}

WORKDIR /var/lib/leadflow
USER 10001:10001
EXPOSE 8000 6101 6102 6103 6104
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 CMD ["leadflow-healthcheck"]
ENTRYPOINT ["leadflow-entrypoint"]
