//! The config pipeline, YAML text to desired state: `read` the files,
//! `merge` them into one located `Config`, `validate` it (every problem at
//! once), and `lower` it into the broker-level `Desired` state with secrets
//! resolved. Knows nothing of HTTP, plans or rendering.

mod fast;
mod locate;
mod lower;
mod merge;
mod read;
mod scan;
mod shape;
pub mod spec;
pub mod validate;
mod yaml;

use std::path::Path;

pub use lower::{Lowered, lower};
pub use merge::{Config, Declared, InFile, Located, Moved, kind_noun, merge};
pub use read::{read, reread, siblings_with_config};
pub use spec::parse_duration;
pub use validate::{Validated, validate};

use crate::diagnostic::{Diagnostic, SourceMap};

/// Everything that went wrong while loading, with the text of the files read
/// so far so that the diagnostics can be shown with snippets.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub sources: SourceMap,
    pub items: Vec<Diagnostic>,
}

/// Reads, merges and validates the config at `path` (a file or a directory),
/// judging the secret files it references as far as their metadata tells.
pub fn load(path: &Path) -> Result<Validated<Config>, Diagnostics> {
    let files = read(path)?;
    tracing::trace!(files = files.len(), "read the config files");
    let mut config = merge(files)?;
    tracing::trace!("parsed and merged the config");
    config.unusable_secret_files = read::unusable_secret_files(&config);
    let validated = validate(config);
    tracing::trace!("validated the config");
    validated
}

/// Merges and validates files already read, given as (display name, text)
/// in merge order. Pure: for tests, benchmarks and tools that hold the text.
pub fn load_text(files: Vec<(String, String)>) -> Result<Validated<Config>, Diagnostics> {
    merge(files).and_then(validate)
}

/// JSON Schema (draft-07) of one config file, for editors and other tools.
pub fn json_schema() -> schemars::Schema {
    crate::json_schema::draft07::<spec::ConfigFile>()
}

#[cfg(test)]
mod tests {
    use secrecy::{ExposeSecret, SecretString};

    use super::*;
    use crate::address::{Address, Kind};
    use crate::secret::SecretSource;

    fn files(texts: &[&str]) -> Vec<(String, String)> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("{i}.yaml"), (*t).to_owned()))
            .collect()
    }

    const POOLS: &str = "stack: s\npools:\n  live:\n    members:\n      - rds-01\n      - rds-02\n";
    const APPS: &str = "app_configs:\n  desk: {pool: live, type: desktop, protocol: rdp}\n";

    #[test]
    fn a_declaration_moves_as_a_name_and_a_pointer() {
        // Sorting and gathering 1M declarations moves each several times;
        // the spec stays in its box.
        assert_eq!(
            std::mem::size_of::<Declared<spec::AppInstanceSpec>>(),
            std::mem::size_of::<(usize, spec::Sp<String>, usize)>()
        );
    }

    #[test]
    fn lowering_moves_app_instances_out_and_keeps_where_they_were_declared() {
        let instances = "app_instances:\n  \
            alice-desk: {app_config: desk, user: alice@corp.example, destination: rds-02}\n  \
            ops-desk: {app_config: desk, group: ops}\n";
        let config =
            validate(merge(files(&[POOLS, APPS, instances])).expect("loads")).expect("valid");
        let address = Address::new(Kind::AppInstance, "alice-desk");
        let before = config.locate(&address).expect("declared");
        let lowered = lower(config, &|_| unreachable!("no secrets")).expect("lowers");

        let alice = &lowered.desired.app_instances["alice-desk"];
        assert_eq!(alice.app_config, "desk");
        assert_eq!(
            alice.assignee,
            crate::desired::Assignee::User("alice@corp.example".to_owned())
        );
        assert_eq!(alice.destination.as_deref(), Some("rds-02"));
        let ops = &lowered.desired.app_instances["ops-desk"];
        assert_eq!(
            ops.assignee,
            crate::desired::Assignee::Group("ops".to_owned())
        );
        assert_eq!(ops.destination, None);

        let kept = &lowered.config;
        assert_eq!(kept.app_instances.len(), 2);
        assert_eq!(kept.locate(&address), Some(before));
        assert!(kept.locate_member("live", "rds-02").is_some());
    }

    #[test]
    fn a_large_config_lowers_its_app_instances_on_a_second_core_the_same() {
        // 10,000 app instances: moved on a thread of their own.
        let instances: String = (0..10_000)
            .map(|i| {
                format!(
                    "  i{i:05}: {{app_config: desk, user: u{i}, destination: rds-0{}}}\n",
                    i % 2 + 1
                )
            })
            .collect();
        let text = format!("app_instances:\n{instances}");
        let config = validate(merge(files(&[POOLS, APPS, &text])).expect("loads")).expect("valid");
        let address = Address::new(Kind::AppInstance, "i09999");
        let before = config.locate(&address).expect("declared");
        let lowered = lower(config, &|_| unreachable!("no secrets")).expect("lowers");

        assert_eq!(lowered.desired.app_instances.len(), 10_000);
        assert_eq!(lowered.desired.pools["live"].members.len(), 2);
        let last = &lowered.desired.app_instances["i09999"];
        assert_eq!(
            last.assignee,
            crate::desired::Assignee::User("u9999".to_owned())
        );
        assert_eq!(last.destination.as_deref(), Some("rds-02"));
        assert_eq!(lowered.config.app_instances.len(), 10_000);
        assert_eq!(lowered.config.locate(&address), Some(before));
    }

    #[test]
    fn a_config_larger_than_the_parser_default_budget_loads() {
        // 300,000 member entries: more nodes than serde-saphyr's default
        // budget of 250,000, which rejected a 10k-pool config as
        // "too complex". The alias bomb in tests/invalid still is.
        let members: Vec<String> = (0..300_000).map(|i| format!("d{i}")).collect();
        let text = format!(
            "stack: s\npools:\n  big:\n    members: [{}]\n",
            members.join(", ")
        );
        let config = merge(files(&[&text])).expect("loads");
        assert_eq!(config.pools["big"].spec.members.len(), 300_000);
    }

    #[test]
    fn files_merge_into_one_config() {
        let config = merge(files(&[POOLS, APPS])).expect("loads");
        assert_eq!(config.stack.as_ref().map(|s| s.file), Some(0));
        assert_eq!(config.pools["live"].file, 0);
        assert_eq!(config.app_configs["desk"].file, 1);
    }

    #[test]
    fn locate_points_at_the_declaration_and_the_member_entry() {
        let config = merge(files(&[POOLS, APPS])).expect("loads");
        let pool = config
            .locate(&Address::new(Kind::Pool, "live"))
            .expect("declared");
        assert_eq!(
            (pool.file.as_str(), pool.line, pool.column),
            ("0.yaml", 3, 3)
        );
        let app = config
            .locate(&Address::new(Kind::AppConfig, "desk"))
            .expect("declared");
        assert_eq!((app.file.as_str(), app.line), ("1.yaml", 2));
        let member = config.locate_member("live", "rds-02").expect("listed");
        assert_eq!((member.line, member.column), (6, 9));
        assert_eq!(&POOLS[member.offset..member.offset + member.len], "rds-02");
        assert!(config.locate_member("live", "rds-09").is_none());
        assert!(config.locate(&Address::new(Kind::Pool, "nope")).is_none());
    }

    #[test]
    fn plan_time_findings_become_located_diagnostics() {
        let config = merge(files(&[POOLS])).expect("loads");
        let diagnostic = config.diagnostic(
            "plan::unknown_destination",
            &Address::new(Kind::Pool, "live"),
            "pool 'live' lists 'rds-09', which no live destination has",
        );
        let label = diagnostic.primary.expect("located");
        assert_eq!(label.location.line, 3);
    }

    #[test]
    fn empty_and_comment_only_files_load_as_empty() {
        let config = merge(files(&["", "# just a comment\n", POOLS])).expect("loads");
        assert_eq!(config.pools.len(), 1);
    }

    #[test]
    fn an_empty_section_is_empty_not_a_type_error() {
        let config = merge(files(&["stack: s\npools:\napp_configs: ~\n"])).expect("loads");
        assert!(config.pools.is_empty() && config.app_configs.is_empty());
    }

    #[test]
    fn a_parse_error_in_each_file_is_reported() {
        let rejected = merge(files(&["pools: [\n", "bogus: 1\n"])).expect_err("invalid");
        let located: Vec<&str> = rejected
            .items
            .iter()
            .map(|d| d.primary.as_ref().expect("located").location.file.as_str())
            .collect();
        assert_eq!(located, ["0.yaml", "1.yaml"]);
        assert_eq!(rejected.sources.len(), 2);
    }

    #[test]
    fn inline_secrets_are_masked_in_the_kept_source() {
        let text = "stack: s\npools:\n  m:\n    default_credentials: {password: Wintér2026}\n";
        let config = merge(files(&[text])).expect("loads");
        let kept = config.sources.text(0);
        assert!(!kept.contains("Wint"), "{kept}");
        assert_eq!(kept.len(), text.len());
        assert!(kept.contains("{password: ***********}"), "{kept}");
    }

    #[test]
    fn a_missing_secret_is_located_at_its_reference() {
        let text = "stack: s\npools:\n  m:\n    default_credentials: {password: {env: NOPE}}\n";
        let config = validate(merge(files(&[text])).expect("loads")).expect("valid");
        let missing = |_: &SecretSource| Err("the environment variable NOPE is not set".to_owned());
        let diagnostics = lower(config.clone(), &missing)
            .expect_err("unresolved")
            .items;
        assert_eq!(diagnostics[0].code, "config::secret_unavailable");
        let location = &diagnostics[0].primary.as_ref().expect("located").location;
        assert_eq!((location.line, location.column), (4, 37));
        let found = |_: &SecretSource| Ok(SecretString::from("s3cret".to_owned()));
        let desired = lower(config, &found).expect("resolved").desired;
        let password = desired.pools["m"].password.as_ref().expect("password");
        assert_eq!(password.value.expose_secret(), "s3cret");
    }

    #[test]
    fn validate_refuses_a_secret_file_that_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pw");
        crate::regular_file::tests::fifo(&fifo);
        let text = format!(
            "stack: s\npools:\n  a:\n    default_credentials: {{password: {{file: /dev/zero}}}}\n  b:\n    default_credentials: {{password: {{file: {}}}}}\n  c:\n    default_credentials: {{password: {{file: /not/mounted/here}}}}\n",
            fifo.display()
        );
        let config = dir.path().join("c.yaml");
        std::fs::write(&config, text).unwrap();
        let rejected = load(&config).expect_err("unusable secret files");
        let found: Vec<(&str, u32, u32)> = rejected
            .items
            .iter()
            .map(|d| {
                let at = &d.primary.as_ref().expect("located").location;
                (d.code, at.line, at.column)
            })
            .collect();
        assert_eq!(
            found,
            [
                ("config::secret_file", 4, 37),
                ("config::secret_file", 6, 37)
            ]
        );
        assert!(
            rejected.items[0]
                .message
                .contains("a device, not a regular file")
        );
        assert!(
            rejected.items[1]
                .message
                .contains("a FIFO, not a regular file")
        );
    }

    /// Whatever the YAML error around it, no diagnostic (its snippet, its
    /// message, its help; as text or JSON) shows the password.
    #[test]
    fn a_secret_is_masked_whatever_the_error_around_it() {
        let variants = [
            "default_credentials: {password: {value: S3cr3t}}",
            "default_credentials: {password: [S3cr3t, x]}",
            "default_credentials: {password: S3cr3t",
            "default_credentials: {password: \"S3cr3t}",
            "default_credentials: {password: 'S3cr3t",
            "default_credentials:\n      passwd: S3cr3t",
            "default_credentials: S3cr3t",
            "default_credentials: [S3cr3t]",
            "default_credentials: {password: {S3cr3t}}",
            "default_credentials: {password: S3cr3t}}",
            "default_credentials: {password: S3cr3t, password: S3cr3t}",
            "default_credentials:\n      password: S3cr3t\n      password: S3cr3t",
            "default_credentials: {password: !!binary UzNjcjN0}",
            "default_credentials: {password: {env: S3cr3t, file: x}}",
            "default_credentials: {\"password\": S3cr3t, username: [}",
            "password: S3cr3t",
            "members: [\n    default_credentials: {password: S3cr3t}",
            "\tx: 1\n    default_credentials: {password: S3cr3t}",
            "default_credentials:\n      password:\n        S3cr3t\n    members: [",
            "default_credentials: {password: &pw S3cr3t}\n    members: *pw",
            "default_credentials: {password: S3cr3t}\n    min_members: lots",
        ];
        for variant in variants {
            let text = format!("stack: s\npools:\n  m:\n    {variant}\n");
            let rejected = merge(files(&[&text]))
                .and_then(validate)
                .expect_err(variant);
            let mut shown = Vec::new();
            crate::render::diagnostics::text(
                &mut shown,
                &rejected.items,
                &rejected.sources,
                crate::render::diagnostics::TextStyle::PLAIN,
            )
            .unwrap();
            crate::render::diagnostics::json(&mut shown, &rejected.items).unwrap();
            let shown = String::from_utf8(shown).unwrap();
            assert!(!shown.contains("S3cr3t"), "{variant}:\n{shown}");
            assert!(!shown.contains("UzNjcjN0"), "{variant}:\n{shown}");
        }
    }
}
