//! Reading a file that must be a regular file: config files and secret
//! files. A path that names a FIFO, a device or a directory is refused with
//! its kind in words before it is opened (opening a FIFO waits for a
//! writer; reading `/dev/zero` never ends), the opened file is checked again
//! (the path may have changed in between), reads are bounded, and a read
//! that blocks anyway (a hung mount) gives up after a timeout.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Why a file of this kind cannot be read as a regular file, in words
/// ("is a FIFO, not a regular file"); `None` for a regular file.
pub fn not_regular(metadata: &Metadata) -> Option<String> {
    (!metadata.is_file()).then(|| format!("is {}, not a regular file", kind(metadata)))
}

/// A file's type in words, for messages.
fn kind(metadata: &Metadata) -> &'static str {
    let file_type = metadata.file_type();
    if file_type.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

/// Reads `path` if it is a regular file of at most `limit` bytes, within
/// `timeout`. The read runs on a thread of its own so that a file that
/// blocks costs the timeout rather than the whole run; such a thread is
/// left behind. The error says why, without the path.
pub fn read(path: &Path, limit: u64, timeout: Duration) -> Result<Vec<u8>, String> {
    let metadata = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if let Some(why) = not_regular(&metadata) {
        return Err(why);
    }
    let (tx, rx) = mpsc::channel();
    let owned: PathBuf = path.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(read_bounded(&owned, limit));
    });
    rx.recv_timeout(timeout).unwrap_or_else(|_| {
        Err(format!(
            "reading it took longer than {} s",
            timeout.as_secs()
        ))
    })
}

/// Opens, checks the opened file itself, and reads at most one byte more
/// than allowed.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let metadata = file.metadata().map_err(|e| e.to_string())?;
    if let Some(why) = not_regular(&metadata) {
        return Err(why);
    }
    // Sized from the opened file, so that reading does not double its way
    // up (`take` hides the size from `read_to_end`): a 7 MB config file
    // would otherwise pass through 4 and 8 MB buffers. One byte more tells
    // a file that grew from one that did not.
    let expected = metadata.len().min(limit).saturating_add(1);
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("it holds more than {limit} bytes"));
    }
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// A FIFO with no writer, for tests of what must not wait on one:
    /// opening it for reading would wait forever.
    pub(crate) fn fifo(path: &Path) -> &Path {
        let made = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(made.success());
        path
    }

    #[test]
    fn a_regular_file_within_the_limit_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "abc").unwrap();
        assert_eq!(read(&path, 3, SECOND).unwrap(), b"abc");
        assert_eq!(
            read(&path, 2, SECOND).unwrap_err(),
            "it holds more than 2 bytes"
        );
    }

    #[test]
    fn special_files_are_refused_by_kind_without_being_opened() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                fifo(&dir.path().join("fifo")).to_owned(),
                "is a FIFO, not a regular file",
            ),
            (
                PathBuf::from("/dev/zero"),
                "is a device, not a regular file",
            ),
            (dir.path().to_owned(), "is a directory, not a regular file"),
        ];
        for (path, why) in cases {
            assert_eq!(read(&path, 10, SECOND).unwrap_err(), why, "{path:?}");
        }
    }

    #[test]
    fn an_opened_file_that_is_not_regular_is_refused() {
        let error = read_bounded(Path::new("/dev/null"), 10).unwrap_err();
        assert_eq!(error, "is a device, not a regular file");
    }
}
