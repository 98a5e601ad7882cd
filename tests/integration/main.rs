//! Integration tests: a real server per test, over HTTP, on SQLite and on
//! PostgreSQL (see `helpers::backend_tests!`).

mod helpers;
mod mailbox;
mod process;

mod account;
mod addresses;
mod admin_api;
mod admin_cli;
mod client_addresses;
mod crash_safety;
mod device_cookies;
mod hostile_inputs;
mod json_api;
mod live;
mod login_under_load;
mod logout;
mod multi_instance;
mod openapi;
mod passkeys;
mod properties;
mod races;
mod recovery;
mod refresh_limits;
mod renewal_and_rotation;
mod route_generation;
mod secrets_in_logs;
mod security;
mod sessions_and_audit;
mod slow_clients;
mod stalled_database;
mod static_assets;
mod throttling;
mod two_factor;
mod webhooks;
