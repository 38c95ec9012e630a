//! Every entry of tests/invalid (a file, or a directory merged as one config)
//! is rejected with located diagnostics; the rendered text is snapshot-tested.

use std::path::{Path, PathBuf};

use poolform::config;
use poolform::render::diagnostics::{self, TextStyle};

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir("tests/invalid")
        .expect("tests/invalid exists")
        .map(|entry| entry.expect("readable entry").path())
        .collect();
    cases.sort();
    cases
}

fn render(path: &Path) -> String {
    let rejected = match config::load(path) {
        Ok(_) => panic!("{} should be invalid", path.display()),
        Err(rejected) => rejected,
    };
    assert!(!rejected.items.is_empty());
    for diagnostic in &rejected.items {
        let label = diagnostic
            .primary
            .as_ref()
            .unwrap_or_else(|| panic!("{}: unlocated {diagnostic:?}", path.display()));
        assert!(label.location.line >= 1 && label.location.column >= 1);
    }
    let mut out = Vec::new();
    diagnostics::text(
        &mut out,
        &rejected.items,
        &rejected.sources,
        TextStyle::PLAIN,
    )
    .expect("render to memory");
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn there_are_at_least_twenty_cases() {
    assert!(cases().len() >= 20, "{} cases", cases().len());
}

#[test]
fn every_invalid_config_is_rejected_with_located_diagnostics() {
    for path in cases() {
        let name = path
            .file_stem()
            .expect("named")
            .to_string_lossy()
            .into_owned();
        insta::assert_snapshot!(name, render(&path));
    }
}
