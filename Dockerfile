# The service in a container: `docker compose up` (compose.yaml) runs it with PostgreSQL and NATS.
# Stage 1 installs the project and its dependencies into a virtualenv; stage 2 is that
# virtualenv on a clean base, run by an unprivileged user.
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY market_ledger/ market_ledger/
RUN python -m venv /opt/market-ledger \
    && /opt/market-ledger/bin/pip install --no-cache-dir /src


FROM python:3.11-slim

# The store defaults to a SQLite file on the volume; compose.yaml points it at PostgreSQL.
ENV PATH=/opt/market-ledger/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LEDGER_DATABASE_URL=sqlite:////var/lib/market-ledger/ledger.db

RUN groupadd --system --gid 10001 ledger \
    && useradd --system --uid 10001 --gid ledger --home-dir /var/lib/market-ledger \
        --no-create-home --shell /usr/sbin/nologin ledger \
    && mkdir -p /var/lib/market-ledger \
    && chown ledger:ledger /var/lib/market-ledger

COPY --from=build /opt/market-ledger /opt/market-ledger

USER 10001:10001
WORKDIR /var/lib/market-ledger
VOLUME ["/var/lib/market-ledger"]
EXPOSE 8080

# Liveness: /healthz answers 200 while the process serves (urlopen raises on anything else).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

ENTRYPOINT ["market-ledger"]
CMD ["serve", "--http", "0.0.0.0:8080"]
