//! Diagnostics as miette reports (underlined snippets) or as versioned JSON.

use std::fmt;
use std::io::{self, Write};

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};
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
    source: Option<Snippets<'a>>,
    labels: Vec<LabeledSpan>,
    related: Vec<Report<'a>>,
}

impl<'a> Report<'a> {
    fn new(diagnostic: &'a Diagnostic, sources: &'a SourceMap) -> Self {
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

/// The snippets of `file`, unless its text is not at hand (released, and
/// changed since).
fn source<'a>(sources: &'a SourceMap, file: &str) -> Option<Snippets<'a>> {
    sources
        .index_of(file)
        .filter(|&file| !sources.is_released(file))
        .map(|file| Snippets { sources, file })
}

/// One file of the `SourceMap` as miette reads it. Miette finds the lines
/// around a span by scanning the text from its start, which made every
/// diagnostic in a large file cost a pass over the file (and, through a
/// `NamedSource`, a copy of it): 100 diagnostics in a 12 MB config took
/// seconds. This hands miette only the lines around the span, found in the
/// file's line index, and moves its answer back to the file's positions.
#[derive(Debug)]
struct Snippets<'a> {
    sources: &'a SourceMap,
    file: usize,
}

impl SourceCode for Snippets<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'b> + 'b>, MietteError> {
        let text = self.sources.text(self.file);
        let lines = self.sources.lines(self.file);
        // Miette counts a lone `\r` as a line break and the index does not:
        // such a file is read whole. Otherwise the window starts a line
        // before the context miette asks for (so that a span at the start
        // of a line sees the line break before it, as in the whole text) and
        // ends two lines after it.
        let (first, from, to) = if lines.has_lone_cr() {
            (0, 0, text.len())
        } else {
            let start = span.offset().min(text.len());
            let end = span.offset().saturating_add(span.len()).min(text.len());
            let first = lines
                .line_of(start)
                .saturating_sub(context_lines_before + 1);
            let last = lines.line_of(end) + context_lines_after + 2;
            let from = lines.start(first).unwrap_or(0);
            (first, from, lines.start(last).unwrap_or(text.len()))
        };
        let window = &text.as_bytes()[from..to];
        let shifted = SourceSpan::new((span.offset() - from).into(), span.len());
        let inner = window.read_span(&shifted, context_lines_before, context_lines_after)?;
        let found = SourceSpan::new((inner.span().offset() + from).into(), inner.span().len());
        Ok(Box::new(MietteSpanContents::new_named(
            self.sources.name(self.file).to_owned(),
            inner.data(),
            found,
            inner.line() + first,
            inner.column(),
            inner.line_count() + first,
        )))
    }
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

    /// Whatever the span and context, miette gets from the window what it
    /// would have read from the whole text.
    #[test]
    fn snippets_read_as_the_whole_text_does() {
        let texts = [
            "pools:\n  live:\n\n    members: [a, b]\n  élan: {}\n",
            "a\r\nb\r\n\r\nc",
            "one\rtwo\nthree\n",
            "",
        ];
        for text in texts {
            let mut sources = SourceMap::default();
            let file = sources.add("a.yaml", text);
            let snippets = Snippets {
                sources: &sources,
                file,
            };
            for offset in 0..=text.len() {
                for len in (0..4).filter(|len| offset + len <= text.len()) {
                    for context in 0..3 {
                        let span = SourceSpan::new(offset.into(), len);
                        let whole = text.read_span(&span, context, context);
                        let window = snippets.read_span(&span, context, context);
                        let seen = |c: Result<Box<dyn SpanContents<'_> + '_>, MietteError>| {
                            c.map(|c| {
                                (
                                    c.data().to_vec(),
                                    *c.span(),
                                    c.line(),
                                    c.column(),
                                    c.line_count(),
                                )
                            })
                            .map_err(|e| e.to_string())
                        };
                        assert_eq!(
                            seen(window),
                            seen(whole),
                            "{text:?} at {offset}+{len}, context {context}"
                        );
                    }
                }
            }
        }
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
