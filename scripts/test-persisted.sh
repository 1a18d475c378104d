#!/bin/sh
# Runs the transparency suites (corpus, real programs, processes and
# threads, signals, clients) twice with every dbirun run under -persist and
# one shared cache directory and its cache server (started by the first
# run): the first round hands the caches over, `cachetool server sync`
# waits for them to be merged and published, the second round runs
# everything from them. Both must pass like the plain suites,
# and the warm round must really have run from the files: the cache
# index's counters (cachetool stats) must show blocks loaded, no file
# rejected, and a hit rate above the cold round's.
set -eu
cd "$(dirname "$0")/.."
dir=$(mktemp -d "${TMPDIR:-/tmp}/dbi-persisted-tests.XXXXXX")
trap 'target/release/cachetool --dir "$dir/$(id -u)" server stop >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
export DBI_TESTS_DBIRUN_OPTIONS="-persist -persist_dir $dir"
stats() {
    target/release/cachetool --dir "$dir/$(id -u)" server sync
    target/release/cachetool --dir "$dir/$(id -u)" stats --json > "$dir/stats-$1.json"
}
for round in cold warm; do
    echo "== transparency suites under -persist ($round)"
    cargo test --release -p dbi-tests --test corpus --test real_programs \
        --test processes_threads --test signals --test clients
    stats "$round"
done
python3 - "$dir/stats-cold.json" "$dir/stats-warm.json" <<'PY'
import json, sys
cold, after = (json.load(open(p)) for p in sys.argv[1:3])
loaded = after["blocks_loaded"] - cold["blocks_loaded"]
built = after["blocks_built"] - cold["blocks_built"]
rejected = after["files_rejected"] - cold["files_rejected"]
cold_rate = cold["blocks_loaded"] / max(1, cold["blocks_loaded"] + cold["blocks_built"])
warm_rate = loaded / max(1, loaded + built)
print(f"== warm round: {loaded} blocks loaded, {built} built (hit rate {warm_rate:.1%}, "
      f"cold round {cold_rate:.1%}), {rejected} files rejected")
problems = []
if loaded <= 0:
    problems.append("no block was loaded from a cache file")
if rejected > 0:
    problems.append(f"{rejected} cache files were rejected")
if warm_rate <= cold_rate:
    problems.append("the warm round's hit rate is not above the cold round's")
if problems:
    sys.exit("test-persisted: the warm round did not run from the caches: " + "; ".join(problems))
PY
