# syntax=docker/dockerfile:1
# One image for the Whistle services: `whistle serve dispatch|units|notify|audit|console`.
# Build: docker build -t whistle .   (docker compose builds it for you)

FROM python:3.13-slim AS build
# The uv of the lock file (.venv has 0.13): an older one may not read its format.
COPY --from=ghcr.io/astral-sh/uv:0.13 /uv /uvx /bin/
# Bytecode compiled at build time so containers start fast; copies (not links) from uv's cache
# so the cache mount can go; the base image's Python, never a downloaded one.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first, from the lock file only: this layer is rebuilt when uv.lock changes,
# not on every source edit.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --locked --no-dev --no-install-project
COPY pyproject.toml uv.lock README.md ./
COPY shared ./shared
COPY services ./services
# --no-editable: the virtualenv holds the project itself, so the runtime stage needs only it.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable

FROM python:3.13-slim
RUN groupadd --system --gid 10001 whistle \
    && useradd --system --uid 10001 --gid whistle --home-dir /app --shell /usr/sbin/nologin whistle
COPY --from=build --chown=whistle:whistle /app/.venv /app/.venv
COPY --chown=whistle:whistle deploy/healthcheck.py /app/deploy/healthcheck.py
# Inside a container the services must listen on every interface (the default is 127.0.0.1),
# and a container listening on every interface is production: it refuses the development
# secrets that are public in the repository (a bare `docker run` must not accept them).
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    WHISTLE_HOST=0.0.0.0 \
    WHISTLE_ENV=production
WORKDIR /app
USER whistle
EXPOSE 8000 8001 8002 8003 8004
# /readyz of whichever Whistle service listens here (stdlib only: the slim image has no curl).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/app/deploy/healthcheck.py"]
ENTRYPOINT ["whistle"]
CMD ["serve", "dispatch"]
