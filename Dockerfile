# One image for both processes; compose picks `python -m worker` or `python -m api`.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The dependencies from the run lock (every version pinned, every file hashed; its own layer,
# rebuilt only when the lock changes), then the project itself with none of its own: the lock has
# them, and setuptools to build it, so nothing else is resolved or fetched. Installed into
# site-packages and the sources removed, so the running code is exactly what the package ships
# (package data included), never a stray file from the build context.
COPY requirements/run.txt /tmp/run.txt
RUN pip install --require-hashes -r /tmp/run.txt && rm /tmp/run.txt
COPY . /src
RUN pip install --no-deps --no-build-isolation /src \
    && pip check \
    && rm -rf /src \
    && useradd --system --uid 10001 --create-home --home-dir /app aftersales \
    && install -d -o aftersales /data

USER aftersales
WORKDIR /app
ENV AFTERSALES_DATA_DIR=/data \
    AFTERSALES_HTTP_HOST=0.0.0.0
EXPOSE 8080
CMD ["python", "-m", "api"]
