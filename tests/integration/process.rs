//! Real server processes: the binary `main` builds, started with
//! environment variables like an operator would, on a free port.

use crate::helpers::Environment;
use crate::helpers::{PASSWORD, http, plain_client, server_fn_with, tokens_of, unique_email};
use reqwest::{Client, StatusCode};
use serde_json::json;
use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct ServerProcess {
    pub address: String,
    child: Child,
    pub log: PathBuf,
    vars: HashMap<String, String>,
    open_files: Option<OpenFileLimit>,
}

/// `ulimit` limits on open files for a server process.
#[derive(Clone, Copy, Debug)]
pub struct OpenFileLimit {
    pub soft: u64,
    /// `None`: the hard limit stays as the test process has it.
    pub hard: Option<u64>,
}

impl ServerProcess {
    /// Starts an instance on `env` (its database and data directory) and
    /// waits until it reports ready.
    pub async fn start(env: &Environment, extra: &[(&str, &str)]) -> ServerProcess {
        let process = ServerProcess::start_unready(env, extra);
        process.wait_until_ready(Duration::from_secs(30)).await;
        process
    }

    /// Like [`ServerProcess::start`], under a limit on open files (set by
    /// the shell that then `exec`s the binary, so the process id is the
    /// server's).
    pub async fn start_with_open_files(
        env: &Environment,
        extra: &[(&str, &str)],
        limit: OpenFileLimit,
    ) -> ServerProcess {
        let vars = ServerProcess::vars_for(env, extra);
        let process = ServerProcess::launch(vars, env, Some(limit));
        process.wait_until_ready(Duration::from_secs(30)).await;
        process
    }

    /// Starts an instance without waiting for readiness (its database may be
    /// down on purpose).
    pub fn start_unready(env: &Environment, extra: &[(&str, &str)]) -> ServerProcess {
        ServerProcess::launch(ServerProcess::vars_for(env, extra), env, None)
    }

    fn vars_for(env: &Environment, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut vars = env.vars();
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        // Instances of one deployment share the signing and data keys by
        // configuration.
        vars.entry("PORTCULLIS_JWT_KEYS".into())
            .or_insert_with(|| env.jwt_keys.clone());
        vars.entry("PORTCULLIS_DATA_KEY".into())
            .or_insert_with(|| env.data_key.clone());
        vars.entry("RUST_LOG".into())
            .or_insert_with(|| "warn".into());
        vars
    }

    fn launch(
        mut vars: HashMap<String, String>,
        env: &Environment,
        open_files: Option<OpenFileLimit>,
    ) -> ServerProcess {
        let port = free_port();
        vars.insert("LEPTOS_SITE_ADDR".into(), format!("127.0.0.1:{port}"));
        vars.insert(
            "LEPTOS_SITE_ROOT".into(),
            env.data_dir.path().join("site").display().to_string(),
        );
        ServerProcess::launch_with(vars, env, open_files)
    }

    /// Starts the binary with exactly `vars` (plus PATH): nothing from the
    /// developer's own environment or `.env` leaks in.
    fn launch_with(
        vars: HashMap<String, String>,
        env: &Environment,
        open_files: Option<OpenFileLimit>,
    ) -> ServerProcess {
        let address = format!("http://{}", vars["LEPTOS_SITE_ADDR"]);
        let log = env
            .data_dir
            .path()
            .join(format!("server-{}.log", uuid::Uuid::new_v4().simple()));
        let output = std::fs::File::create(&log).expect("a log file");
        // Run from the data directory, so a developer's `.env` in the
        // repository is not read either.
        let binary = env!("CARGO_BIN_EXE_portcullis");
        let mut command = match open_files {
            None => Command::new(binary),
            Some(limit) => {
                // The soft limit first: a hard limit below the current soft
                // one is refused.
                let mut ulimit = format!("ulimit -S -n {} && ", limit.soft);
                if let Some(hard) = limit.hard {
                    ulimit.push_str(&format!("ulimit -H -n {hard} && "));
                }
                ulimit.push_str("exec \"$0\"");
                let mut shell = Command::new("/bin/sh");
                shell.arg("-c").arg(ulimit).arg(binary);
                shell
            }
        };
        let child = command
            .current_dir(env.data_dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&vars)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("a log handle"))
            .stderr(output)
            .spawn()
            .expect("the server binary starts");
        ServerProcess {
            address,
            child,
            log,
            vars,
            open_files,
        }
    }

    pub async fn wait_until_ready(&self, timeout: Duration) {
        let client = plain_client();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(response) = client.get(format!("{}/readyz", self.address)).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server at {} not ready; log:\n{}",
                self.address,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// SIGKILL: no chance to flush or finish anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: sending a signal to our own child process id.
        unsafe { libc_kill(self.child.id() as i32, 15) };
        self.child.wait().expect("the server exits")
    }

    /// A new process with the same configuration, on the same port.
    pub async fn restart(&mut self, env: &Environment) {
        self.kill();
        *self = ServerProcess::launch_with(self.vars.clone(), env, self.open_files);
        self.wait_until_ready(Duration::from_secs(30)).await;
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

/// What `portcullis admin …` printed and how it exited.
pub struct AdminRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl AdminRun {
    /// The standard output as JSON (after `--json`).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} / {:?}", self.stdout, self.stderr))
    }
}

/// Runs the binary's `admin` command with `args`, configured like a server
/// on `env` (plus `extra`), as an operator's shell would, from the data
/// directory.
pub async fn admin(env: &Environment, extra: &[(&str, &str)], args: &[&str]) -> AdminRun {
    let mut vars = env.vars();
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("admin")
        .args(args)
        .current_dir(env.data_dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&vars)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the binary runs");
    AdminRun {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A cookie-keeping client, like a browser.
pub fn client() -> Client {
    http().cookie_store(true).build().expect("an HTTP client")
}

/// Registers a fresh account through the server function and signs
/// `client` in with it.
pub async fn register_on(server: &ServerProcess, client: &Client) -> String {
    let email = unique_email();
    let response = server_fn_with(
        client,
        &server.address,
        "register",
        &[
            ("email", &email),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = server_fn_with(
        client,
        &server.address,
        "login",
        &[("email", &email), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    email
}

pub async fn bearer_login_on(server: &ServerProcess, email: &str) -> (String, String) {
    tokens_of(
        plain_client()
            .post(server.url("/auth/login"))
            .json(&json!({ "email": email, "password": PASSWORD, "token_delivery": "body" }))
            .send()
            .await
            .expect("request"),
    )
    .await
}

pub async fn bearer_me_on(server: &ServerProcess, access: &str) -> StatusCode {
    plain_client()
        .get(server.url("/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .expect("request")
        .status()
}
