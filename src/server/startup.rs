//! Assembly: building and running one Portcullis instance from its parts.
//! `main` calls [`run`]; tests build an [`Application`] on port 0 and talk to
//! it over HTTP.

use anyhow::Context;
use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::{from_fn, from_fn_with_state},
    routing::{any, get},
};
use leptos::prelude::provide_context;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};
use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
};
use tokio::net::TcpListener;
use tower_cookies::CookieManagerLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use super::{
    api,
    config::Settings,
    cookies::SessionCookies,
    db::Store,
    keys::{load_data_keys, load_jwt_keys},
    live,
    mail::{self, Links, MailQueue, Mailer},
    mfa::SecondFactors,
    middleware::{csrf, deadlines, headers, links, server_fn_status, session},
    passkeys::RelyingParty,
    passwords::Passwords,
    readiness::{healthz, prepare_schema, readyz, require_schema},
    serve::{raise_open_file_limit, serve},
    service::{AuthService, RecoverySettings, SignInMethods},
    state::{AppState, StateInner},
    static_files::{PkgAssets, static_routes},
    sweeper,
    tokens::TokenIssuer,
    webhooks,
};
use crate::{
    app::{App, shell},
    auth::{AppError, ErrorCode},
};

/// Starts the server from the environment and runs it until SIGTERM/Ctrl-C.
pub async fn run() -> anyhow::Result<()> {
    super::telemetry::init();
    raise_open_file_limit();
    let settings = Settings::from_env()?;
    let app = Application::build(settings).await?;
    tracing::info!(address = %app.local_addr(), origin = %app.state().public_origin, "Portcullis is listening");
    app.run_until_stopped().await.context("The server failed")
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    mailer: Arc<Mailer>,
    mail_queue: MailQueue,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        // Before anything listens.
        settings.check_transport_security(settings.leptos.site_addr)?;
        let listener = TcpListener::bind(settings.leptos.site_addr)
            .await
            .with_context(|| format!("Failed to listen on {}", settings.leptos.site_addr))?;
        let local_addr = listener
            .local_addr()
            .context("Failed to read the bound address")?;
        let origins = settings.origins(local_addr);
        if !origins.secure && !local_addr.ip().is_loopback() {
            tracing::warn!(
                "PORTCULLIS_ALLOW_INSECURE_HTTP is set: cookies are not Secure and the \
                 server listens beyond loopback"
            );
        }

        super::files::private_dir(&settings.data_dir)?;
        let store = Store::connect_lazy(&settings.database)?;
        let keys = load_jwt_keys(&settings, store.engine())?;
        let tokens = TokenIssuer::new(&keys, &settings.jwt)?;
        let methods = SignInMethods {
            totp: SecondFactors::new(&load_data_keys(&settings, store.engine())?)?,
            passkeys: RelyingParty::of(settings.public_url.as_deref(), &origins)?.webauthn()?,
        };
        let passwords = Passwords::new(settings.passwords, settings.hashing).await?;
        let mailer = Arc::new(Mailer::new(&settings.mail, &settings.data_dir)?);
        let mail_queue = MailQueue::default();
        let auth = Arc::new(AuthService::new(
            store.clone(),
            tokens,
            passwords,
            settings.sessions.clone(),
            settings.throttle,
            RecoverySettings::new(
                Links::new(&origins.public),
                mail_queue.clone(),
                &settings.mail,
            ),
            methods,
        ));
        tracing::info!(to = %mailer.describe(), "mail is delivered to");

        let mut leptos = settings.leptos.clone();
        leptos.site_addr = local_addr;
        let state = AppState::new(StateInner::new(
            leptos,
            settings,
            store,
            auth,
            SessionCookies::new(origins.secure),
            origins.public,
            origins.allowed,
        ));
        prepare_schema(&state).await?;
        // Reading and hashing the app's files is blocking file I/O (about
        // 1.5 MB): off the async runtime.
        let assets = {
            let options = state.leptos.clone();
            tokio::task::spawn_blocking(move || PkgAssets::load(&options))
                .await
                .context("Failed to read the app's files under /pkg")?
        };
        let router = app_router(state.clone(), assets);
        Ok(Application {
            listener,
            router,
            state,
            mailer,
            mail_queue,
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
        let mail = mail::worker::spawn(
            self.state.store.clone(),
            self.mailer,
            self.mail_queue,
            self.state.settings.mail.retry_max,
        );
        let webhooks = webhooks::spawn(
            self.state.store.clone(),
            self.state.settings.webhooks.clone(),
        );
        let live_source = live::spawn(self.state.store.clone(), self.state.live.clone());
        // On the signal, the live sign-out streams end too: graceful shutdown
        // waits for responses in flight, and theirs would never finish.
        let streams = self.state.live.clone();
        let signal = async move {
            signal.await;
            streams.close_all();
        };
        let result = serve(
            self.listener,
            self.router,
            self.state.settings.connections,
            signal,
        )
        .await;
        live_source.abort();
        sweeper.abort();
        mail.abort();
        if let Some(webhooks) = webhooks {
            webhooks.abort();
        }
        self.state.store.close().await;
        result
    }
}

/// Every route of the application, with its middleware; `assets` are the
/// app's files under `/pkg` (`PkgAssets::load`).
pub fn app_router(state: AppState, assets: PkgAssets) -> Router {
    let leptos_options = state.leptos.clone();
    // Pages link the app's files by their hashed names.
    let page_options = assets.page_options(&leptos_options);
    let (auth_api, _) = api::router(state.settings.passwords);
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
        let options = page_options.clone();
        move || shell(options.clone())
    });

    // `leptos_routes_with_context` also mounts every server function at its
    // `/api/…` endpoint; the wildcard answers for names that do not exist.
    let dynamic = Router::new()
        .route("/api/{*name}", any(unknown_server_fn))
        .route("/account/recovery-codes.txt", get(api::recovery_codes_file))
        .leptos_routes_with_context(&state, app_routes(), context, {
            let options = page_options.clone();
            move || shell(options.clone())
        })
        .merge(auth_api)
        .fallback(move |request: Request| not_found(request))
        .layer(from_fn(server_fn_status::server_fn_status))
        .layer(from_fn_with_state(state.clone(), links::take_link_token))
        .layer(from_fn_with_state(state.clone(), session::resolve_session))
        .layer(from_fn_with_state(state.clone(), csrf::refuse_cross_site))
        .layer(CookieManagerLayer::new())
        .layer(from_fn_with_state(state.clone(), require_schema));

    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(static_routes(&leptos_options, assets))
        .merge(dynamic)
        // Inside `security_headers`: its size checks come first, and its
        // headers decorate the 408/503 answers too.
        .layer(from_fn_with_state(
            state.clone(),
            deadlines::request_deadlines,
        ))
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
