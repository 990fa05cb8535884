# syntax=docker/dockerfile:1
# The one `wellbeing` image: operator, assistant (webhook) and check-in Jobs run the same binary.
#   docker build -t ghcr.io/wellbeing-dev/wellbeing:0.1.0 .
# Python plugins run in their own image (plugins/host/Dockerfile).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# The whole workspace: crates embed files from outside their folder (migrations/, the shared
# credential patterns in plugins/host/); .dockerignore keeps build output and VCS data out.
COPY . .
# Cache mounts keep the registry and target dir between builds; the binary is copied out of the
# cached target dir in the same step because the mount is gone afterwards.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p wellbeing \
    && install -D -m 0755 target/release/wellbeing /out/wellbeing

# glibc and libgcc only (rustls, bundled SQLite: no OpenSSL, no system libsqlite); no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/wellbeing /usr/local/bin/wellbeing
# 65532 is distroless's "nonroot"; the chart's restricted securityContext runs the same uid.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/wellbeing"]
CMD ["--help"]
