# The agent image: a static-enough release build on Debian's Rust toolchain, then a minimal glibc
# runtime (distroless cc: glibc, libgcc, CA certificates; no shell, no package manager).
#
#   docker build -t ghcr.io/coredns-healthcheck/hc-cli:0.1.0 .
#
# It runs as UID 0 but with no privileges beyond the two capabilities the DaemonSet adds
# (SYS_ADMIN for setns, SYS_PTRACE for /proc/PID/ns): a non-root user cannot use added
# capabilities unless the binary carries file capabilities, which distroless images cannot set at
# build time without a shell. See docs/deployment.md for what was and was not verified.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock clippy.toml ./
COPY crates ./crates
RUN cargo build --release --locked -p hc-cli && strip target/release/hc-cli

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /src/target/release/hc-cli /usr/local/bin/hc-cli
USER 0:0
EXPOSE 9890
ENTRYPOINT ["/usr/local/bin/hc-cli"]
CMD ["run", "--sweep-netns", "--proc-root=/host/proc"]
