//! The binary's command line: `portcullis` (or `portcullis serve`) runs the
//! server; `portcullis admin …` is the operators' tool. It reads the same
//! configuration as the server (environment and `.env`) and works on the
//! same database while servers run: every action is a transaction that the
//! servers see on their next request (`service::Admin`, of which this is a
//! thin adapter: no SQL and no policy here).
//!
//! Every admin command takes `--json`, exits 0 on success, and on failure
//! prints one line to standard error and exits 1 (2 for a usage error,
//! which clap reports with the command's usage).

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use super::{
    client::describe_device,
    config::Settings,
    db::{AdminSession, EventDelivery, Store, UserSummary},
    error::AuthError,
    service::{Actor, Admin, MAX_LIST, UserRef},
    time::Timestamp,
};

#[derive(Parser, Debug)]
#[command(
    name = "portcullis",
    version,
    about = "Portcullis: sign people in, and sign them out properly.",
    long_about = "Without a command, runs the server. Configuration comes from the environment \
                  and `.env` (see the README)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs the server (the default).
    Serve,
    /// Operators' commands: find users, sign them out, disable, enable and delete accounts.
    Admin(AdminArgs),
}

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Lists users: id, email, created, last sign-in, live sessions, disabled or not.
    Users {
        /// Only addresses containing this text (any case).
        #[arg(long)]
        search: Option<String>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_LIST)))]
        limit: u32,
    },
    /// Lists one user's sessions: id, device, IP, created, last used, live or ended and why.
    Sessions {
        /// The user's email address.
        email: String,
    },
    /// Ends every session of the user at once, on every instance.
    #[command(name = "sign-out")]
    SignOut {
        /// The user's email address.
        email: String,
    },
    /// Ends every session and refuses sign-in, refresh and recovery until enabled again.
    Disable {
        /// The user's email address.
        email: String,
        /// Why, for the audit trail (one line).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lifts a disable.
    Enable {
        /// The user's email address.
        email: String,
    },
    /// Webhook deliveries: the most recent session events and how their delivery went.
    Webhooks(WebhooksArgs),
    /// Admin API keys: create (printed once), list, revoke.
    #[command(name = "api-key", subcommand)]
    ApiKey(ApiKeyCommand),
    /// Erases the user and everything that names them; leaves one audit row without the address.
    Delete {
        /// The user's email address.
        email: String,
        /// Confirms the deletion (required: it cannot be undone).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Args, Debug)]
pub struct WebhooksArgs {
    #[command(subcommand)]
    pub command: Option<WebhooksCommand>,
    /// At most this many (1 to 1000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_LIST)))]
    pub limit: u32,
    /// Only the dead ones (given up after a day of retries).
    #[arg(long)]
    pub dead: bool,
}

#[derive(Subcommand, Debug)]
pub enum WebhooksCommand {
    /// Sends one event again now, with the same webhook-id.
    Retry {
        /// The event's id, as listed (msg_<n>).
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ApiKeyCommand {
    /// Creates a key and prints it once, alone on the last line; only its hash is stored.
    Create {
        /// A name for the key (1 to 64 letters, digits, '.', '_' or '-'); audit events name it.
        name: String,
    },
    /// Lists keys: name, created, last used, revoked (never the key).
    List,
    /// Revokes the live key of that name: refused from its next use on.
    Revoke {
        /// The key's name.
        name: String,
    },
}

/// Runs an admin command; what the process exits with.
pub async fn run_admin(args: AdminArgs) -> ExitCode {
    match admin(&args).await {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("portcullis admin: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The command's output, or the one line that says why it failed.
async fn admin(args: &AdminArgs) -> Result<String, String> {
    if let AdminCommand::Delete { yes: false, email } = &args.command {
        return Err(format!(
            "refusing to delete {email} without --yes (it erases the account and cannot be undone)"
        ));
    }
    let settings = Settings::from_env().map_err(|e| format!("configuration: {e}"))?;
    let store = Store::connect_lazy(&settings.database)
        .map_err(|e| format!("database: {}", one_line(&format!("{e:#}"))))?;
    store.migrate().await.map_err(|e| {
        format!(
            "the database cannot be reached or migrated: {}",
            one_line(&format!("{e:#}"))
        )
    })?;
    let admin = Admin::new(store, &settings);
    let actor = Actor::Cli;
    let json = args.json;
    let result = match &args.command {
        AdminCommand::Users { search, limit } => admin
            .users(search.as_deref(), None, *limit)
            .await
            .map(|users| render_users(&users, json)),
        AdminCommand::Sessions { email } => admin.sessions(UserRef::Email(email)).await.map(|found| {
            if json {
                json!({
                    "user": { "id": found.user.id.to_string(), "email": found.user.email },
                    "sessions": found.sessions.iter().map(session_json).collect::<Vec<_>>(),
                })
                .to_string()
            } else {
                render_sessions(&found.sessions)
            }
        }),
        AdminCommand::SignOut { email } => admin.sign_out(UserRef::Email(email), &actor).await.map(|ended| {
            report(
                json,
                json!({ "email": email, "sessions_ended": ended }),
                format!("Signed out {email}: {ended} session(s) ended."),
            )
        }),
        AdminCommand::Disable { email, reason } => admin
            .disable(UserRef::Email(email), reason.as_deref(), &actor)
            .await
            .map(|ended| match ended {
                Some(ended) => report(
                    json,
                    json!({ "email": email, "disabled": true, "changed": true, "sessions_ended": ended }),
                    format!("Disabled {email}: {ended} session(s) ended."),
                ),
                None => report(
                    json,
                    json!({ "email": email, "disabled": true, "changed": false, "sessions_ended": 0 }),
                    format!("{email} was already disabled."),
                ),
            }),
        AdminCommand::Enable { email } => admin.enable(UserRef::Email(email), &actor).await.map(|changed| {
            report(
                json,
                json!({ "email": email, "disabled": false, "changed": changed }),
                if changed {
                    format!("Enabled {email}.")
                } else {
                    format!("{email} was not disabled.")
                },
            )
        }),
        AdminCommand::Webhooks(WebhooksArgs {
            command: Some(WebhooksCommand::Retry { id }),
            ..
        }) => admin.retry_webhook(id).await.map(|()| {
            report(
                json,
                json!({ "id": id, "retried": true }),
                format!("{id} is due again; it is sent within a second."),
            )
        }),
        AdminCommand::Webhooks(WebhooksArgs {
            command: None,
            limit,
            dead,
        }) => admin
            .webhook_deliveries(*limit, *dead)
            .await
            .map(|deliveries| render_deliveries(&deliveries, json)),
        AdminCommand::ApiKey(ApiKeyCommand::Create { name }) => {
            admin.create_api_key(name, &actor).await.map(|key| {
                if json {
                    json!({ "name": name, "key": key }).to_string()
                } else {
                    format!(
                        "Created the admin API key {name}. It is shown this once; store it now:\n{key}"
                    )
                }
            })
        }
        AdminCommand::ApiKey(ApiKeyCommand::List) => admin.api_keys().await.map(|keys| {
            if json {
                Value::Array(
                    keys.iter()
                        .map(|k| {
                            json!({
                                "name": k.name,
                                "created_at": k.created_at.to_rfc3339(),
                                "last_used_at": k.last_used_at.map(|t| t.to_rfc3339()),
                                "revoked_at": k.revoked_at.map(|t| t.to_rfc3339()),
                            })
                        })
                        .collect(),
                )
                .to_string()
            } else {
                let mut out = format!(
                    "{:<24}  {:<25}  {:<25}  {}",
                    "NAME", "CREATED", "LAST USED", "REVOKED"
                );
                for k in &keys {
                    out.push_str(&format!(
                        "\n{:<24}  {:<25}  {:<25}  {}",
                        k.name,
                        k.created_at.to_rfc3339(),
                        time(k.last_used_at),
                        time(k.revoked_at),
                    ));
                }
                if keys.is_empty() {
                    out.push_str("\n(no keys)");
                }
                out
            }
        }),
        AdminCommand::ApiKey(ApiKeyCommand::Revoke { name }) => {
            admin.revoke_api_key(name, &actor).await.map(|()| {
                report(
                    json,
                    json!({ "name": name, "revoked": true }),
                    format!("Revoked the admin API key {name}."),
                )
            })
        }
        AdminCommand::Delete { email, .. } => admin.delete(UserRef::Email(email), &actor).await.map(|()| {
            report(
                json,
                json!({ "email": email, "deleted": true }),
                format!("Deleted {email} and everything that named it."),
            )
        }),
    };
    result.map_err(|error| describe(&error, &args.command))
}

/// One line for a failure, specific to what was asked.
fn describe(error: &AuthError, command: &AdminCommand) -> String {
    let email = match command {
        AdminCommand::Sessions { email }
        | AdminCommand::SignOut { email }
        | AdminCommand::Disable { email, .. }
        | AdminCommand::Enable { email }
        | AdminCommand::Delete { email, .. } => Some(email.as_str()),
        AdminCommand::Users { .. } | AdminCommand::ApiKey(_) | AdminCommand::Webhooks(_) => None,
    };
    match (error, email) {
        (AuthError::UnknownUser, Some(email)) => format!("no user with the email {email}"),
        (AuthError::UnknownApiKey, _) => "no live API key with that name".to_string(),
        (AuthError::UnknownEvent, _) => "no such event (ids look like msg_42)".to_string(),
        (AuthError::Invalid { field, message }, _) => format!("invalid {field}: {message}"),
        (AuthError::Unavailable(fault), _) => format!(
            "the database cannot be reached: {}",
            one_line(&fault.to_string())
        ),
        (other, _) => one_line(&other.to_string()),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn report(json: bool, value: Value, text: String) -> String {
    if json { value.to_string() } else { text }
}

fn time(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".to_string(), |t| t.to_rfc3339())
}

fn render_users(users: &[UserSummary], json: bool) -> String {
    if json {
        return Value::Array(
            users
                .iter()
                .map(|u| {
                    json!({
                        "id": u.id.to_string(),
                        "email": u.email,
                        "created_at": u.created_at.to_rfc3339(),
                        "last_sign_in": u.last_sign_in.map(|t| t.to_rfc3339()),
                        "live_sessions": u.live_sessions,
                        "email_verified": u.email_verified,
                        "disabled": u.disabled_at.is_some(),
                        "disabled_at": u.disabled_at.map(|t| t.to_rfc3339()),
                        "disabled_reason": u.disabled_reason,
                    })
                })
                .collect(),
        )
        .to_string();
    }
    let mut out = format!(
        "{:<36}  {:<32}  {:<25}  {:<25}  {:>4}  {}",
        "ID", "EMAIL", "CREATED", "LAST SIGN-IN", "LIVE", "DISABLED"
    );
    for u in users {
        out.push_str(&format!(
            "\n{:<36}  {:<32}  {:<25}  {:<25}  {:>4}  {}",
            u.id.to_string(),
            u.email,
            u.created_at.to_rfc3339(),
            time(u.last_sign_in),
            u.live_sessions,
            if u.disabled_at.is_some() { "yes" } else { "no" },
        ));
    }
    if users.is_empty() {
        out.push_str("\n(no users)");
    }
    out
}

fn render_deliveries(deliveries: &[EventDelivery], json: bool) -> String {
    use super::webhooks::{delivery_state, type_of_kind};
    if json {
        return Value::Array(
            deliveries
                .iter()
                .map(|d| {
                    json!({
                        "id": format!("msg_{}", d.id),
                        "type": type_of_kind(&d.kind),
                        "occurred_at": d.occurred_at.to_rfc3339(),
                        "attempts": d.attempts,
                        "last_status": d.last_status,
                        "last_error": d.last_error,
                        "next_attempt_at": d.next_attempt_at.to_rfc3339(),
                        "state": delivery_state(d),
                    })
                })
                .collect(),
        )
        .to_string();
    }
    let mut out = format!(
        "{:<14}  {:<16}  {:<25}  {:>8}  {:>6}  {:<25}  {}",
        "ID", "TYPE", "OCCURRED", "ATTEMPTS", "STATUS", "NEXT TRY", "STATE"
    );
    for d in deliveries {
        let state = delivery_state(d);
        out.push_str(&format!(
            "\n{:<14}  {:<16}  {:<25}  {:>8}  {:>6}  {:<25}  {}",
            format!("msg_{}", d.id),
            type_of_kind(&d.kind),
            d.occurred_at.to_rfc3339(),
            d.attempts,
            d.last_status
                .map_or_else(|| "-".to_string(), |s| s.to_string()),
            if state == "pending" {
                d.next_attempt_at.to_rfc3339()
            } else {
                "-".to_string()
            },
            state,
        ));
    }
    if deliveries.is_empty() {
        out.push_str("\n(no events)");
    }
    out
}

fn session_json(s: &AdminSession) -> Value {
    json!({
        "id": s.id.to_string(),
        "device": describe_device(s.user_agent.as_deref()),
        "ip": s.ip,
        "created_at": s.created_at.to_rfc3339(),
        "last_used_at": s.last_used_at.to_rfc3339(),
        "live": s.is_live(Timestamp::now()),
        "state": s.state(Timestamp::now()),
        "ended_at": s.revoked_at.map(|t| t.to_rfc3339()),
    })
}

fn render_sessions(sessions: &[AdminSession]) -> String {
    let mut out = format!(
        "{:<36}  {:<28}  {:<15}  {:<25}  {:<25}  {}",
        "ID", "DEVICE", "IP", "CREATED", "LAST USED", "STATE"
    );
    for s in sessions {
        out.push_str(&format!(
            "\n{:<36}  {:<28}  {:<15}  {:<25}  {:<25}  {}",
            s.id.to_string(),
            describe_device(s.user_agent.as_deref()),
            s.ip.as_deref().unwrap_or("-"),
            s.created_at.to_rfc3339(),
            s.last_used_at.to_rfc3339(),
            s.state(Timestamp::now()),
        ));
    }
    if sessions.is_empty() {
        out.push_str("\n(no sessions)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_has_help_and_the_names_runbooks_use_parse() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        for line in [
            "portcullis admin users --search ada --limit 5 --json",
            "portcullis admin sessions ada@example.com",
            "portcullis admin sign-out ada@example.com --json",
            "portcullis admin disable ada@example.com --reason stolen",
            "portcullis admin enable ada@example.com",
            "portcullis admin delete ada@example.com --yes",
            "portcullis admin webhooks --dead --json",
            "portcullis admin webhooks retry msg_42",
            "portcullis admin api-key create support-tool",
            "portcullis admin api-key list --json",
            "portcullis admin api-key revoke support-tool",
            "portcullis",
            "portcullis serve",
        ] {
            let args = line.split(' ');
            assert!(Cli::try_parse_from(args).is_ok(), "{line}");
        }
        for bad in [
            "portcullis admin users --limit 0",
            "portcullis admin users --limit 1001",
            "portcullis admin sessions",
            "portcullis admin nonsense",
        ] {
            assert!(Cli::try_parse_from(bad.split(' ')).is_err(), "{bad}");
        }
    }
}
