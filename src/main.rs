//! The server binary: everything lives in the library (`portcullis::server`).
//! Without arguments it serves; `portcullis admin …` is the operators'
//! command line (`portcullis::server::cli`).

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    use clap::Parser;
    use portcullis::server::cli::{Cli, Command, run_admin};

    match Cli::parse().command {
        None | Some(Command::Serve) => match portcullis::server::run().await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("portcullis: {error:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Some(Command::Admin(args)) => run_admin(args).await,
    }
}

#[cfg(not(feature = "ssr"))]
fn main() {
    // The browser half is a library (`hydrate`); there is no client binary.
}
