# syntax=docker/dockerfile:1
# chat-server image: dependencies cached by cargo-chef, then a distroless runtime holding only the
# binary (the web client is embedded in it). Build from the repository root:
#   docker build -t chat-server .                       (add --platform linux/arm64 for Graviton)

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The recipe lists the workspace's dependencies only, so the next stage's layer stays cached
# until Cargo.toml or Cargo.lock change.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked -p chat-server --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked -p chat-server \
    && cp target/release/chat-server /chat-server

# glibc, libgcc and CA certificates; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /chat-server /chat-server
# distroless "nonroot" (uid and gid 65532), numeric so Kubernetes/ECS can verify it is not root.
USER 65532:65532
ENV CHAT_LISTEN=0.0.0.0:8080
EXPOSE 8080
# No curl in the image: the binary probes its own /healthz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["/chat-server", "healthcheck"]
ENTRYPOINT ["/chat-server"]
