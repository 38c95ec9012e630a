//! The write-ahead records at the end of the state file: after the state as
//! last written whole, one line of JSON per group commit (what its mutations
//! changed), appended and synced before any of them is answered, so a write
//! costs one small append and one sync instead of rewriting the whole state.
//! Keeping them in the state file keeps one file to lock, protect and size:
//! a disk that cannot take the next record is one that cannot take the state
//! with it. A crash can tear only the last record, which no caller was told
//! about; reading stops there. The store writes the state whole again (and
//! so drops the records) once they are as large as the state.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::engine::Delta;

#[derive(Debug)]
pub(super) struct Log {
    path: PathBuf,
    /// Bytes of records after the whole state.
    len: u64,
}

impl Log {
    /// The records after a state just written whole to `path`: none yet.
    pub(super) fn after_state(path: &Path) -> Log {
        Log {
            path: path.to_owned(),
            len: 0,
        }
    }

    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Appends `record` as one line and syncs it. The file is opened for
    /// each append, so that one replaced by something else is an error at
    /// once; a failed append is cut off again, so that no record of a write
    /// that was not acknowledged is left to be replayed.
    pub(super) fn append(&mut self, record: &Delta) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = OpenOptions::new().append(true).open(&self.path)?;
        let start = file.metadata()?.len();
        let written = file.write_all(&line).and_then(|()| file.sync_data());
        if written.is_err() {
            let _ = file.set_len(start).and_then(|()| file.sync_data());
        }
        written?;
        self.len += line.len() as u64;
        Ok(())
    }
}

/// Splits a state file into the state written whole and the records after
/// it, in order, up to the first one that is torn or does not decode.
pub(super) fn split(bytes: &[u8], path: &Path) -> serde_json::Result<(Value, Vec<Delta>)> {
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    let state = values
        .next()
        .unwrap_or_else(|| serde_json::from_slice(bytes))?;
    let mut records = Vec::new();
    loop {
        let offset = values.byte_offset();
        match values
            .next()
            .map(|v| v.and_then(serde_json::from_value::<Delta>))
        {
            None => break,
            Some(Ok(record)) => records.push(record),
            Some(Err(_)) => {
                let dropped = bytes.len() - offset;
                tracing::warn!(path = %path.display(), dropped, "dropped the torn end of the state file");
                break;
            }
        }
    }
    Ok((state, records))
}
