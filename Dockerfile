# Ocelot: a multi-stage build. The build stage compiles the binary CI tests, from the committed
# Cargo.lock (--locked); the runtime stage is Debian slim with the binary, the samples and a
# non-root user.
#
#   docker build -t ocelot .
#   docker run --rm ocelot demo          # the README's demo, inside the image

FROM rust:1.95-bookworm AS build
# librdkafka is built from source by rdkafka (bundled, no cmake); it needs a C toolchain,
# OpenSSL and zlib headers, which this image has.
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ocelot \
 && cp target/release/ocelot /usr/local/bin/ocelot

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/ocelot --create-home ocelot \
 && mkdir -p /var/lib/ocelot/lake /etc/ocelot \
 && chown -R ocelot:ocelot /var/lib/ocelot
COPY --from=build /usr/local/bin/ocelot /usr/local/bin/ocelot
COPY samples /usr/share/ocelot/samples
COPY deploy/ocelot.toml /etc/ocelot/ocelot.toml
USER ocelot
WORKDIR /var/lib/ocelot
# 9464: /metrics, /healthz, /readyz of `ocelot run`; 50051: Flight SQL of `ocelot serve`.
EXPOSE 9464 50051
ENTRYPOINT ["/usr/local/bin/ocelot"]
CMD ["run", "--config", "/etc/ocelot/ocelot.toml"]
