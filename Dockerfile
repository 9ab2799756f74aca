# DecisionOps: one image for `decisionops serve`, `decisionops run` and one-off commands.
#   docker build -t decisionops .
#   docker run --rm decisionops --version
# See docker-compose.yml for PostgreSQL, workers and the API together.

# ---- build: install the package and its dependencies into a virtualenv
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/decisionops
WORKDIR /src
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY tools ./tools
COPY graphs ./graphs
COPY prompts ./prompts
COPY evals ./evals
RUN /opt/decisionops/bin/pip install --no-cache-dir . \
 && /opt/decisionops/bin/decisionops --version

# ---- runtime: the virtualenv only, no compiler, no source tree, no root
FROM python:3.11-slim
ENV PATH=/opt/decisionops/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DECISIONOPS_HOME=/var/lib/decisionops
RUN groupadd --system --gid 10001 decisionops \
 && useradd --system --uid 10001 --gid decisionops --home-dir /var/lib/decisionops \
      --shell /usr/sbin/nologin decisionops \
 && mkdir -p /var/lib/decisionops/enterprise \
 && chown -R decisionops:decisionops /var/lib/decisionops
COPY --from=build /opt/decisionops /opt/decisionops
WORKDIR /var/lib/decisionops
USER decisionops:decisionops
EXPOSE 8400
# Liveness of `serve`; compose gives workers their own check (their metrics port).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8400/healthz', timeout=4)"]
ENTRYPOINT ["decisionops"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8400"]
