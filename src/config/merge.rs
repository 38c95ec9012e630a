//! Parsing and merging: each file's text through the YAML front end, then
//! one `Config` keyed by name that remembers where every value was written.
//! A name declared in two files is kept once and the clash recorded, so that
//! validation reports it together with every other problem.

use std::collections::BTreeMap;

use super::locate::locate_in;
use super::spec::{
    self, AppConfigSpec, AppInstanceSpec, DestinationSpec, PoolSpec, SafetySection, Sp,
};
use super::{Diagnostics, shape, yaml};
use crate::address::Kind;
use crate::diagnostic::{Diagnostic, SourceLocation, SourceMap};

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
    /// Findings of `validate` that do not make the config invalid.
    pub warnings: Vec<Diagnostic>,
    pub stack: Option<InFile<String>>,
    pub broker_url: Option<InFile<String>>,
    pub safety: Option<InFile<SafetySection>>,
    pub pools: BTreeMap<String, Declared<PoolSpec>>,
    pub app_configs: BTreeMap<String, Declared<AppConfigSpec>>,
    pub app_instances: BTreeMap<String, Declared<AppInstanceSpec>>,
    pub destinations: BTreeMap<String, Declared<DestinationSpec>>,
}

/// Parses and merges already-read files, given as (display name, text) in
/// merge order. Pure: used by `load`, tests and benchmarks.
pub fn merge(files: Vec<(String, String)>) -> Result<Config, Diagnostics> {
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
            // Every shape problem of the file when the schema can name
            // them, else the parser's first error.
            Err(error) => match shape::problems(&mut config.sources, index) {
                Some(found) => items.extend(found),
                None => items.push(yaml::diagnostic(&error, &config.sources, index)),
            },
        }
    }
    let mut conflicts = Vec::new();
    for (index, file) in parsed {
        merge_file(&mut config, index, file, &mut conflicts);
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
fn mask_inline_secrets(sources: &mut SourceMap, file: usize, parsed: &spec::ConfigFile) {
    let inline = parsed
        .pools
        .0
        .iter()
        .filter_map(|(_, pool)| pool.default_credentials.as_ref()?.password.as_ref())
        .filter(|password| password.value == spec::SecretValue::Inline);
    let spans: Vec<SourceLocation> = inline.map(|p| locate_in(sources, file, &p.at)).collect();
    for span in spans {
        sources.mask(file, span.offset, span.len);
    }
}

fn merge_file(
    config: &mut Config,
    file: usize,
    parsed: spec::ConfigFile,
    items: &mut Vec<Diagnostic>,
) {
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
    resources: spec::Resources<T>,
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
