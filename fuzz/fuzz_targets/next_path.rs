//! `safe_next_path` (the post-sign-in redirect target) on arbitrary UTF-8.
//!
//! Whatever it accepts must be the input unchanged, a plain same-site path,
//! and must stay on our origin when a browser resolves it, both as written
//! and after one round of percent-decoding. Conversely, a path built only from
//! harmless characters must not be refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use portcullis::auth::safe_next_path;
use std::sync::LazyLock;
use url::Url;

static BASE: LazyLock<Url> = LazyLock::new(|| Url::parse("https://app.example/base/").unwrap());

/// Resolves `path` as a browser would (the WHATWG URL parser) and checks
/// that it stays on `https://app.example`.
fn assert_same_origin(path: &str, input: &str) {
    let url = BASE
        .join(path)
        .unwrap_or_else(|e| panic!("accepted {input:?} does not resolve: {e}"));
    assert_eq!(url.scheme(), "https", "{input:?} -> {url}");
    assert_eq!(url.host_str(), Some("app.example"), "{input:?} -> {url}");
    assert_eq!(url.port(), None, "{input:?} -> {url}");
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{input:?} -> {url}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match safe_next_path(input) {
        Some(p) => {
            assert_eq!(p, input, "the accepted path must be the input unchanged");
            assert!(p.len() <= 512, "too long: {}", p.len());
            assert!(p.starts_with('/'), "{p:?}");
            assert!(!matches!(p.chars().nth(1), Some('/' | '\\')), "{p:?}");
            assert!(
                !p.chars()
                    .any(|c| c.is_ascii_control() || c.is_whitespace() || c == '\\'),
                "control, whitespace or backslash in {p:?}"
            );
            assert_same_origin(&p, input);
            // Something downstream may decode once before resolving.
            let decoded = percent_decode_str(&p).decode_utf8_lossy();
            assert_same_origin(&decoded, input);
        }
        None => {
            // No false refusals: "/" then unreserved characters and single
            // slashes (no percent signs, so nothing to decode) is always fine.
            let harmless = input.len() <= 512
                && input.starts_with('/')
                && !input.starts_with("//")
                && input
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
            assert!(!harmless, "refused a harmless path {input:?}");
        }
    }
});
