//! Portcullis: a Leptos full-stack app for signing people in, and above all
//! signing them out properly.
//!
//! - [`app`]: the HTML shell and the routes.
//! - [`pages`]: one module per page; [`components`]: shared UI.
//! - [`auth`]: the server functions and the types they share with the browser.
//! - `server` (feature `ssr`): configuration, startup, storage, tokens,
//!   passwords, cookies, middleware and the JSON API.

#![recursion_limit = "256"]

pub mod app;
pub mod auth;
pub mod components;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;

/// Hydrates the server-rendered page; called by the `front` crate's WASM
/// entry point.
#[cfg(feature = "hydrate")]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
