# ganzoo with CUDA: the locked environment, train.py as the entry point.
#   docker build -t ganzoo .
#   docker run --gpus all --rm -v "$PWD/outputs:/app/outputs" ganzoo loss=wgan_gp data=grid
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /uvx /usr/local/bin/

WORKDIR /app
# Dependencies first (cached layer), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project --python 3.12
COPY conf ./conf
COPY ganzoo ./ganzoo
COPY train.py ./
RUN uv sync --locked --no-dev --python 3.12

ENTRYPOINT ["uv", "run", "--no-sync", "train.py"]
CMD []
