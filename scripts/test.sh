#!/usr/bin/env bash
# The project's test command: install test dependencies, build everything
# (the launcher's build script also builds the no_std runtime), run every
# test of the workspace (all test binaries, even after a failure). Extra
# arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo build --release
cargo test --release --workspace --no-fail-fast "$@"
