//! Reading a config from disk: one file, or every `*.yaml`/`*.yml` file of
//! a directory in name order. The only place the config pipeline does IO.

use std::path::{Path, PathBuf};

use super::Diagnostics;
use crate::diagnostic::{Diagnostic, SourceMap};

/// Reads a config file, or every `*.yaml`/`*.yml` file of a directory (not
/// recursive) in name order, as (display name, text) pairs.
pub fn read(path: &Path) -> Result<Vec<(String, String)>, Diagnostics> {
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
    Ok(sources)
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
