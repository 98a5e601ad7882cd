//! `RefreshToken::parse` on arbitrary UTF-8.
//!
//! It must accept exactly the shape we issue (32 bytes as unpadded base64url,
//! i.e. 43 characters), checked here against an independent model rather than
//! the base64 crate the implementation uses, and whatever it accepts must
//! round-trip, hash deterministically and rotate into a parseable successor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::server::tokens::RefreshToken;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// 43 base64url digits carry 258 bits; 32 bytes need 256, so the last digit's
/// two low bits must be zero (canonical encoding, no padding).
fn is_canonical_token(s: &str) -> bool {
    let digit = |b: u8| ALPHABET.iter().position(|&a| a == b);
    s.len() == 43
        && s.bytes().all(|b| digit(b).is_some())
        && digit(s.as_bytes()[42]).is_some_and(|d| d % 4 == 0)
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = RefreshToken::parse(input);
    assert_eq!(parsed.is_some(), is_canonical_token(input), "{input:?}");
    let Some(t) = parsed else { return };

    // Round trip: the exposed form is the input, and parses to the same token.
    assert_eq!(t.expose(), input);
    let again = RefreshToken::parse(t.expose()).expect("exposed token parses");
    assert_eq!(again.expose(), t.expose());

    // The stored hash depends only on the token.
    assert_eq!(t.hash(), t.hash());
    assert_eq!(t.hash(), again.hash());

    // Successors (any rotation key length, including empty) are deterministic
    // and are themselves well-formed tokens.
    for key in [&b""[..], &[7u8; 32][..], data] {
        let next = t.successor(key);
        assert_eq!(next.expose(), again.successor(key).expose());
        assert!(
            RefreshToken::parse(next.expose()).is_some(),
            "successor {:?} does not parse",
            next.expose()
        );
        assert!(is_canonical_token(next.expose()));
    }
});
