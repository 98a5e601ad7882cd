//! Two-factor sign-in (TOTP and recovery codes) against the real server, on
//! both backends. Codes are computed here from the secret the server hands
//! out, with the same RFC 6238 implementation; the server's clock is never
//! mocked, so each test that depends on the step starts early in one.

use crate::{helpers::*, mailbox::Mailbox};
use portcullis::server::mfa::totp::{STEP_SECONDS, TotpSecret};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

backend_tests!(
    setting_up_needs_a_code_from_the_app_before_it_counts,
    a_password_alone_leaves_a_pending_sign_in_that_is_not_a_session,
    signing_in_takes_a_code_or_a_recovery_code_once,
    one_step_of_skew_is_accepted_and_two_are_not,
    guesses_are_limited_per_pending_sign_in_and_per_account,
    body_clients_get_an_mfa_token_that_works_once,
    parallel_uses_of_one_code_sign_in_once,
    turning_it_off_needs_password_and_code_and_ends_other_sessions,
    new_recovery_codes_replace_the_old_ones,
    a_reset_by_email_still_asks_for_the_code,
    setting_up_again_without_a_recent_sign_in_needs_the_password,
    the_sweeper_removes_expired_pending_sign_ins_and_unconfirmed_set_ups,
    fresh_recovery_codes_are_shown_and_downloadable_once_in_their_session,
    me_reports_second_factors_however_the_request_was_signed_in,
);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Waits, if needed, until the current 30-second step has at least 20
/// seconds left, so that codes computed here and checked by the server a
/// moment later belong to the same step.
async fn early_in_a_step() {
    let into = now() % STEP_SECONDS;
    if into > 10 {
        tokio::time::sleep(Duration::from_secs(STEP_SECONDS - into + 1)).await;
    }
}

/// The code for `offset` steps from now.
fn code(secret: &TotpSecret, offset: i64) -> String {
    let at = now() as i64 + offset * STEP_SECONDS as i64;
    secret.code_at(at as u64)
}

pub(crate) async fn post(
    client: &Client,
    app: &TestApp,
    path: &str,
    body: Value,
) -> reqwest::Response {
    client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .expect("request")
}

async fn me(client: &Client, app: &TestApp) -> reqwest::Response {
    client
        .get(app.url("/auth/me"))
        .send()
        .await
        .expect("request")
}

/// Sets up and confirms an app for the account `client` is signed in as,
/// with the code of step `offset`: the secret and the recovery codes.
pub(crate) async fn enable_totp(
    client: &Client,
    app: &TestApp,
    offset: i64,
) -> (TotpSecret, Vec<String>) {
    let response = post(client, app, "/auth/mfa/totp/setup", json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let setup: Value = response.json().await.unwrap();
    let secret = TotpSecret::from_base32(setup["secret"].as_str().unwrap()).unwrap();
    let response = post(
        client,
        app,
        "/auth/mfa/totp/enable",
        json!({ "code": code(&secret, offset) }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let codes = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    (secret, codes)
}

/// The account's recent activity as its owner reads it.
pub(crate) async fn activity(client: &Client, app: &TestApp) -> Vec<String> {
    let entries: Value = server_fn_with(client, &app.address, "activity", &[])
        .await
        .json()
        .await
        .unwrap();
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["description"].as_str().unwrap().to_string())
        .collect()
}

/// The app's client signed in as a fresh account with TOTP on.
async fn protected_user(app: &TestApp) -> (String, TotpSecret, Vec<String>) {
    early_in_a_step().await;
    let email = app.signed_up_user().await;
    let (secret, codes) = enable_totp(&app.client, app, 0).await;
    (email, secret, codes)
}

/// Another account with TOTP on, in its own browser.
async fn another_protected_user(app: &TestApp) -> (TotpSecret, Vec<String>) {
    let (client, _) = app.new_browser();
    let response = sign_up_with(&client, &app.address, &unique_email()).await;
    assert_eq!(response.status(), StatusCode::OK);
    enable_totp(&client, app, 0).await
}

/// Signs in with the password only, in a new browser: `mfa_required`.
pub(crate) async fn password_step(
    app: &TestApp,
    email: &str,
) -> (Client, std::sync::Arc<reqwest::cookie::Jar>) {
    let (client, jar) = app.new_browser();
    let response = post(
        &client,
        app,
        "/auth/login",
        json!({ "email": email, "password": PASSWORD }),
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "mfa_required".into())
    );
    (client, jar)
}

pub(crate) async fn second_step(client: &Client, app: &TestApp, code: &str) -> reqwest::Response {
    post(client, app, "/auth/login/mfa", json!({ "code": code })).await
}

async fn setting_up_needs_a_code_from_the_app_before_it_counts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    early_in_a_step().await;
    let email = app.signed_up_user().await;
    let response = post(&app.client, &app, "/auth/mfa/totp/setup", json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let setup: Value = response.json().await.unwrap();
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Portcullis:"), "{uri}");
    assert!(uri.contains("issuer=Portcullis"), "{uri}");
    let secret = TotpSecret::from_base32(setup["secret"].as_str().unwrap()).unwrap();
    assert!(
        uri.contains(&format!("secret={}", secret.base32())),
        "{uri}"
    );

    // Not in force yet: the password alone still signs in.
    let body: Value = me(&app.client, &app).await.json().await.unwrap();
    assert_eq!(
        body["mfa"],
        json!({ "totp": false, "recovery_codes_left": 0 })
    );
    let (other, _) = app.new_browser();
    assert_eq!(
        json_login(&other, &app, &email, PASSWORD).await,
        StatusCode::OK
    );

    // A wrong code does not turn it on; the right one does.
    let wrong = format!(
        "{:06}",
        (code(&secret, 0).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let response = post(
        &app.client,
        &app,
        "/auth/mfa/totp/enable",
        json!({ "code": wrong }),
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_code".into())
    );
    let response = post(
        &app.client,
        &app,
        "/auth/mfa/totp/enable",
        json!({ "code": code(&secret, 0) }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let codes = body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let stored = app.count("SELECT COUNT(*) FROM recovery_codes").await;
    assert_eq!(stored, 10);
    // Stored as hashes only, salted with the account, and the secret only
    // sealed.
    let (user, _) = app.ids().await;
    let bytes = |b: &[u8]| {
        let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
        match backend {
            Backend::Sqlite => format!("X'{hex}'"),
            Backend::Postgres => format!("'\\x{hex}'::bytea"),
        }
    };
    for code in codes {
        let normalized = code.as_str().unwrap().replace('-', "");
        let salted = portcullis::server::mfa::SecondFactors::recovery_code_hash(user, &normalized);
        let unsalted = <sha2::Sha256 as sha2::Digest>::digest(normalized.as_bytes());
        for (form, expected) in [
            (bytes(&salted), 1),
            (bytes(&unsalted), 0),
            (bytes(normalized.as_bytes()), 0),
        ] {
            assert_eq!(
                app.count(&format!(
                    "SELECT COUNT(*) FROM recovery_codes WHERE code_hash = {form}"
                ))
                .await,
                expected,
                "{form}"
            );
        }
    }
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM user_totp WHERE secret_sealed LIKE '%{}%'",
            secret.base32()
        ))
        .await,
        0
    );
    let body: Value = me(&app.client, &app).await.json().await.unwrap();
    assert_eq!(
        body["mfa"],
        json!({ "totp": true, "recovery_codes_left": 10 })
    );

    // On now: a second set-up is refused, and so is confirming again.
    let response = post(&app.client, &app, "/auth/mfa/totp/setup", json!({})).await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::CONFLICT, "mfa_already_enabled".into())
    );
    let response = post(
        &app.client,
        &app,
        "/auth/mfa/totp/enable",
        json!({ "code": code(&secret, 1) }),
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::CONFLICT, "mfa_already_enabled".into())
    );
    password_step(&app, &email).await;
}

async fn a_password_alone_leaves_a_pending_sign_in_that_is_not_a_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (email, _, _) = protected_user(&app).await;
    let (client, jar) = password_step(&app, &email).await;
    let pending_name = app.state.cookies.pending_name();
    let pending = cookie_in(&jar, &app.address, pending_name).expect("the pending sign-in cookie");
    assert!(cookie_in(&jar, &app.address, app.access_cookie_name()).is_none());
    assert!(cookie_in(&jar, &app.address, app.refresh_cookie_name()).is_none());

    // Nothing takes it for a session: the API, server functions, pages,
    // refresh, nor the pending token passed off as a session token.
    assert_eq!(me(&client, &app).await.status(), StatusCode::UNAUTHORIZED);
    let status: Value = server_fn_with(&client, &app.address, "current_user", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status, json!("SignedOut"));
    let response = server_fn_with(&client, &app.address, "sessions", &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = client.get(app.url("/account")).send().await.unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("/login"), "{location}");
    let response = post(&client, &app, "/auth/refresh", json!({})).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = post(
        &client,
        &app,
        "/auth/refresh",
        json!({ "refresh_token": pending }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let bare = app.bare_client();
    let response = bare
        .get(app.url("/auth/me"))
        .bearer_auth(&pending)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    for name in [app.access_cookie_name(), app.refresh_cookie_name()] {
        let response = bare
            .get(app.url("/auth/me"))
            .header("cookie", format!("{name}={pending}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
            .await,
        1,
        "only the set-up's own session"
    );
    let pending_rows = app.count("SELECT COUNT(*) FROM mfa_challenges").await;
    assert_eq!(pending_rows, 1);
}

async fn signing_in_takes_a_code_or_a_recovery_code_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (email, secret, codes) = protected_user(&app).await;

    // The code of the step confirmed at set-up was used: refused.
    let (client, _) = password_step(&app, &email).await;
    let response = second_step(&client, &app, &code(&secret, 0)).await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_code".into())
    );
    // The next step's code signs in, and then is used too.
    let response = second_step(&client, &app, &code(&secret, 1)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(me(&client, &app).await.status(), StatusCode::OK);
    let (again, _) = password_step(&app, &email).await;
    let response = second_step(&again, &app, &code(&secret, 1)).await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_code".into())
    );

    // A recovery code, typed loosely, signs in once.
    let typed = codes[3].to_uppercase().replace('-', " ");
    let response = second_step(&again, &app, &typed).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = me(&again, &app).await.json().await.unwrap();
    assert_eq!(body["mfa"]["recovery_codes_left"], 9);
    let (third, _) = password_step(&app, &email).await;
    let response = second_step(&third, &app, &codes[3]).await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_code".into())
    );

    // Another account's codes are no codes here.
    let (other_secret, other_codes) = another_protected_user(&app).await;
    let (fourth, _) = password_step(&app, &email).await;
    let response = second_step(&fourth, &app, &other_codes[0]).await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_code".into())
    );
    let theirs = code(&other_secret, 1);
    if theirs != code(&secret, 1) {
        let response = second_step(&fourth, &app, &theirs).await;
        assert_eq!(
            error_code(response).await,
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_code".into())
        );
    }

    // The activity list says how each sign-in was made.
    let described = activity(&client, &app).await;
    for expected in [
        "Signed in with an authenticator code",
        "Signed in with a recovery code",
        "Two-factor sign-in turned on",
        "Wrong or reused two-factor code",
    ] {
        assert!(
            described.iter().any(|d| d == expected),
            "{expected}: {described:?}"
        );
    }
}

async fn one_step_of_skew_is_accepted_and_two_are_not(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    early_in_a_step().await;
    let email = app.signed_up_user().await;
    // Confirmed with the previous step's code (a phone a little behind).
    let (secret, _) = enable_totp(&app.client, &app, -1).await;
    let (client, _) = password_step(&app, &email).await;
    // Two steps either way: refused.
    for offset in [-2, 2] {
        let response = second_step(&client, &app, &code(&secret, offset)).await;
        assert_eq!(
            error_code(response).await,
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_code".into()),
            "offset {offset}"
        );
    }
    // The current step, then one ahead (a phone a little ahead).
    let response = second_step(&client, &app, &code(&secret, 0)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (client, _) = password_step(&app, &email).await;
    let response = second_step(&client, &app, &code(&secret, 1)).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Behind the last accepted step: refused, though within the skew.
    let (client, _) = password_step(&app, &email).await;
    let response = second_step(&client, &app, &code(&secret, 0)).await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_code".into())
    );
}

async fn guesses_are_limited_per_pending_sign_in_and_per_account(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "7")
        .with("PORTCULLIS_LOGIN_BACKOFF_BASE", "10m")
        .spawn()
        .await;
    let (email, secret, _) = protected_user(&app).await;
    let wrong = |n: u32| {
        format!(
            "{:06}",
            (code(&secret, 1).parse::<u32>().unwrap() + n) % 1_000_000
        )
    };

    // Five tries per pending sign-in; the sixth finds it void.
    let (client, _) = password_step(&app, &email).await;
    for n in 1..=5 {
        let response = second_step(&client, &app, &wrong(n)).await;
        assert_eq!(
            error_code(response).await,
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_code".into())
        );
    }
    let response = second_step(&client, &app, &code(&secret, 1)).await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "mfa_expired".into())
    );

    // Across pending sign-ins the account's limit holds: the seventh wrong
    // code locks it, and then even the right code waits.
    let (client, _) = password_step(&app, &email).await;
    for n in 6..=7 {
        let response = second_step(&client, &app, &wrong(n)).await;
        assert_eq!(
            error_code(response).await,
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_code".into())
        );
    }
    let response = second_step(&client, &app, &code(&secret, 1)).await;
    let retry_after = response.headers().get("retry-after").cloned();
    assert_eq!(
        error_code(response).await,
        (StatusCode::TOO_MANY_REQUESTS, "throttled".into())
    );
    assert!(retry_after.is_some());
    assert!(
        app.count("SELECT COUNT(*) FROM login_throttle WHERE key LIKE 'mfa:%'")
            .await
            >= 1,
        "the counter is in the shared throttle store"
    );
}

async fn body_clients_get_an_mfa_token_that_works_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (email, secret, _) = protected_user(&app).await;
    let bare = app.bare_client();
    let response = post(
        &bare,
        &app,
        "/auth/login",
        json!({ "email": email, "password": PASSWORD, "token_delivery": "body" }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        set_cookies(&response).is_empty(),
        "no cookie for a body client"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "mfa_required");
    assert!(body["expires_in"].as_u64().unwrap() <= 300);
    let token = body["mfa_token"].as_str().unwrap().to_string();
    let response = post(
        &bare,
        &app,
        "/auth/login/mfa",
        json!({ "mfa_token": token, "code": code(&secret, 1) }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (access, _) = tokens_of(response).await;
    assert_eq!(app.bearer_me(&access).await.status(), StatusCode::OK);
    let response = post(
        &bare,
        &app,
        "/auth/login/mfa",
        json!({ "mfa_token": token, "code": "abcde-fghjk" }),
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "mfa_expired".into())
    );
}

async fn parallel_uses_of_one_code_sign_in_once(backend: Backend) {
    // The account's code limit out of the way: the losers' refusals count.
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "100")
        .spawn()
        .await;
    let (email, secret, codes) = protected_user(&app).await;
    // Ten pending sign-ins racing with the same app code, then with the same
    // recovery code: one of each signs in.
    for used in [code(&secret, 1), codes[0].clone()] {
        let mut browsers = Vec::new();
        for _ in 0..10 {
            browsers.push(password_step(&app, &email).await.0);
        }
        let before = app
            .count("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
            .await;
        let attempts: Vec<_> = browsers
            .into_iter()
            .map(|client| {
                let request = client
                    .post(app.url("/auth/login/mfa"))
                    .json(&json!({ "code": used }));
                tokio::spawn(async move { request.send().await.map(|r| r.status()) })
            })
            .collect();
        let mut statuses = Vec::new();
        for attempt in attempts {
            statuses.push(attempt.await.unwrap().expect("an answer"));
        }
        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(ok, 1, "{used}: {statuses:?}");
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::OK || *s == StatusCode::UNPROCESSABLE_ENTITY),
            "{statuses:?}"
        );
        let after = app
            .count("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
            .await;
        assert_eq!(after, before + 1);
    }
}

async fn turning_it_off_needs_password_and_code_and_ends_other_sessions(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_SMTP_URL", &mailbox.url())
        .with("PORTCULLIS_MAIL_RETRY_MAX", "200ms")
        .spawn()
        .await;
    let (email, secret, codes) = protected_user(&app).await;
    mailbox
        .wait_for(
            &email,
            "Two-factor sign-in is on for your Portcullis account",
        )
        .await;
    let (other, _) = password_step(&app, &email).await;
    assert_eq!(
        second_step(&other, &app, &codes[0]).await.status(),
        StatusCode::OK
    );
    mailbox
        .wait_for(
            &email,
            "A recovery code was used to sign in to your Portcullis account",
        )
        .await;

    let response = post(
        &app.client,
        &app,
        "/auth/mfa/totp/disable",
        json!({ "password": "not the password at all", "code": code(&secret, 1) }),
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_current_password".into()
        )
    );
    let response = post(
        &app.client,
        &app,
        "/auth/mfa/totp/disable",
        json!({ "password": PASSWORD, "code": codes[0] }),
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_code".into())
    );
    assert_eq!(
        me(&other, &app).await.status(),
        StatusCode::OK,
        "nothing changed"
    );

    let response = post(
        &app.client,
        &app,
        "/auth/mfa/totp/disable",
        json!({ "password": PASSWORD, "code": code(&secret, 1) }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["sessions_ended"], 1);
    assert_eq!(me(&other, &app).await.status(), StatusCode::UNAUTHORIZED);
    let body: Value = me(&app.client, &app).await.json().await.unwrap();
    assert_eq!(
        body["mfa"],
        json!({ "totp": false, "recovery_codes_left": 0 })
    );
    mailbox
        .wait_for(
            &email,
            "Two-factor sign-in is off for your Portcullis account",
        )
        .await;
    // The password alone signs in again; turning it off twice is a 409.
    let (again, _) = app.new_browser();
    assert_eq!(
        json_login(&again, &app, &email, PASSWORD).await,
        StatusCode::OK
    );
    let response = post(
        &app.client,
        &app,
        "/auth/mfa/totp/disable",
        json!({ "password": PASSWORD, "code": code(&secret, 1) }),
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::CONFLICT, "mfa_not_enabled".into())
    );
    for table in ["user_totp", "recovery_codes", "mfa_challenges"] {
        assert_eq!(
            app.count(&format!("SELECT COUNT(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
}

async fn new_recovery_codes_replace_the_old_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (email, secret, old) = protected_user(&app).await;
    let response = post(
        &app.client,
        &app,
        "/auth/mfa/recovery-codes",
        json!({ "password": PASSWORD, "code": code(&secret, 1) }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let new: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|code| !old.contains(code)));
    let (client, _) = password_step(&app, &email).await;
    let response = second_step(&client, &app, &old[0]).await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_code".into())
    );
    assert_eq!(
        second_step(&client, &app, &new[0]).await.status(),
        StatusCode::OK
    );
}

async fn a_reset_by_email_still_asks_for_the_code(backend: Backend) {
    let mailbox = Mailbox::start().await;
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_SMTP_URL", &mailbox.url())
        .with("PORTCULLIS_MAIL_RETRY_MAX", "200ms")
        .spawn()
        .await;
    let (email, secret, _) = protected_user(&app).await;
    let bare = app.bare_client();
    let response = post(
        &bare,
        &app,
        "/auth/password/forgot",
        json!({ "email": email }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let mail = mailbox
        .wait_for(&email, "Reset your Portcullis password")
        .await;
    let token = mail.token(&app.link_url("/reset-password?token="));
    let response = post(
        &bare,
        &app,
        "/auth/password/reset",
        json!({ "token": token, "password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (client, _) = app.new_browser();
    let response = post(
        &client,
        &app,
        "/auth/login",
        json!({ "email": email, "password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "mfa_required".into())
    );
    assert_eq!(
        second_step(&client, &app, &code(&secret, 1)).await.status(),
        StatusCode::OK
    );
}

async fn setting_up_again_without_a_recent_sign_in_needs_the_password(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_REAUTH_WINDOW", "1s")
        .spawn()
        .await;
    app.signed_up_user().await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let response = post(&app.client, &app, "/auth/mfa/totp/setup", json!({})).await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::FORBIDDEN, "reauth_required".into())
    );
    let response = post(
        &app.client,
        &app,
        "/auth/mfa/totp/setup",
        json!({ "password": "not the password at all" }),
    )
    .await;
    assert_eq!(
        error_code(response).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_current_password".into()
        )
    );
    let response = post(
        &app.client,
        &app,
        "/auth/mfa/totp/setup",
        json!({ "password": PASSWORD }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// One SQLite instance generates its data key once, into the data
/// directory: a secret sealed before a restart opens after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_data_key_outlives_a_restart() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (email, secret, _) = protected_user(&app).await;
    let key_file = app.env.data_dir.path().join("data-sealing.key");
    let before = std::fs::read_to_string(&key_file).expect("the generated key file");
    let env = app.env.clone();
    drop(app);
    let restarted = TestApp::start(env, &[]).await;
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), before);
    let (client, _) = password_step(&restarted, &email).await;
    assert_eq!(
        second_step(&client, &restarted, &code(&secret, 1))
            .await
            .status(),
        StatusCode::OK
    );
}

/// Instances sharing a PostgreSQL database must share the data key: without
/// one configured, an instance refuses to start, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgresql_the_data_key_must_be_configured() {
    let Some(backend) =
        Backend::postgres_or_skip("with_postgresql_the_data_key_must_be_configured").await
    else {
        return;
    };
    let env = Environment::new(backend).await;
    let mut vars = env.vars();
    vars.remove("PORTCULLIS_DATA_KEY");
    let leptos = leptos::config::LeptosOptions::builder()
        .output_name("portcullis")
        .site_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .build();
    let settings = portcullis::server::Settings::from_lookup(|key| vars.get(key).cloned(), leptos)
        .expect("valid settings");
    let error = match portcullis::server::Application::build(settings).await {
        Ok(_) => panic!("an instance started without a data key on PostgreSQL"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("PORTCULLIS_DATA_KEY must be set with PostgreSQL"),
        "{error}"
    );
    assert!(!env.data_dir.path().join("data-sealing.key").exists());
}

async fn the_sweeper_removes_expired_pending_sign_ins_and_unconfirmed_set_ups(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (email, _, _) = protected_user(&app).await;
    let (stale, _) = password_step(&app, &email).await;
    password_step(&app, &email).await;
    // Another account sets an app up and never confirms it.
    let (other, _) = app.new_browser();
    sign_up_with(&other, &app.address, &unique_email()).await;
    assert_eq!(
        post(&other, &app, "/auth/mfa/totp/setup", json!({}))
            .await
            .status(),
        StatusCode::OK
    );
    // One pending sign-in expires, and the set-up grows old.
    let (expire, age) = match backend {
        Backend::Sqlite => (
            "UPDATE mfa_challenges SET expires_at = expires_at - 600000 \
             WHERE created_at = (SELECT MIN(created_at) FROM mfa_challenges)",
            "UPDATE user_totp SET created_at = created_at - 3600000 WHERE enabled_at IS NULL",
        ),
        Backend::Postgres => (
            "UPDATE mfa_challenges SET expires_at = expires_at - interval '10 minutes' \
             WHERE created_at = (SELECT MIN(created_at) FROM mfa_challenges)",
            "UPDATE user_totp SET created_at = created_at - interval '1 hour' WHERE enabled_at IS NULL",
        ),
    };
    app.execute(expire).await;
    app.execute(age).await;
    let response = second_step(&stale, &app, "abcde-fghjk").await;
    assert_eq!(
        error_code(response).await,
        (StatusCode::UNAUTHORIZED, "mfa_expired".into())
    );
    let report = portcullis::server::sweeper::sweep_once(
        app.store(),
        &app.state.settings.maintenance,
        &app.state.settings.throttle,
    )
    .await
    .unwrap();
    assert_eq!(report.challenges, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM mfa_challenges").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM user_totp WHERE enabled_at IS NOT NULL")
            .await,
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM user_totp").await, 1);
}

async fn fresh_recovery_codes_are_shown_and_downloadable_once_in_their_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    early_in_a_step().await;
    let email = app.signed_up_user().await;
    let setup: Value = post(&app.client, &app, "/auth/mfa/totp/setup", json!({}))
        .await
        .json()
        .await
        .unwrap();
    let secret = TotpSecret::from_base32(setup["secret"].as_str().unwrap()).unwrap();
    // Confirmed through the page's server function: the codes go to their
    // page in a sealed cookie, never in the answer.
    let response = server_fn_with(
        &app.client,
        &app.address,
        "confirm_totp",
        &[("code", &code(&secret, 0))],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "null");
    let shown: Vec<String> = server_fn_with(&app.client, &app.address, "shown_recovery_codes", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown.len(), 10);
    let file = app.api_get("/account/recovery-codes.txt").await;
    assert_eq!(file.status(), StatusCode::OK);
    assert!(
        file.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"),
    );
    let text = file.text().await.unwrap();
    for code in &shown {
        assert!(text.contains(code.as_str()), "{code} in {text}");
    }
    // Another session of the same account sees none, even with the cookie.
    let sealed = cookie_in(&app.jar, &app.address, "portcullis_codes").expect("the codes cookie");
    let (other, jar) = password_step(&app, &email).await;
    assert_eq!(
        second_step(&other, &app, &shown[0]).await.status(),
        StatusCode::OK
    );
    let access = cookie_in(&jar, &app.address, app.access_cookie_name()).expect("signed in");
    let response = app
        .bare_client()
        .get(app.url("/account/recovery-codes.txt"))
        .header(
            "cookie",
            format!(
                "{}={access}; portcullis_codes={sealed}",
                app.access_cookie_name()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // "I have saved them": gone from this session too.
    let response = server_fn_with(&app.client, &app.address, "forget_recovery_codes", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.api_get("/account/recovery-codes.txt").await.status(),
        StatusCode::NOT_FOUND
    );
    let shown: Vec<String> = server_fn_with(&app.client, &app.address, "shown_recovery_codes", &[])
        .await
        .json()
        .await
        .unwrap();
    assert!(shown.is_empty());
}

/// `GET /auth/me` takes the second factors from the session check's own
/// query; after a renewal (no check of an access token) it reads them
/// itself. All three ways agree, and follow a used recovery code.
async fn me_reports_second_factors_however_the_request_was_signed_in(backend: Backend) {
    use portcullis::server::time::Timestamp;

    let app = TestApp::spawn(backend).await;
    let (email, _secret, codes) = protected_user(&app).await;
    let (user, session) = app.ids().await;
    let refresh = app
        .cookie(app.refresh_cookie_name())
        .expect("refresh cookie");
    let mfa = |left: i64| json!({ "totp": true, "recovery_codes_left": left });
    let body = |response: reqwest::Response| async move {
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()["mfa"].clone()
    };

    // Cookies with a live access token, and a bearer token.
    assert_eq!(body(me(&app.client, &app).await).await, mfa(10));
    let access = app.mint_access_token(user, session, Timestamp::now());
    assert_eq!(body(app.bearer_me(&access).await).await, mfa(10));
    // An expired access token, renewed from the refresh token on the way.
    let stale = app.mint_access_token(
        user,
        session,
        Timestamp::now().minus(Duration::from_secs(3600)),
    );
    let response = app.cookie_me(&stale, &refresh).await;
    assert_eq!(set_cookies(&response).len(), 2, "renewed");
    assert_eq!(body(response).await, mfa(10));

    // A recovery code used in another browser: one fewer, at once.
    let (other, _) = password_step(&app, &email).await;
    assert_eq!(
        second_step(&other, &app, &codes[0]).await.status(),
        StatusCode::OK
    );
    assert_eq!(body(app.bearer_me(&access).await).await, mfa(9));
}
