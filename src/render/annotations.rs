//! Problems as code-review annotations: GitHub workflow commands
//! (`::error file=F,line=L,col=C,title=CODE::message`), which GitHub shows on
//! the changed line of a pull request, and the GitLab code quality report
//! (the Code Climate JSON subset GitLab reads) for the merge-request widget.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::diagnostic::{Diagnostic, Severity};

/// One finding to annotate: a diagnostic, a violation, a predicted warning
/// or a failed step, located when it has a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub severity: Severity,
    /// Stable code, shown as the annotation's title.
    pub code: String,
    pub message: String,
    /// File (as given on the command line), line and column.
    pub place: Option<(String, u32, u32)>,
}

impl Annotation {
    pub fn warning(code: impl Into<String>, message: impl Into<String>) -> Annotation {
        Annotation {
            severity: Severity::Warning,
            code: code.into(),
            message: message.into(),
            place: None,
        }
    }

    pub fn error(code: impl Into<String>, message: impl Into<String>) -> Annotation {
        Annotation {
            severity: Severity::Error,
            ..Annotation::warning(code, message)
        }
    }
}

impl From<&Diagnostic> for Annotation {
    fn from(d: &Diagnostic) -> Annotation {
        let message = match &d.help {
            Some(help) => format!("{}\nhelp: {help}", d.message),
            None => d.message.clone(),
        };
        Annotation {
            severity: d.severity,
            code: d.code.to_owned(),
            message,
            place: d
                .primary
                .as_ref()
                .map(|l| (l.location.file.clone(), l.location.line, l.location.column)),
        }
    }
}

/// A file name as the forge knows it: relative to the checkout (the working
/// directory `workdir`) when it lies inside it, as given otherwise.
fn repo_path(file: &str, workdir: &Path) -> String {
    Path::new(file)
        .strip_prefix(workdir)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| file.trim_start_matches("./").to_owned())
}

/// Escapes a workflow command's message: `%`, CR and LF.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value: also `:` and `,`.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Writes one workflow command per annotation.
pub fn github(out: &mut dyn Write, items: &[Annotation], workdir: &Path) -> io::Result<()> {
    for a in items {
        let command = match a.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut properties = Vec::new();
        if let Some((file, line, column)) = &a.place {
            properties.push(format!(
                "file={},line={line},col={column}",
                escape_property(&repo_path(file, workdir))
            ));
        }
        properties.push(format!("title={}", escape_property(&a.code)));
        writeln!(
            out,
            "::{command} {}::{}",
            properties.join(","),
            escape_data(&a.message)
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
struct Issue {
    description: String,
    check_name: String,
    fingerprint: String,
    severity: &'static str,
    location: Location,
}

#[derive(Serialize)]
struct Location {
    path: String,
    lines: Lines,
}

#[derive(Serialize)]
struct Lines {
    begin: u32,
}

/// Writes the code quality report: a JSON array, one issue per annotation.
/// Unlocated findings are placed at line 1 of `fallback` (the config given
/// on the command line), as GitLab needs a path for every issue.
pub fn gitlab(
    out: &mut dyn Write,
    items: &[Annotation],
    workdir: &Path,
    fallback: &str,
) -> io::Result<()> {
    let issues: Vec<Issue> = items
        .iter()
        .map(|a| {
            let (file, line) = match &a.place {
                Some((file, line, _)) => (file.as_str(), *line),
                None => (fallback, 1),
            };
            let path = repo_path(file, workdir);
            // Without the line, so that an issue keeps its identity when
            // lines above it move, and GitLab can tell new from fixed.
            let fingerprint =
                hex::encode(Sha256::digest(format!("{}\0{path}\0{}", a.code, a.message)));
            Issue {
                description: a.message.clone(),
                check_name: a.code.clone(),
                fingerprint,
                severity: match a.severity {
                    Severity::Error => "critical",
                    Severity::Warning => "minor",
                },
                location: Location {
                    path,
                    lines: Lines { begin: line },
                },
            }
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &issues).map_err(io::Error::from)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceLocation;

    fn located() -> Annotation {
        let location = SourceLocation {
            file: "/repo/stacks/corp/pools.yaml".to_owned(),
            line: 4,
            column: 5,
            offset: 0,
            len: 0,
        };
        let diagnostic = Diagnostic::error("config::unknown_key", "unknown key `member`")
            .with_label(location, "here")
            .with_help("did you mean `members`? 100% sure, maybe");
        Annotation::from(&diagnostic)
    }

    #[test]
    fn github_commands_are_located_relative_to_the_checkout_and_escaped() {
        let mut out = Vec::new();
        let items = [
            located(),
            Annotation::warning("lb_service_uninstall_failed", "stays, installed"),
        ];
        github(&mut out, &items, Path::new("/repo")).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "::error file=stacks/corp/pools.yaml,line=4,col=5,title=config%3A%3Aunknown_key::unknown key \
             `member`%0Ahelp: did you mean `members`? 100%25 sure, maybe\n\
             ::warning title=lb_service_uninstall_failed::stays, installed\n"
        );
    }

    #[test]
    fn gitlab_issues_carry_what_the_widget_needs() {
        let mut out = Vec::new();
        let items = [
            located(),
            Annotation::error("apply::failed", "step 3 failed"),
        ];
        gitlab(&mut out, &items, Path::new("/repo"), "stacks/corp").unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(report[0]["check_name"], "config::unknown_key");
        assert_eq!(report[0]["severity"], "critical");
        assert_eq!(report[0]["location"]["path"], "stacks/corp/pools.yaml");
        assert_eq!(report[0]["location"]["lines"]["begin"], 4);
        assert_eq!(report[0]["fingerprint"].as_str().unwrap().len(), 64);
        assert_eq!(report[1]["location"]["path"], "stacks/corp");
        assert_ne!(report[0]["fingerprint"], report[1]["fingerprint"]);
    }
}
