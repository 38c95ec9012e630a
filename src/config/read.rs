//! Reading a config from disk: one file, or every `*.yaml`/`*.yml` file of
//! a directory in name order. The only place the config pipeline does IO.

use std::path::Path;

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
