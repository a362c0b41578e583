# mountat runner image: `mountat runner` serving Buildbarn's runner protocol for bb_worker.
#
# The base images are arguments so the image can be built where no registry is reachable, from bases made
# locally (scripts/docker/make-base-rootfs.sh makes them from Debian's packages with this machine's Node):
#   docker build --network host \
#     --build-arg BUILD_BASE=mountat-base/build:local --build-arg RUNTIME_BASE=mountat-base/runtime:local -t mountat-runner .
# Both must be Debian-like with Node 20 at /usr/local/bin/node (as the official node images have it: the hook
# launcher is compiled with that path); BUILD_BASE also needs npm, gcc, a static libc (libc6-dev) and a static
# libseccomp (libseccomp-dev: the starter's seccomp filter), which is installed here if it is missing.
# `--network host` is only needed when the engine's bridge has no route out (dockerd --iptables=false).
ARG BUILD_BASE=node:20-bookworm
ARG RUNTIME_BASE=node:20-bookworm-slim

FROM ${BUILD_BASE} AS build
RUN test -f /usr/lib/"$(gcc -print-multiarch)"/libseccomp.a || (apt-get update -q && apt-get install -y -q --no-install-recommends libseccomp-dev && rm -rf /var/lib/apt/lists/*)
WORKDIR /src
# Dependencies first, so a source change does not re-run npm ci.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY bin ./bin
COPY native ./native
COPY schemas ./schemas
COPY scripts/build-native.sh ./scripts/
COPY hooks ./hooks
COPY src ./src
# tsc + the hook bundle + the two static programs (hooks/mountat-hook, dist/mountat-action); then drop what only
# building needed.
RUN npm run build && npm prune --omit=dev --no-audit --no-fund && find dist hooks \( -name '*.map' -o -name '*.stamp' \) -delete

FROM ${RUNTIME_BASE}
# tini as pid 1: it forwards SIGTERM to the runner and reaps orphans (a daemon an external hook leaves behind),
# which Node as pid 1 would leave as zombies. util-linux (nsenter, for the OCI hook's prestart/createRuntime
# stages) is Essential in Debian, so the slim base has it; fail here rather than at the first hook if it is not.
RUN command -v tini >/dev/null || (apt-get update -q && apt-get install -y -q --no-install-recommends tini && rm -rf /var/lib/apt/lists/*)
RUN node --version && nsenter --version && tini --version
WORKDIR /opt/mountat
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/bin ./bin
COPY --from=build /src/dist ./dist
COPY --from=build /src/schemas ./schemas
COPY --from=build /src/hooks ./hooks
COPY deploy/docker/runner.json /config/runner.json
COPY deploy/docker/writable-cgroups.sh /usr/local/bin/writable-cgroups
RUN ln -s /opt/mountat/bin/mountat.js /usr/local/bin/mountat && mountat help >/dev/null
# The config names the build directory (/worker/build) and the socket (/worker/runner) on the volume shared with
# bb_worker; mount your own at /config/runner.json to change them. writable-cgroups takes the read-only flag off the
# container's cgroup mounts (in its own mount namespace) so that the runner can make a cgroup for every action
# (docs/cgroups.md, "In a container"), then execs the runner.
ENTRYPOINT ["tini", "--", "writable-cgroups", "mountat", "runner", "--config", "/config/runner.json"]
# CheckReadiness over the socket the config names, whatever config is mounted over /config/runner.json (an HTTP check
# would need the diagnostics server, which this config does not enable, at a port fixed here; the image has no HTTP
# client but bash's /dev/tcp). It starts Node every interval (~0.5 s of CPU: bench/RESULTS.md, "Probes").
# Kubernetes ignores HEALTHCHECK: deploy/kubernetes/worker.yaml probes /-/ready with httpGet instead.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["mountat", "probe", "--config", "/config/runner.json", "--timeout", "4"]
