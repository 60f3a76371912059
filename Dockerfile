# syntax=docker/dockerfile:1
#
# threadgate in a container: a static binary on distroless, run as a non-root
# user, with the example rules at /etc/threadgate/rules.yaml and its data dir
# (the embedded store: accepted events, dead letters, conversation state) at
# /var/lib/threadgate, a volume.
#
#   docker build -t threadgate .
#   docker run --rm -p 8080:8080 threadgate                    # sandbox mode
#   docker run -d -p 8080:8080 -v "$PWD/myrules:/etc/threadgate:ro" \
#     -v threadgate-data:/var/lib/threadgate \
#     -e PAGE_ACCESS_TOKEN -e APP_SECRET -e VERIFY_TOKEN threadgate
#
# Give the data dir a named volume (or a host directory writable by UID
# 65532): what threadgate acknowledged and has not handled yet lives there,
# and survives a crash or a restart of the container. One container per
# volume: the file is locked by the process that has it open.
#
# Mount a DIRECTORY at /etc/threadgate, never the single file: a single-file
# bind mount keeps pointing at the old file when an editor saves by rename,
# so threadgate would never see the change. See docs/operate.md.

# ---- build ------------------------------------------------------------------
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
# No .git in the context: pass the revision for `threadgate version`, e.g.
#   docker build --build-arg VCS_REF=$(git rev-parse HEAD) -t threadgate .
ARG VCS_REF=""
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags="-s -w -X main.revision=${VCS_REF}" -o /out/threadgate ./cmd/threadgate
# The data dir, empty, to be copied with the runtime user as its owner: a
# named volume mounted there starts as a copy of it, so it is writable.
RUN mkdir -p /out/data

# ---- run --------------------------------------------------------------------
# distroless/static: CA certificates, tzdata, /etc/passwd with "nonroot"
# (65532); no shell, no package manager, no curl.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/threadgate /usr/local/bin/threadgate
COPY --chown=0:0 --chmod=0444 examples/rules.yaml /etc/threadgate/rules.yaml
COPY --from=build --chown=65532:65532 --chmod=0700 /out/data /var/lib/threadgate
ENV THREADGATE_RULES=/etc/threadgate/rules.yaml \
    THREADGATE_DATA_DIR=/var/lib/threadgate \
    THREADGATE_LOG_FORMAT=json
# Without a volume given, Docker makes an anonymous one, which outlives the
# container but not `docker rm -v`: name it (-v threadgate-data:/var/lib/threadgate).
VOLUME ["/var/lib/threadgate"]
USER 65532:65532
EXPOSE 8080
# No curl in the image: the binary checks itself (GET /healthz on $PORT or
# :8080). Kubernetes ignores HEALTHCHECK and uses the Deployment's probes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/threadgate", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/threadgate"]
CMD ["serve"]
