//! The plan as its JSON document, written while its checksum may still be
//! computed elsewhere: the document ends with the checksum, so everything
//! before it can be on its way out while the seal serialises the plan a
//! second time on the other core.

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
        // `io::Error::from` keeps the kind of a failed write.
        serde_json::to_writer_pretty(&mut *out, plan).map_err(io::Error::from)?;
        return Ok(plan.checksum.clone());
    }
    let mut withheld = Withheld {
        inner: &mut *out,
        tail: Vec::with_capacity(BLOCK + 1024),
    };
    serde_json::to_writer_pretty(&mut withheld, plan).map_err(io::Error::from)?;
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

impl<W: Write> Write for Withheld<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.tail.extend_from_slice(bytes);
        if self.tail.len() >= BLOCK {
            let through = self.tail.len() - UNSEALED_END.len();
            self.inner.write_all(&self.tail[..through])?;
            self.tail.drain(..through);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
