//! Diagnostics as miette reports (underlined snippets) or as versioned JSON.

use std::fmt;
use std::io::{self, Write};

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;

use crate::diagnostic::{Diagnostic, Label, Severity, SourceMap};

/// How text diagnostics look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextStyle {
    pub color: bool,
    /// Box-drawing characters; off gives plain ASCII.
    pub unicode: bool,
    /// Wrap width in columns.
    pub width: usize,
}

impl TextStyle {
    /// ASCII, no colour, 80 columns: byte-stable output for snapshots.
    pub const PLAIN: TextStyle = TextStyle {
        color: false,
        unicode: false,
        width: 80,
    };
}

/// Writes every diagnostic as a miette report, separated by blank lines.
pub fn text(
    out: &mut dyn Write,
    diagnostics: &[Diagnostic],
    sources: &SourceMap,
    style: TextStyle,
) -> io::Result<()> {
    let theme = match (style.color, style.unicode) {
        (true, true) => GraphicalTheme::unicode(),
        (true, false) => GraphicalTheme::ascii(),
        (false, true) => GraphicalTheme::unicode_nocolor(),
        (false, false) => GraphicalTheme::none(),
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_links(false)
        .with_width(style.width);
    for diagnostic in diagnostics {
        let report = Report::new(diagnostic, sources);
        let mut rendered = String::new();
        handler
            .render_report(&mut rendered, &report)
            .map_err(|_| io::Error::other("cannot format a diagnostic"))?;
        writeln!(out, "{}", rendered.trim_end())?;
        writeln!(out)?;
    }
    Ok(())
}

/// Version of the JSON diagnostics document; bump on incompatible changes.
pub const JSON_VERSION: u32 = 1;

#[derive(Serialize)]
struct JsonDocument<'a> {
    version: u32,
    valid: bool,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    code: &'a str,
    severity: Severity,
    message: &'a str,
    file: Option<&'a str>,
    line: Option<u32>,
    column: Option<u32>,
    label: Option<&'a str>,
    help: Option<&'a str>,
    related: Vec<JsonRelated<'a>>,
}

#[derive(Serialize)]
struct JsonRelated<'a> {
    file: &'a str,
    line: u32,
    column: u32,
    label: &'a str,
}

/// Writes `{"version": 1, "valid": ..., "diagnostics": [...]}` and a newline.
pub fn json(out: &mut dyn Write, diagnostics: &[Diagnostic]) -> io::Result<()> {
    let document = JsonDocument {
        version: JSON_VERSION,
        valid: !diagnostics.iter().any(Diagnostic::is_error),
        diagnostics: diagnostics
            .iter()
            .map(|d| {
                let primary = d.primary.as_ref();
                JsonDiagnostic {
                    code: d.code,
                    severity: d.severity,
                    message: &d.message,
                    file: primary.map(|l| l.location.file.as_str()),
                    line: primary.map(|l| l.location.line),
                    column: primary.map(|l| l.location.column),
                    label: primary.map(|l| l.text.as_str()),
                    help: d.help.as_deref(),
                    related: d
                        .secondary
                        .iter()
                        .map(|l| JsonRelated {
                            file: &l.location.file,
                            line: l.location.line,
                            column: l.location.column,
                            label: &l.text,
                        })
                        .collect(),
                }
            })
            .collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

/// A `Diagnostic` seen through miette's eyes. Labels in the primary file are
/// drawn in one snippet; labels in other files become related reports, as
/// miette draws one source per report.
#[derive(Debug)]
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    message: String,
    severity: miette::Severity,
    source: Option<NamedSource<String>>,
    labels: Vec<LabeledSpan>,
    related: Vec<Report<'a>>,
}

impl<'a> Report<'a> {
    fn new(diagnostic: &'a Diagnostic, sources: &SourceMap) -> Self {
        let severity = match diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        };
        let mut report = Report {
            diagnostic,
            message: diagnostic.message.clone(),
            severity,
            source: None,
            labels: Vec::new(),
            related: Vec::new(),
        };
        let Some(primary) = &diagnostic.primary else {
            return report;
        };
        let file = &primary.location.file;
        report.source = source(sources, file);
        report.labels.push(LabeledSpan::new_primary_with_span(
            Some(primary.text.clone()),
            (primary.location.offset, primary.location.len),
        ));
        for label in &diagnostic.secondary {
            if &label.location.file == file {
                report.labels.push(span(label));
            } else {
                report.related.push(Report {
                    diagnostic,
                    message: format!("{} ({})", label.text, label.location),
                    severity: miette::Severity::Advice,
                    source: source(sources, &label.location.file),
                    labels: vec![span(label)],
                    related: Vec::new(),
                });
            }
        }
        report
    }
}

fn source(sources: &SourceMap, file: &str) -> Option<NamedSource<String>> {
    sources
        .text_of(file)
        .map(|text| NamedSource::new(file, text.to_owned()))
}

fn span(label: &Label) -> LabeledSpan {
    LabeledSpan::new_with_span(
        Some(label.text.clone()),
        (label.location.offset, label.location.len),
    )
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        // Related reports repeat neither the code nor the help of their parent.
        if self.severity == miette::Severity::Advice {
            return None;
        }
        Some(Box::new(self.diagnostic.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        if self.severity == miette::Severity::Advice {
            return None;
        }
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().cloned()))
    }

    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn miette::Diagnostic> + 'b>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(
            self.related.iter().map(|r| r as &dyn miette::Diagnostic),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceLocation;

    fn sample() -> (Vec<Diagnostic>, SourceMap) {
        let mut sources = SourceMap::default();
        sources.add("a.yaml", "pools:\n  live: {}\n");
        sources.add("b.yaml", "pools:\n  live: {}\n");
        let at = |file: &str| SourceLocation {
            file: file.to_owned(),
            line: 2,
            column: 3,
            offset: 9,
            len: 4,
        };
        let diagnostic =
            Diagnostic::error("config::duplicate_name", "pool 'live' is declared twice")
                .with_label(at("b.yaml"), "declared again here")
                .with_secondary(at("a.yaml"), "first declared here")
                .with_help("rename one");
        (vec![diagnostic], sources)
    }

    #[test]
    fn json_is_versioned_and_flat() {
        let (diagnostics, _) = sample();
        let mut out = Vec::new();
        json(&mut out, &diagnostics).expect("in memory");
        let value: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(value["version"], JSON_VERSION);
        assert_eq!(value["valid"], false);
        let first = &value["diagnostics"][0];
        assert_eq!(first["file"], "b.yaml");
        assert_eq!(
            (first["line"].as_u64(), first["column"].as_u64()),
            (Some(2), Some(3))
        );
        assert_eq!(first["code"], "config::duplicate_name");
        assert_eq!(first["related"][0]["file"], "a.yaml");
    }

    #[test]
    fn text_shows_both_files_with_underlines() {
        let (diagnostics, sources) = sample();
        let mut out = Vec::new();
        text(&mut out, &diagnostics, &sources, TextStyle::PLAIN).expect("in memory");
        let out = String::from_utf8(out).expect("UTF-8");
        assert!(out.contains("[b.yaml:2:3]"), "{out}");
        assert!(out.contains("[a.yaml:2:3]"), "{out}");
        assert!(out.contains("^^|^"), "{out}");
        assert!(!out.contains('\u{1b}'), "no colour in PLAIN");
    }

    #[test]
    fn an_unlocated_diagnostic_renders_without_a_snippet() {
        let diagnostic = Diagnostic::error("config::io", "cannot read x.yaml");
        let mut out = Vec::new();
        text(
            &mut out,
            &[diagnostic],
            &SourceMap::default(),
            TextStyle::PLAIN,
        )
        .expect("in memory");
        assert!(
            String::from_utf8(out)
                .expect("UTF-8")
                .contains("cannot read x.yaml")
        );
    }
}
