# The gateway image: the ledger library, the Lua scripts and the Flask gateway under gunicorn.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/ledger-metrics

WORKDIR /app
COPY pyproject.toml README.md ./
COPY ledger ./ledger
COPY lua ./lua
COPY gateway ./gateway
COPY examples ./examples
RUN pip install ".[gateway]" && useradd --system --no-create-home ledger
# The audit archiver's volume (docker-compose.yml): a new volume takes this owner.
RUN mkdir /archive && chown ledger /archive
USER ledger

ENV LEDGER_GATEWAY_BIND=0.0.0.0:8000
EXPOSE 8000
CMD ["gunicorn", "-c", "/app/gateway/gunicorn.conf.py"]
