//! Saved plans: how a plan file is recognised (by its content, whatever
//! its name), read back, and checked before anything acts on it.

use serde::Deserialize;

use super::{FORMAT_VERSION, Plan, checksum};

/// Why a saved plan cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SavedPlanError {
    #[error("it is not JSON ({0})")]
    NotJson(String),
    #[error("it has no format_version field")]
    NoVersion,
    #[error("{}", version_message(*found))]
    Version { found: u32 },
    #[error("it does not have the shape of a format {FORMAT_VERSION} plan ({0})")]
    Shape(String),
    #[error(
        "the plan file's checksum does not match its content; it was edited or damaged since it was saved"
    )]
    Checksum,
}

fn version_message(found: u32) -> String {
    if found < FORMAT_VERSION {
        format!("this plan file was written by an older poolform (format {found}); run plan again")
    } else {
        format!(
            "this plan file was written by a newer poolform (format {found}); this poolform reads format {FORMAT_VERSION}"
        )
    }
}

/// Only the field that makes a JSON document a plan; the rest is skipped.
#[derive(Deserialize)]
struct Probe {
    format_version: Option<serde_json::Value>,
}

/// Whether `bytes` hold a plan document (a JSON object with a
/// `format_version`), of any version: a config is never one.
pub fn is_saved_plan(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Probe>(bytes).is_ok_and(|p| p.format_version.is_some())
}

/// Reads a saved plan and checks its format version and checksum. The
/// version is checked first, so that a plan of another version is named
/// as such rather than as a file of the wrong shape.
pub fn read_saved(bytes: &[u8]) -> Result<Plan, SavedPlanError> {
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| SavedPlanError::NotJson(e.to_string()))?;
    let version = probe.format_version.ok_or(SavedPlanError::NoVersion)?;
    let found = version
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| SavedPlanError::Shape(format!("format_version is {version}")))?;
    if found != FORMAT_VERSION {
        return Err(SavedPlanError::Version { found });
    }
    let plan: Plan =
        serde_json::from_slice(bytes).map_err(|e| SavedPlanError::Shape(e.to_string()))?;
    plan.verify()?;
    Ok(plan)
}

impl Plan {
    /// Checks a plan read from a file before anything acts on it.
    pub fn verify(&self) -> Result<(), SavedPlanError> {
        if self.format_version != FORMAT_VERSION {
            return Err(SavedPlanError::Version {
                found: self.format_version,
            });
        }
        if checksum(self) != self.checksum {
            return Err(SavedPlanError::Checksum);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_recognised_by_its_content() {
        assert!(is_saved_plan(br#"{"format_version": 1, "stack": "s"}"#));
        assert!(!is_saved_plan(b"stack: s\npools: {}\n"));
        assert!(!is_saved_plan(br#"{"destinations": []}"#));
        assert!(!is_saved_plan(b"[1, 2]"));
    }

    #[test]
    fn an_older_plan_is_refused_by_name_before_its_shape_is_checked() {
        let old = br#"{"format_version": 1, "stack": "s", "changes": []}"#;
        let error = read_saved(old).unwrap_err();
        assert_eq!(error, SavedPlanError::Version { found: 1 });
        assert_eq!(
            error.to_string(),
            "this plan file was written by an older poolform (format 1); run plan again"
        );
        let newer = read_saved(br#"{"format_version": 9}"#).unwrap_err();
        assert!(newer.to_string().contains("newer poolform (format 9)"));
        assert_eq!(
            read_saved(br#"{"stack": "s"}"#),
            Err(SavedPlanError::NoVersion)
        );
        assert!(matches!(
            read_saved(b"pools: {}"),
            Err(SavedPlanError::NotJson(_))
        ));
        assert!(matches!(
            read_saved(format!(r#"{{"format_version": {FORMAT_VERSION}, "stack": 3}}"#).as_bytes()),
            Err(SavedPlanError::Shape(_))
        ));
    }
}
