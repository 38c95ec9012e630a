//! Problem answers (`application/problem+json`, RFC 9457): the body, the
//! stable codes clients branch on, and the one title each code has, so the
//! reference broker and the client agree on every error they exchange.

use serde::{Deserialize, Serialize};

/// `application/problem+json` error body (RFC 9457) with a stable `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type", default = "about_blank")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Set on `lb_service_uninstall_failed`, `destination_unreachable` and
    /// `destination_not_ready`: whether the broker saw the host online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_online: Option<bool>,
    /// Set on `conflict` from the lock and drain endpoints and on
    /// `destination_draining`: who holds the lock or the drain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

fn about_blank() -> String {
    "about:blank".to_owned()
}

/// Stable problem codes.
pub mod codes {
    pub const LB_SERVICE_UNINSTALL_FAILED: &str = "lb_service_uninstall_failed";
    pub const DESTINATION_NOT_READY: &str = "destination_not_ready";
    pub const DESTINATION_UNREACHABLE: &str = "destination_unreachable";
    pub const CONFLICT: &str = "conflict";
    pub const IN_USE: &str = "in_use";
    pub const NOT_FOUND: &str = "not_found";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const PRECONDITION_FAILED: &str = "precondition_failed";
    pub const BAD_REQUEST: &str = "bad_request";
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const UNAVAILABLE: &str = "unavailable";
    pub const LOCKED: &str = "locked";
    pub const DESTINATION_DRAINING: &str = "destination_draining";
}

/// Builds a problem answer; `title` is fixed per code so clients can rely on it.
pub fn new(status: u16, code: &str, detail: impl Into<String>) -> Box<Problem> {
    let title = match code {
        codes::LB_SERVICE_UNINSTALL_FAILED => "load-balancing service could not be uninstalled",
        codes::DESTINATION_NOT_READY => "destination is not prepared for process execution",
        codes::DESTINATION_UNREACHABLE => "destination is unreachable",
        codes::CONFLICT => "conflict",
        codes::IN_USE => "resource is in use",
        codes::NOT_FOUND => "not found",
        codes::UNAUTHORIZED => "unauthorized",
        codes::RATE_LIMITED => "too many requests",
        codes::PRECONDITION_FAILED => "If-Match or If-None-Match does not hold",
        codes::BAD_REQUEST => "bad request",
        codes::PAYLOAD_TOO_LARGE => "request body too large",
        codes::UNAVAILABLE => "service unavailable",
        codes::LOCKED => "locked",
        codes::DESTINATION_DRAINING => "destination is in drain mode and accepts no new sessions",
        _ => "error",
    };
    Box::new(Problem {
        type_uri: format!("urn:poolform:problem:{code}"),
        title: title.to_owned(),
        status,
        code: code.to_owned(),
        detail: Some(detail.into()),
        destination_online: None,
        holder: None,
        expires_at: None,
    })
}
