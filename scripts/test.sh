#!/usr/bin/env bash
# The project's test command: install test dependencies, build everything
# (the launcher's build script also builds the no_std runtime), run every
# test of the workspace (all test binaries, even after a failure), the
# runtime's unit tests (its own workspace, built as a host program), then the
# transparency suites again, cold and warm, under -persist (with the cache
# server). Extra arguments go to the first `cargo test`, whose dbirun runs
# write their cache files themselves (-no_persist_server through
# DBIRUN_OPTIONS), so a test reads what a run wrote as soon as it exits;
# the server's own tests clear DBIRUN_OPTIONS.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo build --release
status=0
DBIRUN_OPTIONS=-no_persist_server cargo test --release --workspace --no-fail-fast "$@" || status=$?
cargo test --release --manifest-path runtime/Cargo.toml --features host-tests \
    --target-dir target/release/runtime-target || status=$?
sh scripts/test-persisted.sh || status=$?
exit $status
