//! The WebAuthn relying party: who we are to a browser's passkey prompt.
//!
//! Its id and origin come from `PORTCULLIS_PUBLIC_URL`; WebAuthn needs a
//! domain, so a public URL naming an IP address is refused at startup. In
//! local development (no public URL) the relying party is `localhost` on
//! the bound port: passkeys work at `http://localhost:3000`, and not at
//! `http://127.0.0.1:3000`, which browsers refuse for WebAuthn.

use std::time::Duration;

use webauthn_rs::{Webauthn, WebauthnBuilder, prelude::Url};

use super::config::{ConfigError, Origins};

/// How long a passkey prompt may take, registration or sign-in; its
/// ceremony's state lives as long.
pub const CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);

/// The relying party's id (a domain) and the origin browsers use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelyingParty {
    pub id: String,
    pub origin: String,
}

impl RelyingParty {
    /// From the configured public URL, or `localhost` on the development
    /// origin's port.
    pub fn of(public_url: Option<&str>, origins: &Origins) -> Result<RelyingParty, ConfigError> {
        let refuse = |reason: String| ConfigError::Invalid {
            key: "PORTCULLIS_PUBLIC_URL",
            reason,
        };
        match public_url {
            Some(public) => {
                let url = Url::parse(public).map_err(|e| refuse(e.to_string()))?;
                match url.host() {
                    Some(url::Host::Domain(domain)) => Ok(RelyingParty {
                        id: domain.to_string(),
                        origin: public.to_string(),
                    }),
                    _ => Err(refuse(format!(
                        "{public} names an IP address: passkeys (WebAuthn) need a domain name, \
                         such as https://auth.example.com, or http://localhost:<port> in development"
                    ))),
                }
            }
            None => {
                let port = Url::parse(&origins.public)
                    .ok()
                    .and_then(|url| url.port_or_known_default())
                    .unwrap_or(80);
                Ok(RelyingParty {
                    id: "localhost".into(),
                    origin: format!("http://localhost:{port}"),
                })
            }
        }
    }

    /// The library's relying party, or why this one cannot work.
    pub fn webauthn(&self) -> anyhow::Result<Webauthn> {
        let origin = Url::parse(&self.origin)?;
        WebauthnBuilder::new(&self.id, &origin)
            .and_then(|builder| builder.rp_name("Portcullis").timeout(CEREMONY_TTL).build())
            .map_err(|error| {
                anyhow::anyhow!(
                    "passkeys cannot work with relying party {:?} at {}: {error}",
                    self.id,
                    self.origin
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(public: &str) -> Origins {
        Origins {
            public: public.into(),
            allowed: vec![public.into()],
            secure: public.starts_with("https"),
        }
    }

    #[test]
    fn the_relying_party_is_the_public_domain_or_localhost() {
        let rp = RelyingParty::of(
            Some("https://auth.example.com"),
            &origins("https://auth.example.com"),
        )
        .unwrap();
        assert_eq!(rp.id, "auth.example.com");
        assert_eq!(rp.origin, "https://auth.example.com");
        assert!(rp.webauthn().is_ok());
        let dev = RelyingParty::of(None, &origins("http://127.0.0.1:3000")).unwrap();
        assert_eq!(
            dev,
            RelyingParty {
                id: "localhost".into(),
                origin: "http://localhost:3000".into()
            }
        );
        assert!(dev.webauthn().is_ok());
    }

    #[test]
    fn a_public_url_naming_an_ip_address_is_refused() {
        for public in ["http://127.0.0.1:3000", "https://[::1]", "https://10.0.0.7"] {
            let error = RelyingParty::of(Some(public), &origins(public))
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("PORTCULLIS_PUBLIC_URL") && error.contains("domain name"),
                "{public}: {error}"
            );
        }
    }
}
