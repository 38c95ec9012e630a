//! Every shape problem of a file at once. The typed parser stops at the
//! first unknown key or wrong type; when it does, the file is read again as
//! a generic tree (same parser, same limits: duplicate keys and alias bombs
//! still stop it) and walked against the config's own JSON Schema, the one
//! derived from `config::spec`. Each unknown key (with the closest allowed
//! key), value outside its list (with the closest allowed value), wrong
//! type, number out of range and missing key becomes a located diagnostic
//! in the user's words.

use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Schema;
use serde_saphyr::{Location, Spanned};

use super::locate::locate_in;
use super::validate::closest;
use crate::diagnostic::{Diagnostic, SourceLocation, SourceMap};

/// A YAML node with where it was written.
#[derive(Debug)]
struct Node {
    at: Location,
    value: Yaml,
}

#[derive(Debug)]
enum Yaml {
    Null,
    Bool,
    Int(i128),
    Float,
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Yaml>::deserialize(deserializer)?;
        Ok(Node {
            at: spanned.referenced,
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Yaml {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(YamlVisitor)
    }
}

struct YamlVisitor;

impl<'de> Visitor<'de> for YamlVisitor {
    type Value = Yaml;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Yaml, D::Error> {
        Yaml::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Yaml, E> {
        Ok(Yaml::Bool)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Yaml, E> {
        Ok(Yaml::Int(i128::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Yaml, E> {
        Ok(Yaml::Int(i128::from(v)))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Yaml, E> {
        Ok(Yaml::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Yaml, E> {
        Ok(Yaml::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Yaml, E> {
        Ok(Yaml::Float)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Yaml, E> {
        Ok(Yaml::Str(v.to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Yaml, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Yaml::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Yaml, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            entries.push((key, map.next_value::<Node>()?));
        }
        Ok(Yaml::Map(entries))
    }
}

/// The config file's schema as JSON, generated once.
fn config_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| super::json_schema().to_value())
}

/// The shape problems of file `file`, in reading order, with its inline
/// secrets masked in `sources`; `None` when the file cannot be read as a
/// tree either (a syntax error, a duplicate key, an alias bomb) or the
/// schema finds nothing, so that the parser's own error stands.
/// `text` is the file as written: the kept source may already have its
/// secrets masked, which would not parse the same.
pub(super) fn problems(
    text: &str,
    sources: &mut SourceMap,
    file: usize,
) -> Option<Vec<Diagnostic>> {
    let root =
        serde_saphyr::from_str_with_options::<Option<Node>>(text, super::yaml::options(text))
            .ok()
            .flatten()?;
    let mut walk = Walk {
        sources,
        file,
        found: Vec::new(),
        secrets: Vec::new(),
    };
    walk.node(&root, config_schema(), &mut Vec::new());
    let Walk { found, secrets, .. } = walk;
    for secret in secrets {
        sources.mask(file, secret.offset, secret.len);
    }
    let mut found = found;
    found.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    (!found.is_empty()).then_some(found)
}

struct Walk<'a> {
    sources: &'a SourceMap,
    file: usize,
    found: Vec<Diagnostic>,
    /// Inline secrets, to mask in the kept source.
    secrets: Vec<SourceLocation>,
}

/// A written value in a message: scalars in backticks, "a list" as is.
fn shown(written: &str) -> String {
    if written == "a list" || written == "a mapping" {
        written.to_owned()
    } else {
        format!("`{}`", written.trim())
    }
}

/// The words for a JSON Schema type, as a user reads them.
fn type_words(kind: &str) -> &'static str {
    match kind {
        "string" => "text",
        "integer" => "a whole number",
        "boolean" => "`true` or `false`",
        "object" => "a mapping (`key: value` entries)",
        "array" => "a list",
        _ => "a value",
    }
}

impl Walk<'_> {
    fn place(&self, node: &Node) -> SourceLocation {
        locate_in(self.sources, self.file, &node.at)
    }

    /// The node as written in the file; a list or mapping by its kind.
    fn written(&self, node: &Node) -> String {
        match node.value {
            Yaml::Seq(_) => return "a list".to_owned(),
            Yaml::Map(_) => return "a mapping".to_owned(),
            _ => {}
        }
        let place = self.place(node);
        let text = self.sources.text(self.file);
        text.get(place.offset..place.offset + place.len)
            .unwrap_or_default()
            .to_owned()
    }

    fn report(
        &mut self,
        code: &'static str,
        message: String,
        node: &Node,
        label: &str,
        help: Option<String>,
    ) {
        let mut diagnostic = Diagnostic::error(code, message).with_label(self.place(node), label);
        diagnostic.help = help;
        self.found.push(diagnostic);
    }

    fn node(&mut self, node: &Node, schema: &Schema, path: &mut Vec<String>) {
        let schema = resolve(schema);
        if let Some(parts) = schema.get("allOf").and_then(Schema::as_array) {
            return parts.iter().for_each(|part| self.node(node, part, path));
        }
        if let Some(options) = schema.get("anyOf").and_then(Schema::as_array) {
            let not_null: Vec<&Schema> = options.iter().filter(|o| o["type"] != "null").collect();
            if matches!(node.value, Yaml::Null) && not_null.len() < options.len() {
                return;
            }
            return not_null.into_iter().for_each(|o| self.node(node, o, path));
        }
        if let Some(options) = schema.get("oneOf").and_then(Schema::as_array) {
            return self.one_of(node, schema, options, path);
        }
        if !self.has_type(node, schema, path) {
            return;
        }
        match &node.value {
            Yaml::Map(entries) => self.mapping(node, entries, schema, path),
            Yaml::Seq(items) => {
                if let Some(item) = schema.get("items") {
                    for (i, element) in items.iter().enumerate() {
                        path.push(i.to_string());
                        self.node(element, item, path);
                        path.pop();
                    }
                }
            }
            Yaml::Int(n) => self.range(node, *n, schema, path),
            _ => {}
        }
    }

    /// Checks the node's type; reports and returns false when it is wrong.
    fn has_type(&mut self, node: &Node, schema: &Schema, path: &[String]) -> bool {
        let allowed: Vec<&str> = match schema.get("type") {
            Some(Schema::String(t)) => vec![t.as_str()],
            Some(Schema::Array(ts)) => ts.iter().filter_map(Schema::as_str).collect(),
            _ => return true,
        };
        let actual = match &node.value {
            Yaml::Null => "null",
            Yaml::Bool => "boolean",
            Yaml::Int(_) => "integer",
            Yaml::Float => "number",
            Yaml::Str(_) => "string",
            Yaml::Seq(_) => "array",
            // An empty section (`pools:` with everything commented out) is
            // an empty mapping.
            Yaml::Map(_) => "object",
        };
        if allowed.contains(&actual) || (actual == "null" && allowed.contains(&"object")) {
            return true;
        }
        let expected = allowed
            .iter()
            .find(|t| **t != "null")
            .copied()
            .unwrap_or("null");
        let written = self.written(node);
        let field = place(path);
        if expected == "string"
            && matches!(
                node.value,
                Yaml::Int(_) | Yaml::Bool | Yaml::Null | Yaml::Float
            )
        {
            self.report(
                "config::ambiguous_scalar",
                format!("{field} is text, but `{written}` is not text in YAML (a number, boolean or null)"),
                node,
                "quote this",
                Some(format!("quote it: '{written}'")),
            );
        } else {
            let help = (expected == "boolean")
                .then(|| "YAML 1.1 spellings like yes/no/on/off are not booleans here".to_owned());
            self.report(
                "config::type",
                format!(
                    "{field} expects {}, not {}",
                    type_words(expected),
                    shown(&written)
                ),
                node,
                "wrong type",
                help,
            );
        }
        false
    }

    fn mapping(
        &mut self,
        node: &Node,
        entries: &[(Node, Node)],
        schema: &Schema,
        path: &mut Vec<String>,
    ) {
        let properties = schema.get("properties").and_then(Schema::as_object);
        let extra = schema.get("additionalProperties");
        let mut seen = Vec::new();
        for (key, value) in entries {
            let Yaml::Str(name) = &key.value else {
                let written = self.written(key);
                self.report(
                    "config::type",
                    format!("`{written}` is not a name or key"),
                    key,
                    "wrong type",
                    None,
                );
                continue;
            };
            seen.push(name.as_str());
            path.push(name.clone());
            match (properties.and_then(|p| p.get(name)), extra) {
                (Some(property), _) => {
                    let required = schema["required"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|k| k == name.as_str()));
                    if required || !matches!(value.value, Yaml::Null) {
                        self.node(value, property, path);
                    }
                }
                (None, Some(Schema::Bool(false))) => self.unknown_key(key, name, properties, path),
                (None, Some(values)) if values.is_object() => self.node(value, values, path),
                _ => {}
            }
            path.pop();
        }
        for required in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Schema::as_str)
        {
            if !seen.contains(&required) {
                self.report(
                    "config::missing_key",
                    format!("{} is missing the key `{required}`", place(path)),
                    node,
                    "in this mapping",
                    None,
                );
            }
        }
    }

    fn unknown_key(
        &mut self,
        key: &Node,
        name: &str,
        allowed: Option<&serde_json::Map<String, Schema>>,
        path: &[String],
    ) {
        let keys: Vec<String> = allowed
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let within = match &path[..path.len() - 1] {
            [] => "at the top level".to_owned(),
            parent => format!("in `{}`", parent.join(".")),
        };
        let mut message = format!(
            "unknown key `{name}` {within}; expected one of {}",
            keys.join(", ")
        );
        if let Some(near) = closest(name, keys.iter()) {
            message.push_str(&format!(" — did you mean `{near}`?"));
        }
        self.report("config::unknown_key", message, key, "unknown key", None);
    }

    fn one_of(&mut self, node: &Node, schema: &Schema, options: &[Schema], path: &[String]) {
        let consts: Vec<String> = options
            .iter()
            .filter_map(|o| o["const"].as_str().map(str::to_owned))
            .collect();
        if consts.len() == options.len() {
            return self.choice(node, schema, &consts);
        }
        if options.iter().all(|o| o["type"] == "object") {
            return self.secret(node, path);
        }
        // A duration: a whole number or text; its text is checked later.
        if !matches!(node.value, Yaml::Int(_) | Yaml::Str(_)) {
            let written = self.written(node);
            self.report(
                "config::duration",
                format!(
                    "`{}` expects a duration like 90s, 10m or 1h30m, not `{written}`",
                    path.join(".")
                ),
                node,
                "not a duration",
                None,
            );
        }
    }

    fn choice(&mut self, node: &Node, schema: &Schema, allowed: &[String]) {
        let written = match &node.value {
            Yaml::Str(s) => s.clone(),
            _ => self.written(node),
        };
        if allowed.contains(&written) {
            return;
        }
        let noun = schema["title"].as_str().unwrap_or("valid value");
        let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        let mut message = format!(
            "`{written}` is not {article} {noun}; expected one of {}",
            allowed.join(", ")
        );
        if let Some(near) = closest(&written, allowed.iter()) {
            message.push_str(&format!(" — did you mean `{near}`?"));
        }
        self.report(
            "config::unknown_value",
            message,
            node,
            &format!("not {article} {noun}"),
            None,
        );
    }

    /// A password: a reference `{env: VAR}` or `{file: PATH}`, never the
    /// secret itself (which is reported, and masked in the kept source).
    fn secret(&mut self, node: &Node, path: &[String]) {
        match &node.value {
            Yaml::Map(entries) => {
                let keys: Vec<&str> = entries
                    .iter()
                    .filter_map(|(k, _)| match &k.value {
                        Yaml::Str(s) => Some(s.as_str()),
                        _ => None,
                    })
                    .collect();
                if keys == ["env"] || keys == ["file"] {
                    return;
                }
                self.report(
                    "config::secret_reference",
                    format!(
                        "`{}` must be `{{env: VAR}}` or `{{file: PATH}}`, not a mapping of {}",
                        path.join("."),
                        keys.join(", ")
                    ),
                    node,
                    "not a secret reference",
                    None,
                );
            }
            _ => {
                let place = self.place(node);
                self.secrets.push(place);
                let pool = path.get(1).cloned().unwrap_or_default();
                self.report(
                    "config::inline_secret",
                    format!("the password of pool '{pool}' is written in the config"),
                    node,
                    "secret value in plain text",
                    Some("reference it instead: `password: {env: VAR}` or `password: {file: PATH}`, and rotate the exposed password".to_owned()),
                );
            }
        }
    }

    fn range(&mut self, node: &Node, n: i128, schema: &Schema, path: &[String]) {
        let min = schema["minimum"].as_i64().map(i128::from);
        let max = schema["maximum"].as_u64().map(i128::from);
        if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
            let bounds = match (min, max) {
                (Some(lo), Some(hi)) => format!("from {lo} to {hi}"),
                (Some(lo), None) => format!("of at least {lo}"),
                (None, Some(hi)) => format!("of at most {hi}"),
                (None, None) => String::new(),
            };
            self.report(
                "config::out_of_range",
                format!(
                    "`{}` is {n}, but it must be a whole number {bounds}",
                    path.join(".")
                ),
                node,
                "out of range",
                None,
            );
        }
    }
}

/// Where a value is, for messages: `pools.live.members`, or "the file" for
/// the document itself.
fn place(path: &[String]) -> String {
    if path.is_empty() {
        "the file".to_owned()
    } else {
        format!("`{}`", path.join("."))
    }
}

/// Follows a local `$ref` (`#/definitions/Name`).
fn resolve(schema: &Schema) -> &Schema {
    match schema.get("$ref").and_then(Schema::as_str) {
        Some(reference) => reference
            .strip_prefix("#/definitions/")
            .and_then(|name| config_schema()["definitions"].get(name))
            .unwrap_or(schema),
        None => schema,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_text;

    fn messages(text: &str) -> (Vec<String>, String) {
        let rejected =
            load_text(vec![("c.yaml".to_owned(), text.to_owned())]).expect_err("invalid");
        let kept = rejected.sources.text(0).to_owned();
        (
            rejected
                .items
                .into_iter()
                .map(|d| format!("{}: {}", d.code, d.message))
                .collect(),
            kept,
        )
    }

    #[test]
    fn every_shape_problem_of_a_file_is_reported_at_once_in_the_users_words() {
        let (found, kept) = messages(
            "stack: s\npools:\n  live:\n    member: [d1]\n    drain: {sessions: dissconnect}\n    min_members: -1\n    \
             default_credentials: {password: hunter22}\napp_configs:\n  a: {pool: live, type: desktop}\n",
        );
        assert_eq!(
            found,
            [
                "config::unknown_key: unknown key `member` in `pools.live`; expected one of default_credentials, \
                 drain, labels, load_balancing, members, min_members — did you mean `members`?",
                "config::unknown_value: `dissconnect` is not a drain policy; expected one of refuse, disconnect, \
                 wait — did you mean `disconnect`?",
                "config::out_of_range: `pools.live.min_members` is -1, but it must be a whole number from 0 to \
                 4294967295",
                "config::inline_secret: the password of pool 'live' is written in the config",
                "config::missing_key: `app_configs.a` is missing the key `protocol`",
            ]
        );
        assert!(!kept.contains("hunter22"), "the secret is masked: {kept}");
    }

    #[test]
    fn what_the_tree_cannot_hold_keeps_the_parsers_own_error() {
        let (found, _) = messages("stack: s\nstack: t\npools: {p: {min_members: x}}\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("config::duplicate_key"), "{found:?}");
    }
}
