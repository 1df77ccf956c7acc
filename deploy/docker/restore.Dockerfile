# syntax=docker/dockerfile:1
# insightops restore: the restore worker (needs pg_restore 15)
#   docker build -f deploy/docker/restore.Dockerfile -t insightops-restore .   (from the repository root; make docker)
# Built with GOWORK=off from the service's own module (its replace directives
# point at ../../shared and the service modules it imports).
# cgo is on at link time only (chroma-go imports an ONNX embedder we never
# call) and the binary is linked statically, so the runtime image needs no libc.
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY shared/go.mod shared/go.sum shared/
COPY services/backup/go.mod services/backup/go.sum services/backup/
COPY services/restore/go.mod services/restore/go.sum services/restore/
RUN cd services/restore && GOWORK=off go mod download
COPY shared/ shared/
COPY services/backup/ services/backup/
COPY services/restore/ services/restore/
RUN cd services/restore && GOWORK=off CGO_ENABLED=1 go build -trimpath -tags netgo,osusergo \
      -ldflags='-s -w -linkmode external -extldflags "-static"' -o /out/app . \
 && mkdir -p /out/data

# Not distroless: this worker runs pg_dump/pg_restore (PostgreSQL 15 custom
# format, major version >= the server's), so the runtime is Alpine with
# postgresql15-client and a numeric non-root user.
FROM alpine:3.20
RUN apk add --no-cache postgresql15-client ca-certificates tzdata \
 && addgroup -S -g 65532 insightops && adduser -S -D -H -u 65532 -G insightops insightops \
 && mkdir -p /data && chown 65532:65532 /data
COPY --from=build /out/app /app
COPY assets/ /assets/
ENV ASSETS_DIR=/assets TARGET_DB_SOURCE=/assets/databases/vanna_db.db DATA_DIR=/data
USER 65532:65532
ENTRYPOINT ["/app"]
