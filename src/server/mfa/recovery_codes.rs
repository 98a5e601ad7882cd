//! One-time recovery codes: ten per account, shown once, stored only as
//! salted SHA-256 hashes. Each has 49.5 random bits (ten characters of a 31-letter
//! alphabet without look-alikes), far beyond guessing under the sign-in
//! throttle, so a fast hash is enough (unlike passwords, they are not
//! chosen by people).

use sha2::{Digest, Sha256};

pub const COUNT: usize = 10;
/// No 0/o, 1/l/i (31 characters), so a code read aloud or from paper is typed right.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
const GROUP: usize = 5;

/// Fresh codes, as shown to the person: `abcde-fghjk`.
pub fn generate() -> Vec<String> {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..COUNT)
        .map(|_| {
            let letters: String = (0..2 * GROUP)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
                .collect();
            format!("{}-{}", &letters[..GROUP], &letters[GROUP..])
        })
        .collect()
}

/// A typed code in its stored form: lower case, without spaces or hyphens;
/// `None` if it cannot be one.
pub fn normalize(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (code.len() == 2 * GROUP && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// What is stored of a (normalized) code of `owner`: SHA-256 salted with the
/// account's id (128 random bits), so one table of precomputed hashes does
/// not serve every account.
pub fn hash(owner: &[u8], normalized: &str) -> Vec<u8> {
    let mut digest = Sha256::new();
    digest.update(b"portcullis recovery code v1\0");
    digest.update(owner);
    digest.update(normalized.as_bytes());
    digest.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ten_distinct_codes_in_the_shown_form() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        assert_eq!(codes.iter().collect::<HashSet<_>>().len(), COUNT);
        for code in &codes {
            assert_eq!(code.len(), 11, "{code}");
            assert_eq!(&code[5..6], "-");
            assert_eq!(normalize(code).unwrap().len(), 10);
        }
    }

    #[test]
    fn typed_codes_are_forgiven_case_spaces_and_hyphens_but_nothing_else() {
        assert_eq!(normalize("ABCDE-FGHJK").as_deref(), Some("abcdefghjk"));
        assert_eq!(normalize(" abcde fghjk ").as_deref(), Some("abcdefghjk"));
        for bad in [
            "",
            "abcde",
            "abcdefghjkm",
            "abcde-fghj0",
            "abcde\0fghjk",
            "ábcde-fghjk",
            "123456",
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
        assert_eq!(
            hash(b"owner", "abcdefghjk"),
            hash(b"owner", &normalize("ABCDE-FGHJK").unwrap())
        );
        assert_ne!(hash(b"owner", "abcdefghjk"), hash(b"owner", "abcdefghjm"));
        assert_ne!(
            hash(b"owner", "abcdefghjk"),
            hash(b"other", "abcdefghjk"),
            "salted per account"
        );
    }
}
