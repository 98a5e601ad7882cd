//! Password policy and hashing.
//!
//! Hashes are argon2id with the OWASP parameters (19 MiB, 2 passes, 1 lane).
//! Every hash and verification, the dummy one for unknown accounts included,
//! runs in the bounded [`HashPool`]: never on the async runtime, never more
//! at once than the pool allows, and in memory each worker keeps. Passwords
//! are NFKC-normalised first (NIST SP 800-63B), so the same password typed on
//! another keyboard or OS still matches; nothing is ever truncated, and
//! over-long input is refused before any hashing.

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, Version,
    password_hash::{Output, ParamsString, SaltString, rand_core::OsRng},
};
use secrecy::{ExposeSecret, SecretString};
use std::{fmt, time::Duration};
use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;

use super::{
    config::{HashingSettings, PasswordPolicy},
    hashing::{HashPool, Memory, PoolError, StatsSnapshot},
};

/// OWASP Password Storage Cheat Sheet, argon2id option 2.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// A password as typed, normalised. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    pub fn new(raw: &str) -> Self {
        Self(raw.nfkc().collect::<String>().into())
    }

    /// A form's optional password field (re-authentication where a recent
    /// sign-in would do): left empty, it is no password at all.
    pub fn from_form(field: Option<String>) -> Option<Self> {
        field.filter(|p| !p.is_empty()).map(|p| Self::new(&p))
    }

    fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    fn char_count(&self) -> usize {
        self.expose().chars().count()
    }

    pub fn same_as(&self, other: &Password) -> bool {
        self.expose() == other.expose()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

/// Why a new password was refused; each says so in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("Enter a password.")]
    Missing,
    #[error("Use at least {0} characters.")]
    TooShort(usize),
    #[error("Use at most {0} characters.")]
    TooLong(usize),
    #[error("Passwords cannot contain control characters.")]
    ControlCharacter,
    #[error("The passwords do not match.")]
    Mismatch,
    #[error("{0}")]
    Weak(String),
}

pub struct Verification {
    pub matches: bool,
    /// The stored hash was made with other parameters and should be upgraded.
    pub needs_rehash: bool,
}

/// Why a hash or verification did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum HashFailure {
    /// Shed under load: nothing was computed, and nothing should be counted.
    #[error("password hashing is saturated")]
    Busy { retry_after: Duration },
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<PoolError> for HashFailure {
    fn from(error: PoolError) -> Self {
        match error {
            PoolError::Busy { retry_after } => HashFailure::Busy { retry_after },
            PoolError::Crashed => HashFailure::Failed(anyhow::anyhow!(error)),
        }
    }
}

pub struct Passwords {
    policy: PasswordPolicy,
    params: Params,
    pool: HashPool,
    /// Verified against when the account does not exist, so an unknown email
    /// costs exactly as much as a wrong password, and waits in the same queue.
    dummy_hash: String,
}

impl Passwords {
    pub async fn new(policy: PasswordPolicy, hashing: HashingSettings) -> anyhow::Result<Self> {
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
            .map_err(|e| anyhow::anyhow!("Invalid argon2 parameters: {e}"))?;
        let pool =
            HashPool::new(hashing).context("Failed to start the password hashing threads")?;
        let mut passwords = Self {
            policy,
            params,
            pool,
            dummy_hash: String::new(),
        };
        // Also measures a first run time for the pool's wait estimate.
        let throwaway = Password::new(&uuid::Uuid::new_v4().to_string());
        passwords.dummy_hash = passwords
            .hash(&throwaway)
            .await
            .map_err(|e| anyhow::anyhow!("Failed to make the dummy password hash: {e}"))?;
        Ok(passwords)
    }

    pub fn policy(&self) -> PasswordPolicy {
        self.policy
    }

    pub fn pool_stats(&self) -> StatsSnapshot {
        self.pool.stats()
    }

    /// Length only: for passwords being checked rather than chosen (login,
    /// current password). Refuses over-long input before it is hashed.
    pub fn check_length(&self, password: &Password) -> Result<(), PasswordProblem> {
        match password.char_count() {
            0 => Err(PasswordProblem::Missing),
            n if n > self.policy.max_chars => Err(PasswordProblem::TooLong(self.policy.max_chars)),
            _ => Ok(()),
        }
    }

    /// The full policy for a newly chosen password: length, printable
    /// characters, confirmation, and strength against common and breached
    /// passwords (zxcvbn's dictionaries, with the user's own email as a hint).
    pub async fn check_new(
        &self,
        password: &Password,
        confirmation: &Password,
        user_inputs: Vec<String>,
    ) -> Result<(), PasswordProblem> {
        self.check_length(password)?;
        if password.char_count() < self.policy.min_chars {
            return Err(PasswordProblem::TooShort(self.policy.min_chars));
        }
        if password.expose().chars().any(char::is_control) {
            return Err(PasswordProblem::ControlCharacter);
        }
        if !password.same_as(confirmation) {
            return Err(PasswordProblem::Mismatch);
        }
        let password = password.clone();
        let verdict =
            tokio::task::spawn_blocking(move || strength_verdict(password.expose(), &user_inputs))
                .await
                .unwrap_or(None);
        match verdict {
            Some(reason) => Err(PasswordProblem::Weak(reason)),
            None => Ok(()),
        }
    }

    pub async fn hash(&self, password: &Password) -> Result<String, HashFailure> {
        let (password, params) = (password.clone(), self.params.clone());
        Ok(self
            .pool
            .run(move |memory| hash_with(memory, &params, &password))
            .await??)
    }

    /// Verifies `password` against `stored`, or against the dummy hash when
    /// there is no account, at the same cost either way.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<Verification, HashFailure> {
        let is_real = stored.is_some();
        let stored = stored.unwrap_or(&self.dummy_hash).to_string();
        let (password, params) = (password.clone(), self.params.clone());
        Ok(self
            .pool
            .run(move |memory| {
                let (matches, current) = verify_with(memory, &stored, &password, &params)?;
                anyhow::Ok(Verification {
                    matches: matches && is_real,
                    needs_rehash: matches && is_real && !current,
                })
            })
            .await??)
    }
}

fn argon2(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A new PHC-format argon2id hash of `password`, computed in `memory`.
fn hash_with(memory: &mut Memory, params: &Params, password: &Password) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("Failed to decode a fresh salt: {e}"))?;
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2(params.clone())
        .hash_password_into_with_memory(
            password.expose().as_bytes(),
            salt_bytes,
            &mut output,
            memory.blocks(params.block_count()),
        )
        .map_err(|e| anyhow::anyhow!("Failed to hash a password: {e}"))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)
            .map_err(|e| anyhow::anyhow!("Failed to encode argon2 parameters: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output).map_err(|e| anyhow::anyhow!("Bad argon2 output: {e}"))?),
    };
    Ok(hash.to_string())
}

/// Recomputes `stored`'s hash of `password` in `memory` with the parameters
/// the hash names, and compares in constant time. Returns whether it matches
/// and whether `stored` uses `current` parameters.
fn verify_with(
    memory: &mut Memory,
    stored: &str,
    password: &Password,
    current: &Params,
) -> anyhow::Result<(bool, bool)> {
    let unreadable = |e: argon2::password_hash::Error| {
        anyhow::anyhow!("A stored password hash is unreadable: {e}")
    };
    let parsed = PasswordHash::new(stored).map_err(unreadable)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(unreadable)?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|e| anyhow::anyhow!("Bad argon2 version: {e}"))?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(unreadable)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        anyhow::bail!("A stored password hash has no salt or no output");
    };
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(unreadable)?;
    let mut output = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(
            password.expose().as_bytes(),
            salt_bytes,
            &mut output,
            memory.blocks(params.block_count()),
        )
        .map_err(|e| anyhow::anyhow!("Failed to verify a password: {e}"))?;
    let matches: bool = output.as_slice().ct_eq(expected.as_bytes()).into();
    Ok((matches, uses_current_parameters(&parsed, current)))
}

fn uses_current_parameters(hash: &PasswordHash<'_>, current: &Params) -> bool {
    hash.algorithm == Algorithm::Argon2id.ident()
        && hash.version == Some(Version::V0x13.into())
        && Params::try_from(hash).is_ok_and(|p| {
            p.m_cost() == current.m_cost()
                && p.t_cost() == current.t_cost()
                && p.p_cost() == current.p_cost()
        })
}

/// `Some(reason)` when zxcvbn scores the password below 3 of 4, that is,
/// guessable in fewer than 10^10 attempts.
fn strength_verdict(password: &str, user_inputs: &[String]) -> Option<String> {
    let inputs: Vec<&str> = user_inputs.iter().map(String::as_str).collect();
    let entropy = zxcvbn::zxcvbn(password, &inputs);
    if (entropy.score() as u8) >= 3 {
        return None;
    }
    let mut reason = String::from("This password is too easy to guess");
    match entropy.feedback().and_then(|f| f.warning()) {
        Some(warning) => {
            reason.push_str(": ");
            reason.push_str(warning.to_string().trim_end_matches('.'));
            reason.push('.');
        }
        None => reason.push('.'),
    }
    if let Some(suggestion) = entropy.feedback().and_then(|f| f.suggestions().first()) {
        reason.push(' ');
        reason.push_str(&suggestion.to_string());
    } else {
        reason.push_str(" Try a longer phrase of unrelated words.");
    }
    Some(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    use argon2::{PasswordHasher, PasswordVerifier};

    fn policy() -> PasswordPolicy {
        PasswordPolicy {
            min_chars: 12,
            max_chars: 128,
        }
    }

    fn hashing() -> HashingSettings {
        HashingSettings {
            concurrency: 2,
            queue_capacity: 16,
            queue_timeout: Duration::from_secs(30),
            idle_release: crate::server::config::IDLE_RELEASE,
        }
    }

    #[test]
    fn an_empty_form_field_is_no_password() {
        assert!(Password::from_form(None).is_none());
        assert!(Password::from_form(Some(String::new())).is_none());
        let typed = Password::from_form(Some("  spaced out  ".into())).unwrap();
        assert!(typed.same_as(&Password::new("  spaced out  ")));
    }

    #[tokio::test]
    async fn hashes_in_reused_memory_are_standard_phc_strings_both_ways() {
        let passwords = Passwords::new(policy(), hashing()).await.unwrap();
        let pw = Password::new("correct horse battery staple");
        // Ours verifies with the crate's own allocating verifier...
        let ours = passwords.hash(&pw).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(pw.expose().as_bytes(), &parsed)
                .is_ok()
        );
        // ...and the crate's hash (as stored by earlier versions) with ours.
        let theirs = argon2(passwords.params.clone())
            .hash_password(pw.expose().as_bytes(), &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        let v = passwords.verify(&pw, Some(&theirs)).await.unwrap();
        assert!(v.matches && !v.needs_rehash);
        let garbage = passwords.verify(&pw, Some("$argon2id$nonsense")).await;
        assert!(matches!(garbage, Err(HashFailure::Failed(_))));
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let passwords = Passwords::new(policy(), hashing()).await.unwrap();
        let pw = Password::new("correct horse battery staple");
        let hash = passwords.hash(&pw).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let ok = passwords.verify(&pw, Some(&hash)).await.unwrap();
        assert!(ok.matches && !ok.needs_rehash);
        let wrong = passwords
            .verify(&Password::new("incorrect horse"), Some(&hash))
            .await
            .unwrap();
        assert!(!wrong.matches);
    }

    #[tokio::test]
    async fn an_unknown_account_never_matches_even_the_dummy_password() {
        let passwords = Passwords::new(policy(), hashing()).await.unwrap();
        let v = passwords
            .verify(&Password::new("anything at all"), None)
            .await
            .unwrap();
        assert!(!v.matches && !v.needs_rehash);
    }

    #[tokio::test]
    async fn hashes_with_older_parameters_ask_to_be_rehashed() {
        let passwords = Passwords::new(policy(), hashing()).await.unwrap();
        let pw = Password::new("correct horse battery staple");
        let weak = argon2(Params::new(8 * 1024, 1, 1, None).unwrap())
            .hash_password(pw.expose().as_bytes(), &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        let v = passwords.verify(&pw, Some(&weak)).await.unwrap();
        assert!(v.matches && v.needs_rehash);
    }

    #[tokio::test]
    async fn the_policy_says_why_a_password_is_refused() {
        let passwords = Passwords::new(policy(), hashing()).await.unwrap();
        let check = |pw: &str, confirm: &str| {
            let (pw, confirm) = (Password::new(pw), Password::new(confirm));
            let passwords = &passwords;
            async move {
                passwords
                    .check_new(&pw, &confirm, vec!["ada@example.com".into()])
                    .await
            }
        };
        assert_eq!(check("", "").await, Err(PasswordProblem::Missing));
        assert_eq!(
            check("short", "short").await,
            Err(PasswordProblem::TooShort(12))
        );
        let long = "x".repeat(129);
        assert_eq!(
            check(&long, &long).await,
            Err(PasswordProblem::TooLong(128))
        );
        assert_eq!(
            check("tab\there is long enough", "tab\there is long enough").await,
            Err(PasswordProblem::ControlCharacter)
        );
        assert_eq!(
            check("violet kettle anthem 42", "violet kettle anthem 43").await,
            Err(PasswordProblem::Mismatch)
        );
        let Err(PasswordProblem::Weak(reason)) = check("password1234", "password1234").await else {
            panic!("a top-100 password must be refused");
        };
        assert!(
            reason.starts_with("This password is too easy to guess"),
            "{reason}"
        );
        // The person's own email is a guessable password too.
        assert!(matches!(
            check("ada@example.com", "ada@example.com").await,
            Err(PasswordProblem::Weak(_))
        ));
        assert_eq!(
            check("violet kettle anthem 42", "violet kettle anthem 42").await,
            Ok(())
        );
        // Any Unicode is welcome, and length counts characters, not bytes.
        assert_eq!(
            check("🦀🦀 ferris grüßt café ☕", "🦀🦀 ferris grüßt café ☕").await,
            Ok(())
        );
    }

    #[test]
    fn normalisation_makes_equivalent_input_equal_and_hides_itself() {
        // "é" precomposed and decomposed, fullwidth and ASCII letters.
        assert!(Password::new("caf\u{e9}").same_as(&Password::new("cafe\u{301}")));
        assert!(Password::new("ＡＢＣ").same_as(&Password::new("ABC")));
        assert_eq!(
            format!("{:?}", Password::new("hunter2")),
            "Password([REDACTED])"
        );
    }
}
