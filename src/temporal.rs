//! The Temporal client, built from our own settings (`TEMPORAL_HOST`, ...).

use std::time::Duration;

use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, RetryOptions};
use temporalio_common::data_converters::{
    DataConverter, DefaultFailureConverter, PayloadConverter,
};

use crate::codec::Cipher;
use crate::config::TemporalSettings;

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
pub async fn connect(
    settings: &TemporalSettings,
    identity: &str,
    retry_for: Duration,
) -> anyhow::Result<Client> {
    let url: temporalio_client::Url = format!("http://{}", settings.host)
        .parse()
        .map_err(|e| anyhow::anyhow!("TEMPORAL_HOST={:?} is not host:port ({e})", settings.host))?;
    let options = ConnectionOptions::new(url)
        .identity(format!("{identity}@{}", std::process::id()))
        .connect_timeout(Duration::from_secs(5))
        .retry_options(
            RetryOptions::builder()
                .max_elapsed_time(Some(retry_for))
                .build(),
        )
        .build();
    let connection = tokio::time::timeout(Duration::from_secs(10), Connection::connect(options))
        .await
        .map_err(|_| anyhow::anyhow!("temporal at {} did not answer within 10s", settings.host))?
        .map_err(|e| anyhow::anyhow!("temporal at {} is unreachable: {e}", settings.host))?;
    let options = ClientOptions::new(settings.namespace.clone())
        .data_converter(data_converter(settings)?)
        .build();
    let client = Client::new(connection, options)?;
    Ok(client)
}
