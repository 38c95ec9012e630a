//! Rules for the notice of a drain: it warns users before they are
//! disconnected, so it needs `sessions: disconnect` and a lead time, and
//! its texts must be something a session can show.

use super::Checker;
use crate::config::spec::{PoolSpec, Sp};
use crate::contract::wire::MAX_MESSAGE_CHARS;
use crate::desired::DrainSessions;

impl Checker<'_> {
    /// `drain.notice` and `drain.lead_time` come together, and only with
    /// `sessions: disconnect`: a `wait` drain disconnects nobody, and a
    /// lead time without a notice would keep users waiting unwarned.
    pub(super) fn drain_notice(&mut self, file: usize, pool: &str, spec: &PoolSpec) {
        let Some(drain) = &spec.drain else {
            return;
        };
        if let Some(lead_time) = &drain.lead_time {
            self.duration(file, lead_time, 1, "drain.lead_time", "seconds");
            if drain.notice.is_none() {
                self.error(
                    "config::drain_notice",
                    format!(
                        "pool '{pool}' sets `drain.lead_time` without a `notice`; users would wait without being told why"
                    ),
                    file,
                    &lead_time.at,
                    "lead time without a notice",
                )
                .help = Some("add `notice: {de: \"...\", en: \"...\"}`, or remove `lead_time`".to_owned());
            }
        }
        let Some(notice) = &drain.notice else {
            return;
        };
        let disconnects = drain
            .sessions
            .as_ref()
            .is_some_and(|s| s.value == DrainSessions::Disconnect);
        if !disconnects {
            self.error(
                "config::drain_notice",
                format!(
                    "pool '{pool}' sends a drain notice, which only applies with `drain.sessions: disconnect`"
                ),
                file,
                &notice.at,
                "notice without disconnect",
            )
            .help = Some("set `sessions: disconnect`, or remove `notice`".to_owned());
        }
        if drain.lead_time.is_none() {
            self.error(
                "config::drain_notice",
                format!(
                    "pool '{pool}' sends a drain notice without `lead_time`: users need time to log off"
                ),
                file,
                &notice.at,
                "notice without a lead time",
            )
            .help = Some("add `lead_time: 10m` (or how long users have)".to_owned());
        }
        self.notice_text(file, pool, "German", &notice.value.de);
        self.notice_text(file, pool, "English", &notice.value.en);
    }

    /// A notice is plain text a session can show: not blank, not longer
    /// than the broker takes, no control characters but line breaks.
    fn notice_text(&mut self, file: usize, pool: &str, language: &str, text: &Sp<String>) {
        let problem = if text.value.trim().is_empty() {
            "is empty"
        } else if text.value.chars().count() > MAX_MESSAGE_CHARS {
            "is longer than 1000 characters"
        } else if text.value.chars().any(|c| c.is_control() && c != '\n') {
            "holds a control character other than a line break"
        } else {
            self.plain_text(file, text);
            return;
        };
        self.error(
            "config::notice_text",
            format!("the {language} drain notice of pool '{pool}' {problem}"),
            file,
            &text.at,
            "not a notice users can read",
        )
        .help = Some(format!(
            "write plain text of 1-{MAX_MESSAGE_CHARS} characters"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{POOL, check, valid};

    fn drain(body: &str) -> String {
        format!("{POOL}    drain: {body}\n")
    }

    #[test]
    fn a_notice_needs_disconnect_and_a_lead_time_and_a_lead_time_a_notice() {
        let notice = "notice: {de: Wartung, en: Maintenance}";
        valid(&drain(&format!(
            "{{sessions: disconnect, {notice}, lead_time: 10m, timeout: 15m}}"
        )));
        check(
            &drain(&format!("{{sessions: wait, {notice}, lead_time: 10m}}")),
            "config::drain_notice",
            "{",
        );
        check(
            &drain(&format!("{{sessions: disconnect, {notice}}}")),
            "config::drain_notice",
            "{",
        );
        check(
            &drain("{sessions: disconnect, lead_time: 10m}"),
            "config::drain_notice",
            "10m",
        );
        check(
            &drain(&format!(
                "{{sessions: disconnect, {notice}, lead_time: 10x}}"
            )),
            "config::duration",
            "10x",
        );
    }

    #[test]
    fn notice_texts_are_plain_text_of_bounded_length() {
        let with = |de: &str| {
            drain(&format!(
                "{{sessions: disconnect, notice: {{de: {de}, en: Maintenance}}, lead_time: 5m}}"
            ))
        };
        check(&with("''"), "config::notice_text", "''");
        check(&with("\"bell\\a\""), "config::notice_text", "\"bell\\a\"");
        let long = "x".repeat(1001);
        check(&with(&long), "config::notice_text", &long);
        check(&with("no"), "config::ambiguous_scalar", "no");
        valid(&with("\"Zeile 1\\nZeile 2\""));
    }
}
