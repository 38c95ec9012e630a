//! Snapshot tests of the plan renderings for the runbook states.

use crate::plan::fixtures::*;
use crate::plan::{Plan, Targets, compute};

use super::markdown::{COMMENT_LIMIT, markdown};
use super::plan::{Style, text};

fn out_online() -> Plan {
    compute(
        &without_member(steady(), "live", "rds-02"),
        &with_active_sessions(live(true), "rds-02", 3),
        &Targets::default(),
    )
    .unwrap()
}

fn out_offline() -> Plan {
    compute(
        &without_member(steady(), "live", "rds-02"),
        &live(false),
        &Targets::default(),
    )
    .unwrap()
}

fn back() -> Plan {
    let mut state = live(true);
    state.pools[0].members.retain(|m| m != "rds-02");
    compute(&steady(), &state, &Targets::default()).unwrap()
}

fn render_text(plan: &Plan, style: Style) -> String {
    let mut out = Vec::new();
    text(plan, style, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn render_markdown(plan: &Plan, limit: usize) -> String {
    let mut out = Vec::new();
    markdown(plan, limit, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn text_renderings_of_the_runbook_states() {
    insta::assert_snapshot!(
        "text_out_online",
        render_text(&out_online(), Style::default())
    );
    insta::assert_snapshot!(
        "text_out_offline",
        render_text(&out_offline(), Style::default())
    );
    insta::assert_snapshot!("text_back", render_text(&back(), Style::default()));
    let steady = compute(&steady(), &live(true), &Targets::default()).unwrap();
    insta::assert_snapshot!("text_steady", render_text(&steady, Style::default()));
}

#[test]
fn markdown_renderings_of_the_runbook_states() {
    insta::assert_snapshot!(
        "markdown_out_online",
        render_markdown(&out_online(), COMMENT_LIMIT)
    );
    insta::assert_snapshot!(
        "markdown_out_offline",
        render_markdown(&out_offline(), COMMENT_LIMIT)
    );
    insta::assert_snapshot!("markdown_back", render_markdown(&back(), COMMENT_LIMIT));
}

#[test]
fn json_rendering_of_a_runbook_state() {
    insta::assert_snapshot!(
        "json_out_offline",
        serde_json::to_string_pretty(&out_offline()).unwrap()
    );
}

#[test]
fn colour_only_when_asked() {
    assert!(!render_text(&out_online(), Style { color: false }).contains('\x1b'));
    assert!(render_text(&out_online(), Style { color: true }).contains("\x1b[33m~ pool live"));
}

#[test]
fn violations_come_first_in_both_renderings() {
    let mut desired = without_member(steady(), "live", "rds-02");
    desired.pools.get_mut("live").unwrap().drain = Default::default();
    let plan = compute(
        &desired,
        &with_active_sessions(live(true), "rds-02", 3),
        &Targets::default(),
    )
    .unwrap();
    let text = render_text(&plan, Style::default());
    assert!(text.starts_with(
        "Violations (apply refuses unless --force):\n  ! 'rds-02' has 3 active sessions"
    ));
    let md = render_markdown(&plan, COMMENT_LIMIT);
    assert!(md.find("Violations").unwrap() < md.find("<details>").unwrap());
}

#[test]
fn markdown_is_truncated_under_the_limit_with_a_note() {
    let mut desired = steady();
    let mut state = live(true);
    for i in 0..2000 {
        let name = format!("rds-{i:04}");
        let mut fresh = dest(&name, true, 0);
        fresh.lb_service_installed = false;
        state.destinations.push(fresh);
        desired
            .pools
            .get_mut("maintenance")
            .unwrap()
            .members
            .insert(name);
    }
    let plan = compute(&desired, &state, &Targets::default()).unwrap();
    let md = render_markdown(&plan, 5_000);
    assert!(md.len() <= 5_000, "{} characters", md.len());
    assert!(md.contains("**Truncated**"));
    assert!(md.contains("1 of 1 resources and 2000 of 2000 steps are not shown"));
    let full = render_markdown(&plan, usize::MAX);
    assert!(!full.contains("Truncated"));
}

#[test]
fn markdown_keeps_names_and_label_values_literal() {
    // A member named like markup, and a label value holding a fence's worth
    // of backticks: rendered, neither may turn into emphasis or close the
    // diff block early.
    let mut desired = steady();
    let mut state = live(true);
    let mut odd = dest("__init__", true, 0);
    odd.lb_service_installed = false;
    state.destinations.push(odd);
    let maintenance = desired.pools.get_mut("maintenance").unwrap();
    maintenance.members.insert("__init__".to_owned());
    maintenance
        .labels
        .insert("note".to_owned(), "see ````sh```` and *this*".to_owned());
    let plan = compute(&desired, &state, &Targets::default()).unwrap();
    let md = render_markdown(&plan, COMMENT_LIMIT);
    assert!(md.contains(r"add \_\_init\_\_ to pool maintenance"), "{md}");
    assert!(!md.contains("add __init__"), "{md}");
    assert!(
        md.contains("`````diff\n"),
        "a fence longer than the value's run:\n{md}"
    );
    assert!(!md.contains(":warning:") && !md.contains(":no_entry:"));
}

#[test]
fn a_truncated_markdown_plan_says_so_under_the_summary_too() {
    let mut desired = steady();
    let mut state = live(true);
    for i in 0..2000 {
        let name = format!("rds-{i:04}");
        let mut fresh = dest(&name, true, 0);
        fresh.lb_service_installed = false;
        state.destinations.push(fresh);
        desired
            .pools
            .get_mut("maintenance")
            .unwrap()
            .members
            .insert(name);
    }
    let plan = compute(&desired, &state, &Targets::default()).unwrap();
    let md = render_markdown(&plan, 5_000);
    assert_eq!(md.matches("> **Truncated**").count(), 2, "{md}");
    let summary = md.find("Plan: ").unwrap();
    assert!(md[summary..].find("> **Truncated**").unwrap() < 100, "{md}");
}

/// The issue's case: 1,000 pools to create, one pool to delete and a drain
/// of 4 users, in one plan.
fn risky_and_large() -> Plan {
    let mut desired = without_member(steady(), "live", "rds-02");
    for i in 0..1000 {
        let mut fresh = desired.pools["maintenance"].clone();
        fresh.members.clear();
        fresh.password = None;
        fresh.username = None;
        desired.pools.insert(format!("p-{i:04}"), fresh);
    }
    let mut state = with_active_sessions(live(true), "rds-02", 4);
    state.pools.push(pool("old", live_lb(), &[], None));
    compute(&desired, &state, &Targets::default()).unwrap()
}

#[test]
fn a_truncated_comment_keeps_the_riskiest_part_and_says_what_it_left_out() {
    let plan = risky_and_large();
    let md = render_markdown(&plan, COMMENT_LIMIT);
    assert!(md.len() < 65_536, "{} bytes", md.len());
    let at = |needle: &str| {
        md.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from\n{}", &md[..3000]))
    };
    assert!(at("#### Deletes (1)") < at("#### Drains and disconnects (1; 4 users)"));
    assert!(at("#### Drains and disconnects") < at("#### Creates (1000)"));
    assert!(at("<code>- pool old</code>") < at("<code>+ pool p-0000</code>"));
    assert!(md.contains("(update; drains rds-02: disconnects 4 users)"));
    assert!(md.contains("drains 4 users off 1 destination"));
    assert!(
        !md.contains("#### Steps, in order"),
        "the least risky part goes first"
    );
    assert!(!md.contains("```mermaid"), "no graph for 1,005 steps");
    let note = &md[at("> **Truncated**")..];
    let note = &note[..note.find('\n').unwrap()];
    let shown_creates = md.matches("<code>+ pool p-").count();
    assert!(shown_creates > 0 && shown_creates < 1000);
    assert!(
        note.contains(&format!(
            "Left out, from the end of the risk order: {} of 1000 creates, 1005 of 1005 steps",
            1000 - shown_creates
        )),
        "{note}"
    );
}

#[test]
fn a_comment_names_its_stack_and_draws_small_plans() {
    let md = render_markdown(&out_online(), COMMENT_LIMIT);
    assert!(md.starts_with("<!-- poolform:stack=corp-rds -->\n"), "{md}");
    let graph = &md[md
        .find("<details><summary>Step order as a graph</summary>")
        .unwrap()..];
    assert!(graph.contains("```mermaid\nflowchart TD\n"), "{graph}");
    assert!(graph.contains("  s1 --> s2\n  s2 --> s3\n"), "{graph}");
    assert!(graph.find("</details>").unwrap() < graph.find("#### Steps, in order").unwrap());
}

#[test]
fn create_diffs_leave_out_poolform_own_labels() {
    let mut desired = steady();
    desired
        .pools
        .insert("extra".to_owned(), desired.pools["live"].clone());
    desired.pools.get_mut("extra").unwrap().members.clear();
    let plan = compute(&desired, &live(true), &Targets::default()).unwrap();
    let text = render_text(&plan, Style::default());
    assert!(text.contains("+ pool extra"), "{text}");
    assert!(!text.contains("poolform.stack"), "{text}");
    assert!(!render_markdown(&plan, COMMENT_LIMIT).contains("poolform.stack"));
}

#[test]
fn no_changes_with_violations_says_both() {
    let mut state = live(true);
    for pool in &mut state.pools {
        pool.labels = crate::contract::labels::with_stack(&pool.labels, "other");
    }
    let targets = Targets(vec![crate::address::Address::new(
        crate::address::Kind::Pool,
        "live",
    )]);
    let plan = compute(&steady(), &state, &targets).unwrap();
    assert!(
        !plan.has_changes() && !plan.violations.is_empty(),
        "{plan:?}"
    );
    assert_eq!(
        super::words::summary(&plan),
        "No changes to make, but 1 violation."
    );
    assert!(!render_text(&plan, Style::default()).contains("No changes. The broker matches"));
}

/// `out_online` as a rehearsal found it: the removal refused by the broker.
fn rehearsed_out_online() -> Plan {
    use crate::plan::{Rehearsal, Rehearsed, RehearsedEvent};
    let plan = out_online();
    let outcomes = [
        Rehearsed::Done,
        Rehearsed::Done,
        Rehearsed::Done,
        Rehearsed::Error {
            code: Some("in_use".to_owned()),
            message:
                "broker answered 409 in_use: app instance kiosk targets rds-02 through pool live"
                    .to_owned(),
        },
    ];
    let event = |op: &str, resource: &str| RehearsedEvent {
        op: op.to_owned(),
        resource: resource.to_owned(),
        code: None,
    };
    plan.rehearsed(Rehearsal {
        events: vec![
            event("destination.drain.start", "destination/rds-02/drain"),
            event("sessions.disconnect", "destination/rds-02/sessions"),
            event("sticky.clear", "pool/live/sticky-sessions/rds-02"),
        ],
        estimated_ms: 80,
        ..super::rehearsal::tests::rehearsal(outcomes.into(), Some(false))
    })
}

#[test]
fn a_rehearsal_is_a_verdict_at_the_top_and_its_details_collapsed() {
    let plan = rehearsed_out_online();
    insta::assert_snapshot!("markdown_rehearsed", render_markdown(&plan, COMMENT_LIMIT));
    insta::assert_snapshot!("text_rehearsed", render_text(&plan, Style::default()));
    let md = render_markdown(&plan, COMMENT_LIMIT);
    let verdict = md.find("**Rehearsal:**").unwrap();
    assert!(verdict < md.find("| to add").unwrap(), "the verdict leads");
    assert!(md.contains("<details><summary>Rehearsal, step by step</summary>"));
}

#[test]
fn an_unsealed_plan_is_written_as_the_sealed_one_is() {
    let sealed = rehearsed_out_online().force();
    assert!(!sealed.checksum.is_empty() && sealed.forced && sealed.rehearsal.is_some());
    assert!(!sealed.steps.is_empty() && !sealed.changes.is_empty());
    let expected = String::from_utf8(serde_json::to_vec_pretty(&sealed).unwrap()).unwrap();
    let mut unsealed = sealed.clone();
    unsealed.checksum.clear();

    let mut out = Vec::new();
    let checksum =
        super::json::write_plan(&mut out, &unsealed, || crate::plan::checksum(&unsealed)).unwrap();
    assert_eq!(checksum, sealed.checksum);
    assert_eq!(String::from_utf8(out).unwrap(), expected);

    let mut again = Vec::new();
    let given = super::json::write_plan(&mut again, &sealed, || {
        unreachable!("a sealed plan is not sealed again")
    })
    .unwrap();
    assert_eq!(
        (given, String::from_utf8(again).unwrap()),
        (sealed.checksum.clone(), expected)
    );
}
