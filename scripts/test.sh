#!/usr/bin/env bash
# The one entry point that runs every test of racklet-flash, in tiers:
#
#   provision   the Debian packages the tests need (scripts/provision.sh)
#   fast        `cargo test --workspace`: unit tests, every protocol's flow
#               against its virtual ROM, the binary's contracts (a few minutes)
#   slow        what `cargo test` leaves out (#[ignore]d with the tier named):
#               real peers (lrzsz, Debian's fastboot, PyPI k230-flash through
#               tests/k230flash/run.sh), the QEMU USB rig, the
#               README's main job from a clean clone
#   labgrid     a real labgrid coordinator + exporter (tests/labgrid/run.sh)
#   payloads    the payload cross builds, QEMU runs and each board's hello
#
#   bash scripts/test.sh            # every tier, in that order
#   bash scripts/test.sh fast slow  # only these
set -euo pipefail
cd "$(dirname "$0")/.."
tiers=("$@")
((${#tiers[@]})) || tiers=(provision fast slow labgrid payloads)
has() { [[ " ${tiers[*]} " == *" $1 "* ]]; }

has provision && bash scripts/provision.sh

export CARGO_TERM_COLOR=never
# The end-to-end tests (package racklet-tests) run the built binaries, which
# `cargo test` alone does not build for another package: build them first.
cargo build --workspace --bins
if has fast; then
    cargo test --workspace --all-targets --no-fail-fast
    cargo test --workspace --doc
fi
if has slow; then
    cargo test --workspace --all-targets --no-fail-fast -- --ignored
fi

# labgrid: coordinator + exporter on 127.0.0.1 driving racklet-flash
# (installs labgrid from PyPI into target/labgrid-venv on the first run)
if has labgrid; then
    bash tests/labgrid/run.sh
fi

# The payload workspace: cross builds, QEMU runs, and each board's hello
# through racklet-flash (`info` fit checks, `image`, `maskrom --simulate`).
if has payloads; then
    RACKLET_FLASH="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/racklet-flash" bash payloads/test.sh
fi
