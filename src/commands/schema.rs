//! `poolform schema [-o DIR]`: writes the JSON Schemas generated from the
//! Rust types, for editors (yaml-language-server) and other tools.

use std::io::Write;

use crate::cli::SchemaArgs;
use crate::commands::ExitStatus;
use crate::commands::error::{During, Error, IoAction};
use crate::commands::output;

/// A schema file and the function that generates it.
pub struct SchemaFile {
    pub name: &'static str,
    pub generate: fn() -> schemars::Schema,
}

/// Every schema `poolform schema` writes; adding one is one line here.
pub const SCHEMAS: &[SchemaFile] = &[
    SchemaFile {
        name: "config.schema.json",
        generate: crate::config::json_schema,
    },
    SchemaFile {
        name: "plan.schema.json",
        generate: crate::plan::json_schema,
    },
    SchemaFile {
        name: "apply-events.schema.json",
        generate: crate::render::events::json_schema,
    },
];

impl SchemaFile {
    /// The file contents: pretty JSON with a trailing newline.
    pub fn contents(&self) -> String {
        let mut text = serde_json::to_string_pretty(&(self.generate)())
            .expect("a generated schema is plain JSON");
        text.push('\n');
        text
    }
}

pub fn run(args: &SchemaArgs) -> Result<ExitStatus, Error> {
    std::fs::create_dir_all(&args.out_dir).during(IoAction::CreateDir(args.out_dir.clone()))?;
    let mut out = output::stdout();
    for schema in SCHEMAS {
        let path = args.out_dir.join(schema.name);
        std::fs::write(&path, schema.contents()).during(IoAction::Write(path.clone()))?;
        writeln!(out, "wrote {}", path.display()).during(IoAction::WriteStdout)?;
    }
    Ok(ExitStatus::Success)
}
