# The agent image (one image for the agent and the controller): a release build on Debian's Rust
# toolchain, then FROM scratch with exactly what the binary needs — hc-cli, the glibc shared
# libraries it loads and their loader, CA certificates, passwd/group entries — assembled by
# scripts/image-rootfs.sh. No shell, no package manager.
#
#   docker build -t ghcr.io/coredns-healthcheck/hc-cli:0.1.0 .
#
# Without a Docker engine, scripts/build-image.sh builds the same image from this file's
# `runtime` stage with buildah (the `build` stage replaced by a local release build), smoke-tests
# it and saves it as an OCI archive (`docker load`, `kind load image-archive`).
#
# It runs as UID 0 but with no privileges beyond the two capabilities the DaemonSet adds
# (SYS_ADMIN for setns, SYS_PTRACE for /proc/PID/ns): a non-root user cannot use added
# capabilities unless the binary carries file capabilities. The controller's pod runs it as UID
# 65534 with none. See docs/deployment.md.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock clippy.toml ./
COPY crates ./crates
COPY scripts/image-rootfs.sh ./scripts/
RUN cargo build --release --locked -p hc-cli \
    && scripts/image-rootfs.sh target/release/hc-cli /out/rootfs

FROM scratch AS runtime
COPY --from=build /out/rootfs/ /
USER 0:0
EXPOSE 9890
ENTRYPOINT ["/usr/local/bin/hc-cli"]
CMD ["run", "--sweep-netns", "--proc-root=/host/proc"]
