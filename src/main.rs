use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = flightctl::cli::Cli::parse();
    let telemetry = match flightctl::telemetry::init(cli.mode()) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("flightctl: error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = flightctl::cli::run(cli).await;
    // Flush buffered traces (a blocking call) off the async workers.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flightctl: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
