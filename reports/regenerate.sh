#!/usr/bin/env bash
# Regenerates the committed example reports from the fixture runs; a test
# (tests/reports.rs) fails when they are stale. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q
bin="${CARGO_TARGET_DIR:-target}/debug/postmortem"
for run in healthy dead-relu deep-vanishing lr-too-high overfitting; do
    rm -rf "reports/$run"
    "$bin" analyze "fixtures/runs/$run" --out "reports/$run" --fail-on never > /dev/null
done
