//! The one diagnostic type shared by config loading, validation and planning:
//! a stable code, a plain-English message, located labels and help. It holds
//! no colours and no rendering; `render::diagnostics` turns it into text or JSON.

use std::fmt;
use std::sync::OnceLock;

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
    files: Vec<SourceFile>,
}

/// One file of a `SourceMap`, with the index of its lines once asked for.
#[derive(Debug, Clone, Default)]
struct SourceFile {
    name: String,
    /// Empty while the text is released.
    text: String,
    /// What the text was, while it is released (see [`SourceMap::release`]).
    released: Option<Fingerprint>,
    /// The (offset, len) ranges masked, in order: a text read again is
    /// masked alike before it is recognised, so no secret comes back.
    masks: Vec<(usize, usize)>,
    lines: OnceLock<LineIndex>,
}

/// Equal when name and text (or the fingerprint of a released text) are:
/// the line index only caches what the text says, and the masks are in it.
impl PartialEq for SourceFile {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.text == other.text && self.released == other.released
    }
}

/// Recognises a released text when it is read again: its length and a
/// 64-bit hash. Not a defence against a forger (who could write the config
/// anyway) but against an edit between reading a config and showing a
/// finding in it, which it misses by chance once in 2^64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: usize,
    hash: u64,
}

impl Fingerprint {
    fn of(text: &str) -> Self {
        use std::hash::BuildHasher;
        Fingerprint {
            len: text.len(),
            hash: foldhash::quality::FixedState::with_seed(0).hash_one(text),
        }
    }
}

impl Eq for SourceFile {}

impl SourceMap {
    /// Adds a file and returns its index.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> usize {
        self.files.push(SourceFile {
            name: name.into(),
            text: text.into(),
            ..SourceFile::default()
        });
        self.files.len() - 1
    }

    pub fn name(&self, index: usize) -> &str {
        &self.files[index].name
    }

    /// The text of file `index`; empty while it is released.
    pub fn text(&self, index: usize) -> &str {
        &self.files[index].text
    }

    /// Whether the text of file `index` is released (and not taken back).
    pub fn is_released(&self, index: usize) -> bool {
        self.files[index].released.is_some()
    }

    /// Lets go of the texts, keeping what recognises each. A loaded config
    /// needs its text again only to show a finding with its lines, which
    /// few plans have; a config of 1M members is 100 MB of text.
    pub fn release(&mut self) {
        for file in &mut self.files {
            if file.released.is_none() {
                file.released = Some(Fingerprint::of(&file.text));
                file.text = String::new();
                file.lines = OnceLock::new();
            }
        }
    }

    /// Takes back the released texts, each read again by `read` (given the
    /// file's name) and masked as before; a text is taken back only when it
    /// is the text released. Returns the names of the files that changed
    /// or could not be read: they stay released, and a finding in one is
    /// shown without its lines.
    pub fn restore(&mut self, mut read: impl FnMut(&str) -> Option<String>) -> Vec<String> {
        let mut lost = Vec::new();
        for file in &mut self.files {
            let Some(released) = file.released else {
                continue;
            };
            let back = read(&file.name)
                .map(|mut text| {
                    for &(offset, len) in &file.masks {
                        mask(&mut text, offset, len);
                    }
                    text
                })
                .filter(|text| Fingerprint::of(text) == released);
            match back {
                Some(text) => {
                    file.text = text;
                    file.released = None;
                }
                None => lost.push(file.name.clone()),
            }
        }
        lost
    }

    /// Where the lines of file `index` start, indexed on first use and kept:
    /// locating many findings in a large file then costs a lookup each,
    /// not a scan from the start of the file each.
    pub fn lines(&self, index: usize) -> &LineIndex {
        let file = &self.files[index];
        file.lines.get_or_init(|| LineIndex::new(&file.text))
    }

    /// Replaces `len` bytes at `offset` of file `index` with `*`, byte for
    /// byte so that every other offset stays valid, keeping line breaks so
    /// that every line number does too (a value may span lines).
    /// Out-of-range or mid-character ranges are left alone.
    pub fn mask(&mut self, index: usize, offset: usize, len: usize) {
        let file = &mut self.files[index];
        if mask(&mut file.text, offset, len) {
            file.masks.push((offset, len));
            file.lines = OnceLock::new();
        }
    }

    /// The index of the file called `name`, if it was loaded.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.files.iter().position(|f| f.name == name)
    }

    /// The text of the file called `name`, if it was loaded.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.index_of(name).map(|index| self.text(index))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Replaces `len` bytes at `offset` of `text` with `*` but for line breaks;
/// false, changing nothing, for an out-of-range or mid-character range.
fn mask(text: &mut String, offset: usize, len: usize) -> bool {
    let end = offset.saturating_add(len);
    let Some(masked) = text.get(offset..end) else {
        return false;
    };
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
    true
}

/// The byte offsets at which the lines of a text start: 0, then after each
/// `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineIndex {
    starts: Vec<usize>,
    /// Whether some `\r` is not followed by `\n`: a line break to readers
    /// that count `\r` as one, though not to this index.
    lone_cr: bool,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        starts.extend(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        );
        let lone_cr = bytes
            .iter()
            .enumerate()
            .any(|(i, b)| *b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
        LineIndex { starts, lone_cr }
    }

    /// The 0-based line holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset) - 1
    }

    /// Where 0-based `line` starts; `None` past the last line.
    pub fn start(&self, line: usize) -> Option<usize> {
        self.starts.get(line).copied()
    }

    pub fn has_lone_cr(&self) -> bool {
        self.lone_cr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_start_after_each_newline() {
        let index = LineIndex::new("ab\ncd\r\n\nx");
        assert_eq!(
            (0..9).map(|o| index.line_of(o)).collect::<Vec<_>>(),
            [0, 0, 0, 1, 1, 1, 1, 2, 3]
        );
        assert_eq!((index.start(3), index.start(4)), (Some(8), None));
        assert!(!index.has_lone_cr());
        assert!(LineIndex::new("a\rb").has_lone_cr());
    }

    #[test]
    fn a_released_text_read_again_unchanged_comes_back_masked_as_before() {
        let original = "pw: s3\ncret\nnext: 1\n";
        let mut sources = SourceMap::default();
        let file = sources.add("a.yaml", original);
        sources.mask(file, 4, 7);
        let before = sources.clone();
        sources.release();
        assert!(sources.is_released(file));
        assert_eq!(sources.text(file), "");
        assert_ne!(sources, before);
        let mut asked = Vec::new();
        let lost = sources.restore(|name| {
            asked.push(name.to_owned());
            Some(original.to_owned())
        });
        assert_eq!((lost, asked), (vec![], vec!["a.yaml".to_owned()]));
        assert!(!sources.is_released(file));
        assert_eq!(sources, before);
        assert_eq!(sources.text(file), "pw: **\n****\nnext: 1\n");
    }

    #[test]
    fn a_released_text_that_changed_or_cannot_be_read_stays_released() {
        let mut sources = SourceMap::default();
        let edited = sources.add("edited.yaml", "a: 1\n");
        let gone = sources.add("gone.yaml", "b: 2\n");
        let same = sources.add("same.yaml", "c: 3\n");
        sources.release();
        let lost = sources.restore(|name| match name {
            "edited.yaml" => Some("a: 2\n".to_owned()),
            "same.yaml" => Some("c: 3\n".to_owned()),
            _ => None,
        });
        assert_eq!(lost, ["edited.yaml", "gone.yaml"]);
        assert!(sources.is_released(edited) && sources.is_released(gone));
        assert_eq!((sources.text(edited), sources.text(same)), ("", "c: 3\n"));
        // Asked again, only what is still released is read.
        let mut asked = Vec::new();
        sources.restore(|name| {
            asked.push(name.to_owned());
            None
        });
        assert_eq!(asked, ["edited.yaml", "gone.yaml"]);
    }

    #[test]
    fn masking_keeps_the_lines_and_equality_ignores_the_index() {
        let mut sources = SourceMap::default();
        let file = sources.add("a.yaml", "pw: s3\ncret\nnext: 1\n");
        let before = sources.lines(file).clone();
        let unindexed = sources.clone();
        sources.mask(file, 4, 7);
        assert_eq!(sources.text(file), "pw: **\n****\nnext: 1\n");
        assert_eq!(sources.lines(file), &before);
        let mut masked = unindexed;
        masked.mask(file, 4, 7);
        assert_eq!(masked, sources);
    }
}
