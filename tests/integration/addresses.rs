//! The account's email address, against a real SMTP server
//! (`mailbox::Mailbox`): registration mails a link that confirms it, and
//! answers alike for a taken address (whose owner is told instead);
//! verification can be required before signing in; an email change happens
//! only when the new address confirms it, and ends the other sessions; a
//! sign-in from a new kind of device is reported to the owner.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{
        Backend, NEW_PASSWORD, PASSWORD, TestApp, backend_tests, error_code, http, json_login,
        plain_client, server_fn_with, set_cookies, unique_email,
    },
    mailbox::Mailbox,
};

const VERIFY_SUBJECT: &str = "Confirm your email address for Portcullis";
const IN_USE_SUBJECT: &str = "Someone tried to register with your email address";
const CONFIRM_CHANGE_SUBJECT: &str = "Confirm your new email address for Portcullis";
const CHANGE_NOTICE_SUBJECT: &str = "Your Portcullis email address is about to change";
const NEW_DEVICE_SUBJECT: &str = "New sign-in to your Portcullis account";

const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
const CHROME_UPDATED: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/157.0.0.0 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0";

async fn app_with_mail(backend: Backend, mailbox: &Mailbox, extra: &[(&str, &str)]) -> TestApp {
    let mut builder = TestApp::builder(backend)
        .with("PORTCULLIS_SMTP_URL", &mailbox.url())
        .with("PORTCULLIS_MAIL_RETRY_MAX", "200ms");
    for (key, value) in extra {
        builder = builder.with(key, value);
    }
    builder.spawn().await
}

async fn post(client: &Client, app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let response = client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .expect("an answer");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn register_json(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value) {
    post(
        &plain_client(),
        app,
        "/auth/register",
        json!({ "email": email, "password": password }),
    )
    .await
}

/// The token of the `nth` verification mail `email` received.
async fn verification_token(app: &TestApp, mailbox: &Mailbox, email: &str, nth: usize) -> String {
    mailbox
        .wait_for_nth(email, VERIFY_SUBJECT, nth)
        .await
        .token(&app.link_url("/verify-email?token="))
}

async fn verify(app: &TestApp, token: &str) -> (StatusCode, String) {
    error_code(
        plain_client()
            .post(app.url("/auth/email/verify"))
            .json(&json!({ "token": token }))
            .send()
            .await
            .expect("an answer"),
    )
    .await
}

async fn me_of(app: &TestApp, access: &str) -> Value {
    let response = app.bearer_me(access).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn events(app: &TestApp, kind: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM auth_events WHERE kind = '{kind}'"
    ))
    .await
}

/// Waits until `n` events of `kind` exist (work done after an answer).
async fn wait_for_events(app: &TestApp, kind: &str, n: i64) {
    for _ in 0..300 {
        if events(app, kind).await >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} {kind} events after 30 s");
}

async fn registration_mails_a_link_that_confirms_the_address_once(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(backend, &mailbox, &[]).await;
    let email = unique_email();
    let (status, body) = register_json(&app, &email, PASSWORD).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mail = mailbox.wait_for(&email, VERIFY_SUBJECT).await;
    let link = mail.link(&app.link_url("/verify-email?token="));
    assert!(mail.html.contains(&link), "both parts carry the link");
    assert!(mail.text.contains("within 24 hours"), "{}", mail.text);
    let token = mail.token(&app.link_url("/verify-email?token="));
    assert!(token.len() >= 43, "at least 256 bits");

    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    assert_eq!(me_of(&app, &access).await["email_verified"], false);
    assert_eq!(verify(&app, &token).await.0, StatusCode::OK);
    assert_eq!(me_of(&app, &access).await["email_verified"], true);
    assert_eq!(
        verify(&app, &token).await,
        (StatusCode::BAD_REQUEST, "invalid_token".into()),
        "a link works once"
    );
    assert_eq!(events(&app, "email_verified").await, 1);
}

async fn the_verify_page_moves_the_token_out_of_the_url_and_works_without_javascript(
    backend: Backend,
) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(backend, &mailbox, &[]).await;
    let email = unique_email();
    register_json(&app, &email, PASSWORD).await;
    let token = verification_token(&app, &mailbox, &email, 1).await;
    let (browser, _) = app.new_browser();
    let response = browser
        .get(app.url(&format!("/verify-email?token={token}")))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/verify-email");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    let cookies = set_cookies(&response);
    assert!(
        cookies.iter().any(|c| c.starts_with("portcullis_verify=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Strict")),
        "{cookies:?}"
    );
    let page = browser
        .get(app.url("/verify-email"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Confirm your email address"));
    assert!(!html.contains(&token), "the page never holds the token");
    // The plain form post, as a browser without JavaScript sends it.
    let confirmed = browser
        .post(app.url("/api/verify_email"))
        .header("accept", "text/html")
        .header("origin", &app.address)
        .form(&[("token", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        confirmed.headers()["location"],
        "/login?notice=email_verified"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE email_verified_at IS NOT NULL")
            .await,
        1
    );
}

/// The register server function's whole answer: status, cookies, body.
async fn register_form(app: &TestApp, email: &str) -> (StatusCode, Vec<String>, String) {
    let response = server_fn_with(
        &plain_client(),
        &app.address,
        "register",
        &[
            ("email", email),
            ("password", NEW_PASSWORD),
            ("password_confirm", NEW_PASSWORD),
        ],
    )
    .await;
    let cookies = set_cookies(&response);
    (response.status(), cookies, response.text().await.unwrap())
}

async fn registering_a_taken_address_answers_alike_and_tells_its_owner(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(backend, &mailbox, &[]).await;
    let email = unique_email();
    let first = register_json(&app, &email, PASSWORD).await;
    let again = register_json(&app, &email.to_uppercase(), NEW_PASSWORD).await;
    assert_eq!(first, again, "the same status and body");
    assert_eq!(first.0, StatusCode::ACCEPTED);
    // Through the server function a browser calls, too.
    assert_eq!(
        register_form(&app, &email).await,
        register_form(&app, &unique_email()).await
    );

    let notice = mailbox.wait_for(&email, IN_USE_SUBJECT).await;
    assert!(
        notice.text.contains(&app.link_url("/forgot-password")),
        "{}",
        notice.text
    );
    mailbox.wait_for_nth(&email, IN_USE_SUBJECT, 2).await;
    assert_eq!(
        mailbox
            .to(&email)
            .iter()
            .filter(|m| m.subject == VERIFY_SUBJECT)
            .count(),
        1,
        "one account, one verification link"
    );
    // The account and its password are untouched.
    assert_eq!(
        json_login(&plain_client(), &app, &email, PASSWORD).await,
        StatusCode::OK
    );
    assert_eq!(
        json_login(&plain_client(), &app, &email, NEW_PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM users WHERE email_normalized = '{email}'"
        ))
        .await,
        1
    );
    assert_eq!(events(&app, "registration_refused").await, 2);
}

async fn a_new_verification_link_supersedes_the_old_and_sends_are_limited(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(
        backend,
        &mailbox,
        &[
            ("PORTCULLIS_RECOVERY_EMAIL_MAX_REQUESTS", "2"),
            ("PORTCULLIS_LOGIN_BACKOFF_BASE", "30s"),
        ],
    )
    .await;
    let email = app.signed_up_user().await;
    let first = verification_token(&app, &mailbox, &email, 1).await;
    let (status, body) = post(&app.client, &app, "/auth/email/verify/resend", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let second = verification_token(&app, &mailbox, &email, 2).await;
    assert_ne!(first, second);
    assert_eq!(
        verify(&app, &first).await,
        (StatusCode::BAD_REQUEST, "invalid_token".into()),
        "superseded"
    );
    // Past the limit: the same answer, and no mail.
    for _ in 0..3 {
        let (status, again) = post(&app.client, &app, "/auth/email/verify/resend", json!({})).await;
        assert_eq!((status, &again), (StatusCode::ACCEPTED, &body));
    }
    wait_for_events(&app, "verification_sent", 4).await;
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM auth_events WHERE kind = 'verification_sent' AND detail = 'throttled'"
        )
        .await,
        2,
        "two resends fit in the limit of 2 per address (the registration's link is \
         limited by the registration's own throttle)"
    );
    let third = verification_token(&app, &mailbox, &email, 3).await;
    assert_eq!(verify(&app, &third).await.0, StatusCode::OK);
    // Once confirmed, asking again sends nothing.
    let sent = mailbox.to(&email).len();
    let (status, _) = post(&app.client, &app, "/auth/email/verify/resend", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(mailbox.to(&email).len(), sent);
}

async fn verification_can_be_required_before_signing_in(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(
        backend,
        &mailbox,
        &[("PORTCULLIS_REQUIRE_VERIFIED_EMAIL", "true")],
    )
    .await;
    let email = unique_email();
    register_json(&app, &email, PASSWORD).await;
    let refused = plain_client()
        .post(app.url("/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert!(set_cookies(&refused).is_empty(), "no session");
    assert_eq!(
        error_code(refused).await,
        (StatusCode::FORBIDDEN, "email_not_verified".into())
    );
    let browser = server_fn_with(
        &plain_client(),
        &app.address,
        "login",
        &[("email", &email), ("password", PASSWORD)],
    )
    .await;
    let (status, body) = (browser.status(), browser.json::<Value>().await.unwrap());
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Confirm your email address"),
        "{body}"
    );
    // Only the right password learns it: a wrong one is the usual answer.
    assert_eq!(
        json_login(&plain_client(), &app, &email, NEW_PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);

    // The link again, asked for by address (the person cannot sign in).
    let (status, body) = post(
        &plain_client(),
        &app,
        "/auth/email/verify/resend",
        json!({ "email": email }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (unknown_status, unknown_body) = post(
        &plain_client(),
        &app,
        "/auth/email/verify/resend",
        json!({ "email": unique_email() }),
    )
    .await;
    assert_eq!((status, body), (unknown_status, unknown_body));
    let token = verification_token(&app, &mailbox, &email, 2).await;
    assert_eq!(verify(&app, &token).await.0, StatusCode::OK);
    assert_eq!(
        json_login(&plain_client(), &app, &email, PASSWORD).await,
        StatusCode::OK
    );
}

/// Asks, through the signed-in `app.client`, to move its account to `new`.
async fn change_email(app: &TestApp, new: &str, password: &str) -> (StatusCode, Value) {
    post(
        &app.client,
        app,
        "/auth/email/change",
        json!({ "new_email": new, "password": password }),
    )
    .await
}

async fn confirm_change(app: &TestApp, token: &str) -> (StatusCode, String) {
    error_code(
        plain_client()
            .post(app.url("/auth/email/change/confirm"))
            .json(&json!({ "token": token }))
            .send()
            .await
            .expect("an answer"),
    )
    .await
}

async fn an_email_change_happens_when_the_new_address_confirms_it(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(backend, &mailbox, &[]).await;
    let old = app.signed_up_user().await;
    let (phone, _) = app.bearer_login(&old, PASSWORD).await;
    let new = unique_email().replace("@", ".new@");

    assert_eq!(
        change_email(&app, &new, NEW_PASSWORD).await.1["code"],
        "invalid_current_password"
    );
    let (status, body) = change_email(&app, &new, PASSWORD).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let notice = mailbox.wait_for(&old, CHANGE_NOTICE_SUBJECT).await;
    assert!(
        !notice.text.contains(&new) && !notice.html.contains(&new),
        "the new address is masked: {}",
        notice.text
    );
    assert!(notice.text.contains("•••@"), "{}", notice.text);
    assert!(notice.text.contains(&app.link_url("/forgot-password")));
    let mail = mailbox.wait_for(&new, CONFIRM_CHANGE_SUBJECT).await;
    let token = mail.token(&app.link_url("/confirm-email?token="));

    // Nothing changed yet.
    assert_eq!(
        app.me().await.json::<Value>().await.unwrap()["email"],
        old.as_str()
    );
    assert_eq!(
        json_login(&plain_client(), &app, &new, PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(confirm_change(&app, &token).await.0, StatusCode::OK);
    let me: Value = app.me().await.json().await.unwrap();
    assert_eq!(me["email"], new.as_str(), "the asking session stays");
    assert_eq!(me["email_verified"], true, "following the link proved it");
    assert_eq!(
        app.bearer_me(&phone).await.status(),
        StatusCode::UNAUTHORIZED,
        "every other session ended"
    );
    assert_eq!(
        json_login(&plain_client(), &app, &new, PASSWORD).await,
        StatusCode::OK
    );
    assert_eq!(
        json_login(&plain_client(), &app, &old, PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        confirm_change(&app, &token).await,
        (StatusCode::BAD_REQUEST, "invalid_token".into())
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_reason = 'email_changed'")
            .await,
        1
    );
    assert_eq!(events(&app, "email_changed").await, 1);
}

async fn an_email_change_to_a_taken_address_answers_alike_and_changes_nothing(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(backend, &mailbox, &[]).await;
    let taken = unique_email();
    register_json(&app, &taken, NEW_PASSWORD).await;
    let old = app.signed_up_user().await;
    let free = unique_email();
    let to_taken = change_email(&app, &taken, PASSWORD).await;
    let to_free = change_email(&app, &free, PASSWORD).await;
    assert_eq!(to_taken, to_free);
    assert_eq!(to_taken.0, StatusCode::ACCEPTED);
    // The account's own address is told both times, alike.
    mailbox.wait_for_nth(&old, CHANGE_NOTICE_SUBJECT, 2).await;
    // The taken address's owner is told someone tried; no link goes there.
    mailbox.wait_for(&taken, IN_USE_SUBJECT).await;
    mailbox.wait_for(&free, CONFIRM_CHANGE_SUBJECT).await;
    assert!(
        mailbox
            .to(&taken)
            .iter()
            .all(|m| m.subject != CONFIRM_CHANGE_SUBJECT)
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM auth_events WHERE kind = 'email_change_requested' AND detail = 'address_in_use'"
        )
        .await,
        1
    );
}

async fn a_password_reset_cancels_a_pending_email_change(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(backend, &mailbox, &[]).await;
    let old = app.signed_up_user().await;
    let new = unique_email();
    assert_eq!(
        change_email(&app, &new, PASSWORD).await.0,
        StatusCode::ACCEPTED
    );
    let token = mailbox
        .wait_for(&new, CONFIRM_CHANGE_SUBJECT)
        .await
        .token(&app.link_url("/confirm-email?token="));
    // The owner, warned by the notice, resets the password.
    post(
        &plain_client(),
        &app,
        "/auth/password/forgot",
        json!({ "email": old }),
    )
    .await;
    let reset = mailbox
        .wait_for(&old, "Reset your Portcullis password")
        .await
        .token(&app.link_url("/reset-password?token="));
    let (status, _) = post(
        &plain_client(),
        &app,
        "/auth/password/reset",
        json!({ "token": reset, "password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        confirm_change(&app, &token).await,
        (StatusCode::BAD_REQUEST, "invalid_token".into())
    );
    assert_eq!(
        json_login(&plain_client(), &app, &old, NEW_PASSWORD).await,
        StatusCode::OK
    );
}

/// Of two confirmations of one link at once, one wins; of two accounts
/// confirming the same new address at once, one gets it and the other is
/// told it is taken, with its address unchanged.
async fn concurrent_confirmations_change_one_account_once(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(backend, &mailbox, &[]).await;
    let target = unique_email();
    let mut tokens = Vec::new();
    let mut owners = Vec::new();
    for _ in 0..2 {
        let (browser, _) = app.new_browser();
        let email = unique_email();
        let signed_in = crate::helpers::sign_up_with(&browser, &app.address, &email).await;
        assert_eq!(signed_in.status(), StatusCode::OK);
        let (status, body) = post(
            &browser,
            &app,
            "/auth/email/change",
            json!({ "new_email": target, "password": PASSWORD }),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let nth = tokens.len() + 1;
        tokens.push(
            mailbox
                .wait_for_nth(&target, CONFIRM_CHANGE_SUBJECT, nth)
                .await
                .token(&app.link_url("/confirm-email?token=")),
        );
        owners.push(email);
    }
    let confirm = |token: &String| {
        let (url, token) = (app.url("/auth/email/change/confirm"), token.clone());
        tokio::spawn(async move {
            plain_client()
                .post(url)
                .json(&json!({ "token": token }))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let same: Vec<_> = (0..4).map(|_| confirm(&tokens[0])).collect();
    let other = confirm(&tokens[1]);
    let mut statuses = Vec::new();
    for task in same {
        statuses.push(task.await.unwrap());
    }
    let other = other.await.unwrap();
    let first_won = statuses.contains(&StatusCode::OK);
    assert!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count() <= 1,
        "one link, one change: {statuses:?}"
    );
    assert!(
        first_won != (other == StatusCode::OK),
        "exactly one account got the address: {statuses:?} {other}"
    );
    if !first_won {
        assert!(
            statuses
                .iter()
                .all(|s| [StatusCode::CONFLICT, StatusCode::BAD_REQUEST].contains(s)),
            "{statuses:?}"
        );
    } else {
        assert!(
            [StatusCode::CONFLICT, StatusCode::BAD_REQUEST].contains(&other),
            "{other}"
        );
    }
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM users WHERE email_normalized = '{target}'"
        ))
        .await,
        1
    );
    let kept = app
        .count(&format!(
            "SELECT COUNT(*) FROM users WHERE email_normalized IN ('{}', '{}')",
            owners[0], owners[1]
        ))
        .await;
    assert_eq!(kept, 1, "the other account keeps its address");
}

fn browser_of(user_agent: &str) -> Client {
    http()
        .user_agent(user_agent)
        .build()
        .expect("an HTTP client")
}

async fn a_sign_in_from_a_new_kind_of_device_is_reported_to_the_owner(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = app_with_mail(backend, &mailbox, &[]).await;
    let email = unique_email();
    register_json(&app, &email, PASSWORD).await;
    mailbox.wait_for(&email, VERIFY_SUBJECT).await;
    // The first sign-in, and a browser update: nothing new.
    for agent in [CHROME, CHROME_UPDATED, CHROME] {
        assert_eq!(
            json_login(&browser_of(agent), &app, &email, PASSWORD).await,
            StatusCode::OK
        );
    }
    // Another browser.
    assert_eq!(
        json_login(&browser_of(FIREFOX), &app, &email, PASSWORD).await,
        StatusCode::OK
    );
    let mail = mailbox.wait_for(&email, NEW_DEVICE_SUBJECT).await;
    assert!(mail.text.contains("Firefox"), "{}", mail.text);
    assert!(mail.text.contains(&app.link_url("/forgot-password")));
    // Seen now: signing in with it again is no news.
    assert_eq!(
        json_login(&browser_of(FIREFOX), &app, &email, PASSWORD).await,
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        mailbox
            .to(&email)
            .iter()
            .filter(|m| m.subject == NEW_DEVICE_SUBJECT)
            .count(),
        1
    );
    assert_eq!(events(&app, "new_device_sign_in").await, 1);
}

backend_tests!(
    registration_mails_a_link_that_confirms_the_address_once,
    the_verify_page_moves_the_token_out_of_the_url_and_works_without_javascript,
    registering_a_taken_address_answers_alike_and_tells_its_owner,
    a_new_verification_link_supersedes_the_old_and_sends_are_limited,
    verification_can_be_required_before_signing_in,
    an_email_change_happens_when_the_new_address_confirms_it,
    an_email_change_to_a_taken_address_answers_alike_and_changes_nothing,
    a_password_reset_cancels_a_pending_email_change,
    concurrent_confirmations_change_one_account_once,
    a_sign_in_from_a_new_kind_of_device_is_reported_to_the_owner,
);
