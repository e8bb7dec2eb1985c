# syntax=docker/dockerfile:1
# inoculab in a container: the release binary, its web bundle and the default model on
# Debian slim, CPU only. compose.yaml runs it with Postgres, a web server and workers;
# docs/deployment.md says how. Alone, it serves with its own worker and SQLite in /data:
#   docker build -t inoculab . && docker run -p 127.0.0.1:3000:3000 -v inoculab:/data inoculab
# (For a GPU image the build needs `--features cuda` on an nvidia/cuda base: not done here.)

# Build: the same two steps as scripts/start, in release mode.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN rustup target add wasm32-unknown-unknown
# wasm-bindgen-cli must match the app's pinned wasm-bindgen crate exactly; scripts/setup
# names the version, so read it there (this layer is rebuilt only when setup changes).
COPY scripts/setup /tmp/setup
RUN cargo install wasm-bindgen-cli --version "$(sed -n 's/^WASM_BINDGEN_VERSION=//p' /tmp/setup)"
COPY . .
# The cache mounts keep downloaded crates and build artefacts from one build to the next;
# they are not part of the image, so the results are copied out in the same step.
# build-site --release would also run wasm-opt if npm's binaryen were here; without it
# the bundle is larger, nothing else changes.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    scripts/build-site --release \
 && cargo build --release -p server \
 && mkdir -p /out \
 && cp target/release/inoculab /out/ \
 && cp -r target/site /out/site

# The default model (SmolLM2-135M-Instruct, Q4_1), fetched and checked by sha256 as
# scripts/setup does, so a new container trains without a download.
FROM python:3.11-slim-bookworm AS model
COPY scripts/fetch-model /usr/local/bin/fetch-model
RUN fetch-model /model

FROM debian:bookworm-slim
# ca-certificates: the LLM judge may call an HTTPS API. DejaVu Sans: the text of charts
# downloaded as PNG (engine::charts::svg_to_png). hunspell-*: the answer-quality judge's
# dictionaries (engine::judges::quality).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates fonts-dejavu-core \
    hunspell-en-us hunspell-es hunspell-fr hunspell-de-de hunspell-it hunspell-pt-pt hunspell-nl \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /data inoculab \
 && mkdir -p /data && chown inoculab /data
COPY --from=build /out/inoculab /usr/local/bin/inoculab
COPY --from=build /out/site /usr/share/inoculab/site
COPY --from=model /model/models/SmolLM2-135M-Instruct.Q4_1.gguf /usr/share/inoculab/models/
COPY scripts/container-entrypoint /usr/local/bin/container-entrypoint
# The binary's default site root is the build tree's target/site; here it lives elsewhere.
# The default model stays in the image (registered as the built-in model on start), the
# data directory is a volume. 0.0.0.0: inside a container 127.0.0.1 is unreachable from
# outside, and beyond loopback serve requires accounts unless told not to: this image is
# for one person (the port published on the host's 127.0.0.1, as compose.yaml does). To
# share it, unset INOCULAB_INSECURE_NO_SIGN_IN and add an owner (`inoculab user add`).
ENV INOCULAB_DATA_DIR=/data \
    INOCULAB_SITE_ROOT=/usr/share/inoculab/site \
    INOCULAB_DEFAULT_MODEL=/usr/share/inoculab/models/SmolLM2-135M-Instruct.Q4_1.gguf \
    INOCULAB_HOST=0.0.0.0 \
    INOCULAB_INSECURE_NO_SIGN_IN=true
USER inoculab
WORKDIR /data
VOLUME /data
EXPOSE 3000
ENTRYPOINT ["container-entrypoint", "inoculab"]
CMD ["serve"]
