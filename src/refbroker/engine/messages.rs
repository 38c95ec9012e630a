//! Messages to users: a notice shown to everyone with an active session on
//! a destination (the warning before a drain disconnects them). It changes
//! no resource, but it is something users saw, so it is logged.

use super::{Engine, Result, bad_request, unreachable_host};
use crate::contract::wire::{Affected, MAX_MESSAGE_CHARS, SessionMessage, SessionState};

/// A notice must be plain text a session can show: something to read, not
/// too long, and no control characters but line breaks.
fn check_text(language: &str, text: &str) -> Result<()> {
    let problem = if text.trim().is_empty() {
        "is empty"
    } else if text.chars().count() > MAX_MESSAGE_CHARS {
        "is longer than the limit"
    } else if text.chars().any(|c| c.is_control() && c != '\n') {
        "holds a control character other than a line break"
    } else {
        return Ok(());
    };
    Err(bad_request(format!(
        "the {language} message {problem} (plain text, 1-{MAX_MESSAGE_CHARS} characters)"
    )))
}

impl Engine {
    /// Shows `message` to the user of every active session on
    /// `destination`; `affected` is how many. With none active nothing is
    /// logged. An offline host cannot show anything.
    pub fn message_sessions(
        &mut self,
        destination: &str,
        message: &SessionMessage,
    ) -> Result<Affected> {
        check_text("German", &message.de)?;
        check_text("English", &message.en)?;
        if !self.destination_or_404(destination)?.online {
            return Err(unreachable_host(destination));
        }
        let active = (self.lookups().sessions_on(destination).iter())
            .filter(|id| {
                self.sessions
                    .get(*id)
                    .is_some_and(|s| s.state == SessionState::Active)
            })
            .count();
        if active > 0 {
            self.log(
                "sessions.message",
                format!("destination/{destination}/sessions"),
                None,
            );
        }
        Ok(Affected {
            affected: u32::try_from(active).unwrap_or(u32::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::problem::codes;
    use crate::refbroker::engine::fixtures::{engine, ops_since};

    fn notice(de: &str, en: &str) -> SessionMessage {
        SessionMessage {
            de: de.to_owned(),
            en: en.to_owned(),
        }
    }

    #[test]
    fn active_sessions_are_messaged_once_and_logged() {
        let mut e = engine();
        e.sim_start_session("rds-02", "jane", SessionState::Active, &[])
            .unwrap();
        e.sim_start_session("rds-02", "kim", SessionState::Disconnected, &[])
            .unwrap();
        let seq = e.seq();
        let message = notice("Wartung in 10 Minuten", "Maintenance in 10 minutes");
        assert_eq!(e.message_sessions("rds-02", &message).unwrap().affected, 1);
        assert_eq!(
            ops_since(&e, seq),
            ["sessions.message destination/rds-02/sessions Ok None"]
        );
        let seq = e.seq();
        assert_eq!(e.message_sessions("rds-01", &message).unwrap().affected, 0);
        assert_eq!(e.seq(), seq, "nobody to tell: nothing logged");
        assert_eq!(
            e.destination("rds-02").unwrap().sessions.active,
            1,
            "a message ends no session"
        );
    }

    #[test]
    fn messages_are_plain_text_of_bounded_length_to_an_online_host() {
        let mut e = engine();
        for bad in [
            notice("", "text"),
            notice("text", "  "),
            notice("text", "bell\u{7}"),
            notice(&"x".repeat(MAX_MESSAGE_CHARS + 1), "text"),
        ] {
            assert_eq!(e.message_sessions("rds-02", &bad).unwrap_err().status, 400);
        }
        let lines = notice("Zeile 1\nZeile 2", "line 1\nline 2");
        e.message_sessions("rds-02", &lines).unwrap();
        e.sim_power("rds-02", false).unwrap();
        assert_eq!(
            e.message_sessions("rds-02", &lines).unwrap_err().code,
            codes::DESTINATION_UNREACHABLE
        );
        assert_eq!(
            e.message_sessions("rds-99", &lines).unwrap_err().status,
            404
        );
    }
}
