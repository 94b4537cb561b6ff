//! `POST /codec/encode` and `POST /codec/decode`: the payload codec over
//! HTTP, in the Temporal codec-server convention, so the Temporal UI (or
//! `temporal --codec-endpoint`) shows an operator decrypted payloads. Body
//! and answer: `{"payloads": [{"metadata": {"k": "<base64>"}, "data":
//! "<base64>"}]}`. The UI calls it from the browser, so the UI's origin
//! (`TEMPORAL_UI_URL`, plus `CODEC_CORS_ORIGINS`) is allowed by CORS.
//!
//! Whoever may call this endpoint can read every payload, so it answers only
//! an operator: one with a live console session (the `flightctl_ops`
//! cookie, which the Temporal UI's browser sends when the UI's codec
//! setting "include credentials" is on), or a caller with
//! `Authorization: Bearer <CODEC_TOKEN>` (the `temporal` CLI's
//! `--codec-auth`, scripts), the token compared in constant time. Anyone
//! else gets `401 UNAUTHENTICATED`, on every listener. And `serve` answers
//! it on its admin listener (`ADMIN_HOST:ADMIN_PORT`, loopback by default),
//! not on the public one (`listener.rs`); expose the admin listener only
//! where the Temporal UI's operators are (README, "Payload encryption").

use std::collections::{BTreeMap, HashMap};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web as aw};
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde::{Deserialize, Serialize};
use temporalio_common::protos::temporal::api::common::v1::Payload;

use super::{ApiError, AppState, ErrorCode};
use crate::codec::{Cipher, CodecError};
use crate::config::TemporalSettings;

/// Largest request body: the UI sends an event's payloads in one request,
/// and Temporal accepts payloads of up to 2 MB.
const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The codec, whether it is served, who may call it from a browser, and
/// the token that opens it besides a session.
pub struct Codec {
    cipher: Cipher,
    enabled: bool,
    origins: Vec<String>,
    /// SHA-256 of `CODEC_TOKEN`; `None` when it is not set.
    token: Option<[u8; 32]>,
}

impl Codec {
    pub fn new(settings: &TemporalSettings) -> anyhow::Result<Self> {
        let listed = settings.codec_cors_origins.split(',');
        let origins = std::iter::once(settings.ui_url.as_str())
            .chain(listed)
            .map(origin_of)
            .filter(|o| !o.is_empty())
            .collect();
        let token = match settings.codec_token.expose().trim() {
            "" => None,
            token => Some(digest(token)),
        };
        Ok(Self {
            cipher: Cipher::new(&settings.payload_keys()?),
            enabled: settings.codec_endpoint_enabled,
            origins,
            token,
        })
    }

    fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// Whether `presented` is the codec token: their SHA-256 digests
    /// compared in constant time, so neither the token's length nor how
    /// much of it a guess got right shows in the time taken.
    fn token_is(&self, presented: &str) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        let presented = digest(presented.trim());
        let differences = token
            .iter()
            .zip(presented.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(differences) == 0
    }
}

fn digest(text: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes()).into()
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(req: &ServiceRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

/// Whether `req` may use the codec: the codec token, or a live operator
/// session (no Origin check here: the codec's callers are another origin,
/// the Temporal UI's, which CORS allows by name).
async fn authorised(req: &ServiceRequest, codec: &Codec) -> Result<bool, ApiError> {
    if bearer(req).is_some_and(|token| codec.token_is(token)) {
        return Ok(true);
    }
    Ok(super::ops::signed_in(req.request()).await?.is_some())
}

/// The answer to a codec request without credentials.
fn unauthenticated() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthenticated,
        "the codec answers operators only: sign in at /ops (the Temporal UI sends the session \
         cookie with \"include credentials\"), or send Authorization: Bearer <CODEC_TOKEN>",
    )
}

/// `scheme://host[:port]` of a URL: what a browser sends as `Origin`.
fn origin_of(url: &str) -> String {
    let url = url.trim();
    let path_at = url.find("://").map_or(0, |i| i + 3);
    let end = url[path_at..].find('/').map_or(url.len(), |i| path_at + i);
    url[..end].to_string()
}

/// The body of a codec request: read here, not by the API's JSON extractor,
/// whose 16 KiB limit suits orders, not a history event's payloads.
async fn payloads(mut body: aw::Payload) -> Result<Payloads, ApiError> {
    use futures::StreamExt;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("the body could not be read: {e}"),
            )
        })?;
        if bytes.len() + chunk.len() > BODY_LIMIT {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body is over {} MiB", BODY_LIMIT / (1024 * 1024)),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    let shape = |e: serde_json::Error| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "the body is not {{\"payloads\": [{{\"metadata\": {{...}}, \"data\": \"...\"}}]}}: {e}"
            ),
        )
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    // serde would take `[]` for a payload with every field defaulted.
    let objects = value["payloads"]
        .as_array()
        .is_none_or(|items| items.iter().all(serde_json::Value::is_object));
    if !value.is_object() || !objects {
        return Err(shape(serde::de::Error::custom("payloads must be objects")));
    }
    serde_json::from_value(value).map_err(shape)
}

/// Payloads in the codec-server convention.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[schema(as = CodecPayloads, example = json!({"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "eyJjb2RlIjoiMTIzNDUifQ=="}]}))]
pub struct Payloads {
    payloads: Vec<JsonPayload>,
}

/// A payload as protobuf JSON writes it: bytes in base64.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[schema(as = CodecPayload)]
struct JsonPayload {
    /// Metadata values, base64.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, Base64>)]
    metadata: BTreeMap<String, String>,
    /// The payload's bytes, base64.
    #[serde(default)]
    #[schema(value_type = Base64)]
    data: String,
}

/// Bytes in standard base64 (URL-safe and unpadded are accepted too).
struct Base64;

impl utoipa::PartialSchema for Base64 {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .content_encoding("base64")
            .pattern(Some(
                "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Base64 {}

/// Where the codec routes are served, for the document.
const ADMIN_ONLY: &str = "Served on the **admin listener** (`ADMIN_HOST:ADMIN_PORT`, default \
`127.0.0.1:8081`), for operators and the Temporal UI: it opens every Temporal payload, payment \
codes and passengers included. The public listener (`SERVER_PORT`, this document's server) \
answers `404 NOT_FOUND` here, unless `CODEC_ON_PUBLIC_LISTENER=true` (development only). On \
every listener it needs an operator's session (the console's cookie; the Temporal UI sends it \
with its codec setting \"include credentials\") or `Authorization: Bearer <CODEC_TOKEN>`.";

#[utoipa::path(
    post,
    path = "/codec/encode",
    tag = "operations",
    security(("ops_session" = []), ("codec_token" = [])),
    summary = "Encrypt payloads with the current key (Temporal codec-server convention)",
    description = ADMIN_ONLY,
    request_body(content = Payloads, content_type = "application/json"),
    responses(
        (status = 200, description = "The payloads, encrypted", body = Payloads),
        (status = 400, description = "`INVALID_JSON`, `INVALID_REQUEST` or `INVALID_PAYLOAD` (not base64)", body = super::errors::ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: neither an operator's session nor `Authorization: Bearer <CODEC_TOKEN>`", body = super::errors::ErrorBody),
        (status = 403, description = "`ORIGIN_NOT_ALLOWED`: a browser origin the codec does not allow", body = super::errors::ErrorBody),
        (status = 404, description = "`NOT_FOUND`: asked on the public listener, or the codec endpoint is switched off", body = super::errors::ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: over 4 MiB", body = super::errors::ErrorBody),
    ),
)]
pub async fn encode(
    state: aw::Data<AppState>,
    body: aw::Payload,
) -> Result<HttpResponse, ApiError> {
    convert(payloads(body).await?, |p| state.codec.cipher.encode_one(p))
}

#[utoipa::path(
    post,
    path = "/codec/decode",
    tag = "operations",
    security(("ops_session" = []), ("codec_token" = [])),
    summary = "Decrypt payloads (Temporal codec-server convention); plain ones pass through",
    description = ADMIN_ONLY,
    request_body(content = Payloads, content_type = "application/json"),
    responses(
        (status = 200, description = "The payloads, decrypted", body = Payloads),
        (status = 400, description = "`INVALID_JSON`, `INVALID_REQUEST`, `INVALID_PAYLOAD` (not base64, or encrypted data that does not open) or `UNKNOWN_KEY_ID`", body = super::errors::ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: neither an operator's session nor `Authorization: Bearer <CODEC_TOKEN>`", body = super::errors::ErrorBody),
        (status = 403, description = "`ORIGIN_NOT_ALLOWED`: a browser origin the codec does not allow", body = super::errors::ErrorBody),
        (status = 404, description = "`NOT_FOUND`: asked on the public listener, or the codec endpoint is switched off", body = super::errors::ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: over 4 MiB", body = super::errors::ErrorBody),
    ),
)]
pub async fn decode(
    state: aw::Data<AppState>,
    body: aw::Payload,
) -> Result<HttpResponse, ApiError> {
    convert(payloads(body).await?, |p| state.codec.cipher.decode_one(p))
}

fn convert(
    body: Payloads,
    apply: impl Fn(Payload) -> Result<Payload, CodecError>,
) -> Result<HttpResponse, ApiError> {
    let payloads = body
        .payloads
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let payload = from_json(i, p)?;
            apply(payload).map(to_json).map_err(|e| rejected(i, e))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(HttpResponse::Ok().json(Payloads { payloads }))
}

fn rejected(index: usize, e: CodecError) -> ApiError {
    let code = match e {
        CodecError::UnknownKey(_) => ErrorCode::UnknownKeyId,
        _ => ErrorCode::InvalidPayload,
    };
    ApiError::new(code, format!("payloads[{index}]: {e}"))
}

/// Protobuf JSON accepts standard and URL-safe base64, padded or not;
/// line breaks (MIME style) are ignored.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let compact: String;
    let text = if text.contains(|c: char| c.is_ascii_whitespace()) {
        compact = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        &compact
    } else {
        text
    };
    let lenient = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    GeneralPurpose::new(&base64::alphabet::STANDARD, lenient)
        .decode(text)
        .or_else(|_| GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient).decode(text))
        .ok()
}

fn from_json(index: usize, p: JsonPayload) -> Result<Payload, ApiError> {
    let not_base64 = |field: String| {
        ApiError::new(
            ErrorCode::InvalidPayload,
            format!("payloads[{index}].{field} is not base64"),
        )
    };
    let mut metadata = HashMap::with_capacity(p.metadata.len());
    for (key, value) in p.metadata {
        let bytes = base64_decode(&value).ok_or_else(|| not_base64(format!("metadata.{key}")))?;
        metadata.insert(key, bytes);
    }
    let data = base64_decode(&p.data).ok_or_else(|| not_base64("data".into()))?;
    Ok(Payload {
        metadata,
        data,
        ..Default::default()
    })
}

fn to_json(p: Payload) -> JsonPayload {
    JsonPayload {
        metadata: p
            .metadata
            .into_iter()
            .map(|(k, v)| (k, STANDARD.encode(v)))
            .collect(),
        data: STANDARD.encode(p.data),
    }
}

/// Guards the codec routes: with `CODEC_ENDPOINT_ENABLED=false` they are not
/// there (404), on either listener (which listener serves them at all is
/// `listener::guard`'s). CORS: a preflight from an allowed origin is
/// answered here (a preflight carries no credentials); a request from any
/// other browser origin is refused (403); requests without `Origin` (curl,
/// the CLI) pass on. Then credentials: a live operator session or the codec
/// token, else 401 `UNAUTHENTICATED` (with the CORS headers, so a browser
/// shows it).
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // The path as routed (percent-decoded), not as sent: `/%63odec/...`
    // reaches the codec too.
    if !req.match_info().as_str().starts_with("/codec/") {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    let codec = req.app_data::<aw::Data<AppState>>().map(|s| &s.codec);
    let enabled = codec.is_some_and(|c| c.enabled);
    let allowed = match (&origin, codec) {
        (Some(o), Some(codec)) => codec.allows(o),
        _ => false,
    };
    let refuse = match &origin {
        _ if !enabled => Some(ApiError::from(ErrorCode::NotFound).error_response()),
        Some(o) if !allowed => Some(not_allowed(o)),
        None if req.method() == Method::OPTIONS => Some(HttpResponse::NoContent().finish()),
        _ => None,
    };
    if let Some(response) = refuse {
        return Ok(req.into_response(response).map_into_right_body());
    }
    if req.method() == Method::OPTIONS {
        let mut response = HttpResponse::NoContent();
        response
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS"))
            .insert_header((
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "content-type, x-namespace, authorization",
            ))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
        let mut res = req.into_response(response.finish());
        allow(&mut res, origin.as_deref());
        return Ok(res.map_into_right_body());
    }
    let authorised = match codec {
        Some(codec) => authorised(&req, codec).await,
        None => Ok(false),
    };
    let refused = match authorised {
        Ok(true) => None,
        Ok(false) => Some(unauthenticated().error_response()),
        Err(e) => Some(e.error_response()),
    };
    if let Some(response) = refused {
        // With the CORS headers, so the Temporal UI can read why.
        let mut res = req.into_response(response);
        allow(&mut res, origin.as_deref());
        return Ok(res.map_into_right_body());
    }
    let mut res = next.call(req).await?;
    allow(&mut res, origin.as_deref());
    Ok(res.map_into_left_body())
}

fn not_allowed(origin: &str) -> HttpResponse {
    ApiError::new(ErrorCode::OriginNotAllowed,
        format!(
            "origin {origin:?} may not call the codec; allow it with TEMPORAL_UI_URL or CODEC_CORS_ORIGINS"
        ),
    )
    .error_response()
}

fn allow<B>(res: &mut ServiceResponse<B>, origin: Option<&str>) {
    let Some(value) = origin.and_then(|o| HeaderValue::from_str(o).ok()) else {
        return;
    };
    let headers = res.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        assert_eq!(origin_of("http://localhost:8233"), "http://localhost:8233");
        assert_eq!(
            origin_of(" https://temporal.example.com/namespaces/x "),
            "https://temporal.example.com"
        );
        assert_eq!(origin_of(""), "");
    }
}
