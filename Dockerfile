# Production image: slim, non-root, gunicorn. Configuration comes from the environment.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files (admin, Swagger UI) are collected at build time and served by WhiteNoise.
RUN SECRET_KEY=build-only JWT_SIGNING_KEY=build-only-jwt DATABASE_URL=postgres://build@localhost/build \
    python manage.py collectstatic --no-input -v 0

# .data/ holds generated documents and the local seal (docker-compose.yml mounts a volume there,
# which takes this directory's owner when first created).
RUN useradd --system --uid 10001 --home-dir /app clm && mkdir -p /app/.data \
    && chown -R clm /app/staticfiles /app/.data
USER clm

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
CMD ["gunicorn", "config.wsgi", "--config", "python:config.gunicorn", "--bind", "0.0.0.0:8000", "--workers", "3"]
