//! Why a command failed, as a value: each error says what poolform was doing
//! and carries its cause. Commands return one; `main` prints it once, as
//! `poolform: ERROR: CAUSE`, and turns it into exit code 1.

use std::error::Error as _;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::backend::BrokerUrlError;
use crate::contract::{BrokerError, names};
use crate::plan::{BrokerIdentity, CycleError, SavedPlanError};
use crate::refbroker::StoreError;
use crate::render::words;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file, stream or socket failed.
    #[error("cannot {action}")]
    Io {
        action: IoAction,
        #[source]
        source: io::Error,
    },

    #[error(
        "no broker given: pass --broker URL, set POOLFORM_BROKER, or set broker.url in the config"
    )]
    NoBroker,
    #[error(transparent)]
    BrokerUrl(#[from] BrokerUrlError),
    #[error("cannot open the broker {url}")]
    Open {
        url: String,
        #[source]
        source: BrokerError,
    },
    #[error("cannot read the live state")]
    ReadLive(#[source] BrokerError),

    /// The config did not load; its diagnostics have been written.
    #[error("{count} {} in {}", plural(*count, "problem", "problems"), path.display())]
    InvalidConfig { path: PathBuf, count: usize },
    #[error(
        "{} is one file of the config in {}: {} there {} config too, which planning this file alone leaves out \
         (what they declare would be deleted); pass the directory {}, or --allow-partial to plan the file alone",
        file.display(),
        dir.display(),
        siblings.join(", "),
        plural(siblings.len(), "holds", "hold"),
        dir.display()
    )]
    PartialConfig {
        file: PathBuf,
        dir: PathBuf,
        /// "apps.yaml (app_configs, app_instances)" for each other file.
        siblings: Vec<String>,
    },
    #[error(transparent)]
    Cycle(#[from] CycleError),
    /// Safety violations without `--force`; they have been written.
    #[error(
        "the {}plan breaks {count} safety {}; apply refuses it unless --force",
        if *saved { "saved " } else { "" },
        plural(*count, "rule", "rules")
    )]
    Unsafe { count: usize, saved: bool },
    /// Violations that make a step certain to fail; they have been written.
    #[error(
        "the plan breaks {count} safety {} that --force cannot override: the {} would fail",
        plural(*count, "rule", "rules"),
        plural(*count, "step", "steps")
    )]
    Unforceable { count: usize },
    #[error("{} is not a poolform plan file", path.display())]
    NotAPlan {
        path: PathBuf,
        #[source]
        source: SavedPlanError,
    },
    #[error(
        "--target cannot be used with a saved plan: its targets were chosen when it was made (see `poolform show`)"
    )]
    TargetWithSavedPlan,
    #[error("cannot use the saved plan {}", path.display())]
    SavedPlan {
        path: PathBuf,
        #[source]
        source: SavedPlanError,
    },
    /// The saved plan's resources moved on; they have been listed.
    #[error(
        "the saved plan is stale: {changed} {} since it was made; nothing was changed, run plan again",
        plural(*changed, "resource changed", "resources changed")
    )]
    Stale { changed: usize },
    #[error("cannot check the saved plan against the broker")]
    CheckFresh(#[source] BrokerError),
    #[error("cannot read the broker's identity")]
    Identity(#[source] BrokerError),
    #[error(
        "the saved plan was made against broker {} ({}), but {url} is broker {id}; nothing was changed, make the plan against this broker",
        planned.id,
        if planned.url.is_empty() { "no address recorded" } else { &planned.url }
    )]
    OtherBroker {
        planned: BrokerIdentity,
        url: String,
        id: String,
    },

    #[error(
        "stack {stack} is locked by {holder}{}; wait for it to finish or pass --lock-timeout",
        expiry(*expires_in)
    )]
    Locked {
        stack: String,
        holder: String,
        /// Seconds until the lease runs out unless renewed, when the broker said.
        expires_in: Option<u64>,
    },
    #[error("cannot take the stack's lock")]
    Lock(#[source] BrokerError),
    #[error("not applying: stdin is not a terminal to confirm on; pass --auto-approve")]
    NoTerminal,
    #[error("apply cancelled; nothing was changed")]
    Cancelled,
    #[error(
        "{warnings} {} with a warning, which --warnings-as-errors counts as a failure",
        plural(*warnings, "step ended", "steps ended")
    )]
    WarningsAsErrors { warnings: usize },

    #[error("'{0}' is not a valid stack name ({rule})", rule = names::RULE)]
    InvalidStack(String),
    #[error(
        "{} already holds {files}; pass --force to overwrite (any other YAML file there becomes part of the config)",
        dir.display()
    )]
    WouldOverwrite { dir: PathBuf, files: String },
    /// Resources of the stack use ones outside the export; each has been listed.
    #[error(
        "nothing was exported: {count} {} outside the export",
        plural(*count, "resource refers to one", "resources refer to ones")
    )]
    Dangling { count: usize },
    /// The diagnostics of the exported text have been written.
    #[error("the live state cannot be written as a valid config; nothing was exported")]
    Unexportable,
    /// Each failure has been written.
    #[error("{failed} of {total} resources were not imported")]
    NotImported { failed: usize, total: usize },

    #[error("a token is required: pass --token or set POOLFORM_BROKER_TOKEN")]
    NoServeToken,
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("cannot rehearse the plan")]
    Rehearse(#[from] crate::rehearse::RehearseError),
    /// The rehearsal's findings have been written with the plan.
    #[error(
        "the rehearsal found {errors} {} that would fail; nothing was written to the broker",
        plural(*errors, "step", "steps")
    )]
    RehearsalFailed { errors: usize },

    /// The reason has been written already, in a form meant for a reader
    /// other than a person at a terminal (a JSON document, an apply report).
    #[error("rejected; the reason has been written")]
    Rejected,
}

impl Error {
    /// The line `main` prints after `poolform: `: the error and each cause
    /// that adds to it, or `None` when the reason has been written already.
    pub fn message(&self) -> Option<String> {
        if matches!(self, Error::Rejected) {
            return None;
        }
        let mut line = self.to_string();
        let mut cause = self.source();
        while let Some(error) = cause {
            // Some causes repeat their own cause in their text already.
            let text = error.to_string();
            if !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            if let Some(hint) = error.downcast_ref::<BrokerError>().and_then(auth_hint) {
                line.push_str(hint);
            }
            cause = error.source();
        }
        Some(line)
    }

    /// A closed pipe (`poolform plan | head`): the reader went away, which
    /// is no failure of ours.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(
            self,
            Error::Io { action: IoAction::WriteStdout | IoAction::WriteStderr, source }
                if source.kind() == io::ErrorKind::BrokenPipe
        )
    }
}

/// Where the API token comes from, for an answer that refused it.
fn auth_hint(error: &BrokerError) -> Option<&'static str> {
    match error {
        BrokerError::Problem { status: 401, .. } => Some(
            "; poolform sends the API token from the file named by --token-file, else from \
             POOLFORM_TOKEN: set one of them to the broker's current token",
        ),
        BrokerError::Problem { status: 403, .. } => Some(
            "; the API token (from --token-file, else POOLFORM_TOKEN) is valid but may not do this: \
             use a token with write access",
        ),
        _ => None,
    }
}

/// What poolform was doing when a file, stream or socket failed, worded to
/// follow "cannot".
#[derive(Debug)]
pub enum IoAction {
    Read(PathBuf),
    Write(PathBuf),
    Remove(PathBuf),
    CreateDir(PathBuf),
    ListDir(PathBuf),
    Resolve(PathBuf),
    ReadStdin,
    WriteStdout,
    WriteStderr,
    StartRuntime,
    Listen(SocketAddr),
    /// `broker serve`'s ready line: a reader that left before it came is a
    /// failure to start, unlike one that leaves a command's output early.
    Announce,
    Serve,
}

impl fmt::Display for IoAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoAction::Read(path) => write!(f, "read {}", path.display()),
            IoAction::Write(path) => write!(f, "write {}", path.display()),
            IoAction::Remove(path) => write!(f, "remove {}", path.display()),
            IoAction::CreateDir(path) => write!(f, "create the directory {}", path.display()),
            IoAction::ListDir(path) => write!(f, "list the directory {}", path.display()),
            IoAction::Resolve(path) => write!(f, "resolve the path {}", path.display()),
            IoAction::ReadStdin => f.write_str("read the answer from stdin"),
            IoAction::WriteStdout => f.write_str("write to stdout"),
            IoAction::WriteStderr => f.write_str("write to stderr"),
            IoAction::StartRuntime => f.write_str("start the runtime"),
            IoAction::Listen(addr) => write!(f, "listen on {addr}"),
            IoAction::Announce => f.write_str("write the listening address to stdout"),
            IoAction::Serve => f.write_str("serve the broker API"),
        }
    }
}

/// Names what an `io::Result` was doing: `fs::write(&p, b).during(IoAction::Write(p))?`.
pub trait During<T> {
    fn during(self, action: IoAction) -> Result<T, Error>;
}

impl<T> During<T> for io::Result<T> {
    fn during(self, action: IoAction) -> Result<T, Error> {
        self.map_err(|source| Error::Io { action, source })
    }
}

/// `one` or `many` by count.
pub fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// "; the lease expires in 25s unless renewed", when the expiry is known.
fn expiry(expires_in: Option<u64>) -> String {
    expires_in
        .map(|s| {
            format!(
                "; the lease expires in {} unless renewed",
                words::duration(s)
            )
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_follows_the_cause_chain() {
        let error = Error::Io {
            action: IoAction::Write(PathBuf::from("plan.json")),
            source: io::Error::new(io::ErrorKind::PermissionDenied, "permission denied"),
        };
        assert_eq!(
            error.message().as_deref(),
            Some("cannot write plan.json: permission denied")
        );
    }

    #[test]
    fn a_cause_already_in_the_text_is_not_repeated() {
        let error = Error::Store(StoreError::Read {
            path: PathBuf::from("s.json"),
            source: io::Error::new(io::ErrorKind::NotFound, "not found"),
        });
        assert_eq!(
            error.message().as_deref(),
            Some("cannot read s.json: not found")
        );
    }

    #[test]
    fn an_unauthorized_answer_names_the_token_sources() {
        let problem = crate::contract::problem::new(401, "unauthorized", "missing bearer token");
        let error = Error::ReadLive(BrokerError::Problem {
            status: 401,
            problem,
        });
        let message = error.message().expect("a message");
        assert!(
            message.contains("--token-file") && message.contains("POOLFORM_TOKEN"),
            "{message}"
        );
    }

    #[test]
    fn a_written_reason_is_not_written_again() {
        assert_eq!(Error::Rejected.message(), None);
    }

    #[test]
    fn only_a_closed_pipe_counts_as_one() {
        let pipe = |kind| Error::Io {
            action: IoAction::WriteStdout,
            source: io::Error::from(kind),
        };
        assert!(pipe(io::ErrorKind::BrokenPipe).is_broken_pipe());
        assert!(!pipe(io::ErrorKind::Other).is_broken_pipe());
        assert!(!Error::NoBroker.is_broken_pipe());
    }

    #[test]
    fn counts_are_worded_in_the_singular_and_plural() {
        let one = Error::Unsafe {
            count: 1,
            saved: false,
        };
        assert_eq!(
            one.to_string(),
            "the plan breaks 1 safety rule; apply refuses it unless --force"
        );
        let saved = Error::Unsafe {
            count: 2,
            saved: true,
        };
        assert_eq!(
            saved.to_string(),
            "the saved plan breaks 2 safety rules; apply refuses it unless --force"
        );
    }

    #[test]
    fn a_held_lock_says_when_it_runs_out() {
        let locked = Error::Locked {
            stack: "corp".to_owned(),
            holder: "ci (pid 7)".to_owned(),
            expires_in: Some(25),
        };
        assert_eq!(
            locked.to_string(),
            "stack corp is locked by ci (pid 7); the lease expires in 25s unless renewed; wait for it to finish or pass --lock-timeout"
        );
    }
}
