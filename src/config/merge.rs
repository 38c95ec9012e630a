//! Parsing and merging: each file's text through the YAML front end, then
//! one `Config` keyed by name that remembers where every value was written.
//! A name declared in two files is kept once and the clash recorded, so that
//! validation reports it together with every other problem.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::locate::{locate_at, locate_range};
use super::spec::{
    self, AppConfigSpec, AppInstanceSpec, DestinationSpec, PoolSpec, SafetySection, Sp,
};
use super::{Diagnostics, scan, shape, yaml};
use crate::address::Kind;
use crate::diagnostic::{Diagnostic, SourceMap};

/// A value of a top-level section together with the file it came from.
#[derive(Debug, Clone)]
pub struct InFile<T> {
    pub file: usize,
    pub value: Sp<T>,
}

/// A named resource as declared: the file, the located name, its spec.
/// The spec is boxed: declarations are sorted and gathered into maps by
/// moving them, and an app instance's spec is 184 bytes, which at 1M
/// instances made those moves and the buffers between them hundreds of MB.
#[derive(Debug, Clone)]
pub struct Declared<T> {
    pub file: usize,
    pub name: Sp<String>,
    pub spec: Box<T>,
}

/// What a config keeps of an app instance's spec once `lower` has moved
/// its values into the desired state: nothing. The declaration (file and
/// the name's place) stays, for diagnostics about the plan; the name's
/// text moved too, and the map key names the declaration. At 1M app
/// instances, keeping the specs beside their lowered copies cost about
/// 0.2 GB, and a third copy of each name 0.03 GB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved;

/// The config as it is kept after `lower`: everything a diagnostic about a
/// plan points at, with the app instances' specs moved out.
pub type Located = Config<Moved>;

/// The merged config of one file or directory, keyed by name. A name declared
/// again in a later file keeps its first declaration here and the clash goes to
/// `conflicts`. `I` is what an app instance's declaration holds: its spec,
/// until `lower` moves it out.
#[derive(Debug, Clone)]
pub struct Config<I = AppInstanceSpec> {
    pub sources: SourceMap,
    /// Names (and `stack`, `broker.url`, `safety`) declared in more than one
    /// file. Kept rather than returned as an error so that `validate` reports
    /// them together with every other problem.
    pub conflicts: Vec<Diagnostic>,
    /// `file:` secrets that cannot hold a secret (not a regular file, too
    /// large), by path, with why: found by `config::load`, which may look
    /// at the file system, and reported by `validate`, which may not.
    pub unusable_secret_files: BTreeMap<PathBuf, String>,
    /// Findings of `validate` that do not make the config invalid.
    pub warnings: Vec<Diagnostic>,
    pub stack: Option<InFile<String>>,
    pub broker_url: Option<InFile<String>>,
    pub safety: Option<InFile<SafetySection>>,
    pub pools: BTreeMap<String, Declared<PoolSpec>>,
    pub app_configs: BTreeMap<String, Declared<AppConfigSpec>>,
    pub app_instances: BTreeMap<String, Declared<I>>,
    pub destinations: BTreeMap<String, Declared<DestinationSpec>>,
}

// Not derived: a derived `Default` would ask the spec to have one.
impl<I> Default for Config<I> {
    fn default() -> Self {
        Config {
            sources: SourceMap::default(),
            conflicts: Vec::new(),
            unusable_secret_files: BTreeMap::new(),
            warnings: Vec::new(),
            stack: None,
            broker_url: None,
            safety: None,
            pools: BTreeMap::new(),
            app_configs: BTreeMap::new(),
            app_instances: BTreeMap::new(),
            destinations: BTreeMap::new(),
        }
    }
}

/// Parses and merges already-read files, given as (display name, text) in
/// merge order. Pure: used by `load`, tests and benchmarks.
pub fn merge(files: Vec<(String, String)>) -> Result<Config, Diagnostics> {
    let mut config = Config::default();
    let mut parsed = Vec::with_capacity(files.len());
    let mut items = Vec::new();
    let read = read_all(&files);
    for ((name, text), (scanned, result)) in files.into_iter().zip(read) {
        let secrets: Vec<&str> = scanned
            .secrets
            .iter()
            .filter_map(|range| text.get(range.clone()).map(str::trim))
            .filter(|secret| !secret.is_empty())
            .collect();
        let secrets: Vec<String> = secrets.into_iter().map(str::to_owned).collect();
        // The shape walk re-reads a file that failed, as written.
        let written = result.is_err().then(|| text.clone());
        let index = config.sources.add(name, text);
        for range in &scanned.secrets {
            config.sources.mask(index, range.start, range.len());
        }
        for tag in scanned.tags {
            items.push(tag_diagnostic(&config.sources, index, tag));
        }
        match result {
            Ok(file) => parsed.push((index, file)),
            // Every shape problem of the file when the schema can name
            // them, else the parser's first error.
            Err(error) => match shape::problems(
                written.as_deref().unwrap_or_default(),
                &mut config.sources,
                index,
            ) {
                Some(found) => items.extend(found.into_iter().map(|d| scrub(d, &secrets))),
                None => {
                    let diagnostic = yaml::diagnostic(&error, &config.sources, index);
                    items.push(scrub(diagnostic, &secrets));
                }
            },
        }
    }
    let mut conflicts = Vec::new();
    let mut declared = Pending::default();
    for (index, file) in parsed {
        merge_file(&mut config, &mut declared, index, file, &mut conflicts);
    }
    declared.build(&mut config, &mut conflicts);
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

/// What reading one file yields: where its secrets and tags are, and the
/// parsed file or the parser's error.
type Read = (scan::Scanned, Result<spec::ConfigFile, serde_saphyr::Error>);

/// Scans and parses every file, the passes spread over the cores: the two
/// passes of a file, and the files of a directory, are independent, so a
/// config reads in about the time of its largest pass rather than their sum.
fn read_all(files: &[(String, String)]) -> Vec<Read> {
    let jobs = files.len() * 2;
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    if workers < 2 || files.iter().map(|(_, t)| t.len()).sum::<usize>() < PARALLEL_BYTES {
        let read = |(_, text): &(String, String)| (scan::scan(text), yaml::parse(text));
        return files.iter().map(read).collect();
    }
    let next = AtomicUsize::new(0);
    let scans: Vec<OnceLock<scan::Scanned>> = files.iter().map(|_| OnceLock::new()).collect();
    let parses: Vec<OnceLock<Result<spec::ConfigFile, serde_saphyr::Error>>> =
        files.iter().map(|_| OnceLock::new()).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers.min(jobs) {
            scope.spawn(|| {
                loop {
                    let job = next.fetch_add(1, Ordering::Relaxed);
                    let Some((_, text)) = files.get(job / 2) else {
                        break;
                    };
                    // Each cell is set once, by the one job that owns it.
                    if job.is_multiple_of(2) {
                        let _ = parses[job / 2].set(yaml::parse(text));
                    } else {
                        let _ = scans[job / 2].set(scan::scan(text));
                    }
                }
            });
        }
    });
    scans
        .into_iter()
        .zip(parses)
        .map(|(scanned, parsed)| {
            let missing = "every job ran to its end in the scope";
            (
                scanned.into_inner().expect(missing),
                parsed.into_inner().expect(missing),
            )
        })
        .collect()
}

/// Below this much text, starting threads costs more than it saves.
const PARALLEL_BYTES: usize = 256 * 1024;

/// A YAML tag, which poolform refuses: `!!binary` would be decoded
/// silently and other tags ignored, so the value read is not the one seen.
fn tag_diagnostic(sources: &SourceMap, file: usize, tag: Range<usize>) -> Diagnostic {
    let written = sources
        .text(file)
        .get(tag.clone())
        .unwrap_or("tag")
        .to_owned();
    Diagnostic::error(
        "config::tag",
        format!("the YAML tag `{written}` is not allowed in a config"),
    )
    .with_label(locate_range(sources, file, tag), "tag")
    .with_help("write the plain value without a tag; poolform gives tags no meaning")
}

/// A parser message can quote the text it stumbled on; the secrets of the
/// file are blotted out of it as they are out of the snippet.
fn scrub(mut diagnostic: Diagnostic, secrets: &[String]) -> Diagnostic {
    diagnostic.message = blot(&diagnostic.message, secrets);
    diagnostic.help = diagnostic.help.map(|help| blot(&help, secrets));
    diagnostic
}

/// `text` with every occurrence of a secret that stands as a word of its own
/// (not inside a longer word) replaced by asterisks.
fn blot(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        let mut from = 0;
        while let Some(found) = out[from..].find(secret.as_str()) {
            let start = from + found;
            let end = start + secret.len();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            if word(out[..start].chars().next_back()) || word(out[end..].chars().next()) {
                from = end;
                continue;
            }
            out.replace_range(start..end, &"*".repeat(secret.chars().count()));
            from = start + secret.chars().count();
        }
    }
    out
}

fn merge_file(
    config: &mut Config,
    declared: &mut Pending,
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
    declared.pools.add(file, parsed.pools);
    declared.app_configs.add(file, parsed.app_configs);
    declared.app_instances.add(file, parsed.app_instances);
    declared.destinations.add(file, parsed.destinations);
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
            .with_label(locate_at(sources, file, &value.at), "set again here")
            .with_secondary(
                locate_at(sources, first.file, &first.value.at),
                "first set here",
            )
            .with_help(format!("set `{key}` in one file only")),
        ),
        None => *slot = Some(InFile { file, value }),
    }
}

/// The resources of every file, in file order, before they become the
/// config's maps: a map built at once from sorted entries has full nodes,
/// where one grown entry by entry in name order leaves them half empty
/// (tens of MB at 100k app instances), and takes longer to build.
#[derive(Default)]
struct Pending {
    pools: Entries<PoolSpec>,
    app_configs: Entries<AppConfigSpec>,
    app_instances: Entries<AppInstanceSpec>,
    destinations: Entries<DestinationSpec>,
}

impl Pending {
    fn build(self, config: &mut Config, items: &mut Vec<Diagnostic>) {
        let sources = &config.sources;
        config.pools = self.pools.build(sources, Kind::Pool, items);
        config.app_configs = self.app_configs.build(sources, Kind::AppConfig, items);
        config.app_instances = self.app_instances.build(sources, Kind::AppInstance, items);
        config.destinations = self.destinations.build(sources, Kind::Destination, items);
    }
}

struct Entries<T>(Vec<Declared<T>>);

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<T> Entries<T> {
    fn add(&mut self, file: usize, resources: spec::Resources<T>) {
        self.0.extend(
            resources
                .0
                .into_iter()
                .map(|(name, spec)| Declared { file, name, spec }),
        );
    }

    /// The map by name. A name declared again (in a later file: the parser
    /// refuses a duplicate key within one) keeps its first declaration,
    /// and each later one becomes a diagnostic, in the order declared.
    fn build(
        mut self,
        sources: &SourceMap,
        kind: Kind,
        items: &mut Vec<Diagnostic>,
    ) -> BTreeMap<String, Declared<T>> {
        // Stable: of the declarations of one name, the first stays first.
        self.0.sort_by(|a, b| a.name.value.cmp(&b.name.value));
        let mut again: Vec<(usize, usize, Diagnostic)> = Vec::new();
        let mut kept: Vec<(String, Declared<T>)> = Vec::with_capacity(self.0.len());
        for declared in self.0 {
            match kept.last() {
                Some((name, first)) if *name == declared.name.value => again.push((
                    declared.file,
                    declared.name.at.offset as usize,
                    duplicate(sources, kind, first, &declared),
                )),
                _ => kept.push((declared.name.value.clone(), declared)),
            }
        }
        again.sort_by_key(|(file, offset, _)| (*file, *offset));
        items.extend(again.into_iter().map(|(_, _, d)| d));
        // Sorted and unique: the map is built in one pass.
        kept.into_iter().collect()
    }
}

fn duplicate<T>(
    sources: &SourceMap,
    kind: Kind,
    first: &Declared<T>,
    again: &Declared<T>,
) -> Diagnostic {
    Diagnostic::error(
        "config::duplicate_name",
        format!(
            "{} '{}' is declared twice",
            kind_noun(kind),
            again.name.value
        ),
    )
    .with_label(
        locate_at(sources, again.file, &again.name.at),
        "declared again here",
    )
    .with_secondary(
        locate_at(sources, first.file, &first.name.at),
        "first declared here",
    )
    .with_help("a name is declared once across all files of a config; rename or remove one")
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
