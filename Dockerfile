# syntax=docker/dockerfile:1
#
# The ExpertMesh image: one image runs every service, from the repository root (/opt/expertmesh), as
# the Helm chart starts them: `node gateway/src/main.ts` (the default command), `node worker/src/main.ts`,
# `node orchestrator/src/main.ts`, `node orchestrator/src/batches/runner-main.ts`. Two targets, named by
# the engine backend the native addon is built with; the chart's image.flavor picks the tag:
#
#   docker build --target cpu  --build-arg GIT_COMMIT="$(git rev-parse HEAD)" -t ghcr.io/expertmesh/expertmesh:0.1.0-cpu .
#   docker build --target cuda --build-arg GIT_COMMIT="$(git rev-parse HEAD)" -t ghcr.io/expertmesh/expertmesh:0.1.0-cuda .
#
# cpu:  Debian bookworm + Node; the addon's CPU backend only.
# cuda: the CUDA runtime image (it carries libnccl2, which the addon dlopens) + the same Node; the addon
#       built by nvcc for sm_80 and sm_90, the CPU backend included.
# Building needs a Docker daemon with BuildKit, and publishing a container registry: this repository's
# CI has neither, so there the file is only checked (helm/test/dockerfile.test.ts), never built.

ARG NODE_VERSION=24.21.0
ARG CUDA_VERSION=12.8.1
ARG UBUNTU_VERSION=24.04

# --- Node: the CPU images' base, and where the CUDA stages copy Node from -----------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS node

# --- the CPU build: npm dependencies, generated gRPC code, the addon (cmake-js) ------------------------
FROM node AS build-cpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY scripts/image/build.sh /usr/local/bin/expertmesh-image-build
RUN expertmesh-image-build build-deps
WORKDIR /opt/expertmesh
COPY . .
ENV EXPERTMESH_CUDA=OFF
RUN expertmesh-image-build build

# --- the CUDA build: the same, with nvcc -------------------------------------------------------------
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu${UBUNTU_VERSION} AS build-cuda
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
COPY scripts/image/build.sh /usr/local/bin/expertmesh-image-build
RUN expertmesh-image-build build-deps
WORKDIR /opt/expertmesh
COPY . .
ENV EXPERTMESH_CUDA=ON
RUN expertmesh-image-build build

# --- the CPU image --------------------------------------------------------------------------------------
FROM node AS cpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY scripts/image/build.sh /usr/local/bin/expertmesh-image-build
RUN expertmesh-image-build runtime-deps
WORKDIR /opt/expertmesh
COPY --from=build-cpu --chown=root:root /opt/expertmesh /opt/expertmesh
ARG GIT_COMMIT=""
# GATEWAY_HOST: a container's gateway listens on every interface (the chart's config says the same).
ENV NODE_ENV=production \
    EXPERTMESH_GIT_COMMIT=${GIT_COMMIT} \
    GATEWAY_HOST=0.0.0.0
# uid 1000 (the base image's `node`): the chart's podSecurityContext runs as 1000 too; numeric, so that
# runAsNonRoot can verify it. The code is root's and read-only to it.
USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "scripts/image/healthcheck.ts"]
CMD ["node", "gateway/src/main.ts"]

# --- the CUDA image -------------------------------------------------------------------------------------
FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu${UBUNTU_VERSION} AS cuda
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY scripts/image/build.sh /usr/local/bin/expertmesh-image-build
RUN expertmesh-image-build runtime-deps
WORKDIR /opt/expertmesh
COPY --from=build-cuda --chown=root:root /opt/expertmesh /opt/expertmesh
ARG GIT_COMMIT=""
ENV NODE_ENV=production \
    EXPERTMESH_GIT_COMMIT=${GIT_COMMIT} \
    GATEWAY_HOST=0.0.0.0
# uid 1000 (the base image's `ubuntu`), as in the CPU image.
USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "scripts/image/healthcheck.ts"]
CMD ["node", "gateway/src/main.ts"]
