# syntax=docker/dockerfile:1
# insightops chroma: the chroma (training) worker
#   docker build -f deploy/docker/chroma.Dockerfile -t insightops-chroma .   (from the repository root; make docker)
# Built with GOWORK=off from the service's own module (its replace directives
# point at ../../shared).
# cgo is on and the binary is linked dynamically against glibc: with
# EMBEDDING_PROVIDER=default, chroma-go's embedder loads ONNX Runtime and the
# tokenizer library with dlopen (docs/VANNA.md), so the runtime image is
# distroless/cc (glibc, libstdc++), the same Debian release as the build.
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY shared/go.mod shared/go.sum shared/
COPY services/chroma/go.mod services/chroma/go.sum services/chroma/
RUN cd services/chroma && GOWORK=off go mod download
COPY shared/ shared/
COPY services/chroma/ services/chroma/
RUN cd services/chroma && GOWORK=off CGO_ENABLED=1 go build -trimpath -tags netgo,osusergo \
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
