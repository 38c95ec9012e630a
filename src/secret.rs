//! Secrets: where one comes from (an environment variable or a file, never
//! the config text), its value as a `SecretString` that no renderer can print,
//! and the salted fingerprint poolform stores in a label so a later plan can
//! tell whether a configured secret changed without the broker returning it.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|text| SecretString::from(text.trim_end_matches(['\r', '\n']).to_owned()))
                .map_err(|e| format!("cannot read the secret file {}: {e}", path.display())),
        }
    }
}

/// Salted fingerprint of a secret as stored in a label: `SALT:HEX`.
pub fn fingerprint(salt: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update([0u8]);
    hasher.update(secret.as_bytes());
    format!("{salt}:{}", hex::encode(hasher.finalize()))
}

/// Whether `label` (a fingerprint as made by [`fingerprint`]) was made from `secret`.
pub fn fingerprint_matches(label: &str, secret: &str) -> bool {
    label
        .split_once(':')
        .is_some_and(|(salt, _)| fingerprint(salt, secret) == label)
}
