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

/// App instances past which their checks run on a core of their own.
const PARALLEL_INSTANCES: usize = 4096;

fn check(config: &Config) -> Vec<Diagnostic> {
    check_with(config, PARALLEL_INSTANCES)
}

/// [`check`], with the app instances checked on a second core from
/// `parallel_from` of them.
fn check_with(config: &Config, parallel_from: usize) -> Vec<Diagnostic> {
    let mut checker = Checker {
        config,
        out: config.conflicts.clone(),
    };
    let instances = || {
        let mut checker = Checker {
            config,
            out: Vec::new(),
        };
        checker.app_instances();
        checker.out
    };
    let before_instances = |checker: &mut Checker| {
        checker.top_level();
        checker.pools();
        checker.app_configs();
    };
    let found = if config.app_instances.len() < parallel_from {
        before_instances(&mut checker);
        instances()
    } else {
        // The most numerous resource, whose rules read only the config:
        // checked on a second core while the rest is, its findings put
        // where the sequential order has them, so the diagnostics are the
        // same.
        std::thread::scope(|scope| {
            let checking = scope.spawn(instances);
            before_instances(&mut checker);
            checking
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    };
    checker.out.extend(found);
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
                name_list(targets.keys().map(String::as_str), targets.len())
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

/// Names a help lists before it only counts the rest.
const LISTED_NAMES: usize = 10;

/// Names joined by commas, cut after [`LISTED_NAMES`] with a count of the
/// rest: a stack of 10k pools would otherwise print all of them under
/// every dangling reference.
pub(super) fn name_list<'a>(names: impl Iterator<Item = &'a str>, count: usize) -> String {
    let listed: Vec<&str> = names.take(LISTED_NAMES).collect();
    let mut text = listed.join(", ");
    if count > listed.len() {
        text.push_str(&format!(" and {} more", count - listed.len()));
    }
    text
}

/// The candidate closest to `name` by edit distance, if close enough to be a
/// likely typo. Ties go to the smallest candidate.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a String>,
) -> Option<&'a str> {
    let name: Vec<char> = name.chars().collect();
    let limit = (name.len() / 3).clamp(1, 3);
    // A dangling reference is compared with every name of its kind (100k
    // at full size, for each of many references): candidates whose length
    // alone puts them out of reach are skipped, and a comparison stops as
    // soon as it cannot come within the limit.
    let bag = Bag::of(&name);
    let mut row = Vec::new();
    let mut other = Vec::new();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate.len() + limit < name.len() || candidate.chars().count() > name.len() + limit {
            continue;
        }
        if bag.distance(candidate) > limit {
            continue;
        }
        other.clear();
        other.extend(candidate.chars());
        if let Some(distance) = bounded_distance(&name, &other, limit, &mut row) {
            let better = match best {
                None => true,
                Some((d, c)) => (distance, candidate.as_str()) < (d, c),
            };
            if better {
                best = Some((distance, candidate));
            }
        }
    }
    best.map(|(_, c)| c)
}

/// A lower bound of the edit distance, far cheaper to take: each edit
/// changes the count of at most one character on each side, so it takes at
/// least as many edits as characters one side has more of than the other.
/// Counted over ASCII only (other characters are left to the full
/// comparison), which keeps it a lower bound.
struct Bag {
    /// How often each ASCII character occurs in the name.
    counts: [u32; 128],
    ascii: usize,
}

impl Bag {
    fn of(name: &[char]) -> Bag {
        let mut bag = Bag {
            counts: [0; 128],
            ascii: 0,
        };
        for &c in name.iter().filter(|c| c.is_ascii()) {
            bag.counts[c as usize] += 1;
            bag.ascii += 1;
        }
        bag
    }

    fn distance(&self, candidate: &str) -> usize {
        let mut left = self.counts;
        let (mut common, mut ascii) = (0, 0);
        for &b in candidate.as_bytes().iter().filter(|b| b.is_ascii()) {
            ascii += 1;
            if left[b as usize] > 0 {
                left[b as usize] -= 1;
                common += 1;
            }
        }
        (self.ascii - common).max(ascii - common)
    }
}

/// The edit distance between `a` and `b` when it is at most `limit`.
fn bounded_distance(a: &[char], b: &[char], limit: usize, row: &mut Vec<usize>) -> Option<usize> {
    row.clear();
    row.extend(0..=b.len());
    for (i, ca) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        let mut smallest = row[0];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
            smallest = smallest.min(row[j + 1]);
        }
        // Every later row is at least this row's smallest entry.
        if smallest > limit {
            return None;
        }
    }
    Some(row[b.len()]).filter(|d| *d <= limit)
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
    fn app_instances_checked_on_a_second_core_give_the_same_diagnostics() {
        use super::{Diagnostic, check_with};
        // Problems in every section, the app instances' among them, so
        // that their place in the order shows.
        let text = format!(
            "{HEADER}pools:\n  p!: {{members: [d1, d1]}}\napp_configs:\n  c: {{pool: nope, type: desktop, protocol: rdp}}\napp_instances:\n  i1: {{app_config: gone, user: u}}\n  i2: {{app_config: c, user: u, group: g}}\n  i3!: {{app_config: c, user: on}}\ndestinations:\n  d: {{maintenance: {{enabled: true, allowed_groups: [NO]}}}}\n"
        );
        let config =
            crate::config::merge::merge(vec![("f.yaml".to_owned(), text)]).expect("merges");
        let described = |items: Vec<Diagnostic>| -> Vec<String> {
            items
                .iter()
                .map(|d| format!("{} {}", d.code, d.message))
                .collect()
        };
        let sequential = described(check_with(&config, usize::MAX));
        let parallel = described(check_with(&config, 0));
        assert!(sequential.len() >= 7, "{sequential:#?}");
        assert_eq!(parallel, sequential);
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

    #[test]
    fn closest_skips_far_candidates_and_breaks_ties_by_name() {
        let names: Vec<String> = ["pool-b", "pool-a", "p", "a-much-longer-name", "pool-ab"]
            .map(str::to_owned)
            .to_vec();
        // One edit from both pool-a and pool-b: the smaller name wins.
        assert_eq!(super::closest("pool-c", names.iter()), Some("pool-a"));
        assert_eq!(super::closest("pool-abc", names.iter()), Some("pool-ab"));
        // Non-ASCII names count characters, not bytes.
        let umlauts = ["grün".to_owned()];
        assert_eq!(super::closest("grun", umlauts.iter()), Some("grün"));
    }

    /// The plain, unpruned edit distance the pruned search must agree with.
    fn plain_distance(a: &str, b: &str) -> usize {
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

    proptest::proptest! {
        #[test]
        fn closest_agrees_with_the_plain_search(
            name in "[ab0ü-]{0,8}",
            candidates in proptest::collection::vec("[ab0ü-]{0,10}", 0..12),
        ) {
            let limit = (name.chars().count() / 3).clamp(1, 3);
            let expected = candidates
                .iter()
                .map(|c| (plain_distance(&name, c), c))
                .filter(|(d, _)| *d <= limit)
                .min()
                .map(|(_, c)| c.as_str());
            proptest::prop_assert_eq!(super::closest(&name, candidates.iter()), expected);
        }
    }

    #[test]
    fn a_long_list_of_declared_names_is_cut_with_a_count() {
        assert_eq!(super::name_list(["a", "b"].into_iter(), 2), "a, b");
        let names: Vec<String> = (0..12).map(|i| format!("p{i:02}")).collect();
        assert_eq!(
            super::name_list(names.iter().map(String::as_str), names.len()),
            "p00, p01, p02, p03, p04, p05, p06, p07, p08, p09 and 2 more"
        );
    }
}
