# The operator image: a static build of `pterobox` on a distroless base, running as non-root
# (uid 65532, as the chart's securityContext expects). Not built by CI: the build machine has no
# container runtime; `docker build -t ghcr.io/pterobox/pterobox:0.1.0 .` builds it.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin pterobox

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/pterobox /usr/local/bin/pterobox
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/pterobox"]
