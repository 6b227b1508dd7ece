# One image for both processes; compose picks `python -m worker` or `python -m api`.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Installed into site-packages and the sources removed, so the running code is exactly
# what the package ships (package data included), never a stray file from the build context.
COPY . /src
RUN pip install /src \
    && rm -rf /src \
    && useradd --system --uid 10001 --create-home --home-dir /app aftersales \
    && install -d -o aftersales /data

USER aftersales
WORKDIR /app
ENV AFTERSALES_DATA_DIR=/data \
    AFTERSALES_HTTP_HOST=0.0.0.0
EXPOSE 8080
CMD ["python", "-m", "api"]
