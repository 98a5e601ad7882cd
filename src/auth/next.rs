//! Validation of the `next` redirect target after sign-in.
//!
//! Shared by the server (which redirects) and the browser (which navigates),
//! so both apply the same rule. Anything that is not plainly a path on this
//! site is dropped rather than repaired: an open redirect is worse than
//! landing on the home page.

/// Longest `next` we accept; real paths here are short.
const MAX_NEXT_LEN: usize = 512;

/// Returns `raw` if it is a same-site absolute path, `None` otherwise.
///
/// Rejected: anything not starting with exactly one `/` (`//host`, `https:`,
/// `javascript:`), backslashes (browsers treat `/\host` as `//host`), ASCII
/// control characters and whitespace (browsers strip tabs and newlines, which
/// can turn `/\t/host` into `//host`), and the same tricks percent-encoded.
pub fn safe_next_path(raw: &str) -> Option<String> {
    if raw.len() > MAX_NEXT_LEN || !is_plain_path(raw) {
        return None;
    }
    // A second look at the decoded form catches `/%2F%2Fevil.example` and
    // `/%5Cevil`, in case anything downstream decodes before resolving.
    let decoded = percent_decode(raw)?;
    if !is_plain_path(&decoded) {
        return None;
    }
    Some(raw.to_string())
}

/// The second step of a sign-in, keeping a safe `next` for after it.
pub fn verify_path(next: Option<&str>) -> String {
    match next.and_then(safe_next_path) {
        Some(next) => format!(
            "/login/verify?next={}",
            crate::components::encode_query_value(&next)
        ),
        None => "/login/verify".to_string(),
    }
}

fn is_plain_path(path: &str) -> bool {
    let mut chars = path.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/') | Some('\\'))
        && !path
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
}

/// Percent-decodes `input`; `None` for malformed escapes or non-UTF-8 results.
fn percent_decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = input.get(i + 1..i + 3)?;
            // Two hex digits, nothing else (`from_str_radix` alone accepts "+F").
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::safe_next_path;

    #[test]
    fn same_site_paths_are_kept() {
        for ok in [
            "/",
            "/account",
            "/account?tab=sessions",
            "/a/b#frag",
            "/caf%C3%A9",
        ] {
            assert_eq!(safe_next_path(ok).as_deref(), Some(ok), "{ok}");
        }
    }

    #[test]
    fn off_site_and_disguised_targets_are_dropped() {
        for bad in [
            "",
            "account",
            "//evil.example",
            "///evil.example",
            "https://evil.example",
            "http:evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "/%2F%2Fevil.example",
            "/%2f/evil.example",
            "/%5Cevil.example",
            "%2F%2Fevil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "/%09/evil.example",
            "/%ZZ",
            "/%+F",
            "/%C3",
        ] {
            assert_eq!(safe_next_path(bad), None, "{bad:?}");
        }
        assert_eq!(safe_next_path(&format!("/{}", "a".repeat(600))), None);
    }
}
