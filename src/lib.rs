//! poolform: config-as-code for oneclick destination pools. The library holds
//! every module; the `poolform` binary only parses flags and dispatches.
//!
//! # Bird's-eye view
//!
//! ```text
//! YAML files ─config::read─▶ texts ─merge─▶ Config (spans) ─validate─▶ Validated<Config> ─lower─▶ Desired
//!                                                                                                 │
//! broker (client over HTTP, or the reference broker in-process) ─▶ LiveState ─────────▶ plan::compute
//!                                                                                                 │
//!                                  render (text / markdown / JSON) ◀── Plan (saved, checksummed) ──▶ apply ──▶ Report
//! ```
//!
//! Data flows one way; each stage takes the previous stage's output as a
//! value. The broker side is split by a neutral contract: poolform's client
//! and the reference broker it ships both depend on [`contract`], never on
//! each other.
//!
//! # Code map
//!
//! Bottom layer, depending on nothing else in the crate:
//!
//! - [`contract`] — the broker API as Rust: wire types ([`contract::wire`],
//!   each a compatibility promise described by `schema/broker-api.openapi.yaml`;
//!   [`contract::page`] decodes list pages straight into one list, and
//!   [`contract::rare::Rare`] keeps a field most values leave at its default,
//!   such as a destination's maintenance, as a null pointer: invariant, it
//!   reads, compares and encodes as the value itself),
//!   problem codes with their one title each ([`contract::problem`]), the one
//!   name rule and its wording ([`contract::names`]), the compact label map
//!   every resource carries (invariant: it compares by value, so whether
//!   decoding shared one copy among neighbours is never observable) and the
//!   labels poolform keeps on broker resources
//!   ([`contract::labels`]), and the [`contract::Broker`]
//!   trait with its error type, the `Expect` of a conditional write, and the
//!   `LiveState` a plan reads (stamped with the identity of the broker that
//!   answered).
//! - [`address`] — a resource's identity, (kind, name), as in `--target`, and
//!   the shared `Name` that plans hold their names in.
//! - [`diagnostic`] — the one located `Diagnostic` type and the `SourceMap`
//!   (invariant: a released text is taken back only when, masked again as
//!   before, it is the text released, so a snippet never shows an edited
//!   file or an unmasked secret).
//! - [`atomic_file`] — replacing a file so a crash leaves old or new, never torn.
//! - [`json_schema`] — how every JSON Schema poolform writes is generated.
//! - [`regular_file`] — reading a file that must be a regular file (config
//!   and secret files): kind checked before opening, bounded, with a timeout.
//! - [`secret`] — where a secret comes from, its `SecretString` value, and the
//!   fingerprint label that detects a changed secret without reading it back.
//! - [`desired`] — the desired state in broker terms: no spans, no files,
//!   secrets resolved. What a plan is computed from.
//!
//! The two sides of the broker contract:
//!
//! - [`client`] — a live broker over HTTP(S): reqwest with rustls, timeouts,
//!   bearer token, bounded retries with backoff and jitter.
//! - [`refbroker`] — the reference broker: the engine (every broker rule,
//!   one file per rule family; its maps track what each write changed, a
//!   member write is tracked as the membership it changed, never as its pool
//!   whole, and its lookups, derived from them and never persisted, are
//!   updated by every write that changes what they answer), its
//!   durable store (one state file held under an exclusive lock file: the
//!   state written whole, then one record appended and synced per group
//!   commit, `refbroker::wal`; a write that cannot be persisted is undone
//!   before its 503), the axum server behind
//!   `poolform broker serve`, and the engine in-process: `EmbeddedBroker`
//!   (persisted to a state file) and `Recording` (in memory on a virtual
//!   clock, logging every call, with scripted faults: the test double of
//!   every broker caller and the sandbox for rehearsing an apply).
//!
//! The core:
//!
//! - [`config`] — YAML to desired state: `read` (the only IO) → `merge` →
//!   `validate` (every problem at once; the only maker of `Validated<T>`) →
//!   `lower`, which consumes the config: it moves the app instances' values
//!   into the desired state and keeps the rest as `config::Located`
//!   (invariant: every span a diagnostic about a plan points at survives
//!   lowering). `config::spec` holds the file's serde types, from which the
//!   config JSON Schema is derived; `config::fast` reads the plain YAML
//!   configs are written in (a block mapping entry by entry, as the types
//!   ask for them, never as a whole tree) and declines everything else to
//!   serde-saphyr, which keeps every diagnostic and protection (invariant:
//!   what it takes, it reads as serde-saphyr does, places included); when
//!   the typed parse of a file fails, `config::shape` walks the file
//!   against that schema to report every shape problem of it at once.
//! - [`plan`] — `plan::compute(&Desired, &LiveState, &Targets)`: the diff by
//!   identity then field, the expansion of each change into broker steps with
//!   explicit dependencies, their topological order (`plan::ready`, the
//!   sort's set of ready steps as a bitset), the live facts each step
//!   was planned on (`plan::fact`), and the safety checks; saved plans, read
//!   back and recognised by their content (`plan::saved`). A field diff's
//!   value is JSON or, for a pool's members, a list of names in one string
//!   (`plan::FieldValue`; invariant: both serialise alike, so a saved plan,
//!   read back as JSON, equals the plan it was saved from). Names in steps,
//!   their causes and their facts are shared (`address::Name`, one
//!   pointer to a counted text, serialised as a string), and a step's
//!   facts depend on its operation alone (invariant: so they are attached
//!   before the steps are ordered, where a member's steps sit side by
//!   side; a host the expansion hands the facts is the live destination
//!   the step's operation names). The safety rules read the delta and the
//!   live state, not the steps, but for the refused drains (invariant: so
//!   they run beside the expansion, and a rule that reads the steps goes
//!   with the drains, in `safety::Found::with_drains`). A plan is sealed
//!   (its checksum taken) once, by `plan::compute_at` with the broker URL
//!   it records, or again by `force`/`rehearsed`: anything that changes a
//!   sealed plan seals it again.
//! - [`apply`] — executes a plan's steps through the `Broker` trait: ordered,
//!   concurrent up to the parallelism, one step per destination at a time and
//!   a whole-pool write alone among its pool's member changes; each step's
//!   preconditions checked right before its write (`apply::precondition`);
//!   the drain protocol, the offline-removal warning, the stack lease, the
//!   stale-plan check. Emits progress events and returns a report.
//! - [`export`] — live state to config YAML that plans no changes.
//! - [`rehearse`] — a plan run by the real apply engine against a copy of
//!   live state (a `refbroker::Recording` seeded from the live snapshot) on a
//!   virtual clock: what each step would meet, the events the copy logged,
//!   whether a plan afterwards converges, the estimated wall time. It only
//!   reads the live broker, and passwords reach the copy as a placeholder.
//! - [`render`] — diagnostics, plans and apply reports as text, markdown and
//!   JSON, to any `io::Write`; `render::words` has the one sentence per step,
//!   violation, fact and warning that every rendering shares; `render::markdown`
//!   orders a plan comment by risk; `render::annotations` writes GitHub
//!   workflow commands and GitLab code quality reports; `render::events` is
//!   the JSON line per apply event; `render::json` writes a plan's document
//!   (with serde_json's pretty layout, byte for byte, in fewer writes)
//!   while its checksum is still being computed on the other core (the
//!   checksum is the document's last field, and only that line waits).
//!
//! The top:
//!
//! - [`backend`] — the broker URL, parsed in one place, and `AnyBroker` over
//!   both backends: the only module that sees the client and the reference
//!   broker at once.
//! - [`cli`] — the clap definitions: a plain mirror of the flags, no IO.
//! - [`commands`] — one file per command, plus `commands::context` (what
//!   they share, built once from the global flags: styles, runtime, config
//!   loading, broker connection, plan rendering and saving) and
//!   `commands::error` (why a command failed, with its cause), plus
//!   `commands::output` (stdout and stderr that treat a closed pipe as a
//!   reader that left), `commands::annotate` (which findings become
//!   annotations for `--format github|gitlab`), `commands::apply_output`
//!   (what apply shows per format) and `commands::logging`. Each command
//!   does its IO and returns an exit status or an error; `main` prints the
//!   error once and decides the exit code in one place (usage errors are 1).
//!
//! # Where a change goes
//!
//! - A new config key: its serde type in `config::spec`, its checks in
//!   `config::validate`, its conversion in `config::lower` and a field of
//!   [`desired`]; then `cargo run -- schema`.
//! - A new broker error code: `contract::problem::codes` (and its title in
//!   `contract::problem::new`), the OpenAPI file, the rule that answers it
//!   in `refbroker::engine`, and its handling where apply meets it.
//! - A new step kind: a variant of `plan::Op`, where `plan::order` expands a
//!   change into it and what it depends on, the facts it relies on in
//!   `plan::fact`, the broker call in `apply::step` (and, when its facts need
//!   a read, `apply::precondition`), and its sentence in `render::words`.
//! - A new output format: a renderer in [`render`] and a value of the format
//!   flag in [`cli`]; commands pick it.
//! - A new reference-broker rule: the rule family's file in
//!   `refbroker::engine`, its route in `refbroker::server` when it is a new
//!   operation, and the OpenAPI file (a test compares routes and spec). A
//!   rule that writes a pool, app config, app instance or session tells the
//!   lookups (`refbroker::engine::lookups`) and joins the writes of their
//!   property test.
//!
//! # Invariants
//!
//! - Dependencies point down the layers above; `tests/architecture.rs` fails
//!   on any production import the layout forbids. In particular: the client
//!   never imports the reference broker (nor the reverse); plan and apply
//!   never import config, render, commands or either broker side; render
//!   never imports a broker backend; rehearse joins apply and the reference
//!   broker, never the client; nothing imports commands.
//! - The config pipeline does IO only in `config::read`; everything after it
//!   is pure. Only `config::validate` constructs `Validated<T>`, so later
//!   stages take one instead of re-checking. Every config diagnostic carries
//!   file, line and column, and validation reports all problems at once.
//! - Plan computation is deterministic: the same inputs give byte-identical
//!   JSON. Plans are pure data (no closures, no colours, no human strings),
//!   versioned and checksummed when saved.
//! - Apply never re-plans or re-diffs: a saved plan that no longer matches
//!   the broker (another broker, or resources that moved) is refused whole,
//!   and a step whose planned facts changed fails before its write. Every
//!   step is safe to run twice, so a re-run after a crash converges with no
//!   duplicate side effect.
//! - Core modules never print: apply emits progress events, render writes.
//! - Secrets are `SecretSource`s in plans and `SecretString`s in memory; an
//!   inline secret in YAML is masked in the kept source, so no diagnostic
//!   snippet, plan, log or report can show one.
//! - The reference broker answers a write only once it is durable, and every
//!   state change appends exactly one event to its log.
//! - Deliberately absent: validation never contacts the broker, and the
//!   config types use no `flatten`/`untagged` (the parser would lose spans).

pub mod address;
pub mod apply;
pub mod atomic_file;
pub mod backend;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod contract;
pub mod desired;
pub mod diagnostic;
pub mod export;
pub mod json_schema;
pub mod plan;
pub mod refbroker;
pub mod regular_file;
pub mod rehearse;
pub mod render;
pub mod secret;
