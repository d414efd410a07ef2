# her2-cds: the CDS Hooks service on gunicorn.
#   docker build -t her2-cds .
#   docker run -p 8080:8080 -e HER2CDS_TRUSTED_CLIENTS=/etc/her2cds/trusted-clients.sandbox.json her2-cds
# (SQLite inside the container; see docker-compose.yml). It binds 0.0.0.0, so client JWTs are
# required: the file named trusts the public CDS Hooks sandbox only (a trial, never production;
# mount your own file and point HER2CDS_TRUSTED_CLIENTS at it). To try it without a JWT, from
# this machine only: docker run -p 127.0.0.1:8080:8080 her2-cds --allow-no-auth
# Two stages: wheels are built in the first (pip, setuptools), the final image gets only the
# installed virtual environment on a slim base, runs as an unprivileged user, and runs the same
# command as the README: `her2-cds serve`.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/her2cds
WORKDIR /src
# the whole project minus what .dockerignore leaves out (tests, deploy files, docs, VCS)
COPY . .
# psycopg[binary] ships its own libpq: no compiler or -dev packages needed, here or below;
# dask: the same image runs the Dask scheduler and workers of compose's `dask` profile
RUN /opt/her2cds/bin/pip install ".[postgres,dask]"
# the final image needs no installer either
RUN /opt/her2cds/bin/pip uninstall --yes pip

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 her2cds \
 && useradd --system --uid 10001 --gid her2cds --home-dir /var/lib/her2cds --create-home \
      --shell /usr/sbin/nologin her2cds
COPY --from=build /opt/her2cds /opt/her2cds
# the trusted-clients file the start-up hint and the documented `docker run` name (a volume
# mounted on /etc/her2cds, as in docker-compose.yml, replaces it)
COPY --from=build /src/examples/trusted-clients.sandbox.json /etc/her2cds/trusted-clients.sandbox.json
ENV PATH=/opt/her2cds/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HER2CDS_HOST=0.0.0.0 \
    HER2CDS_PORT=8080 \
    HER2CDS_DATABASE_URL=sqlite:////var/lib/her2cds/her2cds.db \
    PROMETHEUS_MULTIPROC_DIR=/tmp/her2cds-metrics
WORKDIR /var/lib/her2cds
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["her2-cds", "serve"]
