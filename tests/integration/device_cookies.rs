//! OWASP's device cookie against targeted lockout: a stranger's wrong
//! passwords lock an account for unknown devices, while a browser that signed
//! in to it before keeps signing in, after signing out too. A very high
//! account-wide backstop still applies to everyone.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

const DEVICE_COOKIE: &str = "portcullis_device";

/// A stranger (no cookies) guessing until the account locks.
async fn lock_out(app: &TestApp, email: &str, failures: usize) {
    let stranger = plain_client();
    for _ in 0..failures {
        assert_eq!(
            json_login(&stranger, app, email, "a stranger's guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        json_login(&stranger, app, email, "a stranger's guess").await,
        StatusCode::TOO_MANY_REQUESTS,
        "locked for unknown devices"
    );
}

async fn the_owner_signs_in_again_after_signing_out_while_strangers_are_locked_out(
    backend: Backend,
) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "3")
        .with("PORTCULLIS_LOGIN_BACKOFF_BASE", "5m")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    assert!(
        app.cookie(DEVICE_COOKIE).is_some(),
        "registration marks the device"
    );
    let logout = app.logout().await;
    assert_eq!(logout.status(), StatusCode::OK);
    assert!(
        !expires_cookie(&logout, DEVICE_COOKIE),
        "sign-out keeps the device cookie"
    );
    assert_eq!(
        logout.headers()["clear-site-data"],
        "\"cache\", \"storage\""
    );
    assert!(app.cookie(DEVICE_COOKIE).is_some());

    lock_out(&app, &email, 3).await;
    // Someone else with the right password, on a device never used here.
    let (new_device, _) = app.new_browser();
    assert_eq!(
        json_login(&new_device, &app, &email, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The owner's browser.
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(app.me().await.status(), StatusCode::OK);
}

/// A known device guessing is limited on its own key, like any device.
async fn a_known_device_that_guesses_is_locked_on_its_own(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "3")
        .with("PORTCULLIS_LOGIN_BACKOFF_BASE", "5m")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    app.logout().await;
    for _ in 0..3 {
        assert_eq!(
            app.login(&email, "the owner's typo").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.login(&email, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Unknown devices were not locked by the known device's failures.
    let (other, _) = app.new_browser();
    assert_eq!(
        json_login(&other, &app, &email, PASSWORD).await,
        StatusCode::OK
    );
}

/// A device cookie proves a past sign-in to one account only, and only when
/// this server signed it.
async fn a_device_cookie_of_another_account_or_a_forged_one_is_not_trusted(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "3")
        .with("PORTCULLIS_LOGIN_BACKOFF_BASE", "5m")
        .spawn()
        .await;
    let victim = app.signed_up_user().await;
    app.logout().await;
    let (attacker, _) = app.new_browser();
    let attacker_email = unique_email();
    let registered = sign_up_with(&attacker, &app.address, &attacker_email).await;
    assert_eq!(registered.status(), StatusCode::OK);
    let attacker_device = set_cookies(&registered)
        .into_iter()
        .find(|c| c.starts_with(&format!("{DEVICE_COOKIE}=")))
        .expect("a device cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    lock_out(&app, &victim, 3).await;
    for cookie in [
        attacker_device.clone(),
        format!("{DEVICE_COOKIE}=test.AAAAAAAAAAAAAAAAAAAAAA.AAAA"),
        format!("{DEVICE_COOKIE}=garbage"),
    ] {
        let status = plain_client()
            .post(app.url("/auth/login"))
            .header("cookie", &cookie)
            .json(&json!({ "email": victim, "password": PASSWORD }))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{cookie}");
    }
    assert_eq!(app.login(&victim, PASSWORD).await.status(), StatusCode::OK);
}

/// Past the account-wide backstop, known devices wait too.
async fn the_backstop_locks_every_device(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "3")
        .with("PORTCULLIS_LOGIN_BACKSTOP_FAILURES", "4")
        .with("PORTCULLIS_LOGIN_BACKOFF_BASE", "5m")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    app.logout().await;
    // Three failures from unknown devices, one from the owner's: four in
    // all, while the owner's own key has one.
    lock_out(&app, &email, 3).await;
    assert_eq!(
        app.login(&email, "the owner's typo").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login(&email, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

backend_tests!(
    the_owner_signs_in_again_after_signing_out_while_strangers_are_locked_out,
    a_known_device_that_guesses_is_locked_on_its_own,
    a_device_cookie_of_another_account_or_a_forged_one_is_not_trusted,
    the_backstop_locks_every_device,
);
