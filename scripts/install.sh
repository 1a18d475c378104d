#!/bin/sh
# Installs dbirun (the front, and dbirun-full it hands over to), its runtime (dbi-runtime, found beside dbirun) and
# cachetool into PREFIX/bin (default ~/.local), and their manual pages into
# PREFIX/share/man/man1, so they run without this checkout. With --skip-build, installs what `cargo build --release`
# already built.
#   sh scripts/install.sh [--skip-build] [PREFIX]
set -eu
cd "$(dirname "$0")/.."
build=1
if [ "${1:-}" = "--skip-build" ]; then
    build=0
    shift
fi
prefix="${1:-$HOME/.local}"
if [ "$build" = 1 ]; then
    cargo build --release
fi
runtime=target/release/runtime-target/release/dbi-runtime
for f in target/release/dbirun target/release/dbirun-full target/release/cachetool target/release/dbicached "$runtime"; do
    [ -x "$f" ] || { echo "install.sh: $f is missing: build first (cargo build --release)" >&2; exit 1; }
done
mkdir -p "$prefix/bin"
# A temporary name, then a rename: a dbirun running from PREFIX never sees
# half a file.
for f in target/release/dbirun target/release/dbirun-full target/release/cachetool target/release/dbicached "$runtime"; do
    name=$(basename "$f")
    cp "$f" "$prefix/bin/.$name.tmp.$$"
    chmod 755 "$prefix/bin/.$name.tmp.$$"
    mv -f "$prefix/bin/.$name.tmp.$$" "$prefix/bin/$name"
done
# Manual pages, generated from the same definitions as --help.
mkdir -p "$prefix/share/man/man1"
"$prefix/bin/dbirun" -man > "$prefix/share/man/man1/dbirun.1"
"$prefix/bin/cachetool" man > "$prefix/share/man/man1/cachetool.1"
echo "installed dbirun, dbirun-full, dbi-runtime, cachetool and dbicached in $prefix/bin, their manual pages in $prefix/share/man/man1"
