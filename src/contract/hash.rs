//! The one password hash of both sides of the contract: Argon2id with one
//! parameter set, written as a PHC string (`$argon2id$v=19$m=…,t=…,p=…$SALT$HASH`).
//! poolform labels a pool with it to notice a changed password without the
//! broker returning one; the reference broker keeps it instead of the
//! password. Both are readable by anyone who can read pools or the state
//! file, so the hash must make offline guessing slow, not merely one-way.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Memory per guess, in KiB (32 MiB): what makes a GPU or ASIC little
/// cheaper per guess than a CPU core. With [`ITERATIONS`] this is above
/// OWASP's minimum (19 MiB, 2 passes) and costs about 0.1 s per guess on
/// one core of the development machine (the README has the measurement);
/// every plan pays it once per pool password it checks.
pub const MEMORY_KIB: u32 = 32 * 1024;
/// Passes over that memory.
pub const ITERATIONS: u32 = 2;
/// Lanes: one, so one guess occupies one core.
pub const LANES: u32 = 1;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None)
        .unwrap_or_else(|e| unreachable!("constant Argon2 parameters are valid: {e}"));
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `secret` with a fresh random 16-byte salt.
pub fn hash(secret: &str) -> String {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .unwrap_or_else(|e| unreachable!("16 bytes are a valid salt: {e}"));
    hasher()
        .hash_password(secret.as_bytes(), &salt)
        .unwrap_or_else(|e| unreachable!("hashing with valid parameters succeeds: {e}"))
        .to_string()
}

/// Whether `phc` was made by [`hash`] from `secret`. A hash in another
/// format, or made with other parameters, never matches: whoever holds it
/// writes it again with today's cost instead of trusting a cheaper one.
pub fn verify(phc: &str, secret: &str) -> bool {
    current(phc).is_some_and(|parsed| hasher().verify_password(secret.as_bytes(), &parsed).is_ok())
}

/// Whether `phc` is a hash as [`hash`] makes them today (format and cost).
pub fn is_current(phc: &str) -> bool {
    current(phc).is_some()
}

fn current(phc: &str) -> Option<PasswordHash<'_>> {
    let parsed = PasswordHash::new(phc).ok()?;
    let same_cost = parsed.algorithm == Algorithm::Argon2id.ident()
        && parsed.version == Some(Version::V0x13.into())
        && Params::try_from(&parsed)
            .is_ok_and(|p| (p.m_cost(), p.t_cost(), p.p_cost()) == (MEMORY_KIB, ITERATIONS, LANES));
    same_cost.then_some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_matches_its_secret_only() {
        let made = hash("hunter2");
        assert!(
            made.starts_with("$argon2id$v=19$m=32768,t=2,p=1$"),
            "{made}"
        );
        assert!(verify(&made, "hunter2"));
        assert!(!verify(&made, "hunter3"));
    }

    #[test]
    fn every_hash_has_its_own_salt() {
        assert_ne!(hash("same"), hash("same"));
    }

    #[test]
    fn cheaper_parameters_and_other_formats_never_match() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let cheap = weak.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(!verify(&cheap, "pw"));
        let sha_label =
            "example-seed:57fb1ff44fde50db13fe171b85d363a0027f2dc7b29ff7ebcc1792379be4507e";
        assert!(!verify(sha_label, "maintenance-demo"));
        assert!(!verify("", ""));
    }
}
