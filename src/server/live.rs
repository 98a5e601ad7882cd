//! Live sign-out: every open page of a session that ends is told at once.
//!
//! A signed-in page holds `GET /auth/events`, a Server-Sent Events stream
//! of its own session. When the session ends, however it ends (any logout,
//! a device revoked, a password changed or reset, a refresh token replayed,
//! an operator's action, the sweeper's expiry), the stream says `ended`
//! with the reason and closes; the page then shows the login page.
//!
//! The news comes from the event source the webhooks are sent from
//! (`session_events`, written by triggers in the transaction of the change):
//! - PostgreSQL announces each end with `NOTIFY` at commit, and every
//!   instance `LISTEN`s. A listener that loses its connection reconnects
//!   and then re-checks every session it has streams for, so an end
//!   announced meanwhile is not missed.
//! - SQLite (one instance, one writer: ids are assigned in commit order) is
//!   tailed by id, a few times a second.
//!
//! It is an optimisation of what a page shows, never of security: every
//! request still checks its session row. Streams carry no token and nothing
//! personal, only `ready`, `ended` (`{"reason"}`), `renew` (the stream has
//! lasted an access token's lifetime: reconnect, which renews the cookies
//! like any request) and `closing` (this instance is shutting down:
//! reconnect, to another one).

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::response::{
    IntoResponse, Response,
    sse::{Event, KeepAlive, Sse},
};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::{
    sync::{oneshot, watch},
    time::Instant,
};

use super::{
    config::LiveSettings,
    db::{Pool, SessionId, Store, StoreResult, UserId},
    error::AuthError,
    service::Principal,
    time::Timestamp,
    webhooks,
};

/// The PostgreSQL channel the event source announces ends of sessions on
/// (migration `live_signout`), as `"<session id> <stored reason>"`.
pub const CHANNEL: &str = "portcullis_session_ended";

/// How often SQLite's event source is read.
const TAIL_EVERY: Duration = Duration::from_millis(100);
/// Events read at once from SQLite's event source.
const TAIL_BATCH: i64 = 1000;
/// How long a PostgreSQL listener waits between failed connections, at most.
const LONGEST_RECONNECT: Duration = Duration::from_secs(10);

/// The streams open on this instance, by session.
#[derive(Clone)]
pub struct LiveSessions(Arc<Inner>);

struct Inner {
    registry: Mutex<Registry>,
    settings: LiveSettings,
    /// Set when the instance shuts down: every stream says `closing`.
    closing: watch::Sender<bool>,
    /// The longest a stream lasts before it says `renew`.
    max_age: Duration,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    sessions: HashMap<SessionId, Vec<Listener>>,
    /// Open streams per account, for the cap.
    users: HashMap<UserId, usize>,
    open: usize,
}

struct Listener {
    id: u64,
    ended: oneshot::Sender<&'static str>,
}

/// One open stream's place in the registry; leaving it when dropped (the
/// client went away, or the stream ended).
pub struct Subscription {
    live: LiveSessions,
    id: u64,
    session_id: SessionId,
    user_id: UserId,
    ended: oneshot::Receiver<&'static str>,
}

impl LiveSessions {
    /// `max_age`: an access token's lifetime.
    pub fn new(settings: LiveSettings, max_age: Duration) -> LiveSessions {
        LiveSessions(Arc::new(Inner {
            registry: Mutex::default(),
            settings,
            closing: watch::Sender::new(false),
            max_age,
        }))
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // Every critical section leaves the maps consistent; a panic in one
        // (there is none) must not take live sign-out down with it.
        self.0
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a stream for `principal`'s session: registers it, then checks
    /// the session again (it may have ended after the request's own check
    /// and before the registration, and that end would be missed), so that
    /// from here on no end of it goes unseen.
    pub async fn open(&self, store: &Store, principal: &Principal) -> Result<Response, AuthError> {
        let subscription = self.subscribe(principal)?;
        let live = store
            .live_sessions_among(&[principal.session_id], Timestamp::now())
            .await?;
        if !live.contains(&principal.session_id) {
            return Err(AuthError::SessionEnded);
        }
        let stream = events(
            subscription,
            self.0.closing.subscribe(),
            Instant::now() + self.0.max_age,
        );
        let mut response = Sse::new(stream)
            .keep_alive(KeepAlive::new().interval(self.0.settings.heartbeat))
            .into_response();
        // nginx would otherwise hold the events back in its buffer.
        response.headers_mut().insert(
            axum::http::HeaderName::from_static("x-accel-buffering"),
            axum::http::HeaderValue::from_static("no"),
        );
        Ok(response)
    }

    fn subscribe(&self, principal: &Principal) -> Result<Subscription, AuthError> {
        let limit = self.0.settings.max_streams_per_user;
        let (sender, receiver) = oneshot::channel();
        let mut registry = self.registry();
        let count = registry.users.entry(principal.user_id).or_default();
        if *count >= limit {
            return Err(AuthError::TooManyStreams { limit });
        }
        *count += 1;
        registry.open += 1;
        registry.next_id += 1;
        let id = registry.next_id;
        registry
            .sessions
            .entry(principal.session_id)
            .or_default()
            .push(Listener { id, ended: sender });
        Ok(Subscription {
            live: self.clone(),
            id,
            session_id: principal.session_id,
            user_id: principal.user_id,
            ended: receiver,
        })
    }

    /// Tells every stream of `session` that it ended, and why (a reason of
    /// the webhooks' vocabulary).
    pub fn end(&self, session: SessionId, reason: &'static str) {
        let listeners = self.registry().sessions.remove(&session);
        for listener in listeners.into_iter().flatten() {
            // A stream whose client just went away no longer listens.
            let _ = listener.ended.send(reason);
        }
    }

    /// The sessions with streams open here.
    pub fn sessions(&self) -> Vec<SessionId> {
        self.registry().sessions.keys().copied().collect()
    }

    /// Streams open on this instance.
    pub fn open_streams(&self) -> usize {
        self.registry().open
    }

    /// Every stream says `closing` and ends, so that its page reconnects
    /// (to another instance) and the server's graceful shutdown, which
    /// waits for responses in flight, is not held up by them.
    pub fn close_all(&self) {
        self.0.closing.send_replace(true);
    }

    /// Ends the streams of every session here that is no longer live: after
    /// a PostgreSQL listener reconnected, when announcements may have been
    /// missed. How many ended.
    pub async fn recheck(&self, store: &Store) -> StoreResult<usize> {
        let sessions = self.sessions();
        if sessions.is_empty() {
            return Ok(0);
        }
        let live = store
            .live_sessions_among(&sessions, Timestamp::now())
            .await?;
        let mut ended = 0;
        for session in sessions.into_iter().filter(|s| !live.contains(s)) {
            let reason = match store.session_revocation(session).await? {
                Some((_, reason)) => webhooks::reason(reason.as_deref()),
                None => "expired",
            };
            self.end(session, reason);
            ended += 1;
        }
        Ok(ended)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut registry = self.live.registry();
        registry.open -= 1;
        if let Some(count) = registry.users.get_mut(&self.user_id) {
            *count -= 1;
            if *count == 0 {
                registry.users.remove(&self.user_id);
            }
        }
        // Still listed unless the session ended (which removes the entry).
        if let Some(listeners) = registry.sessions.get_mut(&self.session_id) {
            listeners.retain(|l| l.id != self.id);
            if listeners.is_empty() {
                registry.sessions.remove(&self.session_id);
            }
        }
    }
}

/// What a stream is waiting for.
struct Open {
    subscription: Subscription,
    closing: watch::Receiver<bool>,
    renew_at: Instant,
}

/// `ready` at once, then the one event that ends the stream.
fn events(
    subscription: Subscription,
    closing: watch::Receiver<bool>,
    renew_at: Instant,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let ready = stream::once(async { Ok(Event::default().event("ready").data("{}")) });
    let last = stream::once(async move {
        let mut open = Open {
            subscription,
            closing,
            renew_at,
        };
        let event = tokio::select! {
            reason = &mut open.subscription.ended => match reason {
                Ok(reason) => Event::default()
                    .event("ended")
                    .data(serde_json::json!({ "reason": reason }).to_string()),
                // The registry let go of it without a word: only on shutdown.
                Err(_) => closing_event(),
            },
            _ = open.closing.wait_for(|closing| *closing) => closing_event(),
            () = tokio::time::sleep_until(open.renew_at) => Event::default().event("renew").data("{}"),
        };
        // Dropping `open` here leaves the registry.
        drop(open);
        Ok(event)
    });
    ready.chain(last)
}

fn closing_event() -> Event {
    Event::default().event("closing").data("{}")
}

/// Feeds `live` from the event source: PostgreSQL's announcements, or
/// SQLite's table. Runs until aborted.
pub fn spawn(store: Store, live: LiveSessions) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        match &store.pool {
            Pool::Postgres(pool) => listen(pool.clone(), &store, &live).await,
            Pool::Sqlite { .. } => tail(&store, &live).await,
        }
    })
}

/// SQLite: reads the event source after the last event seen.
async fn tail(store: &Store, live: &LiveSessions) {
    let mut cursor = loop {
        match store.last_session_event_id().await {
            Ok(id) => break id,
            Err(error) => {
                tracing::warn!(error = ?error, "cannot read the event source for live sign-out; will retry");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    // Streams opened while the position could not be read checked their
    // session only up to then.
    let _ = live.recheck(store).await;
    let mut failing = false;
    loop {
        match store.session_events_after(cursor, TAIL_BATCH).await {
            Ok(events) => {
                if failing {
                    tracing::info!("reading the event source for live sign-out again");
                    failing = false;
                }
                let full = events.len() as i64 == TAIL_BATCH;
                for event in events {
                    cursor = event.id;
                    if let (Some(session), "revoked") = (event.session_id, event.kind.as_str()) {
                        live.end(session, webhooks::reason(event.reason.as_deref()));
                    }
                }
                if full {
                    continue;
                }
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(error = ?error, "cannot read the event source for live sign-out; will retry");
                    failing = true;
                }
            }
        }
        tokio::time::sleep(TAIL_EVERY).await;
    }
}

/// PostgreSQL: `LISTEN`s for ends of sessions; after every (re)connection,
/// re-checks the sessions with streams here.
async fn listen(pool: sqlx::PgPool, store: &Store, live: &LiveSessions) {
    // Its own connection, with the pool's options: listening must not take
    // one of the connections requests wait for.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with((*pool.connect_options()).clone());
    let mut wait = Duration::from_millis(250);
    // Connected before: every later connection follows a loss.
    let mut reconnecting = false;
    // Connection failures in a row (the first is logged).
    let mut failures = 0u32;
    loop {
        let connected = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(error) => {
                if failures == 0 {
                    tracing::warn!(error = %error, "cannot listen for ends of sessions; will retry");
                }
                failures += 1;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(LONGEST_RECONNECT);
                continue;
            }
        };
        failures = 0;
        wait = Duration::from_millis(250);
        // Listening from here on; what ended before is found by the check.
        if !recheck_until_done(store, live, reconnecting).await {
            continue;
        }
        reconnecting = true;
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => announce(live, notification.payload()),
                // The connection was lost and made again (eager reconnect):
                // announcements in between may be gone.
                Ok(None) => {
                    tracing::warn!("lost the connection listening for ends of sessions");
                    if !recheck_until_done(store, live, true).await {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "lost the connection listening for ends of sessions; reconnecting");
                    break;
                }
            }
        }
    }
}

/// Re-checks the streams' sessions, retrying a few times; `false` if the
/// database would not answer (the caller reconnects, and checks again).
async fn recheck_until_done(store: &Store, live: &LiveSessions, after_loss: bool) -> bool {
    for attempt in 0..5u32 {
        match live.recheck(store).await {
            Ok(ended) => {
                if after_loss {
                    tracing::info!(
                        ended,
                        "listening for ends of sessions again; re-checked the open streams"
                    );
                }
                return true;
            }
            Err(error) => {
                tracing::warn!(error = ?error, "cannot re-check the open streams; will retry");
                tokio::time::sleep(Duration::from_millis(250) * (attempt + 1)).await;
            }
        }
    }
    false
}

/// One announcement: `"<session id> <stored reason>"`.
fn announce(live: &LiveSessions, payload: &str) {
    let (session, reason) = payload.split_once(' ').unwrap_or((payload, ""));
    match uuid::Uuid::parse_str(session) {
        Ok(id) => live.end(SessionId(id), webhooks::reason(Some(reason))),
        Err(_) => tracing::warn!("an announcement of a session's end names no session"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(user: u128, session: u128) -> Principal {
        Principal {
            user_id: UserId(uuid::Uuid::from_u128(user)),
            session_id: SessionId(uuid::Uuid::from_u128(session)),
            email: "someone@example.com".into(),
            email_verified: true,
            authenticated_at: Timestamp::now(),
        }
    }

    fn live(cap: usize) -> LiveSessions {
        LiveSessions::new(
            LiveSettings {
                max_streams_per_user: cap,
                heartbeat: Duration::from_secs(15),
            },
            Duration::from_secs(900),
        )
    }

    #[test]
    fn an_end_reaches_every_stream_of_the_session_and_no_other() {
        let live = live(20);
        let mut a1 = live.subscribe(&principal(1, 10)).unwrap();
        let mut a2 = live.subscribe(&principal(1, 10)).unwrap();
        let mut b = live.subscribe(&principal(1, 11)).unwrap();
        live.end(SessionId(uuid::Uuid::from_u128(10)), "logout_others");
        assert_eq!(a1.ended.try_recv(), Ok("logout_others"));
        assert_eq!(a2.ended.try_recv(), Ok("logout_others"));
        assert!(
            b.ended.try_recv().is_err(),
            "another session's stream is untouched"
        );
        assert_eq!(live.sessions(), vec![SessionId(uuid::Uuid::from_u128(11))]);
        assert_eq!(
            live.open_streams(),
            3,
            "ended streams count until they close"
        );
        drop((a1, a2, b));
        assert_eq!(live.open_streams(), 0);
        assert!(live.sessions().is_empty());
    }

    #[test]
    fn an_account_holds_at_most_its_cap_of_streams() {
        let live = live(2);
        let first = live.subscribe(&principal(1, 10)).unwrap();
        let _second = live.subscribe(&principal(1, 11)).unwrap();
        assert!(matches!(
            live.subscribe(&principal(1, 12)),
            Err(AuthError::TooManyStreams { limit: 2 })
        ));
        assert!(live.subscribe(&principal(2, 20)).is_ok(), "per account");
        drop(first);
        assert!(
            live.subscribe(&principal(1, 12)).is_ok(),
            "a closed stream frees its place"
        );
    }

    #[test]
    fn announcements_name_the_session_and_the_documented_reason() {
        let live = live(20);
        let mut stream = live.subscribe(&principal(1, 10)).unwrap();
        announce(&live, "not-a-uuid logout");
        announce(
            &live,
            &format!("{} logout_everywhere", uuid::Uuid::from_u128(10)),
        );
        assert_eq!(stream.ended.try_recv(), Ok("logout_global"));
    }
}
