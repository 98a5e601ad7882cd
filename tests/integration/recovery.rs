//! Account recovery over email, against a real SMTP server
//! (`mailbox::Mailbox`): a reset link sets a new password and ends every
//! session; links work once, expire, and are superseded; the answer to
//! "forgot password" never says whether an account exists; mail survives an
//! SMTP outage and a restart.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

use crate::{
    helpers::{
        Backend, NEW_PASSWORD, PASSWORD, TestApp, backend_tests, error_code, json_login,
        plain_client, server_fn_with, set_cookies, unique_email,
    },
    mailbox::{Mail, Mailbox},
};

const RESET_SUBJECT: &str = "Reset your Portcullis password";
const CHANGED_SUBJECT: &str = "Your Portcullis password was changed";

async fn app_with_mail(backend: Backend, mailbox: &Mailbox) -> TestApp {
    TestApp::builder(backend)
        .with("PORTCULLIS_SMTP_URL", &mailbox.url())
        .with("PORTCULLIS_MAIL_FROM", "Portcullis <no-reply@example.com>")
        .with("PORTCULLIS_MAIL_RETRY_MAX", "200ms")
        .spawn()
        .await
}

async fn forgot(app: &TestApp, email: &str) -> (StatusCode, Value) {
    let response = app
        .bare_client()
        .post(app.url("/auth/password/forgot"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn reset(app: &TestApp, token: &str, password: &str) -> (StatusCode, String) {
    let response = app
        .bare_client()
        .post(app.url("/auth/password/reset"))
        .json(&json!({ "token": token, "password": password }))
        .send()
        .await
        .expect("request");
    error_code(response).await
}

/// Asks for a link for `email` and returns its token, from the `nth` reset
/// mail that address received.
async fn reset_token(app: &TestApp, mailbox: &Mailbox, email: &str, nth: usize) -> String {
    let (status, _) = forgot(app, email).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mail = mailbox.wait_for_nth(email, RESET_SUBJECT, nth).await;
    mail.token(&app.link_url("/reset-password?token="))
}

async fn a_reset_link_sets_a_new_password_and_ends_every_session(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(backend, &mailbox).await;
    let email = app.signed_up_user().await;
    let (phone, _) = app.new_browser();
    let response = server_fn_with(
        &phone,
        &app.address,
        "login",
        &[("email", &email), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (bearer, _) = app.bearer_login(&email, PASSWORD).await;

    let (status, body) = forgot(&app, &email).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("If an account exists")
    );
    let mail: Mail = mailbox.wait_for(&email, RESET_SUBJECT).await;
    assert!(
        mail.from.contains("Portcullis") && mail.from.contains("<no-reply@example.com>"),
        "{}",
        mail.from
    );
    assert!(
        mail.content_type.starts_with("multipart/alternative"),
        "{}",
        mail.content_type
    );
    let link = mail.link(&app.link_url("/reset-password?token="));
    assert!(
        mail.html.contains(&link),
        "the HTML part carries the same link"
    );
    assert!(mail.text.contains("within 30 minutes"), "{}", mail.text);
    let token = mail.token(&app.link_url("/reset-password?token="));
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    assert_eq!(
        queued_after_delivery(&app).await,
        0,
        "a delivered mail leaves the database"
    );

    assert_eq!(reset(&app, &token, NEW_PASSWORD).await.0, StatusCode::OK);

    // Every session ended: the browsers', and the bearer client's.
    assert_eq!(app.me().await.status(), StatusCode::UNAUTHORIZED);
    let phone_me = phone
        .get(app.url("/auth/me"))
        .send()
        .await
        .expect("request");
    assert_eq!(phone_me.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.bearer_me(&bearer).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_reason = 'password_reset'")
            .await,
        3
    );
    // The old password is gone; the new one signs in (nothing signed in by itself).
    assert_eq!(
        json_login(&plain_client(), &app, &email, PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        json_login(&plain_client(), &app, &email, NEW_PASSWORD).await,
        StatusCode::OK
    );
    let notice = mailbox.wait_for(&email, CHANGED_SUBJECT).await;
    assert!(notice.text.contains("If this wasn't you"));
    assert!(notice.text.contains(&app.link_url("/forgot-password")));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM auth_events WHERE kind = 'password_reset'")
            .await,
        1
    );
}

async fn a_link_works_once_and_only_while_it_is_the_newest(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(backend, &mailbox).await;
    let email = app.signed_up_user().await;

    let first = reset_token(&app, &mailbox, &email, 1).await;
    let second = reset_token(&app, &mailbox, &email, 2).await;
    assert_ne!(first, second);
    assert_eq!(
        reset(&app, &first, NEW_PASSWORD).await,
        (StatusCode::BAD_REQUEST, "invalid_token".into()),
        "a newer link supersedes the older one"
    );
    assert_eq!(reset(&app, &second, NEW_PASSWORD).await.0, StatusCode::OK);
    assert_eq!(
        reset(&app, &second, "another quiet harbour 9").await,
        (StatusCode::BAD_REQUEST, "invalid_token".into()),
        "single use"
    );
    assert_eq!(
        json_login(&plain_client(), &app, &email, NEW_PASSWORD).await,
        StatusCode::OK
    );
}

async fn a_password_change_spends_the_links_mailed_before_it(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(backend, &mailbox).await;
    let email = app.signed_up_user().await;
    let token = reset_token(&app, &mailbox, &email, 1).await;
    let response = app
        .change_password(PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    mailbox.wait_for(&email, CHANGED_SUBJECT).await;
    assert_eq!(
        reset(&app, &token, "another quiet harbour 9").await,
        (StatusCode::BAD_REQUEST, "invalid_token".into())
    );
    assert_eq!(
        json_login(&plain_client(), &app, &email, NEW_PASSWORD).await,
        StatusCode::OK
    );
}

async fn an_expired_or_foreign_or_malformed_link_is_refused_alike(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(backend, &mailbox).await;
    let email = app.signed_up_user().await;
    let token = reset_token(&app, &mailbox, &email, 1).await;
    app.execute("UPDATE email_tokens SET expires_at = created_at")
        .await;
    let expired = reset(&app, &token, NEW_PASSWORD).await;
    assert_eq!(expired, (StatusCode::BAD_REQUEST, "invalid_token".into()));

    // A well-formed token nobody issued, and malformed ones.
    let forged = "A".repeat(43);
    for bad in [
        forged.as_str(),
        "short",
        "",
        &format!("{token}x"),
        "../../etc/passwd",
    ] {
        assert_eq!(reset(&app, bad, NEW_PASSWORD).await, expired, "{bad:?}");
    }
    // Another account's link changes that account only.
    let other = unique_email();
    let (other_client, _) = app.new_browser();
    let response = server_fn_with(
        &other_client,
        &app.address,
        "register",
        &[
            ("email", &other),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let other_token = reset_token(&app, &mailbox, &other, 1).await;
    assert_eq!(
        reset(&app, &other_token, NEW_PASSWORD).await.0,
        StatusCode::OK
    );
    assert_eq!(
        json_login(&plain_client(), &app, &email, PASSWORD).await,
        StatusCode::OK,
        "untouched"
    );
    assert_eq!(
        json_login(&plain_client(), &app, &other, NEW_PASSWORD).await,
        StatusCode::OK
    );

    // A weak new password is refused and spends nothing.
    let token = reset_token(&app, &mailbox, &email, 2).await;
    assert_eq!(
        reset(&app, &token, "password").await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input".into())
    );
    assert_eq!(
        reset(&app, &token, "passwordpassword").await.1,
        "weak_password"
    );
    assert_eq!(reset(&app, &token, NEW_PASSWORD).await.0, StatusCode::OK);
}

async fn unknown_addresses_get_the_same_answer_and_no_mail(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(backend, &mailbox).await;
    let known = app.signed_up_user().await;
    let unknown = unique_email();
    let known_answer = forgot(&app, &known).await;
    let unknown_answer = forgot(&app, &unknown).await;
    assert_eq!(known_answer, unknown_answer);
    assert_eq!(known_answer.0, StatusCode::ACCEPTED);
    mailbox.wait_for(&known, RESET_SUBJECT).await;
    wait_for_requests(&app, 2).await;
    assert!(
        mailbox.to(&unknown).is_empty(),
        "no mail to an address without an account"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM auth_events WHERE kind = 'password_reset_requested' AND detail = 'no_account'").await,
        1
    );
    // Only a malformed address is refused: that says nothing about accounts.
    let (status, body) = forgot(&app, "not an address").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_input");
}

/// The messages still queued once deliveries settle: the SMTP server has a
/// message before the sender hears its `250` and deletes the row, so this
/// waits (up to 30 s) for the queue to empty and returns what is left.
async fn queued_after_delivery(app: &TestApp) -> i64 {
    let mut queued = 0;
    for _ in 0..300 {
        queued = app.count("SELECT COUNT(*) FROM mail_outbox").await;
        if queued == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    queued
}

/// Waits until `n` requests for a link have been handled (they run after
/// the answer).
async fn wait_for_requests(app: &TestApp, n: i64) {
    for _ in 0..300 {
        let handled = app
            .count("SELECT COUNT(*) FROM auth_events WHERE kind = 'password_reset_requested'")
            .await;
        if handled >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{n} reset requests were not handled within 30 s");
}

async fn mails_per_address_are_limited_without_changing_the_answer(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_SMTP_URL", &mailbox.url())
        .with("PORTCULLIS_RECOVERY_EMAIL_MAX_REQUESTS", "2")
        .with("PORTCULLIS_LOGIN_BACKOFF_BASE", "10m")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(forgot(&app, &email).await);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    wait_for_requests(&app, 5).await;
    mailbox.wait_for_nth(&email, RESET_SUBJECT, 2).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM auth_events WHERE kind = 'password_reset_requested' AND detail = 'sent'").await,
        2
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM auth_events WHERE kind = 'password_reset_requested' AND detail = 'throttled'").await,
        3
    );
}

async fn concurrent_uses_of_one_link_succeed_once(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = Arc::new(app_with_mail(backend, &mailbox).await);
    let email = app.signed_up_user().await;
    let token = reset_token(&app, &mailbox, &email, 1).await;
    let passwords: [&'static str; 6] = [
        "amber orchard violin 11",
        "basalt meadow trumpet 12",
        "cobalt harbour lantern 13",
        "dune willow sparrow 14",
        "ember canyon thistle 15",
        "fjord maple cricket 16",
    ];
    let attempts = passwords.into_iter().map(|password| {
        let (app, token) = (app.clone(), token.clone());
        tokio::spawn(async move { (reset(&app, &token, password).await, password) })
    });
    let mut winners = Vec::new();
    for attempt in attempts {
        let ((status, code), password) = attempt.await.expect("the task finishes");
        match status {
            StatusCode::OK => winners.push(password),
            StatusCode::BAD_REQUEST => assert_eq!(code, "invalid_token"),
            other => panic!("unexpected answer {other} {code}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        json_login(&plain_client(), &app, &email, winners[0]).await,
        StatusCode::OK
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM auth_events WHERE kind = 'password_reset'")
            .await,
        1
    );
}

async fn a_mail_survives_an_smtp_outage_and_a_restart(backend: Backend) {
    // The SMTP server is down when the link is asked for.
    let port = Mailbox::start().await.stop().await;
    let smtp = format!("smtp://127.0.0.1:{port}");
    let overrides = [
        ("PORTCULLIS_SMTP_URL".to_string(), smtp),
        ("PORTCULLIS_MAIL_RETRY_MAX".to_string(), "200ms".to_string()),
    ];
    let app = TestApp::builder(backend)
        .with(&overrides[0].0, &overrides[0].1)
        .with(&overrides[1].0, &overrides[1].1)
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    assert_eq!(forgot(&app, &email).await.0, StatusCode::ACCEPTED);
    wait_for_requests(&app, 1).await;
    // Delivery fails and is retried, and the request did not wait for it.
    for _ in 0..300 {
        if app
            .count(
                "SELECT COUNT(*) FROM mail_outbox WHERE attempts >= 2 AND last_error IS NOT NULL \
                 AND subject = 'Reset your Portcullis password'",
            )
            .await
            == 1
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM mail_outbox WHERE attempts >= 2 \
             AND subject = 'Reset your Portcullis password'"
        )
        .await,
        1
    );
    // The server stops with the mail undelivered; SMTP comes back; a new
    // server on the same database delivers it.
    let env = app.env.clone();
    // Links name the origin of the instance that wrote them.
    let link_prefix = app.link_url("/reset-password?token=");
    drop(app);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mailbox = Mailbox::start_on(port).await;
    let restarted = TestApp::start(env, &overrides).await;
    let mail = mailbox.wait_for(&email, RESET_SUBJECT).await;
    let token = mail.token(&link_prefix);
    assert_eq!(
        reset(&restarted, &token, NEW_PASSWORD).await.0,
        StatusCode::OK
    );
    assert_eq!(
        mailbox
            .to(&email)
            .iter()
            .filter(|m| m.subject == RESET_SUBJECT)
            .count(),
        1
    );
}

async fn the_reset_page_moves_the_token_out_of_the_url_and_works_without_javascript(
    backend: Backend,
) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(backend, &mailbox).await;
    let email = app.signed_up_user().await;
    let token = reset_token(&app, &mailbox, &email, 1).await;
    let (browser, jar) = app.new_browser();

    let response = browser
        .get(app.url(&format!("/reset-password?token={token}")))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/reset-password");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let cookie = set_cookies(&response)
        .into_iter()
        .find(|c| c.starts_with("portcullis_reset="))
        .expect("the token moves into a cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let page = browser
        .get(app.url("/reset-password"))
        .send()
        .await
        .expect("request");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["referrer-policy"], "same-origin");
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.expect("a page");
    assert!(html.contains("Choose a new password"));
    assert!(!html.contains(&token), "the page never holds the token");

    // The plain form post (no JavaScript), with the cookie.
    let response = browser
        .post(app.url("/api/reset_password"))
        .header("accept", "text/html")
        .header("origin", &app.address)
        .form(&[
            ("password", NEW_PASSWORD),
            ("password_confirm", NEW_PASSWORD),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "/login?notice=password_reset"
    );
    assert!(crate::helpers::expires_cookie(
        &response,
        "portcullis_reset"
    ));
    assert!(crate::helpers::cookie_in(&jar, &app.address, "portcullis_reset").is_none());
    assert_eq!(
        app.me().await.status(),
        StatusCode::UNAUTHORIZED,
        "the other session ended"
    );
    assert_eq!(
        json_login(&plain_client(), &app, &email, NEW_PASSWORD).await,
        StatusCode::OK
    );

    // Without a link, the form says so.
    let response = server_fn_with(
        &browser,
        &app.address,
        "reset_password",
        &[
            ("password", NEW_PASSWORD),
            ("password_confirm", NEW_PASSWORD),
        ],
    )
    .await;
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["code"], "invalid_token");
    assert_eq!(body["field"], "token");
}

async fn without_an_smtp_server_mail_goes_to_the_outbox_directory(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.signed_up_user().await;
    assert_eq!(forgot(&app, &email).await.0, StatusCode::ACCEPTED);
    let outbox = app.env.data_dir.path().join("outbox");
    for _ in 0..300 {
        let files: Vec<_> = std::fs::read_dir(&outbox)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        // Registering queued a verification mail too: the reset is the one.
        let reset = files
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .map(|p| (p, std::fs::read_to_string(p).expect("readable")))
            .find(|(_, text)| text.contains("Subject: Reset your Portcullis password"));
        if let Some((eml, text)) = reset {
            assert!(text.contains(&format!("To: {email}")), "{text}");
            assert!(text.contains("multipart/alternative"));
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(eml)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no .eml file in {}", outbox.display());
}

backend_tests!(
    a_reset_link_sets_a_new_password_and_ends_every_session,
    a_link_works_once_and_only_while_it_is_the_newest,
    a_password_change_spends_the_links_mailed_before_it,
    an_expired_or_foreign_or_malformed_link_is_refused_alike,
    unknown_addresses_get_the_same_answer_and_no_mail,
    mails_per_address_are_limited_without_changing_the_answer,
    concurrent_uses_of_one_link_succeed_once,
    a_mail_survives_an_smtp_outage_and_a_restart,
    the_reset_page_moves_the_token_out_of_the_url_and_works_without_javascript,
    without_an_smtp_server_mail_goes_to_the_outbox_directory,
    a_replayed_refresh_token_ends_its_session_and_tells_the_owner,
);

async fn a_replayed_refresh_token_ends_its_session_and_tells_the_owner(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_SMTP_URL", &mailbox.url())
        .with("PORTCULLIS_REFRESH_GRACE", "0s")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let (_, first) = app.bearer_login(&email, PASSWORD).await;
    assert_eq!(app.bearer_refresh(&first).await.status(), StatusCode::OK);
    // The retired token again: a copy.
    let replay = app.bearer_refresh(&first).await;
    assert_eq!(
        error_code(replay).await,
        (StatusCode::UNAUTHORIZED, "session_ended".into())
    );
    let notice = mailbox
        .wait_for(&email, "We signed out a Portcullis session")
        .await;
    assert!(notice.text.contains("If this wasn't you"));
    assert!(notice.text.contains(&app.link_url("/forgot-password")));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM auth_events WHERE kind = 'refresh_token_reuse_detected'")
            .await,
        1
    );
    // A second replay ends nothing more and mails nothing more.
    let again = app.bearer_refresh(&first).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM auth_events WHERE kind = 'refresh_token_reuse_detected'")
            .await,
        1
    );
    assert_eq!(queued_after_delivery(&app).await, 0);
}
