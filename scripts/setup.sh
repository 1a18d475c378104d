#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine that has only the
# Rust toolchain and gcc. Idempotent: apt is not touched when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."

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
# tests/tests/remote.rs: a virtual environment for the S3 test server.
need python3-venv

# tests/tests/remote.rs: a real S3-compatible server, moto's server mode
# (PyPI), in a virtual environment of the project's (the tests find it
# there; nothing is installed into the system's Python).
install_moto() {
    local venv=target/test-tools/moto
    if [ -x "$venv/bin/moto_server" ]; then
        echo "setup: moto present ($venv)"
        return
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]==5.2.5'
    echo "setup: installed moto into $venv"
}

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: nothing to install from apt (g++, libc6-dev, libstdc++-12-dev, python3, perl, coreutils, xz-utils, make, git, sqlite3, bash, hyperfine, file, openjdk-17-jdk-headless, python3-venv all present)"
    install_moto
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
install_moto
