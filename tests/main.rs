//! Integration tests, compiled into one binary; each module says what it covers.

/// The reference broker binary driven through the HTTP client: every path,
/// auth, revisions, pagination, faults, crash safety; and the OpenAPI file.
mod broker;
