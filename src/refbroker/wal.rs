//! The state file's write-ahead log, `STATE.wal`, owner-readable only and
//! present only while it holds records: one
//! line of JSON per group commit (what its mutations changed), appended and
//! synced before any of them is answered, so a write costs one small append
//! and one sync instead of rewriting the whole state. A crash can tear only
//! a line no caller was told about, the last one; reading stops there. The
//! store folds the log into the state file when it has grown as large as the
//! state, and on open.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::engine::Delta;

#[derive(Debug)]
pub(super) struct Log {
    path: PathBuf,
    len: u64,
}

impl Log {
    /// The log beside the state file at `state`.
    pub(super) fn beside(state: &Path) -> PathBuf {
        let mut name = state.as_os_str().to_owned();
        name.push(".wal");
        PathBuf::from(name)
    }

    /// The records of the log at `path`, in order (none when there is no
    /// log), up to the first line that is torn or does not decode.
    pub(super) fn read(path: &Path) -> io::Result<Vec<Delta>> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut records = Vec::new();
        let mut lines = bytes.split_inclusive(|b| *b == b'\n');
        while let Some(line) = lines.next() {
            let record = line
                .strip_suffix(b"\n")
                .and_then(|l| serde_json::from_slice(l).ok());
            match record {
                Some(record) => records.push(record),
                None => {
                    let dropped = line.len() + lines.map(<[u8]>::len).sum::<usize>();
                    tracing::warn!(path = %path.display(), dropped, "dropped the torn end of the log");
                    break;
                }
            }
        }
        Ok(records)
    }

    /// An empty log at `path`: the file is removed, and its directory
    /// synced, so that no record of before survives it.
    pub(super) fn empty(path: &Path) -> io::Result<Log> {
        match fs::remove_file(path) {
            Ok(()) => sync_directory(path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Log {
            path: path.to_owned(),
            len: 0,
        })
    }

    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Appends `record` as one line and syncs it (and, for the first, the
    /// directory that gains the file). The log is opened for each append,
    /// so that one replaced by something else is an error at once; a failed
    /// append is cut off again, so that no record of a write that was not
    /// acknowledged is left to be replayed.
    pub(super) fn append(&mut self, record: &Delta) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&self.path)?;
        let written = file
            .write_all(&line)
            .and_then(|()| file.sync_data())
            .and_then(|()| match self.len {
                0 => sync_directory(&self.path),
                _ => Ok(()),
            });
        if written.is_err() {
            let _ = file.set_len(self.len).and_then(|()| file.sync_data());
        }
        written?;
        self.len += line.len() as u64;
        Ok(())
    }
}

fn sync_directory(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}
