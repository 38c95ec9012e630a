#!/usr/bin/env bash
# The maintenance runbook end to end on the embedded reference broker: the
# steady state plans no changes, rds-02 goes out of the live pool (stop new
# logons, drain, clear sticky bindings, remove) and comes back. The broker's state lives in
# a temporary directory, so the git tree stays clean.
set -euo pipefail
cd "$(dirname "$0")/../.."

state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
broker="file:$state/broker.json" # created from examples/maintenance/broker-seed.json
# The example's demo password; the seed holds its fingerprint.
export MAINT_PASSWORD=maintenance-demo

# POOLFORM names a poolform binary to use instead of building one (the
# test suite runs this script with the binary it built).
if [[ -z "${POOLFORM:-}" ]]; then
    cargo build --quiet
    POOLFORM="${CARGO_TARGET_DIR:-target}/debug/poolform"
fi
poolform() {
    printf '\n$ poolform %s\n' "$*"
    "$POOLFORM" "$@"
}

poolform validate examples/maintenance/rds-02-out
poolform plan examples/maintenance/steady --broker "$broker"
poolform plan examples/maintenance/rds-02-out --broker "$broker" --format markdown
poolform apply examples/maintenance/rds-02-out --broker "$broker" --auto-approve
poolform plan examples/maintenance/rds-02-out --broker "$broker" --detailed-exitcode
poolform apply examples/maintenance/rds-02-back --broker "$broker" --auto-approve
poolform plan examples/maintenance/steady --broker "$broker" --detailed-exitcode
