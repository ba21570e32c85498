# syntax=docker/dockerfile:1
# The mock LLM provider, with the demo's workload runner and the model-router
# CLI (for `model-router report`), built from this repository:
#
#   docker build -f docker/mock-provider.Dockerfile -t model-router/mock-provider:dev .
#
# docker-compose.yaml builds it for the mock providers and the workload.
# The filter itself (.wasm) is not in this image: compose mounts the one
# `cargo build --release --target wasm32-wasip1` wrote.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p mock-provider -p model-router-cli --bins \
    && mkdir -p /out \
    && cp target/release/mock-provider target/release/demo-workload target/release/model-router /out/

FROM debian:bookworm-slim
COPY --from=build /out/ /usr/local/bin/
# The workload (examples/workload.jsonl) and policies, for demo-workload and report.
COPY examples/ /examples/
WORKDIR /examples
USER 65532:65532
EXPOSE 8080
CMD ["mock-provider", "--listen", "0.0.0.0:8080"]
