//! The schema files committed in schema/ are exactly what `poolform schema`
//! generates; a change to the config types without regenerating fails here.

use poolform::commands::schema::SCHEMAS;

#[test]
fn committed_schemas_are_up_to_date() {
    for schema in SCHEMAS {
        let path = format!("schema/{}", schema.name);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == schema.contents(),
            "{path} is stale: run `cargo run -q -- schema` and commit the result"
        );
    }
}

#[test]
fn config_schema_is_draft_07_and_describes_every_property() {
    let schema: serde_json::Value = serde_json::from_str(&SCHEMAS[0].contents()).expect("JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert!(
        schema.get("required").is_none(),
        "top-level keys are optional per file"
    );
    let mut missing = Vec::new();
    let definitions = schema["definitions"].as_object().expect("definitions");
    let objects = std::iter::once(("(root)", &schema))
        .chain(definitions.iter().map(|(k, v)| (k.as_str(), v)));
    for (name, object) in objects {
        for (key, property) in object["properties"].as_object().into_iter().flatten() {
            if property.get("description").is_none() {
                missing.push(format!("{name}.{key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "properties without description: {missing:?}"
    );
}
