//! Second factors: the building blocks, each tested on its own, and
//! [`SecondFactors`], which puts them together for the service: TOTP codes
//! (RFC 6238) with the step they match, the sealing of their secrets at
//! rest, one-time recovery codes, and the QR code a person scans.
//!
//! The flows (set up, confirm, the second sign-in step, turning it off) are
//! `service::second_factor`; what they store is `db::mfa`.

pub mod recovery_codes;
pub mod sealing;
pub mod totp;

use qrcode::{QrCode, render::svg};

use self::{
    sealing::{DataKey, OpenError, Sealer},
    totp::TotpSecret,
};
use super::{
    config::JwtKeySpec,
    db::{SessionId, UserId},
};

/// Longest code we look at: a recovery code typed with spaces fits easily.
pub const MAX_TYPED: usize = 64;

/// A second-factor code as a person typed it, recognised by its shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Code {
    /// Six digits from an authenticator app.
    Totp(String),
    /// A recovery code, normalised (lower case, no separators).
    Recovery(String),
}

impl Code {
    /// `None` when it is neither six digits nor a recovery code.
    pub fn parse(typed: &str) -> Option<Code> {
        if typed.len() > MAX_TYPED {
            return None;
        }
        let compact: String = typed.chars().filter(|c| *c != ' ').collect();
        if !compact.is_empty() && compact.bytes().all(|b| b.is_ascii_digit()) {
            return (compact.len() == totp::DIGITS).then_some(Code::Totp(compact));
        }
        recovery_codes::normalize(typed).map(Code::Recovery)
    }

    /// How the audit trail names the method.
    pub fn method(&self) -> &'static str {
        match self {
            Code::Totp(_) => "totp",
            Code::Recovery(_) => "recovery_code",
        }
    }
}

/// The data keys and what is done with them.
pub struct SecondFactors {
    sealer: Sealer,
}

impl SecondFactors {
    pub fn new(keys: &[JwtKeySpec]) -> anyhow::Result<SecondFactors> {
        use secrecy::ExposeSecret;
        let keys = keys
            .iter()
            .map(|key| {
                DataKey::new(key.kid.clone(), key.secret.expose_secret().to_vec())
                    .ok_or_else(|| anyhow::anyhow!("the data key {:?} is not 32 bytes", key.kid))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let sealer = Sealer::new(keys).ok_or_else(|| anyhow::anyhow!("no data key"))?;
        Ok(SecondFactors { sealer })
    }

    /// A secret sealed for `owner`: it opens for that account only.
    pub fn seal(&self, owner: UserId, secret: &TotpSecret) -> String {
        self.sealer.seal(secret.expose_bytes(), &context(owner))
    }

    pub fn open(&self, owner: UserId, sealed: &str) -> Result<TotpSecret, OpenError> {
        self.sealer
            .open(sealed, &context(owner))
            .map(TotpSecret::from_bytes)
    }

    /// Fresh recovery codes of `owner`: as shown once, and as stored.
    pub fn new_recovery_codes(owner: UserId) -> (Vec<String>, Vec<Vec<u8>>) {
        let codes = recovery_codes::generate();
        let hashes = codes
            .iter()
            .map(|code| {
                let normalized = recovery_codes::normalize(code).expect("generated codes parse");
                recovery_codes::hash(owner.0.as_bytes(), &normalized)
            })
            .collect();
        (codes, hashes)
    }

    pub fn recovery_code_hash(owner: UserId, normalized: &str) -> Vec<u8> {
        recovery_codes::hash(owner.0.as_bytes(), normalized)
    }

    /// Fresh recovery codes sealed for the page that shows them once, bound
    /// to the session they were made in: they travel in a short-lived
    /// HttpOnly cookie and are never stored readable on the server.
    pub fn seal_shown_codes(&self, session: SessionId, codes: &[String]) -> String {
        self.sealer
            .seal(codes.join(" ").as_bytes(), &shown_context(session))
    }

    pub fn open_shown_codes(&self, session: SessionId, sealed: &str) -> Option<Vec<String>> {
        let opened = self.sealer.open(sealed, &shown_context(session)).ok()?;
        let text = String::from_utf8(opened).ok()?;
        Some(text.split(' ').map(str::to_string).collect())
    }
}

fn shown_context(session: SessionId) -> Vec<u8> {
    let mut context = b"shown-recovery-codes/".to_vec();
    context.extend_from_slice(session.0.as_bytes());
    context
}

/// What a secret is bound to: its owner, and that it is a TOTP secret.
fn context(owner: UserId) -> Vec<u8> {
    let mut context = b"totp/".to_vec();
    context.extend_from_slice(owner.0.as_bytes());
    context
}

/// The `otpauth://` URI as a QR code, an SVG drawn on the server (no
/// script, no image request). `None` only for a URI too long for a QR code.
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = QrCode::new(uri.as_bytes()).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .dark_color(svg::Color("#111111"))
            .light_color(svg::Color("#ffffff"))
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{Engine as _, engine::general_purpose::STANDARD};

    fn keys(kid: &str, byte: u8) -> Vec<JwtKeySpec> {
        crate::server::config::parse_data_keys(&format!("{kid}:{}", STANDARD.encode([byte; 32])))
            .unwrap()
    }

    #[test]
    fn codes_are_told_apart_by_their_shape() {
        assert_eq!(Code::parse("123456"), Some(Code::Totp("123456".into())));
        assert_eq!(Code::parse("123 456"), Some(Code::Totp("123456".into())));
        assert_eq!(
            Code::parse("ABCDE-FGHJK"),
            Some(Code::Recovery("abcdefghjk".into()))
        );
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "123456\0",
            "abcde-fghj0",
            &"1".repeat(65),
            &"a".repeat(100_000),
        ] {
            assert_eq!(Code::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_sealed_secret_opens_for_its_owner_only() {
        let factors = SecondFactors::new(&keys("k1", 1)).unwrap();
        let ada = UserId::random();
        let secret = TotpSecret::generate();
        let sealed = factors.seal(ada, &secret);
        assert!(sealed.starts_with("v1.k1."));
        assert_eq!(
            factors.open(ada, &sealed).unwrap().expose_bytes(),
            secret.expose_bytes()
        );
        assert_eq!(
            factors.open(UserId::random(), &sealed).unwrap_err(),
            OpenError::Forged
        );
        let other = SecondFactors::new(&keys("k2", 2)).unwrap();
        assert_eq!(
            other.open(ada, &sealed).unwrap_err(),
            OpenError::UnknownKey("k1".into())
        );
    }

    #[test]
    fn recovery_codes_are_stored_salted_by_their_owner() {
        let ada = UserId::random();
        let (codes, hashes) = SecondFactors::new_recovery_codes(ada);
        assert_eq!(codes.len(), recovery_codes::COUNT);
        for (code, hash) in codes.iter().zip(&hashes) {
            let Some(Code::Recovery(normalized)) = Code::parse(code) else {
                panic!("{code} is not a recovery code");
            };
            assert_eq!(&SecondFactors::recovery_code_hash(ada, &normalized), hash);
            assert_ne!(
                &SecondFactors::recovery_code_hash(UserId::random(), &normalized),
                hash
            );
        }
    }

    #[test]
    fn shown_codes_open_in_their_session_only() {
        let factors = SecondFactors::new(&keys("k1", 1)).unwrap();
        let session = SessionId::random();
        let (codes, _) = SecondFactors::new_recovery_codes(UserId::random());
        let sealed = factors.seal_shown_codes(session, &codes);
        assert!(!sealed.contains(&codes[0]));
        assert_eq!(factors.open_shown_codes(session, &sealed), Some(codes));
        assert_eq!(factors.open_shown_codes(SessionId::random(), &sealed), None);
        assert_eq!(factors.open_shown_codes(session, "v1.k1.AAAA"), None);
    }

    #[test]
    fn the_qr_code_is_an_svg_without_script() {
        let uri = TotpSecret::generate().otpauth_uri("ada@example.com");
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
        assert!(!svg.contains("<script"));
    }
}
