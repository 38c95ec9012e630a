//! How poolform generates its JSON Schemas: draft-07, with integer widths as
//! `minimum`/`maximum` instead of the `format: uint32` style that schemars
//! writes and that strict validators (ajv's strict mode) reject as unknown.

use schemars::transform::{RecursiveTransform, Transform};
use schemars::{JsonSchema, Schema};
use serde_json::Value;

/// The draft-07 schema of `T`, integer formats replaced by ranges.
pub fn draft07<T: JsonSchema>() -> Schema {
    let mut schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>();
    RecursiveTransform(integer_format_as_range).transform(&mut schema);
    schema
}

/// `{"type": "integer", "format": "uint32", "minimum": 0}` becomes
/// `{"type": "integer", "minimum": 0, "maximum": 4294967295}`. 64-bit
/// counts get no maximum: JavaScript validators cannot hold it exactly.
fn integer_format_as_range(schema: &mut Schema) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let max = match object.get("format").and_then(Value::as_str) {
        Some("uint8") => Some(u64::from(u8::MAX)),
        Some("uint16") => Some(u64::from(u16::MAX)),
        Some("uint32") => Some(u64::from(u32::MAX)),
        Some("uint64" | "uint") => None,
        _ => return,
    };
    object.remove("format");
    object.entry("minimum").or_insert(Value::from(0));
    if let Some(max) = max {
        let narrower = object
            .get("maximum")
            .and_then(Value::as_u64)
            .is_some_and(|given| given <= max);
        if !narrower {
            object.insert("maximum".to_owned(), Value::from(max));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_formats_become_ranges_and_a_narrower_maximum_stays() {
        let mut wide = Schema::try_from(serde_json::json!({
            "type": "integer", "format": "uint32", "minimum": 0
        }))
        .expect("object");
        integer_format_as_range(&mut wide);
        assert_eq!(
            wide.as_value(),
            &serde_json::json!({"type": "integer", "minimum": 0, "maximum": 4294967295u64})
        );
        let mut percent = Schema::try_from(serde_json::json!({
            "type": "integer", "format": "uint8", "minimum": 0, "maximum": 100
        }))
        .expect("object");
        integer_format_as_range(&mut percent);
        assert_eq!(percent.get("maximum"), Some(&Value::from(100)));
        assert!(percent.get("format").is_none());
    }
}
