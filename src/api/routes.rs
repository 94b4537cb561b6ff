//! The route table: every route `serve` has, registered and documented
//! from one list.

use actix_web::web as aw;

use super::{
    bookings, codec, errors, events, flights, health, metrics, openapi, ops, orders, queue, web,
};

/// A route `serve` registers.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// Lower case, as in the OpenAPI document: `get`, `post`, ...
    pub method: &'static str,
    /// As actix matches it, which is as OpenAPI writes it: `/api/orders/{id}`.
    pub path: &'static str,
    /// `<module>_<handler>`: unique, and what links in the document name.
    pub operation_id: &'static str,
}

impl Route {
    /// The handler's module: `codec` of `codec_decode`.
    pub fn module(&self) -> &'static str {
        self.operation_id
            .split_once('_')
            .map_or(self.operation_id, |(module, _)| module)
    }
}

/// The actix route of one method of the route table: GET is GET or HEAD.
macro_rules! on {
    (get) => {
        aw::route()
            .guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()))
    };
    ($method:ident) => {
        aw::$method()
    };
}

/// The route table: every route `serve` has, registered (`routes`) and
/// documented (`RouteDocs`, each handler's `#[utoipa::path]`) from this one
/// list, so no route can be served without being in the OpenAPI document.
/// Every GET route answers HEAD too, with the same handler (`on!`; the
/// document says so once, `headers::secure` drops a streamed body). A
/// path's other methods answer 405 with `Allow`. `ROUTES` is what
/// `tests/openapi.rs` checks the document against.
macro_rules! route_table {
    ($($path:literal => [$($method:ident $module:ident::$handler:ident),+ $(,)?]),* $(,)?) => {
        /// Register every route of the table.
        pub(super) fn routes(cfg: &mut aw::ServiceConfig) {
            $(cfg.service(
                aw::resource($path)
                    $(.route(on!($method).to($module::$handler)))+
                    .default_service(aw::to(|| async {
                        errors::method_not_allowed(&[$(stringify!($method)),+])
                    })),
            );)*
        }

        /// Every registered route, in registration order.
        pub const ROUTES: &[Route] = &[$($(Route {
            method: stringify!($method),
            path: $path,
            operation_id: concat!(stringify!($module), "_", stringify!($handler)),
        }),+),*];

        /// The operations of the route table, from the handlers' annotations.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($($module::$handler),+),*))]
        pub(super) struct RouteDocs;
    };
}

route_table! {
    "/health" => [get health::health],
    "/livez" => [get health::livez],
    "/readyz" => [get health::readyz],
    "/metrics" => [get metrics::render],
    "/api/config" => [get web::client_config],
    "/api/openapi.json" => [get openapi::document_json],
    "/api/docs" => [get openapi::docs],
    "/api/flights" => [get flights::list],
    "/api/events" => [get events::page],
    "/api/flights/events" => [get flights::list_events],
    "/api/flights/{id}" => [get flights::show],
    "/api/flights/{id}/events" => [get flights::events],
    "/api/flights/{id}/queue" => [post queue::join],
    "/api/flights/{id}/queue/{ticket}" => [get queue::ticket],
    "/api/flights/{id}/queue/{ticket}/events" => [get queue::events],
    "/api/orders" => [post orders::create],
    "/api/orders/{id}" => [get orders::show, delete orders::cancel],
    "/api/orders/{id}/seats" => [put orders::change_seats],
    "/api/orders/{id}/status" => [get orders::status],
    "/api/orders/{id}/passengers" => [put orders::set_passengers],
    "/api/orders/{id}/pay" => [post orders::pay],
    "/api/orders/{id}/events" => [get orders::events],
    "/api/bookings/lookup" => [post bookings::look_up],
    "/api/bookings/checkin" => [post bookings::check_in],
    "/api/bookings/{reference}/cancel" => [post bookings::cancel],
    "/api/ops/session" => [post ops::sign_in, get ops::session, delete ops::sign_out],
    "/api/ops/flights" => [get ops::flights, post ops::add_flight],
    "/api/ops/flights/events" => [get ops::flights_events],
    "/api/ops/flights/{id}/sales" => [post ops::sales],
    "/api/ops/flights/{id}/fares" => [put ops::set_fares],
    "/api/ops/orders" => [get ops::orders_list],
    "/api/ops/orders/{id}" => [get ops::order],
    "/api/ops/orders/{id}/cancel" => [post ops::cancel_order],
    "/api/ops/orders/{id}/refund" => [post ops::retry_refund],
    "/api/ops/bookings/{reference}/refund" => [post ops::refund_booking],
    "/api/ops/reconciliation" => [get ops::reconciliation],
    "/api/ops/audit" => [get ops::audit],
    "/codec/encode" => [post codec::encode],
    "/codec/decode" => [post codec::decode],
    "/" => [get web::index],
    "/manage" => [get web::manage],
    "/ops" => [get web::ops],
    "/assets/{file}" => [get web::asset],
}
