#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine that has only the
# Rust toolchain and gcc. Idempotent: apt is not touched when all is present.
set -euo pipefail

missing=()

# need PACKAGE CHECK...: PACKAGE is missing unless it is installed (dpkg) and
# every CHECK (a path that must exist) holds.
need() {
    local pkg=$1
    shift
    if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
        missing+=("$pkg")
        return
    fi
    local f
    for f in "$@"; do
        if [ ! -e "$f" ]; then
            missing+=("$pkg")
            return
        fi
    done
}

need g++ /usr/bin/g++
need libc6-dev /usr/lib/x86_64-linux-gnu/libc.a
need libstdc++-12-dev
need python3 /usr/bin/python3
need perl /usr/bin/perl
need coreutils /usr/bin/sort /usr/bin/sha256sum
need xz-utils /usr/bin/xz
need make /usr/bin/make
need git /usr/bin/git
need sqlite3 /usr/bin/sqlite3
need bash /bin/bash
need hyperfine /usr/bin/hyperfine
need file /usr/bin/file
# tests/tests/jvm.rs: the JVM (JIT, writable code, SIGSEGV by design) and javac.
need openjdk-17-jdk-headless /usr/bin/java /usr/bin/javac

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: nothing to install (g++, libc6-dev, libstdc++-12-dev, python3, perl, coreutils, xz-utils, make, git, sqlite3, bash, hyperfine, file, openjdk-17-jdk-headless all present)"
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: installed ${missing[*]}"
