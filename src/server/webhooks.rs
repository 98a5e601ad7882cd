//! Session and account events for other services: signed webhooks
//! (Standard Webhooks 1.0) to one configured endpoint, delivered from
//! `session_events`, which the database's triggers fill in the transaction
//! of every session and account change (and the throttle, with a lock's
//! audit row).
//!
//! Each event is claimed with a lease, sent with `webhook-id` (stable across
//! retries, so receivers can deduplicate), `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`; a 2xx
//! delivers it, anything else is retried with exponential backoff and
//! jitter, up to an hour apart, for a day; then it is marked dead. A slow or
//! dead receiver never touches a request: delivery runs in its own task.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::Sha256;

use super::{
    client::describe_device,
    config::WebhookSettings,
    db::{SessionEvent, Store},
    time::Timestamp,
};

/// How long a claimed event is reserved: longer than one attempt may take.
fn lease(settings: &WebhookSettings) -> Duration {
    settings.timeout + Duration::from_secs(10)
}
const POLL: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The Standard Webhooks signature of one message: `v1,<base64>`.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-id` of an event: stable for its every attempt.
pub fn message_id(event: &SessionEvent) -> String {
    format!("msg_{}", event.id)
}

/// The event's type on the wire.
pub fn event_type(event: &SessionEvent) -> &'static str {
    type_of_kind(&event.kind)
}

/// The stored kinds of event and their wire types.
const TYPES: [(&str, &str); 9] = [
    ("created", "session.created"),
    ("revoked", "session.revoked"),
    ("user_created", "user.created"),
    ("password_changed", "user.password_changed"),
    ("email_changed", "user.email_changed"),
    ("disabled", "user.disabled"),
    ("enabled", "user.enabled"),
    ("deleted", "user.deleted"),
    ("throttled", "login.throttled"),
];

/// The wire type of a stored event kind (`unknown` for a kind a newer
/// version wrote).
pub fn type_of_kind(kind: &str) -> &'static str {
    TYPES
        .iter()
        .find(|(stored, _)| *stored == kind)
        .map_or("unknown", |(_, wire)| wire)
}

/// Every event type, as `PORTCULLIS_WEBHOOK_EVENTS` may name them.
pub fn event_types() -> impl Iterator<Item = &'static str> {
    TYPES.iter().map(|(_, wire)| *wire)
}

/// Where an event's delivery stands: `delivered`, `dead` or `pending`.
pub fn delivery_state(delivery: &crate::server::db::EventDelivery) -> &'static str {
    if delivery.delivered_at.is_some() {
        "delivered"
    } else if delivery.dead_at.is_some() {
        "dead"
    } else {
        "pending"
    }
}

/// Why a session ended, in the documented vocabulary.
pub fn reason(stored: Option<&str>) -> &'static str {
    match stored.unwrap_or_default() {
        "logout" => "logout",
        "logout_others" => "logout_others",
        "logout_everywhere" => "logout_global",
        "revoked_by_user" => "device_revoked",
        "password_changed" => "password_changed",
        "password_reset" => "password_reset",
        "refresh_token_reuse" => "refresh_reuse",
        "admin" => "admin",
        "idle_timeout" => "idle_timeout",
        "email_changed" => "email_changed",
        "mfa_disabled" => "mfa_disabled",
        _ => "expired",
    }
}

/// The JSON body: `{"type", "timestamp", "data"}`. No token, no hash.
pub fn payload(event: &SessionEvent) -> String {
    let user_id = event.user_id.map(|id| id.to_string());
    let session_id = event.session_id.map(|id| id.to_string());
    let data = match event.kind.as_str() {
        "created" => json!({
            "user_id": user_id,
            "session_id": session_id,
            "device": describe_device(event.user_agent.as_deref()),
            "ip": event.ip,
        }),
        "revoked" => json!({
            "user_id": user_id,
            "session_id": session_id,
            "reason": reason(event.reason.as_deref()),
            "access_token_exp": event.access_expires_at,
        }),
        "throttled" => json!({
            "user_id": user_id,
            "key_kind": event.key_kind,
            "network": event.network,
            "locked_until": event.locked_until.map(|until| until.to_rfc3339()),
        }),
        _ => json!({ "user_id": user_id }),
    };
    json!({
        "type": event_type(event),
        "timestamp": event.occurred_at.to_rfc3339(),
        "data": data,
    })
    .to_string()
}

/// The wait before attempt `attempts + 1`: 1 s doubling to an hour, each
/// with up to 25% jitter so that retries of many events spread out.
pub fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let base = Duration::from_secs(1u64 << exponent).min(MAX_BACKOFF);
    let jitter = rand::random::<f64>() * 0.25;
    base.mul_f64(1.0 + jitter).min(MAX_BACKOFF)
}

/// Starts the delivery worker, if a webhook endpoint is configured.
pub fn spawn(store: Store, settings: WebhookSettings) -> Option<tokio::task::JoinHandle<()>> {
    let url = settings.url.clone()?;
    let client = match reqwest::Client::builder()
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %error, "cannot build the webhook client; no webhooks are sent");
            return None;
        }
    };
    // The host only: a URL may carry credentials.
    let host = reqwest::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    tracing::info!(host = %host, "session events are sent as webhooks");
    Some(tokio::spawn(async move {
        loop {
            drain(&store, &client, &url, &settings).await;
            tokio::time::sleep(POLL).await;
        }
    }))
}

async fn drain(store: &Store, client: &reqwest::Client, url: &str, settings: &WebhookSettings) {
    loop {
        let event = match store
            .claim_session_event(Timestamp::now(), lease(settings))
            .await
        {
            Ok(Some(event)) => event,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(error = ?error, "cannot read the session events; will retry");
                return;
            }
        };
        let result = deliver(store, client, url, settings, &event).await;
        if let Err(error) = result {
            tracing::warn!(event = event.id, error = ?error, "cannot record a webhook delivery");
            return;
        }
    }
}

async fn deliver(
    store: &Store,
    client: &reqwest::Client,
    url: &str,
    settings: &WebhookSettings,
    event: &SessionEvent,
) -> Result<(), crate::server::db::StoreError> {
    let kind = event_type(event);
    if !settings.events.is_empty() && !settings.events.iter().any(|e| e == kind) {
        return store
            .session_event_delivered(event.id, None, Timestamp::now())
            .await;
    }
    let Some(secret) = &settings.secret else {
        return Ok(());
    };
    let id = message_id(event);
    let body = payload(event);
    let timestamp = Timestamp::now().unix_seconds();
    let signature = sign(secret.expose_secret(), &id, timestamp, &body);
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let now = Timestamp::now();
    let (status, error) = match sent {
        Ok(response) if response.status().is_success() => {
            return store
                .session_event_delivered(event.id, Some(response.status().as_u16()), now)
                .await;
        }
        Ok(response) => (
            Some(response.status().as_u16()),
            format!("answered {}", response.status()),
        ),
        Err(error) => (None, short_error(&error)),
    };
    let wait = backoff(event.attempts);
    let dead = (event.occurred_at.until(now) >= settings.give_up_after).then_some(now);
    if dead.is_some() {
        tracing::warn!(event = %id, attempts = event.attempts, "webhook undeliverable for a day; marked dead");
    } else {
        tracing::warn!(event = %id, attempts = event.attempts, retry_in = ?wait, error = %error, "webhook delivery failed; will retry");
    }
    store
        .session_event_failed(event.id, status, &error, now.plus(wait), dead)
        .await
}

/// A transport error without the URL (it may carry credentials).
fn short_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    kind.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signatures_match_the_specification_example() {
        let secret = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn every_stored_kind_has_its_documented_type() {
        assert_eq!(type_of_kind("created"), "session.created");
        assert_eq!(type_of_kind("revoked"), "session.revoked");
        assert_eq!(type_of_kind("deleted"), "user.deleted");
        assert_eq!(type_of_kind("throttled"), "login.throttled");
        assert_eq!(type_of_kind("something new"), "unknown");
        assert_eq!(event_types().count(), 9);
    }

    #[test]
    fn stored_reasons_map_to_the_documented_ones() {
        assert_eq!(reason(Some("logout_everywhere")), "logout_global");
        assert_eq!(reason(Some("revoked_by_user")), "device_revoked");
        assert_eq!(reason(Some("refresh_token_reuse")), "refresh_reuse");
        assert_eq!(reason(None), "expired");
    }

    #[test]
    fn retries_back_off_to_an_hour_with_some_jitter() {
        assert!(backoff(1) >= Duration::from_secs(1) && backoff(1) <= Duration::from_millis(1250));
        assert!(backoff(5) >= Duration::from_secs(16));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
