# Every claimflow image is built from this one file, from the repository root:
#   docker build --build-arg SERVICE=intake -t claimflow-intake .
#   docker build --build-arg SERVICE=audit-log --build-arg COMMAND="claimflow-audit api" -t claimflow-audit-log .
# SERVICE names the folder under services/; COMMAND is the default command, "claimflow-<SERVICE>
# api" unless given (the charts always name their own). BASE_IMAGE swaps the public Python base
# for a locally built one with the same layout; BUILDER_IMAGE (BASE_IMAGE unless given) is the
# base of the build stage alone, for a base that carries what only building needs (a proxy's CA
# certificates, say) and must not reach the image. An image holds one service's package,
# claimflow-shared and their pinned dependencies, nothing else; Kubernetes probes the service,
# so there is no HEALTHCHECK.
ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG BUILDER_IMAGE=${BASE_IMAGE}

FROM ${BUILDER_IMAGE} AS builder
ARG SERVICE
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
# The third-party dependencies first, from the two pyproject.toml files alone, in a layer of
# their own: a change to claimflow's code does not reinstall them. constraints.txt pins every
# version; claimflow's own packages are left to the next layer.
COPY constraints.txt ./
COPY services/shared/pyproject.toml ./services/shared/
COPY services/${SERVICE}/pyproject.toml ./services/${SERVICE}/
RUN python -c 'import sys, tomllib; print("\n".join(d for f in sys.argv[1:] for d in tomllib.load(open(f, "rb"))["project"]["dependencies"] if not d.startswith("claimflow-")))' \
      services/shared/pyproject.toml "services/${SERVICE}/pyproject.toml" > requirements.txt \
 && uv venv --python python3 /opt/venv \
 && uv pip install --python /opt/venv/bin/python --no-cache -r requirements.txt -c constraints.txt
COPY services/shared ./services/shared
COPY services/${SERVICE} ./services/${SERVICE}
# --no-sources: the packages come from these two folders, not from the uv workspace.
# Bytecode is compiled now because the root filesystem is read-only at run time.
# The compiled extensions lose their debugging symbols (tens of MB) where the base has strip.
RUN uv pip install --python /opt/venv/bin/python --no-cache --no-sources --no-deps \
      ./services/shared "./services/${SERVICE}" \
 && if command -v strip >/dev/null; then \
      find /opt/venv -name '*.so' -exec strip --strip-unneeded {} +; \
    fi

FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG SERVICE
ARG COMMAND="claimflow-${SERVICE} api"
ARG HTTP_PORT=8080
ARG METRICS_PORT=9080
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="claimflow-${SERVICE}" \
      org.opencontainers.image.description="claimflow ${SERVICE}, one service of the claimflow dental claims pipeline" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.vendor="claimflow" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
RUN groupadd --system --gid 10001 claimflow \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin claimflow
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CLAIMFLOW_HTTP_HOST=0.0.0.0 \
    CLAIMFLOW_COMMAND="${COMMAND}"
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE ${HTTP_PORT} ${METRICS_PORT}
# exec: the service, not the shell, is PID 1 and receives SIGTERM.
CMD ["/bin/sh", "-c", "exec $CLAIMFLOW_COMMAND"]
