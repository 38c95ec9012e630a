//! A pass over one file's YAML events before serde reads it, for what serde
//! cannot tell: where secrets are written (by position, so that they are
//! masked whatever the error is and however the value is spelled) and
//! which nodes carry a YAML tag (which poolform refuses rather than let
//! `!!binary` decode silently or other tags be ignored).
//!
//! A value is secret at or under a `password` key (anywhere), and under
//! `default_credentials` except at `username`. A password that is a
//! well-formed reference (`{env: VAR}`, `{file: PATH}`) is not masked. When
//! the YAML is malformed, the events end at the error, so the text from
//! there on is masked by a rule on lines as well (see [`by_lines`]).

use std::ops::Range;

use granit_parser::{Event, Parser, Span};

/// What the pass found in one file: byte ranges of secret text and of tags.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Scanned {
    pub secrets: Vec<Range<usize>>,
    pub tags: Vec<Range<usize>>,
}

/// How a node's position makes its text secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Secrecy {
    Plain,
    /// Every scalar in it is secret.
    Secret,
    /// At a `default_credentials` key: keys shown, values secret but `username`.
    Credentials,
    /// At a `password` key: secret unless a one-entry `env`/`file` reference.
    Password,
}

/// The secrecy of the node at `key` in a mapping of secrecy `parent`.
fn under_key(parent: Secrecy, key: &str) -> Secrecy {
    match (parent, key) {
        (Secrecy::Secret | Secrecy::Password, _) => Secrecy::Secret,
        (Secrecy::Credentials, "username") => Secrecy::Plain,
        (Secrecy::Credentials, "password") => Secrecy::Password,
        (Secrecy::Credentials, _) => Secrecy::Secret,
        (Secrecy::Plain, "password") => Secrecy::Password,
        (Secrecy::Plain, "default_credentials") => Secrecy::Credentials,
        (Secrecy::Plain, _) => Secrecy::Plain,
    }
}

/// An open mapping or sequence.
struct Frame {
    secrecy: Secrecy,
    mapping: bool,
    /// Whether this collection is itself a mapping key (its value follows it).
    is_key: bool,
    /// In a mapping: the key whose value comes next (`None`: a key comes next).
    key: Option<String>,
    /// In a `Password` mapping: its values (and the keys written without
    /// one, as in `{S3cr3t}`), masked at its end unless it turns out to be a
    /// reference. Keys with a value (`{vault: ...}`) name a source and stay.
    pending: Vec<Range<usize>>,
    /// The last key of a `Password` mapping, until its value shows.
    last_key: Option<Range<usize>>,
    entries: usize,
    reference: bool,
}

impl Frame {
    fn new(secrecy: Secrecy, mapping: bool, is_key: bool) -> Frame {
        Frame {
            secrecy,
            mapping,
            is_key,
            key: None,
            pending: Vec::new(),
            last_key: None,
            entries: 0,
            reference: true,
        }
    }
}

#[derive(Default)]
struct Walk {
    stack: Vec<Frame>,
    found: Scanned,
}

impl Walk {
    /// The secrecy of the next node, from where it stands.
    fn position(&self) -> Secrecy {
        match self.stack.last() {
            None => Secrecy::Plain,
            Some(f) if !f.mapping => match f.secrecy {
                Secrecy::Plain => Secrecy::Plain,
                _ => Secrecy::Secret,
            },
            // A key: shown, except inside what is secret as a whole.
            Some(f) if f.key.is_none() => match f.secrecy {
                Secrecy::Secret => Secrecy::Secret,
                Secrecy::Password => Secrecy::Password,
                _ => Secrecy::Plain,
            },
            Some(f) => under_key(f.secrecy, f.key.as_deref().unwrap_or_default()),
        }
    }

    fn scalar(&mut self, value: &str, span: Range<usize>) {
        let position = self.position();
        let Some(frame) = self.stack.last_mut() else {
            if position != Secrecy::Plain {
                self.found.secrets.push(span);
            }
            return;
        };
        if frame.mapping && frame.key.is_none() {
            // A key of a password mapping is pending with its value.
            if frame.secrecy == Secrecy::Password {
                frame.entries += 1;
                frame.reference &= value == "env" || value == "file";
                frame.last_key = Some(span);
            } else if position == Secrecy::Secret {
                self.found.secrets.push(span);
            }
            frame.key = Some(value.to_owned());
            return;
        }
        if frame.secrecy == Secrecy::Password && frame.mapping {
            let key = frame.last_key.take();
            if span.is_empty() || matches!(value, "" | "~" | "null") {
                frame.pending.extend(key);
            }
            frame.pending.push(span);
        } else if position != Secrecy::Plain {
            self.found.secrets.push(span);
        }
        if frame.mapping {
            frame.key = None;
        }
    }

    fn open(&mut self, mapping: bool) {
        let position = self.position();
        let mut is_key = false;
        if let Some(parent) = self.stack.last_mut() {
            if parent.mapping && parent.key.is_none() {
                // A collection as a key: nothing poolform reads, but the
                // value after it must still count as a value.
                is_key = true;
                parent.key = Some(String::new());
            }
            // A password whose value is a collection is not a reference.
            if parent.secrecy == Secrecy::Password {
                parent.reference = false;
            }
        }
        let secrecy = match position {
            // A password that is a list is secret as a whole.
            Secrecy::Password if !mapping => Secrecy::Secret,
            other => other,
        };
        self.stack.push(Frame::new(secrecy, mapping, is_key));
    }

    fn close(&mut self) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        let was_key = frame.is_key;
        self.settle(frame);
        if let Some(parent) = self.stack.last_mut()
            && parent.mapping
            && !was_key
        {
            parent.key = None;
        }
    }

    /// Masks what a closed (or, at an error, abandoned) password mapping
    /// holds unless it is exactly one `env`/`file` entry with a scalar value.
    fn settle(&mut self, frame: Frame) {
        let is_reference = frame.reference && frame.entries == 1 && frame.pending.len() == 1;
        if frame.secrecy == Secrecy::Password && !is_reference {
            self.found.secrets.extend(frame.pending);
        }
    }
}

/// Scans `text`; see the module documentation.
pub(super) fn scan(text: &str) -> Scanned {
    // A tag needs a `!`, and a secret key is spelled out unless escaped in
    // double quotes (`\`): without any of them there is nothing to find, and
    // a large config is spared a second parse.
    let needles = ["!", "\\", "password", "default_credentials"];
    if !needles.iter().any(|needle| text.contains(needle)) {
        return Scanned::default();
    }
    let mut walk = Walk::default();
    let mut parser = Parser::new_from_str(text);
    let failed = loop {
        let Some(next) = parser.next() else {
            break false;
        };
        let Ok((event, span)) = next else {
            break true;
        };
        let range = byte_range(&span);
        match event {
            Event::Scalar(value, _, _, tag) => {
                if tag.is_some() {
                    walk.found.tags.push(tag_range(&span, &range));
                }
                walk.scalar(&value, range);
            }
            Event::SequenceStart(_, _, tag) => {
                if tag.is_some() {
                    walk.found.tags.push(tag_range(&span, &range));
                }
                walk.open(false);
            }
            Event::MappingStart(_, _, tag) => {
                if tag.is_some() {
                    walk.found.tags.push(tag_range(&span, &range));
                }
                walk.open(true);
            }
            Event::SequenceEnd | Event::MappingEnd => walk.close(),
            Event::Alias(_) => walk.scalar("", range),
            _ => {}
        }
    };
    while let Some(frame) = walk.stack.pop() {
        walk.settle(frame);
    }
    let mut found = walk.found;
    if failed {
        found.secrets.extend(by_lines(text));
    }
    found
}

fn byte_range(span: &Span) -> Range<usize> {
    span.byte_range().unwrap_or(0..0)
}

/// The tag token's own range, or the node's when the parser has none.
fn tag_range(span: &Span, node: &Range<usize>) -> Range<usize> {
    span.tag_span()
        .and_then(|tag| tag.byte_range())
        .unwrap_or_else(|| node.clone())
}

/// The rule for text the events do not cover (malformed YAML): after a
/// `password` or `default_credentials` key, the rest of its line and every
/// following line indented deeper than the key's line, blanks excepted.
/// It masks more than the event rule (a `username` under the key too), which
/// is the right side to err on in a file that does not parse.
fn by_lines(text: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let mut lines = Vec::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        lines.push((start, line));
        start += line.len();
    }
    let mut i = 0;
    while i < lines.len() {
        let (offset, line) = lines[i];
        let Some(after) = secret_key_end(line) else {
            i += 1;
            continue;
        };
        found.extend(non_blank(offset + after, &line[after..]));
        let indent = indentation(line);
        i += 1;
        while let Some(&(offset, line)) = lines.get(i) {
            if !line.trim().is_empty() && indentation(line) <= indent {
                break;
            }
            found.extend(non_blank(offset, line));
            i += 1;
        }
    }
    found
}

/// Where the value starts after a `password:`/`default_credentials:` key
/// (quoted or not) on this line, if it has one.
fn secret_key_end(line: &str) -> Option<usize> {
    ["password", "default_credentials"]
        .iter()
        .filter_map(|key| {
            let at = line.find(key)? + key.len();
            let rest = &line[at..];
            let skipped = rest.len() - rest.trim_start_matches(['"', '\'', ' ']).len();
            rest[skipped..].starts_with(':').then_some(at + skipped + 1)
        })
        .min()
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '\t']).len()
}

/// The range of `line` (at `offset`) between its first and last
/// non-blank character.
fn non_blank(offset: usize, line: &str) -> Option<Range<usize>> {
    let trimmed = line.trim_end();
    let content = trimmed.trim_start();
    if content.is_empty() {
        return None;
    }
    let start = offset + (trimmed.len() - content.len());
    Some(start..offset + trimmed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` with the scanned secrets blotted out, and the tags found.
    fn masked(text: &str) -> (String, Vec<&str>) {
        let scanned = scan(text);
        let mut out = text.to_owned();
        for range in &scanned.secrets {
            out.replace_range(range.clone(), &"*".repeat(range.len()));
        }
        let tags = scanned.tags.iter().map(|r| &text[r.clone()]).collect();
        (out, tags)
    }

    #[test]
    fn secrets_are_found_by_position_in_well_formed_yaml() {
        let cases = [
            ("a: {password: S3cr3t}", "a: {password: ******}"),
            (
                "a: {password: {value: S3cr3t}}",
                "a: {password: {value: ******}}",
            ),
            ("a: {password: [S3cr3t, x]}", "a: {password: [******, *]}"),
            ("a: {password: {S3cr3t}}", "a: {password: {******}}"),
            (
                "default_credentials:\n  username: u\n  passwd: S3cr3t\n",
                "default_credentials:\n  username: u\n  passwd: ******\n",
            ),
            ("default_credentials: S3cr3t", "default_credentials: ******"),
            (
                "default_credentials: [S3cr3t]",
                "default_credentials: [******]",
            ),
            (
                "default_credentials: {x: {y: S3cr3t}}",
                "default_credentials: {x: {*: ******}}",
            ),
            ("a: {password: &p S3cr3t}", "a: {password: &p ******}"),
            (
                "a: {\"pass\\x77ord\": S3cr3t}",
                "a: {\"pass\\x77ord\": ******}",
            ),
            ("a: {\"password\": 'S3cr3t'}", "a: {\"password\": ********}"),
        ];
        for (text, want) in cases {
            assert_eq!(masked(text).0, want, "{text}");
        }
    }

    #[test]
    fn references_and_plain_values_stay_readable() {
        for text in [
            "default_credentials: {username: 'CORP\\svc', password: {env: PW}}",
            "default_credentials:\n  password:\n    file: /run/pw\n",
            "pools: {a: {members: [x, y], labels: {k: v}}}",
            "? [complex, key]\n: value\nnext: {k: v}",
        ] {
            assert_eq!(masked(text).0, text);
        }
        assert_eq!(
            masked("a: {password: {env: A, file: B}}").0,
            "a: {password: {env: *, file: *}}",
            "two sources are not a reference"
        );
    }

    #[test]
    fn malformed_yaml_is_masked_from_the_error_on_by_lines() {
        let cases = [
            (
                "m:\n  default_credentials: {password: S3cr3t\n",
                "m:\n  default_credentials: *****************\n",
            ),
            (
                "m:\n  default_credentials: {password: \"S3cr3t}\n",
                "m:\n  default_credentials: *******************\n",
            ),
            (
                "m:\n\t x: 1\n  default_credentials:\n    password: S3cr3t\n  other: 1\n",
                "m:\n\t x: 1\n  default_credentials:\n    ****************\n  other: 1\n",
            ),
            (
                "m:\n  password:\n    S3cr3t\n  bad: [\n",
                "m:\n  password:\n    ******\n  bad: [\n",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(masked(text).0, want, "{text}");
        }
    }

    #[test]
    fn tags_are_found_on_scalars_and_collections() {
        let text =
            "stack: !!binary aGVsbG8=\npools: !!map {}\nx: !custom [a]\ny: \"!!not a tag\"\n";
        assert_eq!(masked(text).1, ["!!binary", "!!map", "!custom"]);
    }
}
