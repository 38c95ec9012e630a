//! Live state → config YAML for `poolform export`: which live resources a
//! stack's config declares and how each value is written so that loading the
//! text gives back exactly the live value. Pure: the command does the IO.
//!
//! The YAML is written by hand rather than serialised: the output carries
//! comments (passwords to set, resources still to import) and must quote
//! free text so that neither YAML 1.1 tools nor poolform's own
//! `ambiguous_scalar` check read it differently.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::address::{Address, Kind};
use crate::contract::LiveState;
use crate::contract::labels::owner;
use crate::contract::wire::{
    AppConfig, AppInstance, AppType, Destination, Labels, LoadBalancing, Pool, Protocol,
};

/// Which live pools, app configs and app instances go into the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only those labelled `poolform.stack: <stack>`.
    Stack,
    /// Every one; those not owned by the stack are marked for `poolform import`.
    All,
}

/// The exported config: the text of each file, without the schema line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// `stack:` and `pools:`.
    pub pools: String,
    /// `app_configs:` and `app_instances:`.
    pub apps: String,
    /// `destinations:`, only when a destination in scope has maintenance on.
    pub destinations: Option<String>,
    /// Exported resources the stack does not own yet, with their owner: a
    /// plan reports them as `plan::not_owned` until they are imported.
    pub not_owned: Vec<(Address, Option<String>)>,
}

/// A resource of the stack that uses one the stack does not own: the config
/// would not validate (a dangling reference), so export refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dangling {
    pub from: Address,
    pub to: Address,
    /// Owner of `to`; `None` when it is unowned or does not exist.
    pub owner: Option<String>,
}

pub const POOLS_FILE: &str = "pools.yaml";
pub const APPS_FILE: &str = "apps.yaml";
pub const DESTINATIONS_FILE: &str = "destinations.yaml";

impl Files {
    /// All sections as one YAML document, for stdout.
    pub fn document(&self) -> String {
        let mut text = self.pools.clone();
        text.push('\n');
        text.push_str(&self.apps);
        if let Some(destinations) = &self.destinations {
            text.push('\n');
            text.push_str(destinations);
        }
        text
    }

    /// (file name, content) to write into a directory; each file starts with
    /// the editor's schema line when `schema` (a path relative to the
    /// directory) is given.
    pub fn named(&self, schema: Option<&str>) -> Vec<(&'static str, String)> {
        let header = schema
            .map(|path| format!("# yaml-language-server: $schema={path}\n"))
            .unwrap_or_default();
        let mut files = vec![
            (POOLS_FILE, format!("{header}{}", self.pools)),
            (APPS_FILE, format!("{header}{}", self.apps)),
        ];
        if let Some(destinations) = &self.destinations {
            files.push((DESTINATIONS_FILE, format!("{header}{destinations}")));
        }
        files
    }
}

/// The environment variable an exported config reads a pool's password
/// from (and `poolform import` expects it in): `POOLFORM_<POOL>_PASSWORD`,
/// the pool name upper-cased with `.` and `-` as `_`.
pub fn password_env(pool: &str) -> String {
    let name: String = pool
        .chars()
        .map(|c| match c {
            '.' | '-' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    format!("POOLFORM_{name}_PASSWORD")
}

/// The config that declares the live resources in `scope` as they are, so
/// that `plan` on it shows no changes.
pub fn to_config_yaml(live: &LiveState, stack: &str, scope: Scope) -> Result<Files, Vec<Dangling>> {
    let selected = Selection::of(live, stack, scope);
    let dangling = selected.dangling(live);
    if !dangling.is_empty() {
        return Err(dangling);
    }
    let mut notes = Ownership {
        stack,
        not_owned: Vec::new(),
    };
    let rotation = out_of_rotation(live, stack);
    let pools = pools_file(stack, &selected, &rotation, &mut notes);
    let apps = apps_file(stack, &selected, &mut notes);
    let destinations = destinations_file(&selected.destinations(live, scope, &rotation));
    Ok(Files {
        pools,
        apps,
        destinations,
        not_owned: notes.not_owned,
    })
}

/// Pool → the destinations the stack's maintenance took out of it: the
/// config lists them as members still (maintenance is what takes them out),
/// so the export writes them back.
type Rotation<'a> = BTreeMap<&'a str, Vec<&'a str>>;

fn out_of_rotation<'a>(live: &'a LiveState, stack: &str) -> Rotation<'a> {
    let mut rotation = Rotation::new();
    for d in &live.destinations {
        let m = &d.maintenance;
        if !m.enabled || m.owner.as_deref() != Some(stack) {
            continue;
        }
        for pool in &m.out_of_rotation {
            rotation.entry(pool.as_str()).or_default().push(&d.name);
        }
    }
    rotation
}

/// The live pools, app configs and app instances a scope takes in.
struct Selection<'a> {
    pools: Vec<&'a Pool>,
    app_configs: Vec<&'a AppConfig>,
    app_instances: Vec<&'a AppInstance>,
}

impl<'a> Selection<'a> {
    fn of(live: &'a LiveState, stack: &str, scope: Scope) -> Selection<'a> {
        let in_scope = |labels: &Labels| scope == Scope::All || owner(labels) == Some(stack);
        Selection {
            pools: live.pools.iter().filter(|p| in_scope(&p.labels)).collect(),
            app_configs: live
                .app_configs
                .iter()
                .filter(|c| in_scope(&c.labels))
                .collect(),
            app_instances: live
                .app_instances
                .iter()
                .filter(|i| in_scope(&i.labels))
                .collect(),
        }
    }

    /// References from a selected resource to one left out: the config would
    /// not validate.
    fn dangling(&self, live: &LiveState) -> Vec<Dangling> {
        let pool_names: BTreeSet<&str> = self.pools.iter().map(|p| p.name.as_str()).collect();
        let config_names: BTreeSet<&str> =
            self.app_configs.iter().map(|c| c.name.as_str()).collect();
        let pools = self
            .app_configs
            .iter()
            .filter(|c| !pool_names.contains(c.pool.as_str()))
            .map(|c| Dangling {
                from: Address::new(Kind::AppConfig, c.name.as_str()),
                to: Address::new(Kind::Pool, c.pool.as_str()),
                owner: owner_of(&live.pools, &c.pool, |p| (&p.name, &p.labels)),
            });
        let app_configs = self
            .app_instances
            .iter()
            .filter(|i| !config_names.contains(i.app_config.as_str()))
            .map(|i| Dangling {
                from: Address::new(Kind::AppInstance, i.name.as_str()),
                to: Address::new(Kind::AppConfig, i.app_config.as_str()),
                owner: owner_of(&live.app_configs, &i.app_config, |c| (&c.name, &c.labels)),
            });
        pools.chain(app_configs).collect()
    }

    /// Destinations carry no stack label: a stack's export declares the ones
    /// in maintenance that its pools or instances use, so that two stacks'
    /// exports do not both claim every destination in maintenance.
    fn destinations(
        &self,
        live: &'a LiveState,
        scope: Scope,
        rotation: &Rotation,
    ) -> Vec<&'a Destination> {
        let used: BTreeSet<&str> = self
            .pools
            .iter()
            .flat_map(|p| {
                let out = rotation.get(p.name.as_str()).into_iter().flatten().copied();
                p.members.iter().map(String::as_str).chain(out)
            })
            .chain(
                self.app_instances
                    .iter()
                    .filter_map(|i| i.destination.as_deref()),
            )
            .collect();
        live.destinations
            .iter()
            .filter(|d| d.maintenance.enabled)
            .filter(|d| scope == Scope::All || used.contains(d.name.as_str()))
            .collect()
    }
}

/// The owner of the live resource called `name`, if it exists and has one.
fn owner_of<T>(
    resources: &[T],
    name: &str,
    identity: impl Fn(&T) -> (&String, &Labels),
) -> Option<String> {
    resources
        .iter()
        .map(identity)
        .find(|(n, _)| *n == name)
        .and_then(|(_, labels)| owner(labels))
        .map(str::to_owned)
}

/// Exported resources the stack does not own, noted in the YAML where they
/// are declared and collected for the command's closing hint.
struct Ownership<'a> {
    stack: &'a str,
    not_owned: Vec<(Address, Option<String>)>,
}

impl Ownership<'_> {
    /// Writes the comment on how to adopt a resource the stack does not own.
    fn note(&mut self, out: &mut String, kind: Kind, name: &str, labels: &Labels) {
        let stack = self.stack;
        let owner = owner(labels);
        if owner == Some(stack) {
            return;
        }
        let address = Address::new(kind, name);
        let _ = match owner {
            None => writeln!(
                out,
                "  # Unowned: adopt it with `poolform import --stack {stack} {address}`."
            ),
            Some(other) => writeln!(
                out,
                "  # Owned by stack {other}: take it over with `poolform import --stack {stack} --force {address}`."
            ),
        };
        self.not_owned.push((address, owner.map(str::to_owned)));
    }
}

/// `pools.yaml`: the stack and its pools.
fn pools_file(
    stack: &str,
    selected: &Selection,
    rotation: &Rotation,
    notes: &mut Ownership,
) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Pools of stack {stack}, exported from the live broker by `poolform export`.\n\
         # Drain policy and min_members are not stored on the broker: the defaults\n\
         # (refuse to remove a member with active sessions; no minimum) apply until set here."
    );
    let _ = writeln!(text, "stack: {}\n", scalar(stack));
    section_key(&mut text, "pools", selected.pools.is_empty());
    for pool in &selected.pools {
        notes.note(&mut text, Kind::Pool, &pool.name, &pool.labels);
        let out = rotation
            .get(pool.name.as_str())
            .map_or(&[][..], Vec::as_slice);
        write_pool(&mut text, pool, out);
    }
    text
}

/// `apps.yaml`: app configs, then app instances.
fn apps_file(stack: &str, selected: &Selection, notes: &mut Ownership) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# App configs and app instances of stack {stack}, exported by `poolform export`."
    );
    section_key(&mut text, "app_configs", selected.app_configs.is_empty());
    for config in &selected.app_configs {
        notes.note(&mut text, Kind::AppConfig, &config.name, &config.labels);
        write_app_config(&mut text, config);
    }
    text.push('\n');
    section_key(
        &mut text,
        "app_instances",
        selected.app_instances.is_empty(),
    );
    for instance in &selected.app_instances {
        notes.note(
            &mut text,
            Kind::AppInstance,
            &instance.name,
            &instance.labels,
        );
        write_app_instance(&mut text, instance);
    }
    text
}

/// `destinations.yaml`, when any destination in scope is in maintenance.
fn destinations_file(destinations: &[&Destination]) -> Option<String> {
    if destinations.is_empty() {
        return None;
    }
    let mut text = String::from(
        "# Destinations in maintenance mode, exported by `poolform export`. Delete an\n\
         # entry (or set `enabled: false`) to switch maintenance off with the next apply.\n\
         destinations:\n",
    );
    for destination in destinations {
        write_destination(&mut text, destination);
    }
    Some(text)
}

/// A top-level section's key: `{}` when it is empty, so the file says so
/// rather than leaving the key null.
fn section_key(out: &mut String, key: &str, empty: bool) {
    let _ = writeln!(out, "{key}:{}", if empty { " {}" } else { "" });
}

/// A pool with its live members and `out_of_rotation`, the members its
/// stack's maintenance took out of it.
fn write_pool(out: &mut String, pool: &Pool, out_of_rotation: &[&str]) {
    let _ = writeln!(out, "  {}:", scalar(&pool.name));
    let lb = pool.load_balancing;
    // Without the block the pool does not load-balance and has no sticky
    // period: the broker's defaults, so the block is only written when set.
    if lb != LoadBalancing::default() {
        let _ = writeln!(
            out,
            "    load_balancing:\n      enabled: {}\n      sticky_sessions: {}\n      grace_period: {}",
            lb.enabled,
            minutes(lb.sticky_sessions_minutes),
            seconds(lb.grace_period_seconds)
        );
    }
    let credentials = &pool.default_credentials;
    if credentials.username.is_some() || credentials.password_set {
        out.push_str("    default_credentials:\n");
        if let Some(username) = &credentials.username {
            let _ = writeln!(out, "      username: {}", scalar(username));
        }
        if credentials.password_set {
            let var = password_env(&pool.name);
            let _ = writeln!(
                out,
                "      # The broker never returns passwords: set this variable to the pool's\n      \
                 # current password before running plan or apply.\n      \
                 password: {{ env: {var} }}"
            );
        }
    }
    let members: BTreeSet<&str> = pool
        .members
        .iter()
        .map(String::as_str)
        .chain(out_of_rotation.iter().copied())
        .collect();
    write_list(out, "members", members);
    write_labels(out, &pool.labels);
}

fn write_app_config(out: &mut String, config: &AppConfig) {
    let _ = writeln!(out, "  {}:", scalar(&config.name));
    let _ = writeln!(out, "    pool: {}", scalar(&config.pool));
    let _ = writeln!(out, "    type: {}", app_type_name(config.app_type));
    let _ = writeln!(out, "    protocol: {}", protocol_name(config.protocol));
    // The three switches default to false; only those on are written.
    for (key, on) in [
        ("admin_session", config.admin_session),
        (
            "keep_credentials_on_destination_change",
            config.keep_credentials_on_destination_change,
        ),
        ("allow_destination_change", config.allow_destination_change),
    ] {
        if on {
            let _ = writeln!(out, "    {key}: true");
        }
    }
    write_labels(out, &config.labels);
}

fn write_app_instance(out: &mut String, instance: &AppInstance) {
    let _ = writeln!(out, "  {}:", scalar(&instance.name));
    let _ = writeln!(out, "    app_config: {}", scalar(&instance.app_config));
    for (key, value) in [
        ("user", &instance.user),
        ("group", &instance.group),
        ("destination", &instance.destination),
    ] {
        if let Some(value) = value {
            let _ = writeln!(out, "    {key}: {}", scalar(value));
        }
    }
    write_labels(out, &instance.labels);
}

fn write_destination(out: &mut String, destination: &Destination) {
    let maintenance = &destination.maintenance;
    let _ = writeln!(
        out,
        "  {}:\n    maintenance:\n      enabled: {}",
        scalar(&destination.name),
        maintenance.enabled
    );
    for (key, value) in [
        ("notice_de", &maintenance.notice_de),
        ("notice_en", &maintenance.notice_en),
    ] {
        if let Some(value) = value {
            let _ = writeln!(out, "      {key}: {}", scalar(value));
        }
    }
    if !maintenance.allowed_groups.is_empty() {
        out.push_str("      allowed_groups:\n");
        for group in &maintenance.allowed_groups {
            let _ = writeln!(out, "        - {}", scalar(group));
        }
    }
}

fn write_list(out: &mut String, key: &str, items: BTreeSet<&str>) {
    if items.is_empty() {
        let _ = writeln!(out, "    {key}: []");
        return;
    }
    let _ = writeln!(out, "    {key}:");
    for item in items {
        let _ = writeln!(out, "      - {}", scalar(item));
    }
}

/// User labels: every `poolform.*` key (stack, secret fingerprints) is
/// poolform's own bookkeeping, which a config may not set.
fn write_labels(out: &mut String, labels: &Labels) {
    let user: Vec<(&String, &String)> = labels
        .iter()
        .filter(|(key, _)| !key.starts_with("poolform."))
        .collect();
    if user.is_empty() {
        return;
    }
    out.push_str("    labels:\n");
    for (key, value) in user {
        let _ = writeln!(out, "      {}: {}", scalar(key), scalar(value));
    }
}

/// How the config spells an app type (the same as the wire).
fn app_type_name(app_type: AppType) -> &'static str {
    match app_type {
        AppType::Desktop => "desktop",
        AppType::RemoteApp => "remote_app",
        AppType::Web => "web",
        AppType::Shell => "shell",
        AppType::PublishedApp => "published_app",
    }
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Rdp => "rdp",
        Protocol::Vnc => "vnc",
    }
}

/// A sticky period as the config writes durations: `10m`, `1h30m`; `0` is off.
fn minutes(total: u32) -> String {
    if total == 0 {
        return "0".to_owned();
    }
    let (hours, minutes) = (total / 60, total % 60);
    let mut text = String::new();
    if hours > 0 {
        let _ = write!(text, "{hours}h");
    }
    if minutes > 0 {
        let _ = write!(text, "{minutes}m");
    }
    text
}

/// A grace period: `30s`, `1m30s`, `2h`; `0` is none.
fn seconds(total: u32) -> String {
    if total == 0 {
        return "0".to_owned();
    }
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    let mut text = String::new();
    for (value, unit) in [(hours, 'h'), (minutes, 'm'), (seconds, 's')] {
        if value > 0 {
            let _ = write!(text, "{value}{unit}");
        }
    }
    text
}

/// A string as a YAML scalar that every YAML reader takes as that string:
/// plain for name-like words, single-quoted for other printable text, and
/// double-quoted with escapes when it holds line breaks or control characters.
pub fn scalar(text: &str) -> String {
    // Words YAML 1.1 (or 1.2) reads as booleans or null when unquoted.
    const RESERVED: [&str; 11] = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "",
    ];
    let plain = text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '/'))
        && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(text));
    if plain {
        return text.to_owned();
    }
    if text.chars().all(is_printable) {
        return format!("'{}'", text.replace('\'', "''"));
    }
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            c if is_printable(c) => quoted.push(c),
            c => {
                let _ = write!(quoted, "\\u{:04X}", u32::from(c));
            }
        }
    }
    quoted.push('"');
    quoted
}

/// Characters YAML lets stand for themselves inside single quotes: no
/// control characters (which includes line breaks), no byte order mark.
fn is_printable(c: char) -> bool {
    !c.is_control() && c != '\u{FEFF}' && !matches!(c, '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::spec::parse_duration;
    use crate::config::{self, lower};
    use crate::contract::labels::STACK_LABEL;
    use crate::contract::wire::{Credentials, Maintenance};

    fn pool(name: &str, stack: Option<&str>) -> Pool {
        Pool {
            name: name.to_owned(),
            load_balancing: LoadBalancing::default(),
            default_credentials: Credentials::default(),
            labels: stack
                .map(|s| Labels::from([(STACK_LABEL.to_owned(), s.to_owned())]))
                .unwrap_or_default(),
            members: Vec::new(),
            revision: 1,
        }
    }

    fn load(files: &Files) -> crate::desired::Desired {
        let sources = files
            .named(None)
            .into_iter()
            .map(|(name, text)| (name.to_owned(), text))
            .collect();
        let config = config::load_text(sources)
            .unwrap_or_else(|d| panic!("{:#?}\n{}", d.items, files.document()));
        lower(config, &|_| Ok("pw".to_owned().into()))
            .expect("secrets resolve")
            .desired
    }

    #[test]
    fn durations_are_written_so_they_parse_back() {
        for total in [0, 1, 59, 60, 61, 90, 3600, 3661, 86_399, u32::MAX] {
            assert_eq!(
                parse_duration(&seconds(total), 1),
                Some(u64::from(total)),
                "{total}s"
            );
            assert_eq!(
                parse_duration(&minutes(total), 60),
                Some(u64::from(total) * 60),
                "{total}m"
            );
        }
    }

    #[test]
    fn free_text_loads_back_as_the_same_string() {
        let texts = [
            "CORP\\svc-maint",
            "it's: #1 \"quoted\"",
            "no",
            "On",
            "123",
            "1.5",
            "- dash",
            "line one\nline two\ttab",
            "  padded  ",
            "{flow}",
            "[list]",
            "&anchor *alias !tag %directive",
            "Wartung bis 18:00 — bitte abmelden",
            "bell\u{7}del\u{7f}",
            "",
        ];
        let mut live = LiveState::default();
        for (i, text) in texts.iter().enumerate() {
            let mut p = pool(&format!("p{i}"), Some("s"));
            p.default_credentials.username = Some((*text).to_owned());
            p.labels.insert("note".to_owned(), (*text).to_owned());
            live.pools.push(p);
        }
        let files = to_config_yaml(&live, "s", Scope::Stack).expect("no dangling references");
        let desired = load(&files);
        for (i, text) in texts.iter().enumerate() {
            let pool = &desired.pools[&format!("p{i}")];
            assert_eq!(pool.username.as_deref(), Some(*text));
            assert_eq!(pool.labels["note"], *text);
        }
    }

    #[test]
    fn stack_scope_leaves_out_other_stacks_and_unowned_resources() {
        let live = LiveState {
            pools: vec![
                pool("mine", Some("s")),
                pool("theirs", Some("t")),
                pool("loose", None),
            ],
            ..LiveState::default()
        };
        let files = to_config_yaml(&live, "s", Scope::Stack).unwrap();
        let desired = load(&files);
        assert_eq!(desired.pools.keys().collect::<Vec<_>>(), ["mine"]);
        assert!(files.not_owned.is_empty());

        let files = to_config_yaml(&live, "s", Scope::All).unwrap();
        assert_eq!(load(&files).pools.len(), 3);
        assert_eq!(
            files.not_owned,
            [
                (Address::new(Kind::Pool, "theirs"), Some("t".to_owned())),
                (Address::new(Kind::Pool, "loose"), None),
            ]
        );
        assert!(files.pools.contains("poolform import --stack s pool/loose"));
    }

    #[test]
    fn an_app_config_on_a_pool_outside_the_stack_is_refused() {
        let live = LiveState {
            pools: vec![pool("shared", Some("t"))],
            app_configs: vec![AppConfig {
                name: "desk".to_owned(),
                pool: "shared".to_owned(),
                app_type: AppType::Desktop,
                protocol: Protocol::Rdp,
                admin_session: false,
                keep_credentials_on_destination_change: false,
                allow_destination_change: false,
                labels: Labels::from([(STACK_LABEL.to_owned(), "s".to_owned())]),
                revision: 2,
            }],
            ..LiveState::default()
        };
        let dangling = to_config_yaml(&live, "s", Scope::Stack).unwrap_err();
        assert_eq!(
            dangling,
            [Dangling {
                from: Address::new(Kind::AppConfig, "desk"),
                to: Address::new(Kind::Pool, "shared"),
                owner: Some("t".to_owned()),
            }]
        );
    }

    #[test]
    fn only_destinations_in_maintenance_that_the_stack_uses_are_declared() {
        let destination = |name: &str, enabled: bool| Destination {
            name: name.to_owned(),
            online: true,
            process_execution_ready: true,
            lb_service_installed: false,
            maintenance: Maintenance {
                enabled,
                notice_de: Some("Wartung: 'heute'".to_owned()),
                notice_en: None,
                allowed_groups: vec!["admins".to_owned(), "yes".to_owned()],
                owner: None,
                out_of_rotation: Vec::new(),
            }
            .into(),
            sessions: Default::default(),
            labels: Labels::new(),
            draining: None,
            lb_service_leftover: None,
            revision: 1,
        };
        let mut mine = pool("mine", Some("s"));
        mine.members = vec!["a".to_owned(), "b".to_owned()];
        let live = LiveState {
            destinations: vec![
                destination("a", true),
                destination("b", false),
                destination("c", true),
            ],
            pools: vec![mine],
            ..LiveState::default()
        };
        let files = to_config_yaml(&live, "s", Scope::Stack).unwrap();
        let desired = load(&files);
        assert_eq!(desired.destinations.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(
            desired.destinations["a"].maintenance,
            *live.destinations[0].maintenance
        );
        let all = load(&to_config_yaml(&live, "s", Scope::All).unwrap());
        assert_eq!(all.destinations.keys().collect::<Vec<_>>(), ["a", "c"]);
    }

    #[test]
    fn a_server_the_stack_took_out_of_rotation_is_written_back_as_a_member() {
        let mut live_pool = pool("live", Some("s"));
        live_pool.load_balancing.enabled = true;
        live_pool.members = vec!["a".to_owned()];
        let mut theirs = pool("theirs", Some("t"));
        theirs.members = vec!["a".to_owned()];
        let mut b = Destination {
            name: "b".to_owned(),
            online: true,
            process_execution_ready: true,
            lb_service_installed: false,
            maintenance: Maintenance {
                enabled: true,
                owner: Some("s".to_owned()),
                out_of_rotation: vec!["live".to_owned()],
                ..Maintenance::default()
            }
            .into(),
            sessions: Default::default(),
            labels: Labels::new(),
            draining: None,
            lb_service_leftover: None,
            revision: 1,
        };
        let a = Destination {
            name: "a".to_owned(),
            maintenance: Default::default(),
            ..b.clone()
        };
        let live = LiveState {
            destinations: vec![a, b.clone()],
            pools: vec![live_pool, theirs],
            ..LiveState::default()
        };
        let desired = load(&to_config_yaml(&live, "s", Scope::Stack).unwrap());
        assert_eq!(
            desired.pools["live"].members,
            ["a", "b"].map(str::to_owned).into()
        );
        assert!(desired.destinations["b"].maintenance.enabled);
        // Another stack's record is not this stack's to act on.
        b.maintenance.owner = Some("t".to_owned());
        let live = LiveState {
            destinations: vec![b],
            ..live
        };
        let desired = load(&to_config_yaml(&live, "s", Scope::Stack).unwrap());
        assert_eq!(
            desired.pools["live"].members,
            ["a"].map(str::to_owned).into()
        );
    }

    #[test]
    fn no_destinations_file_without_maintenance() {
        let live = LiveState {
            pools: vec![pool("mine", Some("s"))],
            ..LiveState::default()
        };
        let files = to_config_yaml(&live, "s", Scope::Stack).unwrap();
        assert_eq!(files.destinations, None);
        let names: Vec<&str> = files.named(None).iter().map(|(n, _)| *n).collect();
        assert_eq!(names, [POOLS_FILE, APPS_FILE]);
    }

    #[test]
    fn password_variables_are_shell_names() {
        assert_eq!(
            password_env("rds.pool-2"),
            "POOLFORM_RDS_POOL_2_PASSWORD".to_owned()
        );
    }
}
