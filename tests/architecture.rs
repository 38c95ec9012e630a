//! The module layout as a checked rule: every `crate::` path in production
//! code under `src/` must point at a module its importer may depend on.
//! `src/lib.rs` documents the same table; this test keeps the two honest.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module and the crate modules its production code may use.
/// The layering, bottom up: the contract and small shared types; the two
/// sides of the broker contract (client, reference broker); the config
/// pipeline and the pure plan; apply, export and render on top of those;
/// `backend` joining the two broker sides; `commands` and `cli` at the top.
const ALLOWED: &[(&str, &[&str])] = &[
    ("contract", &[]),
    ("address", &[]),
    ("atomic_file", &[]),
    ("regular_file", &[]),
    ("diagnostic", &[]),
    ("json_schema", &[]),
    ("secret", &["contract", "regular_file"]),
    ("desired", &["address", "contract", "secret"]),
    ("client", &["contract"]),
    ("refbroker", &["contract", "atomic_file"]),
    (
        "config",
        &[
            "address",
            "contract",
            "desired",
            "diagnostic",
            "json_schema",
            "regular_file",
            "secret",
        ],
    ),
    (
        "plan",
        &["address", "contract", "desired", "json_schema", "secret"],
    ),
    (
        "apply",
        &["address", "contract", "desired", "plan", "secret"],
    ),
    ("export", &["address", "config", "contract", "desired"]),
    (
        "rehearse",
        &[
            "address",
            "apply",
            "contract",
            "desired",
            "plan",
            "refbroker",
            "secret",
        ],
    ),
    (
        "render",
        &[
            "address",
            "apply",
            "contract",
            "desired",
            "diagnostic",
            "json_schema",
            "plan",
            "secret",
        ],
    ),
    ("backend", &["client", "contract", "refbroker"]),
    ("cli", &["address", "config"]),
    (
        "commands",
        &[
            "address",
            "apply",
            "atomic_file",
            "backend",
            "cli",
            "client",
            "config",
            "contract",
            "desired",
            "diagnostic",
            "export",
            "plan",
            "refbroker",
            "rehearse",
            "render",
            "secret",
        ],
    ),
    // The crate root and the binary.
    ("lib", &[]),
    ("main", &[]),
];

/// One import the layout forbids, as a readable line.
fn violation(file: &str, line: usize, from: &str, to: &str) -> String {
    format!("{file}:{line}: `{from}` must not use `crate::{to}`")
}

/// Production code of a file: everything before the first `#[cfg(test)]`
/// (tests sit at the bottom by convention, and unit tests may reach for
/// fixtures and test doubles from anywhere).
fn production(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// Names of the files a module declares under `#[cfg(test)]` (`mod tests;`,
/// `pub(crate) mod fixtures;`): test code, not checked.
fn test_modules(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            continue;
        }
        if let Some(next) = lines.peek() {
            let declaration = next
                .trim()
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            if let Some(name) = declaration
                .strip_prefix("mod ")
                .and_then(|rest| rest.strip_suffix(';'))
            {
                names.push(name.to_owned());
            }
        }
    }
    names
}

/// The top-level module a file under `src/` belongs to.
fn module_of(relative: &Path) -> String {
    let first = relative
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_owned()
}

/// Every `crate::NAME` in `text`, with its 1-based line.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            // `poolform_crate::x` or `$crate::x` are not this crate's paths.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((number + 1, name));
            }
        }
        // `use crate::{a, b}` lists several modules at once.
        if let Some(group) = code.split("crate::{").nth(1) {
            let group = group.split('}').next().unwrap_or("");
            for name in group.split(',') {
                let name = name.trim().split("::").next().unwrap_or("").trim();
                if !name.is_empty() {
                    found.push((number + 1, name.to_owned()));
                }
            }
        }
    }
    found
}

/// Checks `files` (path relative to `src/`, text) against [`ALLOWED`].
fn check(files: &[(PathBuf, String)]) -> Vec<String> {
    let skipped: BTreeSet<PathBuf> = files
        .iter()
        .flat_map(|(path, text)| {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let own = path.with_extension("");
            test_modules(text).into_iter().flat_map(move |name| {
                // `mod x;` in a/mod.rs or a.rs is a/x.rs or a/x/mod.rs.
                let base = if path.ends_with("mod.rs") || path.ends_with("lib.rs") {
                    dir.clone()
                } else {
                    own.clone()
                };
                [
                    base.join(format!("{name}.rs")),
                    base.join(&name).join("mod.rs"),
                ]
            })
        })
        .collect();
    let mut found = Vec::new();
    for (path, text) in files {
        if skipped.contains(path) || path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let from = module_of(path);
        let Some((_, allowed)) = ALLOWED.iter().find(|(m, _)| *m == from) else {
            found.push(format!(
                "{}: module `{from}` is not in the layout table",
                path.display()
            ));
            continue;
        };
        for (line, to) in crate_paths(production(text)) {
            if to != from && !allowed.contains(&to.as_str()) {
                found.push(violation(&path.display().to_string(), line, &from, &to));
            }
        }
    }
    found
}

fn source_files() -> Vec<(PathBuf, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path.strip_prefix(root).unwrap().to_path_buf(), text));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    files
}

#[test]
fn production_code_imports_only_what_the_layout_allows() {
    let files = source_files();
    assert!(files.len() > 20, "found the sources");
    let found = check(&files);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn every_module_of_the_crate_is_in_the_layout_table() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(name) = line
            .strip_prefix("pub mod ")
            .and_then(|r| r.strip_suffix(';'))
        {
            assert!(
                ALLOWED.iter().any(|(m, _)| *m == name),
                "src/lib.rs declares `{name}`, which the layout table does not list"
            );
        }
    }
}

/// The checker itself: each forbidden import the layout names is caught.
#[test]
fn a_forbidden_import_is_reported() {
    let file = |path: &str, text: &str| (PathBuf::from(path), text.to_owned());
    let cases = [
        (
            "client/http.rs",
            "use crate::refbroker::Engine;\n",
            "refbroker",
        ),
        ("plan/diff.rs", "use crate::config::Config;\n", "config"),
        (
            "plan/mod.rs",
            "fn f() { crate::render::words::step(x); }\n",
            "render",
        ),
        (
            "apply/step.rs",
            "use crate::{contract, refbroker};\n",
            "refbroker",
        ),
        (
            "apply/mod.rs",
            "use crate::commands::ExitStatus;\n",
            "commands",
        ),
        (
            "render/plan.rs",
            "use crate::client::HttpBroker;\n",
            "client",
        ),
        (
            "render/plan.rs",
            "use crate::backend::AnyBroker;\n",
            "backend",
        ),
        (
            "config/lower.rs",
            "use crate::commands::context;\n",
            "commands",
        ),
        ("refbroker/store.rs", "use crate::plan::Plan;\n", "plan"),
    ];
    for (path, text, target) in cases {
        let found = check(&[file(path, text)]);
        assert_eq!(found.len(), 1, "{path}: {text:?} -> {found:?}");
        assert!(found[0].contains(&format!("crate::{target}")), "{found:?}");
    }
    let allowed = [
        ("plan/diff.rs", "use crate::contract::wire::Pool;\n"),
        ("apply/step.rs", "use crate::plan::{Op, Step};\n"),
        ("commands/plan.rs", "use crate::refbroker::Store;\n"),
        // Test code may use anything.
        (
            "apply/mod.rs",
            "use crate::plan::Plan;\n#[cfg(test)]\nmod tests {\n use crate::refbroker::Engine;\n}\n",
        ),
        ("apply/tests.rs", "use crate::refbroker::Engine;\n"),
        // Comments do not count.
        ("plan/mod.rs", "// not crate::config here\n"),
    ];
    for (path, text) in allowed {
        assert_eq!(check(&[file(path, text)]), Vec::<String>::new(), "{path}");
    }
    let declared = [
        file("apply/mod.rs", "#[cfg(test)]\nmod fake;\n"),
        file("apply/fake.rs", "use crate::refbroker::Engine;\n"),
    ];
    assert!(
        check(&declared).is_empty(),
        "a cfg(test) module is test code"
    );
}
