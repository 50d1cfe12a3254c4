# syntax=docker/dockerfile:1
# The operator image: dependencies from the hash-checked lock file, a non-root user, and nothing
# that writes outside /tmp, so it runs with a read-only root filesystem (see the Helm chart).
# Build: docker build -t open-connectors-operator:dev .   (needs a Docker engine; CI lints it with hadolint)

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements-runtime.lock ./
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r requirements-runtime.lock
COPY pyproject.toml README.md ./
# The operator's package only: the kubectl plugin (operator/kubectl_openconnectors) is a user's
# tool, shipped as a zipapp (make plugin); pip still writes its console script, which goes.
COPY operator/connector_operator ./operator/connector_operator
RUN /opt/venv/bin/pip install --no-deps . \
    && rm /opt/venv/bin/kubectl-openconnectors \
    && /opt/venv/bin/python -m compileall -q /opt/venv

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="open-connectors-operator" \
      org.opencontainers.image.description="Kubernetes operator for SAP Open Connectors connector instances" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/tmp
COPY --from=build /opt/venv /opt/venv
# 65532 is the conventional "nonroot" uid; the chart's securityContext uses the same ids.
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["open-connectors-operator"]
CMD ["run"]
