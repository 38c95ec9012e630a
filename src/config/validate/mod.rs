//! Semantic checks of a merged config: everything the files alone can prove
//! wrong, all reported at once. Pure: no IO, no broker. The only way to get a
//! `Validated<Config>` is through `validate`, so later stages take one and
//! need not re-check. The rules of each part of the config live in a file of
//! their own; the checks they share (names, labels, references, YAML 1.1
//! booleans) live here.

mod apps;
mod destinations;
mod drain;
mod pools;
mod top_level;

use std::collections::BTreeMap;
use std::ops::Deref;

use crate::config::spec::At;

use crate::address::Kind;
use crate::config::spec::{LabelMap, Sp};
use crate::config::{Config, Diagnostics, kind_noun};
use crate::contract::labels::RESERVED_PREFIX;
use crate::contract::names;
use crate::diagnostic::Diagnostic;

/// A value that passed validation. Only this module can construct one.
#[derive(Debug, Clone)]
pub struct Validated<T>(T);

impl<T> Validated<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Validated<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Checks `config` and returns it validated, or every problem found.
pub fn validate(mut config: Config) -> Result<Validated<Config>, Diagnostics> {
    let mut diagnostics = check(&config);
    diagnostics.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    if !diagnostics.iter().any(Diagnostic::is_error) {
        config.warnings = diagnostics;
        return Ok(Validated(config));
    }
    Err(Diagnostics {
        sources: config.sources,
        items: diagnostics,
    })
}

fn check(config: &Config) -> Vec<Diagnostic> {
    let mut checker = Checker {
        config,
        out: config.conflicts.clone(),
    };
    checker.top_level();
    checker.pools();
    checker.app_configs();
    checker.app_instances();
    checker.destinations();
    checker.out
}

struct Checker<'a> {
    config: &'a Config,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(
        &mut self,
        code: &'static str,
        message: String,
        file: usize,
        at: &At,
        label: &str,
    ) -> &mut Diagnostic {
        let location = self.config.at(file, at);
        self.out
            .push(Diagnostic::error(code, message).with_label(location, label));
        self.out.last_mut().expect("just pushed")
    }

    /// Reports `reference` when it names no `target_kind` in `targets`.
    fn reference<T>(
        &mut self,
        file: usize,
        reference: &Sp<String>,
        target_kind: Kind,
        targets: &BTreeMap<String, T>,
        from_kind: Kind,
        from: &str,
    ) {
        if targets.contains_key(&reference.value) {
            return;
        }
        let target = kind_noun(target_kind);
        let help = match closest(&reference.value, targets.keys()) {
            Some(candidate) => format!("did you mean '{candidate}'?"),
            None if targets.is_empty() => format!("the config declares no {target}s"),
            None => format!(
                "declared {target}s: {}",
                targets
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        self.error(
            "config::dangling_reference",
            format!(
                "{} '{from}' refers to {target} '{}', which is not declared",
                kind_noun(from_kind),
                reference.value
            ),
            file,
            &reference.at,
            &format!("no {target} with this name"),
        )
        .help = Some(help);
    }

    fn name(&mut self, file: usize, name: &Sp<String>, what: &str) {
        if !names::is_valid(&name.value) {
            self.error(
                "config::invalid_name",
                format!("'{}' is not a valid {what} name", name.value),
                file,
                &name.at,
                "invalid name",
            )
            .help = Some(format!("names are {}", names::RULE));
        }
    }

    fn labels(&mut self, file: usize, labels: &LabelMap, kind: Kind, owner: &str) {
        for (key, value) in &labels.0 {
            if key.value.starts_with(RESERVED_PREFIX) {
                self.error(
                    "config::reserved_label",
                    format!(
                        "{} '{owner}' sets the label '{}', but keys starting with '{RESERVED_PREFIX}' are reserved",
                        kind_noun(kind),
                        key.value
                    ),
                    file,
                    &key.at,
                    "reserved label key",
                )
                .help = Some(
                    "poolform sets these labels itself (stack ownership, secret fingerprints); choose another key"
                        .to_owned(),
                );
            }
            self.plain_text(file, value);
        }
    }

    /// Reports a string written as an unquoted YAML 1.1 boolean (`no`, `on`):
    /// poolform reads it as text, other YAML tools as a boolean, so the same
    /// file would mean two things.
    fn plain_text(&mut self, file: usize, value: &Sp<String>) {
        const YAML11_BOOLEANS: [&str; 8] = ["y", "n", "yes", "no", "on", "off", "true", "false"];
        if !YAML11_BOOLEANS
            .iter()
            .any(|b| b.eq_ignore_ascii_case(&value.value))
        {
            return;
        }
        let location = self.config.at(file, &value.at);
        let text = self.config.sources.text(file);
        let quoted = text[location.offset..]
            .chars()
            .next()
            .is_some_and(|c| c == '\'' || c == '"');
        if !quoted {
            self.error(
                "config::ambiguous_scalar",
                format!(
                    "'{}' is read as text here, but YAML 1.1 tools read it as a boolean",
                    value.value
                ),
                file,
                &value.at,
                "unquoted boolean-like word",
            )
            .help = Some(format!("quote it: '{}'", value.value));
        }
    }
}

/// The candidate closest to `name` by edit distance, if close enough to be a
/// likely typo.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a String>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, c)| c.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    pub(super) const HEADER: &str = "stack: s\n";

    /// A pool with two members, for rules that need one.
    pub(super) const POOL: &str = "pools:\n  p:\n    members: [d1, d2]\n";

    /// Loads `yaml` (one file, `stack` prepended) and asserts that a
    /// diagnostic with `code` underlines exactly `underlined`.
    #[track_caller]
    pub(super) fn check(yaml: &str, code: &str, underlined: &str) {
        check_files(vec![format!("{HEADER}{yaml}")], code, underlined);
    }

    #[track_caller]
    pub(super) fn check_files(files: Vec<String>, code: &str, underlined: &str) {
        let files = files
            .into_iter()
            .enumerate()
            .map(|(i, text)| (format!("f{i}.yaml"), text))
            .collect();
        let rejected = match crate::config::load_text(files) {
            Ok(_) => panic!("expected {code}, but the config is valid"),
            Err(rejected) => rejected,
        };
        let found = rejected.items.iter().find(|d| d.code == code);
        let Some(diagnostic) = found else {
            panic!("expected {code}, got {:#?}", rejected.items);
        };
        let label = diagnostic.primary.as_ref().expect("located");
        let location = &label.location;
        let text = rejected.sources.text_of(&location.file).expect("source");
        assert_eq!(
            &text[location.offset..location.offset + location.len],
            underlined,
            "{diagnostic:#?}"
        );
    }

    #[track_caller]
    pub(super) fn valid(yaml: &str) {
        let files = vec![("ok.yaml".to_owned(), format!("{HEADER}{yaml}"))];
        if let Err(rejected) = crate::config::load_text(files) {
            panic!("expected valid, got {:#?}", rejected.items);
        }
    }

    #[test]
    fn invalid_names() {
        check("pools:\n  live!: {}\n", "config::invalid_name", "live!");
        let long = "x".repeat(64);
        check(
            &format!("pools:\n  {long}: {{}}\n"),
            "config::invalid_name",
            &long,
        );
        check(
            "pools:\n  p: {members: ['rds 01']}\n",
            "config::invalid_name",
            "'rds 01'",
        );
        valid(&format!("pools:\n  {}: {{}}\n", "x".repeat(63)));
    }

    #[test]
    fn reserved_label_key() {
        check(
            "pools:\n  p:\n    labels: {team: a, poolform.stack: other}\n",
            "config::reserved_label",
            "poolform.stack",
        );
    }

    #[test]
    fn unquoted_yaml11_boolean_in_text() {
        check(
            "destinations:\n  d: {maintenance: {enabled: true, allowed_groups: [NO]}}\n",
            "config::ambiguous_scalar",
            "NO",
        );
        valid("destinations:\n  d: {maintenance: {enabled: true, allowed_groups: ['NO']}}\n");
    }

    #[test]
    fn name_declared_in_two_files_points_at_both() {
        let files = vec![
            (
                "a.yaml".to_owned(),
                "stack: s\npools:\n  live: {}\n".to_owned(),
            ),
            (
                "b.yaml".to_owned(),
                "pools:\n  other: {}\n  live: {}\n".to_owned(),
            ),
        ];
        let rejected = crate::config::load_text(files).expect_err("duplicate");
        let diagnostic = &rejected.items[0];
        assert_eq!(diagnostic.code, "config::duplicate_name");
        let primary = &diagnostic.primary.as_ref().expect("located").location;
        assert_eq!(
            (primary.file.as_str(), primary.line, primary.column),
            ("b.yaml", 3, 3)
        );
        let first = &diagnostic.secondary[0].location;
        assert_eq!(
            (first.file.as_str(), first.line, first.column),
            ("a.yaml", 3, 3)
        );
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let files = vec![(
            "many.yaml".to_owned(),
            "pools:\n  p!: {min_members: 1}\napp_configs:\n  a: {pool: q, type: web, protocol: vnc}\n"
                .to_owned(),
        )];
        let rejected = crate::config::load_text(files).expect_err("invalid");
        let mut codes: Vec<&str> = rejected.items.iter().map(|d| d.code).collect();
        codes.sort_unstable();
        assert_eq!(
            codes,
            [
                "config::dangling_reference",
                "config::invalid_name",
                "config::min_members",
                "config::missing_stack"
            ]
        );
    }

    #[test]
    fn names_declared_twice_are_reported_with_the_semantic_problems() {
        let files = vec![
            (
                "a.yaml".to_owned(),
                "stack: s\npools:\n  live: {}\n".to_owned(),
            ),
            (
                "b.yaml".to_owned(),
                "pools:\n  live: {}\napp_configs:\n  a: {pool: q, type: web, protocol: rdp}\n"
                    .to_owned(),
            ),
        ];
        let rejected = crate::config::load_text(files).expect_err("invalid");
        let codes: Vec<&str> = rejected.items.iter().map(|d| d.code).collect();
        assert_eq!(
            codes,
            ["config::duplicate_name", "config::dangling_reference"]
        );
    }

    #[test]
    fn closest_name_suggestion() {
        let names = ["live".to_owned(), "maintenance".to_owned()];
        assert_eq!(
            super::closest("maintenanse", names.iter()),
            Some("maintenance")
        );
        assert_eq!(super::closest("xyz", names.iter()), None);
    }
}
