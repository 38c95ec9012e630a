//! The streams commands write to. A reader that goes away (`poolform plan |
//! head`) is no failure of the command: writes to a closed pipe are dropped,
//! and the command ends with the outcome it would have had anyway (a plan
//! with violations still exits 1, one with changes under
//! `--detailed-exitcode` still exits 2).

use std::io::{self, Write};

/// A stream that swallows writes once its reader has gone.
pub struct PipeSafe<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> PipeSafe<W> {
    pub fn new(inner: W) -> PipeSafe<W> {
        PipeSafe {
            inner,
            closed: false,
        }
    }

    fn guard<T>(&mut self, done: T, result: io::Result<T>) -> io::Result<T> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(done)
            }
            other => other,
        }
    }
}

impl<W: Write> Write for PipeSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let result = self.inner.write(buf);
        self.guard(buf.len(), result)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.inner.flush();
        self.guard((), result)
    }
}

/// Standard output, locked for the caller's writes.
pub fn stdout() -> PipeSafe<io::StdoutLock<'static>> {
    PipeSafe::new(io::stdout().lock())
}

/// Standard error, locked for the caller's writes.
pub fn stderr() -> PipeSafe<io::StderrLock<'static>> {
    PipeSafe::new(io::stderr().lock())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Closed {
        writes: usize,
    }

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn a_closed_pipe_swallows_the_rest_and_other_errors_stay_errors() {
        let mut out = PipeSafe::new(Closed { writes: 0 });
        writeln!(out, "first").expect("dropped, not failed");
        writeln!(out, "second").expect("dropped, not failed");
        out.flush().expect("nothing to flush");
        assert_eq!(out.inner.writes, 1, "no write after the pipe closed");

        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::StorageFull.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert!(PipeSafe::new(Full).write(b"x").is_err());
    }
}
