# MPK server with its dashboard. `npm ci` runs the postinstall step that generates the Prisma
# client and builds the dashboard; migrations apply when the server starts.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY prisma ./prisma
COPY prisma.config.ts codegen.ts schema.graphql tsconfig.json ./
COPY web ./web
RUN npm ci --no-audit --no-fund
COPY server ./server
ENV HOST=0.0.0.0 PORT=4000 NODE_ENV=production
EXPOSE 4000
# /app belongs to root; without DATABASE_URL or the secrets the server writes its embedded
# database and dev secrets to MPK_DATA_DIR (.data), which the unprivileged user must own.
RUN mkdir -p .data && chown node:node .data
USER node
CMD ["npm", "start"]
