//! Time-based one-time passwords (RFC 6238) as authenticator apps make
//! them: HMAC-SHA-1, 6 digits, 30-second steps, one step of clock skew
//! either way. [`matching_step`] says *which* step a code belongs to, so
//! that the caller can refuse a code whose step was already used (ASVS
//! 2.8.4) with one conditional write.

use secrecy::{ExposeSecret, SecretSlice};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

pub const DIGITS: usize = 6;
pub const STEP_SECONDS: u64 = 30;
/// Steps accepted before and after the current one.
pub const SKEW_STEPS: u64 = 1;
/// The issuer authenticator apps show next to the account.
pub const ISSUER: &str = "Portcullis";
/// 160 bits, the HMAC-SHA-1 key length RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

/// A shared TOTP secret. Never logged: `Debug` shows nothing of it.
pub struct TotpSecret(SecretSlice<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

/// Why a typed code is not even a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodeProblem {
    #[error("The code is the 6 digits your authenticator app shows.")]
    Malformed,
}

impl TotpSecret {
    /// A new random secret (the operating system's CSPRNG).
    pub fn generate() -> TotpSecret {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        TotpSecret(SecretSlice::from(bytes))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> TotpSecret {
        TotpSecret(SecretSlice::from(bytes))
    }

    /// A secret as an app takes it typed in: base32, spaces and case
    /// forgiven. `None` for anything else.
    pub fn from_base32(text: &str) -> Option<TotpSecret> {
        let compact: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        totp_rs::Secret::Encoded(compact)
            .to_bytes()
            .ok()
            .filter(|bytes| !bytes.is_empty())
            .map(TotpSecret::from_bytes)
    }

    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    fn totp(&self, account: String) -> TOTP {
        TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            SKEW_STEPS as u8,
            STEP_SECONDS,
            self.0.expose_secret().to_vec(),
            Some(ISSUER.to_string()),
            account,
        )
    }

    /// The secret as people type it into an app: unpadded base32.
    pub fn base32(&self) -> String {
        self.totp(String::new()).get_secret_base32()
    }

    /// `otpauth://totp/Portcullis:<account>?secret=…&issuer=Portcullis…`,
    /// what the QR code carries.
    pub fn otpauth_uri(&self, account: &str) -> String {
        // A ':' would split issuer and account in the label.
        self.totp(account.replace(':', "")).get_url()
    }

    /// The code for the step that contains `unix_seconds`.
    pub fn code_at(&self, unix_seconds: u64) -> String {
        self.totp(String::new()).generate(unix_seconds)
    }

    /// The step (`unix_seconds / 30`) whose code `code` is, among the
    /// current one and one on each side; `None` when it is none of them.
    /// Every candidate is compared in constant time.
    pub fn matching_step(&self, code: &str, unix_seconds: u64) -> Result<Option<u64>, CodeProblem> {
        let code = normalize(code)?;
        let current = unix_seconds / STEP_SECONDS;
        let totp = self.totp(String::new());
        let mut found = None;
        for step in current.saturating_sub(SKEW_STEPS)..=current + SKEW_STEPS {
            let expected = totp.generate(step * STEP_SECONDS);
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
                found = Some(step);
            }
        }
        Ok(found)
    }
}

/// Six ASCII digits, with the spaces some apps show in the middle removed.
fn normalize(code: &str) -> Result<String, CodeProblem> {
    let code: String = code.chars().filter(|c| *c != ' ').collect();
    if code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(code)
    } else {
        Err(CodeProblem::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 key.
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn codes_are_the_rfc_6238_test_vectors_cut_to_six_digits() {
        let secret = rfc_secret();
        for (time, eight_digits) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(secret.code_at(time), eight_digits[2..], "at {time}");
        }
    }

    #[test]
    fn one_step_of_skew_either_way_is_accepted_and_two_are_not() {
        let secret = TotpSecret::generate();
        let now = 1_800_000_015;
        let step = now / STEP_SECONDS;
        for (offset, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let then = (now as i64 + offset * STEP_SECONDS as i64) as u64;
            let code = secret.code_at(then);
            let expected = accepted.then_some((step as i64 + offset) as u64);
            // A code of an unaccepted step may collide with an accepted one
            // by chance (1 in a million per step): then its step is named.
            let found = secret.matching_step(&code, now).unwrap();
            if found != expected {
                assert!(!accepted, "offset {offset}: {found:?}");
                assert_eq!(
                    Some(code.as_str()),
                    found.map(|s| secret.code_at(s * STEP_SECONDS)).as_deref()
                );
            }
        }
    }

    #[test]
    fn anything_but_six_digits_is_refused_before_any_comparison() {
        let secret = rfc_secret();
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "１２３４５６",
            "12345\0",
            "123 45",
            &"1".repeat(10_000),
        ] {
            assert_eq!(
                secret.matching_step(bad, 59),
                Err(CodeProblem::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            secret.matching_step("287 082", 59),
            Ok(Some(1)),
            "spaces are dropped"
        );
    }

    #[test]
    fn the_uri_names_the_issuer_and_the_account_and_carries_the_secret() {
        let secret = rfc_secret();
        let uri = secret.otpauth_uri("ada@example.com");
        assert!(
            uri.starts_with("otpauth://totp/Portcullis:ada%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains(&format!("secret={}", secret.base32())),
            "{uri}"
        );
        assert!(uri.contains("issuer=Portcullis"), "{uri}");
        assert_eq!(secret.base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let typed = TotpSecret::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(typed.expose_bytes(), secret.expose_bytes());
        assert!(TotpSecret::from_base32("not base32!").is_none());
        assert_eq!(format!("{secret:?}"), "TotpSecret(..)");
    }
}
