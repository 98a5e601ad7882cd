//! Email addresses as account identities.
//!
//! A new address must be a plain `local@domain`: no display name, no IP
//! literal, a dotted DNS domain, and nothing that only looks like another
//! address. Parsing is the `email_address` crate's (RFC 5321/5322), the
//! domain's IDNA (UTS #46) mapping and punycode the `idna` crate's, and the
//! script checks follow Unicode TR #39 (`unicode-security`): a label, or the
//! local part, written in one script, and not a whole-script look-alike of a
//! Latin one (`аррӏе` in Cyrillic).
//!
//! The normalised form (the account's key) is the lower-cased local part and
//! the domain's ASCII (punycode) form, so `Ada@Bücher.de` and
//! `ada@xn--bcher-kva.de` are one account.

use email_address::{EmailAddress, Options};
use unicode_security::{MixedScript, skeleton};

/// Longest email address (RFC 5321 path limit); also the OpenAPI
/// document's `maxLength` for emails.
pub const MAX_EMAIL_LEN: usize = 254;

/// Why an address is refused; each is a message a person can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmailProblem {
    #[error("Enter your email address.")]
    Missing,
    #[error("That email address is too long.")]
    TooLong,
    #[error("Enter a valid email address, like name@example.com.")]
    Invalid,
    #[error("Enter only the address, like name@example.com, without a name or angle brackets.")]
    DisplayName,
    #[error("Use an address at a domain name, like name@example.com, not an IP address.")]
    IpLiteral,
    #[error("The domain must be a full domain name, like example.com.")]
    NotDotted,
    #[error("That address mixes alphabets or imitates another address; type it in one alphabet.")]
    LookAlike,
}

/// An email address: as typed (trimmed, for display and mail) and
/// normalised (for uniqueness and lookup).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub display: String,
    pub normalized: String,
    /// The key an account registered before domains were normalised to
    /// punycode has, when it differs (a non-ASCII domain).
    pub legacy_normalized: Option<String>,
}

impl Email {
    /// A new address (registration): every rule applies.
    pub fn parse_new(raw: &str) -> Result<Email, EmailProblem> {
        let display = raw.trim();
        if display.is_empty() {
            return Err(EmailProblem::Missing);
        }
        if display.chars().count() > MAX_EMAIL_LEN {
            return Err(EmailProblem::TooLong);
        }
        if display.chars().any(char::is_control) {
            return Err(EmailProblem::Invalid);
        }
        if display.contains('<') || display.contains('>') {
            return Err(EmailProblem::DisplayName);
        }
        let options = Options {
            minimum_sub_domains: 2,
            allow_domain_literal: false,
            allow_display_text: false,
        };
        let parsed =
            EmailAddress::parse_with_options(display, options).map_err(|error| match error {
                email_address::Error::DomainTooFew => EmailProblem::NotDotted,
                email_address::Error::UnsupportedDomainLiteral => EmailProblem::IpLiteral,
                email_address::Error::UnsupportedDisplayName => EmailProblem::DisplayName,
                _ => EmailProblem::Invalid,
            })?;
        let (local, domain) = (parsed.local_part(), parsed.domain());
        if domain.starts_with('[') {
            return Err(EmailProblem::IpLiteral);
        }
        let ascii = idna::domain_to_ascii_strict(domain).map_err(|_| EmailProblem::Invalid)?;
        // A dotted numeric "domain" is an IPv4 address in disguise.
        if ascii.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err(EmailProblem::IpLiteral);
        }
        let (unicode, checked) = idna::domain_to_unicode(&ascii);
        checked.map_err(|_| EmailProblem::Invalid)?;
        if unicode.split('.').any(looks_like_another) || looks_like_another(local) {
            return Err(EmailProblem::LookAlike);
        }
        Ok(Email::from_parts(display, local, &ascii, &unicode))
    }

    /// An address someone signs in with: normalised like a new one when it
    /// is valid by today's rules; else, when it was valid by the looser rule
    /// registrations were once checked against, only lower-cased, so that
    /// such accounts keep working (an unknown address simply matches none).
    pub fn parse_existing(raw: &str) -> Result<Email, EmailProblem> {
        match Email::parse_new(raw) {
            Ok(email) => Ok(email),
            Err(EmailProblem::Missing) => Err(EmailProblem::Missing),
            Err(EmailProblem::TooLong) => Err(EmailProblem::TooLong),
            Err(_) => {
                // The rule registrations were once checked against.
                let display = raw.trim();
                if display.chars().any(char::is_control) || !EmailAddress::is_valid(display) {
                    return Err(EmailProblem::Invalid);
                }
                Ok(Email {
                    display: display.to_string(),
                    normalized: display.to_lowercase(),
                    legacy_normalized: None,
                })
            }
        }
    }

    fn from_parts(display: &str, local: &str, ascii_domain: &str, unicode_domain: &str) -> Email {
        let local = local.to_lowercase();
        let normalized = format!("{local}@{}", ascii_domain.to_lowercase());
        // Older versions stored the address lower-cased as typed: for an
        // international domain, its Unicode form.
        let legacy = format!("{local}@{}", unicode_domain.to_lowercase());
        Email {
            display: display.to_string(),
            legacy_normalized: (legacy != normalized).then_some(legacy),
            normalized,
        }
    }

    /// The keys an account with this address may be stored under: the
    /// normalised one, and the legacy one when it differs.
    pub fn lookup_keys(&self) -> [&str; 2] {
        [
            &self.normalized,
            self.legacy_normalized
                .as_deref()
                .unwrap_or(&self.normalized),
        ]
    }
}

/// A label (or local part) that mixes scripts, or that is written wholly in
/// another script but is confusable with plain ASCII (TR #39 skeleton).
fn looks_like_another(part: &str) -> bool {
    if part.is_ascii() {
        return false;
    }
    !part.is_single_script() || skeleton(part).all(|c| c.is_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(raw: &str) -> Result<String, EmailProblem> {
        Email::parse_new(raw).map(|e| e.normalized)
    }

    #[test]
    fn plain_addresses_are_accepted_and_lower_cased() {
        assert_eq!(new(" Ada@Example.COM ").as_deref(), Ok("ada@example.com"));
        assert_eq!(
            new("a.b+tag@mail.example.co.uk").as_deref(),
            Ok("a.b+tag@mail.example.co.uk")
        );
    }

    #[test]
    fn the_audits_look_alikes_are_refused_with_a_reason() {
        assert_eq!(
            new("Ada <evil@example.com>"),
            Err(EmailProblem::DisplayName)
        );
        assert_eq!(new("a@[127.0.0.1]"), Err(EmailProblem::IpLiteral));
        assert_eq!(new("a@[IPv6:::1]"), Err(EmailProblem::IpLiteral));
        assert_eq!(new("a@127.0.0.1"), Err(EmailProblem::IpLiteral));
        assert_eq!(new("a@localhost"), Err(EmailProblem::NotDotted));
        // Cyrillic "а" in an otherwise Latin address.
        assert_eq!(new("\u{430}da@example.com"), Err(EmailProblem::LookAlike));
        assert_eq!(new("ada@ex\u{430}mple.com"), Err(EmailProblem::LookAlike));
        // Wholly Cyrillic, but reads as "apple".
        assert_eq!(
            new("ada@\u{430}\u{440}\u{440}\u{4cf}\u{435}.com"),
            Err(EmailProblem::LookAlike)
        );
    }

    #[test]
    fn international_domains_are_keyed_by_their_punycode() {
        let email = Email::parse_new("Ada@Bücher.de").unwrap();
        assert_eq!(email.normalized, "ada@xn--bcher-kva.de");
        assert_eq!(email.display, "Ada@Bücher.de");
        assert_eq!(email.legacy_normalized.as_deref(), Some("ada@bücher.de"));
        let typed_ascii = Email::parse_new("ada@xn--bcher-kva.de").unwrap();
        assert_eq!(
            typed_ascii.legacy_normalized.as_deref(),
            Some("ada@bücher.de")
        );
        assert_eq!(
            new("ada@xn--bcher-kva.de").as_deref(),
            Ok("ada@xn--bcher-kva.de")
        );
        // A real script of its own is fine.
        assert!(new("info@пример.рф").is_ok());
        assert!(new("用户@例子.中国").is_ok());
    }

    #[test]
    fn accounts_from_older_rules_can_still_sign_in() {
        let old = Email::parse_existing("admin@localhost").unwrap();
        assert_eq!(old.normalized, "admin@localhost");
        assert_eq!(Email::parse_existing("  "), Err(EmailProblem::Missing));
        assert_eq!(
            Email::parse_existing("no-at-sign"),
            Err(EmailProblem::Invalid)
        );
        let same = Email::parse_existing("Ada@Example.com").unwrap();
        assert_eq!(same.lookup_keys(), ["ada@example.com", "ada@example.com"]);
    }
}
