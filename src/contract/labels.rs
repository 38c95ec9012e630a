//! The labels poolform keeps on broker resources for its own bookkeeping:
//! which stack owns a resource, and the fingerprints of secrets it wrote.
//! One home for reading and writing them, so plan, apply, export and import
//! agree on what "owned" means.

use super::wire::Labels;

/// Label key that marks a live resource as owned by a poolform stack.
pub const STACK_LABEL: &str = "poolform.stack";

/// Label key prefix under which poolform stores salted fingerprints of secrets
/// it has written, so that a later plan can detect a changed secret without
/// the broker ever returning it.
pub const FINGERPRINT_LABEL_PREFIX: &str = "poolform.fingerprint/";

/// Label keys with this prefix belong to poolform; users may not set them.
pub const RESERVED_PREFIX: &str = "poolform.";

/// The stack that owns a resource with these labels, if any.
pub fn owner(labels: &Labels) -> Option<&str> {
    labels.get(STACK_LABEL).map(String::as_str)
}

/// Labels as poolform writes them: the user's plus the stack label.
pub fn with_stack(user: &Labels, stack: &str) -> Labels {
    let mut labels = user.clone();
    labels.insert(STACK_LABEL.to_owned(), stack.to_owned());
    labels
}

/// Whether a label is poolform's own bookkeeping (a secret fingerprint),
/// which never takes part in a diff.
pub fn is_fingerprint(key: &str) -> bool {
    key.starts_with(FINGERPRINT_LABEL_PREFIX)
}

/// Live labels without the fingerprints: what a diff compares.
pub fn comparable(live: &Labels) -> Labels {
    live.iter()
        .filter(|(k, _)| !is_fingerprint(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Label key of a pool password's fingerprint.
pub fn password_fingerprint() -> String {
    format!("{FINGERPRINT_LABEL_PREFIX}default_credentials.password")
}
