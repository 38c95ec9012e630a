//! Maintenance the way admins run it, end to end over HTTP against
//! `poolform broker serve`: one line takes a server out of rotation (out of
//! its load-balanced pool, still in the admins' pool) and its revert puts
//! it back; too many servers in maintenance at once are refused by
//! `min_members`, located; a drain warns users and gives them a lead time
//! before it disconnects the rest; and `export` recovers the config. Every
//! apply is checked against its saved plan (`support::fidelity`).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Run, SEED_ENV, Server, copy_example, edit, run, seed_path, without_locks};

fn seeded() -> Server {
    Server::start(&["--seed", seed_path().to_str().unwrap()])
}

fn plan(server: &Server, config: &Path, extra: &[&str]) -> Run {
    let mut command = server.poolform(&["plan"]);
    command
        .arg(config)
        .args(extra)
        .envs(SEED_ENV.iter().copied());
    run(&mut command)
}

const RDS02_IN_MAINTENANCE: &str =
    "destinations:\n  rds-02:\n    maintenance:\n      enabled: true\n      notice_en: Patching\n";

/// Switches rds-02's maintenance on in `config` and checks the plan `says`.
fn rds02_into_maintenance(server: &Server, config: &Path, says: &str) {
    std::fs::write(config.join("destinations.yaml"), RDS02_IN_MAINTENANCE).unwrap();
    let planned = plan(server, config, &[]).expect_code(0, "plan");
    assert!(planned.stdout.contains(says), "{}", planned.stdout);
}

#[tokio::test]
async fn one_line_takes_a_server_out_of_rotation_and_its_revert_puts_it_back() {
    let server = seeded();
    let config = copy_example("maintenance/steady");
    rds02_into_maintenance(
        &server,
        config.path(),
        "remove rds-02 from pool live (rds-02 out of rotation: maintenance)",
    );
    let start = server.last_seq().await;
    server
        .apply_checked("maintenance on", config.path(), &[], SEED_ENV)
        .await
        .0
        .expect_code(0, "maintenance on");
    assert_eq!(
        without_locks(&server.events(start).await),
        [
            "destination.maintenance.set destination/rds-02/maintenance",
            "destination.drain.start destination/rds-02/drain",
            "sessions.disconnect destination/rds-02/sessions",
            "sticky.clear pool/live/sticky-sessions/rds-02",
            "member.remove pool/live/member/rds-02",
        ]
    );
    assert_eq!(server.members("live").await, ["rds-01", "rds-03"]);
    assert_eq!(
        server.members("maintenance").await,
        ["rds-01", "rds-02", "rds-03"],
        "the admins' pool keeps it"
    );
    let rds02 = server.destination("rds-02").await.maintenance;
    assert_eq!(rds02.owner.as_deref(), Some("corp-rds"));
    assert_eq!(rds02.out_of_rotation, ["live"]);

    // Export recovers the line: the member stays listed, maintenance says why.
    let exported = tempfile::tempdir().unwrap();
    let out = exported.path().to_str().unwrap();
    run(&mut server.poolform(&["export", "--stack", "corp-rds", "-o", out]))
        .expect_code(0, "export");
    let pools = std::fs::read_to_string(exported.path().join("pools.yaml")).unwrap();
    assert!(pools.contains("      - rds-02\n"), "{pools}");
    let env = [("POOLFORM_MAINTENANCE_PASSWORD", "maintenance-demo")];
    let mut replan = server.poolform(&["plan", "--detailed-exitcode"]);
    run(replan.arg(exported.path()).envs(env)).expect_code(0, "the export plans no changes");

    std::fs::remove_file(config.path().join("destinations.yaml")).unwrap();
    let start = server.last_seq().await;
    server
        .apply_checked("maintenance reverted", config.path(), &[], SEED_ENV)
        .await
        .0
        .expect_code(0, "reverted");
    assert_eq!(
        without_locks(&server.events(start).await),
        [
            "destination.maintenance.clear destination/rds-02/maintenance",
            "member.add pool/live/member/rds-02",
        ],
        "maintenance goes off before the server takes users again"
    );
    assert_eq!(server.members("live").await, ["rds-01", "rds-02", "rds-03"]);
}

#[tokio::test]
async fn too_many_servers_in_maintenance_are_refused_by_min_members_located() {
    let server = seeded();
    let config = copy_example("maintenance/steady");
    std::fs::write(
        config.path().join("destinations.yaml"),
        "destinations:\n  rds-02: {maintenance: {enabled: true}}\n  rds-03: {maintenance: {enabled: true}}\n",
    )
    .unwrap();
    let refused = plan(&server, config.path(), &[]).expect_code(1, "plan");
    for place in [
        "plan::min_members",
        "would leave 1 available member in pool 'live' (3 members; unavailable: rds-02 in maintenance,",
        "min_members is 2",
        "pools.yaml:14:18",
        "rds-02 in maintenance",
        "rds-03 in maintenance",
        "destinations.yaml:2:",
        "destinations.yaml:3:",
    ] {
        assert!(
            refused.stderr.contains(place),
            "{place}:\n{}",
            refused.stderr
        );
    }
    let start = server.last_seq().await;
    let (applied, fidelity) = server
        .apply_checked("too many in maintenance", config.path(), &[], SEED_ENV)
        .await;
    applied.expect_code(1, "apply");
    assert_eq!(fidelity.writes_observed, 0);
    assert_eq!(
        without_locks(&server.events(start).await),
        Vec::<String>::new()
    );
}

/// Ends one session of `destination` as soon as the broker logged the
/// drain's message: a user who logs off during the lead time.
async fn one_user_leaves_after_the_notice(url: String, destination: &str) {
    let client = reqwest::Client::new();
    let get = |path: String| {
        client
            .get(format!("{url}{path}"))
            .bearer_auth(crate::support::TOKEN)
            .send()
    };
    loop {
        let page: Value = get("/v1/events?limit=1000".to_owned())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let told = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["op"] == "sessions.message");
        if told {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sessions: Value = get(format!("/v1/destinations/{destination}/sessions"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = sessions["items"][0]["id"].as_str().unwrap().to_owned();
    let ended = client
        .post(format!("{url}/v1/_sim/sessions/{id}/end"))
        .bearer_auth(crate::support::TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_drain_warns_waits_and_disconnects_whoever_is_left() {
    let server = seeded();
    let config = copy_example("maintenance/steady");
    edit(
        &config.path().join("pools.yaml"),
        "    drain: { sessions: disconnect, timeout: 15m }\n",
        "    drain:\n      sessions: disconnect\n      notice:\n        de: \"Wartung: bitte abmelden\"\n        \
         en: \"Maintenance: please log off\"\n      lead_time: 6s\n      timeout: 15m\n",
    );
    rds02_into_maintenance(
        &server,
        config.path(),
        "notify 2 users on rds-02, wait up to 6s, then disconnect the rest",
    );
    let start = server.last_seq().await;
    let leaving = tokio::spawn(one_user_leaves_after_the_notice(
        server.url.clone(),
        "rds-02",
    ));
    let applied = server
        .apply_checked("notice drain", config.path(), &[], SEED_ENV)
        .await
        .0
        .expect_code(0, "apply");
    leaving.await.unwrap();
    let log = without_locks(&server.events(start).await);
    let from_message: Vec<&str> = log
        .iter()
        .skip_while(|e| !e.starts_with("sessions.message"))
        .map(|e| e.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        from_message,
        [
            "sessions.message",
            "sim.session.end",
            "sessions.disconnect",
            "sticky.clear",
            "member.remove",
        ],
        "message, wait (one user leaves), disconnect, clear sticky, remove: {log:?}"
    );
    assert!(
        applied.stderr.contains("notified 2 users"),
        "{}",
        applied.stderr
    );
    assert!(
        applied
            .stderr
            .contains("1 user still logged on, disconnecting the rest in"),
        "{}",
        applied.stderr
    );
    assert!(
        applied.stdout.contains(
            "rds-02: of 2 users notified, 1 logged off by themselves and 1 was disconnected"
        ),
        "{}",
        applied.stdout
    );
}
