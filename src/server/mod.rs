//! Everything that runs only on the server: configuration, startup, storage,
//! tokens, passwords, cookies, middleware and the JSON API.

pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod cookies;
pub mod db;
pub mod emails;
pub mod error;
pub mod files;
pub mod fns;
pub mod hashing;
pub mod keys;
pub mod live;
pub mod mail;
pub mod mfa;
pub mod middleware;
pub mod passkeys;
pub mod passwords;
pub mod readiness;
pub mod serve;
pub mod service;
pub mod startup;
pub mod state;
pub mod static_files;
pub mod sweeper;
pub mod telemetry;
pub mod time;
pub mod tokens;
pub mod webhooks;

pub use config::Settings;
pub use startup::{Application, run};
