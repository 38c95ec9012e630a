//! The reference broker as a child process of a benchmark: `poolform broker
//! serve` on a free loopback port, created from a seed, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_poolform");
pub const TOKEN: &str = "bench-token";

/// Killed when dropped: a failed run panics, and the broker must not outlive
/// the benchmark (it would hold memory and a core).
pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    /// A broker with its state in `state`, created from `seed` when the state
    /// does not exist yet, with `extra` flags; its log goes to `log`.
    pub fn start(state: &Path, seed: &Path, extra: &[&str], log: Stdio) -> Server {
        let mut child = Command::new(BIN)
            .args([
                "broker",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--token",
                TOKEN,
            ])
            .arg("--state")
            .arg(state)
            .arg("--seed")
            .arg(seed)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the broker");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("read the broker's first line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the broker prints its address, not {line:?}"))
            .to_owned();
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
