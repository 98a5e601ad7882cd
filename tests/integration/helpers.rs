//! The test harness: a real Portcullis server per test, over HTTP.
//!
//! `TestApp` builds the same `Application` as `main`, on port 0, against a
//! fresh SQLite file in a temporary directory or a freshly created PostgreSQL
//! database (dropped afterwards). Tests talk to it with a cookie-keeping
//! client, exactly like a browser with JavaScript or a script would.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use portcullis::server::{
    Application, Settings,
    db::{SessionId, Store, UserId},
    state::AppState,
    time::Timestamp,
};
use reqwest::{
    Client, Response, StatusCode,
    cookie::{CookieStore, Jar},
};
use serde_json::{Value, json};
use std::{collections::HashMap, sync::Arc, time::Duration};
use uuid::Uuid;

pub const PASSWORD: &str = "violet kettle anthem 42";

/// Every request a test sends gives up after this long, so a server that
/// never answers fails that test, by name, instead of stalling the run.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The one way tests build an HTTP client: with [`REQUEST_TIMEOUT`].
pub fn http() -> reqwest::ClientBuilder {
    Client::builder().timeout(REQUEST_TIMEOUT)
}

/// A client with no cookie store that follows redirects.
pub fn plain_client() -> Client {
    http().build().expect("an HTTP client")
}
pub const NEW_PASSWORD: &str = "copper lantern meadow 17";

/// Runs each named `async fn NAME(backend: Backend)` once per storage
/// backend, as `sqlite::NAME` and `postgres::NAME`: the same test, never a
/// copy. The PostgreSQL run is skipped (with a printed notice) when no server
/// is reachable, except under `CI=true`, where that fails.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) =
                        $crate::helpers::Backend::postgres_or_skip(stringify!($name)).await
                    {
                        super::$name(backend).await;
                    }
                }
            )*
        }
    };
}
pub(crate) use backend_tests;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the PostgreSQL server is; tests create and drop their own databases.
pub fn postgres_admin_url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl Backend {
    pub async fn postgres_or_skip(test: &str) -> Option<Backend> {
        let reachable = tokio::time::timeout(
            Duration::from_secs(5),
            sqlx::PgPool::connect(&postgres_admin_url()),
        )
        .await
        .map(|r| r.map(drop).is_ok())
        .unwrap_or(false);
        if reachable {
            return Some(Backend::Postgres);
        }
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true but no PostgreSQL is reachable at {}",
                postgres_admin_url()
            );
        }
        eprintln!(
            "NOTICE: skipping the PostgreSQL run of {test}: no PostgreSQL at {}",
            postgres_admin_url()
        );
        None
    }
}

/// A freshly created, uniquely named PostgreSQL database, dropped on drop.
pub struct TestDatabase {
    pub url: String,
    name: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        let name = format!("portcullis_test_{}", Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&postgres_admin_url())
            .await
            .expect("PostgreSQL is reachable");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create a test database");
        admin.close().await;
        let base = postgres_admin_url();
        let url = match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("PORTCULLIS_TEST_POSTGRES_URL must name a database"),
        };
        TestDatabase { url, name }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async; use a private runtime on a plain thread.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(admin) = sqlx::PgPool::connect(&postgres_admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&admin)
                        .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// Everything a server needs that lives outside it: data directory and
/// database. Shared by several instances in the multi-instance tests.
pub struct Environment {
    pub backend: Backend,
    pub data_dir: tempfile::TempDir,
    pub database_url: String,
    pub jwt_keys: String,
    /// `PORTCULLIS_DATA_KEY` of a deployment that configures it.
    pub data_key: String,
    _database: Option<TestDatabase>,
}

impl Environment {
    pub async fn new(backend: Backend) -> Environment {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let (database_url, database) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}/portcullis.db", data_dir.path().display()),
                None,
            ),
            Backend::Postgres => {
                let db = TestDatabase::create().await;
                (db.url.clone(), Some(db))
            }
        };
        Environment {
            backend,
            data_dir,
            database_url,
            jwt_keys: format!(
                "test:{}",
                STANDARD.encode(Uuid::new_v4().as_bytes().repeat(2))
            ),
            data_key: format!(
                "test:{}",
                STANDARD.encode(Uuid::new_v4().as_bytes().repeat(2))
            ),
            _database: database,
        }
    }

    /// Settings as a server of this environment reads them from its
    /// environment variables.
    pub fn vars(&self) -> HashMap<String, String> {
        let mut vars = HashMap::from([
            (
                "PORTCULLIS_DATA_DIR".to_string(),
                self.data_dir.path().display().to_string(),
            ),
            ("DATABASE_URL".to_string(), self.database_url.clone()),
            (
                "PORTCULLIS_DB_ACQUIRE_TIMEOUT".to_string(),
                "2s".to_string(),
            ),
        ]);
        // SQLite exercises the generated key files; PostgreSQL requires keys.
        if self.backend == Backend::Postgres {
            vars.insert("PORTCULLIS_JWT_KEYS".into(), self.jwt_keys.clone());
            vars.insert("PORTCULLIS_DATA_KEY".into(), self.data_key.clone());
        }
        vars
    }
}

pub struct TestAppBuilder {
    backend: Backend,
    overrides: Vec<(String, String)>,
}

impl TestAppBuilder {
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.overrides.push((key.to_string(), value.to_string()));
        self
    }

    pub async fn spawn(self) -> TestApp {
        let env = Environment::new(self.backend).await;
        TestApp::start(Arc::new(env), &self.overrides).await
    }
}

pub struct TestApp {
    pub address: String,
    pub state: AppState,
    /// A client that keeps cookies, like a browser.
    pub client: Client,
    pub jar: Arc<Jar>,
    pub env: Arc<Environment>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl TestApp {
    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            backend,
            overrides: Vec::new(),
        }
    }

    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::builder(backend).spawn().await
    }

    /// Starts another instance on the same environment (same database).
    pub async fn start(env: Arc<Environment>, overrides: &[(String, String)]) -> TestApp {
        let mut vars = env.vars();
        vars.extend(overrides.iter().cloned());
        let leptos = leptos::config::LeptosOptions::builder()
            .output_name("portcullis")
            .site_root(env.data_dir.path().join("site").display().to_string())
            .site_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .build();
        let settings = Settings::from_lookup(|key| vars.get(key).cloned(), leptos)
            .expect("valid test settings");
        let app = Application::build(settings)
            .await
            .expect("the application builds");
        let port = app.port();
        let state = app.state();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = stop.await;
        }));
        let jar = Arc::new(Jar::default());
        let client = http()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            state,
            client,
            jar,
            env,
            shutdown: Some(shutdown),
        }
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `path` as mail links it: at the development origin, `localhost` on
    /// the server's port (the tests talk to it as 127.0.0.1).
    pub fn link_url(&self, path: &str) -> String {
        self.url(path).replacen("//127.0.0.1:", "//localhost:", 1)
    }

    /// A second browser (its own cookies) on the same server.
    pub fn new_browser(&self) -> (Client, Arc<Jar>) {
        let jar = Arc::new(Jar::default());
        let client = http()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        (client, jar)
    }

    /// A client with no cookie store, for replaying exact cookies.
    pub fn bare_client(&self) -> Client {
        http()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client")
    }

    /// The value of cookie `name` in this app's client jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        cookie_in(&self.jar, &self.address, name)
    }

    pub fn access_cookie_name(&self) -> &'static str {
        self.state.cookies.access_name()
    }

    pub fn refresh_cookie_name(&self) -> &'static str {
        self.state.cookies.refresh_name()
    }

    /// The `Cookie` header this browser currently sends.
    pub fn cookie_header(&self) -> String {
        self.jar
            .cookies(&self.address.parse().expect("a URL"))
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }

    // ---- server functions, as the hydrated app calls them ----

    pub async fn server_fn(&self, name: &str, form: &[(&str, &str)]) -> Response {
        server_fn_with(&self.client, &self.address, name, form).await
    }

    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.server_fn(
            "register",
            &[
                ("email", email),
                ("password", password),
                ("password_confirm", password),
            ],
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.server_fn("login", &[("email", email), ("password", password)])
            .await
    }

    pub async fn logout(&self) -> Response {
        self.server_fn("logout", &[]).await
    }

    pub async fn change_password(&self, current: &str, new: &str, confirm: &str) -> Response {
        self.server_fn(
            "change_password",
            &[
                ("current_password", current),
                ("new_password", new),
                ("new_password_confirm", confirm),
            ],
        )
        .await
    }

    pub async fn current_user(&self) -> Value {
        let response = self.server_fn("current_user", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("JSON")
    }

    /// Registers a fresh account, signs this client in with it, and returns
    /// its email.
    pub async fn signed_up_user(&self) -> String {
        let email = unique_email();
        let response = self.register(&email, PASSWORD).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "register: {}",
            response.text().await.unwrap_or_default()
        );
        let response = self.login(&email, PASSWORD).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "login: {}",
            response.text().await.unwrap_or_default()
        );
        email
    }

    // ---- JSON API ----

    pub async fn api_get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn api_post(&self, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn me(&self) -> Response {
        self.api_get("/auth/me").await
    }

    /// The ids behind the current session, from `/auth/me`.
    pub async fn ids(&self) -> (UserId, SessionId) {
        ids_of(self.me().await).await
    }

    /// An access token for `user`/`session` as the server would have issued
    /// it at `issued_at`: for testing expiry without waiting.
    pub fn mint_access_token(
        &self,
        user: UserId,
        session: SessionId,
        issued_at: Timestamp,
    ) -> String {
        self.state
            .auth
            .tokens()
            .issue_access(user, session, issued_at)
            .expect("signing works")
            .0
    }

    /// Signs in through the JSON API asking for tokens in the body.
    pub async fn bearer_login(&self, email: &str, password: &str) -> (String, String) {
        let response = self
            .bare_client()
            .post(self.url("/auth/login"))
            .json(&json!({ "email": email, "password": password, "token_delivery": "body" }))
            .send()
            .await
            .expect("request");
        tokens_of(response).await
    }
}

/// Signs in through the JSON API with `client` (cookie delivery) and
/// returns the status.
pub async fn json_login(client: &Client, app: &TestApp, email: &str, password: &str) -> StatusCode {
    client
        .post(app.url("/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("an answer")
        .status()
}

pub async fn server_fn_with(
    client: &Client,
    address: &str,
    name: &str,
    form: &[(&str, &str)],
) -> Response {
    client
        .post(format!("{address}/api/{name}"))
        .header("accept", "application/json")
        .form(form)
        .send()
        .await
        .expect("request")
}

/// Registers `email` through the server functions a browser calls and signs
/// `client` in with it: the sign-in's answer (with its cookies).
pub async fn sign_up_with(client: &Client, address: &str, email: &str) -> Response {
    let registered = server_fn_with(
        client,
        address,
        "register",
        &[
            ("email", email),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(registered.status(), StatusCode::OK, "register");
    server_fn_with(
        client,
        address,
        "login",
        &[("email", email), ("password", PASSWORD)],
    )
    .await
}

pub fn cookie_in(jar: &Jar, address: &str, name: &str) -> Option<String> {
    let header = jar.cookies(&address.parse().expect("a URL"))?;
    header
        .to_str()
        .ok()?
        .split("; ")
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub async fn ids_of(response: Response) -> (UserId, SessionId) {
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.expect("JSON");
    let user = Uuid::parse_str(me["id"].as_str().expect("id")).expect("uuid");
    let session = Uuid::parse_str(me["session_id"].as_str().expect("session id")).expect("uuid");
    (UserId(user), SessionId(session))
}

pub fn unique_email() -> String {
    format!("user-{}@example.com", Uuid::new_v4().simple())
}

/// Every `Set-Cookie` header of a response.
pub fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .collect()
}

/// Whether the response expires cookie `name` (empty value and `Max-Age=0`
/// or an `Expires` in the past).
pub fn expires_cookie(response: &Response, name: &str) -> bool {
    set_cookies(response).iter().any(|c| {
        c.starts_with(&format!("{name}=;"))
            && (c.contains("Max-Age=0") || c.contains("Expires=Thu, 01 Jan 1970 00:00:00 GMT"))
    })
}

pub async fn error_code(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["code"].as_str().unwrap_or_default().to_string(),
    )
}

/// The state an attack must not change: users with their password hashes,
/// sessions with their revocation, refresh tokens with their retirement.
const SNAPSHOT_QUERIES: [&str; 3] = [
    "SELECT email_normalized || ' ' || password_hash || ' ' || \
     CASE WHEN email_verified_at IS NULL THEN 'unverified' ELSE 'verified' END \
     FROM users ORDER BY email_normalized",
    "SELECT CASE WHEN revoked_at IS NULL THEN 'live' ELSE 'revoked' END FROM sessions ORDER BY id",
    "SELECT CASE WHEN retired_at IS NULL THEN 'live' ELSE 'retired' END FROM refresh_tokens ORDER BY token_hash",
];

impl TestApp {
    /// Reads the security-relevant state straight from the database.
    pub async fn snapshot(&self) -> Vec<Vec<String>> {
        let mut state = Vec::new();
        for query in SNAPSHOT_QUERIES {
            let rows: Vec<String> = match self.env.backend {
                Backend::Sqlite => {
                    let pool = sqlx::SqlitePool::connect(&self.env.database_url)
                        .await
                        .expect("connect");
                    let rows = sqlx::query_scalar(query)
                        .fetch_all(&pool)
                        .await
                        .expect("SQL runs");
                    pool.close().await;
                    rows
                }
                Backend::Postgres => {
                    let pool = sqlx::PgPool::connect(&self.env.database_url)
                        .await
                        .expect("connect");
                    let rows = sqlx::query_scalar(query)
                        .fetch_all(&pool)
                        .await
                        .expect("SQL runs");
                    pool.close().await;
                    rows
                }
            };
            state.push(rows);
        }
        state
    }

    /// Runs a statement straight on the database (to set up state an older
    /// version would have left).
    pub async fn execute(&self, sql: &str) {
        match self.env.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.env.database_url)
                    .await
                    .expect("connect");
                sqlx::query(sql).execute(&pool).await.expect("SQL runs");
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.env.database_url)
                    .await
                    .expect("connect");
                sqlx::query(sql).execute(&pool).await.expect("SQL runs");
                pool.close().await;
            }
        }
    }

    /// A `SELECT COUNT(*) …`, straight from the database.
    pub async fn count(&self, sql: &str) -> i64 {
        match self.env.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.env.database_url)
                    .await
                    .expect("connect");
                let n = sqlx::query_scalar(sql)
                    .fetch_one(&pool)
                    .await
                    .expect("SQL runs");
                pool.close().await;
                n
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.env.database_url)
                    .await
                    .expect("connect");
                let n = sqlx::query_scalar(sql)
                    .fetch_one(&pool)
                    .await
                    .expect("SQL runs");
                pool.close().await;
                n
            }
        }
    }

    /// Refreshes with a refresh token in the body, as a bearer client does.
    pub async fn bearer_refresh(&self, refresh_token: &str) -> Response {
        self.bare_client()
            .post(self.url("/auth/refresh"))
            .json(&json!({ "refresh_token": refresh_token }))
            .send()
            .await
            .expect("request")
    }

    pub async fn bearer_me(&self, access_token: &str) -> Response {
        self.bare_client()
            .get(self.url("/auth/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request")
    }

    /// `GET /auth/me` from a browser holding exactly these two cookies.
    pub async fn cookie_me(&self, access_token: &str, refresh_token: &str) -> Response {
        self.bare_client()
            .get(self.url("/auth/me"))
            .header(
                "cookie",
                format!(
                    "{}={access_token}; {}={refresh_token}",
                    self.access_cookie_name(),
                    self.refresh_cookie_name()
                ),
            )
            .send()
            .await
            .expect("request")
    }
}

/// The tokens of a body-delivery answer.
pub async fn tokens_of(response: Response) -> (String, String) {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    (
        body["tokens"]["access_token"]
            .as_str()
            .expect("access token")
            .to_string(),
        body["tokens"]["refresh_token"]
            .as_str()
            .expect("refresh token")
            .to_string(),
    )
}
