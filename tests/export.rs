//! `poolform export` and `poolform import` against the reference broker
//! process over HTTP: an export validates and plans no changes, free text
//! survives the round trip, and import adopts unowned resources (and only
//! those, unless forced).

use std::path::Path;

use poolform::contract::labels::STACK_LABEL;
use poolform::contract::wire::{
    AppConfigBody, AppType, CredentialsBody, Labels, LoadBalancing, Maintenance, PoolBody, Protocol,
};
use poolform::contract::{Broker, Expect};

use crate::support::{Run, Server, run, seed_path};

/// The seed's fingerprint label was made from this password.
const SEED_PASSWORD: &str = "maintenance-demo";
const STACK: &str = "corp-rds";

fn seeded() -> Server {
    let seed = seed_path();
    Server::start(&["--seed", seed.to_str().unwrap()])
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn export_to(server: &Server, dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["export", "--stack", STACK, "-o", path(dir)];
    args.extend_from_slice(extra);
    run(&mut server.poolform(&args))
}

fn validate(dir: &Path) -> Run {
    run(std::process::Command::new(crate::support::bin())
        .args(["validate", path(dir)])
        .env("NO_COLOR", "1"))
}

/// `plan --detailed-exitcode` with the seed pool's password where the
/// export says to put it.
fn plan(server: &Server, dir: &Path, env: &[(&str, &str)]) -> Run {
    let mut command = server.poolform(&["plan", path(dir), "--detailed-exitcode"]);
    command.env("POOLFORM_MAINTENANCE_PASSWORD", SEED_PASSWORD);
    for (key, value) in env {
        command.env(key, value);
    }
    run(&mut command)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn the_maintenance_stack_exports_to_a_config_that_validates_and_plans_no_changes() {
    let server = seeded();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("config");
    let export = export_to(&server, &out, &[]).expect_code(0, "export");
    assert_eq!(export.stdout, "");
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    // No destination of the seed is in maintenance: no destinations file.
    assert_eq!(written, ["apps.yaml", "pools.yaml"]);
    // Outside the repository there is no schema to point at.
    let pools = std::fs::read_to_string(out.join("pools.yaml")).unwrap();
    assert!(!pools.contains("$schema"), "{pools}");

    let valid = validate(&out).expect_code(0, "validate");
    assert_eq!(
        valid.stdout,
        "2 pools, 1 app config, 1 app instance: valid\n"
    );
    let plan = plan(&server, &out, &[]).expect_code(0, "plan on the export");
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
}

#[test]
fn the_maintenance_stack_export_reads_like_a_hand_written_config() {
    let server = seeded();
    let export = run(&mut server.poolform(&["export", "--stack", STACK])).expect_code(0, "export");
    assert_eq!(export.stderr, "");
    insta::assert_snapshot!(export.stdout);
}

#[test]
fn inside_the_repository_every_file_points_at_the_schema() {
    let server = seeded();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out = dir.path().join("config");
    export_to(&server, &out, &[]).expect_code(0, "export");
    for file in ["pools.yaml", "apps.yaml"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        let first = text.lines().next().unwrap();
        let schema = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{file} starts with {first:?}"));
        assert!(schema.starts_with("../"), "{schema} is relative");
        assert!(out.join(schema).is_file(), "{schema} from {file} exists");
    }
}

#[test]
fn existing_files_are_overwritten_only_with_force() {
    let server = seeded();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pools.yaml"), "# mine\n").unwrap();
    let refused = export_to(&server, dir.path(), &[]).expect_code(1, "export over a file");
    assert!(refused.stderr.contains("pools.yaml"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pools.yaml")).unwrap(),
        "# mine\n"
    );
    export_to(&server, dir.path(), &["--force"]).expect_code(0, "export --force");
    validate(dir.path()).expect_code(0, "validate");
}

#[tokio::test]
async fn free_text_with_yaml_special_characters_round_trips() {
    let server = seeded();
    let broker = server.client();
    let username = r#"CORP\svc "ops": #1 'x' - [y] {z} & *a !b % @c `d`"#;
    let note = "yes";
    let odd = PoolBody {
        load_balancing: LoadBalancing {
            enabled: false,
            sticky_sessions_minutes: 0,
            grace_period_seconds: 0,
        },
        default_credentials: CredentialsBody {
            username: Some(username.to_owned()),
            password: None,
        },
        labels: labels(&[
            (STACK_LABEL, STACK),
            ("note", note),
            ("path", r"C:\Temp\a b: c"),
            ("count", "0012"),
        ]),
    };
    broker.put_pool("odd", &odd, Expect::Any).await.unwrap();
    let maintenance = Maintenance {
        enabled: true,
        notice_de: Some("Wartung: 18:00 – 'bitte' abmelden\n# zweite Zeile\tmit Tab".to_owned()),
        notice_en: Some("no".to_owned()),
        allowed_groups: vec![r"CORP\admins".to_owned(), "on".to_owned()],
        owner: None,
        out_of_rotation: Vec::new(),
    };
    broker
        .put_maintenance("rds-03", &maintenance)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    export_to(&server, dir.path(), &[]).expect_code(0, "export");
    assert!(dir.path().join("destinations.yaml").is_file());
    validate(dir.path()).expect_code(0, "validate");
    plan(&server, dir.path(), &[]).expect_code(0, "plan on the export");

    // The loader reads back exactly the live strings.
    let config = poolform::config::load(dir.path()).unwrap_or_else(|d| panic!("{:#?}", d.items));
    let desired = poolform::config::lower(config, &|_| Ok("pw".to_owned().into()))
        .unwrap_or_else(|d| panic!("{:#?}", d.items))
        .desired;
    let pool = &desired.pools["odd"];
    assert_eq!(pool.username.as_deref(), Some(username));
    let mut user_labels = odd.labels.clone();
    user_labels.remove(STACK_LABEL);
    assert_eq!(pool.labels, user_labels);
    assert_eq!(desired.destinations["rds-03"].maintenance, maintenance);
}

#[tokio::test]
async fn import_adopts_unowned_resources_so_the_plan_stops_reporting_them() {
    let server = seeded();
    let broker = server.client();
    let legacy = PoolBody {
        load_balancing: LoadBalancing::default(),
        default_credentials: CredentialsBody {
            username: Some("svc-legacy".to_owned()),
            password: Some("legacy-secret".to_owned()),
        },
        labels: labels(&[("team", "ops")]),
    };
    broker
        .put_pool("legacy", &legacy, Expect::Any)
        .await
        .unwrap();
    let desktop = AppConfigBody {
        pool: "legacy".to_owned(),
        app_type: AppType::Desktop,
        protocol: Protocol::Rdp,
        admin_session: false,
        keep_credentials_on_destination_change: false,
        allow_destination_change: true,
        labels: Labels::new(),
    };
    broker
        .put_app_config("legacy-desktop", &desktop, Expect::Any)
        .await
        .unwrap();

    // The stack alone cannot be exported: nothing of it uses the legacy
    // pool, so it is left out, and --all marks what to import.
    let dir = tempfile::tempdir().unwrap();
    let export = export_to(&server, dir.path(), &["--all"]).expect_code(0, "export --all");
    assert!(
        export
            .stderr
            .contains("poolform import --stack corp-rds pool/legacy app_config/legacy-desktop"),
        "{}",
        export.stderr
    );
    validate(dir.path()).expect_code(0, "validate");
    let secret = [("POOLFORM_LEGACY_PASSWORD", "legacy-secret")];
    let before = plan(&server, dir.path(), &secret).expect_code(1, "plan before import");
    assert_eq!(
        before.stderr.matches("plan::not_owned").count(),
        2,
        "{}",
        before.stderr
    );

    // Without the password, the pool is refused (a pool write would clear
    // it) and the app config still imported.
    let args = [
        "import",
        "--stack",
        STACK,
        "pool/legacy",
        "app_config/legacy-desktop",
    ];
    let partial = run(server
        .poolform(&args)
        .env_remove("POOLFORM_LEGACY_PASSWORD"))
    .expect_code(1, "import without the password");
    assert!(
        partial.stderr.contains("pool/legacy")
            && partial.stderr.contains("POOLFORM_LEGACY_PASSWORD"),
        "{}",
        partial.stderr
    );
    assert_eq!(
        partial.stdout,
        "app_config/legacy-desktop: imported into stack corp-rds\n"
    );
    let imported = run(server
        .poolform(&args)
        .env("POOLFORM_LEGACY_PASSWORD", "legacy-secret"))
    .expect_code(0, "import");
    assert_eq!(
        imported.stdout,
        "pool/legacy: imported into stack corp-rds\napp_config/legacy-desktop: already in stack corp-rds\n"
    );

    let after = plan(&server, dir.path(), &secret).expect_code(0, "plan after import");
    assert!(!after.stderr.contains("not_owned"), "{}", after.stderr);
    let pool = broker.get_pool("legacy").await.unwrap().unwrap();
    assert!(pool.default_credentials.password_set);
    assert_eq!(pool.labels[STACK_LABEL], STACK);
    assert_eq!(pool.labels["team"], "ops");
    // A wrong password now shows as a change: the fingerprint was written.
    let wrong = [("POOLFORM_LEGACY_PASSWORD", "guess")];
    plan(&server, dir.path(), &wrong).expect_code(2, "plan with another password");
}

#[tokio::test]
async fn import_refuses_another_stacks_resource_unless_forced() {
    let server = seeded();
    let broker = server.client();
    let theirs = PoolBody {
        labels: labels(&[(STACK_LABEL, "other")]),
        ..PoolBody::default()
    };
    broker
        .put_pool("theirs", &theirs, Expect::Any)
        .await
        .unwrap();

    let seq = server.last_seq().await;
    let refused =
        run(&mut server.poolform(&["import", "--stack", STACK, "pool/theirs", "pool/live"]))
            .expect_code(1, "import of another stack's pool");
    assert!(
        refused.stderr.contains("pool/theirs: owned by stack other"),
        "{}",
        refused.stderr
    );
    assert_eq!(refused.stdout, "pool/live: already in stack corp-rds\n");
    assert_eq!(server.last_seq().await, seq, "nothing was written");

    run(&mut server.poolform(&["import", "--stack", STACK, "--force", "pool/theirs"]))
        .expect_code(0, "import --force");
    let pool = broker.get_pool("theirs").await.unwrap().unwrap();
    assert_eq!(pool.labels[STACK_LABEL], STACK);
}
