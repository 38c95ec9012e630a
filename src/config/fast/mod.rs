//! The fast YAML front end: reads the plain subset of YAML that configs are
//! written in (block mappings and sequences, one-line flow collections,
//! plain and one-line quoted scalars, comments) several times faster than
//! the general parser, or declines. It declines everything else and every
//! problem: anchors, aliases, tags, multi-line and block scalars, tabs,
//! documents markers, nulls, scalars a YAML 1.2 reader would not take for
//! text, duplicate keys, values of the wrong type, unknown keys. The caller
//! then parses the file with serde-saphyr, so every diagnostic (located,
//! with its words), the duplicate-key and alias-bomb protection and the
//! budget stay that parser's; what this reads, it reads as serde-saphyr
//! does, places included (a test compares them).
//!
//! It is a `Deserializer` for the config's own serde types, so that the
//! file's shape is declared once, in `config::spec`. Block mappings are
//! read entry by entry as the types ask for them (`Block`); what fits on
//! one line becomes a small tree of nodes borrowing the file's text.

mod deserializer;

use std::borrow::Cow;
use std::hash::BuildHasher;

use serde::de;

use super::spec::{At, ConfigFile};
use deserializer::{Block, Value};

/// Nesting deeper than any config needs; deeper files are the general
/// parser's (and its limits').
const MAX_DEPTH: usize = 32;

/// Keys a mapping may hold before its duplicates are found by their hashes
/// (see `Keys`) rather than by comparing each new key with those before it.
const SMALL_MAPPING: usize = 16;

/// The file as a config, or `None` when the fast front end declines it.
pub(super) fn parse(text: &str) -> Option<ConfigFile> {
    read(text)
}

/// The file as a `T`, an empty file as `T`'s default.
fn read<T: de::DeserializeOwned + Default>(text: &str) -> Option<T> {
    let ascii = plain_characters(text)?;
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        ascii,
        line_start: 0,
        line_end: line_end(text.as_bytes(), 0),
        line: 1,
    };
    if reader.next_content()?.is_none() {
        return Some(T::default());
    }
    let root = reader.document()?;
    let file = T::deserialize(root).ok()?;
    reader.next_content()?.is_none().then_some(file)
}

/// Whether every character is one the subset allows (`Some(true)` when all
/// are ASCII): no control character but the line feed (so no tab and no
/// carriage return), no byte order mark, no line or paragraph separator.
fn plain_characters(text: &str) -> Option<bool> {
    // Judged a block at a time, without a branch per byte, so that the
    // compiler can vectorise the loop: a byte at a time was a tenth of the
    // whole parse of a 10 MB config.
    let mut ascii = true;
    for block in text.as_bytes().chunks(64) {
        let (mut control, mut high) = (false, false);
        for &b in block {
            control |= (b < 0x20 && b != b'\n') | (b == 0x7f);
            high |= b >= 0x80;
        }
        if control {
            return None;
        }
        ascii &= !high;
    }
    let unusual = |c: char| {
        matches!(
            c,
            '\u{80}'..='\u{9f}' | '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}'
        )
    };
    (ascii || !text.chars().any(unusual)).then_some(ascii)
}

/// A node of the tree, borrowing the file's text where it can.
#[derive(Debug)]
enum Node<'t> {
    Scalar {
        text: Cow<'t, str>,
        plain: bool,
        at: At,
    },
    Seq {
        items: Vec<Node<'t>>,
        at: At,
    },
    Map {
        entries: Vec<(Node<'t>, Node<'t>)>,
        at: At,
    },
}

impl Node<'_> {
    fn at(&self) -> At {
        match self {
            Node::Scalar { at, .. } | Node::Seq { at, .. } | Node::Map { at, .. } => *at,
        }
    }

    /// The text of a scalar; `None` for a collection.
    fn text(&self) -> Option<&str> {
        match self {
            Node::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// The characters a plain scalar may not start with (beyond the ones that
/// start a quoted scalar or a flow collection, handled before).
const INDICATORS: [bool; 256] = byte_set(b"-?:,[]{}#&*!|>%@`");

/// The set of `bytes`, as a table to look a byte up in at once.
const fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        set[bytes[i] as usize] = true;
        i += 1;
    }
    set
}

/// A line-oriented reader of the subset. Positions are byte offsets; the
/// current line is the one that starts at `line_start`.
struct Reader<'t> {
    text: &'t str,
    bytes: &'t [u8],
    ascii: bool,
    line_start: usize,
    /// Where the current line ends (its line feed, or the end of the text):
    /// found once per line, as a flow collection may hold a whole stack on
    /// one line.
    line_end: usize,
    line: u32,
}

fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes
        .get(from..)
        .and_then(|rest| memchr::memchr(b'\n', rest))
        .map_or(bytes.len(), |i| from + i)
}

/// The bytes that may end a plain scalar in flow context, or decline it
/// (see `Reader::plain`); in block context only `:` and `#` may.
const FLOW_STOPS: [bool; 256] = byte_set(b":#,[]{}");

impl<'t> Reader<'t> {
    fn byte(&self, at: usize) -> Option<u8> {
        self.bytes.get(at).copied()
    }

    fn skip_spaces(&self, mut at: usize) -> usize {
        while self.byte(at) == Some(b' ') {
            at += 1;
        }
        at
    }

    /// Moves to the next line that holds more than spaces and a comment,
    /// and returns its indentation; `Some(None)` at the end of the file.
    fn next_content(&mut self) -> Option<Option<usize>> {
        loop {
            if self.line_start >= self.bytes.len() {
                return Some(None);
            }
            let first = self.skip_spaces(self.line_start);
            match self.byte(first) {
                Some(b'\n') | Some(b'#') | None => {}
                Some(_) => return Some(Some(first - self.line_start)),
            }
            self.next_line();
        }
    }

    fn next_line(&mut self) {
        self.line_start = (self.line_end + 1).min(self.bytes.len() + 1);
        self.line_end = line_end(self.bytes, self.line_start);
        self.line += 1;
    }

    /// The place of `len` bytes at `offset` on the current line. Inlined:
    /// called for every scalar, and its `Option<At>` came back through
    /// memory, which stalled the read after it.
    #[inline(always)]
    fn at(&self, offset: usize, len: usize) -> Option<At> {
        let column = if self.ascii {
            offset - self.line_start
        } else {
            self.text[self.line_start..offset].chars().count()
        };
        Some(At {
            line: self.line,
            column: u32::try_from(column + 1).ok()?,
            offset: u32::try_from(offset).ok()?,
            len: u32::try_from(len).ok()?,
        })
    }

    /// After a value on the current line: only spaces and a comment may
    /// follow; moves to the next line.
    fn end_of_line(&mut self, from: usize) -> Option<()> {
        let rest = self.skip_spaces(from);
        match self.byte(rest) {
            None | Some(b'\n') => {}
            Some(b'#') if rest > from => {}
            Some(_) => return None,
        }
        self.next_line();
        Some(())
    }

    /// The whole file: one block mapping at the left margin.
    fn document(&mut self) -> Option<Block<'_, 't>> {
        let first = self.line_start;
        let marker = ["---", "...", "%"]
            .iter()
            .any(|m| self.text[first..].starts_with(m));
        if marker || self.byte(first) == Some(b' ') {
            return None;
        }
        self.block_mapping(0, 0)
    }

    /// A block mapping whose keys start at column `indent` (0-based), the
    /// current line holding its first key. Its entries are read as the
    /// config's types ask for them (see `Block`).
    fn block_mapping(&mut self, indent: usize, depth: usize) -> Option<Block<'_, 't>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let at = self.at(self.line_start + indent, 0)?;
        Some(Block {
            reader: self,
            indent,
            depth,
            at,
        })
    }

    /// The value after `key:` (`from` is just past the colon): on the same
    /// line, or a block collection on the lines below.
    fn mapping_value(&mut self, indent: usize, from: usize, depth: usize) -> Option<Value<'_, 't>> {
        let start = self.skip_spaces(from);
        let gap = start > from;
        match self.byte(start) {
            None | Some(b'\n') => {}
            Some(b'#') if gap => {}
            Some(_) if gap => {
                let (value, end) = self.inline(start, depth + 1)?;
                self.end_of_line(end)?;
                return Some(Value::Node(value));
            }
            Some(_) => return None,
        }
        self.next_line();
        // Nothing below (a null) is the general parser's to judge.
        let below = self.next_content()??;
        let starts_entry = self.is_entry(self.line_start + below);
        if below > indent && starts_entry {
            self.block_sequence(below, false, depth + 1)
                .map(Value::Node)
        } else if below > indent {
            self.block_mapping(below, depth + 1).map(Value::Block)
        } else if below == indent && starts_entry {
            self.block_sequence(below, true, depth + 1).map(Value::Node)
        } else {
            None
        }
    }

    /// Whether a sequence entry (`- `) starts at `at`.
    fn is_entry(&self, at: usize) -> bool {
        self.byte(at) == Some(b'-') && matches!(self.byte(at + 1), Some(b' ') | Some(b'\n') | None)
    }

    /// A block sequence whose dashes are at column `indent`; `compact` when
    /// it is the value of a key at the same column, so that a line there
    /// without a dash ends it rather than breaking it.
    fn block_sequence(&mut self, indent: usize, compact: bool, depth: usize) -> Option<Node<'t>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut items = Vec::new();
        let mut at = None;
        loop {
            match self.next_content()? {
                Some(found) if found == indent => {}
                Some(found) if found > indent => return None,
                _ => break,
            }
            let dash = self.line_start + indent;
            if !self.is_entry(dash) {
                if compact {
                    break;
                }
                return None;
            }
            let start = self.skip_spaces(dash + 1);
            if matches!(self.byte(start), None | Some(b'\n') | Some(b'#')) {
                return None;
            }
            // serde-saphyr places an indented sequence at its first dash,
            // a compact one at its first item.
            if at.is_none() {
                at = Some(self.at(if compact { start } else { dash }, 0)?);
            }
            let (item, end) = self.inline(start, depth + 1)?;
            items.push(item);
            self.end_of_line(end)?;
        }
        Some(Node::Seq { items, at: at? })
    }

    /// A value that fits on the current line from `start`: a flow
    /// collection or a scalar. Returns it and where it ends.
    fn inline(&mut self, start: usize, depth: usize) -> Option<(Node<'t>, usize)> {
        match self.byte(start)? {
            b'[' | b'{' => self.flow_collection(start, depth),
            _ => self.scalar(start, Context::Block),
        }
    }

    /// A flow collection (`[...]` or `{...}`) starting at `start` and ending
    /// on the same line.
    fn flow_collection(&mut self, start: usize, depth: usize) -> Option<(Node<'t>, usize)> {
        if depth > MAX_DEPTH {
            return None;
        }
        let at = self.at(start, 1)?;
        let mapping = self.byte(start) == Some(b'{');
        let close = if mapping { b'}' } else { b']' };
        let mut at_entry = self.skip_spaces(start + 1);
        let mut items = Vec::new();
        let mut entries: Vec<(Node<'t>, Node<'t>)> = Vec::new();
        let mut keys = Keys::default();
        if self.byte(at_entry) == Some(close) {
            at_entry += 1;
        } else {
            loop {
                if mapping {
                    let (key, after) = self.scalar(at_entry, Context::FlowKey)?;
                    if self.byte(after) != Some(b':') || self.byte(after + 1) != Some(b' ') {
                        return None;
                    }
                    let key_text = key.text()?;
                    if !keys.insert(key_text, &entries, |(k, _)| k.text()) {
                        return None;
                    }
                    let value_start = self.skip_spaces(after + 1);
                    let (value, end) = self.flow_node(value_start, depth)?;
                    entries.push((key, value));
                    at_entry = end;
                } else {
                    let (item, end) = self.flow_node(at_entry, depth)?;
                    items.push(item);
                    at_entry = end;
                }
                at_entry = self.skip_spaces(at_entry);
                match self.byte(at_entry)? {
                    b',' => {
                        at_entry = self.skip_spaces(at_entry + 1);
                        // A trailing comma, or one more line: declined.
                        if matches!(self.byte(at_entry), Some(b']') | Some(b'}')) {
                            return None;
                        }
                    }
                    b if b == close => {
                        at_entry += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        if !keys.distinct() {
            return None;
        }
        let node = if mapping {
            Node::Map { entries, at }
        } else {
            Node::Seq { items, at }
        };
        Some((node, at_entry))
    }

    fn flow_node(&mut self, start: usize, depth: usize) -> Option<(Node<'t>, usize)> {
        match self.byte(start)? {
            b'[' | b'{' => self.flow_collection(start, depth + 1),
            _ => self.scalar(start, Context::Flow),
        }
    }

    /// A scalar at `start`: quoted on one line, or plain. Returns it and
    /// where it ends.
    fn scalar(&mut self, start: usize, context: Context) -> Option<(Node<'t>, usize)> {
        match self.byte(start)? {
            b'\'' => self.single_quoted(start),
            b'"' => self.double_quoted(start),
            b if INDICATORS[usize::from(b)] => None,
            _ => self.plain(start, context),
        }
    }

    fn single_quoted(&mut self, start: usize) -> Option<(Node<'t>, usize)> {
        let end = self.line_end;
        let mut text: Option<String> = None;
        let mut from = start + 1;
        let mut i = from;
        while i < end {
            if self.bytes[i] == b'\'' {
                if self.byte(i + 1) != Some(b'\'') {
                    let content = &self.text[from..i];
                    let text = match text {
                        Some(mut owned) => {
                            owned.push_str(content);
                            Cow::Owned(owned)
                        }
                        None => Cow::Borrowed(content),
                    };
                    return self.quoted(text, start, i + 1);
                }
                let owned = text.get_or_insert_with(String::new);
                owned.push_str(&self.text[from..=i]);
                i += 2;
                from = i;
                continue;
            }
            i += 1;
        }
        None
    }

    fn double_quoted(&mut self, start: usize) -> Option<(Node<'t>, usize)> {
        let end = self.line_end;
        let close = self.bytes[start + 1..end]
            .iter()
            .position(|&b| b == b'"' || b == b'\\')
            .map(|i| start + 1 + i)?;
        if self.bytes[close] == b'\\' {
            return None;
        }
        self.quoted(
            Cow::Borrowed(&self.text[start + 1..close]),
            start,
            close + 1,
        )
    }

    fn quoted(&self, text: Cow<'t, str>, start: usize, end: usize) -> Option<(Node<'t>, usize)> {
        let at = self.at(start, end - start)?;
        Some((
            Node::Scalar {
                text,
                plain: false,
                at,
            },
            end,
        ))
    }

    /// A plain scalar: up to the end of the line, a comment, or a `: ` (and
    /// in flow context a `,` or a closing bracket). One that reads as a
    /// mapping (`- a: b`), or that a flow indicator breaks, is declined.
    fn plain(&mut self, start: usize, context: Context) -> Option<(Node<'t>, usize)> {
        let end = self.line_end;
        let mut stop = end;
        let mut i = start;
        loop {
            // Skips to the next byte that could stop the scalar: most
            // bytes of a config are in plain scalars, and judging each in
            // full was a fifth of the parse.
            let rest = &self.bytes[i..end];
            let next_stop = if context.in_flow() {
                rest.iter().position(|&b| FLOW_STOPS[usize::from(b)])
            } else {
                memchr::memchr2(b':', b'#', rest)
            };
            let Some(skipped) = next_stop else {
                break;
            };
            i += skipped;
            let b = self.bytes[i];
            let next = self.byte(i + 1);
            let colon_ends = b == b':'
                && (matches!(next, Some(b' ') | Some(b'\n') | None)
                    || (context.in_flow() && matches!(next, Some(b',' | b']' | b'}'))));
            if colon_ends {
                if !context.is_key() {
                    return None;
                }
                stop = i;
                break;
            }
            if b == b'#' && self.bytes[i - 1] == b' ' {
                stop = i;
                break;
            }
            if context.in_flow() {
                match b {
                    b',' | b']' | b'}' => {
                        stop = i;
                        break;
                    }
                    b'[' | b'{' => return None,
                    _ => {}
                }
            }
            i += 1;
        }
        let mut trimmed = stop;
        while trimmed > start && self.bytes[trimmed - 1] == b' ' {
            trimmed -= 1;
        }
        // A flow scalar must end on its line, and a key at its colon.
        if (context.in_flow() && stop == end) || (context.is_key() && stop != trimmed) {
            return None;
        }
        let at = self.at(start, trimmed - start)?;
        let text = Cow::Borrowed(&self.text[start..trimmed]);
        let node = Node::Scalar {
            text,
            plain: true,
            at,
        };
        Some((node, trimmed))
    }
}

/// Where a scalar stands, which decides what ends a plain one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    /// A block mapping key.
    Key,
    /// A value or sequence entry in block context.
    Block,
    /// A flow mapping key.
    FlowKey,
    /// A value or entry in a flow collection.
    Flow,
}

impl Context {
    fn is_key(self) -> bool {
        matches!(self, Context::Key | Context::FlowKey)
    }

    fn in_flow(self) -> bool {
        matches!(self, Context::Flow | Context::FlowKey)
    }
}

/// The keys of one mapping, to refuse a duplicate. A small mapping
/// compares a new key with the keys before it, which costs no allocation
/// (most mappings of a config have a few keys). A large one (the app
/// instances of a stack, a million keys) keeps the 64-bit foldhash of each
/// key, and looks for two equal ones once, when the mapping ends, by
/// sorting them: no copy of the text, no comparison of it, and no random
/// access into a table for every key (a set of the keys themselves was a
/// sixth of the parse of a large file, a table of their hashes still a
/// tenth). foldhash is seeded at random per process, so a file cannot be
/// written to make its keys collide; two different keys that collide by
/// chance (about one chance in 10^7 for a million keys) are taken for a
/// duplicate, and the general parser, slower but exact, then reads the
/// file.
#[derive(Default)]
struct Keys {
    many: Option<(foldhash::fast::RandomState, Vec<u64>)>,
}

impl Keys {
    /// Adds `key` to a mapping whose keys so far are `before` (read by
    /// `text`; only the first `SMALL_MAPPING` of them are looked at); false
    /// when a small mapping has it already. A large mapping's duplicates
    /// are found by [`Keys::distinct`].
    fn insert<T>(&mut self, key: &str, before: &[T], text: impl Fn(&T) -> Option<&str>) -> bool {
        let (state, hashes) = match &mut self.many {
            Some(many) => many,
            None if before.len() < SMALL_MAPPING => {
                return !before.iter().any(|earlier| text(earlier) == Some(key));
            }
            None => {
                let state = foldhash::fast::RandomState::default();
                let hashes = before.iter().filter_map(&text);
                let hashes = hashes.map(|earlier| state.hash_one(earlier)).collect();
                self.many.insert((state, hashes))
            }
        };
        hashes.push(state.hash_one(key));
        true
    }

    /// Whether the keys of a mapping that has ended are all different.
    fn distinct(self) -> bool {
        let Some((_, mut hashes)) = self.many else {
            return true;
        };
        hashes.sort_unstable();
        hashes.windows(2).all(|pair| pair[0] != pair[1])
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;
    use std::path::{Path, PathBuf};

    use proptest::prelude::*;
    use serde::de::{Deserializer, Visitor};

    use super::*;
    use crate::config::yaml::parse_general;

    /// What this front end reads, serde-saphyr reads the same, places
    /// included; `Some(true)` when this one took the text.
    fn agrees(text: &str) -> Result<bool, String> {
        let Some(fast) = parse(text) else {
            return Ok(false);
        };
        match parse_general(text) {
            Ok(general) if format!("{general:?}") == format!("{fast:?}") => Ok(true),
            Ok(general) => Err(format!("read differently:\n{fast:?}\n{general:?}")),
            Err(e) => Err(format!("taken, though serde-saphyr refuses it: {e}")),
        }
    }

    fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            if path.is_dir() {
                yaml_files(&path, found);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                found.push(path);
            }
        }
    }

    #[test]
    fn reads_every_example_as_serde_saphyr_does_and_declines_every_invalid_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut examples = Vec::new();
        yaml_files(&root.join("examples"), &mut examples);
        let mut taken = 0;
        for path in &examples {
            let text = std::fs::read_to_string(path).unwrap();
            let agreed = agrees(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            taken += usize::from(agreed);
        }
        assert!(
            taken >= 8,
            "only {taken} of {} examples taken",
            examples.len()
        );
        let mut invalid = Vec::new();
        yaml_files(&root.join("tests/invalid"), &mut invalid);
        for path in &invalid {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            agrees(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }

    #[test]
    fn reads_the_subset_as_serde_saphyr_does() {
        let taken = [
            "stack: s\n",
            "# only a comment\n",
            "",
            "stack: s # a comment\npools:\n  live:\n    members:\n      - rds-01   # first\n      - 'rds-02'\n      - \"rds-03\"\n",
            "pools:\n  live:\n    members:\n    - a\n    - b\n    min_members: 2\n",
            "pools:\n  p:\n    load_balancing: {enabled: true, sticky_sessions: 10m, grace_period: 30}\n",
            "pools:\n  p:\n    labels: {team: 'o''neil', \"x y\": z}\n    members: [a, b,c]\n",
            "pools:\n  p:\n    default_credentials: {username: 'CORP\\svc', password: {env: PW}}\n",
            "pools:\n  p:\n    default_credentials:\n      password:\n        file: /run/secrets/pw\n",
            "destinations:\n  é-host:\n    maintenance: {enabled: true, notice_de: Wartung bis Montag, allowed_groups: []}\n",
            "broker:\n  url: http://localhost:8080\nsafety: {max_delete_percent: 5}\n",
            "app_configs:\n  c: {pool: p, type: desktop, protocol: rdp, admin_session: false}\n",
            "app_instances:\n  i: {app_config: c, user: u1@corp.example, destination: 2nd-floor}\n",
            "pools:\n\n  p:\n\n    members:\n\n      - a\n",
            // Bytes that stop a plain scalar only in some places: a colon
            // without a space, a hash without one before it.
            "stack: a:b#c\npools:\n  p:b:\n    members: [x:y, a#b, c]\n",
            "stack: s#x # the comment\npools:\n  p:\n    members:\n      - a:b # c:d\n",
            "pools:\n  p:\n    labels: {k:v: w, a: b#c}\n",
        ];
        for text in taken {
            assert_eq!(agrees(text), Ok(true), "{text:?}");
        }
        let declined = [
            "pools: {p: {}, p: {}}\n",
            "pools:\n  p: {}\n  p: {}\n",
            "stack: &s s\npools:\n  p:\n    labels: {a: *s}\n",
            "stack: !!str s\n",
            "---\nstack: s\n",
            "stack: |\n  s\n",
            "stack: s\n  t\n",
            "stack: 'a\n  b'\n",
            "stack:\ts\n",
            "stack: s\r\n",
            "stack: true\n",
            "stack: 123\n",
            "stack: ~\n",
            "stack:\n",
            "pools:\n  p:\n    members: [a,\n      b]\n",
            "pools:\n  p:\n    min_members: 007\n",
            "pools:\n  p:\n    min_members: -1\n",
            "pools:\n  p:\n    load_balancing: {enabled: yes}\n",
            "pools:\n  p:\n    members:\n      - a: b\n",
            "stack: a: b\n",
            "stack: \"a\\tb\"\n",
            "nope: 1\n",
            "  stack: s\n",
            "pools: [a, b, ]\n",
            "pools:\n  p:\n    members: [a[b]\n",
            "pools:\n  p:\n    members: [a, b}\n",
            "pools:\n  p:\n    labels: {a: b: c}\n",
        ];
        for text in declined {
            assert_eq!(agrees(text), Ok(false), "{text:?}");
        }
    }

    #[test]
    fn a_duplicate_among_many_keys_is_declined() {
        // Past SMALL_MAPPING keys, duplicates are looked up in the hash set.
        let names: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
        let block = |names: &[String]| {
            let pools: String = names.iter().map(|n| format!("  {n}: {{}}\n")).collect();
            format!("pools:\n{pools}")
        };
        assert_eq!(agrees(&block(&names)), Ok(true));
        let mut twice = names.clone();
        twice.push("p3".to_owned());
        assert_eq!(agrees(&block(&twice)), Ok(false));
        // A duplicate of the last small key, and one as the key that moves
        // the mapping from comparisons to hashes.
        for (at, of) in [(SMALL_MAPPING - 1, SMALL_MAPPING - 2), (SMALL_MAPPING, 0)] {
            let mut names = names.clone();
            names[at] = names[of].clone();
            assert_eq!(
                agrees(&block(&names)),
                Ok(false),
                "key {at} repeats key {of}"
            );
        }
        let flow = |names: &[String]| {
            let pairs: Vec<String> = names.iter().map(|n| format!("{n}: x")).collect();
            format!("pools:\n  p:\n    labels: {{{}}}\n", pairs.join(", "))
        };
        assert_eq!(agrees(&flow(&names)), Ok(true));
        assert_eq!(agrees(&flow(&twice)), Ok(false));
    }

    #[test]
    fn a_block_mapping_is_read_to_its_end_even_when_ignored() {
        // No `deny_unknown_fields`: the unknown `b` is skipped, and so must
        // its lines be, or `z` would be read inside it or not at all.
        #[derive(Debug, Default, PartialEq, serde::Deserialize)]
        struct Lenient {
            a: String,
            z: String,
        }
        // (`y` would read as a YAML 1.1 boolean and be declined.)
        let text = "a: x\nb:\n  c: d\n  e:\n    f: g\nz: w\n";
        let expected = Lenient {
            a: "x".into(),
            z: "w".into(),
        };
        assert_eq!(read::<Lenient>(text), Some(expected));
    }

    #[test]
    fn a_type_that_stops_reading_a_block_mapping_early_is_declined() {
        /// Reads the first entry of a mapping and stops.
        #[derive(Debug, Default)]
        struct FirstOnly;
        impl<'de> serde::Deserialize<'de> for FirstOnly {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct First;
                impl<'de> Visitor<'de> for First {
                    type Value = FirstOnly;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a mapping")
                    }
                    fn visit_map<A: de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<FirstOnly, A::Error> {
                        let _: Option<(String, String)> = map.next_entry()?;
                        Ok(FirstOnly)
                    }
                }
                d.deserialize_map(First)
            }
        }
        assert!(read::<FirstOnly>("a: x\n").is_some());
        assert!(read::<FirstOnly>("a: x\nb: w\n").is_none());
        assert!(read::<FirstOnly>("a: x\nb:\n  c: d\n").is_none());
    }

    /// Config-like YAML built from pieces that the fast front end takes and
    /// pieces that it must decline or read exactly as serde-saphyr does.
    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            60 => "[a-z][a-z0-9._-]{0,8}",
            8 => "[0-9]{1,3}[a-z]{0,2}",
            4 => Just("'q''t'".to_owned()),
            4 => Just("\"dq\"".to_owned()),
            4 => Just("élan".to_owned()),
            4 => Just("[a, 'b']".to_owned()),
            4 => Just("{env: X}".to_owned()),
            4 => Just("http://h:80".to_owned()),
            2 => Just("{}".to_owned()),
            1 => Just("true".to_owned()),
            1 => Just("~".to_owned()),
            1 => Just("-x".to_owned()),
            1 => Just("a # b".to_owned()),
            1 => Just("a:b".to_owned()),
            1 => Just("a: b".to_owned()),
        ]
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            90 => "[a-z][a-z0-9._-]{0,8}",
            4 => "'[a-z]{1,3}'",
            4 => "[0-9]{1,3}[a-z]{1,2}",
            2 => scalar(),
        ]
    }

    fn pool() -> impl Strategy<Value = String> {
        (
            name(),
            prop::collection::vec(name(), 0..4),
            prop::bool::ANY,
            scalar(),
            name(),
        )
            .prop_map(|(name, members, block, sticky, key)| {
                let list = if block {
                    members
                        .iter()
                        .map(|m| format!("\n      - {m}"))
                        .collect::<String>()
                } else {
                    format!(" [{}]", members.join(", "))
                };
                format!(
                    "  {name}:\n    load_balancing: {{enabled: true, sticky_sessions: {sticky}}}\n    members:{list}\n    labels:\n      {key}: {sticky}\n"
                )
            })
    }

    proptest! {
        #[test]
        fn whatever_it_takes_it_reads_as_serde_saphyr_does(
            pools in prop::collection::vec(pool(), 0..4),
            stack in name(),
        ) {
            let text = format!("stack: {stack}\npools:\n{}", pools.concat());
            prop_assert_eq!(agrees(&text).map(|_| ()), Ok(()), "{}", text);
        }
    }
}
