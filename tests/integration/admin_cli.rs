//! `portcullis admin …`, run as an operator runs it: the built binary, in its
//! own process, against the database of running servers (two instances on
//! PostgreSQL), with the effect checked over HTTP on every instance.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{
        Backend, Environment, NEW_PASSWORD, PASSWORD, TestApp, backend_tests, error_code,
        plain_client, unique_email,
    },
    process::{
        ServerProcess, admin, bearer_login_on, bearer_me_on, client, free_port, register_on,
    },
};

async fn refresh_on(server: &ServerProcess, refresh: &str) -> StatusCode {
    plain_client()
        .post(server.url("/auth/refresh"))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await
        .expect("an answer")
        .status()
}

async fn login_on(server: &ServerProcess, email: &str, password: &str) -> (StatusCode, String) {
    error_code(
        plain_client()
            .post(server.url("/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("an answer"),
    )
    .await
}

/// The instances of one deployment: two on PostgreSQL, one on SQLite (a
/// file that one server owns; the CLI is the second process).
async fn instances(env: &Environment) -> Vec<ServerProcess> {
    let mut servers = vec![ServerProcess::start(env, &[]).await];
    if env.backend == Backend::Postgres {
        servers.push(ServerProcess::start(env, &[]).await);
    }
    servers
}

async fn sign_out_ends_every_session_at_once_on_every_instance(backend: Backend) {
    let env = Environment::new(backend).await;
    let servers = instances(&env).await;
    let browser = client();
    let email = register_on(&servers[0], &browser).await;
    let bearers: Vec<_> = {
        let mut tokens = Vec::new();
        for server in &servers {
            tokens.push(bearer_login_on(server, &email).await);
        }
        tokens
    };
    let local = email.split('@').next().unwrap().to_uppercase();
    let users = admin(&env, &[], &["users", "--search", &local, "--json"]).await;
    assert_eq!(users.code, Some(0), "{}", users.stderr);
    let listed = users.json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["email"], email.as_str());
    assert_eq!(listed[0]["live_sessions"], 1 + servers.len() as i64);
    assert_eq!(listed[0]["disabled"], false);
    assert!(listed[0]["last_sign_in"].is_string());

    let text = admin(&env, &[], &["users"]).await;
    assert_eq!(text.code, Some(0));
    assert!(text.stdout.starts_with("ID "), "{}", text.stdout);
    assert!(text.stdout.contains(&email));

    let out = admin(&env, &[], &["sign-out", &email, "--json"]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.json()["sessions_ended"], 1 + servers.len() as i64);
    // The very next request, on every instance.
    for server in &servers {
        for (access, refresh) in &bearers {
            assert_eq!(bearer_me_on(server, access).await, StatusCode::UNAUTHORIZED);
            assert_eq!(refresh_on(server, refresh).await, StatusCode::UNAUTHORIZED);
        }
        let me = browser.get(server.url("/auth/me")).send().await.unwrap();
        assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    }
    let sessions = admin(&env, &[], &["sessions", &email, "--json"]).await;
    assert_eq!(sessions.code, Some(0), "{}", sessions.stderr);
    let sessions = sessions.json();
    let sessions = sessions["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1 + servers.len());
    assert!(
        sessions
            .iter()
            .all(|s| s["live"] == false && s["state"] == "ended: admin"),
        "{sessions:?}"
    );
    // The person signs in again, as usual.
    assert_eq!(
        login_on(&servers[0], &email, PASSWORD).await.0,
        StatusCode::OK
    );
}

async fn a_disabled_account_cannot_sign_in_refresh_or_recover_until_enabled(backend: Backend) {
    let env = Environment::new(backend).await;
    let servers = instances(&env).await;
    let email = register_on(&servers[0], &client()).await;
    let (access, refresh) = bearer_login_on(&servers[0], &email).await;

    let out = admin(&env, &[], &["disable", &email, "--reason", "laptop stolen"]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("Disabled"), "{}", out.stdout);
    for server in &servers {
        assert_eq!(
            bearer_me_on(server, &access).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(refresh_on(server, &refresh).await, StatusCode::UNAUTHORIZED);
        // The right password learns it is disabled; a wrong one learns
        // nothing (the same answer as for an address with no account).
        assert_eq!(
            login_on(server, &email, PASSWORD).await,
            (StatusCode::FORBIDDEN, "account_disabled".into())
        );
        assert_eq!(
            login_on(server, &email, NEW_PASSWORD).await,
            login_on(server, &unique_email(), NEW_PASSWORD).await
        );
    }
    // Recovery does not get around it: no reset link is mailed.
    let forgot = plain_client()
        .post(servers[0].url("/auth/password/forgot"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    assert_eq!(forgot.status(), StatusCode::ACCEPTED);
    // The request is handled after its answer: wait for its audit row.
    let mut handled = false;
    for _ in 0..100 {
        handled = every_row(&env).await.iter().any(|row| {
            row.starts_with("auth_events")
                && row.contains("password_reset_requested")
                && row.contains("disabled")
        });
        if handled {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        handled,
        "the request was handled as one for a disabled account"
    );
    let outbox = env.data_dir.path().join("outbox");
    let resets = std::fs::read_dir(&outbox)
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter(|e| {
                    std::fs::read_to_string(e.path())
                        .is_ok_and(|t| t.contains("Subject: Reset your Portcullis password"))
                })
                .count()
        })
        .unwrap_or(0);
    assert_eq!(resets, 0, "no reset link for a disabled account");

    let listed = admin(&env, &[], &["users", "--json"]).await.json();
    assert_eq!(listed[0]["disabled"], true);
    assert_eq!(listed[0]["disabled_reason"], "laptop stolen");
    let again = admin(&env, &[], &["disable", &email, "--json"]).await;
    assert_eq!(again.code, Some(0));
    assert_eq!(again.json()["changed"], false);

    let enabled = admin(&env, &[], &["enable", &email, "--json"]).await;
    assert_eq!(enabled.code, Some(0), "{}", enabled.stderr);
    assert_eq!(enabled.json()["changed"], true);
    for server in &servers {
        assert_eq!(login_on(server, &email, PASSWORD).await.0, StatusCode::OK);
    }
}

/// Every row of every table, as text (SQLite ids as hex too), for grepping.
async fn every_row(env: &Environment) -> Vec<String> {
    let mut rows = Vec::new();
    match env.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&env.database_url).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            for table in tables {
                let columns: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                let expr = columns
                    .iter()
                    .map(|c| {
                        format!(
                            "COALESCE(CASE WHEN typeof({c}) = 'blob' THEN hex({c}) \
                             ELSE CAST({c} AS TEXT) END, '')"
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" || '|' || ");
                let found: Vec<String> = sqlx::query_scalar(&format!("SELECT {expr} FROM {table}"))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
                rows.extend(found.into_iter().map(|r| format!("{table}: {r}")));
            }
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            for table in tables {
                let found: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT t::text FROM {table} t"))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                rows.extend(found.into_iter().map(|r| format!("{table}: {r}")));
            }
        }
    }
    rows
}

async fn delete_erases_everything_that_names_the_user(backend: Backend) {
    let env = Environment::new(backend).await;
    let servers = instances(&env).await;
    let email = register_on(&servers[0], &client()).await;
    let other = register_on(&servers[0], &client()).await;
    let (access, _) = bearer_login_on(&servers[0], &email).await;
    let id = plain_client()
        .get(servers[0].url("/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Traces of every kind: a failed sign-in (an audit row and a throttle
    // counter that name the address), a reset mail queued.
    assert_eq!(
        login_on(&servers[0], &email, NEW_PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    plain_client()
        .post(servers[0].url("/auth/password/forgot"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    let hex = id.replace('-', "").to_uppercase();
    let names = |rows: &[String]| {
        rows.iter()
            .filter(|r| {
                let lower = r.to_lowercase();
                lower.contains(&email) || lower.contains(&id) || r.contains(&hex)
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        !names(&every_row(&env).await).is_empty(),
        "the traces exist"
    );

    let refused = admin(&env, &[], &["delete", &email]).await;
    assert_eq!(refused.code, Some(1));
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_eq!(bearer_me_on(&servers[0], &access).await, StatusCode::OK);

    let deleted = admin(&env, &[], &["delete", &email, "--yes", "--json"]).await;
    assert_eq!(deleted.code, Some(0), "{}", deleted.stderr);
    assert_eq!(deleted.json()["deleted"], true);
    for server in &servers {
        assert_eq!(
            bearer_me_on(server, &access).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // Give a reset request still being handled time to finish: it must not
    // bring anything back.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let rows = every_row(&env).await;
    assert_eq!(names(&rows), Vec::<String>::new(), "nothing names the user");
    let deletions: Vec<_> = rows
        .iter()
        .filter(|r| r.starts_with("auth_events") && r.contains("user_deleted"))
        .collect();
    assert_eq!(deletions.len(), 1, "{deletions:?}");
    assert!(deletions[0].contains("by cli"), "{}", deletions[0]);
    // Someone else's account is untouched.
    assert_eq!(
        login_on(&servers[0], &other, PASSWORD).await.0,
        StatusCode::OK
    );
    let again = admin(&env, &[], &["delete", &email, "--yes"]).await;
    assert_eq!(again.code, Some(1));
}

async fn every_failure_is_one_specific_line(backend: Backend) {
    let env = Environment::new(backend).await;
    let _servers = instances(&env).await;
    let unknown = unique_email();
    let one_line = |run: &crate::process::AdminRun| {
        assert_eq!(run.stdout, "", "nothing on standard output");
        assert_eq!(run.stderr.trim().lines().count(), 1, "{:?}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    };
    for command in ["sessions", "sign-out", "disable", "enable"] {
        let run = admin(&env, &[], &[command, &unknown]).await;
        assert_eq!(run.code, Some(1), "{command}");
        one_line(&run);
        assert!(
            run.stderr
                .contains(&format!("no user with the email {unknown}")),
            "{command}: {}",
            run.stderr
        );
    }
    let run = admin(&env, &[], &["sessions", "not-an-email"]).await;
    assert_eq!(run.code, Some(1));
    one_line(&run);
    assert!(run.stderr.contains("invalid email"), "{}", run.stderr);

    let run = admin(&env, &[], &["disable", &unknown, "--reason", "two\nlines"]).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("invalid reason"), "{}", run.stderr);

    // Usage errors are clap's: the usage, and exit code 2.
    for args in [&["users", "--limit", "0"][..], &["nonsense"], &["sessions"]] {
        let run = admin(&env, &[], args).await;
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    }
    let help = admin(&env, &[], &["sign-out", "--help"]).await;
    assert_eq!(help.code, Some(0));
    assert!(
        help.stdout.contains("Ends every session"),
        "{}",
        help.stdout
    );

    let port = free_port();
    let down = match backend {
        Backend::Postgres => format!("postgres://admin:hunter2@127.0.0.1:{port}/nothing"),
        // A directory that cannot exist: its parent is a file.
        Backend::Sqlite => {
            let file = env.data_dir.path().join("not-a-directory");
            std::fs::write(&file, b"").unwrap();
            format!("sqlite://{}/portcullis.db", file.display())
        }
    };
    let run = admin(&env, &[("DATABASE_URL", &down)], &["users"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    one_line(&run);
    assert!(run.stderr.contains("database"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("hunter2"),
        "never the password: {}",
        run.stderr
    );

    let run = admin(
        &env,
        &[("PORTCULLIS_SESSION_IDLE_TIMEOUT", "soon")],
        &["users"],
    )
    .await;
    assert_eq!(run.code, Some(1));
    one_line(&run);
    assert!(
        run.stderr.contains("configuration")
            && run.stderr.contains("PORTCULLIS_SESSION_IDLE_TIMEOUT"),
        "{}",
        run.stderr
    );
}

/// Sign-ins with the right password racing a disable: whichever commits
/// first, no session outlives the disable (the session is created only if
/// the account is not disabled, in the same statement; the disable ends
/// every session that exists when it commits).
async fn no_sign_in_racing_a_disable_outlives_it(backend: Backend) {
    use portcullis::server::service::{Actor, Admin, UserRef};

    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "1000")
        .spawn()
        .await;
    let admin = Admin::new(app.store().clone(), &app.state.settings);
    for round in 0..6u64 {
        let email = unique_email();
        let registered = app
            .api_post(
                "/auth/register",
                json!({ "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(registered.status(), StatusCode::ACCEPTED);
        let logins: Vec<_> = (0..8)
            .map(|_| {
                let request = plain_client().post(app.url("/auth/login")).json(
                    &json!({ "email": email, "password": PASSWORD, "token_delivery": "body" }),
                );
                tokio::spawn(async move {
                    let response = request.send().await.expect("an answer");
                    let status = response.status();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    (
                        status,
                        body["tokens"]["access_token"].as_str().map(str::to_string),
                    )
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(5 + 10 * round)).await;
        admin
            .disable(UserRef::Email(&email), None, &Actor::Cli)
            .await
            .expect("disabled");
        for login in logins {
            let (status, access) = login.await.expect("the login finishes");
            assert!(
                [
                    StatusCode::OK,
                    StatusCode::FORBIDDEN,
                    StatusCode::UNAUTHORIZED
                ]
                .contains(&status),
                "round {round}: {status}"
            );
            if let Some(access) = access {
                assert_eq!(
                    app.bearer_me(&access).await.status(),
                    StatusCode::UNAUTHORIZED,
                    "round {round}: a session outlived the disable"
                );
            }
        }
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE u.email_normalized = '{email}' AND s.revoked_at IS NULL"
            ))
            .await,
            0,
            "round {round}"
        );
    }
}

backend_tests!(
    no_sign_in_racing_a_disable_outlives_it,
    sign_out_ends_every_session_at_once_on_every_instance,
    a_disabled_account_cannot_sign_in_refresh_or_recover_until_enabled,
    delete_erases_everything_that_names_the_user,
    every_failure_is_one_specific_line,
);
