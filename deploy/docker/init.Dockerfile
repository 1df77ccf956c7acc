# syntax=docker/dockerfile:1
# insightops init: the init worker; `--once` is the provisioning init Job
#   docker build -f deploy/docker/init.Dockerfile -t insightops-init .   (from the repository root; make docker)
# Built with GOWORK=off from the service's own module (its replace directives
# point at ../../shared).
# cgo is on at link time only (chroma-go imports an ONNX embedder we never
# call) and the binary is linked statically, so the runtime image needs no libc.
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY shared/go.mod shared/go.sum shared/
COPY services/init/go.mod services/init/go.sum services/init/
RUN cd services/init && GOWORK=off go mod download
COPY shared/ shared/
COPY services/init/ services/init/
RUN cd services/init && GOWORK=off CGO_ENABLED=1 go build -trimpath -tags netgo,osusergo \
      -ldflags='-s -w -linkmode external -extldflags "-static"' -o /out/app . \
 && mkdir -p /out/data

# distroless static, non-root (uid 65532): no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
COPY --from=build --chown=65532:65532 /out/data /data
COPY assets/ /assets/
ENV ASSETS_DIR=/assets TARGET_DB_SOURCE=/assets/databases/vanna_db.db DATA_DIR=/data
USER 65532:65532
ENTRYPOINT ["/app"]
