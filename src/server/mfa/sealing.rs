//! Encryption at rest for second-factor secrets: XChaCha20-Poly1305 (the
//! `chacha20poly1305` crate; a random 192-bit nonce per message, so random
//! nonces never collide in practice) under an application data key.
//!
//! A sealed value is `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`.
//! The associated data binds it to its owner and purpose (say, the user id
//! and `totp`): a ciphertext copied to another row does not open there.
//! Several keys may be configured: the first seals, every one opens, so a
//! key is rotated by putting a new one first and dropping the old one once
//! every value has been sealed again.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit, Payload},
};
use secrecy::{ExposeSecret, SecretSlice};

/// Data keys are exactly this long.
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
const VERSION: &str = "v1";

/// One data key and its id.
pub struct DataKey {
    pub kid: String,
    secret: SecretSlice<u8>,
}

impl DataKey {
    /// `None` unless `secret` is [`KEY_BYTES`] long.
    pub fn new(kid: impl Into<String>, secret: Vec<u8>) -> Option<DataKey> {
        (secret.len() == KEY_BYTES).then(|| DataKey {
            kid: kid.into(),
            secret: SecretSlice::from(secret),
        })
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new_from_slice(self.secret.expose_secret())
            .expect("a data key is 32 bytes")
    }
}

impl std::fmt::Debug for DataKey {
    /// The id only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Why a sealed value did not open. Which of them is logged, never the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("not a sealed value of a known version")]
    Malformed,
    #[error("sealed with key {0:?}, which is not configured")]
    UnknownKey(String),
    #[error("the value does not authenticate (another owner or purpose, or altered)")]
    Forged,
}

/// The configured data keys: the first seals, all open.
#[derive(Debug)]
pub struct Sealer {
    keys: Vec<DataKey>,
}

impl Sealer {
    /// `None` without a key.
    pub fn new(keys: Vec<DataKey>) -> Option<Sealer> {
        (!keys.is_empty()).then_some(Sealer { keys })
    }

    /// Seals `plaintext` for `context` (its owner and purpose).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> String {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let sealed = key
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("XChaCha20-Poly1305 seals any message this small");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{VERSION}.{}.{}", key.kid, URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Opens a value sealed by any configured key for the same `context`.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, OpenError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(VERSION), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(OpenError::Malformed);
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() < NONCE_BYTES {
            return Err(OpenError::Malformed);
        }
        let key = self
            .keys
            .iter()
            .find(|key| key.kid == kid)
            .ok_or_else(|| OpenError::UnknownKey(kid.to_string()))?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| OpenError::Malformed)?;
        key.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| OpenError::Forged)
    }

    /// Whether `sealed` was sealed with the current key (else it is due to
    /// be sealed again after a rotation).
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed
            .strip_prefix(VERSION)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(kid, _)| kid == self.keys[0].kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, byte: u8) -> DataKey {
        DataKey::new(kid, vec![byte; KEY_BYTES]).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_for_its_context_only() {
        let sealer = Sealer::new(vec![key("k1", 7)]).unwrap();
        let sealed = sealer.seal(b"totp secret", b"user-1/totp");
        assert!(sealed.starts_with("v1.k1."), "{sealed}");
        assert!(!sealed.contains("totp secret"));
        assert_eq!(
            sealer.open(&sealed, b"user-1/totp").unwrap(),
            b"totp secret"
        );
        assert_eq!(sealer.open(&sealed, b"user-2/totp"), Err(OpenError::Forged));
        assert_ne!(
            sealer.seal(b"totp secret", b"user-1/totp"),
            sealed,
            "a fresh nonce every time"
        );
    }

    #[test]
    fn altered_truncated_or_foreign_values_do_not_open() {
        let sealer = Sealer::new(vec![key("k1", 7)]).unwrap();
        let sealed = sealer.seal(b"secret", b"ctx");
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(sealer.open(&altered, b"ctx"), Err(OpenError::Forged));
        for malformed in [
            "",
            "v1",
            "v1.k1",
            "v2.k1.AAAA",
            "v1.k1.not base64!",
            "v1.k1.AAAA",
        ] {
            assert_eq!(
                sealer.open(malformed, b"ctx"),
                Err(OpenError::Malformed),
                "{malformed:?}"
            );
        }
        let other = Sealer::new(vec![key("k9", 9)]).unwrap();
        assert_eq!(
            other.open(&sealed, b"ctx"),
            Err(OpenError::UnknownKey("k1".into()))
        );
        let same_id_other_key = Sealer::new(vec![key("k1", 8)]).unwrap();
        assert_eq!(
            same_id_other_key.open(&sealed, b"ctx"),
            Err(OpenError::Forged)
        );
    }

    #[test]
    fn after_a_rotation_old_values_open_and_new_ones_use_the_new_key() {
        let old = Sealer::new(vec![key("k1", 7)]).unwrap();
        let sealed_before = old.seal(b"secret", b"ctx");
        let rotated = Sealer::new(vec![key("k2", 8), key("k1", 7)]).unwrap();
        assert_eq!(rotated.open(&sealed_before, b"ctx").unwrap(), b"secret");
        assert!(!rotated.is_current(&sealed_before));
        let sealed_after = rotated.seal(b"secret", b"ctx");
        assert!(rotated.is_current(&sealed_after));
        assert!(sealed_after.starts_with("v1.k2."));
    }

    #[test]
    fn keys_are_32_bytes_and_never_shown() {
        assert!(DataKey::new("short", vec![0; 16]).is_none());
        assert!(Sealer::new(Vec::new()).is_none());
        let shown = format!("{:?}", key("k1", 0x41));
        assert!(shown.contains("k1") && !shown.contains("65"), "{shown}");
    }
}
