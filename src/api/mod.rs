//! `flightctl serve`: the HTTP API and the embedded web UI (actix-web).
//! Handlers are thin: parse at the edge, call the store or the workflow,
//! map errors once (`errors`).

mod app;
mod bodies;
mod bookings;
mod codec;
mod errors;
mod events;
mod flights;
mod headers;
mod health;
mod idempotency;
mod listener;
mod live;
mod metrics;
mod openapi;
pub mod ops;
mod orders;
mod queue;
mod request_id;
mod routes;
mod seats;
mod sse;
mod state;
mod web;

pub use app::{Application, serve};
pub use errors::{ApiError, ErrorCode};
pub use openapi::document as openapi_document;
pub use routes::{ROUTES, Route};
pub use state::AppState;
