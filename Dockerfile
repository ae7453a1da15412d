# ganzoo on a GPU: the locked environment, train.py as the entry point.
#   docker build -t ganzoo .
#   docker run --gpus all --rm -v "$PWD/outputs:/app/outputs" ganzoo loss=wgan_gp data=grid
# A slim base: torch's wheels bring their own CUDA libraries (the locked build), so the
# image needs only the host's NVIDIA driver (--gpus all), not a CUDA base image.
FROM python:3.12-slim-bookworm

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    PYTHONUNBUFFERED=1 \
    GANZOO_DATA=/data \
    GANZOO_CACHE=/cache \
    MPLCONFIGDIR=/tmp/matplotlib
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /uvx /usr/local/bin/

# Not root: files written into mounted folders belong to uid 1000 (docker run --user
# changes it).
RUN useradd --create-home --uid 1000 ganzoo \
    && mkdir -p /app/outputs /app/multirun /data /cache \
    && chown -R ganzoo /app /data /cache
USER ganzoo
WORKDIR /app
# Dependencies first (a cached layer), then the project itself.
COPY --chown=ganzoo pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY --chown=ganzoo conf ./conf
COPY --chown=ganzoo ganzoo ./ganzoo
COPY --chown=ganzoo train.py ./
RUN uv sync --locked --no-dev

# Runs, sweeps, datasets (data.root defaults to $GANZOO_DATA) and the real-image feature
# cache of FID/KID outlive the container when mounted.
VOLUME ["/app/outputs", "/app/multirun", "/data", "/cache"]
ENTRYPOINT ["uv", "run", "--no-sync", "train.py"]
CMD []
