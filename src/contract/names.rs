//! The one name rule of the broker contract (pools, app configs, app
//! instances, destinations, lock stacks) and its one wording, used by config
//! validation, the reference broker, the client and the commands alike; and
//! the percent-encoding that puts a name into a URL path segment.
//!
//! `.` and `..` are not names: a URL path segment of either (or of its
//! percent-encoding, `%2E`, which URL parsers treat the same) is removed or
//! climbs one level before the request is sent, so no encoding can carry
//! them to the broker, and `/v1/pools/..` would address `/v1/`.

/// The rule as a regular expression, for the JSON Schemas.
pub const PATTERN: &str = r"^(?!\.{1,2}$)[A-Za-z0-9._-]{1,63}$";

/// The rule in words, completing "names are ..." or "... must be ...".
pub const RULE: &str =
    "1-63 characters of letters, digits, '.', '_' and '-', other than '.' and '..'";

/// Whether `name` follows the rule.
pub fn is_valid(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && name != "."
        && name != ".."
}

/// Percent-encodes a path segment or query value: everything but unreserved
/// characters is escaped, so no name can add or remove a path segment.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_bounds_length_and_alphabet() {
        assert!(is_valid("rds-02") && is_valid("a.b_c") && is_valid(&"a".repeat(63)));
        assert!(!is_valid("") && !is_valid(&"a".repeat(64)) && !is_valid("live!"));
    }

    #[test]
    fn dot_segments_are_not_names_but_other_dotted_names_are() {
        assert!(!is_valid(".") && !is_valid(".."));
        assert!(is_valid("...") && is_valid(".a") && is_valid("..a") && is_valid("a.."));
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode("rds-02"), "rds-02");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}
