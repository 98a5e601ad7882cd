//! Session events as signed webhooks, against a real HTTP receiver that
//! verifies every signature with the Standard Webhooks reference
//! implementation (`tests/support/webhook-receiver.py`, PyPI
//! `standardwebhooks` pinned): every way a session ends is reported with
//! its reason and the exact `exp` of its last access token; a receiver that
//! fails gets the same `webhook-id` until it takes it; an event committed
//! before a SIGKILL arrives after the restart.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::{
    helpers::{Backend, Environment, NEW_PASSWORD, PASSWORD, TestApp, backend_tests, unique_email},
    mailbox::Mailbox,
    process::{ServerProcess, admin, bearer_login_on},
};

/// The specification's example secret.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Receiver {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Receiver {
    async fn start(fail_first: u32) -> Receiver {
        Receiver::start_on(fail_first, 0).await
    }

    async fn start_on(fail_first: u32, port: u16) -> Receiver {
        let dir = tempfile::tempdir().expect("a directory");
        let venv = std::env::var("PORTCULLIS_CONTRACT_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/portcullis/venv")
            });
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/webhook-receiver.py");
        let mut child = Command::new(venv.join("bin/python"))
            .arg(script)
            .arg(SECRET)
            .arg(dir.path())
            .arg(fail_first.to_string())
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the receiver starts (scripts/toolchain.sh installs its venv)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = lines
            .next_line()
            .await
            .unwrap()
            .expect("it prints its port")
            .trim()
            .parse()
            .unwrap();
        Receiver { child, dir, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    fn deliveries(&self) -> Vec<Value> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits (up to 30 s) for a delivered (2xx) event matching `matches`.
    async fn wait_for(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(found) = self
                .deliveries()
                .into_iter()
                .find(|d| d["answered"].as_i64().is_some_and(|s| s < 300) && matches(&d["body"]))
            {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within 30 s; got {:?}",
                self.deliveries()
                    .iter()
                    .map(|d| d["body"].clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(mut self) -> u16 {
        let _ = self.child.kill().await;
        self.port
    }
}

fn exp_of(access_token: &str) -> i64 {
    let claims = access_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    claims["exp"].as_i64().unwrap()
}

async fn app_with(backend: Backend, receiver: &Receiver) -> TestApp {
    TestApp::builder(backend)
        .with("PORTCULLIS_WEBHOOK_URL", &receiver.url())
        .with("PORTCULLIS_WEBHOOK_SECRET", SECRET)
        .with("PORTCULLIS_REFRESH_GRACE", "0s")
        .spawn()
        .await
}

async fn sid_of(app: &TestApp, access: &str) -> String {
    let me: Value = app.bearer_me(access).await.json().await.unwrap();
    me["session_id"].as_str().unwrap().to_string()
}

/// The `session.revoked` event of `sid`, once delivered, checked against the
/// token's `exp` and the expected reason.
async fn revoked(receiver: &Receiver, sid: &str, access: &str, reason: &str) {
    let event = receiver
        .wait_for(&format!("session.revoked of {sid}"), |b| {
            b["type"] == "session.revoked" && b["data"]["session_id"] == sid
        })
        .await;
    assert_eq!(
        event["verified"], true,
        "the reference implementation verifies it"
    );
    let data = &event["body"]["data"];
    assert_eq!(data["reason"], reason, "{event}");
    assert_eq!(
        data["access_token_exp"].as_i64(),
        Some(exp_of(access)),
        "{event}"
    );
    assert!(
        event["headers"]["webhook-id"]
            .as_str()
            .unwrap()
            .starts_with("msg_")
    );
    assert!(
        !event["body"].to_string().contains(access),
        "no token in an event"
    );
}

async fn every_way_a_session_ends_is_a_signed_event_with_its_reason(backend: Backend) {
    let receiver = Receiver::start(0).await;
    let app = app_with(backend, &receiver).await;
    let email = app.signed_up_user().await;

    // Created, then ended by a bearer logout.
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let sid = sid_of(&app, &access).await;
    let created = receiver
        .wait_for("session.created", |b| {
            b["type"] == "session.created" && b["data"]["session_id"] == sid
        })
        .await;
    assert_eq!(created["verified"], true);
    assert!(created["body"]["timestamp"].is_string());
    assert!(created["body"]["data"]["user_id"].is_string());
    let logout = app
        .bare_client()
        .post(app.url("/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    revoked(&receiver, &sid, &access, "logout").await;

    // Every other session, then every session.
    let (other, _) = app.bearer_login(&email, PASSWORD).await;
    let (this, _) = app.bearer_login(&email, PASSWORD).await;
    let logout = |token: String, scope: &'static str| {
        let request = app
            .bare_client()
            .post(app.url(&format!("/auth/logout?scope={scope}")))
            .bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    let other_sid = sid_of(&app, &other).await;
    assert_eq!(logout(this.clone(), "others").await, StatusCode::OK);
    revoked(&receiver, &other_sid, &other, "logout_others").await;
    let this_sid = sid_of(&app, &this).await;
    assert_eq!(logout(this.clone(), "global").await, StatusCode::OK);
    revoked(&receiver, &this_sid, &this, "logout_global").await;

    // A device revoked from another one (the browser signed in recently).
    let (device, _) = app.bearer_login(&email, PASSWORD).await;
    let device_sid = sid_of(&app, &device).await;
    let (browser_access, _) = app.bearer_login(&email, PASSWORD).await;
    let revoke = app
        .bare_client()
        .delete(app.url(&format!("/auth/sessions/{device_sid}")))
        .bearer_auth(&browser_access)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::OK);
    revoked(&receiver, &device_sid, &device, "device_revoked").await;

    // A password change ends the others.
    let (phone, _) = app.bearer_login(&email, PASSWORD).await;
    let phone_sid = sid_of(&app, &phone).await;
    let changed = app
        .bare_client()
        .put(app.url("/auth/password"))
        .bearer_auth(&browser_access)
        .json(&json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    revoked(&receiver, &phone_sid, &phone, "password_changed").await;

    // A replayed refresh token ends its session.
    let (stolen_access, stolen) = app.bearer_login(&email, NEW_PASSWORD).await;
    let stolen_sid = sid_of(&app, &stolen_access).await;
    let renewed: Value = app.bearer_refresh(&stolen).await.json().await.unwrap();
    let renewed_access = renewed["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        app.bearer_refresh(&stolen).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The exp reported is the renewed token's: the latest one issued.
    revoked(&receiver, &stolen_sid, &renewed_access, "refresh_reuse").await;
    assert!(
        receiver.deliveries().iter().all(|d| d["verified"] == true),
        "every delivery verifies"
    );
}

async fn a_failing_receiver_gets_the_same_webhook_id_until_it_takes_it(backend: Backend) {
    let receiver = Receiver::start(3).await;
    // The session's events only: the receiver fails its first three
    // deliveries, whichever event they carry.
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_WEBHOOK_URL", &receiver.url())
        .with("PORTCULLIS_WEBHOOK_SECRET", SECRET)
        .with(
            "PORTCULLIS_WEBHOOK_EVENTS",
            "session.created,session.revoked",
        )
        .spawn()
        .await;
    let email = unique_email();
    let registered = app
        .api_post(
            "/auth/register",
            json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::ACCEPTED);
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let sid = sid_of(&app, &access).await;
    receiver
        .wait_for("the created event, at last", |b| {
            b["data"]["session_id"] == sid
        })
        .await;
    let attempts: Vec<_> = receiver
        .deliveries()
        .into_iter()
        .filter(|d| d["body"]["data"]["session_id"] == sid.as_str())
        .collect();
    assert_eq!(attempts.len(), 4, "three 500s, then taken");
    let ids: Vec<_> = attempts
        .iter()
        .map(|d| d["headers"]["webhook-id"].clone())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert!(attempts.iter().all(|d| d["verified"] == true));
    let answered: Vec<_> = attempts
        .iter()
        .map(|d| d["answered"].as_i64().unwrap())
        .collect();
    assert_eq!(answered, [500, 500, 500, 204]);
    for _ in 0..50 {
        if app
            .count("SELECT COUNT(*) FROM session_events WHERE delivered_at IS NOT NULL AND attempts = 4")
            .await
            == 1
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the delivery was not recorded");
}

async fn an_event_committed_before_a_sigkill_arrives_after_the_restart(backend: Backend) {
    // The receiver is down when the logout commits, and the server is
    // killed before it could deliver.
    let port = Receiver::start(0).await.stop().await;
    let env = Environment::new(backend).await;
    let url = format!("http://127.0.0.1:{port}/hooks");
    let vars = [
        ("PORTCULLIS_WEBHOOK_URL", url.as_str()),
        ("PORTCULLIS_WEBHOOK_SECRET", SECRET),
    ];
    let mut server = ServerProcess::start(&env, &vars).await;
    let email = crate::process::register_on(&server, &crate::process::client()).await;
    let (access, _) = bearer_login_on(&server, &email).await;
    let logout = reqwest::Client::new()
        .post(server.url("/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    server.kill();
    let receiver = Receiver::start_on(0, port).await;
    let _server = ServerProcess::start(&env, &vars).await;
    let event = receiver
        .wait_for("the logout's event after the restart", |b| {
            b["type"] == "session.revoked" && b["data"]["reason"] == "logout"
        })
        .await;
    assert_eq!(event["verified"], true);
    assert_eq!(
        event["body"]["data"]["access_token_exp"].as_i64(),
        Some(exp_of(&access))
    );
}

/// The events are the transaction's: a revocation rolled back leaves none,
/// one committed leaves exactly one, however it was written.
async fn a_rolled_back_revocation_records_nothing(backend: Backend) {
    let receiver = Receiver::start(0).await;
    let app = app_with(backend, &receiver).await;
    let email = app.signed_up_user().await;
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let sid = sid_of(&app, &access).await;
    let revoked_events = || app.count("SELECT COUNT(*) FROM session_events WHERE kind = 'revoked'");
    let update = "UPDATE sessions SET revoked_at = created_at, revoked_reason = 'logout'";
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.env.database_url)
                .await
                .unwrap();
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(update).execute(&mut *tx).await.unwrap();
            tx.rollback().await.unwrap();
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.env.database_url).await.unwrap();
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(update).execute(&mut *tx).await.unwrap();
            tx.rollback().await.unwrap();
        }
    }
    assert_eq!(revoked_events().await, 0, "rolled back: nothing recorded");
    assert_eq!(app.bearer_me(&access).await.status(), StatusCode::OK);
    // A second revocation of an ended session records nothing more.
    for _ in 0..2 {
        app.bare_client()
            .post(app.url("/auth/logout"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(revoked_events().await, 1);
    revoked(&receiver, &sid, &access, "logout").await;
}

/// A receiver down for longer than the give-up time: the event is listed
/// dead, and an operator's retry delivers it with the same `webhook-id`.
async fn operators_see_dead_deliveries_and_retry_them(backend: Backend) {
    let port = Receiver::start(0).await.stop().await;
    let env = Environment::new(backend).await;
    let url = format!("http://127.0.0.1:{port}/hooks");
    let vars = [
        ("PORTCULLIS_WEBHOOK_URL", url.as_str()),
        ("PORTCULLIS_WEBHOOK_SECRET", SECRET),
        ("PORTCULLIS_WEBHOOK_GIVE_UP_AFTER", "2s"),
    ];
    let server = ServerProcess::start(&env, &vars).await;
    let email = crate::process::register_on(&server, &crate::process::client()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let run = admin(&env, &vars, &["webhooks", "--dead", "--json"]).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let listed = run.json();
        if let Some(first) = listed.as_array().and_then(|a| a.first()).cloned() {
            break first;
        }
        assert!(Instant::now() < deadline, "no dead event within 30 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(dead["state"], "dead");
    let kind = dead["type"].as_str().unwrap().to_string();
    assert!(
        ["session.created", "user.created"].contains(&kind.as_str()),
        "{dead}"
    );
    assert!(dead["attempts"].as_i64().unwrap() >= 1);
    assert!(dead["last_error"].is_string());
    let id = dead["id"].as_str().unwrap().to_string();

    let receiver = Receiver::start_on(0, port).await;
    let retried = admin(&env, &vars, &["webhooks", "retry", &id]).await;
    assert_eq!(retried.code, Some(0), "{}", retried.stderr);
    let delivered = receiver
        .wait_for("the retried event", |b| b["type"] == kind.as_str())
        .await;
    assert_eq!(delivered["headers"]["webhook-id"], id.as_str());
    assert_eq!(delivered["verified"], true);
    let text = admin(&env, &vars, &["webhooks"]).await;
    assert!(text.stdout.contains(&id), "{}", text.stdout);
    let unknown = admin(&env, &vars, &["webhooks", "retry", "msg_999999"]).await;
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown.stderr.contains("no such event"),
        "{}",
        unknown.stderr
    );
    let _ = email;

    // The admin API shows the same.
    let key = admin(&env, &vars, &["api-key", "create", "ops"]).await;
    let key = key.stdout.trim().lines().last().unwrap().to_string();
    let listed: Value = reqwest::Client::new()
        .get(server.url("/admin/v1/webhooks?limit=10"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ours = listed["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(ours["state"], "delivered");
}

/// Two instances on one database, 201 events: each delivered, none twice.
async fn events_from_several_instances_are_each_delivered_once(backend: Backend) {
    let receiver = Receiver::start(0).await;
    let env = Environment::new(backend).await;
    let url = receiver.url();
    let vars = [
        ("PORTCULLIS_WEBHOOK_URL", url.as_str()),
        ("PORTCULLIS_WEBHOOK_SECRET", SECRET),
        ("PORTCULLIS_LOGIN_MAX_FAILURES", "100000"),
    ];
    let servers = [
        ServerProcess::start(&env, &vars).await,
        ServerProcess::start(&env, &vars).await,
    ];
    let email = crate::process::register_on(&servers[0], &crate::process::client()).await;
    // register_on created the account and signed in once: two events. 99
    // more sign-ins and 99 sign-outs, spread over both instances.
    let mut tokens = Vec::new();
    for i in 0..99 {
        tokens.push(bearer_login_on(&servers[i % 2], &email).await.0);
    }
    let (browser_token, _) = bearer_login_on(&servers[1], &email).await;
    tokens.push(browser_token);
    // That made 101 sessions; end 99 of them: 201 events in all.
    for (i, token) in tokens.iter().take(99).enumerate() {
        let status = reqwest::Client::new()
            .post(servers[i % 2].url("/auth/logout"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK);
    }
    let expected = 201;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delivered = receiver.deliveries().len();
        if delivered >= expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{delivered} of {expected} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deliveries = receiver.deliveries();
    let mut ids: Vec<String> = deliveries
        .iter()
        .map(|d| d["headers"]["webhook-id"].as_str().unwrap().to_string())
        .collect();
    assert!(deliveries.iter().all(|d| d["verified"] == true));
    ids.sort();
    let all = ids.len();
    ids.dedup();
    assert_eq!(
        (all, ids.len()),
        (expected, expected),
        "each once, none twice"
    );
}

/// A session that simply expires is reported when the sweeper removes it.
async fn an_expired_session_is_reported_when_swept(backend: Backend) {
    let receiver = Receiver::start(0).await;
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_WEBHOOK_URL", &receiver.url())
        .with("PORTCULLIS_WEBHOOK_SECRET", SECRET)
        .with("PORTCULLIS_ACCESS_TOKEN_TTL", "1s")
        .with("PORTCULLIS_REFRESH_TOKEN_TTL", "2s")
        .spawn()
        .await;
    let email = unique_email();
    app.api_post(
        "/auth/register",
        json!({ "email": email, "password": PASSWORD }),
    )
    .await;
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let sid = sid_of(&app, &access).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let report = portcullis::server::sweeper::sweep_once(
        app.store(),
        &app.state.settings.maintenance,
        &app.state.settings.throttle,
    )
    .await
    .unwrap();
    assert!(report.sessions >= 1);
    revoked(&receiver, &sid, &access, "expired").await;
}

/// The `user.*` event of `kind` for `user_id`, once delivered and verified.
async fn user_event(receiver: &Receiver, kind: &str, user_id: &str) -> Value {
    let event = receiver
        .wait_for(&format!("{kind} of {user_id}"), |b| {
            b["type"] == kind && b["data"]["user_id"] == user_id
        })
        .await;
    assert_eq!(event["verified"], true, "{event}");
    assert!(event["body"]["timestamp"].is_string(), "{event}");
    event
}

/// The account's life, from sign-up to erasure, is reported event by event,
/// each carrying its id and nothing that names the person.
async fn every_change_to_an_account_is_a_signed_event(backend: Backend) {
    use portcullis::server::service::{Actor, Admin, UserRef};

    let receiver = Receiver::start(0).await;
    let mailbox = Mailbox::start().await;
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_WEBHOOK_URL", &receiver.url())
        .with("PORTCULLIS_WEBHOOK_SECRET", SECRET)
        .with("PORTCULLIS_SMTP_URL", &mailbox.url())
        .with("PORTCULLIS_MAIL_RETRY_MAX", "200ms")
        .spawn()
        .await;
    let email = unique_email();
    let registered = app
        .api_post(
            "/auth/register",
            json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::ACCEPTED);
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let me: Value = app.bearer_me(&access).await.json().await.unwrap();
    let user_id = me["id"].as_str().unwrap().to_string();
    let created = user_event(&receiver, "user.created", &user_id).await;
    assert_eq!(
        created["body"]["data"],
        json!({ "user_id": user_id }),
        "the id and nothing else"
    );

    let changed = app
        .bare_client()
        .put(app.url("/auth/password"))
        .bearer_auth(&access)
        .json(&json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let renewed: Value = changed.json().await.unwrap();
    let access = renewed["tokens"]["access_token"]
        .as_str()
        .map_or(access, str::to_string);
    user_event(&receiver, "user.password_changed", &user_id).await;

    let new = unique_email().replace('@', ".new@");
    let asked = app
        .bare_client()
        .post(app.url("/auth/email/change"))
        .bearer_auth(&access)
        .json(&json!({ "new_email": new, "password": NEW_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let token = mailbox
        .wait_for(&new, "Confirm your new email address for Portcullis")
        .await
        .token(&app.link_url("/confirm-email?token="));
    let confirmed = app
        .bare_client()
        .post(app.url("/auth/email/change/confirm"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), StatusCode::OK);
    let moved = user_event(&receiver, "user.email_changed", &user_id).await;
    let text = moved["body"].to_string();
    assert!(!text.contains(&new) && !text.contains(&email), "{text}");

    let admin = Admin::new(app.store().clone(), &app.state.settings);
    let id =
        portcullis::server::db::UserId(uuid::Uuid::parse_str(me["id"].as_str().unwrap()).unwrap());
    admin
        .disable(UserRef::Id(id), Some("abuse"), &Actor::Cli)
        .await
        .unwrap();
    let disabled = user_event(&receiver, "user.disabled", &user_id).await;
    assert!(
        !disabled["body"].to_string().contains("abuse"),
        "the operator's reason stays in the audit trail"
    );
    revoked(&receiver, &sid_of_token(&access), &access, "admin").await;
    admin.enable(UserRef::Id(id), &Actor::Cli).await.unwrap();
    user_event(&receiver, "user.enabled", &user_id).await;

    // An erasure reports the end of the live session and the deletion, and
    // keeps nothing else of the account in the outbox.
    let (last, _) = app.bearer_login(&new, NEW_PASSWORD).await;
    let last_sid = sid_of(&app, &last).await;
    admin.delete(UserRef::Id(id), &Actor::Cli).await.unwrap();
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM session_events WHERE kind NOT IN ('revoked', 'deleted') \
             OR ip IS NOT NULL OR user_agent IS NOT NULL"
        )
        .await,
        0,
        "only what reports the erasure is left"
    );
    revoked(&receiver, &last_sid, &last, "admin").await;
    let deleted = user_event(&receiver, "user.deleted", &user_id).await;
    assert_eq!(deleted["body"]["data"], json!({ "user_id": user_id }));
    assert!(receiver.deliveries().iter().all(|d| d["verified"] == true));
    assert!(
        receiver
            .deliveries()
            .iter()
            .all(|d| !d["body"].to_string().contains(&email)),
        "no event names the address"
    );
}

/// The `sid` claim of an access token.
fn sid_of_token(access_token: &str) -> String {
    let claims = access_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    claims["sid"].as_str().unwrap().to_string()
}

/// A lock is one `login.throttled` event however many attempts it refuses:
/// an account's names its owner, an unknown address's nobody, a network's
/// its network.
async fn a_throttle_lock_is_one_event(backend: Backend) {
    let receiver = Receiver::start(0).await;
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_WEBHOOK_URL", &receiver.url())
        .with("PORTCULLIS_WEBHOOK_SECRET", SECRET)
        .with("PORTCULLIS_WEBHOOK_EVENTS", "login.throttled")
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "3")
        .with("PORTCULLIS_LOGIN_IP_MAX_FAILURES", "8")
        .with("PORTCULLIS_LOGIN_BACKOFF_BASE", "10m")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let (user_id, _) = app.ids().await;
    let attempt = |address: String| {
        let request = app
            .bare_client()
            .post(app.url("/auth/login"))
            .json(&json!({ "email": address, "password": "not the password" }));
        async move { request.send().await.unwrap().status() }
    };
    // Three failures lock the account; three more are refused by the lock.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(attempt(email.clone()).await);
    }
    assert_eq!(statuses[..3], [StatusCode::UNAUTHORIZED; 3], "{statuses:?}");
    assert_eq!(
        statuses[3..],
        [StatusCode::TOO_MANY_REQUESTS; 3],
        "{statuses:?}"
    );
    let event = receiver
        .wait_for("the account's lock", |b| {
            b["type"] == "login.throttled"
                && b["data"]["key_kind"] == "account"
                && b["data"]["user_id"] == user_id.to_string().as_str()
        })
        .await;
    assert_eq!(event["verified"], true);
    let until = event["body"]["data"]["locked_until"].as_str().unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(until).unwrap();
    let ahead = until.signed_duration_since(chrono::Utc::now());
    assert!(
        ahead > chrono::TimeDelta::minutes(9) && ahead <= chrono::TimeDelta::minutes(10),
        "the lock's end: {until}"
    );
    assert!(!event["body"].to_string().contains(&email), "{event}");

    // An unknown address locks too, naming no one; the fifth failure from
    // this network on, the network is locked (the eighth attempt reaches its
    // limit of 8, counting the six above where the account's lock refused
    // only the last three).
    let stranger = unique_email();
    for _ in 0..4 {
        attempt(stranger.clone()).await;
    }
    let unknown = receiver
        .wait_for("the unknown address's lock", |b| {
            b["data"]["key_kind"] == "account" && b["data"]["user_id"].is_null()
        })
        .await;
    assert_eq!(unknown["verified"], true);
    assert!(!unknown["body"].to_string().contains(&stranger));
    for _ in 0..4 {
        attempt(unique_email()).await;
    }
    let network = receiver
        .wait_for("the network's lock", |b| b["data"]["key_kind"] == "ip")
        .await;
    assert!(network["body"]["data"]["network"].is_string(), "{network}");
    assert!(network["body"]["data"]["user_id"].is_null(), "{network}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let locks: Vec<_> = receiver
        .deliveries()
        .into_iter()
        .map(|d| d["body"]["data"]["key_kind"].clone())
        .collect();
    assert_eq!(
        locks,
        [json!("account"), json!("account"), json!("ip")],
        "one event per lock, none per refusal"
    );
}

backend_tests!(
    every_change_to_an_account_is_a_signed_event,
    a_throttle_lock_is_one_event,
    an_expired_session_is_reported_when_swept,
    operators_see_dead_deliveries_and_retry_them,
    events_from_several_instances_are_each_delivered_once,
    a_rolled_back_revocation_records_nothing,
    every_way_a_session_ends_is_a_signed_event_with_its_reason,
    a_failing_receiver_gets_the_same_webhook_id_until_it_takes_it,
    an_event_committed_before_a_sigkill_arrives_after_the_restart,
);
