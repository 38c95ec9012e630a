//! Rules for pools: names and labels, members (listed once, load-balanced in
//! one pool at most), `min_members`, durations, credentials and the drain
//! policy.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::config::spec::At;

use super::Checker;
use crate::address::Kind;
use crate::config::spec::{DurationValue, PoolSpec, SecretValue, Sp};
use crate::desired::DrainSessions;
use crate::diagnostic::{Label, Severity};

/// Destination → the first load-balanced pool that lists it: the claims,
/// written in the order they are made, and a table of 4-byte places in
/// them. A map holding (name, pool, file, place) was 100 MB at 1M members
/// (2M buckets of 48 bytes), each insert a cache miss in it; the table is
/// 10 MB, the claims 32 MB written in order, and a claim is read back only
/// when its name may be the one asked (validation at 1M: about 0.35 s to
/// 0.28 s). Names written in a config are hashed with foldhash:
/// fast on short names, and seeded at random, so that no config can be
/// written to make them collide.
struct Balanced<'a> {
    claims: Vec<Claim<'a>>,
    table: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

/// A member of a load-balanced pool, the first to claim its destination.
struct Claim<'a> {
    member: &'a Sp<String>,
    pool: &'a str,
    file: usize,
}

impl<'a> Balanced<'a> {
    fn with_capacity(members: usize) -> Self {
        Balanced {
            claims: Vec::with_capacity(members),
            table: HashTable::with_capacity(members),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The claim on `claim.member`'s destination made first, or `None`
    /// when this is the first, which is kept.
    fn claim(&mut self, claim: Claim<'a>) -> Option<&Claim<'a>> {
        let name = claim.member.value.as_str();
        let hash = self.hasher.hash_one(name);
        let claims = &self.claims;
        let same = |&at: &u32| claims[at as usize].member.value == name;
        if let Some(&at) = self.table.find(hash, same) {
            return Some(&self.claims[at as usize]);
        }
        let at = u32::try_from(self.claims.len()).expect("fewer than 4G members");
        let (claims, hasher) = (&self.claims, &self.hasher);
        self.table.insert_unique(hash, at, |&other| {
            hasher.hash_one(claims[other as usize].member.value.as_str())
        });
        self.claims.push(claim);
        None
    }
}

impl<'a> Checker<'a> {
    pub(super) fn pools(&mut self) {
        let config = self.config;
        // Sized up front: grown one rehash at a time, this map of a
        // million members was a quarter of validation.
        let load_balanced_members = config
            .pools
            .values()
            .filter(|declared| {
                (declared.spec.load_balancing.as_ref()).is_some_and(|lb| lb.enabled.value)
            })
            .map(|declared| declared.spec.members.len())
            .sum();
        let mut balanced = Balanced::with_capacity(load_balanced_members);
        for (name, declared) in &config.pools {
            let file = declared.file;
            let spec = &declared.spec;
            self.name(file, &declared.name, "pool");
            self.labels(file, &spec.labels, Kind::Pool, name);
            let listed = self.members(file, name, spec, &mut balanced);
            self.min_members(file, name, spec, listed);
            self.load_balancing_periods(file, name, spec);
            self.credentials(file, name, spec);
            self.drain_timeout(file, name, spec);
            self.drain_notice(file, name, spec);
        }
    }

    /// Checks each member and returns how many different ones the pool lists.
    fn members(
        &mut self,
        file: usize,
        pool: &'a str,
        spec: &'a PoolSpec,
        balanced: &mut Balanced<'a>,
    ) -> usize {
        let load_balanced = spec
            .load_balancing
            .as_ref()
            .is_some_and(|lb| lb.enabled.value);
        let mut seen: foldhash::HashMap<&str, &At> =
            foldhash::HashMap::with_capacity_and_hasher(spec.members.len(), Default::default());
        for member in &spec.members {
            self.name(file, member, "member");
            self.plain_text(file, member);
            if let Some(first) = seen.insert(&member.value, &member.at) {
                self.duplicate_member(file, pool, member, first);
            } else if load_balanced {
                self.load_balanced_once(file, pool, member, balanced);
            }
        }
        seen.len()
    }

    fn duplicate_member(&mut self, file: usize, pool: &str, member: &Sp<String>, first: &At) {
        let first = self.config.at(file, first);
        self.error(
            "config::duplicate_member",
            format!("pool '{pool}' lists '{}' twice", member.value),
            file,
            &member.at,
            "listed again here",
        )
        .secondary
        .push(Label::new(first, "first listed here"));
    }

    /// A destination may be load-balanced in one pool only; the first pool
    /// that lists it claims it.
    fn load_balanced_once(
        &mut self,
        file: usize,
        pool: &'a str,
        member: &'a Sp<String>,
        balanced: &mut Balanced<'a>,
    ) {
        let claim = Claim { member, pool, file };
        let Some(&Claim {
            member: first,
            pool: other,
            file: other_file,
        }) = balanced.claim(claim)
        else {
            return;
        };
        let first = self.config.at(other_file, &first.at);
        let diagnostic = self.error(
            "config::load_balanced_twice",
            format!(
                "destination '{}' is a member of two load-balanced pools, '{other}' and '{pool}'",
                member.value
            ),
            file,
            &member.at,
            "second load-balanced pool",
        );
        diagnostic.secondary.push(Label::new(
            first,
            format!("already a member of '{other}' here"),
        ));
        diagnostic.help = Some(
            "a destination can be load-balanced in only one pool; remove it from one of them or switch load balancing off there"
                .to_owned(),
        );
    }

    fn min_members(&mut self, file: usize, pool: &str, spec: &PoolSpec, listed: usize) {
        let Some(min) = &spec.min_members else {
            return;
        };
        if usize::try_from(min.value).unwrap_or(usize::MAX) > listed {
            self.error(
                "config::min_members",
                format!(
                    "pool '{pool}' requires at least {} members but lists {listed}",
                    min.value
                ),
                file,
                &min.at,
                "more than the member list",
            )
            .help = Some("lower `min_members` or add members".to_owned());
        }
    }

    fn load_balancing_periods(&mut self, file: usize, pool: &str, spec: &PoolSpec) {
        let Some(lb) = &spec.load_balancing else {
            return;
        };
        let sticky = lb
            .sticky_sessions
            .as_ref()
            .and_then(|sticky| self.sticky_period(file, pool, sticky));
        let Some(grace) = &lb.grace_period else {
            return;
        };
        let grace_seconds = self.duration(file, grace, 1, "grace_period", "seconds");
        // The grace period extends a sticky binding; without sticky
        // sessions there is none to extend.
        if sticky.unwrap_or(0) == 0 && grace_seconds.is_some_and(|g| g > 0) {
            let warning = self.error(
                "config::grace_without_sticky",
                format!(
                    "pool '{pool}' sets a grace period, but its sticky-session period is 0; the grace period has no effect"
                ),
                file,
                &grace.at,
                "no effect without sticky sessions",
            );
            warning.severity = Severity::Warning;
            warning.help = Some(
                "set `sticky_sessions` to at least 1 minute, or remove `grace_period`".to_owned(),
            );
        }
    }

    /// The username is plain text; the password must be a reference, never
    /// the secret itself.
    fn credentials(&mut self, file: usize, pool: &str, spec: &PoolSpec) {
        let Some(credentials) = &spec.default_credentials else {
            return;
        };
        if let Some(username) = &credentials.username {
            self.plain_text(file, username);
        }
        if let Some(password) = &credentials.password
            && password.value == SecretValue::Inline
        {
            self.error(
                "config::inline_secret",
                format!("the password of pool '{pool}' is written in the config"),
                file,
                &password.at,
                "secret value in plain text",
            )
            .help = Some(
                "reference it instead: `password: {env: VAR}` or `password: {file: PATH}`, and rotate the exposed password"
                    .to_owned(),
            );
        }
        if let Some(password) = &credentials.password
            && let SecretValue::File(path) = &password.value
            && let Some(why) = self.config.unusable_secret_files.get(path)
        {
            self.error(
                "config::secret_file",
                format!("the password file of pool '{pool}' cannot hold a secret: {why}"),
                file,
                &password.at,
                "not a usable secret file",
            )
            .help = Some(format!(
                "a secret file is a regular file of at most {} bytes",
                crate::secret::MAX_FILE_BYTES
            ));
        }
    }

    /// `drain.timeout` is a duration and only means something when sessions
    /// are waited for or disconnected.
    fn drain_timeout(&mut self, file: usize, pool: &str, spec: &PoolSpec) {
        let Some(timeout) = spec.drain.as_ref().and_then(|d| d.timeout.as_ref()) else {
            return;
        };
        self.duration(file, timeout, 1, "drain.timeout", "seconds");
        let sessions = spec
            .drain
            .as_ref()
            .and_then(|d| d.sessions.as_ref())
            .map(|s| s.value);
        if !matches!(
            sessions,
            Some(DrainSessions::Wait | DrainSessions::Disconnect)
        ) {
            self.error(
                "config::drain_timeout",
                format!(
                    "pool '{pool}' sets `drain.timeout`, which only applies with `drain.sessions: wait` or `disconnect`"
                ),
                file,
                &timeout.at,
                "timeout without wait or disconnect",
            )
            .help = Some(
                "set `sessions: wait` or `sessions: disconnect`, or remove `timeout`".to_owned(),
            );
        }
    }

    /// Checks the sticky period and returns it in seconds when it is one.
    fn sticky_period(
        &mut self,
        file: usize,
        pool: &str,
        sticky: &Sp<DurationValue>,
    ) -> Option<u64> {
        let seconds = self.duration(file, sticky, 60, "sticky_sessions", "minutes")?;
        if seconds == 0 {
            return Some(0);
        }
        if seconds < 60 {
            self.error(
                "config::sticky_period",
                format!(
                    "the sticky-session period of pool '{pool}' is {seconds}s; it must be 0 (off) or at least 1 minute"
                ),
                file,
                &sticky.at,
                "below 1 minute",
            )
            .help = Some("oneclick counts the sticky period in whole minutes".to_owned());
        } else if seconds % 60 != 0 {
            self.error(
                "config::sticky_period",
                format!(
                    "the sticky-session period of pool '{pool}' is {seconds}s, which is not a whole number of minutes"
                ),
                file,
                &sticky.at,
                "not whole minutes",
            )
            .help = Some("oneclick counts the sticky period in whole minutes".to_owned());
        }
        Some(seconds)
    }

    /// Checks a duration and returns it in seconds when it is one.
    pub(super) fn duration(
        &mut self,
        file: usize,
        value: &Sp<DurationValue>,
        unit_seconds: u64,
        field: &str,
        unit: &str,
    ) -> Option<u64> {
        let seconds = value.value.seconds(unit_seconds);
        if seconds.is_none() {
            let written = match &value.value {
                DurationValue::Number(n) => n.to_string(),
                DurationValue::Text(text) => text.clone(),
            };
            self.error(
                "config::duration",
                format!("`{field}` is '{written}', which is not a duration"),
                file,
                &value.at,
                "not a duration",
            )
            .help = Some(format!(
                "write a plain number of {unit}, or a value like 90s, 10m or 1h30m"
            ));
        }
        seconds
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{HEADER, POOL, check, valid};
    use crate::diagnostic::Severity;

    #[test]
    fn sticky_period_below_one_minute() {
        let lb = "    load_balancing: {enabled: true, sticky_sessions: 30s}\n";
        check(&format!("{POOL}{lb}"), "config::sticky_period", "30s");
        let lb = "    load_balancing: {enabled: true, sticky_sessions: 90s}\n";
        check(&format!("{POOL}{lb}"), "config::sticky_period", "90s");
        valid(&format!(
            "{POOL}    load_balancing: {{enabled: true, sticky_sessions: 0}}\n"
        ));
        valid(&format!(
            "{POOL}    load_balancing: {{enabled: true, sticky_sessions: 1}}\n"
        ));
    }

    #[test]
    fn a_grace_period_without_sticky_sessions_is_a_warning() {
        let files = |lb: &str| vec![("p.yaml".to_owned(), format!("{HEADER}{POOL}{lb}"))];
        let warned = |lb: &str| {
            crate::config::load_text(files(lb))
                .expect("a warning leaves the config valid")
                .warnings
                .iter()
                .map(|w| {
                    (
                        w.code,
                        w.severity,
                        w.primary.as_ref().unwrap().location.line,
                    )
                })
                .collect::<Vec<_>>()
        };
        let lb = "    load_balancing: {enabled: true, sticky_sessions: 0, grace_period: 30s}\n";
        assert_eq!(
            warned(lb),
            [("config::grace_without_sticky", Severity::Warning, 5)]
        );
        let lb = "    load_balancing: {enabled: true, grace_period: 30s}\n";
        assert_eq!(warned(lb).len(), 1, "no sticky period is a period of 0");
        let lb = "    load_balancing: {enabled: true, sticky_sessions: 10m, grace_period: 30s}\n";
        assert!(warned(lb).is_empty());
        let lb = "    load_balancing: {enabled: true, sticky_sessions: 0, grace_period: 0}\n";
        assert!(warned(lb).is_empty());
    }

    #[test]
    fn invalid_durations() {
        let lb = "    load_balancing: {enabled: true, grace_period: 10x}\n";
        check(&format!("{POOL}{lb}"), "config::duration", "10x");
        let lb = "    load_balancing: {enabled: true, sticky_sessions: -5}\n";
        check(&format!("{POOL}{lb}"), "config::duration", "-5");
        let drain = "    drain: {sessions: wait, timeout: 1.5}\n";
        check(&format!("{POOL}{drain}"), "config::duration", "1.5");
    }

    #[test]
    fn destination_in_two_load_balanced_pools() {
        let lb = "load_balancing: {enabled: true}";
        check(
            &format!("pools:\n  a: {{{lb}, members: [d1]}}\n  b: {{{lb}, members: [d2, d1]}}\n"),
            "config::load_balanced_twice",
            "d1",
        );
        valid(&format!(
            "pools:\n  a: {{{lb}, members: [d1]}}\n  b: {{members: [d1]}}\n"
        ));
    }

    #[test]
    fn min_members_above_member_count() {
        check(
            &format!("{POOL}    min_members: 3\n"),
            "config::min_members",
            "3",
        );
        valid(&format!("{POOL}    min_members: 2\n"));
    }

    #[test]
    fn drain_timeout_needs_wait_or_disconnect() {
        check(
            &format!("{POOL}    drain: {{timeout: 15m}}\n"),
            "config::drain_timeout",
            "15m",
        );
        check(
            &format!("{POOL}    drain: {{sessions: refuse, timeout: 60}}\n"),
            "config::drain_timeout",
            "60",
        );
        valid(&format!(
            "{POOL}    drain: {{sessions: wait, timeout: 60}}\n"
        ));
    }

    #[test]
    fn inline_secret() {
        check(
            &format!("{POOL}    default_credentials: {{password: hunter2}}\n"),
            "config::inline_secret",
            // Masked at load time, so the snippet does not repeat the secret.
            "*******",
        );
        valid(&format!(
            "{POOL}    default_credentials: {{password: {{file: /run/secret}}}}\n"
        ));
    }

    #[test]
    fn duplicate_member() {
        check(
            "pools:\n  p: {members: [d1, d2, d1]}\n",
            "config::duplicate_member",
            "d1",
        );
    }
}
