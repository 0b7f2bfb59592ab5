# syntax=docker/dockerfile:1
#
# kol in a container. Two targets:
#   docker build -t kol:gpu .                 (default: CUDA build of whisper.cpp, NVIDIA runtime image)
#   docker build -t kol:cpu --target cpu .    (CPU only)
# Models are not in the image: they live in the volume at /var/lib/kol/models and are downloaded on
# first start when absent. docs/DEPLOY.md has the details; compose.gpu.yml runs the GPU image.

ARG CUDA_VERSION=12.4.1
ARG UBUNTU_VERSION=22.04
ARG NODE_IMAGE=node:20.20.2-bookworm-slim
# 86 = RTX 30xx / A10, 89 = RTX 40xx / L4, 90 = H100 / H200.
ARG CUDA_ARCHS=86,89,90

# Node itself, copied into the CUDA images (the official linux-x64 binary: glibc 2.28+).
FROM ${NODE_IMAGE} AS node

# Production dependencies, shared by both variants (onnxruntime's CUDA add-on is skipped by .npmrc).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund

# ── CPU variant ────────────────────────────────────────────────────────────────────────────────
FROM ${NODE_IMAGE} AS cpu-build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cmake g++ make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
ENV KOL_CACHE_DIR=/var/lib/kol
RUN docker/build-engine.sh cpu

FROM ${NODE_IMAGE} AS cpu
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 util-linux \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/kol --shell /usr/sbin/nologin kol \
 && mkdir -p /var/lib/kol/models \
 && chown -R kol:kol /var/lib/kol
WORKDIR /app
COPY --from=cpu-build /app /app
COPY --from=cpu-build --chown=kol:kol /var/lib/kol/engine /var/lib/kol/engine
ENV NODE_ENV=production KOL_HOST=0.0.0.0 KOL_PORT=8009 KOL_CACHE_DIR=/var/lib/kol KOL_GPU=off
USER kol
VOLUME ["/var/lib/kol/models"]
EXPOSE 8009
# Ready = a worker is up and the server is not draining. The first start may download a model: long start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20m --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.KOL_PORT||8009)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "bin/kol.js"]
CMD ["serve"]

# ── GPU variant (default target) ───────────────────────────────────────────────────────────────
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu${UBUNTU_VERSION} AS cuda-build
ARG CUDA_ARCHS
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cmake g++ make \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
ENV KOL_CACHE_DIR=/var/lib/kol KOL_CUDA_ARCHS=${CUDA_ARCHS}
RUN docker/build-engine.sh cuda

FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu${UBUNTU_VERSION} AS gpu
ARG CUDA_ARCHS
# libgomp: whisper.cpp's CPU threads; setpriv (util-linux): workers die with the server even on SIGKILL.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 util-linux ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/kol --shell /usr/sbin/nologin kol \
 && mkdir -p /var/lib/kol/models \
 && chown -R kol:kol /var/lib/kol
COPY --from=node /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=cuda-build /app /app
COPY --from=cuda-build --chown=kol:kol /var/lib/kol/engine /var/lib/kol/engine
# gpu=on + gpuFallback=refuse: a GPU image started without a GPU says so and stops, rather than
# transcribing at a fraction of the speed; set KOL_GPU_FALLBACK=cpu to run anyway.
ENV NODE_ENV=production KOL_HOST=0.0.0.0 KOL_PORT=8009 KOL_CACHE_DIR=/var/lib/kol KOL_CUDA_ARCHS=${CUDA_ARCHS} \
    KOL_GPU=on KOL_GPU_FALLBACK=refuse NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER kol
VOLUME ["/var/lib/kol/models"]
EXPOSE 8009
HEALTHCHECK --interval=15s --timeout=5s --start-period=20m --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.KOL_PORT||8009)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "bin/kol.js"]
CMD ["serve"]
