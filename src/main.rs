use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = flightctl::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,temporalio_sdk_core=warn,temporalio_client=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // LOG_FORMAT=json: one JSON object per line, span fields (request ids)
    // included, for a log pipeline; anything else but `text` is an error.
    match std::env::var("LOG_FORMAT").as_deref() {
        Err(_) | Ok("" | "text") => logs.init(),
        Ok("json") => logs.json().flatten_event(true).init(),
        Ok(other) => {
            eprintln!("flightctl: error: LOG_FORMAT must be `text` or `json`, not {other:?}");
            return ExitCode::FAILURE;
        }
    }
    match flightctl::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flightctl: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
