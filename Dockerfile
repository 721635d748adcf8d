# Crossroads: one image for every role (front, worker, relay, load test).
#   docker build -t crossroads .
#   docker run --rm crossroads --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY gameserver ./gameserver
COPY client ./client
COPY relay ./relay
COPY loadtest ./loadtest
COPY crossroads ./crossroads
RUN pip install ".[redis,loadtest]" \
    && mkdir -p /opt/crossroads && cp loadtest/locustfile.py /opt/crossroads/ && rm -rf /src

# An unprivileged user; the default SQLite store lives in its home (XDG data dir).
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin crossroads
USER crossroads
WORKDIR /home/crossroads

# front: actions, updates, worker backend; relay: actions, updates, stats.
EXPOSE 7301 7302 7303 7311 7312 7319
ENTRYPOINT ["crossroads"]
CMD ["--help"]
