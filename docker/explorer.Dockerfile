# The atlas explorer (`atlas serve`) as a container, next to the Neo4j service of compose.yml.
# The graph view's JavaScript comes from the committed lock file (npm ci), in a build stage that leaves node behind.
FROM node:20-slim AS frontend
WORKDIR /frontend
COPY atlas/explorer/frontend/package.json atlas/explorer/frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY atlas ./atlas
COPY loaders ./loaders
COPY queries ./queries
# Editable, so that the explorer finds its node_modules next to its package.
RUN pip install --no-cache-dir -e .
COPY --from=frontend /frontend/node_modules ./atlas/explorer/frontend/node_modules
RUN useradd --create-home atlas
USER atlas
EXPOSE 8000
# 0.0.0.0 inside the container only: compose publishes the port on the host's 127.0.0.1.
CMD ["atlas", "serve", "--host", "0.0.0.0", "--port", "8000"]
