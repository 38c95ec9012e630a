//! Markdown rendering of plans for pull-request comments: violations and
//! expected warnings up front, a summary table, each resource in a
//! `<details>` block, the ordered steps, all kept under the comment limit.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::plan::{field_lines, sigil};
use super::words;
use crate::plan::{Action, Change, Plan, Step};

/// GitHub rejects comments over 65,536 characters; stay well below.
pub const COMMENT_LIMIT: usize = 60_000;

/// Writes the plan as markdown, truncated to `limit` characters (with a note
/// saying what was cut).
pub fn markdown(plan: &Plan, limit: usize, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(build(plan, limit).as_bytes())
}

fn build(plan: &Plan, limit: usize) -> String {
    let resources: Vec<String> = plan.changes.iter().map(resource).collect();
    let steps: Vec<String> = plan.steps.iter().map(step).collect();
    fit(head(plan), &resources, &steps, limit)
}

/// Everything above the resources: violations, expected warnings, the
/// summary table and line. Never cut.
fn head(plan: &Plan) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "### poolform plan for stack `{}`\n", plan.stack);
    if let Some(targets) = words::targets(plan) {
        let _ = writeln!(head, "{}\n", inline(&targets));
    }
    if !plan.violations.is_empty() {
        let why = if plan.forced {
            "made with `--force`: overridden where `--force` can override them"
        } else {
            "apply refuses unless `--force`"
        };
        let _ = writeln!(head, "**\u{26d4} Violations** ({why}):\n");
        for v in &plan.violations {
            let _ = writeln!(head, "- {}", inline(&words::listed_violation(plan, v)));
        }
        head.push('\n');
    }
    let warnings: Vec<String> = plan
        .expected_warnings()
        .filter_map(|s| s.expected_warning.as_ref())
        .map(words::expected_warning)
        .collect();
    if !warnings.is_empty() {
        let _ = writeln!(head, "**{WARNING} Expected warnings**\n");
        for w in &warnings {
            let _ = writeln!(head, "- {}", inline(w));
        }
        head.push('\n');
    }
    let (add, change, destroy) = plan.counts();
    let u = plan.unmanaged;
    let _ = writeln!(
        head,
        "| to add | to change | to destroy | steps | expected warnings | violations | unmanaged |"
    );
    let _ = writeln!(head, "|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        head,
        "| {add} | {change} | {destroy} | {} | {} | {} | {} |\n",
        plan.steps.len(),
        warnings.len(),
        plan.violations.len(),
        u.pools + u.app_configs + u.app_instances
    );
    let _ = writeln!(head, "{}\n", inline(&words::summary(plan)));
    head
}

/// One resource change as a `<details>` block with its fields as a diff.
fn resource(c: &Change) -> String {
    let mut block = String::new();
    let verb = match c.action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
    };
    let _ = writeln!(
        block,
        "<details><summary><code>{} {} {}</code> ({verb})</summary>\n",
        sigil(c.action),
        c.address.kind,
        c.address.name
    );
    if c.fields.is_empty() {
        let _ = writeln!(block, "The whole {} goes.\n", c.address.kind);
    } else {
        let mut lines = String::new();
        for field in &c.fields {
            for (sign, text) in field_lines(field) {
                let sign = if sign == '~' { '!' } else { sign };
                let _ = writeln!(lines, "{sign} {text}");
            }
        }
        let fence = fence_for(&lines);
        let _ = write!(block, "{fence}diff\n{lines}{fence}\n\n");
    }
    block.push_str("</details>\n\n");
    block
}

/// One numbered step line with what it waits for and its expected warning.
fn step(s: &Step) -> String {
    let mut line = format!("{}. {}", s.id + 1, inline(&words::step(&s.op)));
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

/// The head, then as many resources and steps as fit under `limit`, with a
/// note wherever something was cut. Steps are shown only after every
/// resource.
fn fit(head: String, resources: &[String], steps: &[String], limit: usize) -> String {
    // Room for the note (written twice) and the steps heading whatever gets cut.
    let reserve = 1_000;
    let head_len = head.len();
    let mut body = head;
    let mut shown_resources = 0;
    for r in resources {
        if body.len() + r.len() + reserve > limit {
            break;
        }
        body.push_str(r);
        shown_resources += 1;
    }
    let mut shown_steps = 0;
    if !steps.is_empty() && shown_resources == resources.len() {
        body.push_str("#### Steps, in order\n\n");
        for s in steps {
            if body.len() + s.len() + reserve > limit {
                break;
            }
            body.push_str(s);
            shown_steps += 1;
        }
        body.push('\n');
    }
    let (cut_resources, cut_steps) = (resources.len() - shown_resources, steps.len() - shown_steps);
    if cut_resources + cut_steps > 0 {
        let note = format!(
            "> **Truncated** to stay under the comment size limit: {cut_resources} of {} resources and {cut_steps} of {} \
             steps are not shown. Run `poolform show PLANFILE` for the whole plan.\n",
            resources.len(),
            steps.len()
        );
        // Also right under the summary: a reviewer should learn that the
        // comment is partial before reading 60,000 characters of it.
        body.insert_str(head_len, &format!("{note}\n"));
        body.push_str(&note);
    }
    body
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
