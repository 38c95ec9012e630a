//! Replacing a file so that a crash at any moment leaves the old content or
//! the new, never a torn mix: the broker's state file and saved plans both
//! go through here. It also owns the names of its temporary files, so it is
//! the one that can find those a killed process left behind.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Who may read the file written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// As the process's umask allows (saved plans: pure data, no secrets).
    Shared,
    /// The owner only (0600), from the moment the temporary file exists:
    /// the broker's state holds password hashes.
    Owner,
}

/// Replaces `path` with `bytes` so that a crash at any point leaves either
/// the old or the new file, never a torn one: write a temp file in the same
/// directory, fsync it, rename it over `path`, fsync the directory.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, Access::Shared)
}

/// [`write()`] with the file's access chosen.
pub fn replace(path: &Path, bytes: &[u8], access: Access) -> io::Result<()> {
    let (dir, prefix) = temp_prefix(path)?;
    let tmp = dir.join(format!("{prefix}{}", std::process::id()));
    let result = (|| {
        let mut file = create(&tmp, access)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes the temporary files that writes of `path` left when their process
/// was killed between creating and renaming them, and returns how many. Only
/// a caller that knows no other process is writing `path` may call it (the
/// broker, under its state lock): a live writer's temporary would vanish.
pub fn remove_leftovers(path: &Path) -> io::Result<usize> {
    let (dir, prefix) = temp_prefix(path)?;
    let mut removed = 0;
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let is_leftover = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if is_leftover {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The directory of `path` and the name its temporaries start with, to
/// which the writer's pid is appended.
fn temp_prefix(path: &Path) -> io::Result<(PathBuf, String)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    Ok((dir, format!(".{}.tmp-", name.to_string_lossy())))
}

fn create(path: &Path, access: Access) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if access == Access::Owner {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn owner_only_files_are_0600_even_when_they_replace_a_shared_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, b"old").unwrap();
        assert_ne!(
            mode(&path) & 0o044,
            0,
            "a shared file is readable by others"
        );
        replace(&path, b"new", Access::Owner).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn only_this_files_temporaries_are_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, b"{}").unwrap();
        for name in [
            ".state.json.tmp-123",
            ".state.json.tmp-9",
            ".state.json.tmp-",
            ".state.json.tmp-12x",
            ".other.json.tmp-5",
            "state.json.lock",
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(remove_leftovers(&path).unwrap(), 2);
        let mut left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".other.json.tmp-5",
                ".state.json.tmp-",
                ".state.json.tmp-12x",
                "state.json",
                "state.json.lock"
            ]
        );
    }
}
