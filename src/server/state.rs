//! Shared, immutable per-instance state, handed to handlers, middleware and
//! (through Leptos context) to server functions.

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::{
    ops::Deref,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use super::{
    config::Settings,
    cookies::SessionCookies,
    db::Store,
    live::LiveSessions,
    service::{Admin, AuthService},
};

#[derive(Clone)]
pub struct AppState(Arc<StateInner>);

pub struct StateInner {
    pub leptos: LeptosOptions,
    pub settings: Settings,
    pub store: Store,
    pub auth: Arc<AuthService>,
    /// The operators' actions, for the admin API.
    pub admin: Admin,
    pub cookies: SessionCookies,
    /// The live sign-out streams open on this instance.
    pub live: LiveSessions,
    /// The origin browsers use; state-changing requests must come from it.
    pub public_origin: String,
    /// Origins accepted in `Origin` headers: the public one, and in local
    /// development its `localhost`/`127.0.0.1` twin.
    pub allowed_origins: Vec<String>,
    /// Set once migrations have been applied.
    schema_ready: AtomicBool,
}

impl AppState {
    pub fn new(inner: StateInner) -> Self {
        AppState(Arc::new(inner))
    }

    pub fn schema_ready(&self) -> bool {
        self.0.schema_ready.load(Ordering::Acquire)
    }

    pub fn mark_schema_ready(&self) {
        self.0.schema_ready.store(true, Ordering::Release);
    }
}

impl StateInner {
    pub fn new(
        leptos: LeptosOptions,
        settings: Settings,
        store: Store,
        auth: Arc<AuthService>,
        cookies: SessionCookies,
        public_origin: String,
        allowed_origins: Vec<String>,
    ) -> Self {
        StateInner {
            admin: Admin::new(store.clone(), &settings),
            live: LiveSessions::new(settings.live, settings.jwt.access_ttl),
            leptos,
            settings,
            store,
            auth,
            cookies,
            public_origin,
            allowed_origins,
            schema_ready: AtomicBool::new(false),
        }
    }
}

impl Deref for AppState {
    type Target = StateInner;

    fn deref(&self) -> &StateInner {
        &self.0
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}
