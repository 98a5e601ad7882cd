# Sourced by the scripts in this directory. Installs, at pinned versions and
# only when missing, every tool Portcullis builds and tests with:
#   - the wasm32-unknown-unknown Rust target
#   - cargo-leptos (built with `no_downloads`: it uses the tools below from PATH)
#   - wasm-bindgen-cli, at exactly the version of the wasm-bindgen crate in Cargo.lock
#   - Node packages from package-lock.json: Playwright, and binaryen for wasm-opt
#   - Debian's Chromium, for the browser tests (ensure_chromium)
#   - cargo-nextest, the test runner with per-test deadlines (ensure_nextest)
#   - twiggy, for scripts/size --twiggy (ensure_twiggy)
#   - schemathesis and openapi-spec-validator, for the API contract test, in a
#     Python venv (ensure_contract_tools; versions in contract-requirements.txt)
# Everything is idempotent: a second run only checks versions.

set -euo pipefail

PORTCULLIS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_LEPTOS_VERSION="0.3.10"
NEXTEST_VERSION="0.9.143"
CONTRACT_VENV="${PORTCULLIS_CONTRACT_VENV:-$HOME/.cache/portcullis/venv}"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

# Runs a command as root: directly, or through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "Need root to run: $* (install sudo or run as root)" >&2
        return 1
    fi
}

# A command from a Debian package, installed with apt when missing (the
# benchmark's wrk, scripts/size's brotli): ensure_debian_tool COMMAND [PACKAGE].
ensure_debian_tool() {
    if command -v "$1" >/dev/null 2>&1; then
        return
    fi
    say "Installing ${2:-$1} (Debian)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${2:-$1}"
}

wasm_bindgen_version() {
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$PORTCULLIS_ROOT/Cargo.lock"
}

ensure_wasm_target() {
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        say "Adding the wasm32-unknown-unknown target"
        rustup target add wasm32-unknown-unknown
    fi
}

ensure_cargo_leptos() {
    if cargo leptos --version 2>/dev/null | grep -q " ${CARGO_LEPTOS_VERSION}\$"; then
        return
    fi
    say "Installing cargo-leptos ${CARGO_LEPTOS_VERSION} (one-time, about 15 minutes)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads
}

ensure_wasm_bindgen() {
    local version
    version="$(wasm_bindgen_version)"
    if [ -z "$version" ]; then
        echo "Cargo.lock names no wasm-bindgen version" >&2
        return 1
    fi
    if wasm-bindgen --version 2>/dev/null | grep -q " ${version}\$"; then
        return
    fi
    say "Installing wasm-bindgen-cli ${version} (matches Cargo.lock; one-time, about 4 minutes)"
    # Not --locked: one of the CLI's locked dependencies is gone from crates.io.
    cargo install wasm-bindgen-cli --version "$version" --force
}

# twiggy, for `scripts/size --twiggy` only (what is in the WASM).
ensure_twiggy() {
    if twiggy --version 2>/dev/null | grep -q " 0.7.0\$"; then
        return
    fi
    say "Installing twiggy 0.7.0 (one-time, about 2 minutes)"
    cargo install twiggy --version 0.7.0 --locked
}

ensure_node_packages() {
    local stamp="$PORTCULLIS_ROOT/node_modules/.package-lock.json"
    if [ -f "$stamp" ] && [ "$stamp" -nt "$PORTCULLIS_ROOT/package-lock.json" ] \
        && [ -x "$PORTCULLIS_ROOT/node_modules/.bin/wasm-opt" ]; then
        return
    fi
    say "Installing Node packages (Playwright, binaryen)"
    # The browser comes from Debian (ensure_chromium); Playwright's own
    # download cannot work offline.
    (cd "$PORTCULLIS_ROOT" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
}

ensure_chromium() {
    if [ -x /usr/bin/chromium ]; then
        return
    fi
    say "Installing Debian's Chromium for the browser tests"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
}

# Machines of this kind come with cargo-nextest; elsewhere it is built once.
ensure_nextest() {
    if cargo nextest --version >/dev/null 2>&1; then
        return
    fi
    say "Installing cargo-nextest ${NEXTEST_VERSION} (one-time)"
    cargo install cargo-nextest --version "$NEXTEST_VERSION" --locked
}

# The contract test's Python tools, pinned with their dependencies in
# scripts/contract-requirements.txt. Reinstalled only when that file changes
# (the venv keeps a copy of the one it was made from).
ensure_contract_tools() {
    local requirements="$PORTCULLIS_ROOT/scripts/contract-requirements.txt"
    local stamp="$CONTRACT_VENV/portcullis-requirements.txt"
    if [ -x "$CONTRACT_VENV/bin/schemathesis" ] && cmp -s "$requirements" "$stamp"; then
        return
    fi
    say "Installing schemathesis and openapi-spec-validator into $CONTRACT_VENV (one-time)"
    if [ ! -x "$CONTRACT_VENV/bin/python" ]; then
        python3 -m venv "$CONTRACT_VENV"
    fi
    "$CONTRACT_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --requirement "$requirements"
    cp "$requirements" "$stamp"
}

# Everything the build needs.
ensure_build_tools() {
    ensure_wasm_target
    ensure_node_packages
    ensure_wasm_bindgen
    ensure_cargo_leptos
    # wasm-opt (release builds) and Playwright come from node_modules.
    export PATH="$PORTCULLIS_ROOT/node_modules/.bin:$PATH"
}
