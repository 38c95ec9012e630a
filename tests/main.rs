//! Integration tests, compiled into one binary. Each module owns one area.

/// `poolform apply`/`plan` processes against the reference broker process:
/// the runbook, ordering, failures, stale plans, locking, convergence, secrets.
mod apply;
/// The module layout: production code imports only what its layer may use.
mod architecture;
/// The reference broker binary driven through the HTTP client: every path,
/// auth, revisions, pagination, faults, crash safety; and the OpenAPI file.
mod broker;
/// What CI relies on: exit codes, closed pipes, annotations, apply events,
/// split configs, network errors, help pages.
mod ci;
/// The `poolform` binary: exit codes, output streams, formats, colour.
mod cli;
/// The README's config reference matches the schema.
mod docs;
/// Every example config is valid and means what its README says.
mod examples;
/// `poolform export` and `import` against the reference broker: round trips and adoption.
mod export;
/// The ten findings of the plan-as-contract review, end to end over HTTP.
mod findings;
/// Random mutations of the examples never make loading or validation panic.
mod fuzz;
/// The invalid-config corpus: each case rejected with located diagnostics (snapshots),
/// and by `validate` and `apply` processes: exit 1, located, no panic, zero writes, bounded.
mod invalid;
/// Maintenance over HTTP: one line out of rotation and back, min_members,
/// a drain that warns users first, export of it.
mod maintenance;
/// The example CI pipelines' commands, read from their files and run
/// against the reference broker with a recording fake forge.
mod pipeline;
/// `poolform plan` and `show` end to end: the runbook states in every format
/// (snapshots), exit codes, saved plans, targets, colour, refresh request count.
mod plan;
/// `plan --rehearse` and `apply --rehearse`: findings before any live
/// write, zero writes, and the predicted event sequence the apply then makes.
mod rehearse;
/// Saved plans round-trip (checksum, every rendering) and apply converges,
/// for generated configs and live states.
mod roundtrip;
/// The committed JSON Schema is what the code generates.
mod schema;
/// The broker's state file across processes: one holder at a time, nothing
/// acknowledged lost when the disk refuses a write, private files.
mod state;
/// The reference broker as a child process, and a CLI runner against it.
mod support;
/// The broker contract at its edges over HTTP: strict bodies, names in
/// paths and queries, If-Match and cursor forms, retries as told.
mod wire;
