//! Access tokens (JWT) and refresh tokens (opaque), the one place that makes
//! and checks either.
//!
//! Access tokens are HS256 JWTs with `sub`, `sid`, `jti`, `iat`, `nbf`,
//! `exp`, `iss`, `aud` and a `kid` header. The algorithm is pinned: headers
//! naming another one (`none`, RS256 with our secret as a "public key") are
//! refused before any signature check. A valid signature is not enough to be
//! signed in: the session named by `sid` must still be live (see
//! `service::AuthService::authenticate`).
//!
//! Refresh tokens are 256 random bits, stored only as SHA-256 hashes. Each
//! rotation derives the successor as HMAC-SHA256(session rotation key, token),
//! so two requests refreshing the same token at the same moment, on any
//! instance, compute the same successor: exactly one live token per session.

use anyhow::Context;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::{collections::HashMap, fmt, time::Duration};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{
    config::{JwtKeySpec, JwtSettings},
    db::{SessionId, UserId},
    time::Timestamp,
};

const ALGORITHM: Algorithm = Algorithm::HS256;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: UserId,
    pub sid: SessionId,
    pub jti: Uuid,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// Why a token was refused. Only `Expired` is expected in normal use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token uses a disallowed algorithm")]
    WrongAlgorithm,
    #[error("token key id is unknown")]
    UnknownKey,
    #[error("token has expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("token issuer or audience is wrong")]
    WrongIssuer,
}

struct VerificationKey {
    key: DecodingKey,
}

pub struct TokenIssuer {
    /// Keys for device cookies, derived from the JWT keys (first signs).
    device_keys: Vec<(String, [u8; 32])>,
    signing_kid: String,
    signing_key: EncodingKey,
    verification: HashMap<String, VerificationKey>,
    issuer: String,
    audience: String,
    access_ttl: Duration,
    /// What an access token must satisfy, built once (each holds sets and
    /// strings): `[ignoring expiry, full]`.
    validation: [Validation; 2],
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("signing_kid", &self.signing_kid)
            .field("kids", &self.verification.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// `keys[0]` signs; every key verifies tokens carrying its `kid`.
    pub fn new(keys: &[JwtKeySpec], settings: &JwtSettings) -> anyhow::Result<Self> {
        let signing = keys.first().context("At least one JWT key is required")?;
        Ok(Self {
            device_keys: keys
                .iter()
                .map(|k| {
                    (
                        k.kid.clone(),
                        derive_key(k.secret.expose_secret(), DEVICE_KEY_LABEL),
                    )
                })
                .collect(),
            signing_kid: signing.kid.clone(),
            signing_key: EncodingKey::from_secret(signing.secret.expose_secret()),
            verification: keys
                .iter()
                .map(|k| {
                    let key = DecodingKey::from_secret(k.secret.expose_secret());
                    (k.kid.clone(), VerificationKey { key })
                })
                .collect(),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl: settings.access_ttl,
            validation: [false, true].map(|check_expiry| {
                let mut validation = Validation::new(ALGORITHM);
                validation.leeway = settings.leeway.as_secs();
                validation.validate_exp = check_expiry;
                validation.validate_nbf = true;
                validation.set_issuer(&[&settings.issuer]);
                validation.set_audience(&[&settings.audience]);
                validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
                validation
            }),
        })
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// A device cookie (OWASP's defence against online guessing): proof that
    /// this browser once signed in as `login` (a normalised email), so it may
    /// keep signing in while the account is locked to unknown devices.
    /// `<kid>.<nonce>.<HMAC(device key, login, nonce)>`; the nonce is the
    /// device's own throttle key. The login is not in the cookie.
    pub fn issue_device(&self, login: &str) -> String {
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let (kid, key) = &self.device_keys[0];
        let tag = device_mac(key, login, &nonce).finalize().into_bytes();
        format!("{kid}.{nonce}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The device's id (its nonce) when `cookie` is a device cookie this
    /// server issued for `login`; `None` for anything else, including a
    /// cookie another account's sign-in left in this browser.
    pub fn verify_device(&self, login: &str, cookie: &str) -> Option<String> {
        let mut parts = cookie.rsplitn(3, '.');
        let (tag, nonce, kid) = (parts.next()?, parts.next()?, parts.next()?);
        if nonce.len() != DEVICE_NONCE_LEN {
            return None;
        }
        let (_, key) = self.device_keys.iter().find(|(id, _)| id == kid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        device_mac(key, login, nonce).verify_slice(&tag).ok()?;
        Some(nonce.to_string())
    }

    /// Issues an access token for a session; returns it with its expiry.
    pub fn issue_access(
        &self,
        user: UserId,
        session: SessionId,
        now: Timestamp,
    ) -> anyhow::Result<(String, Timestamp)> {
        let expires_at = now.plus(self.access_ttl);
        let claims = AccessClaims {
            sub: user,
            sid: session,
            jti: Uuid::new_v4(),
            iat: now.unix_seconds(),
            nbf: now.unix_seconds(),
            exp: expires_at.unix_seconds(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.signing_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing_key)
            .context("Failed to sign an access token")?;
        Ok((token, expires_at))
    }

    /// Full verification: signature, algorithm, key id, issuer, audience,
    /// `exp` and `nbf` (with the configured leeway).
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify(token, true)
    }

    /// Verifies everything except expiry. For logout only: an expired token
    /// with a good signature still proves which session to end.
    pub fn verify_access_ignoring_expiry(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify(token, false)
    }

    fn verify(&self, token: &str, check_expiry: bool) -> Result<AccessClaims, TokenError> {
        if token.len() > 4096 {
            return Err(TokenError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| map_jwt_error(e.kind()))?;
        if header.alg != ALGORITHM {
            return Err(TokenError::WrongAlgorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.verification.get(&kid).ok_or(TokenError::UnknownKey)?;
        let validation = &self.validation[usize::from(check_expiry)];
        jsonwebtoken::decode::<AccessClaims>(token, &key.key, validation)
            .map(|data| data.claims)
            .map_err(|e| map_jwt_error(e.kind()))
    }
}

fn map_jwt_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => TokenError::WrongIssuer,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => TokenError::WrongAlgorithm,
        _ => TokenError::Malformed,
    }
}

/// A refresh token is `<session>.<secret>`: the session id (16 bytes) and 32
/// secret bytes, each in unpadded base64url. The session part lets a retired
/// token be recognised as one of its session's even after its row has been
/// pruned (see `AuthService::refresh`); it is not secret.
const SESSION_PART_LEN: usize = 22;
const SECRET_PART_LEN: usize = 43;
pub const REFRESH_TOKEN_LEN: usize = SESSION_PART_LEN + 1 + SECRET_PART_LEN;
/// Tokens issued before the session part existed: the secret alone. They are
/// still accepted, and their successors have the current shape.
const LEGACY_REFRESH_TOKEN_LEN: usize = SECRET_PART_LEN;

/// Exactly the strings [`RefreshToken::parse`] accepts, for the OpenAPI
/// document: an optional session part (22 base64url characters, the last
/// one carrying only the final 2 bits of 16 bytes) and a dot, then the secret
/// (43 characters, the last carrying the final 2 bits of 32 bytes): in a
/// canonical encoding the unused low bits of the last character are zero.
pub const REFRESH_TOKEN_PATTERN: &str =
    "^([A-Za-z0-9_-]{21}[AQgw]\\.)?[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$";

/// An opaque refresh token. Not `Debug`-printable, not `Serialize`.
pub struct RefreshToken(SecretString);

impl RefreshToken {
    /// The first token of `session`: 256 random bits.
    pub fn generate(session: SessionId) -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::of_session(session, &bytes)
    }

    fn of_session(session: SessionId, secret: &[u8]) -> Self {
        Self(
            format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(session.0.as_bytes()),
                URL_SAFE_NO_PAD.encode(secret)
            )
            .into(),
        )
    }

    /// Accepts only the exact shapes we issue, so garbage never reaches SQL.
    pub fn parse(raw: &str) -> Option<Self> {
        let secret_ok = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .is_ok_and(|bytes| bytes.len() == 32)
        };
        let ok = match raw.len() {
            REFRESH_TOKEN_LEN => raw.split_once('.').is_some_and(|(session, secret)| {
                session.len() == SESSION_PART_LEN
                    && URL_SAFE_NO_PAD
                        .decode(session)
                        .is_ok_and(|bytes| bytes.len() == 16)
                    && secret_ok(secret)
            }),
            LEGACY_REFRESH_TOKEN_LEN => secret_ok(raw),
            _ => false,
        };
        ok.then(|| Self(raw.to_string().into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The session the token says it belongs to; `None` for a legacy token.
    /// Only a claim: it proves nothing until the token's chain is checked.
    pub fn claimed_session(&self) -> Option<SessionId> {
        let (session, _) = self.expose().split_once('.')?;
        let bytes = URL_SAFE_NO_PAD.decode(session).ok()?;
        Uuid::from_slice(&bytes).ok().map(SessionId)
    }

    /// The stored form: SHA-256 of the token. A slow hash is unnecessary for
    /// 256 random bits, and a fast one keeps refresh cheap.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.expose().as_bytes()).into()
    }

    /// The token that replaces this one in `session`, keyed by its
    /// `rotation_key`: HMAC(key, token). Deterministic, so concurrent
    /// refreshes of one token agree on one successor, and a token's
    /// descendants can be recomputed from it.
    pub fn successor(&self, rotation_key: &[u8], session: SessionId) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(rotation_key)
            .expect("HMAC-SHA256 accepts keys of any length");
        mac.update(self.expose().as_bytes());
        Self::of_session(session, &mac.finalize().into_bytes())
    }
}

/// The length of a [`LinkToken`]: 32 bytes in unpadded base64url.
pub const LINK_TOKEN_LEN: usize = 43;
/// The shape of a [`LinkToken`], for the API document.
pub const LINK_TOKEN_PATTERN: &str = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$";

/// The secret in an emailed link (password reset): 256 bits from the OS RNG,
/// stored only as its SHA-256 hash. Not `Debug`-printable.
pub struct LinkToken(SecretString);

impl LinkToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes).into())
    }

    /// Accepts only the shape we issue, so garbage never reaches SQL.
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == LINK_TOKEN_LEN
            && URL_SAFE_NO_PAD
                .decode(raw)
                .is_ok_and(|bytes| bytes.len() == 32))
        .then(|| Self(raw.to_string().into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.expose().as_bytes()).into()
    }
}

/// An admin API key: `pck_<id>_<secret>`, the id 8 random bytes in hex (it
/// finds the row), the secret 32 bytes from the OS RNG in unpadded
/// base64url, stored only as its SHA-256 and compared in constant time.
pub struct AdminKeyToken {
    id: String,
    whole: SecretString,
}

const ADMIN_KEY_PREFIX: &str = "pck_";

impl AdminKeyToken {
    pub fn generate() -> Self {
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut id);
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let whole = format!("{ADMIN_KEY_PREFIX}{id}_{}", URL_SAFE_NO_PAD.encode(secret));
        AdminKeyToken {
            id,
            whole: whole.into(),
        }
    }

    /// Accepts only the shape we issue.
    pub fn parse(raw: &str) -> Option<Self> {
        let (id, secret) = raw.strip_prefix(ADMIN_KEY_PREFIX)?.split_once('_')?;
        let well_formed = id.len() == 16
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && secret.len() == LINK_TOKEN_LEN
            && URL_SAFE_NO_PAD
                .decode(secret)
                .is_ok_and(|bytes| bytes.len() == 32);
        well_formed.then(|| AdminKeyToken {
            id: id.to_string(),
            whole: raw.to_string().into(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn expose(&self) -> &str {
        self.whole.expose_secret()
    }

    pub fn secret_hash(&self) -> [u8; 32] {
        Sha256::digest(self.expose().as_bytes()).into()
    }

    /// Whether `stored` is this key's hash, in constant time.
    pub fn matches(&self, stored: &[u8]) -> bool {
        bool::from(self.secret_hash().as_slice().ct_eq(stored))
    }
}

const DEVICE_KEY_LABEL: &[u8] = b"portcullis device cookie v1";
/// 16 random bytes in unpadded base64url.
const DEVICE_NONCE_LEN: usize = 22;

/// A key for one purpose, derived from a configured secret: HMAC(secret,
/// label), so a device cookie's tag can never pass for a JWT signature.
fn derive_key(secret: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).expect("HMAC-SHA256 accepts keys of any length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn device_mac(key: &[u8], login: &str, nonce: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key).expect("HMAC-SHA256 accepts keys of any length");
    for part in [b"device".as_slice(), login.as_bytes(), nonce.as_bytes()] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

/// A fresh random per-session rotation key.
pub fn new_rotation_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

/// Generates a JWT signing secret: 256 random bits.
pub fn generate_jwt_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_keys_parse_only_in_the_shape_issued_and_match_only_their_hash() {
        let key = AdminKeyToken::generate();
        let parsed = AdminKeyToken::parse(key.expose()).expect("its own shape");
        assert_eq!(parsed.id(), key.id());
        assert!(parsed.matches(&key.secret_hash()));
        assert!(!parsed.matches(&AdminKeyToken::generate().secret_hash()));
        let whole = key.expose().to_string();
        for bad in [
            "",
            "pck_",
            &whole[..whole.len() - 1],
            &whole.replacen("pck_", "pcx_", 1),
            &whole.to_uppercase(),
            "pck_0123456789abcdef_short",
        ] {
            assert!(AdminKeyToken::parse(bad).is_none(), "{bad}");
        }
    }
    use secrecy::SecretSlice;

    fn issuer_with(keys: &[(&str, u8)], leeway: u64) -> TokenIssuer {
        let specs: Vec<JwtKeySpec> = keys
            .iter()
            .map(|(kid, byte)| JwtKeySpec {
                kid: kid.to_string(),
                secret: SecretSlice::from(vec![*byte; 32]),
            })
            .collect();
        TokenIssuer::new(
            &specs,
            &JwtSettings {
                keys: None,
                issuer: "portcullis".into(),
                audience: "portcullis".into(),
                access_ttl: Duration::from_secs(900),
                leeway: Duration::from_secs(leeway),
            },
        )
        .unwrap()
    }

    fn ids() -> (UserId, SessionId) {
        (UserId::random(), SessionId::random())
    }

    #[test]
    fn a_fresh_token_verifies_and_carries_its_session() {
        let issuer = issuer_with(&[("k1", 1)], 0);
        let (user, session) = ids();
        let (token, exp) = issuer
            .issue_access(user, session, Timestamp::now())
            .unwrap();
        let claims = issuer.verify_access(&token).unwrap();
        assert_eq!(
            (claims.sub, claims.sid, claims.exp),
            (user, session, exp.unix_seconds())
        );
    }

    #[test]
    fn expired_tokens_fail_unless_expiry_is_ignored_for_logout() {
        let issuer = issuer_with(&[("k1", 1)], 0);
        let (user, session) = ids();
        let long_ago = Timestamp::now().minus(Duration::from_secs(3600));
        let (token, _) = issuer.issue_access(user, session, long_ago).unwrap();
        assert_eq!(
            issuer.verify_access(&token).unwrap_err(),
            TokenError::Expired
        );
        assert_eq!(
            issuer.verify_access_ignoring_expiry(&token).unwrap().sid,
            session
        );
    }

    #[test]
    fn rotated_keys_keep_verifying_old_tokens_and_unknown_kids_fail() {
        let old = issuer_with(&[("old", 1)], 0);
        let rolled = issuer_with(&[("new", 2), ("old", 1)], 0);
        let (user, session) = ids();
        let (token, _) = old.issue_access(user, session, Timestamp::now()).unwrap();
        assert!(rolled.verify_access(&token).is_ok());
        let stranger = issuer_with(&[("new", 2)], 0);
        assert_eq!(
            stranger.verify_access(&token).unwrap_err(),
            TokenError::UnknownKey
        );
    }

    #[test]
    fn a_token_signed_with_another_secret_under_our_kid_fails() {
        let ours = issuer_with(&[("k1", 1)], 0);
        let forger = issuer_with(&[("k1", 9)], 0);
        let (token, _) = forger
            .issue_access(UserId::random(), SessionId::random(), Timestamp::now())
            .unwrap();
        assert_eq!(
            ours.verify_access(&token).unwrap_err(),
            TokenError::BadSignature
        );
    }

    #[test]
    fn the_documented_refresh_token_pattern_is_exactly_what_parse_accepts() {
        const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let (session_last, secret_last) = ("AQgw", "AEIMQUYcgkosw048");
        assert_eq!(
            REFRESH_TOKEN_PATTERN,
            format!(
                "^([A-Za-z0-9_-]{{21}}[{session_last}]\\.)?[A-Za-z0-9_-]{{42}}[{secret_last}]$"
            )
        );
        for first in ALPHABET.chars() {
            for last in ALPHABET.chars() {
                let secret = format!("{}{last}", first.to_string().repeat(42));
                let expected = secret_last.contains(last);
                assert_eq!(RefreshToken::parse(&secret).is_some(), expected, "{secret}");
                let current = format!("{}A.{secret}", first.to_string().repeat(21));
                assert_eq!(
                    RefreshToken::parse(&current).is_some(),
                    expected,
                    "{current}"
                );
                let session = format!("{}{last}.{}A", first.to_string().repeat(21), "A".repeat(42));
                assert_eq!(
                    RefreshToken::parse(&session).is_some(),
                    session_last.contains(last),
                    "{session}"
                );
            }
        }
        for wrong_length in [42, 44, 65, 67] {
            assert!(RefreshToken::parse(&"A".repeat(wrong_length)).is_none());
        }
        let token = RefreshToken::generate(SessionId::random());
        let (session, secret) = token.expose().split_once('.').unwrap();
        assert!(session_last.contains(session.chars().last().unwrap()));
        assert!(secret_last.contains(secret.chars().last().unwrap()));
    }

    #[test]
    fn refresh_tokens_round_trip_and_successors_are_deterministic() {
        let session = SessionId::random();
        let token = RefreshToken::generate(session);
        assert_eq!(token.expose().len(), REFRESH_TOKEN_LEN);
        let parsed = RefreshToken::parse(token.expose()).unwrap();
        assert_eq!(parsed.hash(), token.hash());
        assert_eq!(parsed.claimed_session(), Some(session));
        let key = new_rotation_key();
        assert_eq!(
            token.successor(&key, session).expose(),
            parsed.successor(&key, session).expose()
        );
        assert_ne!(
            token.successor(&key, session).expose(),
            token.successor(&new_rotation_key(), session).expose()
        );
        let next = RefreshToken::parse(token.successor(&key, session).expose()).unwrap();
        assert_eq!(next.claimed_session(), Some(session));
        let legacy = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let legacy = RefreshToken::parse(&legacy).expect("tokens from before still parse");
        assert_eq!(legacy.claimed_session(), None);
        assert_eq!(
            legacy.successor(&key, session).claimed_session(),
            Some(session),
            "a legacy token's successor has the current shape"
        );
        let session_part = URL_SAFE_NO_PAD.encode([1u8; 16]);
        let secret_part = URL_SAFE_NO_PAD.encode([2u8; 32]);
        for bad in [
            String::new(),
            "short".into(),
            "A".repeat(44),
            "!".repeat(43),
            "A".repeat(REFRESH_TOKEN_LEN),
            format!("{session_part}:{secret_part}"),
            format!("{secret_part}.{session_part}"),
            format!("{session_part}.{}", "!".repeat(43)),
        ] {
            assert!(RefreshToken::parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn link_tokens_are_256_random_bits_and_only_their_own_shape_parses() {
        let a = LinkToken::generate();
        let b = LinkToken::generate();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), LINK_TOKEN_LEN);
        assert!(has_link_token_shape(a.expose()), "{LINK_TOKEN_PATTERN}");
        let parsed = LinkToken::parse(a.expose()).expect("its own shape");
        assert_eq!(parsed.hash(), a.hash());
        let refresh = RefreshToken::generate(SessionId::random());
        for bad in [
            "",
            "short",
            refresh.expose(),
            &"A".repeat(44),
            &format!("{}=", &a.expose()[..42]),
            // 43 characters whose last one carries bits past 32 bytes.
            &format!("{}B", &a.expose()[..42]),
        ] {
            assert!(LinkToken::parse(bad).is_none(), "{bad}");
        }
    }

    /// `LINK_TOKEN_PATTERN`, spelled out by hand (no regex crate here).
    fn has_link_token_shape(token: &str) -> bool {
        let (body, last) = token.split_at(token.len() - 1);
        body.len() == 42
            && body
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            && "AEIMQUYcgkosw048".contains(last)
    }
}
