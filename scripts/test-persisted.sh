#!/bin/sh
# Runs the transparency suites (corpus, real programs, processes and
# threads, signals, clients) twice with every dbirun run under -persist and
# one shared cache directory: the first round writes the caches, the
# second runs everything from them. Both must pass like the plain suites.
set -eu
cd "$(dirname "$0")/.."
dir=$(mktemp -d "${TMPDIR:-/tmp}/dbi-persisted-tests.XXXXXX")
trap 'rm -rf "$dir"' EXIT
export DBI_TESTS_DBIRUN_OPTIONS="-persist -persist_dir $dir"
for round in cold warm; do
    echo "== transparency suites under -persist ($round)"
    cargo test --release -p dbi-tests --test corpus --test real_programs \
        --test processes_threads --test signals --test clients
done
