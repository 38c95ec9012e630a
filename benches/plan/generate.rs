//! The stacks the plan benchmark plans: one broker seed per shape and size
//! (the live state) and one config directory per share changed (the
//! desired state), streamed to disk so that a million members never sit in
//! the benchmark's memory as one value.
//!
//! Every stack has `members` destinations in load-balanced, sticky pools of
//! ten (one pool of them all, for the one-pool shape), one app config per
//! pool and one user app instance per member. The members that change are
//! every `100 / share`-th, counted over all pools.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use poolform::contract::labels::STACK_LABEL;
use poolform::contract::wire::{
    AppConfig, AppInstance, AppType, Credentials, Destination, Labels, LoadBalancing, Pool,
    Protocol, Session, SessionCounts, SessionState,
};
use serde::Serialize;

pub const STACK: &str = "bench";
pub const MEMBERS_PER_POOL: usize = 10;

/// A kind of change users make, at some share of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Members leave their pools (empty hosts).
    Drop,
    /// Each changed member is swapped for a new host (a migration).
    Replace,
    /// Members move to the next load-balanced pool.
    Move,
    /// Pools change their sticky period (the share counts pools).
    Settings,
    /// App instances are pinned to another member of their pool (the share
    /// counts instances).
    Retarget,
    /// Members leave their pools while each host has a user on it, so each
    /// removal drains (every host is busy in this stack).
    Drain,
    /// Replace, in a stack of one pool of every member: what grows with
    /// the size is one pool's member list, where in every other shape it
    /// is the number of pools of ten.
    OnePool,
}

impl Shape {
    pub const ALL: [Shape; 7] = [
        Shape::Drop,
        Shape::Replace,
        Shape::Move,
        Shape::Settings,
        Shape::Retarget,
        Shape::Drain,
        Shape::OnePool,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Drop => "drop",
            Shape::Replace => "replace",
            Shape::Move => "move",
            Shape::Settings => "settings",
            Shape::Retarget => "retarget",
            Shape::Drain => "drain",
            Shape::OnePool => "onepool",
        }
    }

    /// Steps the plan must have when `changed` units change.
    pub fn expected_steps(self, changed: usize, share: usize) -> usize {
        let per_change = match self {
            // Stop logons, clear sticky bindings, remove.
            Shape::Drop => 3,
            // The same plus the add.
            Shape::Replace | Shape::Move | Shape::OnePool => 4,
            Shape::Settings | Shape::Retarget => 1,
            // Stop logons, drain, clear sticky bindings, remove.
            Shape::Drain => 4,
        };
        // A pool replaced whole (all ten members: only at 100%) has its
        // removals wait for its adds through one step. A move's adds wait
        // for the removals from the other pool instead.
        let waits = match self {
            Shape::Replace if share == 100 => changed / MEMBERS_PER_POOL,
            // Through one step wherever that makes fewer dependencies
            // than each removal waiting for each add.
            Shape::OnePool => usize::from(changed * changed > changed + changed),
            _ => 0,
        };
        changed * per_change + waits
    }

    /// Whether the plan breaks a safety rule on purpose: dropping every
    /// member empties pools that app configs use.
    pub fn violates(self, share: usize) -> bool {
        share == 100 && matches!(self, Shape::Drop | Shape::Drain)
    }
}

/// Which members (or pools, or instances) change at `share` percent.
fn changed(index: usize, share: usize) -> bool {
    index.is_multiple_of(100 / share)
}

/// How many units change at `share` percent of `units`.
pub fn changed_count(units: usize, share: usize) -> usize {
    (0..units).filter(|&i| changed(i, share)).count()
}

/// The units a shape's share counts.
pub fn units(shape: Shape, members: usize) -> usize {
    match shape {
        Shape::Settings => members / MEMBERS_PER_POOL,
        _ => members,
    }
}

/// The members of each pool of a shape at `members` members.
fn per_pool(shape: Shape, members: usize) -> usize {
    match shape {
        Shape::OnePool => members,
        _ => MEMBERS_PER_POOL,
    }
}

fn pool_name(p: usize) -> String {
    format!("p{p:06}")
}

fn member(p: usize, m: usize) -> String {
    format!("d{p:06}-{m}")
}

fn spare(p: usize, m: usize) -> String {
    format!("r{p:06}-{m}")
}

fn owned() -> Labels {
    [(STACK_LABEL.to_owned(), STACK.to_owned())].into()
}

fn destination(name: String, installed: bool, active: u32) -> Destination {
    Destination {
        lb_service_installed: installed,
        sessions: SessionCounts {
            active,
            disconnected: 0,
        },
        ..Destination::registered(&name, true, true, 1)
    }
}

/// Writes `"key":[item,item,...]` of a JSON object, item by item.
fn write_list<T: Serialize>(
    out: &mut impl Write,
    key: &str,
    items: impl Iterator<Item = T>,
) -> std::io::Result<()> {
    write!(out, "\"{key}\":[")?;
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, &item)?;
    }
    out.write_all(b"]")
}

/// The live state of a shape at `members` members, as a `--seed` file.
pub fn seed(path: &Path, shape: Shape, members: usize) -> std::io::Result<()> {
    let per_pool = per_pool(shape, members);
    let pools = members / per_pool;
    let slots = move || (0..pools).flat_map(move |p| (0..per_pool).map(move |m| (p, m)));
    let busy = u32::from(shape == Shape::Drain);
    let mut out = BufWriter::new(File::create(path)?);
    out.write_all(b"{")?;
    // A new host for every member, so that every share finds its own.
    let spares = slots()
        .filter(|_| matches!(shape, Shape::Replace | Shape::OnePool))
        .map(|(p, m)| destination(spare(p, m), false, 0));
    let destinations = slots()
        .map(|(p, m)| destination(member(p, m), true, busy))
        .chain(spares);
    write_list(&mut out, "destinations", destinations)?;
    out.write_all(b",")?;
    write_list(
        &mut out,
        "pools",
        (0..pools).map(|p| Pool {
            name: pool_name(p),
            load_balancing: LoadBalancing {
                enabled: true,
                sticky_sessions_minutes: 10,
                grace_period_seconds: 30,
            },
            default_credentials: Credentials::default(),
            labels: owned(),
            members: (0..per_pool).map(|m| member(p, m)).collect(),
            revision: 1,
        }),
    )?;
    out.write_all(b",")?;
    write_list(
        &mut out,
        "app_configs",
        (0..pools).map(|p| AppConfig {
            name: format!("c{p:06}"),
            pool: pool_name(p),
            app_type: AppType::Desktop,
            protocol: Protocol::Rdp,
            admin_session: false,
            keep_credentials_on_destination_change: false,
            allow_destination_change: false,
            labels: owned(),
            revision: 1,
        }),
    )?;
    out.write_all(b",")?;
    write_list(
        &mut out,
        "app_instances",
        slots().map(|(p, m)| AppInstance {
            name: format!("i{p:06}-{m}"),
            app_config: format!("c{p:06}"),
            user: Some(format!("u{p:06}-{m}@corp.example")),
            group: None,
            destination: (shape == Shape::Retarget).then(|| member(p, m)),
            labels: owned(),
            revision: 1,
        }),
    )?;
    out.write_all(b",")?;
    let sessions = slots().filter(|_| busy > 0).map(|(p, m)| Session {
        id: format!("s{p:06}-{m}"),
        user: format!("u{p:06}-{m}@corp.example"),
        destination: member(p, m),
        state: SessionState::Active,
    });
    write_list(&mut out, "sessions", sessions)?;
    out.write_all(b"}")?;
    out.flush()
}

/// The members pool `p` declares in a shape at `share` percent.
fn declared_members(
    shape: Shape,
    share: usize,
    p: usize,
    pools: usize,
    per_pool: usize,
) -> Vec<String> {
    let moved = |p: usize, m: usize| shape == Shape::Move && changed(p * per_pool + m, share);
    let mut out = Vec::with_capacity(per_pool + 1);
    for m in 0..per_pool {
        let is_changed = changed(p * per_pool + m, share);
        match shape {
            Shape::Drop | Shape::Drain if is_changed => {}
            Shape::Replace | Shape::OnePool if is_changed => out.push(spare(p, m)),
            Shape::Move if is_changed => {}
            _ => out.push(member(p, m)),
        }
    }
    // Members of the previous pool that move here.
    let previous = (p + pools - 1) % pools;
    out.extend(
        (0..per_pool)
            .filter(|&m| moved(previous, m))
            .map(|m| member(previous, m)),
    );
    out
}

/// The config of a shape at `share` percent: `pools.yaml` and `apps.yaml`
/// in `dir`.
pub fn config(dir: &Path, shape: Shape, members: usize, share: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let per_pool = per_pool(shape, members);
    let pools = members / per_pool;
    let mut out = BufWriter::new(File::create(dir.join("pools.yaml"))?);
    writeln!(out, "stack: {STACK}\npools:")?;
    for p in 0..pools {
        let sticky = if shape == Shape::Settings && changed(p, share) {
            20
        } else {
            10
        };
        writeln!(
            out,
            "  {}:\n    load_balancing: {{enabled: true, sticky_sessions: {sticky}m, grace_period: 30s}}\n    \
             drain: {{sessions: disconnect, timeout: 5m}}",
            pool_name(p)
        )?;
        let declared = declared_members(shape, share, p, pools, per_pool);
        if declared.is_empty() {
            writeln!(out, "    members: []")?;
        }
        for (i, name) in declared.iter().enumerate() {
            if i == 0 {
                writeln!(out, "    members:")?;
            }
            writeln!(out, "      - {name}")?;
        }
    }
    out.flush()?;
    let mut out = BufWriter::new(File::create(dir.join("apps.yaml"))?);
    writeln!(out, "app_configs:")?;
    for p in 0..pools {
        writeln!(
            out,
            "  c{p:06}: {{pool: {}, type: desktop, protocol: rdp}}",
            pool_name(p)
        )?;
    }
    writeln!(out, "app_instances:")?;
    for p in 0..pools {
        for m in 0..per_pool {
            write!(
                out,
                "  i{p:06}-{m}: {{app_config: c{p:06}, user: u{p:06}-{m}@corp.example"
            )?;
            if shape == Shape::Retarget {
                let to = if changed(p * per_pool + m, share) {
                    (m + 1) % per_pool
                } else {
                    m
                };
                write!(out, ", destination: {}", member(p, to))?;
            }
            writeln!(out, "}}")?;
        }
    }
    out.flush()
}

/// A config of `members` members (the drop shape at 1%) that `validate`
/// refuses with `errors` diagnostics: app instances at the end of the
/// largest file that name app configs nobody declares, so that every
/// diagnostic is located deep in a large file. Returns its size in bytes.
pub fn broken_config(dir: &Path, members: usize, errors: usize) -> std::io::Result<u64> {
    config(dir, Shape::Drop, members, 1)?;
    let apps = dir.join("apps.yaml");
    let mut out = BufWriter::new(File::options().append(true).open(&apps)?);
    for k in 0..errors {
        writeln!(
            out,
            "  broken-{k}: {{app_config: missing-{k}, user: u{k}@corp.example}}"
        )?;
    }
    out.flush()?;
    drop(out);
    Ok(std::fs::metadata(dir.join("pools.yaml"))?.len() + std::fs::metadata(apps)?.len())
}
