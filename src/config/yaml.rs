//! The YAML parser settings poolform uses, and the translation of parser
//! errors (syntax, unknown keys, wrong types, duplicate keys, alias bombs)
//! into located diagnostics.

use serde_saphyr::{DuplicateKeyPolicy, Error, Options};

use super::locate::locate_in;
use super::spec::ConfigFile;
use crate::diagnostic::{Diagnostic, SourceLocation, SourceMap};

pub(super) fn options(text: &str) -> Options {
    // The parser's default budget (250,000 nodes, 1,000,000 events) rejects
    // an honest config of a few thousand pools as "too complex". Outside of
    // alias expansion (bounded below) a node or event costs about a byte of
    // input, which is already in memory: scale the budget with the input
    // (twice its size, for empty scalars) so only aliases can blow it up.
    let size_bound = text.len().saturating_mul(2).saturating_add(1_000_000);
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: size_bound,
            max_nodes: size_bound,
        },
        // Only `true`/`false` are booleans: `enabled: no` is an error rather
        // than a silent `false` (the "Norway problem").
        strict_booleans: true,
        // An unquoted scalar that a YAML 1.2 reader would type differently
        // (`true`, `1`, `~`) is an error in a string field: quote it.
        no_schema: true,
        duplicate_keys: DuplicateKeyPolicy::Error,
        // Configs use anchors sparingly; a billion-laughs document stops early.
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
        },
    }
}

/// Parses one file: through the fast front end when it takes the file,
/// else (for every file with a problem) through serde-saphyr, whose errors
/// become the diagnostics.
pub(super) fn parse(text: &str) -> Result<ConfigFile, Error> {
    match super::fast::parse(text) {
        Some(file) => Ok(file),
        None => parse_general(text),
    }
}

/// Parses one file with serde-saphyr.
pub(super) fn parse_general(text: &str) -> Result<ConfigFile, Error> {
    // An empty or comment-only file is an empty config, not a type error.
    let file: Option<ConfigFile> = serde_saphyr::from_str_with_options(text, options(text))?;
    Ok(file.unwrap_or_default())
}

pub(super) fn diagnostic(error: &Error, sources: &SourceMap, file: usize) -> Diagnostic {
    let error = error.without_snippet();
    let mut message = error.to_string();
    let location = error.location();
    if let Some(at) = &location {
        // The parser appends the position; the label already shows it.
        let suffix = format!(" at line {}, column {}", at.line(), at.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_owned();
        }
    }
    let (code, message, help) = classify(message);
    let mut diagnostic = Diagnostic::error(code, message);
    if let Some(help) = help {
        diagnostic = diagnostic.with_help(help);
    }
    let location = match location {
        Some(at) if at.line() > 0 => locate_in(sources, file, &at),
        // Errors without a position (such as a budget breach) still name the file.
        _ => SourceLocation::file_start(sources.name(file)),
    };
    diagnostic.with_label(location, label(code))
}

/// The short note under the underline, by kind of problem.
fn label(code: &str) -> &'static str {
    match code {
        "config::duplicate_key" => "repeated key",
        "config::unknown_key" => "unknown key",
        "config::missing_key" => "in this mapping",
        "config::too_complex" => "expansion stopped here",
        "config::ambiguous_scalar" => "quote this",
        "config::type" => "wrong type",
        _ => "here",
    }
}

fn classify(message: String) -> (&'static str, String, Option<String>) {
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return (
            "config::duplicate_key",
            format!("the key `{key}` appears twice in the same mapping"),
            Some("each key may appear once; remove or merge the repeated entry".to_owned()),
        );
    }
    if message.starts_with("unknown field") {
        return (
            "config::unknown_key",
            message.replacen("field", "key", 1),
            None,
        );
    }
    if message.starts_with("missing field") {
        return (
            "config::missing_key",
            message.replacen("field", "key", 1),
            None,
        );
    }
    if message.contains("unknown anchor") {
        return (
            "config::yaml",
            "this alias refers to no anchor".to_owned(),
            Some("define the anchor (`&name`) before the alias (`*name`) that uses it".to_owned()),
        );
    }
    if message.starts_with("multiple YAML documents") {
        return (
            "config::yaml",
            "a config file holds one YAML document, but this one starts another".to_owned(),
            Some(
                "remove the `---` line, or split the documents into files of their own".to_owned(),
            ),
        );
    }
    if message.contains("budget") || message.contains("alias") || message.contains("replay") {
        return (
            "config::too_complex",
            message,
            Some("configs may not expand aliases without bound; write the values out".to_owned()),
        );
    }
    if message.contains("must be quoted") {
        let value = message
            .split_once('[')
            .and_then(|(_, rest)| rest.rsplit_once(']'))
            .map_or("this value", |(value, _)| value);
        return (
            "config::ambiguous_scalar",
            format!(
                "`{value}` is not text in YAML (a number, boolean or null), but this field is text"
            ),
            Some(format!("quote it: '{value}'")),
        );
    }
    if message.starts_with("invalid boolean") {
        return (
            "config::type",
            "expected `true` or `false`".to_owned(),
            Some("YAML 1.1 spellings like yes/no/on/off are not booleans here".to_owned()),
        );
    }
    if let Some(kind) = message.strip_prefix("invalid ") {
        let max = match kind {
            "u8" => Some(u64::from(u8::MAX)),
            "u32" => Some(u64::from(u32::MAX)),
            "u64" => Some(u64::MAX),
            _ => None,
        };
        if let Some(max) = max {
            return (
                "config::type",
                format!("expected a whole number from 0 to {max}"),
                None,
            );
        }
    }
    if message == "expected mapping start" {
        return (
            "config::type",
            "expected a mapping (`key: value` entries) here".to_owned(),
            None,
        );
    }
    ("config::yaml", message, None)
}
