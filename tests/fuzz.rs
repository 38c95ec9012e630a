//! Random mutations of the example files (byte flips, deleted, duplicated and
//! swapped lines) go through load, validate, conversion and rendering: any
//! outcome is fine except a panic.

use poolform::config::{load_text, lower};
use poolform::render::diagnostics::{self, TextStyle};
use poolform::secret::SecretSource;
use proptest::prelude::*;
use secrecy::SecretString;

const EXAMPLES: &[&str] = &[
    include_str!("../examples/maintenance/steady/pools.yaml"),
    include_str!("../examples/maintenance/steady/apps.yaml"),
    include_str!("../examples/two-divisions/pools.yaml"),
    include_str!("../examples/two-divisions/apps.yaml"),
];

#[derive(Debug, Clone)]
enum Mutation {
    FlipByte { at: usize, value: u8 },
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::FlipByte { at, value }),
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
    ]
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for mutation in mutations {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut lines: Vec<&str> = text.lines().collect();
        match *mutation {
            Mutation::FlipByte { at, value } => {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = value;
                }
                continue;
            }
            Mutation::DeleteLine(i) if !lines.is_empty() => {
                lines.remove(i % lines.len());
            }
            Mutation::DuplicateLine(i) if !lines.is_empty() => {
                let line = lines[i % lines.len()];
                lines.insert(i % lines.len(), line);
            }
            Mutation::SwapLines(a, b) if !lines.is_empty() => {
                let len = lines.len();
                lines.swap(a % len, b % len);
            }
            _ => {}
        }
        bytes = lines.join("\n").into_bytes();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn no_secrets(_: &SecretSource) -> Result<SecretString, String> {
    Err("not available in this test".to_owned())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_examples_never_panic(
        pools in 0..EXAMPLES.len(),
        apps in 0..EXAMPLES.len(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let files = vec![
            ("a.yaml".to_owned(), apply(EXAMPLES[pools], &mutations)),
            ("b.yaml".to_owned(), EXAMPLES[apps].to_owned()),
        ];
        match load_text(files) {
            Ok(config) => {
                let _ = lower(config, &no_secrets);
            }
            Err(rejected) => {
                prop_assert!(!rejected.items.is_empty());
                let mut out = Vec::new();
                diagnostics::text(&mut out, &rejected.items, &rejected.sources, TextStyle::PLAIN)
                    .expect("render to memory");
                diagnostics::json(&mut out, &rejected.items).expect("render to memory");
            }
        }
    }
}
