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

/// The merged config of one file or directory. Names are unique across files
/// (merging rejects duplicates), so the maps are keyed by name.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub sources: SourceMap,
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
            Ok(file) => parsed.push((index, file)),
            Err(error) => items.push(yaml::diagnostic(&error, &config.sources, index)),
        }
    }
    for (index, file) in parsed {
        merge(&mut config, index, file, &mut items);
    }
    if items.is_empty() {
        Ok(config)
    } else {
        Err(Diagnostics {
            sources: config.sources,
            items,
        })
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
