#!/usr/bin/env bash
# Runs Ocelot's whole test suite on a fresh machine: installs what the tests need, then runs
# every test of the workspace. The README's test command; CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# The lake read-back test reads Parquet with pyarrow, a reader that is not ours.
venv="${CARGO_TARGET_DIR:-target}/test-venv"
if ! "$venv/bin/python" -c 'import pyarrow' 2>/dev/null; then
  echo "setting up $venv with pyarrow (once)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check pyarrow
fi
export OCELOT_TEST_PYTHON="$(cd "$venv" && pwd)/bin/python"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
