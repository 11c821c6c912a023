# Touchpoint as a container: a static binary on a distroless base, running
# as a non-root user, with the demo in configs/ so that the image serves
# something as it is. deploy/ shows it behind Compose and Kubernetes.
#
#   docker build -t touchpoint --label org.opencontainers.image.revision="$(git rev-parse HEAD)" .
#   docker run --rm -p 8080:8080 -e TOUCHPOINT_ADMIN_KEY=… -e TOUCHPOINT_WEBHOOK_SECRET=… touchpoint
#
# The builder's Go version is go.mod's (a test in cmd/touchpoint checks
# it). .git is not sent to the builder, so `touchpoint version` in the
# image reports the commit as unknown: the revision label above says it.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# Modules first, so that a change to the code alone reuses this layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/touchpoint ./cmd/touchpoint \
 && mkdir -p /out/data

# distroless/static has no shell and no package manager: nothing to run a
# HEALTHCHECK with, so there is none here. Orchestrators probe /healthz
# and /readyz over HTTP instead (deploy/k8s/deployment.yaml).
FROM gcr.io/distroless/static-debian12:nonroot
WORKDIR /app
COPY --from=build /out/touchpoint /usr/local/bin/touchpoint
COPY configs/ /app/configs/
# A writable place for the decision log, owned by the non-root user.
COPY --from=build --chown=65532:65532 /out/data /data
ENV TOUCHPOINT_DECISION_LOG_FILE_PATH=/data/decisions.jsonl
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/touchpoint"]
CMD ["serve", "--config", "configs/touchpoint.yaml"]
