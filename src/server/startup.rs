//! Building and running one Portcullis instance. `main` calls [`run`];
//! tests build an [`Application`] on port 0 and talk to it over HTTP.

use anyhow::Context;
use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{Next, from_fn, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::{any, get},
    serve::ListenerExt,
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use leptos::prelude::provide_context;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use sha2::{Digest, Sha256};
use std::{
    io::Write,
    net::SocketAddr,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
    sync::OnceLock,
    time::Duration,
};
use tokio::net::TcpListener;
use tower_cookies::CookieManagerLayer;
use tower_http::{
    compression::CompressionLayer,
    services::{ServeDir, ServeFile},
    set_header::SetResponseHeaderLayer,
    trace::{DefaultOnFailure, TraceLayer},
};

use super::{
    api,
    config::{JwtKeySpec, Settings, parse_jwt_keys},
    cookies::SessionCookies,
    db::{Engine, Store},
    middleware::{csrf, headers, server_fn_status, session},
    passwords::Passwords,
    service::AuthService,
    state::{AppState, StateInner},
    sweeper,
    tokens::{TokenIssuer, generate_jwt_secret},
};
use crate::{
    app::{App, shell},
    auth::{AppError, ErrorCode},
};

/// Starts the server from the environment and runs it until SIGTERM/Ctrl-C.
pub async fn run() -> anyhow::Result<()> {
    super::telemetry::init();
    let settings = Settings::from_env()?;
    let app = Application::build(settings).await?;
    tracing::info!(address = %app.local_addr(), origin = %app.state().public_origin, "Portcullis is listening");
    app.run_until_stopped().await.context("The server failed")
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(settings.leptos.site_addr)
            .await
            .with_context(|| format!("Failed to listen on {}", settings.leptos.site_addr))?;
        let local_addr = listener
            .local_addr()
            .context("Failed to read the bound address")?;
        let public_origin = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", loopback_display(local_addr)));
        let secure = settings
            .secure_cookies
            .unwrap_or(public_origin.starts_with("https://"));
        if !secure && !local_addr.ip().is_loopback() {
            tracing::warn!(
                "cookies are not Secure and the server listens beyond loopback; \
                 set PORTCULLIS_PUBLIC_URL=https://… behind TLS"
            );
        }
        let allowed_origins = match settings.public_url {
            Some(_) => vec![public_origin.clone()],
            None => development_origins(&public_origin, local_addr),
        };

        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "Failed to create the data directory {}",
                settings.data_dir.display()
            )
        })?;
        let store = Store::connect_lazy(&settings.database)?;
        let keys = load_jwt_keys(&settings, store.engine())?;
        let tokens = TokenIssuer::new(&keys, &settings.jwt)?;
        let passwords = Passwords::new(settings.passwords, settings.hashing).await?;
        let auth = AuthService::new(
            store.clone(),
            tokens,
            passwords,
            settings.sessions.clone(),
            settings.throttle,
        );

        let mut leptos = settings.leptos.clone();
        leptos.site_addr = local_addr;
        let state = AppState::new(StateInner::new(
            leptos,
            settings,
            store,
            auth,
            SessionCookies::new(secure),
            public_origin,
            allowed_origins,
        ));
        prepare_schema(&state).await?;
        let router = app_router(state.clone());
        Ok(Application {
            listener,
            router,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.state.leptos.site_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `signal` resolves, then stops accepting connections and
    /// lets in-flight requests finish.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let sweeper = sweeper::spawn(
            self.state.store.clone(),
            self.state.settings.maintenance,
            self.state.settings.throttle,
        );
        // Without TCP_NODELAY, keep-alive clients stall ~40 ms on small
        // responses (Nagle + delayed ACK).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::warn!(%error, "failed to set TCP_NODELAY");
            }
        });
        let result = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal)
        .await;
        sweeper.abort();
        self.state.store.close().await;
        result
    }
}

/// Every route of the application, with its middleware.
pub fn app_router(state: AppState) -> Router {
    let leptos_options = state.leptos.clone();
    let (auth_api, _) = api::router();
    // Server functions and pages find the state in their context, and pages
    // redirect with a real HTTP redirect whatever the client's `Accept`.
    let context = {
        let state = state.clone();
        move || {
            provide_context(state.clone());
            leptos_router::components::provide_server_redirect(page_redirect);
        }
    };
    let not_found = leptos_axum::render_app_to_stream_with_context(context.clone(), {
        let options = leptos_options.clone();
        move || shell(options.clone())
    });

    // `leptos_routes_with_context` also mounts every server function at its
    // `/api/…` endpoint; the wildcard answers for names that do not exist.
    let dynamic = Router::new()
        .route("/api/{*name}", any(unknown_server_fn))
        .leptos_routes_with_context(&state, app_routes(), context, {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        .merge(auth_api)
        .fallback(move |request: Request| not_found(request))
        .layer(from_fn(server_fn_status::server_fn_status))
        .layer(from_fn_with_state(state.clone(), session::resolve_session))
        .layer(from_fn_with_state(state.clone(), csrf::refuse_cross_site))
        .layer(CookieManagerLayer::new())
        .layer(from_fn_with_state(state.clone(), require_schema));

    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(static_routes(&leptos_options))
        .merge(dynamic)
        .layer(from_fn_with_state(state.clone(), headers::security_headers))
        // Faults are logged once, with their cause, where they are answered
        // (`AuthError::to_app_error`); a second line per 5xx says nothing new.
        .layer(
            TraceLayer::new_for_http()
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .with_state(state)
}

/// The app's page routes, generated once per process.
///
/// Generating them runs the whole app with a *process-global* flag set
/// (`leptos_server::SuppressResourceLoad`) that makes every `Resource` first
/// polled meanwhile wait forever, including one in a page another thread is
/// rendering for a real request: that response never starts (leptos-rs/leptos
/// #4773). So the list is made before the first `Application` serves anything
/// and never again, however many instances a process builds (tests build
/// one per test). The routes are the same for every instance.
fn app_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

async fn unknown_server_fn() -> AppError {
    AppError::new(ErrorCode::NotFound, "No such server function.")
}

/// `<Redirect/>` during server rendering: `302 Found` with `Location`.
fn page_redirect(path: &str) {
    if let (Some(response), Ok(location)) = (
        leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
        HeaderValue::from_str(path),
    ) {
        response.set_status(StatusCode::FOUND);
        response.insert_header(header::LOCATION, location);
    }
}

/// Compiled assets under `/pkg` and the files copied from `public/`, served
/// without touching sessions or the database. `/pkg` names are not hashed,
/// so browsers revalidate (`no-cache`, answered with 304 when unchanged).
fn static_routes(options: &leptos::config::LeptosOptions) -> Router<AppState> {
    let site_root = Path::new(&*options.site_root);
    let pkg_dir = site_root.join(&*options.site_pkg_dir);
    let revalidate = SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    let mut router = Router::new().nest_service(
        &format!("/{}", options.site_pkg_dir),
        tower::ServiceBuilder::new()
            .layer(revalidate.clone())
            .layer(CompressionLayer::new())
            .service(ServeDir::new(&pkg_dir)),
    );
    let daily = SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    if let Ok(entries) = std::fs::read_dir(site_root) {
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            if *name == *options.site_pkg_dir || name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                router = router.nest_service(
                    &format!("/{name}"),
                    tower::ServiceBuilder::new()
                        .layer(daily.clone())
                        .service(ServeDir::new(&path)),
                );
            } else {
                router = router.route_service(
                    &format!("/{name}"),
                    tower::ServiceBuilder::new()
                        .layer(daily.clone())
                        .service(ServeFile::new(&path)),
                );
            }
        }
    }
    router
}

/// Liveness: the process answers.
async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: migrations are applied and the database answers now.
async fn readyz(State(state): State<AppState>) -> Response {
    if !state.schema_ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "starting" })),
        )
            .into_response();
    }
    match state.store.ping().await {
        Ok(()) => axum::Json(
            serde_json::json!({ "status": "ready", "database": state.store.engine().name() }),
        )
        .into_response(),
        Err(error) => {
            tracing::warn!(error = ?error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({ "status": "database unavailable" })),
            )
                .into_response()
        }
    }
}

/// Until the schema is in place, dynamic routes answer 503 instead of
/// failing on missing tables.
async fn require_schema(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.schema_ready() {
        return next.run(request).await;
    }
    AppError::new(
        ErrorCode::Unavailable,
        "The service is starting. Please try again shortly.",
    )
    .into_response()
}

/// Applies migrations now, or, if the database is not reachable yet, keeps
/// trying in the background while the instance reports not-ready.
async fn prepare_schema(state: &AppState) -> anyhow::Result<()> {
    match state.store.migrate().await {
        Ok(()) => {
            state.mark_schema_ready();
            Ok(())
        }
        Err(error) if error.is_unavailable() => {
            let error = anyhow::Error::new(error);
            tracing::warn!(error = %format!("{error:#}"), "database not reachable yet; migrations will be retried");
            let state = state.clone();
            tokio::spawn(async move {
                let mut delay = Duration::from_millis(250);
                loop {
                    tokio::time::sleep(delay).await;
                    match state.store.migrate().await {
                        Ok(()) => {
                            tracing::info!("database reachable; migrations applied");
                            state.mark_schema_ready();
                            return;
                        }
                        Err(error) => {
                            let error = anyhow::Error::new(error);
                            tracing::debug!(error = %format!("{error:#}"), "migrations still pending")
                        }
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            });
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// `PORTCULLIS_JWT_KEYS` when set. Otherwise, on SQLite only, a key generated
/// once into the data directory (mode 0600) and reused on later starts. There
/// is no built-in fallback secret. With PostgreSQL the key must be configured:
/// instances sharing a database must share it.
fn load_jwt_keys(settings: &Settings, engine: Engine) -> anyhow::Result<Vec<JwtKeySpec>> {
    if let Some(keys) = &settings.jwt.keys {
        return Ok(keys.clone());
    }
    if engine == Engine::Postgres {
        anyhow::bail!(
            "PORTCULLIS_JWT_KEYS must be set with PostgreSQL: instances sharing a database \
             must share the signing key, and a generated key file is per instance"
        );
    }
    let path = settings.data_dir.join("jwt-signing.key");
    if path.exists() {
        let metadata = std::fs::metadata(&path)
            .with_context(|| format!("Failed to read {}", path.display()))?;
        if metadata.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("Failed to restrict {} to mode 0600", path.display()))?;
            tracing::warn!(path = %path.display(), "the JWT key file was readable by others; restricted it to 0600");
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("Failed to read {}", path.display()))?;
        let keys = parse_jwt_keys(text.trim())
            .map_err(|e| anyhow::anyhow!("{} is invalid: {e}", path.display()))?;
        tracing::warn!(path = %path.display(), "using the JWT signing key from the data directory; set PORTCULLIS_JWT_KEYS in production");
        return Ok(keys);
    }
    let secret = generate_jwt_secret();
    let kid = format!("local-{}", &hex_prefix(&Sha256::digest(&secret)));
    let line = format!("{kid}:{}", STANDARD.encode(&secret));
    // Written whole to a private temporary file, then linked into place: a
    // second instance starting at the same moment either sees no file or a
    // complete one, and exactly one key wins.
    let temporary = settings
        .data_dir
        .join(format!(".jwt-signing.key.{}", std::process::id()));
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("Failed to create {}", temporary.display()))?;
        writeln!(file, "{line}")
            .with_context(|| format!("Failed to write {}", temporary.display()))?;
        file.sync_all()
            .with_context(|| format!("Failed to sync {}", temporary.display()))?;
    }
    let linked = std::fs::hard_link(&temporary, &path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            tracing::warn!(
                path = %path.display(),
                "no PORTCULLIS_JWT_KEYS set: generated a signing key in the data directory (fine for one \
                 instance and for development; configure PORTCULLIS_JWT_KEYS in production)"
            );
            parse_jwt_keys(&line).map_err(|e| anyhow::anyhow!("{e}"))
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            load_jwt_keys(settings, engine)
        }
        Err(error) => Err(error).with_context(|| format!("Failed to create {}", path.display())),
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// `127.0.0.1:3000` stays as is; an unspecified bind (`0.0.0.0`) is shown as
/// `127.0.0.1` so the default origin is one a browser can actually have.
fn loopback_display(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

/// Without a configured public URL (local development), the page may be open
/// as `127.0.0.1` or as `localhost`; both are this machine.
fn development_origins(public_origin: &str, addr: SocketAddr) -> Vec<String> {
    let mut origins = vec![public_origin.to_string()];
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        for host in ["127.0.0.1", "localhost"] {
            let origin = format!("http://{host}:{}", addr.port());
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
    }
    origins
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down; finishing in-flight requests");
}
