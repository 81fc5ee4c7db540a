# modelplane container image: compiled JavaScript on Node 24, production dependencies only,
# non-root, health check on /health. Three commands from one image:
#   docker run IMAGE            -> modelplane serve   (API on 0.0.0.0:8000, data in /data)
#   docker run IMAGE worker     -> modelplane worker  (training jobs from Redis)
#   docker run IMAGE migrate    -> modelplane migrate (schema migrations, then exit)
# Build: docker build -t modelplane .   (NODE_IMAGE picks another Node 24 base, e.g. a mirror)
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# better-sqlite3 compiles from source (npm runs only the install scripts allowed in package.json);
# node-gyp builds against the base image's own Node headers instead of downloading them.
ENV npm_config_nodedir=/usr/local
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
COPY scripts/bundle.mjs ./scripts/bundle.mjs
COPY ui ./ui
# Typecheck and bundle the server (scripts/bundle.mjs) and build the web UI, then drop every devDependency (TypeScript, ESLint, s3rver, type packages) from
# node_modules before it is copied into the runtime stage, and onnxruntime's binaries for other
# platforms (macOS, Windows, the other CPU architecture: about 240 MB).
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && arch=$(node -p process.arch) \
 && find node_modules/onnxruntime-node/bin -mindepth 3 -maxdepth 3 -type d ! -path "*/linux/${arch}" -exec rm -rf {} + \
 && test -d "node_modules/onnxruntime-node/bin/napi-v6/linux/${arch}"

FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="modelplane" \
      org.opencontainers.image.description="MLOps control plane and model server" \
      org.opencontainers.image.licenses="Apache-2.0"
# glibc's allocator: free memory above 64 KiB at the top of an arena goes back to the kernel, and
# blocks of 128 KiB and more are mapped on their own (unmapped when freed). With the defaults the
# blocks onnxruntime and the trainers freed after a training job stayed resident; capping the
# arenas as well (MALLOC_ARENA_MAX=2) made it worse (docs/operations.md, "Memory"). Read by glibc
# at process start; override with -e like any variable.
ENV NODE_ENV=production \
    API_HOST=0.0.0.0 \
    API_PORT=8000 \
    DATA_DIR=/data \
    MALLOC_TRIM_THRESHOLD_=65536
WORKDIR /app
# The code belongs to root and is only readable by the service user; only /data is writable.
RUN groupadd --system --gid 10001 modelplane \
 && useradd --system --uid 10001 --gid modelplane --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin modelplane \
 && mkdir -p /data \
 && chown modelplane:modelplane /data \
 && chmod 0750 /data
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/ui/dist ./ui/dist
COPY --from=build /app/bin ./bin
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
# Healthy when /health answers on the API port (serve) or, failing that, on PROMETHEUS_PORT (a
# `worker`, whose only listener that is).
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "(async()=>{for(const p of [process.env.API_PORT||8000,process.env.PROMETHEUS_PORT].filter(Boolean)){try{if((await fetch('http://127.0.0.1:'+p+'/health')).ok)process.exit(0)}catch{}}process.exit(1)})()"]
# A small young generation (8 MB semi-spaces): Node 24's V8 grows it to 64 MB semi-spaces on a
# machine with several GB (Node 20 and 22: 16 MB), which under load kept about 100 MB more resident
# (RSS 290 MB against 200 MB after 1000-row batches) for no throughput gain. The serving path leaves
# little garbage, so 8 MB costs no measurable throughput against 16 MB and keeps 10-20 MB less.
ENTRYPOINT ["node", "--max-semi-space-size=8", "dist/main.js"]
CMD ["serve"]
