//! Text rendering of plans for terminals and CI logs: Terraform-like `+ ~ -`
//! lines with only the changed fields, then the ordered steps with their
//! expected warnings, the violations, and the summary line.

use std::collections::HashSet;
use std::io::{self, Write};

use serde_json::Value;

use super::{rehearsal, words};
use crate::plan::{Action, Change, Field, FieldDiff, FieldValue, Plan, Rehearsal};

/// Whether to emit ANSI colour; decided by the caller (TTY, `--color`, `NO_COLOR`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }
    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }
    pub fn red(self, text: &str) -> String {
        self.paint("31", text)
    }
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }
}

pub(super) fn sigil(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Update => "~",
        Action::Delete => "-",
    }
}

/// A scalar as the config would write it; lists inline.
pub(super) fn value(v: &Value) -> String {
    match v {
        Value::Null => "(none)".to_owned(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(value_bare).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

fn value_bare(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => value(other),
    }
}

/// The names of a members value; a saved plan's list of anything else
/// shows each item as it would be shown alone.
fn strings(v: Option<&FieldValue>) -> Vec<String> {
    match v {
        Some(FieldValue::Names(names)) => names.iter().map(str::to_owned).collect(),
        Some(FieldValue::Json(Value::Array(items))) => items.iter().map(value_bare).collect(),
        _ => Vec::new(),
    }
}

/// Lines describing one field change, without indentation or colour
/// decisions beyond the leading sigil: (sigil, text).
pub(super) fn field_lines(field: &FieldDiff) -> Vec<(char, String)> {
    if field.sensitive {
        return vec![('~', format!("{}: (sensitive)", field.field))];
    }
    if field.field == Field::Members {
        let before = strings(field.before.as_ref());
        let after = strings(field.after.as_ref());
        // Sets, not list searches: a pool of 10k members would take 10^8
        // comparisons to show one change.
        let (was, is): (HashSet<&String>, HashSet<&String>) =
            (before.iter().collect(), after.iter().collect());
        let mut lines: Vec<(char, String)> = Vec::new();
        for m in &before {
            if !is.contains(m) {
                lines.push(('-', format!("member {m}")));
            }
        }
        for m in &after {
            if !was.contains(m) {
                lines.push(('+', format!("member {m}")));
            }
        }
        return lines;
    }
    let multiline = |v: &Option<FieldValue>| matches!(v, Some(FieldValue::Json(Value::String(s))) if s.contains('\n'));
    if multiline(&field.before) || multiline(&field.after) {
        let text = |v: &Option<FieldValue>| match v {
            Some(FieldValue::Json(Value::String(s))) => s.clone(),
            _ => String::new(),
        };
        let (before, after) = (text(&field.before), text(&field.after));
        let diff = similar::TextDiff::from_lines(&before, &after);
        let mut lines = vec![('~', format!("{}:", field.field))];
        for change in diff.iter_all_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => ' ',
            };
            lines.push((sign, change.value().trim_end_matches('\n').to_owned()));
        }
        return lines;
    }
    let shown = |v: &FieldValue| value(&v.to_json());
    match (&field.before, &field.after) {
        (None, Some(after)) => vec![('+', format!("{}: {}", field.field, shown(after)))],
        (Some(before), None) => vec![('-', format!("{}: {}", field.field, shown(before)))],
        (Some(before), Some(after)) => {
            vec![(
                '~',
                format!("{}: {} -> {}", field.field, shown(before), shown(after)),
            )]
        }
        (None, None) => vec![('~', field.field.to_string())],
    }
}

fn paint_sigil(style: Style, sigil: char, text: &str) -> String {
    match sigil {
        '+' => style.green(text),
        '-' => style.red(text),
        '~' => style.yellow(text),
        _ => text.to_owned(),
    }
}

fn change(out: &mut dyn Write, style: Style, change: &Change) -> io::Result<()> {
    let head = format!(
        "{} {} {}",
        sigil(change.action),
        change.address.kind,
        change.address.name
    );
    let painted = match change.action {
        Action::Create => style.green(&head),
        Action::Update => style.yellow(&head),
        Action::Delete => style.red(&head),
    };
    writeln!(out, "  {painted}")?;
    for field in change
        .fields
        .iter()
        .filter(|f| !words::is_internal(&f.field))
    {
        for (sign, text) in field_lines(field) {
            let line = format!("{sign} {text}");
            writeln!(out, "      {}", paint_sigil(style, sign, &line))?;
        }
    }
    Ok(())
}

/// The rehearsal's verdict, coloured by the worst it found, and each step's
/// result.
fn rehearsal_section(
    out: &mut dyn Write,
    style: Style,
    plan: &Plan,
    r: &Rehearsal,
) -> io::Result<()> {
    let t = r.tally();
    let verdict = rehearsal::verdict(r);
    let painted = if t.errors > 0 {
        style.red(&verdict)
    } else if t.unpredicted_warnings + t.blocked > 0 || r.converges == Some(false) {
        style.yellow(&verdict)
    } else {
        style.green(&verdict)
    };
    writeln!(out, "{} {painted}", style.bold("Rehearsal:"))?;
    for line in rehearsal::lines(plan, r) {
        writeln!(out, "  {line}")?;
    }
    writeln!(out)
}

/// Writes the whole plan.
pub fn text(plan: &Plan, style: Style, out: &mut dyn Write) -> io::Result<()> {
    if !plan.violations.is_empty() {
        writeln!(
            out,
            "{}",
            style.red(&style.bold(words::violations_heading(plan)))
        )?;
        for v in &plan.violations {
            writeln!(
                out,
                "  {} {}",
                style.red("!"),
                words::listed_violation(plan, v)
            )?;
        }
        writeln!(out)?;
    }
    if let Some(targets) = words::targets(plan) {
        writeln!(out, "{}", style.yellow(&targets))?;
        writeln!(out)?;
    }
    if plan.has_changes() {
        writeln!(
            out,
            "poolform will make these changes to stack {}:",
            style.bold(&plan.stack)
        )?;
        writeln!(out)?;
        for c in &plan.changes {
            change(out, style, c)?;
        }
        writeln!(out)?;
        writeln!(out, "Steps, in order:")?;
        let width = plan.steps.len().to_string().len();
        for step in &plan.steps {
            let after = if step.depends_on.is_empty() {
                String::new()
            } else {
                let ids: Vec<String> = step
                    .depends_on
                    .iter()
                    .map(|d| (d + 1).to_string())
                    .collect();
                style.dim(&format!("  (after {})", ids.join(", ")))
            };
            let why = words::reason(step)
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            writeln!(
                out,
                "  {:>width$}. {}{why}{after}",
                step.id + 1,
                words::step(&step.op)
            )?;
            if let Some(w) = &step.expected_warning {
                writeln!(
                    out,
                    "  {:>width$}  {}",
                    "",
                    style.yellow(&words::expected_warning(w))
                )?;
            }
        }
        writeln!(out)?;
    }
    if let Some(r) = &plan.rehearsal {
        rehearsal_section(out, style, plan, r)?;
    }
    let u = plan.unmanaged;
    if u.pools + u.app_configs + u.app_instances > 0 {
        writeln!(
            out,
            "{}",
            style.dim(&format!(
                "Unmanaged (not labelled with stack {}, left alone): {} pools, {} app configs, {} app instances",
                plan.stack, u.pools, u.app_configs, u.app_instances
            ))
        )?;
    }
    writeln!(out, "{}", style.bold(&words::summary(plan)))
}
