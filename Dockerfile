# Turnout's image: `docker build -t turnout .`, then `docker run -p 4000:4000 turnout`, or compose.yaml.
# Two stages: the first installs the package and its dependencies into a virtual environment (every
# dependency has a manylinux wheel, so no compiler is needed), the second copies that environment alone
# onto a fresh slim Python. Settings come from the environment (TURNOUT_*, see README.md's Settings).
# tests/package/test_container.py lints this file and runs its CMD, as written, against a fake backend.

ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# what the wheel is built from; nothing else of the checkout enters the image
COPY pyproject.toml README.md LICENSE ./
COPY engine ./engine
COPY mappings ./mappings
COPY migrations ./migrations
COPY tests/golden/scenarios ./tests/golden/scenarios
# bytecode is compiled here, once: the running image never writes it (PYTHONDONTWRITEBYTECODE, and the
# environment belongs to root), so without it every start would compile every module again (seconds)
RUN python -m venv /opt/turnout \
    && /opt/turnout/bin/pip install --compile /src

FROM python:${PYTHON_VERSION}-slim
# a user without a login shell or a password; /data is its home and the SQLite volume
RUN groupadd --system --gid 10001 turnout \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /data --create-home \
       --shell /usr/sbin/nologin turnout
COPY --from=build /opt/turnout /opt/turnout
ENV PATH="/opt/turnout/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TURNOUT_HOST=0.0.0.0 \
    TURNOUT_PORT=4000 \
    TURNOUT_DATABASE_URL=sqlite+aiosqlite:////data/turnout.db
USER 10001:10001
WORKDIR /data
# the SQLite database and, without TURNOUT_SALT_KEY, the key that encrypts provider keys (.turnout/)
VOLUME ["/data"]
EXPOSE 4000
# slim images have no curl: the standard library asks /health (liveness) on the configured port
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TURNOUT_PORT', '4000') + '/health', timeout=4)"]
# one worker per container (scale with replicas); SIGTERM drains requests within TURNOUT_SHUTDOWN_GRACE
STOPSIGNAL SIGTERM
CMD ["turnout", "serve"]
