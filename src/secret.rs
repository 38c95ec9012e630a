//! Secrets: where one comes from (an environment variable or a file, never
//! the config text), its value as a `SecretString` that no renderer can print,
//! reading a secret file safely (regular files only, bounded, with a
//! timeout), and the fingerprint poolform stores in a label so a later plan
//! can tell whether a configured secret changed without the broker
//! returning it.

use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::contract::hash;
use crate::regular_file;

/// The largest secret file poolform reads. Passwords are short; a larger
/// file is a mistake (or `/dev/zero`) and would otherwise be read whole.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// How long reading a secret file may take. A regular file of at most
/// [`MAX_FILE_BYTES`] takes microseconds; a hung network mount must not
/// hang `plan` or `apply`.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A secret with where it came from. The plan records only the source; apply
/// resolves it again, so a saved plan never holds the value.
#[derive(Debug, Clone)]
pub struct Secret {
    pub source: SecretSource,
    pub value: SecretString,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// Name of an environment variable.
    Env(String),
    /// Path of a file whose content (trailing newline trimmed) is the secret.
    File(std::path::PathBuf),
}

impl SecretSource {
    /// Reads the secret from the process environment or the file system.
    /// A trailing newline in a file is not part of the secret.
    pub fn resolve(&self) -> Result<SecretString, String> {
        match self {
            SecretSource::Env(var) => std::env::var(var)
                .map(SecretString::from)
                .map_err(|_| format!("the environment variable {var} is not set")),
            SecretSource::File(path) => read_file(path)
                .map(|text| SecretString::from(text.trim_end_matches(['\r', '\n']).to_owned()))
                .map_err(|e| format!("cannot read the secret file {}: {e}", path.display())),
        }
    }
}

/// Why `path` cannot hold a secret, as far as its metadata tells without
/// reading it: not a regular file, or larger than [`MAX_FILE_BYTES`]. A path
/// that does not exist (yet) is not judged: secrets are often mounted only
/// where `plan` runs.
pub fn unusable_file(path: &Path) -> Option<String> {
    let why = unusable(&std::fs::metadata(path).ok()?)?;
    Some(format!("{} {why}", path.display()))
}

fn unusable(metadata: &std::fs::Metadata) -> Option<String> {
    regular_file::not_regular(metadata).or_else(|| {
        (metadata.len() > MAX_FILE_BYTES).then(|| {
            format!(
                "is {} bytes, more than the {MAX_FILE_BYTES} a secret file may have",
                metadata.len()
            )
        })
    })
}

/// Reads a secret file: a regular file of at most [`MAX_FILE_BYTES`] of
/// UTF-8 text, within [`READ_TIMEOUT`].
fn read_file(path: &Path) -> Result<String, String> {
    if let Some(why) = std::fs::metadata(path).ok().as_ref().and_then(unusable) {
        return Err(why);
    }
    let bytes = regular_file::read(path, MAX_FILE_BYTES, READ_TIMEOUT)?;
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_owned())
}

/// Fingerprint of a secret as stored in a label: its Argon2id hash with a
/// salt of its own (see [`hash`] for the cost).
pub fn fingerprint(secret: &str) -> String {
    hash::hash(secret)
}

/// Whether `label` (a fingerprint as made by [`fingerprint`]) was made from
/// `secret`. A label in an older format never matches, so the next apply
/// writes the secret once more with a current fingerprint.
pub fn fingerprint_matches(label: &str, secret: &str) -> bool {
    hash::verify(label, secret)
}

/// Whether `label` is a fingerprint in the current format, one that
/// [`fingerprint_matches`] can judge.
pub fn is_current_fingerprint(label: &str) -> bool {
    hash::is_current(label)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn resolve(path: &Path) -> Result<SecretString, String> {
        SecretSource::File(path.to_owned()).resolve()
    }

    #[test]
    fn a_secret_file_loses_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "pa55\n").unwrap();
        assert_eq!(resolve(&path).unwrap().expose_secret(), "pa55");
        assert_eq!(unusable_file(&path), None);
    }

    #[test]
    fn a_device_is_refused_before_reading_it() {
        let error = resolve(Path::new("/dev/zero")).unwrap_err();
        assert!(error.contains("a device, not a regular file"), "{error}");
        assert!(unusable_file(Path::new("/dev/zero")).is_some());
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = resolve(dir.path()).unwrap_err();
        assert!(error.contains("a directory, not a regular file"), "{error}");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pw");
        crate::regular_file::tests::fifo(&fifo);
        let error = resolve(&fifo).unwrap_err();
        assert!(error.contains("a FIFO, not a regular file"), "{error}");
    }

    #[test]
    fn a_file_over_the_bound_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, vec![b'a'; MAX_FILE_BYTES as usize + 1]).unwrap();
        let error = resolve(&path).unwrap_err();
        assert!(error.contains("more than the 65536"), "{error}");
        std::fs::write(&path, vec![b'a'; MAX_FILE_BYTES as usize]).unwrap();
        assert_eq!(resolve(&path).unwrap().expose_secret().len(), 65536);
    }

    #[test]
    fn a_missing_file_is_not_judged_offline_but_fails_to_resolve() {
        let path = Path::new("/nonexistent/poolform/pw");
        assert_eq!(unusable_file(path), None);
        assert!(resolve(path).unwrap_err().contains("No such file"));
    }

    #[test]
    fn a_fingerprint_matches_its_secret_and_an_old_label_never_does() {
        let label = fingerprint("hunter2");
        assert!(is_current_fingerprint(&label));
        assert!(fingerprint_matches(&label, "hunter2"));
        assert!(!fingerprint_matches(&label, "hunter3"));
        let sha256 = "s4lt:0f3c2e2b6a1d9c8e7f6a5b4c3d2e1f00112233445566778899aabbccddeeff00";
        assert!(!is_current_fingerprint(sha256));
        assert!(!fingerprint_matches(sha256, "hunter2"));
    }
}
