# Crossroads: one Dockerfile, one image per role, built offline.
#
#   deploy/build-images     makes everything below (base images, wheelhouse, both targets); cached
#
# Targets (each installs only its role's lock file, hash-checked, from the wheelhouse):
#   server    front, worker, relay   requirements/server.lock    -> crossroads:VERSION
#   loadtest  Locust                 requirements/loadtest.lock  -> crossroads-loadtest:VERSION
# The terminal client (prompt-toolkit) is in neither: players run `crossroads play` at home.
#
# Nothing is fetched during the build: build/docker/wheelhouse holds every pinned wheel and
# build/docker/dist this checkout's wheel, both made on the host. PYTHON_IMAGE is a local
# debootstrap image (Debian bookworm's python3 3.11.2); a site with a registry may use
# --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> instead.
ARG PYTHON_IMAGE=crossroads-base/python:3.11.2-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/crossroads/bin:$PATH \
    CROSSROADS_HEALTH_FILE=/tmp/crossroads.health
# An unprivileged user; the default SQLite store lives in its home (XDG data dir), and so do
# the keys and the known-hosts file (a relay's volume is the whole data dir: both its own).
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin crossroads \
    && install -d -o crossroads -g crossroads -m 0700 /home/crossroads/.local \
        /home/crossroads/.local/share /home/crossroads/.local/share/crossroads \
        /home/crossroads/.local/share/crossroads/keys

# -- server ----------------------------------------------------------------------------------
FROM base AS server-deps
COPY build/docker/wheelhouse/ /wheels/
COPY requirements/server.lock /requirements/
RUN python3 -m venv /opt/crossroads \
    && /opt/crossroads/bin/pip install --no-cache-dir --disable-pip-version-check --no-index \
        --find-links /wheels --only-binary :all: --require-hashes -r /requirements/server.lock

# The app and role stages change with every build: deploy/build-images prunes their untagged
# leftovers by this label, and keeps the deps stages (they change with a lock file) as a cache.
FROM server-deps AS server-app
LABEL org.crossroads.build-stage=app
COPY build/docker/dist/ /dist/
RUN /opt/crossroads/bin/pip install --no-cache-dir --disable-pip-version-check --no-index \
        --no-deps /dist/crossroads-*.whl \
    && /opt/crossroads/bin/pip uninstall --yes --quiet pip setuptools

FROM base AS server
LABEL org.crossroads.build-stage=server
COPY --from=server-app /opt/crossroads /opt/crossroads
COPY deploy/crossroads-health /usr/local/bin/crossroads-health
USER crossroads
WORKDIR /home/crossroads
# front: actions, updates, worker backend; relay: actions, updates, stats; every role: metrics
# (9300, when CROSSROADS_METRICS_BIND sets it; keep it on a private network).
EXPOSE 7301 7302 7303 7311 7312 7319 9300
# Every long-running role keeps $CROSSROADS_HEALTH_FILE fresh while it is well (the front while
# it serves, a worker while it hears the front, a relay while its upstream is up); checking it
# costs ~15 ms of CPU. docker-compose.yml adds network checks for the front and the relays.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["crossroads-health", "file", "--quiet"]
ENTRYPOINT ["crossroads"]
CMD ["--help"]

# -- loadtest --------------------------------------------------------------------------------
FROM server-deps AS loadtest-deps
COPY requirements/loadtest.lock /requirements/
RUN /opt/crossroads/bin/pip install --no-cache-dir --disable-pip-version-check --no-index \
        --find-links /wheels --only-binary :all: --require-hashes -r /requirements/loadtest.lock

FROM loadtest-deps AS loadtest-app
LABEL org.crossroads.build-stage=app
COPY build/docker/dist/ /dist/
RUN /opt/crossroads/bin/pip install --no-cache-dir --disable-pip-version-check --no-index \
        --no-deps /dist/crossroads-*.whl \
    && /opt/crossroads/bin/pip uninstall --yes --quiet pip setuptools \
    && ln -s /opt/crossroads/lib/python3.11/site-packages/loadtest/locustfile.py \
        /opt/crossroads/locustfile.py

FROM base AS loadtest
LABEL org.crossroads.build-stage=loadtest
COPY --from=loadtest-app /opt/crossroads /opt/crossroads
USER crossroads
WORKDIR /home/crossroads
# Locust's master: 5557 (workers), 8089 (web UI; publish it on 127.0.0.1 only).
EXPOSE 5557 8089
# Locust is no long-running Crossroads role: no liveness file to check.
HEALTHCHECK NONE
ENTRYPOINT ["locust"]
CMD ["-f", "/opt/crossroads/locustfile.py", "--help"]
