# syntax=docker/dockerfile:1
# kube-bluegreen webhook image.
#
#   docker build -t ghcr.io/kube-bluegreen/kube-bluegreen:0.1.0 .
#   npm run image     # the same with buildah, no daemon: an OCI archive in dist/image/
#
# Build stage: all dependencies, compile TypeScript, then drop the dev dependencies.
# Runtime stage: distroless Node.js 24 (no shell, no package manager), UID/GID 65532,
# only dist/src, the production node_modules and package.json. The process writes nothing
# to its filesystem, so it runs with readOnlyRootFilesystem (the Helm chart mounts an
# emptyDir at /tmp anyway). Both stages are Debian 12, so any native addon built in the
# first runs in the second.
# `npm run image` (scripts/image/build.sh) builds this file with buildah and passes these two
# fully qualified, or local equivalents where they cannot be pulled.
ARG NODE_BUILD_IMAGE=node:24-bookworm-slim
ARG NODE_RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

FROM ${NODE_BUILD_IMAGE} AS build
WORKDIR /src
ENV NODE_ENV=development \
    npm_config_audit=false \
    npm_config_fund=false \
    npm_config_update_notifier=false
COPY package.json package-lock.json ./
# --ignore-scripts: no production dependency has an install script, and the dev dependency
# "node" (a Node binary for local use) would only download a second Node here.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY plugin/src ./plugin/src
# tsc is run with the image's node directly: node_modules/.bin/node (from the dev dependency
# "node", whose install script did not run) must not shadow it.
# (npm prune leaves the emptied scope directories of dev dependencies, e.g. @vitest: gone too.)
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json \
 && npm prune --omit=dev --ignore-scripts \
 && find node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete \
 && rm -rf dist/plugin

FROM ${NODE_RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="kube-bluegreen" \
      org.opencontainers.image.description="Blue-green deployments native to Kubernetes: the admission webhook" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
# A small young generation: V8 otherwise grows it with the allocation rate (a LIST of thousands of
# objects at start) to over 100 MB of RSS that it keeps; 8 MB semi-spaces cost a few more
# scavenges (bench/README.md, the memory section).
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=8
COPY --from=build --chown=0:0 /src/package.json ./package.json
COPY --from=build --chown=0:0 /src/node_modules ./node_modules
COPY --from=build --chown=0:0 /src/dist/src ./dist/src
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 9443
ENTRYPOINT ["/nodejs/bin/node", "dist/src/webhook/main.js"]
