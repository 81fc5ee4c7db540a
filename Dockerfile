# syntax=docker/dockerfile:1
# modelplane: multi-stage build on Node 24. The build stage compiles TypeScript and the native
# SQLite binding; the runtime stage holds only production dependencies and runs as a non-root user.

FROM node:24-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles from source (npm runs only the install scripts allowed in package.json).
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    API_HOST=0.0.0.0 \
    API_PORT=8000 \
    DATA_DIR=/data
WORKDIR /app
RUN groupadd --system --gid 10001 modelplane \
 && useradd --system --uid 10001 --gid modelplane --home-dir /app --shell /usr/sbin/nologin modelplane \
 && mkdir -p /data && chown modelplane:modelplane /data
COPY --from=build --chown=modelplane:modelplane /app/package.json ./package.json
COPY --from=build --chown=modelplane:modelplane /app/node_modules ./node_modules
COPY --from=build --chown=modelplane:modelplane /app/dist ./dist
COPY --from=build --chown=modelplane:modelplane /app/bin ./bin
USER modelplane
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.API_PORT||8000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# A small young generation (8 MB semi-spaces): Node 24's V8 grows it to 64 MB semi-spaces on a
# machine with several GB (Node 20 and 22: 16 MB), which under load kept about 100 MB more resident
# (RSS 290 MB against 200 MB after 1000-row batches) for no throughput gain. The serving path leaves
# little garbage, so 8 MB costs no measurable throughput against 16 MB and keeps 10-20 MB less.
ENTRYPOINT ["node", "--max-semi-space-size=8", "dist/main.js"]
CMD ["serve"]
