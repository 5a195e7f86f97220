#!/usr/bin/env bash
# Runs Ocelot's whole test suite on a fresh machine: installs what the tests need, then runs
# every test of the workspace. The README's test command; CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# The lake read-back test reads Parquet with pyarrow, a reader that is not ours; the Sigma test
# compares our matches with pySigma's SQLite backend; the Security Hub forwarder test imports
# into moto's Security Hub (server mode) and reads back with boto3; the Athena-style SQL test
# compares `ocelot sql` with DuckDB over the same lake; the OCSF validity test checks every record
# with the OCSF JSON Schema of `ocsf-json-schema`, applied by `jsonschema` (and `jsonschema-rs` for
# the 200,000-event corpus): validators not ours.
venv="${CARGO_TARGET_DIR:-target}/test-venv"
if ! "$venv/bin/python" -c 'import pyarrow, sigma.backends.sqlite, moto.server, boto3, duckdb, adbc_driver_flightsql.dbapi, ocsf_json_schema, jsonschema, jsonschema_rs' 2>/dev/null; then
  echo "setting up $venv with pyarrow, pysigma, pysigma-backend-sqlite, moto[server], boto3, duckdb, adbc-driver-flightsql, ocsf-json-schema, jsonschema and jsonschema-rs (once)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check pyarrow 'pysigma>=1,<3' 'pysigma-backend-sqlite>=1,<3' 'moto[server]>=5,<6' boto3 duckdb 'adbc-driver-flightsql>=1,<2' 'adbc-driver-manager>=1,<2' 'ocsf-json-schema>=1.2,<2' 'jsonschema>=4,<5' 'jsonschema-rs>=0.30,<1'
fi
export OCELOT_TEST_PYTHON="$(cd "$venv" && pwd)/bin/python"

# The streaming tests run a real Kafka-protocol broker: tansu (crates.io, Apache-2.0), with
# SQLite storage. Installed once into cargo's bin dir (outside target/); ~20 min on 2 cores.
tansu="${OCELOT_TANSU:-$(command -v tansu || echo "${CARGO_HOME:-$HOME/.cargo}/bin/tansu")}"
if ! "$tansu" --version >/dev/null 2>&1; then
  echo "installing tansu 0.6 (a Kafka-protocol broker for the streaming tests; once)"
  cargo install tansu --version '^0.6' --locked --features libsql
  tansu="${CARGO_HOME:-$HOME/.cargo}/bin/tansu"
fi
export OCELOT_TANSU="$tansu"

# rdkafka builds librdkafka with TLS: it needs OpenSSL's headers.
if ! pkg-config --exists openssl 2>/dev/null; then
  echo "installing libssl-dev (OpenSSL headers for librdkafka's TLS)"
  apt-get update -qq && apt-get install -y -qq libssl-dev pkg-config >/dev/null
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
