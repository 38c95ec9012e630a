//! The one diagnostic type shared by config loading, validation and planning:
//! a stable code, a plain-English message, located labels and help. It holds
//! no colours and no rendering; `render::diagnostics` turns it into text or JSON.

use std::fmt;

use serde::Serialize;

/// How bad a finding is. Only errors change the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// A place in one source file: byte range for underlining, line and column
/// (1-based, in characters) for humans and JSON consumers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SourceLocation {
    pub file: String,
    pub line: u32,
    pub column: u32,
    #[serde(skip)]
    pub offset: usize,
    #[serde(skip)]
    pub len: usize,
}

impl SourceLocation {
    /// The start of a file, for problems that concern a file as a whole.
    pub fn file_start(file: impl Into<String>) -> Self {
        SourceLocation {
            file: file.into(),
            line: 1,
            column: 1,
            offset: 0,
            len: 0,
        }
    }
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// An underlined place with a short note under the underline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    pub location: SourceLocation,
    pub text: String,
}

impl Label {
    pub fn new(location: SourceLocation, text: impl Into<String>) -> Self {
        Label {
            location,
            text: text.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable identifier such as `config::dangling_reference`; scripts match on it.
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    /// Where the problem is; `None` only for problems with no place in a file
    /// (an unreadable path, an empty directory).
    pub primary: Option<Label>,
    /// Other places that explain the problem (the first declaration of a name).
    pub secondary: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            help: None,
        }
    }

    pub fn with_label(mut self, location: SourceLocation, text: impl Into<String>) -> Self {
        self.primary = Some(Label::new(location, text));
        self
    }

    pub fn with_secondary(mut self, location: SourceLocation, text: impl Into<String>) -> Self {
        self.secondary.push(Label::new(location, text));
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Sort key that puts diagnostics in reading order: by file, then position.
    pub fn sort_key(&self) -> (Option<&SourceLocation>, &'static str, &str) {
        (
            self.primary.as_ref().map(|l| &l.location),
            self.code,
            &self.message,
        )
    }
}

/// The text of every file a config was read from, so that renderers can
/// underline snippets long after loading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMap {
    files: Vec<(String, String)>,
}

impl SourceMap {
    /// Adds a file and returns its index.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> usize {
        self.files.push((name.into(), text.into()));
        self.files.len() - 1
    }

    pub fn name(&self, index: usize) -> &str {
        &self.files[index].0
    }

    pub fn text(&self, index: usize) -> &str {
        &self.files[index].1
    }

    /// Replaces `len` bytes at `offset` of file `index` with `*`, byte for
    /// byte so that every other offset stays valid, keeping line breaks so
    /// that every line number does too (a value may span lines).
    /// Out-of-range or mid-character ranges are left alone.
    pub fn mask(&mut self, index: usize, offset: usize, len: usize) {
        let text = &mut self.files[index].1;
        let end = offset.saturating_add(len);
        if let Some(masked) = text.get(offset..end) {
            let stars: String = masked
                .bytes()
                .map(|b| {
                    if b == b'\n' || b == b'\r' {
                        b as char
                    } else {
                        '*'
                    }
                })
                .collect();
            text.replace_range(offset..end, &stars);
        }
    }

    /// The text of the file called `name`, if it was loaded.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}
