//! Semantic checks of a merged config: everything the files alone can prove
//! wrong, all reported at once. Pure: no IO, no broker. The only way to get a
//! `Validated<Config>` is through `validate`, so later stages take one and
//! need not re-check.

use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;

use serde_saphyr::Location;

use crate::address::Kind;
use crate::config::spec::{DrainSessionsSpec, DurationValue, LabelMap, SecretValue, Sp};
use crate::config::{Config, Diagnostics, kind_noun};
use crate::contract::labels::RESERVED_PREFIX;
use crate::contract::names;
use crate::diagnostic::{Diagnostic, Label, SourceLocation};

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
pub fn validate(config: Config) -> Result<Validated<Config>, Diagnostics> {
    let mut diagnostics = check(&config);
    if diagnostics.is_empty() {
        return Ok(Validated(config));
    }
    diagnostics.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
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
        at: &Location,
        label: &str,
    ) -> &mut Diagnostic {
        let location = self.config.at(file, at);
        self.out
            .push(Diagnostic::error(code, message).with_label(location, label));
        self.out.last_mut().expect("just pushed")
    }

    fn top_level(&mut self) {
        let config = self.config;
        if config.resource_count() == 0 && config.stack.is_none() {
            let mut diagnostic = Diagnostic::error(
                "config::empty",
                "the config declares nothing: no stack and no resources",
            )
            .with_help("start with `stack: NAME` and a `pools:` section; see examples/");
            if !config.sources.is_empty() {
                let start = SourceLocation::file_start(config.sources.name(0));
                diagnostic = diagnostic.with_label(start, "empty config");
            }
            self.out.push(diagnostic);
            return;
        }
        match &config.stack {
            Some(stack) => {
                self.name(stack.file, &stack.value, "stack");
                self.plain_text(stack.file, &stack.value);
            }
            None => {
                let first = config
                    .pools
                    .values()
                    .map(|d| (d.file, &d.name))
                    .chain(config.app_configs.values().map(|d| (d.file, &d.name)))
                    .chain(config.app_instances.values().map(|d| (d.file, &d.name)))
                    .chain(config.destinations.values().map(|d| (d.file, &d.name)))
                    .min_by_key(|(file, name)| (*file, name.at.line(), name.at.column()));
                if let Some((file, name)) = first {
                    self.error(
                        "config::missing_stack",
                        "resources are declared but no `stack` is set".to_owned(),
                        file,
                        &name.at,
                        "first resource declared here",
                    )
                    .help = Some(
                        "add `stack: NAME` to one file; poolform labels what it manages with it"
                            .to_owned(),
                    );
                }
            }
        }
        if let Some(url) = &config.broker_url {
            self.plain_text(url.file, &url.value);
        }
        if let Some(safety) = &config.safety
            && let Some(percent) = &safety.value.value.max_delete_percent
            && percent.value > 100
        {
            self.error(
                "config::out_of_range",
                format!(
                    "`safety.max_delete_percent` is {}, but a percentage is at most 100",
                    percent.value
                ),
                safety.file,
                &percent.at,
                "over 100",
            );
        }
    }

    fn pools(&mut self) {
        // destination → (pool, file, location) of its first load-balanced pool.
        let mut balanced: HashMap<&str, (&str, usize, &Location)> = HashMap::new();
        for (name, declared) in &self.config.pools {
            let file = declared.file;
            let spec = &declared.spec;
            self.name(file, &declared.name, "pool");
            self.labels(file, &spec.labels, Kind::Pool, name);
            let load_balanced = spec
                .load_balancing
                .as_ref()
                .is_some_and(|lb| lb.enabled.value);
            let mut seen: HashMap<&str, &Location> = HashMap::new();
            for member in &spec.members {
                self.name(file, member, "member");
                self.plain_text(file, member);
                if let Some(first) = seen.insert(&member.value, &member.at) {
                    let first = self.config.at(file, first);
                    self.error(
                        "config::duplicate_member",
                        format!("pool '{name}' lists '{}' twice", member.value),
                        file,
                        &member.at,
                        "listed again here",
                    )
                    .secondary
                    .push(Label::new(first, "first listed here"));
                    continue;
                }
                if load_balanced {
                    match balanced.get(member.value.as_str()) {
                        Some((other, other_file, other_at)) => {
                            let first = self.config.at(*other_file, other_at);
                            let diagnostic = self.error(
                                "config::load_balanced_twice",
                                format!(
                                    "destination '{}' is a member of two load-balanced pools, '{other}' and '{name}'",
                                    member.value
                                ),
                                file,
                                &member.at,
                                "second load-balanced pool",
                            );
                            diagnostic.secondary.push(Label::new(
                                first,
                                format!("already a member of '{other}' here"),
                            ));
                            diagnostic.help = Some(
                                "a destination can be load-balanced in only one pool; remove it from one of them or switch load balancing off there"
                                    .to_owned(),
                            );
                        }
                        None => {
                            balanced.insert(&member.value, (name, file, &member.at));
                        }
                    }
                }
            }
            if let Some(min) = &spec.min_members {
                let count = seen.len();
                if usize::try_from(min.value).unwrap_or(usize::MAX) > count {
                    self.error(
                        "config::min_members",
                        format!(
                            "pool '{name}' requires at least {} members but lists {count}",
                            min.value
                        ),
                        file,
                        &min.at,
                        "more than the member list",
                    )
                    .help = Some("lower `min_members` or add members".to_owned());
                }
            }
            if let Some(lb) = &spec.load_balancing {
                if let Some(sticky) = &lb.sticky_sessions {
                    self.sticky_period(file, name, sticky);
                }
                if let Some(grace) = &lb.grace_period {
                    self.duration(file, grace, 1, "grace_period", "seconds");
                }
            }
            if let Some(credentials) = &spec.default_credentials {
                if let Some(username) = &credentials.username {
                    self.plain_text(file, username);
                }
                if let Some(password) = &credentials.password
                    && password.value == SecretValue::Inline
                {
                    self.error(
                        "config::inline_secret",
                        format!("the password of pool '{name}' is written in the config"),
                        file,
                        &password.at,
                        "secret value in plain text",
                    )
                    .help = Some(
                        "reference it instead: `password: {env: VAR}` or `password: {file: PATH}`, and rotate the exposed password"
                            .to_owned(),
                    );
                }
            }
            if let Some(drain) = &spec.drain
                && let Some(timeout) = &drain.timeout
            {
                self.duration(file, timeout, 1, "drain.timeout", "seconds");
                let sessions = drain.sessions.as_ref().map(|s| s.value);
                if !matches!(
                    sessions,
                    Some(DrainSessionsSpec::Wait | DrainSessionsSpec::Disconnect)
                ) {
                    self.error(
                        "config::drain_timeout",
                        format!(
                            "pool '{name}' sets `drain.timeout`, which only applies with `drain.sessions: wait` or `disconnect`"
                        ),
                        file,
                        &timeout.at,
                        "timeout without wait or disconnect",
                    )
                    .help = Some(
                        "set `sessions: wait` or `sessions: disconnect`, or remove `timeout`"
                            .to_owned(),
                    );
                }
            }
        }
    }

    fn sticky_period(&mut self, file: usize, pool: &str, sticky: &Sp<DurationValue>) {
        let Some(seconds) = self.duration(file, sticky, 60, "sticky_sessions", "minutes") else {
            return;
        };
        if seconds == 0 {
            return;
        }
        if seconds < 60 {
            self.error(
                "config::sticky_period",
                format!(
                    "the sticky-session period of pool '{pool}' is {seconds}s; it must be 0 (off) or at least 1 minute"
                ),
                file,
                &sticky.at,
                "below 1 minute",
            )
            .help = Some("oneclick counts the sticky period in whole minutes".to_owned());
        } else if seconds % 60 != 0 {
            self.error(
                "config::sticky_period",
                format!(
                    "the sticky-session period of pool '{pool}' is {seconds}s, which is not a whole number of minutes"
                ),
                file,
                &sticky.at,
                "not whole minutes",
            )
            .help = Some("oneclick counts the sticky period in whole minutes".to_owned());
        }
    }

    /// Checks a duration and returns it in seconds when it is one.
    fn duration(
        &mut self,
        file: usize,
        value: &Sp<DurationValue>,
        unit_seconds: u64,
        field: &str,
        unit: &str,
    ) -> Option<u64> {
        let seconds = value.value.seconds(unit_seconds);
        if seconds.is_none() {
            let written = match &value.value {
                DurationValue::Number(n) => n.to_string(),
                DurationValue::Text(text) => text.clone(),
            };
            self.error(
                "config::duration",
                format!("`{field}` is '{written}', which is not a duration"),
                file,
                &value.at,
                "not a duration",
            )
            .help = Some(format!(
                "write a plain number of {unit}, or a value like 90s, 10m or 1h30m"
            ));
        }
        seconds
    }

    fn app_configs(&mut self) {
        for (name, declared) in &self.config.app_configs {
            let file = declared.file;
            let spec = &declared.spec;
            self.name(file, &declared.name, "app config");
            self.labels(file, &spec.labels, Kind::AppConfig, name);
            let pools = &self.config.pools;
            self.reference(file, &spec.pool, Kind::Pool, pools, Kind::AppConfig, name);
        }
    }

    fn app_instances(&mut self) {
        for (name, declared) in &self.config.app_instances {
            let file = declared.file;
            let spec = &declared.spec;
            self.name(file, &declared.name, "app instance");
            self.labels(file, &spec.labels, Kind::AppInstance, name);
            let app_configs = &self.config.app_configs;
            self.reference(
                file,
                &spec.app_config,
                Kind::AppConfig,
                app_configs,
                Kind::AppInstance,
                name,
            );
            match (&spec.user, &spec.group) {
                (Some(_), Some(group)) => {
                    self.error(
                        "config::assignee",
                        format!("app instance '{name}' has both a user and a group"),
                        file,
                        &group.at,
                        "second assignee",
                    )
                    .help = Some(
                        "an app instance belongs to one user (single licence) or one group (group licence); keep one"
                            .to_owned(),
                    );
                }
                (None, None) => {
                    self.error(
                        "config::assignee",
                        format!("app instance '{name}' has neither a user nor a group"),
                        file,
                        &declared.name.at,
                        "no assignee",
                    )
                    .help = Some("add `user: NAME` or `group: NAME`".to_owned());
                }
                (Some(one), None) | (None, Some(one)) => self.plain_text(file, one),
            }
            let Some(destination) = &spec.destination else {
                continue;
            };
            self.name(file, destination, "destination");
            let pool = self
                .config
                .app_configs
                .get(&spec.app_config.value)
                .and_then(|app_config| {
                    let pool = &app_config.spec.pool.value;
                    self.config.pools.get(pool).map(|p| (pool, p))
                });
            if let Some((pool_name, pool)) = pool
                && !pool
                    .spec
                    .members
                    .iter()
                    .any(|m| m.value == destination.value)
            {
                let members: Vec<&str> =
                    pool.spec.members.iter().map(|m| m.value.as_str()).collect();
                let pool_location = self.config.at(pool.file, &pool.name.at);
                let diagnostic = self.error(
                    "config::destination_not_member",
                    format!(
                        "app instance '{name}' uses destination '{}', which is not a member of pool '{pool_name}'",
                        destination.value
                    ),
                    file,
                    &destination.at,
                    "not a member",
                );
                diagnostic.secondary.push(Label::new(
                    pool_location,
                    format!("pool '{pool_name}' declared here"),
                ));
                diagnostic.help = Some(if members.is_empty() {
                    format!("pool '{pool_name}' has no members")
                } else {
                    format!("members of '{pool_name}': {}", members.join(", "))
                });
            }
        }
    }

    fn destinations(&mut self) {
        for declared in self.config.destinations.values() {
            let file = declared.file;
            self.name(file, &declared.name, "destination");
            if let Some(maintenance) = &declared.spec.maintenance {
                for text in maintenance
                    .notice_de
                    .iter()
                    .chain(&maintenance.notice_en)
                    .chain(&maintenance.allowed_groups)
                {
                    self.plain_text(file, text);
                }
            }
        }
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
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a String>) -> Option<&'a str> {
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

    const HEADER: &str = "stack: s\n";

    /// Loads `yaml` (one file, `stack` prepended) and asserts that a
    /// diagnostic with `code` underlines exactly `underlined`.
    #[track_caller]
    fn check(yaml: &str, code: &str, underlined: &str) {
        check_files(vec![format!("{HEADER}{yaml}")], code, underlined);
    }

    #[track_caller]
    fn check_files(files: Vec<String>, code: &str, underlined: &str) {
        let files = files
            .into_iter()
            .enumerate()
            .map(|(i, text)| (format!("f{i}.yaml"), text))
            .collect();
        let rejected = match super::super::load_text(files) {
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
    fn valid(yaml: &str) {
        let files = vec![("ok.yaml".to_owned(), format!("{HEADER}{yaml}"))];
        if let Err(rejected) = super::super::load_text(files) {
            panic!("expected valid, got {:#?}", rejected.items);
        }
    }

    const POOL: &str = "pools:\n  p:\n    members: [d1, d2]\n";

    #[test]
    fn dangling_pool_reference() {
        check(
            &format!("{POOL}app_configs:\n  a: {{pool: q, type: desktop, protocol: rdp}}\n"),
            "config::dangling_reference",
            "q",
        );
    }

    #[test]
    fn dangling_app_config_reference() {
        check(
            "app_instances:\n  i: {app_config: nope, user: u}\n",
            "config::dangling_reference",
            "nope",
        );
    }

    #[test]
    fn instance_destination_outside_pool() {
        check(
            &format!(
                "{POOL}app_configs:\n  a: {{pool: p, type: desktop, protocol: rdp}}\napp_instances:\n  i: {{app_config: a, user: u, destination: d9}}\n"
            ),
            "config::destination_not_member",
            "d9",
        );
    }

    #[test]
    fn instance_with_both_user_and_group() {
        check(
            "app_instances:\n  i: {app_config: a, user: u, group: g}\n",
            "config::assignee",
            "g",
        );
    }

    #[test]
    fn instance_with_neither_user_nor_group() {
        check(
            "app_instances:\n  inst: {app_config: a}\n",
            "config::assignee",
            "inst",
        );
    }

    #[test]
    fn sticky_period_below_one_minute() {
        let lb = "    load_balancing: {enabled: true, sticky_sessions: 30s}\n";
        check(&format!("{POOL}{lb}"), "config::sticky_period", "30s");
        let lb = "    load_balancing: {enabled: true, sticky_sessions: 90s}\n";
        check(&format!("{POOL}{lb}"), "config::sticky_period", "90s");
        valid(&format!(
            "{POOL}    load_balancing: {{enabled: true, sticky_sessions: 0}}\n"
        ));
        valid(&format!(
            "{POOL}    load_balancing: {{enabled: true, sticky_sessions: 1}}\n"
        ));
    }

    #[test]
    fn invalid_durations() {
        let lb = "    load_balancing: {enabled: true, grace_period: 10x}\n";
        check(&format!("{POOL}{lb}"), "config::duration", "10x");
        let lb = "    load_balancing: {enabled: true, sticky_sessions: -5}\n";
        check(&format!("{POOL}{lb}"), "config::duration", "-5");
        let drain = "    drain: {sessions: wait, timeout: 1.5}\n";
        check(&format!("{POOL}{drain}"), "config::duration", "1.5");
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
    fn destination_in_two_load_balanced_pools() {
        let lb = "load_balancing: {enabled: true}";
        check(
            &format!("pools:\n  a: {{{lb}, members: [d1]}}\n  b: {{{lb}, members: [d2, d1]}}\n"),
            "config::load_balanced_twice",
            "d1",
        );
        valid(&format!(
            "pools:\n  a: {{{lb}, members: [d1]}}\n  b: {{members: [d1]}}\n"
        ));
    }

    #[test]
    fn min_members_above_member_count() {
        check(
            &format!("{POOL}    min_members: 3\n"),
            "config::min_members",
            "3",
        );
        valid(&format!("{POOL}    min_members: 2\n"));
    }

    #[test]
    fn drain_timeout_needs_wait_or_disconnect() {
        check(
            &format!("{POOL}    drain: {{timeout: 15m}}\n"),
            "config::drain_timeout",
            "15m",
        );
        check(
            &format!("{POOL}    drain: {{sessions: refuse, timeout: 60}}\n"),
            "config::drain_timeout",
            "60",
        );
        valid(&format!(
            "{POOL}    drain: {{sessions: wait, timeout: 60}}\n"
        ));
    }

    #[test]
    fn inline_secret() {
        check(
            &format!("{POOL}    default_credentials: {{password: hunter2}}\n"),
            "config::inline_secret",
            // Masked at load time, so the snippet does not repeat the secret.
            "*******",
        );
        valid(&format!(
            "{POOL}    default_credentials: {{password: {{file: /run/secret}}}}\n"
        ));
    }

    #[test]
    fn empty_config() {
        let files = vec![("empty.yaml".to_owned(), "# nothing yet\n".to_owned())];
        let rejected = super::super::load_text(files).expect_err("empty");
        assert_eq!(rejected.items[0].code, "config::empty");
        let label = rejected.items[0].primary.as_ref().expect("located");
        assert_eq!((label.location.line, label.location.column), (1, 1));
    }

    #[test]
    fn missing_stack() {
        check_files(
            vec!["pools:\n  live: {}\n".to_owned()],
            "config::missing_stack",
            "live",
        );
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
    fn duplicate_member() {
        check(
            "pools:\n  p: {members: [d1, d2, d1]}\n",
            "config::duplicate_member",
            "d1",
        );
    }

    #[test]
    fn max_delete_percent_over_100() {
        check(
            "safety: {max_delete_percent: 150}\n",
            "config::out_of_range",
            "150",
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
        let rejected = super::super::load_text(files).expect_err("duplicate");
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
        let rejected = super::super::load_text(files).expect_err("invalid");
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
        let rejected = super::super::load_text(files).expect_err("invalid");
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
