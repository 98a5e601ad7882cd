//! `TokenIssuer::verify_access` and `verify_access_ignoring_expiry`.
//!
//! Property: a token verifies if and only if it is byte-identical to one the
//! issuer's keys produced. Checked on (1) the raw fuzz input, and (2) edits,
//! driven by the fuzz input, of a few base tokens issued at startup: two
//! genuine ones (signing key and a still-accepted older key) and three
//! attacks on our `kid` (wrong secret, HS512 with the right secret, alg=none).
#![no_main]

use base64::{
    Engine as _,
    engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use portcullis::server::{
    config::{JwtKeySpec, JwtSettings},
    db::{SessionId, UserId},
    time::Timestamp,
    tokens::TokenIssuer,
};
use secrecy::SecretSlice;
use std::{sync::LazyLock, time::Duration};

struct Fixture {
    issuer: TokenIssuer,
    genuine: Vec<String>,
    /// Genuine tokens first, then the attacks.
    bases: Vec<String>,
}

fn key(kid: &str, byte: u8) -> JwtKeySpec {
    JwtKeySpec {
        kid: kid.into(),
        secret: SecretSlice::from(vec![byte; 32]),
    }
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let settings = JwtSettings {
        keys: None,
        issuer: "portcullis".into(),
        audience: "portcullis".into(),
        // Long enough that genuine tokens stay valid however long we fuzz.
        access_ttl: Duration::from_secs(10 * 365 * 86_400),
        leeway: Duration::from_secs(60),
    };
    let issuer = TokenIssuer::new(&[key("k1", 1), key("k2", 2)], &settings).unwrap();
    let older = TokenIssuer::new(&[key("k2", 2)], &settings).unwrap();
    let issue = |i: &TokenIssuer| {
        i.issue_access(UserId::random(), SessionId::random(), Timestamp::now())
            .unwrap()
            .0
    };
    let genuine = vec![issue(&issuer), issue(&older)];
    let claims = issuer
        .verify_access(&genuine[0])
        .expect("genuine token verifies");

    let sign = |alg, secret: &[u8]| {
        let mut header = Header::new(alg);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap()
    };
    let payload = genuine[0].split('.').nth(1).unwrap();
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
    let mut bases = genuine.clone();
    bases.push(sign(Algorithm::HS256, &[9; 32]));
    bases.push(sign(Algorithm::HS512, &[1; 32]));
    bases.push(format!("{none_header}.{payload}."));
    Fixture {
        issuer,
        genuine,
        bases,
    }
});

/// The property itself, for both verification entry points.
fn check(f: &Fixture, token: &str) {
    let expected = f.genuine.iter().any(|g| g == token);
    let full = f.issuer.verify_access(token);
    let logout = f.issuer.verify_access_ignoring_expiry(token);
    assert_eq!(
        full.is_ok(),
        expected,
        "verify_access({token:?}) = {full:?}"
    );
    assert_eq!(
        logout.is_ok(),
        expected,
        "ignoring expiry({token:?}) = {logout:?}"
    );
}

const TOKEN_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/";

/// Applies edits `[op, pos_lo, pos_hi, value]` from `script` to `token`.
fn mutate(token: &str, script: &[u8]) -> String {
    let mut t = token.as_bytes().to_vec();
    for edit in script.chunks_exact(4) {
        let (op, v) = (edit[0], edit[3]);
        let pos = usize::from(u16::from_le_bytes([edit[1], edit[2]])) % (t.len() + 1);
        let c = TOKEN_CHARS[usize::from(v) % TOKEN_CHARS.len()];
        match op % 8 {
            0 if pos < t.len() => t[pos] = v,
            1 if pos < t.len() => t[pos] = c,
            2 => t.insert(pos, c),
            3 if pos < t.len() => drop(t.remove(pos)),
            4 => t.truncate(pos),
            5 if pos < t.len() => t[pos] ^= 1 << (v % 8),
            // Change one byte of a decoded segment (header JSON, claims JSON
            // or signature) and re-encode it properly.
            6 | 7 => {
                let mut parts: Vec<Vec<u8>> = t.split(|&b| b == b'.').map(<[u8]>::to_vec).collect();
                let seg = usize::from(v) % parts.len();
                let Ok(mut raw) = URL_SAFE_NO_PAD.decode(&parts[seg]) else {
                    continue;
                };
                if op % 8 == 6 && !raw.is_empty() {
                    let i = pos % raw.len();
                    raw[i] = raw[i].wrapping_add(v | 1);
                }
                // Op 7 only re-encodes, with `=` padding (refused if any is added).
                let engine = if op % 8 == 6 {
                    URL_SAFE_NO_PAD
                } else {
                    URL_SAFE
                };
                parts[seg] = engine.encode(raw).into_bytes();
                t = parts.join(&b'.');
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&t).into_owned()
}

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    // (1) Arbitrary input never verifies.
    check(f, &String::from_utf8_lossy(data));
    // (2) Edited tokens verify only if the edits cancelled out.
    if let Some((&which, script)) = data.split_first() {
        let base = &f.bases[usize::from(which) % f.bases.len()];
        check(f, &mutate(base, script));
    }
});
