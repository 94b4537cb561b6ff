//! The Temporal client, built from our own settings (`TEMPORAL_HOST`, ...).

use std::time::Duration;

use temporalio_client::errors::ClientConnectError;
use temporalio_client::{
    Client, ClientOptions, ClientTlsOptions, Connection, ConnectionOptions, RetryOptions,
    TlsOptions,
};
use temporalio_common::data_converters::{
    DataConverter, DefaultFailureConverter, PayloadConverter,
};

use crate::codec::Cipher;
use crate::config::{TemporalSettings, TemporalTls};

/// The data converter of every client, worker and replayer: the SDK's JSON
/// payloads, encrypted by the payload codec (`codec`) when a key is set.
pub fn data_converter(settings: &TemporalSettings) -> anyhow::Result<DataConverter> {
    let cipher = Cipher::new(&settings.payload_keys()?);
    Ok(DataConverter::new(
        PayloadConverter::default(),
        DefaultFailureConverter::default(),
        cipher,
    ))
}

/// Connect to the Temporal frontend; fails within seconds when it is down.
/// `retry_for` bounds how long one request retries a transient failure.
/// Plain gRPC, or TLS as `TEMPORAL_TLS*` and `TEMPORAL_API_KEY` ask
/// (`config::TemporalTls`): the one way every role (`serve`, `worker`, the
/// CLI) connects.
pub async fn connect(
    settings: &TemporalSettings,
    identity: &str,
    retry_for: Duration,
) -> anyhow::Result<Client> {
    let tls = settings.tls()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url: temporalio_client::Url = format!("{scheme}://{}", settings.host)
        .parse()
        .map_err(|e| anyhow::anyhow!("TEMPORAL_HOST={:?} is not host:port ({e})", settings.host))?;
    let over = if tls.is_some() { " over TLS" } else { "" };
    let options = ConnectionOptions::new(url)
        .identity(format!("{identity}@{}", std::process::id()))
        .connect_timeout(Duration::from_secs(5))
        .retry_options(
            RetryOptions::builder()
                .max_elapsed_time(Some(retry_for))
                .build(),
        )
        .maybe_tls_options(tls.map(tls_options))
        .maybe_api_key(settings.api_key().map(str::to_string))
        .build();
    let connection = tokio::time::timeout(Duration::from_secs(10), Connection::connect(options))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "temporal at {}{over} did not answer within 10s",
                settings.host
            )
        })?
        .map_err(|e| {
            let why = describe(&e);
            // A refused handshake is a setting to check, not an outage. In
            // TLS 1.3 the server refuses a client certificate after the
            // client's side of the handshake, so the client may see the
            // alert or only the connection closing.
            let refused = ["alert", "certificate", "connection closed", "broken pipe"]
                .iter()
                .any(|sign| why.to_lowercase().contains(sign));
            let hint = match over.is_empty() {
                false if refused => {
                    " (check TEMPORAL_TLS_CA, TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY and \
                     TEMPORAL_TLS_SERVER_NAME)"
                }
                _ => "",
            };
            anyhow::anyhow!(
                "temporal at {}{over} is unreachable: {why}{hint}",
                settings.host
            )
        })?;
    let options = ClientOptions::new(settings.namespace.clone())
        .data_converter(data_converter(settings)?)
        .build();
    let client = Client::new(connection, options)?;
    Ok(client)
}

/// The SDK's TLS options from ours.
fn tls_options(tls: TemporalTls) -> TlsOptions {
    let client = match (tls.cert, tls.key) {
        (Some(cert), Some(key)) => Some(
            ClientTlsOptions::builder()
                .client_cert(cert)
                .client_private_key(key)
                .build(),
        ),
        _ => None,
    };
    TlsOptions::builder()
        .maybe_server_root_ca_cert(tls.ca)
        .maybe_domain(tls.server_name)
        .maybe_client_tls_options(client)
        .build()
}

/// A connection error in words: the gRPC status's code and message, or the
/// transport's error, each with its causes (a refused certificate, an
/// untrusted issuer), which the SDK's own text shows only as debug output.
fn describe(e: &ClientConnectError) -> String {
    match e {
        ClientConnectError::SystemInfoCallError(status) => {
            let head = format!("{:?}: {}", status.code(), status.message());
            with_causes(head, std::error::Error::source(status))
        }
        ClientConnectError::TonicTransportError(e) => {
            with_causes(e.to_string(), std::error::Error::source(e))
        }
        other => with_causes(other.to_string(), std::error::Error::source(other)),
    }
}

/// `head`, then each cause not already said, `: `-separated.
fn with_causes(head: String, mut cause: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut text = head;
    while let Some(e) = cause {
        let said = e.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        cause = e.source();
    }
    text
}
