//! Configuration, from environment variables (and an optional `.env`).
//!
//! Every variable of ours is prefixed `PORTCULLIS_`, except the two that
//! tools already know: `DATABASE_URL` (sqlx) and `LEPTOS_SITE_ADDR` (Leptos).
//! Defaults make a plain start work; `.env.example` documents each variable.
//! Secrets are held in `secrecy` types, and no error message repeats a value.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use leptos::config::LeptosOptions;
use secrecy::SecretSlice;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{key} is invalid: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("Leptos configuration: {0}")]
    Leptos(String),
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub leptos: LeptosOptions,
    pub data_dir: PathBuf,
    pub database: DatabaseSettings,
    /// The origin browsers use to reach us, e.g. `https://auth.example.com`.
    /// `None`: `http://` plus the bound address (local development).
    pub public_url: Option<String>,
    /// `None`: secure exactly when the public URL is `https`.
    pub secure_cookies: Option<bool>,
    pub jwt: JwtSettings,
    /// `PORTCULLIS_DATA_KEY`: the keys that seal secrets at rest (TOTP
    /// secrets), the sealing one first. `None`: a key generated once into
    /// the data directory (SQLite only).
    pub data_keys: Option<Vec<JwtKeySpec>>,
    pub sessions: SessionSettings,
    pub passwords: PasswordPolicy,
    pub hashing: HashingSettings,
    pub throttle: ThrottleSettings,
    pub maintenance: MaintenanceSettings,
    pub connections: ConnectionSettings,
    pub mail: MailSettings,
    pub webhooks: WebhookSettings,
    pub live: LiveSettings,
    /// The reverse proxies in front of us, which say who the client is.
    pub proxies: ProxySettings,
    /// Serve cookies without `Secure` beyond loopback (a plain-HTTP lab).
    pub allow_insecure_http: bool,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// Decided once, from the URL's scheme; everyone else reads this field.
    pub engine: Engine,
    pub url: String,
    pub max_connections: u32,
    /// How long a request waits for a connection before it gets a 503.
    pub acquire_timeout: Duration,
    /// The longest one statement may run or wait for a lock (PostgreSQL
    /// `statement_timeout` and `lock_timeout`, SQLite `busy_timeout`): a
    /// stalled database answers 503 within it instead of holding requests.
    pub statement_timeout: Duration,
}

/// Which engine a database URL selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    fn of_url(url: &str) -> Option<Engine> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Engine::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Engine::Sqlite)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

impl DatabaseSettings {
    /// Settings for `url`, its engine read from the scheme.
    pub fn for_url(
        url: String,
        max_connections: u32,
        acquire_timeout: Duration,
        statement_timeout: Duration,
    ) -> Result<DatabaseSettings, ConfigError> {
        let engine = Engine::of_url(&url)
            .ok_or_else(|| invalid("DATABASE_URL", "must start with sqlite: or postgres://"))?;
        if statement_timeout < Duration::from_millis(100)
            || statement_timeout > Duration::from_secs(60)
        {
            return Err(invalid(
                "PORTCULLIS_DB_STATEMENT_TIMEOUT",
                "must be between 100ms and 60s",
            ));
        }
        Ok(DatabaseSettings {
            engine,
            url,
            max_connections,
            acquire_timeout,
            statement_timeout,
        })
    }
}

#[derive(Debug, Clone)]
pub struct JwtKeySpec {
    pub kid: String,
    pub secret: SecretSlice<u8>,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// Signing key first, then keys still accepted for verification.
    /// `None`: a key generated once into the data directory.
    pub keys: Option<Vec<JwtKeySpec>>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Lifetime of a session and of its refresh tokens.
    pub refresh_ttl: Duration,
    /// How long a just-retired refresh token may still be exchanged for its
    /// successor (a second tab refreshing at the same moment).
    pub refresh_grace: Duration,
    /// How recent a sign-in must be for sensitive actions without re-entering
    /// the password.
    pub reauth_window: Duration,
    /// End sessions unused for this long (checked when tokens are renewed,
    /// so at the granularity of the access-token lifetime). `None`: only the
    /// absolute lifetime applies.
    pub idle_timeout: Option<Duration>,
    /// Refresh-token rotations a session may make per minute; more are
    /// answered 429 (a client refreshing in a loop).
    pub max_rotations_per_minute: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_chars: usize,
    pub max_chars: usize,
}

/// How long the hashing pool keeps its argon2 memories (19 MiB each) once
/// no password comes: long enough that a busy spell never pays for fresh
/// memory, short enough that an instance is back at its idle footprint soon
/// after a login storm.
pub const IDLE_RELEASE: Duration = Duration::from_secs(10);

/// The bounded pool every password hash and verification runs in (see
/// `server::hashing`).
#[derive(Debug, Clone, Copy)]
pub struct HashingSettings {
    /// Computations at once; each holds 19 MiB while it runs, and the
    /// memories are kept until the pool has been idle for `idle_release`.
    pub concurrency: usize,
    /// Jobs that may wait for a worker; more are refused at once.
    pub queue_capacity: usize,
    /// The longest a job may wait for a worker before it is refused.
    pub queue_timeout: Duration,
    /// How long the pool keeps its argon2 memories with no job coming.
    pub idle_release: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct ThrottleSettings {
    /// Failures per account before backoff starts.
    pub account_max_failures: u32,
    /// Failures per client IP before backoff starts.
    pub ip_max_failures: u32,
    /// Failures per account, from any device known or not, before backoff
    /// starts: the backstop behind the device-cookie exemption.
    pub account_backstop_failures: u32,
    /// Registrations (of any outcome) per client network, and per address,
    /// before backoff starts.
    pub register_ip_max_attempts: u32,
    pub register_email_max_attempts: u32,
    /// Mailed links (password reset) per address, and per client network,
    /// before backoff starts.
    pub recovery_email_max_requests: u32,
    pub recovery_ip_max_requests: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A counter whose last failure is older than this starts again.
    pub failure_window: Duration,
}

/// Outgoing mail: where it goes, who it is from, and how long its links
/// work.
#[derive(Clone)]
pub struct MailSettings {
    /// `smtp://` or `smtps://` URL, possibly with credentials. `None`: each
    /// message is written to `<data dir>/outbox/` instead.
    pub smtp_url: Option<secrecy::SecretString>,
    /// The `From` mailbox, e.g. `Portcullis <no-reply@example.com>`.
    pub from: lettre::message::Mailbox,
    /// How long a password-reset link works.
    pub reset_ttl: Duration,
    /// How long an address-confirmation link (verification, email change)
    /// works.
    pub verify_ttl: Duration,
    /// Whether an account whose address is not confirmed may sign in.
    pub require_verified_email: bool,
    /// The longest wait between two delivery attempts of one message.
    pub retry_max: Duration,
}

impl std::fmt::Debug for MailSettings {
    /// Never the SMTP URL: it may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp", &self.smtp_url.is_some())
            .field("from", &self.from.to_string())
            .field("reset_ttl", &self.reset_ttl)
            .field("verify_ttl", &self.verify_ttl)
            .field("require_verified_email", &self.require_verified_email)
            .finish_non_exhaustive()
    }
}

/// Session events for other services (Standard Webhooks): one endpoint.
#[derive(Clone)]
pub struct WebhookSettings {
    /// `None`: no webhooks are sent.
    pub url: Option<String>,
    /// The HMAC key: the bytes of `whsec_<base64>`.
    pub secret: Option<secrecy::SecretSlice<u8>>,
    /// The event types to send; empty: all.
    pub events: Vec<String>,
    /// How long one delivery attempt may take.
    pub timeout: Duration,
    /// How long the backoff keeps trying an event before marking it dead.
    pub give_up_after: Duration,
}

impl std::fmt::Debug for WebhookSettings {
    /// Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("enabled", &self.url.is_some())
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

fn parse_webhooks(vars: &Vars<'_>) -> Result<WebhookSettings, ConfigError> {
    let url = vars
        .get("PORTCULLIS_WEBHOOK_URL")
        .map(|raw| raw.trim().to_string())
        .filter(|raw| !raw.is_empty());
    if let Some(url) = &url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(invalid(
            "PORTCULLIS_WEBHOOK_URL",
            "must be an http:// or https:// URL",
        ));
    }
    let secret = match (&url, vars.get("PORTCULLIS_WEBHOOK_SECRET")) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(invalid(
                "PORTCULLIS_WEBHOOK_SECRET",
                "is required with PORTCULLIS_WEBHOOK_URL: whsec_ followed by base64",
            ));
        }
        (Some(_), Some(raw)) => {
            use base64::{Engine as _, engine::general_purpose::STANDARD};
            let bytes = raw
                .trim()
                .strip_prefix("whsec_")
                .and_then(|b64| STANDARD.decode(b64).ok())
                .filter(|bytes| bytes.len() >= 24 && bytes.len() <= 64)
                .ok_or_else(|| {
                    invalid(
                        "PORTCULLIS_WEBHOOK_SECRET",
                        "must be whsec_ followed by the base64 of 24 to 64 random bytes",
                    )
                })?;
            Some(secrecy::SecretSlice::from(bytes))
        }
    };
    let events: Vec<String> = vars
        .get("PORTCULLIS_WEBHOOK_EVENTS")
        .map(|raw| {
            raw.split(',')
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if let Some(unknown) = events
        .iter()
        .find(|e| !crate::server::webhooks::event_types().any(|known| known == e.as_str()))
    {
        return Err(invalid(
            "PORTCULLIS_WEBHOOK_EVENTS",
            format!(
                "names an unknown event type {unknown:?}; known: {}",
                crate::server::webhooks::event_types()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let timeout = vars.duration("PORTCULLIS_WEBHOOK_TIMEOUT", "5s")?;
    if timeout < Duration::from_millis(100) || timeout > Duration::from_secs(60) {
        return Err(invalid(
            "PORTCULLIS_WEBHOOK_TIMEOUT",
            "must be between 100ms and 60s",
        ));
    }
    let give_up_after = vars.duration("PORTCULLIS_WEBHOOK_GIVE_UP_AFTER", "24h")?;
    if give_up_after < Duration::from_secs(1) || give_up_after > Duration::from_secs(7 * 24 * 3600)
    {
        return Err(invalid(
            "PORTCULLIS_WEBHOOK_GIVE_UP_AFTER",
            "must be between 1s and 7d",
        ));
    }
    Ok(WebhookSettings {
        url,
        secret,
        events,
        timeout,
        give_up_after,
    })
}

/// Live sign-out: the event streams signed-in pages hold open.
#[derive(Debug, Clone, Copy)]
pub struct LiveSettings {
    /// Streams one account may hold open on one instance.
    pub max_streams_per_user: usize,
    /// How often an idle stream sends a comment line, so that proxies
    /// between it and the browser keep it open.
    pub heartbeat: Duration,
}

fn parse_live(vars: &Vars<'_>) -> Result<LiveSettings, ConfigError> {
    let max_streams_per_user = vars.number("PORTCULLIS_LIVE_MAX_STREAMS_PER_USER", 20usize)?;
    if !(1..=1000).contains(&max_streams_per_user) {
        return Err(invalid(
            "PORTCULLIS_LIVE_MAX_STREAMS_PER_USER",
            "must be between 1 and 1000",
        ));
    }
    let heartbeat = vars.duration("PORTCULLIS_LIVE_HEARTBEAT", "15s")?;
    if heartbeat < Duration::from_secs(1) || heartbeat > Duration::from_secs(300) {
        return Err(invalid(
            "PORTCULLIS_LIVE_HEARTBEAT",
            "must be between 1s and 5m",
        ));
    }
    Ok(LiveSettings {
        max_streams_per_user,
        heartbeat,
    })
}

/// Which proxies' word on the client address is taken (see
/// `client::client_address`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// Proxies in front of this server that append the client address; 0:
    /// the socket peer is the client and forwarding headers are ignored.
    pub trusted_hops: u8,
    /// The header those proxies write.
    pub header: ForwardedHeader,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for=proxy1`.
    Forwarded,
}

#[derive(Debug, Clone, Copy)]
pub struct MaintenanceSettings {
    pub sweep_interval: Duration,
    pub audit_retention: Duration,
    /// How long revoked sessions are kept (for "your session ended" answers
    /// and investigations) before the sweep deletes them.
    pub revoked_retention: Duration,
}

/// How long the server waits for slow or silent clients (see
/// `server::serve`). Without these, a client that opens a connection and
/// then trickles or sends nothing holds a task and a file descriptor forever.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings {
    /// The longest wait for a complete request head: from the accept on a new
    /// connection, from the end of the previous response on a kept-alive one.
    pub header_read_timeout: Duration,
    /// The longest a request body may take to arrive in full, from the moment
    /// its head has been read. A total, not a per-read, budget, so trickling
    /// a byte at a time does not extend it.
    pub body_read_timeout: Duration,
    /// The longest the application may take to produce an answer once the
    /// request has been read; past it the client gets `503` and the work is
    /// dropped.
    pub request_timeout: Duration,
    /// How long a connection with no request in flight may stay silent
    /// before it is closed.
    pub keepalive_timeout: Duration,
}

impl Settings {
    /// Reads `.env` if present (without overriding the environment), then the
    /// environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        let _ = dotenvy::dotenv();
        let mut leptos = leptos::config::get_configuration(None)
            .map_err(|e| ConfigError::Leptos(e.to_string()))?
            .leptos_options;
        if leptos.output_name.is_empty() {
            // Built by plain cargo (tests) rather than cargo-leptos.
            leptos.output_name = env!("CARGO_PKG_NAME").into();
        }
        Settings::from_lookup(|key| std::env::var(key).ok(), leptos)
    }

    /// Builds settings from any key lookup; tests pass a map.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        leptos: LeptosOptions,
    ) -> Result<Settings, ConfigError> {
        let vars = Vars(&lookup);
        let data_dir = PathBuf::from(vars.string("PORTCULLIS_DATA_DIR", "./data"));
        let database_url = vars
            .get("DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}/portcullis.db", data_dir.display()));
        let public_url = match vars.get("PORTCULLIS_PUBLIC_URL") {
            Some(url) => Some(parse_origin(&url)?),
            None => None,
        };
        let passwords = PasswordPolicy {
            min_chars: vars.number("PORTCULLIS_PASSWORD_MIN_LENGTH", 12)?,
            max_chars: vars.number("PORTCULLIS_PASSWORD_MAX_LENGTH", 128)?,
        };
        if passwords.min_chars < 8 {
            return Err(invalid(
                "PORTCULLIS_PASSWORD_MIN_LENGTH",
                "must be at least 8",
            ));
        }
        if passwords.max_chars < passwords.min_chars.max(64) || passwords.max_chars > 1024 {
            return Err(invalid(
                "PORTCULLIS_PASSWORD_MAX_LENGTH",
                "must be between 64 (and the minimum) and 1024",
            ));
        }
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let concurrency = vars.number("PORTCULLIS_HASH_CONCURRENCY", cores)?;
        if !(1..=256).contains(&concurrency) {
            return Err(invalid(
                "PORTCULLIS_HASH_CONCURRENCY",
                "must be between 1 and 256",
            ));
        }
        let hashing = HashingSettings {
            concurrency,
            queue_capacity: vars.number("PORTCULLIS_HASH_QUEUE_CAPACITY", concurrency * 64)?,
            queue_timeout: vars.duration("PORTCULLIS_HASH_QUEUE_TIMEOUT", "2s")?,
            idle_release: IDLE_RELEASE,
        };
        if !(1..=100_000).contains(&hashing.queue_capacity) {
            return Err(invalid(
                "PORTCULLIS_HASH_QUEUE_CAPACITY",
                "must be between 1 and 100000",
            ));
        }
        if hashing.queue_timeout.is_zero() || hashing.queue_timeout > Duration::from_secs(60) {
            return Err(invalid(
                "PORTCULLIS_HASH_QUEUE_TIMEOUT",
                "must be positive and at most 60s",
            ));
        }
        let jwt = JwtSettings {
            keys: vars
                .get("PORTCULLIS_JWT_KEYS")
                .map(|v| parse_jwt_keys(&v))
                .transpose()?,
            issuer: vars.string("PORTCULLIS_JWT_ISSUER", "portcullis"),
            audience: vars.string("PORTCULLIS_JWT_AUDIENCE", "portcullis"),
            access_ttl: vars.duration("PORTCULLIS_ACCESS_TOKEN_TTL", "15m")?,
            leeway: vars.duration("PORTCULLIS_JWT_LEEWAY", "5s")?,
        };
        let sessions = SessionSettings {
            refresh_ttl: vars.duration("PORTCULLIS_REFRESH_TOKEN_TTL", "30d")?,
            refresh_grace: vars.duration("PORTCULLIS_REFRESH_GRACE", "10s")?,
            reauth_window: vars.duration("PORTCULLIS_REAUTH_WINDOW", "10m")?,
            idle_timeout: match vars.get("PORTCULLIS_SESSION_IDLE_TIMEOUT") {
                Some(_) => Some(vars.duration("PORTCULLIS_SESSION_IDLE_TIMEOUT", "")?),
                None => None,
            },
            max_rotations_per_minute: vars.number("PORTCULLIS_REFRESH_MAX_PER_MINUTE", 10)?,
        };
        if !(1..=1000).contains(&sessions.max_rotations_per_minute) {
            return Err(invalid(
                "PORTCULLIS_REFRESH_MAX_PER_MINUTE",
                "must be between 1 and 1000",
            ));
        }
        if jwt.access_ttl.is_zero() || jwt.access_ttl >= sessions.refresh_ttl {
            return Err(invalid(
                "PORTCULLIS_ACCESS_TOKEN_TTL",
                "must be positive and shorter than PORTCULLIS_REFRESH_TOKEN_TTL",
            ));
        }
        if sessions
            .idle_timeout
            .is_some_and(|idle| idle <= jwt.access_ttl)
        {
            return Err(invalid(
                "PORTCULLIS_SESSION_IDLE_TIMEOUT",
                "must be longer than PORTCULLIS_ACCESS_TOKEN_TTL (activity is seen when tokens are renewed)",
            ));
        }
        if jwt.leeway > Duration::from_secs(300) {
            return Err(invalid(
                "PORTCULLIS_JWT_LEEWAY",
                "must be at most 5 minutes",
            ));
        }
        if sessions.refresh_grace > Duration::from_secs(120) {
            return Err(invalid(
                "PORTCULLIS_REFRESH_GRACE",
                "must be at most 2 minutes",
            ));
        }
        let throttle = ThrottleSettings {
            account_max_failures: vars.number("PORTCULLIS_LOGIN_MAX_FAILURES", 5)?,
            ip_max_failures: vars.number("PORTCULLIS_LOGIN_IP_MAX_FAILURES", 50)?,
            account_backstop_failures: vars.number("PORTCULLIS_LOGIN_BACKSTOP_FAILURES", 100)?,
            register_ip_max_attempts: vars.number("PORTCULLIS_REGISTER_IP_MAX_ATTEMPTS", 20)?,
            register_email_max_attempts: vars
                .number("PORTCULLIS_REGISTER_EMAIL_MAX_ATTEMPTS", 3)?,
            recovery_email_max_requests: vars
                .number("PORTCULLIS_RECOVERY_EMAIL_MAX_REQUESTS", 3)?,
            recovery_ip_max_requests: vars.number("PORTCULLIS_RECOVERY_IP_MAX_REQUESTS", 20)?,
            base_delay: vars.duration("PORTCULLIS_LOGIN_BACKOFF_BASE", "1s")?,
            max_delay: vars.duration("PORTCULLIS_LOGIN_BACKOFF_MAX", "15m")?,
            failure_window: vars.duration("PORTCULLIS_LOGIN_FAILURE_WINDOW", "1h")?,
        };
        for (key, limit) in [
            (
                "PORTCULLIS_LOGIN_MAX_FAILURES",
                throttle.account_max_failures,
            ),
            ("PORTCULLIS_LOGIN_IP_MAX_FAILURES", throttle.ip_max_failures),
            (
                "PORTCULLIS_LOGIN_BACKSTOP_FAILURES",
                throttle.account_backstop_failures,
            ),
            (
                "PORTCULLIS_REGISTER_IP_MAX_ATTEMPTS",
                throttle.register_ip_max_attempts,
            ),
            (
                "PORTCULLIS_REGISTER_EMAIL_MAX_ATTEMPTS",
                throttle.register_email_max_attempts,
            ),
            (
                "PORTCULLIS_RECOVERY_EMAIL_MAX_REQUESTS",
                throttle.recovery_email_max_requests,
            ),
            (
                "PORTCULLIS_RECOVERY_IP_MAX_REQUESTS",
                throttle.recovery_ip_max_requests,
            ),
        ] {
            if limit == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        let maintenance = MaintenanceSettings {
            sweep_interval: vars.duration("PORTCULLIS_SWEEP_INTERVAL", "1h")?,
            audit_retention: vars.duration("PORTCULLIS_AUDIT_RETENTION", "90d")?,
            revoked_retention: vars.duration("PORTCULLIS_REVOKED_SESSION_RETENTION", "7d")?,
        };
        if maintenance.sweep_interval.is_zero() {
            return Err(invalid("PORTCULLIS_SWEEP_INTERVAL", "must be positive"));
        }
        let database = DatabaseSettings::for_url(
            database_url,
            vars.number("PORTCULLIS_DB_MAX_CONNECTIONS", 10)?,
            vars.duration("PORTCULLIS_DB_ACQUIRE_TIMEOUT", "3s")?,
            vars.duration("PORTCULLIS_DB_STATEMENT_TIMEOUT", "3s")?,
        )?;
        let connections = connection_settings(&vars, &hashing, &database)?;
        let mail = parse_mail(&vars)?;
        let webhooks = parse_webhooks(&vars)?;
        let live = parse_live(&vars)?;
        Ok(Settings {
            leptos,
            data_dir,
            database,
            public_url,
            secure_cookies: vars
                .get("PORTCULLIS_SECURE_COOKIES")
                .map(|v| parse_bool("PORTCULLIS_SECURE_COOKIES", &v))
                .transpose()?,
            jwt,
            data_keys: vars
                .get("PORTCULLIS_DATA_KEY")
                .map(|v| parse_data_keys(&v))
                .transpose()?,
            sessions,
            passwords,
            hashing,
            throttle,
            maintenance,
            connections,
            mail,
            webhooks,
            live,
            proxies: parse_proxies(&vars)?,
            allow_insecure_http: vars
                .get("PORTCULLIS_ALLOW_INSECURE_HTTP")
                .map(|v| parse_bool("PORTCULLIS_ALLOW_INSECURE_HTTP", &v))
                .transpose()?
                .unwrap_or(false),
        })
    }
}

/// Where browsers reach an instance, derived once from the settings and the
/// address it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origins {
    /// The origin browsers use; state-changing requests must come from it.
    pub public: String,
    /// Origins accepted in `Origin` headers: the public one, and in local
    /// development its `localhost`/`127.0.0.1` twin.
    pub allowed: Vec<String>,
    /// Whether cookies are `Secure` (and `__Host-` prefixed).
    pub secure: bool,
}

impl Settings {
    /// Refuses to serve session cookies without `Secure` to anything beyond
    /// this machine: listening beyond loopback needs an `https` public URL
    /// (the server behind TLS), or the explicit lab override.
    pub fn check_transport_security(&self, listen: SocketAddr) -> Result<(), ConfigError> {
        let secure = self.origins(listen).secure;
        if secure || listen.ip().is_loopback() || self.allow_insecure_http {
            return Ok(());
        }
        Err(invalid(
            "PORTCULLIS_PUBLIC_URL",
            format!(
                "the server would listen on {listen}, beyond this machine, with cookies that are \
                 not Secure: set PORTCULLIS_PUBLIC_URL=https://… (behind TLS), or \
                 PORTCULLIS_ALLOW_INSECURE_HTTP=true for a plain-HTTP lab"
            ),
        ))
    }

    /// The origins of an instance bound to `local_addr`: the configured
    /// public URL, or, in local development, `http://` and the address.
    pub fn origins(&self, local_addr: SocketAddr) -> Origins {
        let public = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", development_host(local_addr)));
        let secure = self
            .secure_cookies
            .unwrap_or(public.starts_with("https://"));
        let allowed = match self.public_url {
            Some(_) => vec![public.clone()],
            None => development_origins(&public, local_addr),
        };
        Origins {
            public,
            allowed,
            secure,
        }
    }
}

/// The development origin's host: `localhost` for a loopback or unspecified
/// bind (`127.0.0.1:3000` and `0.0.0.0:3000` are both `localhost:3000`), so
/// mailed links, and passkeys, which need a domain rather than an address,
/// work as they are; any other address as it is.
fn development_host(addr: SocketAddr) -> String {
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// Without a configured public URL (local development), the page may be open
/// as `127.0.0.1` or as `localhost`; both are this machine.
fn development_origins(public_origin: &str, addr: SocketAddr) -> Vec<String> {
    let mut origins = vec![public_origin.to_string()];
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        for host in ["127.0.0.1", "localhost"] {
            let origin = format!("http://{host}:{}", addr.port());
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
    }
    origins
}

/// The connection timeouts, each positive and at most ten minutes.
fn connection_settings(
    vars: &Vars<'_>,
    hashing: &HashingSettings,
    database: &DatabaseSettings,
) -> Result<ConnectionSettings, ConfigError> {
    let bounded = |key: &'static str, default: &str| -> Result<Duration, ConfigError> {
        let value = vars.duration(key, default)?;
        if value.is_zero() || value > Duration::from_secs(600) {
            return Err(invalid(key, "must be positive and at most 10m"));
        }
        Ok(value)
    };
    let header_read_timeout = bounded("PORTCULLIS_HEADER_READ_TIMEOUT", "10s")?;
    let connections = ConnectionSettings {
        header_read_timeout,
        body_read_timeout: bounded("PORTCULLIS_BODY_READ_TIMEOUT", "10s")?,
        request_timeout: bounded("PORTCULLIS_REQUEST_TIMEOUT", "30s")?,
        // Unset, it follows a header-read timeout shorter than its default.
        keepalive_timeout: match vars.get("PORTCULLIS_KEEPALIVE_TIMEOUT") {
            Some(_) => bounded("PORTCULLIS_KEEPALIVE_TIMEOUT", "")?,
            None => Duration::from_secs(5).min(header_read_timeout),
        },
    };
    // A login may wait its whole budget for a hashing worker and for a
    // database connection, and each of those answers 503 itself when it runs
    // out. The request timeout is the backstop behind them, never the limit
    // that cuts a legitimate login short.
    if connections.request_timeout <= hashing.queue_timeout + database.acquire_timeout {
        return Err(invalid(
            "PORTCULLIS_REQUEST_TIMEOUT",
            "must be longer than PORTCULLIS_HASH_QUEUE_TIMEOUT plus PORTCULLIS_DB_ACQUIRE_TIMEOUT",
        ));
    }
    // hyper's header-read timer also runs while a kept-alive connection waits
    // for its next request, so a longer idle allowance would never apply.
    if connections.keepalive_timeout > connections.header_read_timeout {
        return Err(invalid(
            "PORTCULLIS_KEEPALIVE_TIMEOUT",
            "must be at most PORTCULLIS_HEADER_READ_TIMEOUT (the wait for a request head \
             also bounds the idle time between requests)",
        ));
    }
    Ok(connections)
}

struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    fn get(&self, key: &str) -> Option<String> {
        (self.0)(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or_else(|| default.to_string())
    }

    fn duration(&self, key: &'static str, default: &str) -> Result<Duration, ConfigError> {
        let raw = self.string(key, default);
        humantime::parse_duration(&raw)
            .map_err(|e| invalid(key, format!("{e}; use a duration such as 15m, 10s or 30d")))
    }

    fn number<T: std::str::FromStr>(
        &self,
        key: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        match self.get(key) {
            Some(raw) => raw
                .parse()
                .map_err(|_| invalid(key, "must be a whole number")),
            None => Ok(default),
        }
    }
}

fn parse_mail(vars: &Vars<'_>) -> Result<MailSettings, ConfigError> {
    const URL: &str = "PORTCULLIS_SMTP_URL";
    let smtp_url = match vars.get(URL) {
        Some(raw) => {
            // Checked here, so a bad URL stops startup with a message that
            // names the variable but never repeats it (it may hold a password).
            let scheme_ok = raw.starts_with("smtp://") || raw.starts_with("smtps://");
            if !scheme_ok
                || lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(&raw).is_err()
            {
                return Err(invalid(
                    URL,
                    "must be an smtp:// or smtps:// URL such as smtp://127.0.0.1:2525 or \
                     smtps://user:password@mail.example.com:465",
                ));
            }
            Some(secrecy::SecretString::from(raw))
        }
        None => None,
    };
    let from = vars
        .string("PORTCULLIS_MAIL_FROM", "Portcullis <no-reply@localhost>")
        .parse::<lettre::message::Mailbox>()
        .map_err(|_| {
            invalid(
                "PORTCULLIS_MAIL_FROM",
                "must be an address such as no-reply@example.com or \
                 \"Portcullis <no-reply@example.com>\"",
            )
        })?;
    let reset_ttl = vars.duration("PORTCULLIS_RESET_TOKEN_TTL", "30m")?;
    if reset_ttl < Duration::from_secs(60) || reset_ttl > Duration::from_secs(24 * 3600) {
        return Err(invalid(
            "PORTCULLIS_RESET_TOKEN_TTL",
            "must be between 1m and 24h",
        ));
    }
    let verify_ttl = vars.duration("PORTCULLIS_VERIFY_TOKEN_TTL", "24h")?;
    if verify_ttl < Duration::from_secs(60) || verify_ttl > Duration::from_secs(7 * 24 * 3600) {
        return Err(invalid(
            "PORTCULLIS_VERIFY_TOKEN_TTL",
            "must be between 1m and 7d",
        ));
    }
    let require_verified_email = match vars.get("PORTCULLIS_REQUIRE_VERIFIED_EMAIL") {
        Some(value) => parse_bool("PORTCULLIS_REQUIRE_VERIFIED_EMAIL", &value)?,
        None => false,
    };
    let retry_max = vars.duration("PORTCULLIS_MAIL_RETRY_MAX", "10m")?;
    if retry_max < Duration::from_millis(100) || retry_max > Duration::from_secs(24 * 3600) {
        return Err(invalid(
            "PORTCULLIS_MAIL_RETRY_MAX",
            "must be between 100ms and 24h",
        ));
    }
    Ok(MailSettings {
        smtp_url,
        from,
        reset_ttl,
        verify_ttl,
        require_verified_email,
        retry_max,
    })
}

/// `PORTCULLIS_TRUSTED_PROXIES=N` and `PORTCULLIS_FORWARDED_HEADER`; the
/// older `PORTCULLIS_TRUST_FORWARDED_FOR=true` still means one proxy.
fn parse_proxies(vars: &Vars<'_>) -> Result<ProxySettings, ConfigError> {
    let legacy = vars
        .get("PORTCULLIS_TRUST_FORWARDED_FOR")
        .map(|v| parse_bool("PORTCULLIS_TRUST_FORWARDED_FOR", &v))
        .transpose()?;
    let trusted_hops = match (vars.get("PORTCULLIS_TRUSTED_PROXIES"), legacy) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "PORTCULLIS_TRUST_FORWARDED_FOR",
                "is replaced by PORTCULLIS_TRUSTED_PROXIES: set only that one",
            ));
        }
        (Some(_), None) => vars.number::<u8>("PORTCULLIS_TRUSTED_PROXIES", 0)?,
        (None, legacy) => u8::from(legacy.unwrap_or(false)),
    };
    if trusted_hops > 16 {
        return Err(invalid(
            "PORTCULLIS_TRUSTED_PROXIES",
            "must be between 0 and 16 (the proxies in front of this server)",
        ));
    }
    let header = match vars
        .string("PORTCULLIS_FORWARDED_HEADER", "x-forwarded-for")
        .to_ascii_lowercase()
        .as_str()
    {
        "x-forwarded-for" => ForwardedHeader::XForwardedFor,
        "forwarded" => ForwardedHeader::Forwarded,
        _ => {
            return Err(invalid(
                "PORTCULLIS_FORWARDED_HEADER",
                "must be x-forwarded-for or forwarded",
            ));
        }
    };
    Ok(ProxySettings {
        trusted_hops,
        header,
    })
}

fn parse_bool(key: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(key, "must be true or false")),
    }
}

/// Accepts `scheme://host[:port]` with an optional trailing slash, and
/// returns the bare origin.
fn parse_origin(raw: &str) -> Result<String, ConfigError> {
    const KEY: &str = "PORTCULLIS_PUBLIC_URL";
    let trimmed = raw.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| invalid(KEY, "must start with https:// or http://"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(invalid(
            KEY,
            "must be an origin like https://auth.example.com, without a path",
        ));
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// `kid:base64secret[,kid:base64secret…]`; the first key signs.
pub(crate) fn parse_jwt_keys(raw: &str) -> Result<Vec<JwtKeySpec>, ConfigError> {
    parse_key_list(raw, "PORTCULLIS_JWT_KEYS", "-_.", |kid, secret| {
        (secret.len() < 32).then(|| format!("the secret of key {kid:?} must be at least 32 bytes"))
    })
}

/// `PORTCULLIS_DATA_KEY`: `kid:base64[,kid:base64…]`, each exactly 32 bytes;
/// the first seals, all open. A key id is the sealed values' prefix, so it
/// has no `.`.
pub(crate) fn parse_data_keys(raw: &str) -> Result<Vec<JwtKeySpec>, ConfigError> {
    parse_key_list(raw, "PORTCULLIS_DATA_KEY", "-_", |kid, secret| {
        (secret.len() != 32).then(|| format!("the secret of key {kid:?} must be exactly 32 bytes"))
    })
}

/// A list of `kid:base64secret` keys, as both key variables write them.
fn parse_key_list(
    raw: &str,
    key: &'static str,
    kid_punctuation: &str,
    check: impl Fn(&str, &[u8]) -> Option<String>,
) -> Result<Vec<JwtKeySpec>, ConfigError> {
    let mut keys = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (kid, secret) = entry
            .split_once(':')
            .ok_or_else(|| invalid(key, "each key must be written kid:base64secret"))?;
        let kid = kid.trim();
        if kid.is_empty()
            || kid.len() > 64
            || !kid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || kid_punctuation.contains(c))
        {
            return Err(invalid(
                key,
                format!(
                    "a key id must be 1-64 characters of A-Z, a-z, 0-9, {}",
                    kid_punctuation
                        .chars()
                        .map(String::from)
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            ));
        }
        let secret = STANDARD.decode(secret.trim()).map_err(|_| {
            invalid(
                key,
                format!("the secret of key {kid:?} is not valid base64"),
            )
        })?;
        if let Some(problem) = check(kid, &secret) {
            return Err(invalid(key, problem));
        }
        if keys.iter().any(|k: &JwtKeySpec| k.kid == kid) {
            return Err(invalid(key, format!("key id {kid:?} appears twice")));
        }
        keys.push(JwtKeySpec {
            kid: kid.to_string(),
            secret: secret.into(),
        });
    }
    if keys.is_empty() {
        return Err(invalid(key, "lists no key"));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(
            |k| map.get(k).cloned(),
            LeptosOptions::builder().output_name("portcullis").build(),
        )
    }

    #[test]
    fn mail_settings_are_checked_without_repeating_the_smtp_url() {
        let s = settings(&[]).expect("defaults are valid");
        assert!(s.mail.smtp_url.is_none(), "the outbox directory by default");
        assert_eq!(s.mail.reset_ttl, Duration::from_secs(30 * 60));
        assert_eq!(s.mail.verify_ttl, Duration::from_secs(24 * 3600));
        assert!(
            !s.mail.require_verified_email,
            "unverified accounts may sign in"
        );
        let s = settings(&[("PORTCULLIS_REQUIRE_VERIFIED_EMAIL", "true")]).expect("a flag");
        assert!(s.mail.require_verified_email);
        let s = settings(&[(
            "PORTCULLIS_SMTP_URL",
            "smtps://u:hunter2@mail.example.com:465",
        )])
        .expect("a valid URL");
        assert!(
            !format!("{s:?}").contains("hunter2"),
            "Debug never shows it"
        );
        for bad in ["http://u:hunter2@mail.example.com", "smtp://u:hunter2@[::1"] {
            let err = settings(&[("PORTCULLIS_SMTP_URL", bad)])
                .unwrap_err()
                .to_string();
            assert!(err.contains("PORTCULLIS_SMTP_URL"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        for (key, bad) in [
            ("PORTCULLIS_MAIL_FROM", "not an address"),
            ("PORTCULLIS_RESET_TOKEN_TTL", "10s"),
            ("PORTCULLIS_RESET_TOKEN_TTL", "2d"),
            ("PORTCULLIS_MAIL_RETRY_MAX", "1ms"),
            ("PORTCULLIS_VERIFY_TOKEN_TTL", "30s"),
            ("PORTCULLIS_VERIFY_TOKEN_TTL", "8d"),
            ("PORTCULLIS_REQUIRE_VERIFIED_EMAIL", "maybe"),
            ("PORTCULLIS_RECOVERY_EMAIL_MAX_REQUESTS", "0"),
        ] {
            let err = settings(&[(key, bad)]).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn live_stream_limits_are_bounded() {
        let s = settings(&[]).expect("defaults are valid");
        assert_eq!(s.live.max_streams_per_user, 20);
        assert_eq!(s.live.heartbeat, Duration::from_secs(15));
        for (key, bad) in [
            ("PORTCULLIS_LIVE_MAX_STREAMS_PER_USER", "0"),
            ("PORTCULLIS_LIVE_MAX_STREAMS_PER_USER", "1001"),
            ("PORTCULLIS_LIVE_MAX_STREAMS_PER_USER", "many"),
            ("PORTCULLIS_LIVE_HEARTBEAT", "100ms"),
            ("PORTCULLIS_LIVE_HEARTBEAT", "1h"),
            ("PORTCULLIS_LIVE_HEARTBEAT", "soon"),
        ] {
            let err = settings(&[(key, bad)]).unwrap_err().to_string();
            assert!(err.contains(key), "{key}={bad}: {err}");
        }
    }

    #[test]
    fn webhook_settings_need_a_real_secret_and_known_events() {
        let s = settings(&[]).expect("defaults are valid");
        assert!(s.webhooks.url.is_none(), "no webhooks by default");
        let url = (
            "PORTCULLIS_WEBHOOK_URL",
            "https://hooks.example.com/portcullis",
        );
        let secret = (
            "PORTCULLIS_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        );
        let s = settings(&[url, secret]).expect("a URL and a secret");
        assert!(s.webhooks.secret.is_some());
        assert!(
            !format!("{:?}", s.webhooks).contains("MfKQ"),
            "never the secret"
        );
        for (extra, key) in [
            (vec![url], "PORTCULLIS_WEBHOOK_SECRET"),
            (
                vec![
                    url,
                    (
                        "PORTCULLIS_WEBHOOK_SECRET",
                        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    ),
                ],
                "PORTCULLIS_WEBHOOK_SECRET",
            ),
            (
                vec![url, ("PORTCULLIS_WEBHOOK_SECRET", "whsec_not base64!")],
                "PORTCULLIS_WEBHOOK_SECRET",
            ),
            (
                vec![("PORTCULLIS_WEBHOOK_URL", "ftp://x"), secret],
                "PORTCULLIS_WEBHOOK_URL",
            ),
            (
                vec![
                    url,
                    secret,
                    ("PORTCULLIS_WEBHOOK_EVENTS", "session.revoked,user.nope"),
                ],
                "PORTCULLIS_WEBHOOK_EVENTS",
            ),
            (
                vec![url, secret, ("PORTCULLIS_WEBHOOK_TIMEOUT", "10ms")],
                "PORTCULLIS_WEBHOOK_TIMEOUT",
            ),
            (
                vec![url, secret, ("PORTCULLIS_WEBHOOK_GIVE_UP_AFTER", "0s")],
                "PORTCULLIS_WEBHOOK_GIVE_UP_AFTER",
            ),
        ] {
            let err = settings(&extra).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
            assert!(!err.contains("MfKQ"), "{err}");
        }
    }

    #[test]
    fn defaults_make_a_plain_start_work() {
        let s = settings(&[]).expect("defaults are valid");
        assert_eq!(s.database.url, "sqlite://./data/portcullis.db");
        assert_eq!(s.jwt.access_ttl, Duration::from_secs(15 * 60));
        assert_eq!(s.sessions.refresh_ttl, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(s.sessions.refresh_grace, Duration::from_secs(10));
        assert_eq!((s.passwords.min_chars, s.passwords.max_chars), (12, 128));
        assert!(s.jwt.keys.is_none() && s.public_url.is_none() && s.secure_cookies.is_none());
        let c = s.connections;
        assert_eq!(c.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.body_read_timeout, Duration::from_secs(10));
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.keepalive_timeout, Duration::from_secs(5));
        let short = settings(&[("PORTCULLIS_HEADER_READ_TIMEOUT", "2s")]).expect("valid");
        assert_eq!(short.connections.keepalive_timeout, Duration::from_secs(2));
    }

    #[test]
    fn data_dir_moves_the_default_database() {
        let s = settings(&[("PORTCULLIS_DATA_DIR", "/var/lib/portcullis")]).unwrap();
        assert_eq!(s.database.url, "sqlite:///var/lib/portcullis/portcullis.db");
    }

    #[test]
    fn jwt_keys_parse_in_order_and_never_echo_the_secret() {
        let secret = STANDARD.encode([7u8; 32]);
        let s = settings(&[(
            "PORTCULLIS_JWT_KEYS",
            &format!("new:{secret}, old:{secret}"),
        )])
        .unwrap();
        let kids: Vec<_> = s.jwt.keys.unwrap().into_iter().map(|k| k.kid).collect();
        assert_eq!(kids, ["new", "old"]);

        let short = STANDARD.encode([7u8; 16]);
        let err = settings(&[("PORTCULLIS_JWT_KEYS", &format!("k:{short}"))])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("at least 32 bytes") && !err.contains(&short),
            "{err}"
        );
        for bad in [
            "nokid",
            "k:not base64!",
            ":AAAA",
            &format!("a:{secret},a:{secret}"),
        ] {
            assert!(settings(&[("PORTCULLIS_JWT_KEYS", bad)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn data_keys_are_exactly_32_bytes_with_ids_that_can_prefix_a_sealed_value() {
        let key = STANDARD.encode([7u8; 32]);
        let other = STANDARD.encode([8u8; 32]);
        let parsed = settings(&[("PORTCULLIS_DATA_KEY", &format!("new:{other}, old:{key}"))])
            .unwrap()
            .data_keys
            .unwrap();
        assert_eq!(
            parsed.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
            ["new", "old"]
        );
        assert!(settings(&[]).unwrap().data_keys.is_none());
        for (bad, says) in [
            (
                format!("k:{}", STANDARD.encode([7u8; 31])),
                "exactly 32 bytes",
            ),
            (
                format!("k:{}", STANDARD.encode([7u8; 33])),
                "exactly 32 bytes",
            ),
            (format!("k.1:{key}"), "key id"),
            (format!("k:{key},k:{other}"), "appears twice"),
            ("k:not base64!".to_string(), "not valid base64"),
            (key.clone(), "kid:base64secret"),
            (",".to_string(), "lists no key"),
        ] {
            let error = settings(&[("PORTCULLIS_DATA_KEY", &bad)])
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("PORTCULLIS_DATA_KEY") && error.contains(says),
                "{bad}: {error}"
            );
            assert!(!error.contains(&key), "{error}");
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases = [
            ("PORTCULLIS_ACCESS_TOKEN_TTL", "soon"),
            ("PORTCULLIS_ACCESS_TOKEN_TTL", "60d"),
            ("PORTCULLIS_PASSWORD_MIN_LENGTH", "4"),
            ("PORTCULLIS_PASSWORD_MAX_LENGTH", "5000"),
            ("PORTCULLIS_SECURE_COOKIES", "maybe"),
            ("PORTCULLIS_PUBLIC_URL", "auth.example.com"),
            ("PORTCULLIS_PUBLIC_URL", "https://auth.example.com/path"),
            ("DATABASE_URL", "mysql://localhost/db"),
            ("PORTCULLIS_REFRESH_GRACE", "1h"),
            ("PORTCULLIS_HASH_CONCURRENCY", "0"),
            ("PORTCULLIS_HASH_CONCURRENCY", "many"),
            ("PORTCULLIS_HASH_QUEUE_CAPACITY", "0"),
            ("PORTCULLIS_HASH_QUEUE_TIMEOUT", "0s"),
            ("PORTCULLIS_HASH_QUEUE_TIMEOUT", "10m"),
            ("PORTCULLIS_ALLOW_INSECURE_HTTP", "maybe"),
            ("PORTCULLIS_LOGIN_IP_MAX_FAILURES", "0"),
            ("PORTCULLIS_REFRESH_MAX_PER_MINUTE", "0"),
            ("PORTCULLIS_LOGIN_BACKSTOP_FAILURES", "0"),
            ("PORTCULLIS_REFRESH_MAX_PER_MINUTE", "often"),
            ("PORTCULLIS_REGISTER_IP_MAX_ATTEMPTS", "0"),
            ("PORTCULLIS_REGISTER_EMAIL_MAX_ATTEMPTS", "many"),
            ("PORTCULLIS_DB_STATEMENT_TIMEOUT", "0s"),
            ("PORTCULLIS_DB_STATEMENT_TIMEOUT", "2m"),
            ("PORTCULLIS_DB_STATEMENT_TIMEOUT", "later"),
            ("PORTCULLIS_TRUSTED_PROXIES", "-1"),
            ("PORTCULLIS_TRUSTED_PROXIES", "17"),
            ("PORTCULLIS_TRUSTED_PROXIES", "yes"),
            ("PORTCULLIS_TRUST_FORWARDED_FOR", "maybe"),
            ("PORTCULLIS_FORWARDED_HEADER", "x-real-ip"),
            ("PORTCULLIS_HEADER_READ_TIMEOUT", "slow"),
            ("PORTCULLIS_HEADER_READ_TIMEOUT", "0s"),
            ("PORTCULLIS_HEADER_READ_TIMEOUT", "1h"),
            ("PORTCULLIS_BODY_READ_TIMEOUT", "10"),
            ("PORTCULLIS_BODY_READ_TIMEOUT", "0ms"),
            ("PORTCULLIS_REQUEST_TIMEOUT", "forever"),
            ("PORTCULLIS_REQUEST_TIMEOUT", "3s"),
            ("PORTCULLIS_KEEPALIVE_TIMEOUT", "0s"),
            ("PORTCULLIS_KEEPALIVE_TIMEOUT", "1m"),
        ];
        for (key, value) in cases {
            let err = settings(&[(key, value)]).unwrap_err().to_string();
            assert!(err.starts_with(key), "{key}={value}: {err}");
        }
    }

    #[test]
    fn the_development_origin_is_localhost_on_the_bound_port() {
        let plain = settings(&[]).unwrap();
        for bind in ["127.0.0.1:3000", "0.0.0.0:3000", "[::1]:3000"] {
            let origins = plain.origins(bind.parse().unwrap());
            assert_eq!(origins.public, "http://localhost:3000", "{bind}");
            assert!(!origins.secure);
            for twin in ["http://localhost:3000", "http://127.0.0.1:3000"] {
                assert!(origins.allowed.iter().any(|o| o == twin), "{bind}: {twin}");
            }
        }
        let lan = plain.origins("10.0.0.5:3000".parse().unwrap());
        assert_eq!(lan.public, "http://10.0.0.5:3000");
        assert_eq!(lan.allowed, vec!["http://10.0.0.5:3000".to_string()]);
        let public = settings(&[("PORTCULLIS_PUBLIC_URL", "https://auth.example.com")]).unwrap();
        let origins = public.origins("127.0.0.1:3000".parse().unwrap());
        assert_eq!(origins.public, "https://auth.example.com");
        assert_eq!(
            origins.allowed,
            vec!["https://auth.example.com".to_string()]
        );
    }

    #[test]
    fn plain_http_beyond_loopback_is_refused_unless_explicitly_allowed() {
        let beyond: SocketAddr = "0.0.0.0:3000".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        let plain = settings(&[]).unwrap();
        let err = plain
            .check_transport_security(beyond)
            .unwrap_err()
            .to_string();
        assert!(err.contains("PORTCULLIS_PUBLIC_URL"), "{err}");
        assert!(err.contains("PORTCULLIS_ALLOW_INSECURE_HTTP"), "{err}");
        assert!(plain.check_transport_security(loopback).is_ok());
        let lab = settings(&[("PORTCULLIS_ALLOW_INSECURE_HTTP", "true")]).unwrap();
        assert!(lab.check_transport_security(beyond).is_ok());
        let tls = settings(&[("PORTCULLIS_PUBLIC_URL", "https://auth.example.com")]).unwrap();
        assert!(tls.check_transport_security(beyond).is_ok());
        let forced_off = settings(&[
            ("PORTCULLIS_PUBLIC_URL", "https://auth.example.com"),
            ("PORTCULLIS_SECURE_COOKIES", "false"),
        ])
        .unwrap();
        assert!(forced_off.check_transport_security(beyond).is_err());
    }

    #[test]
    fn trusted_proxies_are_counted_and_the_old_switch_means_one() {
        assert_eq!(settings(&[]).unwrap().proxies, ProxySettings::default());
        let two = settings(&[
            ("PORTCULLIS_TRUSTED_PROXIES", "2"),
            ("PORTCULLIS_FORWARDED_HEADER", "Forwarded"),
        ])
        .unwrap();
        assert_eq!(
            two.proxies,
            ProxySettings {
                trusted_hops: 2,
                header: ForwardedHeader::Forwarded
            }
        );
        let legacy = settings(&[("PORTCULLIS_TRUST_FORWARDED_FOR", "true")]).unwrap();
        assert_eq!(legacy.proxies.trusted_hops, 1);
        let both = settings(&[
            ("PORTCULLIS_TRUST_FORWARDED_FOR", "true"),
            ("PORTCULLIS_TRUSTED_PROXIES", "1"),
        ])
        .unwrap_err()
        .to_string();
        assert!(both.contains("PORTCULLIS_TRUSTED_PROXIES"), "{both}");
    }

    #[test]
    fn public_url_is_reduced_to_its_origin() {
        let s = settings(&[("PORTCULLIS_PUBLIC_URL", "https://Auth.Example.com/")]).unwrap();
        assert_eq!(s.public_url.as_deref(), Some("https://auth.example.com"));
    }
}
