//! Config loading: YAML files → one merged, typed `Config` that remembers where
//! every value was written. Reading files happens in `load` only; everything
//! else works on text already in memory. Knows nothing of HTTP or plans.

mod desired;
pub mod file;
mod yaml;

use std::collections::BTreeMap;
use std::path::Path;

use serde_saphyr::Location;

pub use desired::{SecretRef, to_desired};
pub use file::{AppConfigSpec, AppInstanceSpec, DestinationSpec, PoolSpec, SafetySection, Sp};

use crate::desired::{Address, Kind};
use crate::diagnostic::{Diagnostic, SourceLocation, SourceMap};

/// Everything that went wrong while loading, with the text of the files read
/// so far so that the diagnostics can be shown with snippets.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub sources: SourceMap,
    pub items: Vec<Diagnostic>,
}

/// A value of a top-level section together with the file it came from.
#[derive(Debug, Clone)]
pub struct InFile<T> {
    pub file: usize,
    pub value: Sp<T>,
}

/// A named resource as declared: the file, the located name, its spec.
#[derive(Debug, Clone)]
pub struct Declared<T> {
    pub file: usize,
    pub name: Sp<String>,
    pub spec: T,
}

/// The merged config of one file or directory, keyed by name. A name declared
/// again in a later file keeps its first declaration here and the clash goes to
/// `conflicts`.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub sources: SourceMap,
    /// Names (and `stack`, `broker.url`, `safety`) declared in more than one
    /// file. Kept rather than returned as an error so that `validate` reports
    /// them together with every other problem.
    pub conflicts: Vec<Diagnostic>,
    pub stack: Option<InFile<String>>,
    pub broker_url: Option<InFile<String>>,
    pub safety: Option<InFile<SafetySection>>,
    pub pools: BTreeMap<String, Declared<PoolSpec>>,
    pub app_configs: BTreeMap<String, Declared<AppConfigSpec>>,
    pub app_instances: BTreeMap<String, Declared<AppInstanceSpec>>,
    pub destinations: BTreeMap<String, Declared<DestinationSpec>>,
}

/// Reads a config file, or every `*.yaml`/`*.yml` file of a directory (not
/// recursive) in name order, and merges them.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    let io_error = |message: String| Diagnostics {
        sources: SourceMap::default(),
        items: vec![Diagnostic::error("config::io", message)],
    };
    let files = if path.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| io_error(format!("cannot read directory {}: {e}", path.display())))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| io_error(format!("cannot read directory {}: {e}", path.display())))?;
            let file = entry.path();
            let is_yaml = file
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml");
            if is_yaml && file.is_file() {
                files.push(file);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(io_error(format!(
                "{} contains no *.yaml or *.yml files",
                path.display()
            )));
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut sources = Vec::with_capacity(files.len());
    for file in files {
        let bytes = std::fs::read(&file)
            .map_err(|e| io_error(format!("cannot read {}: {e}", file.display())))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| io_error(format!("{} is not UTF-8 text", file.display())))?;
        sources.push((file.display().to_string(), text));
    }
    load_sources(sources)
}

/// Parses and merges already-read files, given as (display name, text) in
/// merge order. Pure: used by `load`, tests and benchmarks.
pub fn load_sources(files: Vec<(String, String)>) -> Result<Config, Diagnostics> {
    let mut config = Config::default();
    let mut parsed = Vec::with_capacity(files.len());
    let mut items = Vec::new();
    for (name, text) in files {
        let index = config.sources.add(name, text);
        match yaml::parse(config.sources.text(index)) {
            Ok(file) => {
                mask_inline_secrets(&mut config.sources, index, &file);
                parsed.push((index, file));
            }
            Err(error) => items.push(yaml::diagnostic(&error, &config.sources, index)),
        }
    }
    let mut conflicts = Vec::new();
    for (index, file) in parsed {
        merge(&mut config, index, file, &mut conflicts);
    }
    if items.is_empty() {
        config.conflicts = conflicts;
        Ok(config)
    } else {
        items.extend(conflicts);
        Err(Diagnostics {
            sources: config.sources,
            items,
        })
    }
}

/// Overwrites inline secrets in the kept source text, so that the snippet of
/// the diagnostic that reports them (on a terminal or in a CI log) does not
/// repeat the secret.
fn mask_inline_secrets(sources: &mut SourceMap, file: usize, parsed: &file::ConfigFile) {
    let inline = parsed
        .pools
        .0
        .iter()
        .filter_map(|(_, pool)| pool.default_credentials.as_ref()?.password.as_ref())
        .filter(|password| password.value == file::SecretValue::Inline);
    let spans: Vec<SourceLocation> = inline.map(|p| locate_in(sources, file, &p.at)).collect();
    for span in spans {
        sources.mask(file, span.offset, span.len);
    }
}

fn merge(config: &mut Config, file: usize, parsed: file::ConfigFile, items: &mut Vec<Diagnostic>) {
    let sources = &config.sources;
    merge_section(
        sources,
        &mut config.stack,
        file,
        parsed.stack,
        "stack",
        items,
    );
    let broker_url = parsed.broker.and_then(|broker| broker.value.url);
    merge_section(
        sources,
        &mut config.broker_url,
        file,
        broker_url,
        "broker.url",
        items,
    );
    merge_section(
        sources,
        &mut config.safety,
        file,
        parsed.safety,
        "safety",
        items,
    );
    merge_resources(
        sources,
        &mut config.pools,
        file,
        parsed.pools,
        Kind::Pool,
        items,
    );
    merge_resources(
        sources,
        &mut config.app_configs,
        file,
        parsed.app_configs,
        Kind::AppConfig,
        items,
    );
    merge_resources(
        sources,
        &mut config.app_instances,
        file,
        parsed.app_instances,
        Kind::AppInstance,
        items,
    );
    merge_resources(
        sources,
        &mut config.destinations,
        file,
        parsed.destinations,
        Kind::Destination,
        items,
    );
}

fn merge_section<T>(
    sources: &SourceMap,
    slot: &mut Option<InFile<T>>,
    file: usize,
    value: Option<Sp<T>>,
    key: &str,
    items: &mut Vec<Diagnostic>,
) {
    let Some(value) = value else { return };
    match slot {
        Some(first) => items.push(
            Diagnostic::error(
                "config::duplicate_name",
                format!("`{key}` is set in two files"),
            )
            .with_label(locate_in(sources, file, &value.at), "set again here")
            .with_secondary(
                locate_in(sources, first.file, &first.value.at),
                "first set here",
            )
            .with_help(format!("set `{key}` in one file only")),
        ),
        None => *slot = Some(InFile { file, value }),
    }
}

fn merge_resources<T>(
    sources: &SourceMap,
    map: &mut BTreeMap<String, Declared<T>>,
    file: usize,
    resources: file::Resources<T>,
    kind: Kind,
    items: &mut Vec<Diagnostic>,
) {
    for (name, spec) in resources.0 {
        match map.get(&name.value) {
            Some(first) => items.push(
                Diagnostic::error(
                    "config::duplicate_name",
                    format!("{} '{}' is declared twice", kind_noun(kind), name.value),
                )
                .with_label(locate_in(sources, file, &name.at), "declared again here")
                .with_secondary(
                    locate_in(sources, first.file, &first.name.at),
                    "first declared here",
                )
                .with_help(
                    "a name is declared once across all files of a config; rename or remove one",
                ),
            ),
            None => {
                map.insert(name.value.clone(), Declared { file, name, spec });
            }
        }
    }
}

/// The English noun for a kind, as used in messages ("app config 'x'").
pub fn kind_noun(kind: Kind) -> &'static str {
    match kind {
        Kind::Pool => "pool",
        Kind::AppConfig => "app config",
        Kind::AppInstance => "app instance",
        Kind::Destination => "destination",
    }
}

/// Converts a parser location in file `file` into a diagnostic location.
pub(crate) fn locate_in(sources: &SourceMap, file: usize, at: &Location) -> SourceLocation {
    let span = at.span();
    let text = sources.text(file);
    // Scanner errors carry no byte offsets; fall back to line and column.
    let offset = span
        .byte_offset()
        .and_then(|o| usize::try_from(o).ok())
        .filter(|o| text.is_char_boundary(*o))
        .unwrap_or_else(|| offset_of(text, at.line(), at.column()));
    let len = span
        .byte_len()
        .and_then(|l| usize::try_from(l).ok())
        .filter(|l| text.is_char_boundary(offset.saturating_add(*l)))
        .unwrap_or_else(|| {
            let chars = usize::try_from(span.len()).unwrap_or(0);
            text[offset..].chars().take(chars).map(char::len_utf8).sum()
        });
    SourceLocation {
        file: sources.name(file).to_owned(),
        line: u32::try_from(at.line()).unwrap_or(u32::MAX),
        column: u32::try_from(at.column()).unwrap_or(u32::MAX),
        offset,
        len,
    }
}

/// Byte offset of a 1-based line and character column, clamped to the text.
fn offset_of(text: &str, line: u64, column: u64) -> usize {
    let skip = usize::try_from(line.saturating_sub(1)).unwrap_or(usize::MAX);
    let line_start = if skip == 0 {
        0
    } else {
        text.match_indices('\n')
            .nth(skip - 1)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    let skip = usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX);
    line_start
        + text[line_start..]
            .chars()
            .take_while(|c| *c != '\n')
            .take(skip)
            .map(char::len_utf8)
            .sum::<usize>()
}

impl Config {
    /// Location of a value written in file `file`.
    pub fn at(&self, file: usize, at: &Location) -> SourceLocation {
        locate_in(&self.sources, file, at)
    }

    /// Where a resource is declared (its name), if the config declares it.
    pub fn locate(&self, address: &Address) -> Option<SourceLocation> {
        let found = match address.kind {
            Kind::Pool => self.pools.get(&address.name).map(|d| (d.file, &d.name.at)),
            Kind::AppConfig => self
                .app_configs
                .get(&address.name)
                .map(|d| (d.file, &d.name.at)),
            Kind::AppInstance => self
                .app_instances
                .get(&address.name)
                .map(|d| (d.file, &d.name.at)),
            Kind::Destination => self
                .destinations
                .get(&address.name)
                .map(|d| (d.file, &d.name.at)),
        };
        found.map(|(file, at)| self.at(file, at))
    }

    /// Where `pool` lists `member` in its `members`.
    pub fn locate_member(&self, pool: &str, member: &str) -> Option<SourceLocation> {
        let declared = self.pools.get(pool)?;
        let entry = declared.spec.members.iter().find(|m| m.value == member)?;
        Some(self.at(declared.file, &entry.at))
    }

    /// A diagnostic about a resource, underlining its declaration when the
    /// config has one. For findings made later (plan time) about the config.
    pub fn diagnostic(
        &self,
        code: &'static str,
        address: &Address,
        message: impl Into<String>,
    ) -> Diagnostic {
        let diagnostic = Diagnostic::error(code, message);
        match self.locate(address) {
            Some(location) => diagnostic.with_label(location, "declared here"),
            None => diagnostic,
        }
    }

    /// Number of declared resources of every kind.
    pub fn resource_count(&self) -> usize {
        self.pools.len()
            + self.app_configs.len()
            + self.app_instances.len()
            + self.destinations.len()
    }
}

/// JSON Schema (draft-07) of one config file, for editors and other tools.
pub fn json_schema() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<file::ConfigFile>()
}

#[cfg(test)]
mod tests {
    use secrecy::{ExposeSecret, SecretString};

    use super::*;
    use crate::validate::validate;

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
    fn a_config_larger_than_the_parser_default_budget_loads() {
        // 300,000 member entries: more nodes than serde-saphyr's default
        // budget of 250,000, which rejected DESIGN.md's 10k-pool config as
        // "too complex". The alias bomb in tests/invalid still is.
        let members: Vec<String> = (0..300_000).map(|i| format!("d{i}")).collect();
        let text = format!(
            "stack: s\npools:\n  big:\n    members: [{}]\n",
            members.join(", ")
        );
        let config = load_sources(files(&[&text])).expect("loads");
        assert_eq!(config.pools["big"].spec.members.len(), 300_000);
    }

    #[test]
    fn files_merge_into_one_config() {
        let config = load_sources(files(&[POOLS, APPS])).expect("loads");
        assert_eq!(config.stack.as_ref().map(|s| s.file), Some(0));
        assert_eq!(config.pools["live"].file, 0);
        assert_eq!(config.app_configs["desk"].file, 1);
    }

    #[test]
    fn locate_points_at_the_declaration_and_the_member_entry() {
        let config = load_sources(files(&[POOLS, APPS])).expect("loads");
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
        let config = load_sources(files(&[POOLS])).expect("loads");
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
        let config = load_sources(files(&["", "# just a comment\n", POOLS])).expect("loads");
        assert_eq!(config.pools.len(), 1);
    }

    #[test]
    fn an_empty_section_is_empty_not_a_type_error() {
        let config = load_sources(files(&["stack: s\npools:\napp_configs: ~\n"])).expect("loads");
        assert!(config.pools.is_empty() && config.app_configs.is_empty());
    }

    #[test]
    fn a_parse_error_in_each_file_is_reported() {
        let rejected = load_sources(files(&["pools: [\n", "bogus: 1\n"])).expect_err("invalid");
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
        let config = load_sources(files(&[text])).expect("loads");
        let kept = config.sources.text(0);
        assert!(!kept.contains("Wint"), "{kept}");
        assert_eq!(kept.len(), text.len());
        assert!(kept.contains("{password: ***********}"), "{kept}");
    }

    #[test]
    fn offsets_without_byte_info_come_from_line_and_column() {
        assert_eq!(offset_of("ab\ncdé\nf", 2, 3), 5);
        assert_eq!(offset_of("ab\ncdé\nf", 3, 1), 8);
        assert_eq!(offset_of("ab", 9, 9), 2);
    }

    #[test]
    fn a_missing_secret_is_located_at_its_reference() {
        let text = "stack: s\npools:\n  m:\n    default_credentials: {password: {env: NOPE}}\n";
        let config = validate(load_sources(files(&[text])).expect("loads")).expect("valid");
        let missing = |_: &SecretRef| Err("the environment variable NOPE is not set".to_owned());
        let diagnostics = to_desired(&config, &missing).expect_err("unresolved");
        assert_eq!(diagnostics[0].code, "config::secret_unavailable");
        let location = &diagnostics[0].primary.as_ref().expect("located").location;
        assert_eq!((location.line, location.column), (4, 37));
        let found = |_: &SecretRef| Ok(SecretString::from("s3cret".to_owned()));
        let desired = to_desired(&config, &found).expect("resolved");
        let password = desired.pools["m"].password.as_ref().expect("password");
        assert_eq!(password.value.expose_secret(), "s3cret");
    }

    #[test]
    fn secret_files_lose_their_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("poolform-secret-{}", std::process::id()));
        std::fs::write(&dir, "pa55\n").expect("write");
        let secret = SecretRef::File(dir.clone()).resolve().expect("readable");
        std::fs::remove_file(&dir).expect("cleanup");
        assert_eq!(secret.expose_secret(), "pa55");
    }
}
