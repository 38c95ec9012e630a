//! What a request to the reference broker may carry, checked before any
//! handler runs: JSON bodies of the documented shape, path and query values
//! with problem answers on rejection, names, and the condition of a
//! conditional write.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, MAX_BODY_BYTES, bad_request};
use crate::contract::Expect;
use crate::contract::names;
use crate::contract::problem::{self, codes};

/// JSON body of the documented shape, whose rejections (syntax, types,
/// unknown fields, size, an array where an object belongs, a null) become
/// problem answers: 413 for oversized bodies, 400 for everything else. serde
/// reads a struct from an array too (`["someone", 600]` as a lock body) and
/// an absent field from `null`, which no field of the contract allows, so
/// the body is read as a JSON value first and checked against what was
/// decoded. An integer written with a zero fraction (`600.0`) is an integer,
/// as JSON Schema has it.
pub(super) struct Body<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned + Serialize> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut sent = match axum::Json::<Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError(problem::new(
                    413,
                    codes::PAYLOAD_TOO_LARGE,
                    format!("bodies are limited to {MAX_BODY_BYTES} bytes"),
                )));
            }
            Err(rejection) => return Err(bad_request(rejection.body_text())),
        };
        if !sent.is_object() {
            return Err(bad_request("the body must be a JSON object"));
        }
        integral_floats_as_integers(&mut sent);
        let typed = T::deserialize(&sent).map_err(|e| bad_request(format!("invalid body: {e}")))?;
        let read = serde_json::to_value(&typed).expect("wire types serialise");
        match misshapen(&sent, Some(&read)) {
            Some((at, Misshapen::Array)) => Err(bad_request(format!(
                "${at} must be a JSON object, not an array"
            ))),
            Some((at, Misshapen::Null)) => Err(bad_request(format!(
                "${at} is null; leave out a field that has no value"
            ))),
            None => Ok(Body(typed)),
        }
    }
}

/// Rewrites every number with a zero fraction that fits an integer type as
/// that integer.
fn integral_floats_as_integers(value: &mut Value) {
    const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) {
                if (0.0..2.0 * TWO_TO_63).contains(&f) {
                    *value = Value::from(f as u64);
                } else if (-TWO_TO_63..0.0).contains(&f) {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// What no body of the contract may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Misshapen {
    /// An array that was decoded as an object.
    Array,
    Null,
}

/// Where the body sent (`sent`) departs from the documented shape, as a
/// JSON path below `$`, judged against the decoded value encoded again
/// (`read`, absent where the decoded value left a field out); `None` when
/// it has the documented shape.
fn misshapen(sent: &Value, read: Option<&Value>) -> Option<(String, Misshapen)> {
    match (sent, read) {
        (Value::Null, _) => Some((String::new(), Misshapen::Null)),
        (Value::Array(_), Some(Value::Object(_))) => Some((String::new(), Misshapen::Array)),
        (Value::Object(fields), _) => fields.iter().find_map(|(key, value)| {
            let (rest, what) = misshapen(value, read.and_then(|r| r.get(key)))?;
            Some((format!(".{key}{rest}"), what))
        }),
        (Value::Array(items), _) => items.iter().enumerate().find_map(|(i, value)| {
            let (rest, what) = misshapen(value, read.and_then(|r| r.get(i)))?;
            Some((format!("[{i}]{rest}"), what))
        }),
        _ => None,
    }
}

/// Query string with problem answers on rejection.
pub(super) struct Q<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Q(v))
            .map_err(|r| bad_request(r.body_text()))
    }
}

/// Path parameters with problem answers on rejection.
pub(super) struct P<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| P(v))
            .map_err(|r| bad_request(r.body_text()))
    }
}

/// A resource name from a path or a query. One outside the name rule is a
/// 400 before any handler runs: read as a name that does not exist it would
/// make a delete a no-op and a 404 "already gone".
#[derive(Deserialize)]
#[serde(try_from = "String")]
pub(super) struct Name(pub(super) String);

impl TryFrom<String> for Name {
    type Error = String;

    fn try_from(name: String) -> Result<Name, String> {
        if names::is_valid(&name) {
            Ok(Name(name))
        } else {
            Err(format!("name {name:?} must be {}", names::RULE))
        }
    }
}

/// What a conditional write expects: `If-Match: "7"` (also `W/"7"` or a
/// bare `7`) is revision 7, `If-None-Match: *` is "does not exist yet",
/// neither is no condition. Both at once, an `If-Match` that is not one
/// revision (empty included: a condition that was meant but lost is not "no
/// condition"), or an `If-None-Match` other than `*`, is a bad request.
pub(super) fn expect(headers: &HeaderMap) -> Result<Expect, ApiError> {
    let text = |name| {
        headers
            .get(name)
            .map(|v: &HeaderValue| v.to_str().unwrap_or_default().trim())
    };
    match (text(header::IF_MATCH), text(header::IF_NONE_MATCH)) {
        (None, None) => Ok(Expect::Any),
        (None, Some("*")) => Ok(Expect::Absent),
        (None, Some(other)) => Err(bad_request(format!(
            "If-None-Match {other:?} is not supported; only * is"
        ))),
        (Some(text), None) => revision(text)
            .map(Expect::Revision)
            .ok_or_else(|| bad_request(format!("If-Match {text:?} is not a revision"))),
        (Some(_), Some(_)) => Err(bad_request("send If-Match or If-None-Match, not both")),
    }
}

/// The revision of an `If-Match` entity tag: `"7"`, `W/"7"`, `7` or `W/7`,
/// at most 19 digits (so it fits in 64 bits), as the OpenAPI pattern says.
fn revision(tag: &str) -> Option<u64> {
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let digits = match tag.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"')?,
        None => tag,
    };
    let valid = (1..=19).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| digits.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn if_match_accepts_quoted_weak_and_bare_revisions() {
        for text in ["\"7\"", "W/\"7\"", "7"] {
            let mut h = HeaderMap::new();
            h.insert(header::IF_MATCH, HeaderValue::from_static(text));
            assert_eq!(expect(&h).ok(), Some(Expect::Revision(7)), "{text}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"abc\""));
        assert!(expect(&h).is_err());
    }

    #[test]
    fn if_none_match_star_expects_absence_and_nothing_else_is_accepted() {
        let mut h = HeaderMap::new();
        assert_eq!(expect(&h).ok(), Some(Expect::Any));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert_eq!(expect(&h).ok(), Some(Expect::Absent));
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"7\""));
        assert!(expect(&h).is_err(), "both at once");
        h.remove(header::IF_MATCH);
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"7\""));
        assert!(expect(&h).is_err());
    }

    #[test]
    fn if_match_is_one_revision_or_a_bad_request() {
        for (tag, rev) in [
            ("\"7\"", Some(7)),
            ("W/\"7\"", Some(7)),
            ("7", Some(7)),
            ("W/7", Some(7)),
        ] {
            assert_eq!(revision(tag), rev, "{tag}");
        }
        let max = "9".repeat(19);
        assert_eq!(revision(&max), Some(9_999_999_999_999_999_999));
        for tag in [
            "",
            "\"\"",
            "W/",
            "W/\"\"",
            "\"7",
            "7\"",
            "\"\"7\"\"",
            "7, 8",
            "*",
            "-7",
            "\"seven\"",
        ] {
            assert_eq!(revision(tag), None, "{tag:?}");
        }
        assert_eq!(
            revision(&"9".repeat(20)),
            None,
            "beyond the documented 19 digits"
        );
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_static(""));
        assert!(
            expect(&h).is_err(),
            "an empty If-Match is not \"no condition\""
        );
    }

    #[test]
    fn an_array_is_never_read_as_an_object_nor_a_null_as_a_value() {
        let at = |sent: Value, read: Value| misshapen(&sent, Some(&read));
        let lock = json!({"holder": "someone", "ttl_seconds": 600});
        assert_eq!(
            at(json!(["someone", 600]), lock.clone()),
            Some((String::new(), Misshapen::Array))
        );
        let read =
            json!({"labels": {}, "load_balancing": {"enabled": true}, "members": [{"a": 1}]});
        assert_eq!(
            at(
                json!({"labels": {}, "load_balancing": [true]}),
                read.clone()
            ),
            Some((".load_balancing".to_owned(), Misshapen::Array))
        );
        assert_eq!(
            at(json!({"members": [[1]]}), read.clone()),
            Some((".members[0]".to_owned(), Misshapen::Array))
        );
        assert_eq!(
            at(
                json!({"owner": null, "enabled": false}),
                json!({"enabled": false})
            ),
            Some((".owner".to_owned(), Misshapen::Null))
        );
        assert_eq!(
            at(json!({"labels": {"x": null}}), read.clone()),
            Some((".labels.x".to_owned(), Misshapen::Null))
        );
        let sent =
            json!({"labels": {}, "load_balancing": {"enabled": true}, "members": [{"a": 1}]});
        assert_eq!(at(sent, read), None);
    }

    #[test]
    fn integral_floats_are_integers_and_other_numbers_stay() {
        let mut v = json!({"ttl_seconds": 18859.0, "n": [-2.0, 1.5, 1e300, 7], "s": "1.0"});
        integral_floats_as_integers(&mut v);
        assert_eq!(
            v,
            json!({"ttl_seconds": 18859, "n": [-2, 1.5, 1e300, 7], "s": "1.0"})
        );
        assert!(v["ttl_seconds"].is_u64() && v["n"][0].is_i64());
    }

    #[test]
    fn names_in_paths_follow_the_name_rule() {
        assert!(Name::try_from("rds-02".to_owned()).is_ok());
        for bad in ["", "..", ".", "\u{84}", "a/b", &"a".repeat(64)] {
            assert!(Name::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }
}
