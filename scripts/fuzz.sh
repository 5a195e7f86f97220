#!/usr/bin/env bash
# Fuzzes every decoder (fuzz/fuzz_targets: CloudTrail and its envelopes, WAF, ASFF, GuardDuty,
# Shield, OTLP JSON, MCP) with cargo-fuzz (libFuzzer) for a bounded time each, starting from the
# corpus committed under fuzz/corpus/. CI (.ci/run) runs it after the tests.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 30 s, every target)
#
# A crash stops the script with libFuzzer's report; the input that made it is written to
# fuzz/artifacts/<target>/ (replay: cargo fuzz run -s none <target> <file>). New inputs that
# reach new code are added to fuzz/corpus/<target>/ (commit them with `cargo fuzz cmin` first).
# Stable Rust: no sanitizer (-s none); a panic or a failed assertion is what is caught.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(cloudtrail waf asff guardduty shield otlp_json mcp)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (libFuzzer driver for the decoder fuzz targets; once)"
  cargo install cargo-fuzz --version '^0.13' --locked
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo fuzz build -s none --fuzz-dir fuzz
for t in "${targets[@]}"; do
  echo "fuzzing $t for ${secs}s"
  log="$CARGO_TARGET_DIR/fuzz-$t.log"
  # -rss_limit_mb: a decoder that holds more than this for one small input is a bug too.
  if ! cargo fuzz run -s none --fuzz-dir fuzz "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $t failed: the input is in fuzz/artifacts/$t/ (log: $log)" >&2
    exit 1
  fi
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)" "$log" | tr '\n' ' '
  echo
done
