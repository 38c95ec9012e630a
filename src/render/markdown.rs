//! Markdown rendering of plans for pull-request comments, riskiest first:
//! violations, expected warnings, the summary, then the resource changes by
//! risk (deletes, drains and disconnects with their user counts, removals,
//! updates, creates), a Mermaid graph of the step order for small plans, and
//! the numbered steps. Whatever does not fit under the comment limit is
//! dropped from the end of that order, and a note says what was left out. A
//! hidden marker names the stack, so CI can update its comment in place.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use super::plan::{field_lines, sigil};
use super::{rehearsal, words};
use crate::address::Address;
use crate::desired::DrainSessions;
use crate::plan::{Action, Change, Op, Plan, Step};

/// GitHub rejects comments over 65,536 characters; stay well below.
pub const COMMENT_LIMIT: usize = 60_000;

/// Plans with more steps than this get no graph: it would not be readable.
pub const GRAPH_MAX_STEPS: usize = 40;

/// Writes the plan as markdown, truncated to `limit` bytes (with a note
/// saying what was cut).
pub fn markdown(plan: &Plan, limit: usize, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(build(plan, limit).as_bytes())
}

/// The hidden first line that identifies a stack's comment.
pub fn marker(stack: &str) -> String {
    format!("<!-- poolform:stack={stack} -->")
}

/// How much could go wrong with a change, riskiest first: the order of the
/// comment's sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Risk {
    Delete,
    Drain,
    Removal,
    Update,
    Create,
}

impl Risk {
    const ALL: [Risk; 5] = [
        Risk::Delete,
        Risk::Drain,
        Risk::Removal,
        Risk::Update,
        Risk::Create,
    ];

    fn heading(self) -> &'static str {
        match self {
            Risk::Delete => "Deletes",
            Risk::Drain => "Drains and disconnects",
            Risk::Removal => "Removals",
            Risk::Update => "Updates",
            Risk::Create => "Creates",
        }
    }

    /// The noun for a count of this section's entries in the truncation note.
    fn noun(self) -> &'static str {
        match self {
            Risk::Delete => "deletes",
            Risk::Drain => "drains",
            Risk::Removal => "removals",
            Risk::Update => "updates",
            Risk::Create => "creates",
        }
    }
}

/// The risk a step carries on its own, if more than its change's action.
fn step_risk(op: &Op) -> Option<Risk> {
    match op {
        Op::DeletePool { .. } | Op::DeleteAppConfig { .. } | Op::DeleteAppInstance { .. } => {
            Some(Risk::Delete)
        }
        Op::DrainSessions { .. } => Some(Risk::Drain),
        Op::RemoveMember { .. } | Op::RemoveLbService { .. } => Some(Risk::Removal),
        _ => None,
    }
}

/// One part of the comment: a heading and entries, each entry a unit that
/// is shown whole or not at all.
struct Section {
    heading: String,
    /// What the note calls an entry, plural ("creates"); `None` for parts
    /// whose entries are not counted.
    noun: Option<&'static str>,
    entries: Vec<String>,
}

fn build(plan: &Plan, limit: usize) -> String {
    let mut sections = Vec::new();
    sections.extend(violations(plan));
    sections.extend(expected_warnings(plan));
    let head = head(plan);
    sections.extend(by_risk(plan));
    sections.extend(rehearsal_details(plan));
    sections.extend(steps(plan));
    fit(&head, &sections, limit)
}

fn violations(plan: &Plan) -> Option<Section> {
    if plan.violations.is_empty() {
        return None;
    }
    let why = if plan.forced {
        "made with `--force`: overridden where `--force` can override them"
    } else {
        "apply refuses unless `--force`"
    };
    Some(Section {
        heading: format!(
            "**\u{26d4} Violations ({})** ({why}):\n\n",
            plan.violations.len()
        ),
        noun: Some("violations"),
        entries: plan
            .violations
            .iter()
            .map(|v| format!("- {}\n", inline(&words::listed_violation(plan, v))))
            .collect(),
    })
}

fn expected_warnings(plan: &Plan) -> Option<Section> {
    let entries: Vec<String> = plan
        .expected_warnings()
        .filter_map(|s| s.expected_warning.as_ref())
        .map(|w| format!("- {}\n", inline(&words::expected_warning(w))))
        .collect();
    (!entries.is_empty()).then(|| Section {
        heading: format!("**{WARNING} Expected warnings**\n\n"),
        noun: Some("expected warnings"),
        entries,
    })
}

/// The marker, the title, the summary table and line. Never cut.
fn head(plan: &Plan) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "{}", marker(&plan.stack));
    let _ = writeln!(head, "### poolform plan for stack `{}`\n", plan.stack);
    if let Some(r) = &plan.rehearsal {
        let _ = writeln!(head, "**Rehearsal:** {}\n", inline(&rehearsal::verdict(r)));
    }
    if let Some(targets) = words::targets(plan) {
        let _ = writeln!(head, "{}\n", inline(&targets));
    }
    let (add, change, destroy) = plan.counts();
    let u = plan.unmanaged;
    let (users, _) = words::drained(plan);
    let _ = writeln!(
        head,
        "| to add | to change | to destroy | steps | users drained | expected warnings | violations | unmanaged |"
    );
    let _ = writeln!(head, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        head,
        "| {add} | {change} | {destroy} | {} | {users} | {} | {} | {} |\n",
        plan.steps.len(),
        plan.expected_warnings().count(),
        plan.violations.len(),
        u.pools + u.app_configs + u.app_instances
    );
    let _ = writeln!(head, "{}\n", inline(&words::summary(plan)));
    head
}

/// What the rehearsal met at each step and the events it predicts, in a
/// collapsed section.
fn rehearsal_details(plan: &Plan) -> Option<Section> {
    let r = plan.rehearsal.as_ref()?;
    let mut block = String::from("<details><summary>Rehearsal, step by step</summary>\n\n");
    // Each line starts with its step's number: an ordered list.
    for line in rehearsal::lines(plan, r) {
        let _ = writeln!(block, "{}", inline(&line));
    }
    let _ = writeln!(
        block,
        "\nThe broker's log it predicts (the copy's calls each took {} ms, {} at once at most):\n",
        r.latency_ms, r.parallelism
    );
    let events: String = r
        .events
        .iter()
        .map(|e| match &e.code {
            Some(code) => format!("{} {} {code}\n", e.op, e.resource),
            None => format!("{} {}\n", e.op, e.resource),
        })
        .collect();
    let fence = fence_for(&events);
    let _ = write!(block, "{fence}\n{events}{fence}\n\n</details>\n\n");
    Some(Section {
        heading: String::new(),
        noun: None,
        entries: vec![block],
    })
}

/// The changes, and the steps that belong to no change, in one section per
/// risk; empty sections are left out.
fn by_risk(plan: &Plan) -> Vec<Section> {
    let mut by_cause: BTreeMap<&Address, Vec<&Step>> = BTreeMap::new();
    for s in &plan.steps {
        by_cause.entry(&s.cause).or_default().push(s);
    }
    let mut classified: Vec<(Risk, u32, String)> = Vec::new();
    for c in &plan.changes {
        let own = by_cause.remove(&c.address).unwrap_or_default();
        classified.push((change_risk(c, &own), users(&own), resource(c, &own)));
    }
    for s in by_cause.into_values().flatten() {
        let risk = step_risk(&s.op).unwrap_or(Risk::Update);
        let entry = format!("- {}\n\n", inline(&words::step(&s.op)));
        classified.push((risk, users(&[s]), entry));
    }
    Risk::ALL
        .iter()
        .filter_map(|&risk| {
            let mine = classified.iter().filter(|(r, _, _)| *r == risk);
            let users: u32 = mine.clone().map(|(_, u, _)| u).sum();
            let entries: Vec<String> = mine.map(|(_, _, e)| e.clone()).collect();
            (!entries.is_empty()).then(|| Section {
                heading: section_heading(risk, entries.len(), users),
                noun: Some(risk.noun()),
                entries,
            })
        })
        .collect()
}

/// Users the drains among `steps` move.
fn users(steps: &[&Step]) -> u32 {
    steps
        .iter()
        .map(|s| match &s.op {
            Op::DrainSessions {
                active_sessions, ..
            } => *active_sessions,
            _ => 0,
        })
        .sum()
}

fn section_heading(risk: Risk, count: usize, users: u32) -> String {
    let mut heading = format!("#### {} ({count}", risk.heading());
    if users > 0 {
        let _ = write!(heading, "; {}", words::count(users, "user", "users"));
    }
    heading.push_str(")\n\n");
    heading
}

fn change_risk(change: &Change, steps: &[&Step]) -> Risk {
    let by_action = match change.action {
        Action::Delete => Risk::Delete,
        Action::Update => Risk::Update,
        Action::Create => Risk::Create,
    };
    steps
        .iter()
        .filter_map(|s| step_risk(&s.op))
        .chain(std::iter::once(by_action))
        .min()
        .unwrap_or(by_action)
}

/// One resource change as a `<details>` block with its fields as a diff;
/// its summary names the drains it causes and the users they move.
fn resource(c: &Change, steps: &[&Step]) -> String {
    let mut block = String::new();
    let verb = match c.action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
    };
    let drains: Vec<String> = steps
        .iter()
        .filter_map(|s| drain_note(&s.op))
        .chain(steps.iter().filter_map(|s| words::reason(s)))
        .collect();
    let drains = if drains.is_empty() {
        String::new()
    } else {
        format!("; {}", drains.join("; "))
    };
    let _ = writeln!(
        block,
        "<details><summary><code>{} {} {}</code> ({verb}{drains})</summary>\n",
        sigil(c.action),
        c.address.kind,
        c.address.name
    );
    let mut lines = String::new();
    for field in c.fields.iter().filter(|f| !words::is_internal(&f.field)) {
        for (sign, text) in field_lines(field) {
            let sign = if sign == '~' { '!' } else { sign };
            let _ = writeln!(lines, "{sign} {text}");
        }
    }
    if lines.is_empty() {
        let _ = writeln!(block, "The whole {} goes.\n", c.address.kind);
    } else {
        let fence = fence_for(&lines);
        let _ = write!(block, "{fence}diff\n{lines}{fence}\n\n");
    }
    block.push_str("</details>\n\n");
    block
}

/// "drains rds-02: disconnects 4 users".
fn drain_note(op: &Op) -> Option<String> {
    let Op::DrainSessions {
        destination,
        policy,
        active_sessions,
        notice,
        ..
    } = op
    else {
        return None;
    };
    let users = words::count(*active_sessions, "user", "users");
    let what = match (policy, notice) {
        (DrainSessions::Disconnect, Some(notice)) => format!(
            "notifies {users}, disconnects the rest after {}",
            words::duration(notice.lead_time_seconds)
        ),
        (DrainSessions::Disconnect, None) => format!("disconnects {users}"),
        (DrainSessions::Wait, _) => format!("waits for {users} to leave"),
        (DrainSessions::Refuse, _) => format!("refuses while {users} remain"),
    };
    Some(format!("drains {destination}: {what}"))
}

/// The graph (small plans only) and the numbered steps.
fn steps(plan: &Plan) -> Vec<Section> {
    if plan.steps.is_empty() {
        return Vec::new();
    }
    let mut sections = Vec::new();
    if plan.steps.len() <= GRAPH_MAX_STEPS {
        sections.push(Section {
            heading: String::new(),
            noun: None,
            entries: vec![graph(plan)],
        });
    }
    sections.push(Section {
        heading: "#### Steps, in order\n\n".to_owned(),
        noun: Some("steps"),
        entries: plan.steps.iter().map(step).collect(),
    });
    sections
}

/// The step order as a Mermaid flowchart, in a collapsed section.
fn graph(plan: &Plan) -> String {
    let mut graph = String::from(
        "<details><summary>Step order as a graph</summary>\n\n```mermaid\nflowchart TD\n",
    );
    for s in &plan.steps {
        let label = mermaid_text(&format!("{}. {}", s.id + 1, words::step(&s.op)));
        let class = match step_risk(&s.op) {
            Some(Risk::Delete) => ":::delete",
            Some(Risk::Drain) => ":::drain",
            _ => "",
        };
        let _ = writeln!(graph, "  s{}[\"{label}\"]{class}", s.id + 1);
    }
    for s in &plan.steps {
        for d in &s.depends_on {
            let _ = writeln!(graph, "  s{} --> s{}", d + 1, s.id + 1);
        }
    }
    graph.push_str("  classDef delete stroke:#d1242f,stroke-width:2px\n");
    graph.push_str("  classDef drain stroke:#bf8700,stroke-width:2px\n");
    graph.push_str("```\n\n</details>\n\n");
    graph
}

/// Text for a quoted Mermaid label: characters Mermaid or a markdown pass
/// over it could read as syntax become Mermaid's `#code;` entities.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '#' | '"' | '_' | '*' | '<' | '>' | '&' | '`' => {
                let _ = write!(out, "#{};", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// One numbered step line with what it waits for and its expected warning.
fn step(s: &Step) -> String {
    let mut line = format!("{}. {}", s.id + 1, inline(&words::step(&s.op)));
    if let Some(reason) = words::reason(s) {
        let _ = write!(line, " ({})", inline(&reason));
    }
    if !s.depends_on.is_empty() {
        let ids: Vec<String> = s.depends_on.iter().map(|d| (d + 1).to_string()).collect();
        let _ = write!(line, " _(after {})_", ids.join(", "));
    }
    if let Some(w) = &s.expected_warning {
        let _ = write!(
            line,
            "<br>{WARNING} {}",
            inline(&words::expected_warning(w))
        );
    }
    line.push('\n');
    line
}

/// The head, then every section's entries in order as long as they fit
/// under `limit`; from the first entry that does not fit on, nothing more
/// is shown, and a note (under the summary and at the end) says what was
/// left out.
fn fit(head: &str, sections: &[Section], limit: usize) -> String {
    // Room for the note, written twice, whatever gets cut.
    let reserve = 1_500;
    let mut body = String::new();
    let mut full = false;
    let mut shown_per_section = Vec::with_capacity(sections.len());
    for section in sections {
        let mut shown = 0;
        for entry in &section.entries {
            let heading = if shown == 0 { section.heading.len() } else { 0 };
            if full || head.len() + body.len() + heading + entry.len() + reserve > limit {
                full = true;
                break;
            }
            if shown == 0 {
                body.push_str(&section.heading);
            }
            body.push_str(entry);
            shown += 1;
        }
        // A list needs a blank line to end before what follows.
        if shown > 0 && !body.ends_with("\n\n") {
            body.push('\n');
        }
        shown_per_section.push(shown);
    }
    if !full {
        return format!("{head}{body}");
    }
    let note = note(sections, &shown_per_section);
    format!("{head}{note}\n{body}{note}")
}

/// "> **Truncated** to stay under the comment size limit: 1 of 3 resources
/// and 2000 of 2000 steps are not shown. Left out, from the end of the risk
/// order: 1 of 1 updates, 2000 of 2000 steps. ..."
fn note(sections: &[Section], shown: &[usize]) -> String {
    let is_resource = |s: &Section| Risk::ALL.iter().any(|r| s.noun == Some(r.noun()));
    let (mut resources, mut resources_cut, mut steps, mut steps_cut) = (0, 0, 0, 0);
    let mut parts = Vec::new();
    for (section, &shown) in sections.iter().zip(shown) {
        let (total, cut) = (section.entries.len(), section.entries.len() - shown);
        if is_resource(section) {
            (resources, resources_cut) = (resources + total, resources_cut + cut);
        } else if section.noun == Some("steps") {
            (steps, steps_cut) = (total, cut);
        }
        if let (Some(noun), true) = (section.noun, cut > 0) {
            parts.push(format!("{cut} of {total} {noun}"));
        }
    }
    format!(
        "> **Truncated** to stay under the comment size limit: {resources_cut} of {resources} resources and \
         {steps_cut} of {steps} steps are not shown. Left out, from the end of the risk order: {}. Run \
         `poolform show PLANFILE` for the whole plan.\n",
        parts.join(", ")
    )
}

/// The emoji GitHub's `:warning:` shortcode stands for, as the character
/// itself: plain CommonMark renderers (cmark-gfm among them) print shortcodes
/// literally.
const WARNING: &str = "\u{26a0}\u{fe0f}";

/// Backslash-escapes the characters that would turn plain words into markup:
/// names may contain `_`, and `__init__` or `_old_` would otherwise render
/// as bold or italic in a step line.
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '~' | '&' | '|' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A code fence longer than any backtick run in `content`, so a label value
/// holding backticks cannot close the block early.
fn fence_for(content: &str) -> String {
    let longest = content.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat((longest + 1).max(4))
}
