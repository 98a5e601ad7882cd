//! Live sign-out (#15): `GET /auth/events` tells an open page its session
//! ended, whatever ended it, on every instance, and is refused to anyone
//! without a live session.

use crate::{
    helpers::*,
    multi_instance::Outage,
    process::{ServerProcess, bearer_login_on, client, register_on},
};
use portcullis::server::service::{Actor, UserRef};
use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};
use std::time::Duration;

/// How long a test waits for an event before it fails (the figure to meet is
/// one second; this only keeps a broken server from stalling the run).
const PATIENCE: Duration = Duration::from_secs(15);

/// One open stream, read frame by frame.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// Opens a stream with `access` and waits until it listens (`ready`).
    async fn open(client: &Client, base: &str, access: &str) -> Events {
        let response = request(client, base, access).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        let mut events = Events {
            response,
            buffer: String::new(),
        };
        assert_eq!(events.next().await, Some(("ready".into(), json!({}))));
        events
    }

    /// The next event and its data; `None` once the server closed the
    /// stream. Comment lines (heartbeats) are skipped.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = Some(value.trim().to_string());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim());
                    }
                }
                match name {
                    Some(name) => return Some((name, serde_json::from_str(&data).unwrap())),
                    None => continue,
                }
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("an event or the end of the stream in time")
                .expect("the stream reads");
            match chunk {
                Some(bytes) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                None => {
                    assert!(
                        self.buffer.trim().is_empty(),
                        "a cut frame: {:?}",
                        self.buffer
                    );
                    return None;
                }
            }
        }
    }

    /// The stream says `ended` with `reason`, then closes.
    async fn ends_with(mut self, reason: &str) {
        assert_eq!(
            self.next().await,
            Some(("ended".into(), json!({ "reason": reason })))
        );
        assert_eq!(self.next().await, None, "the stream closes after its end");
    }
}

async fn request(client: &Client, base: &str, access: &str) -> reqwest::Response {
    client
        .get(format!("{base}/auth/events"))
        .bearer_auth(access)
        .send()
        .await
        .expect("request")
}

async fn a_stream_is_refused_without_a_live_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anonymous = app
        .bare_client()
        .get(app.url("/auth/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(anonymous).await,
        (StatusCode::UNAUTHORIZED, "unauthenticated".into())
    );
    let forged = request(&app.bare_client(), &app.address, "not.a.jwt").await;
    assert_eq!(
        error_code(forged).await,
        (StatusCode::UNAUTHORIZED, "invalid_token".into())
    );
    let email = app.signed_up_user().await;
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let logout = app
        .bare_client()
        .post(app.url("/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    let revoked = request(&app.bare_client(), &app.address, &access).await;
    assert_eq!(
        error_code(revoked).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into()),
        "a revoked session cannot open a new stream"
    );
    assert_eq!(app.state.live.open_streams(), 0);
}

/// Every way a session can end reaches its open streams, with the reason.
async fn a_stream_ends_when_its_session_ends_however_it_ends(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let http = app.bare_client();
    let email = app.signed_up_user().await;

    // Its own logout.
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let stream = Events::open(&http, &app.address, &access).await;
    let logout = http
        .post(app.url("/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    stream.ends_with("logout").await;

    // "Sign out of all other devices", on two streams of the same session.
    let (phone, _) = app.bearer_login(&email, PASSWORD).await;
    let (laptop, _) = app.bearer_login(&email, PASSWORD).await;
    let first = Events::open(&http, &app.address, &phone).await;
    let second = Events::open(&http, &app.address, &phone).await;
    let laptop_stream = Events::open(&http, &app.address, &laptop).await;
    let others = http
        .post(app.url("/auth/logout?scope=others"))
        .bearer_auth(&laptop)
        .send()
        .await
        .unwrap();
    assert_eq!(others.status(), StatusCode::OK);
    first.ends_with("logout_others").await;
    second.ends_with("logout_others").await;
    assert_eq!(
        app.state.live.sessions().len(),
        1,
        "the laptop's own stream goes on"
    );

    // A device revoked from the list.
    let (tablet, _) = app.bearer_login(&email, PASSWORD).await;
    let tablet_stream = Events::open(&http, &app.address, &tablet).await;
    let tablet_sid = session_of(&http, &app.address, &tablet).await;
    let revoke = http
        .delete(app.url(&format!("/auth/sessions/{tablet_sid}")))
        .bearer_auth(&laptop)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::OK);
    tablet_stream.ends_with("device_revoked").await;

    // A password change ends the other sessions.
    let (desktop, _) = app.bearer_login(&email, PASSWORD).await;
    let desktop_stream = Events::open(&http, &app.address, &desktop).await;
    let changed = http
        .put(app.url("/auth/password"))
        .bearer_auth(&laptop)
        .json(&json!({
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    desktop_stream.ends_with("password_changed").await;

    // An operator's disable ends the rest, the laptop's included.
    app.state
        .admin
        .disable(UserRef::Email(&email), None, &Actor::Cli)
        .await
        .unwrap();
    laptop_stream.ends_with("admin").await;
    wait_until_closed(&app).await;
}

/// A replayed refresh token ends its session as stolen, and says so.
async fn a_detected_token_theft_ends_the_stream(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_REFRESH_GRACE", "0s")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let (_, refresh) = app.bearer_login(&email, PASSWORD).await;
    let (access, _) = tokens_of(app.bearer_refresh(&refresh).await).await;
    let stream = Events::open(&app.bare_client(), &app.address, &access).await;
    // Past the grace window: the retired token is a thief's.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        app.bearer_refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    stream.ends_with("refresh_reuse").await;
}

/// The sweeper's removal of an expired session reaches its stream.
async fn the_sweepers_expiry_ends_the_stream(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let stream = Events::open(&app.bare_client(), &app.address, &access).await;
    let sid = session_of(&app.bare_client(), &app.address, &access).await;
    app.execute(&format!(
        "UPDATE sessions SET expires_at = created_at WHERE {}",
        session_is(backend, &sid)
    ))
    .await;
    portcullis::server::sweeper::sweep_once(
        app.store(),
        &app.state.settings.maintenance,
        &app.state.settings.throttle,
    )
    .await
    .unwrap();
    stream.ends_with("expired").await;
}

async fn an_account_holds_at_most_its_cap_of_streams(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LIVE_MAX_STREAMS_PER_USER", "3")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let (other_device, _) = app.bearer_login(&email, PASSWORD).await;
    let http = app.bare_client();
    let first = Events::open(&http, &app.address, &access).await;
    let _second = Events::open(&http, &app.address, &access).await;
    let _third = Events::open(&http, &app.address, &other_device).await;
    let refused = request(&http, &app.address, &other_device).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "too_many_streams");
    assert!(body["error"].as_str().unwrap().contains('3'), "{body}");

    let someone_else = app.signed_up_user().await;
    let (theirs, _) = app.bearer_login(&someone_else, PASSWORD).await;
    let _theirs = Events::open(&http, &app.address, &theirs).await;

    // A closed stream frees its place (once the server sees it go).
    drop(first);
    let mut reopened = None;
    for _ in 0..100 {
        let response = request(&http, &app.address, &access).await;
        if response.status() == StatusCode::OK {
            reopened = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        reopened.is_some(),
        "the place of a closed stream is given again"
    );
}

/// A stream lasts one access token's lifetime, then says `renew`; the
/// reconnection renews an expired access token from the refresh cookie.
async fn a_stream_asks_for_renewal_after_an_access_token_lifetime(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_ACCESS_TOKEN_TTL", "2s")
        .with("PORTCULLIS_JWT_LEEWAY", "0s")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let mut stream = Events::open(&app.bare_client(), &app.address, &access).await;
    assert_eq!(stream.next().await, Some(("renew".into(), json!({}))));
    assert_eq!(stream.next().await, None);

    // A browser: cookies, and an access token that has expired meanwhile.
    assert_eq!(
        json_login(&app.client, &app, &email, PASSWORD).await,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let response = app
        .client
        .get(app.url("/auth/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        set_cookies(&response)
            .iter()
            .any(|c| c.starts_with(app.access_cookie_name())),
        "the reconnection renewed the access token"
    );
}

/// On shutdown every stream says `closing`, and the process exits instead
/// of waiting for them.
async fn shutdown_closes_the_streams(backend: Backend) {
    let env = Environment::new(backend).await;
    let mut server = ServerProcess::start(&env, &[]).await;
    let email = register_on(&server, &client()).await;
    let (access, _) = bearer_login_on(&server, &email).await;
    let mut stream = Events::open(&plain_client(), &server.address, &access).await;
    let exit = tokio::task::spawn_blocking(move || server.terminate());
    assert_eq!(stream.next().await, Some(("closing".into(), json!({}))));
    assert_eq!(stream.next().await, None);
    assert!(exit.await.unwrap().success(), "a clean exit");
}

/// Two instances on one PostgreSQL: a session ended on one reaches the
/// streams held by the other.
async fn an_end_on_one_instance_reaches_the_streams_on_another(backend: Backend) {
    if backend == Backend::Sqlite {
        return; // One SQLite database serves one instance.
    }
    let env = Environment::new(backend).await;
    let a = ServerProcess::start(&env, &[]).await;
    let b = ServerProcess::start(&env, &[]).await;
    let email = register_on(&a, &client()).await;
    let (on_b, _) = bearer_login_on(&b, &email).await;
    let (on_a, _) = bearer_login_on(&a, &email).await;
    let stream = Events::open(&plain_client(), &b.address, &on_b).await;
    let others = plain_client()
        .post(a.url("/auth/logout?scope=others"))
        .bearer_auth(&on_a)
        .send()
        .await
        .unwrap();
    assert_eq!(others.status(), StatusCode::OK);
    stream.ends_with("logout_others").await;
}

/// A listener that loses PostgreSQL reconnects and re-checks its streams'
/// sessions: an end announced while it was away is not missed.
async fn a_listener_back_from_an_outage_rechecks_its_streams(backend: Backend) {
    if backend == Backend::Sqlite {
        return; // No listener: SQLite is read in place.
    }
    let env = Environment::new(backend).await;
    let outage = Outage::start("127.0.0.1:5432", true).await;
    let url = outage.database_url(&env);
    let server = ServerProcess::start(&env, &[("DATABASE_URL", &url), ("RUST_LOG", "info")]).await;
    let email = register_on(&server, &client()).await;
    let (access, _) = bearer_login_on(&server, &email).await;
    let stream = Events::open(&plain_client(), &server.address, &access).await;
    let sid = session_of(&plain_client(), &server.address, &access).await;

    outage.close().await;
    // Ended behind the instance's back, while it cannot hear of it.
    let database = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    sqlx::query(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout_everywhere' \
         WHERE id = $1::uuid",
    )
    .bind(&sid)
    .execute(&database)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    outage.reopen();
    stream.ends_with("logout_global").await;
    assert!(
        server.output().contains("re-checked the open streams"),
        "the instance says what it did"
    );
}

/// The session id (`GET /auth/me`) of an access token.
async fn session_of(client: &Client, base: &str, access: &str) -> String {
    let me: Value = client
        .get(format!("{base}/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    me["session_id"].as_str().unwrap().to_string()
}

fn session_is(backend: Backend, sid: &str) -> String {
    match backend {
        Backend::Postgres => format!("id = '{sid}'::uuid"),
        Backend::Sqlite => format!("id = X'{}'", sid.replace('-', "")),
    }
}

/// Every stream's place is given back once the server sees it close.
async fn wait_until_closed(app: &TestApp) {
    for _ in 0..100 {
        if app.state.live.open_streams() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} streams still counted", app.state.live.open_streams());
}

backend_tests!(
    a_stream_is_refused_without_a_live_session,
    a_stream_ends_when_its_session_ends_however_it_ends,
    a_detected_token_theft_ends_the_stream,
    the_sweepers_expiry_ends_the_stream,
    an_account_holds_at_most_its_cap_of_streams,
    a_stream_asks_for_renewal_after_an_access_token_lifetime,
    shutdown_closes_the_streams,
    an_end_on_one_instance_reaches_the_streams_on_another,
    a_listener_back_from_an_outage_rechecks_its_streams,
);
