//! Source locations: from a parser position to a located, underlinable
//! place in a file, and from a resource address back to where the config
//! declares it (for findings made after loading, such as plan violations).

use std::ops::Range;

use serde_saphyr::Location;

use super::Config;
use super::spec::At;
use crate::address::{Address, Kind};
use crate::diagnostic::{Diagnostic, SourceLocation, SourceMap};

/// Converts a parser location (of an error) in file `file` into a
/// diagnostic location.
pub(crate) fn locate_in(sources: &SourceMap, file: usize, at: &Location) -> SourceLocation {
    let span = at.span();
    let bytes = |n: Option<u64>| n.and_then(|n| usize::try_from(n).ok());
    locate(
        sources,
        file,
        Place {
            line: at.line(),
            column: at.column(),
            offset: bytes(span.byte_offset()),
            len: bytes(span.byte_len()),
            chars: usize::try_from(span.len()).unwrap_or(0),
        },
    )
}

/// Converts the place of a value written in file `file` into a diagnostic
/// location.
pub(crate) fn locate_at(sources: &SourceMap, file: usize, at: &At) -> SourceLocation {
    locate(
        sources,
        file,
        Place {
            line: u64::from(at.line),
            column: u64::from(at.column),
            offset: usize::try_from(at.offset).ok(),
            len: usize::try_from(at.len).ok(),
            chars: 0,
        },
    )
}

/// What a parser says about a place: line and column always, the bytes
/// when it knows them (else `chars`, the length in characters).
struct Place {
    line: u64,
    column: u64,
    offset: Option<usize>,
    len: Option<usize>,
    chars: usize,
}

fn locate(sources: &SourceMap, file: usize, at: Place) -> SourceLocation {
    let line = u32::try_from(at.line).unwrap_or(u32::MAX);
    let column = u32::try_from(at.column).unwrap_or(u32::MAX);
    if sources.is_released(file) {
        // No text to check the bytes against: they show no snippet, and
        // line and column are the parser's own.
        return SourceLocation {
            file: sources.name(file).to_owned(),
            line,
            column,
            offset: at.offset.unwrap_or(0),
            len: at.len.unwrap_or(0),
        };
    }
    let text = sources.text(file);
    // Scanner errors carry no byte offsets; fall back to line and column.
    let offset = at
        .offset
        .filter(|o| text.is_char_boundary(*o))
        .unwrap_or_else(|| offset_of(sources, file, at.line, at.column));
    let len = at
        .len
        .filter(|l| text.is_char_boundary(offset.saturating_add(*l)))
        .unwrap_or_else(|| {
            text[offset..]
                .chars()
                .take(at.chars)
                .map(char::len_utf8)
                .sum()
        });
    // A point (an error between tokens, a document that is the wrong
    // type) underlines the character it is on, so that it reads as a place
    // and not as the file as a whole.
    let len = if len == 0 {
        text[offset..]
            .chars()
            .next()
            .filter(|c| *c != '\n')
            .map_or(0, char::len_utf8)
    } else {
        len
    };
    SourceLocation {
        file: sources.name(file).to_owned(),
        line,
        column,
        offset,
        len,
    }
}

/// The location of the bytes `range` of file `file` (a range on character
/// boundaries, as the YAML scanner and UTF-8 checks give them).
pub(crate) fn locate_range(
    sources: &SourceMap,
    file: usize,
    range: Range<usize>,
) -> SourceLocation {
    let text = sources.text(file);
    let offset = if text.is_char_boundary(range.start) {
        range.start
    } else {
        text.len()
    };
    let lines = sources.lines(file);
    let line = lines.line_of(offset);
    let line_start = lines.start(line).unwrap_or(0);
    let column = text[line_start..offset].chars().count() + 1;
    SourceLocation {
        file: sources.name(file).to_owned(),
        line: u32::try_from(line + 1).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
        offset,
        len: range.len(),
    }
}

/// Byte offset of a 1-based line and character column, clamped to the text.
fn offset_of(sources: &SourceMap, file: usize, line: u64, column: u64) -> usize {
    let text = sources.text(file);
    let skip = usize::try_from(line.saturating_sub(1)).unwrap_or(usize::MAX);
    let line_start = sources.lines(file).start(skip).unwrap_or(text.len());
    let skip = usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX);
    line_start
        + text[line_start..]
            .chars()
            .take_while(|c| *c != '\n')
            .take(skip)
            .map(char::len_utf8)
            .sum::<usize>()
}

impl<I> Config<I> {
    /// Location of a value written in file `file`.
    pub fn at(&self, file: usize, at: &At) -> SourceLocation {
        locate_at(&self.sources, file, at)
    }

    /// Where a resource is declared (its name), if the config declares it.
    pub fn locate(&self, address: &Address) -> Option<SourceLocation> {
        let found = match address.kind {
            Kind::Pool => self.pools.get(&*address.name).map(|d| (d.file, &d.name.at)),
            Kind::AppConfig => self
                .app_configs
                .get(&*address.name)
                .map(|d| (d.file, &d.name.at)),
            Kind::AppInstance => self
                .app_instances
                .get(&*address.name)
                .map(|d| (d.file, &d.name.at)),
            Kind::Destination => self
                .destinations
                .get(&*address.name)
                .map(|d| (d.file, &d.name.at)),
        };
        found.map(|(file, at)| self.at(file, at))
    }

    /// Where `pool` lists `member` in its `members`.
    pub fn locate_member(&self, pool: &str, member: &str) -> Option<SourceLocation> {
        let declared = self.pools.get(pool)?;
        let entry = declared.spec.members.iter().find(|m| m.value == member)?;
        Some(self.at(declared.file, &entry.at))
    }

    /// Where `pool` sets `min_members` (its value).
    pub fn locate_min_members(&self, pool: &str) -> Option<SourceLocation> {
        let declared = self.pools.get(pool)?;
        let min = declared.spec.min_members.as_ref()?;
        Some(self.at(declared.file, &min.at))
    }

    /// Where `destination` switches maintenance on (its `enabled` value),
    /// when the config does.
    pub fn locate_maintenance(&self, destination: &str) -> Option<SourceLocation> {
        let declared = self.destinations.get(destination)?;
        let maintenance = declared.spec.maintenance.as_ref()?;
        maintenance
            .enabled
            .value
            .then(|| self.at(declared.file, &maintenance.enabled.at))
    }

    /// A diagnostic about a resource, underlining its declaration when the
    /// config has one. For findings made later (plan time) about the config.
    pub fn diagnostic(
        &self,
        code: &'static str,
        address: &Address,
        message: impl Into<String>,
    ) -> Diagnostic {
        let diagnostic = Diagnostic::error(code, message);
        match self.locate(address) {
            Some(location) => diagnostic.with_label(location, "declared here"),
            None => diagnostic,
        }
    }

    /// Number of declared resources of every kind.
    pub fn resource_count(&self) -> usize {
        self.pools.len()
            + self.app_configs.len()
            + self.app_instances.len()
            + self.destinations.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_without_byte_info_come_from_line_and_column() {
        let mut sources = SourceMap::default();
        let file = sources.add("a.yaml", "ab\ncdé\nf");
        assert_eq!(offset_of(&sources, file, 2, 3), 5);
        assert_eq!(offset_of(&sources, file, 3, 1), 8);
        assert_eq!(offset_of(&sources, file, 9, 9), 9);
        let short = sources.add("b.yaml", "ab");
        assert_eq!(offset_of(&sources, short, 9, 9), 2);
    }

    #[test]
    fn a_range_is_located_by_line_and_character_column() {
        let mut sources = SourceMap::default();
        let file = sources.add("a.yaml", "ab\ncdé: x\n");
        let at = locate_range(&sources, file, 9..10);
        assert_eq!((at.line, at.column, at.offset, at.len), (2, 6, 9, 1));
        let start = locate_range(&sources, file, 0..0);
        assert_eq!((start.line, start.column), (1, 1));
    }
}
