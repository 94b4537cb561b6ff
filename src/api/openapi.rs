//! The OpenAPI 3.1 document, generated from the code: the operations are
//! the route table's handlers with their `#[utoipa::path]` (see `mod.rs`),
//! the schemas the handlers' own types (`ToSchema`). What every operation
//! shares is added here once: `X-Request-Id` on every request and response,
//! `Retry-After` on every 503, 500 `INTERNAL` wherever a dependency is
//! reached, and the body errors (400, 413, 415) wherever a JSON body is read.
//! `GET /api/docs` is a reference page of our own, embedded like the UI.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, ContentType};
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{
    Content, HeaderBuilder, Ref, RefOr, Required, Response, ResponseBuilder, Responses,
};

use super::routes::RouteDocs;

/// What the document says about the API as a whole.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "flightctl",
        description = "Flight seat booking: pick seats, they are held for you for a limited time \
(every change of selection restarts the hold), pay with a 5-digit code. JSON, camelCase. \
Every error is `{\"error\": CODE, \"message\": \"human sentence\"}` (schema `Error`, codes \
enumerated in `ErrorCode`). Every response carries `X-Request-Id`, echoed when the client \
sent a sane one. Every GET operation also answers `HEAD`: the same status and headers, no body \
(an event stream's ends after its headers). Test payment codes: `00000` always succeeds, `99999` is always declined, \
`88888` always times out."
    ),
    components(schemas(
        super::errors::ErrorBody,
        super::flights::FlightsSnapshot,
        super::flights::FlightAvailability,
        super::flights::SeatsSnapshot,
        super::flights::SeatChange,
        super::orders::StatusView,
    )),
    tags(
        (name = "flights", description = "Flights and their seat maps"),
        (name = "orders", description = "Orders: hold seats, change them, pay, cancel; each order is a Temporal workflow `booking-<orderId>`"),
        (name = "bookings", description = "Manage a booking: find it by reference and last name, cancel it for a refund"),
        (name = "operations console", description = "The operator console (`/ops`): sign in, see sales and orders, act; every route but sign-in needs the session cookie"),
        (name = "waiting room", description = "A flight's queue in front of a flash sale: join, see your place and wait, get an admission for `POST /api/orders`"),
        (name = "events", description = "Server-sent event streams (`text/event-stream`), pushed on every change"),
        (name = "operations", description = "Health, client settings, and the payload codec (on the admin listener only)"),
        (name = "ui", description = "The embedded web UI and this reference"),
    )
)]
struct ApiDoc;

/// The document, built once, as served.
pub fn document() -> &'static serde_json::Value {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi().merge_from(RouteDocs::openapi());
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        doc.info.license = None;
        for route in super::ROUTES {
            let Some(item) = doc.paths.paths.get_mut(route.path) else {
                continue; // tests/openapi.rs names it
            };
            let operation = match route.method {
                "get" => &mut item.get,
                "put" => &mut item.put,
                "post" => &mut item.post,
                "delete" => &mut item.delete,
                "patch" => &mut item.patch,
                _ => continue,
            };
            if let Some(operation) = operation {
                operation.operation_id = Some(route.operation_id.to_string());
                shared(operation);
            }
        }
        // The operator console's routes name this scheme: its session cookie.
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "ops_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::ops::COOKIE,
                "The operator session, set by POST /api/ops/session (HttpOnly, SameSite=Strict)",
            ))),
        );
        // The codec's other key: CODEC_TOKEN as a bearer token.
        components.add_security_scheme(
            "codec_token",
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(utoipa::openapi::security::HttpAuthScheme::Bearer)
                    .description(Some(
                        "Authorization: Bearer <CODEC_TOKEN> (the codec only; an operator \
                         session opens it too)",
                    ))
                    .build(),
            ),
        );
        let mut json = serde_json::to_value(&doc).expect("the OpenAPI document serializes");
        fix_json(&mut json);
        for route in super::ROUTES {
            let events = streams(route.operation_id);
            let pointer = format!(
                "/paths/{}/{}/responses/200/content/text~1event-stream",
                route.path.replace('~', "~0").replace('/', "~1"),
                route.method
            );
            if let (false, Some(stream)) = (events.is_empty(), json.pointer_mut(&pointer)) {
                stream["schema"] = serde_json::json!({
                    "oneOf": events.iter().map(Event::schema).collect::<Vec<_>>()
                });
            }
        }
        json
    })
}

/// Where utoipa's output is not what OpenAPI 3.1 says: a link's
/// `operationId` is written `operation_id`, and an optional parameter
/// (`Option<T>`) is typed `[T, "null"]` although it is absent, never null.
fn fix_json(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if let Some(id) = map.remove("operation_id") {
                map.insert("operationId".into(), id);
            }
            if map.contains_key("in")
                && map.contains_key("name")
                && let Some(schema) = map.get_mut("schema")
            {
                not_null(schema);
            }
            map.values_mut().for_each(fix_json);
        }
        Value::Array(items) => items.iter_mut().for_each(fix_json),
        _ => {}
    }
}

/// One kind of server-sent event: its `event:` name (none: `message`), the
/// schema of its JSON `data:`, and whether it carries an `id:`.
struct Event {
    name: Option<&'static str>,
    data: &'static str,
    id: bool,
}

const fn event(name: &'static str, data: &'static str) -> Event {
    Event {
        name: Some(name),
        data,
        id: false,
    }
}

/// The events of each stream (`sse.rs` frames them; `flights.rs`,
/// `orders.rs` and `events.rs` name them).
fn streams(operation_id: &str) -> &'static [Event] {
    const FLIGHTS: Event = event("flights", "FlightsSnapshot");
    const FLIGHT: Event = event("flight", "FlightAvailability");
    const SEATS: Event = event("seats", "SeatsSnapshot");
    const SEAT: Event = event("seat", "SeatChange");
    const ERROR: Event = event("error", "Error");
    const SALES: Event = event("flights", "FlightsView");
    const STATUS: Event = Event {
        name: None,
        data: "StatusView",
        id: true,
    };
    const ORDER: Event = Event {
        name: Some("order"),
        data: "StatusView",
        id: true,
    };
    const TICKET: Event = Event {
        name: None,
        data: "QueueTicket",
        id: false,
    };
    match operation_id {
        "flights_list_events" => &[FLIGHTS, FLIGHT],
        "flights_events" => &[SEATS, SEAT],
        "orders_events" => &[STATUS, ERROR],
        "events_page" => &[FLIGHTS, FLIGHT, SEATS, SEAT, ORDER, ERROR],
        "ops_flights_events" => &[SALES],
        "queue_events" => &[TICKET],
        _ => &[],
    }
}

impl Event {
    /// An event as OpenAPI 3.1 describes one of a `text/event-stream`: its
    /// fields, `data` being JSON of a schema.
    fn schema(&self) -> serde_json::Value {
        use serde_json::json;
        let mut properties = json!({
            "event": {"const": self.name.unwrap_or("message")},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": format!("#/components/schemas/{}", self.data)},
            },
        });
        let mut required = vec!["data"];
        if self.name.is_some() {
            required.push("event");
        }
        if self.id {
            properties["id"] = json!({"type": "string", "pattern": "^[0-9]+$",
                "description": "The order row's version: send it back as `Last-Event-ID`"});
            required.push("id");
        }
        json!({
            "title": self.name.unwrap_or("message"),
            "type": "object",
            "properties": properties,
            "required": required,
        })
    }
}

/// `{"type": [T, "null"]}` → `{"type": T}`.
fn not_null(schema: &mut serde_json::Value) {
    let Some(serde_json::Value::Array(types)) = schema.get_mut("type") else {
        return;
    };
    types.retain(|t| t != "null");
    if types.len() == 1 {
        let only = types.remove(0);
        schema["type"] = only;
    }
}

fn error_content() -> Content {
    Content::new(Some(Ref::from_schema_name("Error")))
}

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", error_content())
        .build()
}

fn add(responses: &mut Responses, status: &str, response: Response) {
    responses
        .responses
        .entry(status.to_string())
        .or_insert(RefOr::T(response));
}

/// What every operation has in common.
fn shared(operation: &mut Operation) {
    let request_id = ParameterBuilder::new()
        .name("X-Request-Id")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Your id for this request: echoed in the response when it is 1–128 characters of \
             `A-Za-z0-9._-`, replaced by a generated one otherwise; every log line of the \
             request carries it.",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build();
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .push(request_id);

    let responses = &mut operation.responses;
    if operation.request_body.is_some() {
        if let Some(RefOr::T(bad)) = responses.responses.get_mut("400") {
            bad.description.push_str(
                "; `INVALID_JSON`: the body is not JSON; `INVALID_REQUEST`: it has the wrong shape",
            );
        }
        add(
            responses,
            "413",
            error_response("`PAYLOAD_TOO_LARGE`: the body is larger than 16 KiB"),
        );
        add(
            responses,
            "415",
            error_response("`UNSUPPORTED_MEDIA_TYPE`: the body is not `application/json`"),
        );
    }
    let reaches_dependency = responses.responses.contains_key("503");
    if reaches_dependency {
        add(
            responses,
            "500",
            error_response(
                "`INTERNAL`: an unexpected failure, logged with its cause and answered without it",
            ),
        );
    }
    for (status, response) in responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        response.headers.insert(
            "X-Request-Id".to_string(),
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some("This request's id (the one sent, or a generated one)"))
                .build(),
        );
        let is_error = response
            .content
            .get("application/json")
            .is_some_and(|c| c.schema == error_content().schema);
        if (status == "503" || status == "429") && is_error {
            response.headers.insert(
                "Retry-After".to_string(),
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    )
                    .description(Some("Seconds to wait before retrying"))
                    .build(),
            );
        }
    }
}

/// The document as JSON, rendered once.
fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        serde_json::to_string_pretty(document()).expect("the OpenAPI document serializes")
    })
}

/// `GET /api/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "ui",
    summary = "This OpenAPI 3.1 document",
    responses((status = 200, description = "The document", content_type = "application/json", body = Object)),
)]
pub async fn document_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(json())
}

const DOCS: &str = include_str!("web/docs.html");

/// `GET /api/docs`.
#[utoipa::path(
    get,
    path = "/api/docs",
    tag = "ui",
    summary = "An interactive reference of this document",
    description = "Lists the operations by tag with their parameters, bodies, responses and \
                   schemas, and sends a request from a form. Embedded in the binary (its module \
                   is `/assets/docs.js`); nothing is loaded from elsewhere.",
    responses((status = 200, description = "The page", content_type = "text/html", body = String)),
)]
pub async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(DOCS)
}
