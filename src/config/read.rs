//! Reading a config from disk: one file, or every `*.yaml`/`*.yml` entry of
//! a directory in name order, completely or not at all: an entry that cannot
//! be read as a YAML file is an error, never skipped (a skipped file would
//! turn everything it declares into a planned deletion). The only place the
//! config pipeline does IO.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::locate::locate_range;
use super::{Config, Diagnostics};
use crate::diagnostic::{Diagnostic, SourceLocation, SourceMap};
use crate::regular_file;
use crate::secret::unusable_file;

/// How long reading one config file may take before it counts as hung.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads a config file, or every `*.yaml`/`*.yml` entry of a directory (not
/// recursive) in name order, as (display name, text) pairs. Every entry
/// that cannot be read is reported, located in a listing of the directory.
pub fn read(path: &Path) -> Result<Vec<(String, String)>, Diagnostics> {
    if !path.is_dir() {
        let mut problems = Problems::default();
        let text = problems.read(path, None);
        return problems.finish(|| vec![(path.display().to_string(), text.unwrap_or_default())]);
    }
    let names = yaml_entries(path)?;
    let mut problems = Problems::default();
    let listing = problems.sources.add(
        format!("{}/", path.display()),
        names.iter().map(|n| format!("{n}\n")).collect::<String>(),
    );
    let mut files = Vec::with_capacity(names.len());
    let mut offset = 0;
    for name in &names {
        let entry = path.join(name);
        let at = SourceLocation {
            file: problems.sources.name(listing).to_owned(),
            line: u32::try_from(files.len() + 1).unwrap_or(u32::MAX),
            column: 1,
            offset,
            len: name.len(),
        };
        offset += name.len() + 1;
        files.push((entry.display().to_string(), problems.read(&entry, Some(at))));
    }
    problems.finish(|| {
        files
            .into_iter()
            .map(|(name, text)| (name, text.unwrap_or_default()))
            .collect()
    })
}

/// The names of a directory's `*.yaml`/`*.yml` entries, whatever their
/// type, sorted.
fn yaml_entries(dir: &Path) -> Result<Vec<String>, Diagnostics> {
    let unreadable =
        |e: std::io::Error| unlocated(format!("cannot read directory {}: {e}", dir.display()));
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let name = entry.map_err(unreadable)?.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            names.push(name.into_owned());
        }
    }
    names.sort();
    if names.is_empty() {
        return Err(unlocated(format!(
            "{} contains no *.yaml or *.yml files",
            dir.display()
        )));
    }
    Ok(names)
}

/// Takes back the texts [`SourceMap::release`] let go of, read again from
/// their files (a file's name is its path as given, and the working
/// directory has not changed). Returns the names of the files that changed
/// since or cannot be read any more.
pub fn reread(sources: &mut SourceMap) -> Vec<String> {
    sources.restore(|name| {
        let bytes = regular_file::read(Path::new(name), u64::MAX, READ_TIMEOUT).ok()?;
        String::from_utf8(bytes).ok()
    })
}

fn unlocated(message: String) -> Diagnostics {
    Diagnostics {
        sources: SourceMap::default(),
        items: vec![Diagnostic::error("config::io", message)],
    }
}

/// Problems found while reading, with the sources that locate them.
#[derive(Default)]
struct Problems {
    sources: SourceMap,
    items: Vec<Diagnostic>,
}

impl Problems {
    /// The text of `file`, or `None` after recording why it cannot be read
    /// (located at `listed`, its line in the directory listing, if any).
    fn read(&mut self, file: &Path, listed: Option<SourceLocation>) -> Option<String> {
        let bytes = match regular_file::read(file, u64::MAX, READ_TIMEOUT) {
            Ok(bytes) => bytes,
            Err(why) => {
                let why = dangling(file).unwrap_or(why);
                let diagnostic = Diagnostic::error(
                    "config::unreadable",
                    format!("cannot read {}: {why}", file.display()),
                );
                self.items.push(match listed {
                    Some(at) => diagnostic.with_label(at, "this entry").with_help(
                        "every *.yaml and *.yml entry is part of the config; fix or remove it",
                    ),
                    None => diagnostic,
                });
                return None;
            }
        };
        match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(error) => {
                self.not_utf8(file, &error);
                None
            }
        }
    }

    /// Locates the first byte that is not UTF-8 in the file itself.
    fn not_utf8(&mut self, file: &Path, error: &std::string::FromUtf8Error) {
        let valid = error.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(error.as_bytes()).into_owned();
        let len = text[valid..].chars().next().map_or(0, char::len_utf8);
        let index = self.sources.add(file.display().to_string(), text);
        self.items.push(
            Diagnostic::error(
                "config::not_utf8",
                format!("{} is not UTF-8 text", file.display()),
            )
            .with_label(
                locate_range(&self.sources, index, valid..valid + len),
                "first byte that is not UTF-8",
            )
            .with_help("save the file as UTF-8"),
        );
    }

    fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Diagnostics> {
        if self.items.is_empty() {
            Ok(value())
        } else {
            Err(Diagnostics {
                sources: self.sources,
                items: self.items,
            })
        }
    }
}

/// "is a symbolic link to `x`, which does not exist", for a dangling link.
fn dangling(file: &Path) -> Option<String> {
    let target = std::fs::read_link(file).ok()?;
    let resolved = file
        .parent()
        .map_or(target.clone(), |dir| dir.join(&target));
    (std::fs::symlink_metadata(&resolved).is_err()).then(|| {
        format!(
            "it is a symbolic link to `{}`, which does not exist",
            target.display()
        )
    })
}

/// What the file system says about every `file:` secret the config
/// references, for `validate` to judge offline: the path and why it cannot
/// hold a secret (not a regular file, too large). Missing files are not
/// judged; they may exist only where `plan` runs.
pub fn unusable_secret_files(config: &Config) -> BTreeMap<PathBuf, String> {
    let paths = config.pools.values().filter_map(|pool| {
        let password = pool.spec.default_credentials.as_ref()?.password.as_ref()?;
        match &password.value {
            super::spec::SecretValue::File(path) => Some(path.clone()),
            _ => None,
        }
    });
    paths
        .filter_map(|path| {
            let why = unusable_file(&path)?;
            Some((path, why))
        })
        .collect()
}

/// The top-level keys that make a YAML file part of a config.
const CONFIG_KEYS: [&str; 5] = [
    "stack",
    "pools",
    "app_configs",
    "app_instances",
    "destinations",
];

/// When `path` is a single file, the other `*.yaml`/`*.yml` files of its
/// directory that hold config keys at the top level, each with those keys:
/// a config split over files, of which `path` is only a part. Unreadable
/// neighbours are skipped; they are not part of what was asked for.
pub fn siblings_with_config(path: &Path) -> Vec<(PathBuf, Vec<&'static str>)> {
    if !path.is_file() {
        return Vec::new();
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, Vec<&'static str>)> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|other| {
            other
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
                && other.file_name() != path.file_name()
        })
        .filter_map(|other| {
            let text = std::fs::read_to_string(&other).ok()?;
            let keys = top_level_config_keys(&text);
            (!keys.is_empty()).then_some((other, keys))
        })
        .collect();
    found.sort();
    found
}

/// The config keys `text` sets at the top level (`pools:` at column 1).
fn top_level_config_keys(text: &str) -> Vec<&'static str> {
    CONFIG_KEYS
        .into_iter()
        .filter(|key| {
            text.lines().any(|line| {
                line.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with(':'))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(path: &Path) -> Diagnostics {
        read(path).expect_err("unreadable")
    }

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    /// The one diagnostic's message and its (line, column, underlined text).
    fn only(diagnostics: &Diagnostics) -> (String, (u32, u32, String)) {
        assert_eq!(diagnostics.items.len(), 1, "{:?}", diagnostics.items);
        let d = &diagnostics.items[0];
        let at = &d.primary.as_ref().expect("located").location;
        let text = diagnostics.sources.text_of(&at.file).expect("source kept");
        let under = text[at.offset..at.offset + at.len].to_owned();
        (d.message.clone(), (at.line, at.column, under))
    }

    #[test]
    fn released_texts_are_read_again_from_the_files_read_and_an_edited_one_is_not() {
        let dir = dir_with(&[("a.yaml", "pw: secret\n"), ("b.yaml", "stack: s\n")]);
        let mut sources = SourceMap::default();
        for (name, text) in read(dir.path()).unwrap() {
            sources.add(name, text);
        }
        sources.mask(0, 4, 6);
        let loaded = sources.clone();
        sources.release();
        assert_eq!(reread(&mut sources), Vec::<String>::new());
        assert_eq!(sources, loaded);
        assert_eq!(sources.text(0), "pw: ******\n");
        sources.release();
        std::fs::write(dir.path().join("b.yaml"), "stack: t\n").unwrap();
        let b = dir.path().join("b.yaml").display().to_string();
        assert_eq!(reread(&mut sources), [b]);
        assert_eq!(
            (sources.is_released(0), sources.is_released(1)),
            (false, true)
        );
    }

    #[test]
    fn a_dangling_link_is_an_error_located_in_the_listing() {
        let dir = dir_with(&[("a.yaml", "stack: s\n"), ("c.yaml", "")]);
        std::os::unix::fs::symlink("missing.yaml", dir.path().join("b.yaml")).unwrap();
        let (message, at) = only(&rejected(dir.path()));
        assert!(
            message.contains("symbolic link to `missing.yaml`"),
            "{message}"
        );
        assert_eq!(at, (2, 1, "b.yaml".to_owned()));
    }

    #[test]
    fn a_link_loop_a_fifo_and_a_directory_are_each_reported() {
        let dir = dir_with(&[("a.yaml", "stack: s\n")]);
        std::os::unix::fs::symlink("loop.yaml", dir.path().join("loop.yaml")).unwrap();
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        crate::regular_file::tests::fifo(&dir.path().join("fifo.yml"));
        let rejected = rejected(dir.path());
        let found: Vec<(u32, &str)> = rejected
            .items
            .iter()
            .map(|d| (d.primary.as_ref().expect("located").location.line, d.code))
            .collect();
        assert_eq!(
            found,
            [
                (2, "config::unreadable"),
                (3, "config::unreadable"),
                (4, "config::unreadable")
            ]
        );
        assert!(rejected.items[0].message.contains("FIFO"));
        assert!(rejected.items[2].message.contains("directory"));
    }

    #[test]
    fn other_entries_are_not_part_of_the_config() {
        let dir = dir_with(&[("a.yaml", "stack: s\n"), ("README.md", "x")]);
        std::os::unix::fs::symlink("missing", dir.path().join("notes.txt")).unwrap();
        assert_eq!(read(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn a_file_that_is_not_utf8_is_located_at_the_first_bad_byte() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), b"stack: s\npools:\n  p\xe9:\n").unwrap();
        let (message, at) = only(&rejected(dir.path()));
        assert!(message.ends_with("is not UTF-8 text"), "{message}");
        assert_eq!(at, (3, 4, "\u{fffd}".to_owned()));
    }

    #[test]
    fn a_single_file_that_is_a_fifo_is_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("c.yaml");
        crate::regular_file::tests::fifo(&fifo);
        let rejected = rejected(&fifo);
        assert!(rejected.items[0].message.contains("is a FIFO"));
    }

    #[test]
    fn only_top_level_config_keys_count() {
        let text = "# pools: none\nstack: s\n  pools:\napp_configs :\nlabels:\n";
        assert_eq!(top_level_config_keys(text), ["stack", "app_configs"]);
    }

    #[test]
    fn a_file_of_a_split_config_names_its_siblings() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("pools.yaml"), "stack: s\npools: {}\n").expect("write");
        std::fs::write(dir.path().join("apps.yml"), "app_configs: {}\n").expect("write");
        std::fs::write(dir.path().join("notes.yaml"), "owner: me\n").expect("write");
        let found = siblings_with_config(&dir.path().join("pools.yaml"));
        assert_eq!(found, [(dir.path().join("apps.yml"), vec!["app_configs"])]);
        assert!(
            siblings_with_config(dir.path()).is_empty(),
            "a directory is whole"
        );
    }
}
