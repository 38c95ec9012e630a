//! The README's config reference is generated from the JSON Schema, so it
//! cannot drift from the code. `POOLFORM_BLESS=1 cargo test --all-targets`
//! rewrites it after a deliberate change.

use serde_json::Value;

const START: &str =
    "<!-- config-reference:start (generated from schema/config.schema.json by tests/docs.rs) -->";
const END: &str = "<!-- config-reference:end -->";

/// Follows `$ref`, and unwraps the `allOf: [x]` and `anyOf: [x, null]`
/// wrappers schemars puts around optional and described references.
fn resolve<'a>(root: &'a Value, node: &'a Value) -> (&'a Value, Option<&'a str>) {
    if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/definitions/");
        let (target, _) = resolve(root, &root["definitions"][name]);
        return (target, Some(name));
    }
    for wrapper in ["allOf", "anyOf"] {
        if let Some(options) = node.get(wrapper).and_then(Value::as_array) {
            let real: Vec<&Value> = options.iter().filter(|o| o["type"] != "null").collect();
            if real.len() == 1 {
                return resolve(root, real[0]);
            }
        }
    }
    (node, None)
}

fn type_name(root: &Value, node: &Value) -> String {
    let (target, name) = resolve(root, node);
    match name {
        Some("Duration") => return "duration".to_owned(),
        Some("SecretRef") => return "`{env: VAR}` or `{file: PATH}`".to_owned(),
        Some("Labels") => return "map of strings".to_owned(),
        _ => {}
    }
    if let Some(variants) = target.get("oneOf").and_then(Value::as_array) {
        let names: Vec<String> = variants
            .iter()
            .filter_map(|v| v.get("const").and_then(Value::as_str))
            .map(|v| format!("`{v}`"))
            .collect();
        if !names.is_empty() {
            return names.join(" \\| ");
        }
    }
    if let Some(variants) = target.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = variants
            .iter()
            .filter_map(Value::as_str)
            .map(|v| format!("`{v}`"))
            .collect();
        return names.join(" \\| ");
    }
    let types = match &target["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => vec![],
    };
    match types.first().copied() {
        Some("array") => format!("list of {}s", type_name(root, &target["items"])),
        Some("object")
            if target
                .get("propertyNames")
                .and_then(|p| p.get("pattern"))
                .is_some() =>
        {
            "map of name to object".to_owned()
        }
        Some("object") => "mapping".to_owned(),
        Some(t) => t.to_owned(),
        None => "any".to_owned(),
    }
}

fn description(root: &Value, node: &Value) -> String {
    let text = node
        .get("description")
        .or_else(|| resolve(root, node).0.get("description"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn walk(root: &Value, node: &Value, prefix: &str, rows: &mut Vec<String>) {
    let (target, _) = resolve(root, node);
    if let Some(properties) = target.get("properties").and_then(Value::as_object) {
        for (key, property) in properties {
            let path = format!("{prefix}{key}");
            rows.push(format!(
                "| `{path}` | {} | {} |",
                type_name(root, property),
                description(root, property)
            ));
            walk(root, property, &format!("{path}."), rows);
        }
    } else if target
        .get("propertyNames")
        .and_then(|p| p.get("pattern"))
        .is_some()
    {
        walk(
            root,
            &target["additionalProperties"],
            &format!("{prefix}<name>."),
            rows,
        );
    }
}

fn reference() -> String {
    let root: Value = serde_json::from_str(
        &std::fs::read_to_string("schema/config.schema.json").expect("schema"),
    )
    .expect("JSON");
    let mut rows = vec![
        "| key | type | description |".to_owned(),
        "|---|---|---|".to_owned(),
    ];
    walk(&root, &root, "", &mut rows);
    rows.join("\n")
}

#[test]
fn readme_config_reference_matches_the_schema() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let start = readme.find(START).expect("start marker in README.md") + START.len();
    let end = readme.find(END).expect("end marker in README.md");
    let expected = format!("\n{}\n", reference());
    if readme[start..end] == expected {
        return;
    }
    if std::env::var_os("POOLFORM_BLESS").is_some() {
        let updated = format!("{}{expected}{}", &readme[..start], &readme[end..]);
        std::fs::write("README.md", updated).expect("write README.md");
        return;
    }
    panic!("README.md config reference is stale: run `POOLFORM_BLESS=1 cargo test --all-targets`");
}
