//! The plan as its JSON document, written while its checksum may still be
//! computed elsewhere: the document ends with the checksum, so everything
//! before it can be on its way out while the seal serialises the plan a
//! second time on the other core. Also the pretty printer of plan
//! documents, which writes what serde_json's does, faster.

use std::io::{self, Write};

use crate::plan::Plan;

/// How the document of an unsealed plan ends: the empty checksum, the last
/// field, and the closing brace on a line of its own.
const UNSEALED_END: &[u8] = b"\"\"\n}";

/// Writes `plan` as pretty JSON (without a final line feed), its checksum
/// being what `seal` returns, and returns that checksum. A sealed plan is
/// written as it is, and `seal` is not asked. An unsealed one is written
/// with its empty checksum held back; only its last line waits for `seal`.
pub fn write_plan<W: Write>(
    out: &mut W,
    plan: &Plan,
    seal: impl FnOnce() -> String,
) -> io::Result<String> {
    if !plan.checksum.is_empty() {
        pretty(&mut *out, plan)?;
        return Ok(plan.checksum.clone());
    }
    let mut withheld = Withheld {
        inner: &mut *out,
        tail: Vec::with_capacity(BLOCK + 1024),
    };
    pretty(&mut withheld, plan)?;
    // The checksum is the plan's last field, and always written (a test
    // pins this); anything else here is a bug, not bad input.
    let tail = std::mem::take(&mut withheld.tail);
    let rest = tail
        .strip_suffix(UNSEALED_END)
        .expect("an unsealed plan's document ends with its empty checksum");
    out.write_all(rest)?;
    let checksum = seal();
    // A hex digest needs no escaping.
    write!(out, "\"{checksum}\"\n}}")?;
    Ok(checksum)
}

/// Writes `value` as serde_json's `to_writer_pretty` does, byte for byte
/// (tests compare them).
pub fn pretty<W: Write, T: serde::Serialize + ?Sized>(out: W, value: &T) -> io::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(out, Pretty::default());
    // `io::Error::from` keeps the kind of a failed write.
    value.serialize(&mut serializer).map_err(io::Error::from)
}

/// `value` as pretty JSON in a buffer, as [`pretty`] writes it.
pub fn to_vec_pretty<T: serde::Serialize + ?Sized>(value: &T) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(128);
    pretty(&mut bytes, value)?;
    Ok(bytes)
}

/// A comma, a line feed and the deepest indentation written in one piece.
const BREAKS: &[u8; 2 + 2 * MAX_INDENT] = &{
    let mut breaks = [b' '; 2 + 2 * MAX_INDENT];
    breaks[0] = b',';
    breaks[1] = b'\n';
    breaks
};

/// Levels of indentation written in one piece; deeper ones (no plan has
/// them) are written a level at a time.
const MAX_INDENT: usize = 32;

/// serde_json's `PrettyFormatter` with two spaces, except that a line
/// break and its indentation are one write, not one per level: a plan of
/// 40k steps has a million indented lines, and those writes were a
/// fifth of its rendering.
#[derive(Default)]
struct Pretty {
    indent: usize,
    has_value: bool,
}

impl Pretty {
    /// A line break (after a comma unless `first`) and the indentation.
    fn break_line<W: ?Sized + Write>(&self, out: &mut W, first: bool) -> io::Result<()> {
        let from = usize::from(first);
        if self.indent <= MAX_INDENT {
            return out.write_all(&BREAKS[from..2 + 2 * self.indent]);
        }
        out.write_all(&BREAKS[from..2])?;
        (0..self.indent).try_for_each(|_| out.write_all(b"  "))
    }

    /// Opens an array or an object (`open`), one level deeper.
    fn begin<W: ?Sized + Write>(&mut self, out: &mut W, open: &[u8]) -> io::Result<()> {
        self.indent += 1;
        self.has_value = false;
        out.write_all(open)
    }

    /// Closes an array or an object (`close`), on a line of its own unless
    /// it is empty.
    fn end<W: ?Sized + Write>(&mut self, out: &mut W, close: &[u8]) -> io::Result<()> {
        self.indent -= 1;
        if self.has_value {
            self.break_line(out, true)?;
        }
        out.write_all(close)
    }
}

impl serde_json::ser::Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.begin(out, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.end(out, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> io::Result<()> {
        self.break_line(out, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.begin(out, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.end(out, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> io::Result<()> {
        self.break_line(out, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        out.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Passes on everything written to it but the last [`UNSEALED_END`]`.len()`
/// bytes, which it keeps at the end of `tail`. It gathers writes in `tail`
/// itself and passes them on in blocks: the pretty printer writes a few
/// bytes at a time, and holding back on every write doubled the render.
struct Withheld<'w, W: Write> {
    inner: &'w mut W,
    tail: Vec<u8>,
}

/// Bytes gathered before they are passed on.
const BLOCK: usize = 64 * 1024;

impl<W: Write> Withheld<'_, W> {
    /// Passes on all but the held-back end, once a block has gathered.
    #[cold]
    fn pass_on(&mut self) -> io::Result<()> {
        let through = self.tail.len() - UNSEALED_END.len();
        self.inner.write_all(&self.tail[..through])?;
        self.tail.drain(..through);
        Ok(())
    }
}

impl<W: Write> Write for Withheld<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.write_all(bytes).map(|()| bytes.len())
    }

    // The printer writes a few bytes at a time, through `write_all`: its
    // default (a loop around `write`) was not inlined, a call per write.
    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tail.extend_from_slice(bytes);
        if self.tail.len() >= BLOCK {
            self.pass_on()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-z\"\\\\\n é]{0,6}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(40, 200, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-z]{0,3}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn pretty_writes_what_serde_json_does(value in json()) {
            prop_assert_eq!(
                String::from_utf8(to_vec_pretty(&value).unwrap()).unwrap(),
                serde_json::to_string_pretty(&value).unwrap()
            );
        }
    }

    #[test]
    fn pretty_writes_deep_nesting_as_serde_json_does() {
        let mut value = serde_json::json!({"leaf": [1, {}, []]});
        for depth in 0..(MAX_INDENT + 5) {
            value = if depth % 2 == 0 {
                serde_json::json!({"k": value, "n": depth})
            } else {
                serde_json::json!([value, depth])
            };
            assert_eq!(
                String::from_utf8(to_vec_pretty(&value).unwrap()).unwrap(),
                serde_json::to_string_pretty(&value).unwrap(),
                "depth {depth}"
            );
        }
    }

    #[test]
    fn the_held_back_end_survives_writes_of_every_size() {
        let mut text = b"{\"a\": ".repeat(3 * BLOCK / 6);
        text.extend_from_slice(b"\"checksum\": \"\"\n}");
        for size in [1, 3, 4, 5, 4096, BLOCK - 1, BLOCK, text.len()] {
            let mut out = Vec::new();
            let mut withheld = Withheld {
                inner: &mut out,
                tail: Vec::new(),
            };
            for piece in text.chunks(size) {
                withheld.write_all(piece).unwrap();
            }
            let tail = std::mem::take(&mut withheld.tail);
            assert!(tail.ends_with(UNSEALED_END), "pieces of {size}");
            assert!(tail.len() <= BLOCK, "pieces of {size}: {} held", tail.len());
            out.extend_from_slice(&tail);
            assert_eq!(out, text, "pieces of {size}");
        }
    }
}
