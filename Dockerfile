# syntax=docker/dockerfile:1
# chat-server image: dependencies cached by cargo-chef, then a distroless runtime holding only the
# stripped binary (the web client is embedded in it). Build from the repository root:
#   docker build -t chat-server .                       (add --platform linux/arm64 for Graviton)
# The binary's debug info (release builds keep line tables for backtraces) is split off into
# chat-server.debug; keep it next to the image's tag when you want symbolised crash reports:
#   docker build --target debuginfo --output type=local,dest=debug/ .
#
# Base images are pinned by digest (the multi-platform index of each tag), so a rebuild uses the
# bytes that were reviewed, not whatever the tag points at that day. To refresh, look the tags up
# and replace both digests (and RUST_VERSION's tag with them):
#   docker buildx imagetools inspect rust:1.95-bookworm --format '{{json .Manifest.Digest}}'
#   docker buildx imagetools inspect gcr.io/distroless/cc-debian12:nonroot --format '{{json .Manifest.Digest}}'
# (or `crane digest <image>`); terraform/tests/test_dockerfile.py checks that every FROM is pinned.

ARG RUST_IMAGE=rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
# Build identity baked into the binary (chat-server --version, /version); pass
#   --build-arg GIT_SHA=$(git rev-parse HEAD)
# since .git stays out of the build context.
ARG GIT_SHA=unknown

FROM ${RUST_IMAGE} AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The recipe lists the workspace's dependencies only, so the next stage's layer stays cached
# until Cargo.toml or Cargo.lock change.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ARG GIT_SHA
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked -p chat-server --recipe-path recipe.json
COPY . .
# Strip into the image, keep the debug info beside it: about 21 MB instead of about 100 MB to
# pull on every task start during a deploy.
RUN CHAT_GIT_SHA="$GIT_SHA" cargo build --release --locked -p chat-server \
    && objcopy --only-keep-debug target/release/chat-server /chat-server.debug \
    && objcopy --strip-all --add-gnu-debuglink=/chat-server.debug target/release/chat-server /chat-server

# `docker build --target debuginfo --output …` exports the debug info only.
FROM scratch AS debuginfo
COPY --from=builder /chat-server.debug /chat-server.debug

# glibc, libgcc and CA certificates; no shell, no package manager.
FROM ${RUNTIME_IMAGE} AS runtime
COPY --from=builder /chat-server /chat-server
# distroless "nonroot" (uid and gid 65532), numeric so Kubernetes/ECS can verify it is not root.
USER 65532:65532
ENV CHAT_LISTEN=0.0.0.0:8080
EXPOSE 8080
# No curl in the image: the binary probes its own /healthz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["/chat-server", "healthcheck"]
ENTRYPOINT ["/chat-server"]
