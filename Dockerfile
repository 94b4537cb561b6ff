# syntax=docker/dockerfile:1

# One image, one entrypoint; the command picks the role:
#   docker build -t flightctl .
#   docker run --rm flightctl --help
#   docker run --rm -e DATABASE_URL=... flightctl migrate up
# compose.yaml runs it as `migrate up`, `seed`, `serve` and `worker`.
#
# Two targets share everything but where the binary comes from (README
# "Container image"):
#   runtime           (the default, last) compiled in the `builder` stage;
#   runtime-prebuilt  ./flightctl of the build context, a binary built outside
#                     for Debian bookworm (glibc 2.36): `--target
#                     runtime-prebuilt`, as tests/image.rs does where no
#                     registry serves rust:*.
# Builders skip the stages their target does not use (BuildKit; podman
# builds only up to the target, and skips unused stages since 4.3).

# Everything the image ships but the binary.
FROM debian:bookworm-slim AS runtime-base

LABEL org.opencontainers.image.title="flightctl" \
      org.opencontainers.image.description="Flight seat booking: HTTP API, Temporal worker and database tools"

# curl is for the compose healthcheck of `serve` (GET /health).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 flightctl \
 && useradd --system --uid 10001 --gid flightctl --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin flightctl

# Settings are read from ./config/default.toml (then the environment).
WORKDIR /app
COPY config/ /app/config/

USER 10001:10001
# The public listener. The admin listener (ADMIN_PORT 8081, the payload codec)
# is on loopback unless ADMIN_HOST says otherwise, so it is not exposed here.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/flightctl"]
CMD ["serve"]


# A binary built outside (root-owned like any COPY, whatever USER says).
FROM runtime-base AS runtime-prebuilt
COPY flightctl /usr/local/bin/flightctl


FROM rust:1-bookworm AS builder

# The Temporal SDK compiles its protobufs at build time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Migrations are embedded in the binary (refinery::embed_migrations!).
COPY migrations/ migrations/
COPY src/ src/

# The registry and the target dir live in BuildKit cache mounts, so after a
# source change only flightctl itself is recompiled. The target dir is not part
# of the image layer, hence the copy out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin flightctl \
 && install -m 0755 target/release/flightctl /usr/local/bin/flightctl


FROM runtime-base AS runtime
COPY --from=builder /usr/local/bin/flightctl /usr/local/bin/flightctl
