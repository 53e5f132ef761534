# MPK's production image: the server compiled to JavaScript, production dependencies only, run by
# `node` itself as PID 1 so that `docker stop`'s SIGTERM reaches the server's graceful stop
# (subscriptions closed with 1001, in-flight requests finished, the metering batch flushed, the
# scheduler lock handed back). The Node line is the one package.json's engines and .nvmrc name.
ARG NODE_IMAGE=node:24-bookworm-slim

# 1. Every dependency (the Prisma generator, GraphQL codegen, Vite, esbuild): `npm ci` runs the
#    postinstall step that generates the Prisma client and builds the dashboard; then the server
#    and its CLIs are bundled into dist/server/ (node_modules stay external).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY prisma ./prisma
COPY prisma.config.ts codegen.ts schema.graphql tsconfig.json ./
COPY web ./web
RUN npm ci --no-audit --no-fund
COPY server ./server
RUN npm run build:server

# 2. Production dependencies only. No install scripts: the postinstall step needs the dev tools,
#    and its outputs (the generated client, bundled into dist/; web/dist) come from the build stage.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# 3. What runs: no sources, no dev dependencies, no npm in the process tree.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/web/dist ./web/dist
# package.json marks dist/ as ES modules and is where the server finds prisma/ (migrations, SQL).
COPY package.json ./
COPY prisma ./prisma
# /app belongs to root; without DATABASE_URL or the secrets the server writes its embedded
# database and dev secrets to MPK_DATA_DIR (.data), which the unprivileged user must own.
RUN mkdir -p .data && chown node:node .data
USER node
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form, no shell and no npm: node is PID 1 and receives SIGTERM itself. The server installs
# its own SIGTERM/SIGINT handlers (PID 1 gets no default ones). The CLIs are beside it:
#   docker compose exec mpk-1 node dist/server/cli/mpk.js --help
CMD ["node", "dist/server/main.js"]
