//! Every example validates, and the maintenance states differ exactly as the
//! runbook says: rds-02 leaves `live` and comes back.

use std::path::{Path, PathBuf};

use poolform::config::{self, lower};
use poolform::desired::{Assignee, Desired, DrainSessions};
use poolform::secret::SecretSource;
use secrecy::{ExposeSecret, SecretString};

/// Every directory under examples/ that holds YAML config files (not the
/// CI pipelines under examples/ci).
fn example_dirs() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        if dir == Path::new("examples/ci") {
            return;
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("readable")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        if entries
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        {
            found.push(dir.to_path_buf());
        }
        for entry in entries.iter().filter(|p| p.is_dir()) {
            walk(entry, found);
        }
    }
    let mut found = Vec::new();
    walk(Path::new("examples"), &mut found);
    found
}

fn fake_secret(reference: &SecretSource) -> Result<SecretString, String> {
    match reference {
        SecretSource::Env(var) => Ok(SecretString::from(format!("value-of-{var}"))),
        SecretSource::File(path) => Err(format!("no file {}", path.display())),
    }
}

fn desired(path: &str) -> Desired {
    let config = config::load(Path::new(path)).unwrap_or_else(|e| panic!("{path}: {:#?}", e.items));
    lower(config, &fake_secret)
        .expect("secrets resolve")
        .desired
}

#[test]
fn every_example_is_valid() {
    let dirs = example_dirs();
    assert!(dirs.len() >= 4, "{dirs:?}");
    for dir in dirs {
        if let Err(rejected) = config::load(&dir) {
            panic!("{}: {:#?}", dir.display(), rejected.items);
        }
    }
}

#[test]
fn every_example_file_points_at_the_schema() {
    for dir in example_dirs() {
        for entry in std::fs::read_dir(&dir).expect("readable") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("UTF-8");
            let first = text.lines().next().unwrap_or_default();
            let target = first
                .strip_prefix("# yaml-language-server: $schema=")
                .unwrap_or_else(|| panic!("{}: no schema line", path.display()));
            assert!(
                dir.join(target).ends_with("schema/config.schema.json")
                    && dir.join(target).is_file(),
                "{}: {target} does not lead to schema/config.schema.json",
                path.display()
            );
        }
    }
}

#[test]
fn maintenance_states_split_over_several_files() {
    for state in ["steady", "rds-02-out", "rds-02-back"] {
        let dir = Path::new("examples/maintenance").join(state);
        let files = std::fs::read_dir(&dir).expect("state dir").count();
        assert!(files >= 2, "{state} has {files} file(s)");
    }
}

#[test]
fn steady_state_matches_the_runbook() {
    let steady = desired("examples/maintenance/steady");
    assert_eq!(steady.stack, "corp-rds");
    let live = &steady.pools["live"];
    assert!(live.load_balancing.enabled);
    assert_eq!(live.load_balancing.sticky_sessions_minutes, 10);
    assert_eq!(live.load_balancing.grace_period_seconds, 30);
    assert_eq!(live.drain.sessions, DrainSessions::Disconnect);
    assert_eq!(live.drain.timeout_seconds, Some(900));
    assert_eq!(live.min_members, Some(2));
    let all: Vec<&str> = vec!["rds-01", "rds-02", "rds-03"];
    assert_eq!(
        live.members.iter().map(String::as_str).collect::<Vec<_>>(),
        all
    );
    let maintenance = &steady.pools["maintenance"];
    assert!(!maintenance.load_balancing.enabled);
    assert_eq!(maintenance.username.as_deref(), Some("CORP\\svc-maint"));
    assert_eq!(
        maintenance
            .password
            .as_ref()
            .map(|p| p.value.expose_secret()),
        Some("value-of-MAINT_PASSWORD")
    );
    let app = &steady.app_configs["maintenance-desktop"];
    assert_eq!(app.pool, "maintenance");
    assert!(app.admin_session && app.keep_credentials_on_destination_change);
    let instance = &steady.app_instances["admin-maintenance"];
    assert_eq!(
        instance.assignee,
        Assignee::User("admin@corp.example".to_owned())
    );
    assert_eq!(instance.destination.as_deref(), Some("rds-02"));
}

#[test]
fn rds_02_out_only_removes_it_from_live() {
    let steady = desired("examples/maintenance/steady");
    let out = desired("examples/maintenance/rds-02-out");
    let mut expected = steady.pools["live"].members.clone();
    expected.remove("rds-02");
    assert_eq!(out.pools["live"].members, expected);
    assert_eq!(
        out.pools["maintenance"].members,
        steady.pools["maintenance"].members
    );
    assert_eq!(out.app_configs, steady.app_configs);
    assert_eq!(out.app_instances, steady.app_instances);
}

#[test]
fn rds_02_back_is_identical_to_steady() {
    for file in ["pools.yaml", "apps.yaml"] {
        let steady = std::fs::read_to_string(format!("examples/maintenance/steady/{file}"));
        let back = std::fs::read_to_string(format!("examples/maintenance/rds-02-back/{file}"));
        assert_eq!(steady.expect("steady"), back.expect("back"), "{file}");
    }
}

/// The seed beside a config or one directory up, as `plan` finds it.
fn seed_for(dir: &Path) -> PathBuf {
    [
        dir.join("broker-seed.json"),
        dir.join("../broker-seed.json"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .unwrap_or_else(|| panic!("{}: no broker-seed.json beside it or above", dir.display()))
}

#[test]
fn every_example_plans_on_the_embedded_broker_without_violations() {
    for dir in example_dirs() {
        let copy = tempfile::tempdir().expect("temp dir");
        let secret = copy.path().join("secret");
        std::fs::write(&secret, "example-password").expect("write");
        for entry in std::fs::read_dir(&dir).expect("readable") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                // `{file: ...}` secrets point at the host running the plan.
                let text = std::fs::read_to_string(&path).expect("UTF-8");
                let text = text.replace("/run/secrets/maint-password", &secret.to_string_lossy());
                std::fs::write(copy.path().join(path.file_name().expect("named")), text)
                    .expect("write");
            }
        }
        let state = copy.path().join("state.json");
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_poolform"))
            .arg("plan")
            .arg(copy.path())
            .arg("--broker")
            .arg(format!("file:{}", state.display()))
            .arg("--seed")
            .arg(seed_for(&dir))
            .env("MAINT_PASSWORD", "maintenance-demo")
            .env_remove("POOLFORM_BROKER")
            .output()
            .expect("poolform runs");
        assert!(
            output.status.success(),
            "{}: {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
