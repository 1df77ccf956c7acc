# syntax=docker/dockerfile:1
# insightops insightops: the all-in-one (embedded NATS, SQLite by default)
#   docker build -f deploy/docker/insightops.Dockerfile -t insightops-insightops .   (from the repository root; make docker)
# Built with GOWORK=off from the service's own module (its replace directives
# point at ../../shared and the service modules it imports).
# Development (no APP_ENV) listens on 127.0.0.1 inside the container, so
# `docker run -p 8000:8000` reaches nothing until you choose: -e API_ADDR=:8000
# (and change the development admin password first), or APP_ENV=production with
# JWT_SECRET and INIT_ADMIN_PASSWORD (docs/SECURITY.md).
# cgo is on and the binary is linked dynamically against glibc: with
# EMBEDDING_PROVIDER=default, chroma-go's embedder loads ONNX Runtime and the
# tokenizer library with dlopen (docs/VANNA.md), so the runtime image is
# distroless/cc (glibc, libstdc++), the same Debian release as the build.
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY shared/go.mod shared/go.sum shared/
COPY services/api/go.mod services/api/go.sum services/api/
COPY services/backup/go.mod services/backup/go.sum services/backup/
COPY services/chroma/go.mod services/chroma/go.sum services/chroma/
COPY services/init/go.mod services/init/go.sum services/init/
COPY services/restore/go.mod services/restore/go.sum services/restore/
COPY services/insightops/go.mod services/insightops/go.sum services/insightops/
RUN cd services/insightops && GOWORK=off go mod download
COPY shared/ shared/
COPY services/api/ services/api/
COPY services/backup/ services/backup/
COPY services/chroma/ services/chroma/
COPY services/init/ services/init/
COPY services/restore/ services/restore/
COPY services/insightops/ services/insightops/
RUN cd services/insightops && GOWORK=off CGO_ENABLED=1 go build -trimpath -tags netgo,osusergo \
      -ldflags='-s -w' -o /out/app . \
 && mkdir -p /out/data

# distroless cc, non-root (uid 65532): no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/app /app
COPY --from=build --chown=65532:65532 /out/data /data
COPY assets/ /assets/
ENV ASSETS_DIR=/assets TARGET_DB_SOURCE=/assets/databases/vanna_db.db DATA_DIR=/data
USER 65532:65532
ENTRYPOINT ["/app"]
