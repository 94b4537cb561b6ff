//! When a long-running mode (`serve`, `worker`) stops: on SIGINT or SIGTERM.

use tokio::signal::unix::{SignalKind, signal as unix_signal};

/// Resolves on SIGINT or SIGTERM with the signal's name. Without a SIGTERM
/// handler (the process may not install one) it waits for SIGINT alone
/// rather than fail the mode it stops.
pub async fn signal() -> &'static str {
    let mut term = match unix_signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}
