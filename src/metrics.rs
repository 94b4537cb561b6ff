//! Metrics, in the Prometheus text format. Each process exports what
//! happens in it, so Prometheus scraping every `serve` and every `worker`
//! can sum them:
//!
//! - `serve` (`GET /metrics`, [`api()`]): HTTP requests and their latency,
//!   holds taken and refused (as the API answered them), admission
//!   rejections, open event streams, and the seats held now in Redis
//!   (computed when scraped: right across restarts, the same in every
//!   `serve`, so a dashboard takes its `max`, not its `sum`).
//! - `worker` (`WORKER_METRICS_PORT`, [`start_worker_exporter`]): order
//!   endings and payment attempts, counted by the activities from what the
//!   store reports the change did when it committed (once, however often an
//!   activity retries; never in workflow code, which replays), next to the Temporal
//!   SDK's own `temporal_*` worker metrics on the same endpoint: ours are
//!   instruments of the SDK's Prometheus meter. The reconciliation sweep
//!   sets the orders whose money does not balance, on every run.
//!
//! Every name of ours starts with `flightctl_`.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, OnceLock};

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};
use temporalio_common::telemetry::metrics::{
    CoreMeter, Counter, Gauge, MetricAttributes, MetricKeyValue, MetricParameters, NewAttributes,
};
use temporalio_common::telemetry::{PrometheusExporterOptions, start_prometheus_metric_exporter};

use crate::domain::AttemptOutcome;
use crate::domain::OrderStatus;

pub const HTTP_REQUESTS: &str = "flightctl_http_requests_total";
pub const HTTP_DURATION: &str = "flightctl_http_request_duration_seconds";
pub const OPEN_EVENT_STREAMS: &str = "flightctl_open_event_streams";
pub const HOLDS_TAKEN: &str = "flightctl_holds_taken_total";
pub const HOLDS_REFUSED: &str = "flightctl_holds_refused_total";
pub const ADMISSION_REJECTIONS: &str = "flightctl_admission_rejections_total";
pub const LIVE_HOLDS: &str = "flightctl_live_holds";
pub const ORDERS_ENDED: &str = "flightctl_orders_ended_total";
pub const REFUNDS_ENDED: &str = "flightctl_refunds_ended_total";
pub const PAYMENT_ATTEMPTS: &str = "flightctl_payment_attempts_total";
pub const MONEY_DISCREPANCIES: &str = "flightctl_money_discrepancies";
pub const QUEUE_JOINED: &str = "flightctl_queue_joined_total";
pub const QUEUE_LENGTH: &str = "flightctl_queue_length";
pub const QUEUE_ADMITTED: &str = "flightctl_queue_admitted";
pub const QUEUE_ADMITTED_TOTAL: &str = "flightctl_queue_admitted_total";
pub const QUEUE_ADMISSION_RATE: &str = "flightctl_queue_admission_rate";
pub const QUEUE_LAPSED: &str = "flightctl_queue_lapsed";
pub const QUEUE_WAIT: &str = "flightctl_queue_wait_seconds";

/// Waiting-room wait buckets (seconds): from at once to half an hour.
const WAIT_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// Request latency buckets (seconds): reads take milliseconds, booking
/// calls up to `API_CALL_TIMEOUT` plus a grace period.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The series `serve` exports.
pub struct Api {
    pub registry: Registry,
    /// By `method`, `route` (the route's pattern, `unmatched` for none) and
    /// `status`; event streams included.
    pub http_requests: IntCounterVec,
    /// Time to the response, same labels; event streams are left out (they
    /// last as long as the client stays) and counted open instead.
    pub http_duration: HistogramVec,
    /// Event streams open now, by `route`.
    pub open_streams: IntGaugeVec,
    /// Selections held, by `request` (`create`, `change`).
    pub holds_taken: IntCounterVec,
    /// Selections refused `409 SEATS_UNAVAILABLE`, by `request`.
    pub holds_refused: IntCounterVec,
    /// Booking calls answered `503 SERVICE_BUSY` by the in-flight bound.
    pub admission_rejections: IntCounter,
    /// Seats held in Redis now (set when scraped).
    pub live_holds: IntGauge,
    /// The waiting room, each by `flight` (its id) only: tickets made by
    /// joins on this instance;
    pub queue_joined: IntCounterVec,
    /// pre-queued and waiting now, admitted with the admission unused,
    /// lapsed places and admissions in all, admissions per second over
    /// the last 30 s (the queue's own figures, the same on every
    /// instance: a dashboard takes their `max`);
    pub queue_length: IntGaugeVec,
    pub queue_admitted: IntGaugeVec,
    pub queue_lapsed: IntGaugeVec,
    pub queue_admission_rate: GaugeVec,
    /// admissions made by this instance's steps, and how long each
    /// admitted ticket waited (from its join, or the opening).
    pub queue_admitted_total: IntCounterVec,
    pub queue_wait: HistogramVec,
}

/// Selection requests, the values of `request` on the hold counters.
pub const SELECTION_REQUESTS: [&str; 2] = ["create", "change"];

fn api_metrics() -> prometheus::Result<Api> {
    let registry = Registry::new();
    let http_requests = IntCounterVec::new(
        Opts::new(HTTP_REQUESTS, "HTTP requests answered"),
        &["method", "route", "status"],
    )?;
    let http_duration = HistogramVec::new(
        HistogramOpts::new(
            HTTP_DURATION,
            "Time to answer an HTTP request (event streams excluded)",
        )
        .buckets(LATENCY_BUCKETS.to_vec()),
        &["method", "route", "status"],
    )?;
    let open_streams = IntGaugeVec::new(
        Opts::new(OPEN_EVENT_STREAMS, "Server-sent event streams open now"),
        &["route"],
    )?;
    let holds_taken = IntCounterVec::new(
        Opts::new(HOLDS_TAKEN, "Seat selections held for an order"),
        &["request"],
    )?;
    let holds_refused = IntCounterVec::new(
        Opts::new(
            HOLDS_REFUSED,
            "Seat selections refused: a seat booked or held by another order",
        ),
        &["request"],
    )?;
    let admission_rejections = IntCounter::new(
        ADMISSION_REJECTIONS,
        "Booking calls turned away (503 SERVICE_BUSY) at the in-flight limit",
    )?;
    let live_holds = IntGauge::new(LIVE_HOLDS, "Seats held in Redis now, every flight")?;
    let flight = &["flight"];
    let queue_joined = IntCounterVec::new(
        Opts::new(QUEUE_JOINED, "Waiting-room tickets made by joins"),
        flight,
    )?;
    let queue_length = IntGaugeVec::new(
        Opts::new(QUEUE_LENGTH, "Tickets pre-queued or waiting now"),
        flight,
    )?;
    let queue_admitted = IntGaugeVec::new(
        Opts::new(QUEUE_ADMITTED, "Admitted tickets whose admission is unused"),
        flight,
    )?;
    let queue_lapsed = IntGaugeVec::new(
        Opts::new(QUEUE_LAPSED, "Places and admissions lapsed, in all"),
        flight,
    )?;
    let queue_admission_rate = GaugeVec::new(
        Opts::new(
            QUEUE_ADMISSION_RATE,
            "Tickets admitted per second, over the last 30 s",
        ),
        flight,
    )?;
    let queue_admitted_total = IntCounterVec::new(
        Opts::new(QUEUE_ADMITTED_TOTAL, "Tickets admitted by this instance"),
        flight,
    )?;
    let queue_wait = HistogramVec::new(
        HistogramOpts::new(
            QUEUE_WAIT,
            "How long an admitted ticket waited, from its join or the opening",
        )
        .buckets(WAIT_BUCKETS.to_vec()),
        flight,
    )?;
    for request in SELECTION_REQUESTS {
        holds_taken.with_label_values(&[request]);
        holds_refused.with_label_values(&[request]);
    }
    registry.register(Box::new(http_requests.clone()))?;
    registry.register(Box::new(http_duration.clone()))?;
    registry.register(Box::new(open_streams.clone()))?;
    registry.register(Box::new(holds_taken.clone()))?;
    registry.register(Box::new(holds_refused.clone()))?;
    registry.register(Box::new(admission_rejections.clone()))?;
    registry.register(Box::new(live_holds.clone()))?;
    registry.register(Box::new(queue_joined.clone()))?;
    registry.register(Box::new(queue_length.clone()))?;
    registry.register(Box::new(queue_admitted.clone()))?;
    registry.register(Box::new(queue_lapsed.clone()))?;
    registry.register(Box::new(queue_admission_rate.clone()))?;
    registry.register(Box::new(queue_admitted_total.clone()))?;
    registry.register(Box::new(queue_wait.clone()))?;
    Ok(Api {
        registry,
        http_requests,
        http_duration,
        open_streams,
        holds_taken,
        holds_refused,
        admission_rejections,
        live_holds,
        queue_joined,
        queue_length,
        queue_admitted,
        queue_lapsed,
        queue_admission_rate,
        queue_admitted_total,
        queue_wait,
    })
}

/// The API's series (one set per process).
pub fn api() -> &'static Api {
    static API: LazyLock<Api> =
        LazyLock::new(|| api_metrics().expect("the API's metrics are well-formed"));
    &API
}

/// The worker's series, instruments of the SDK's meter.
struct Booking {
    ended: Counter,
    /// Attributes per ending: confirmed, expired, cancelled, failed.
    endings: [MetricAttributes; 4],
    attempts: Counter,
    /// Attributes per attempt outcome, in [`AttemptOutcome`] order.
    outcomes: [MetricAttributes; 4],
    refunds: Counter,
    /// Attributes per refund ending: refunded, failed.
    refund_endings: [MetricAttributes; 2],
    /// Orders whose money does not balance, at the sweep's last run.
    discrepancies: Gauge,
    unlabelled: MetricAttributes,
}

static BOOKING: OnceLock<Booking> = OnceLock::new();

const ENDINGS: [&str; 4] = ["confirmed", "expired", "cancelled", "failed"];
const OUTCOMES: [&str; 4] = ["succeeded", "declined", "timed_out", "error"];
const REFUND_ENDINGS: [&str; 2] = ["refunded", "failed"];

impl Booking {
    fn new(meter: &dyn CoreMeter) -> Self {
        let counter = |name: &'static str, description: &'static str| {
            meter.counter(
                MetricParameters::builder()
                    .name(name)
                    .description(description)
                    .build(),
            )
        };
        let label = |key: &'static str, value: &'static str| {
            meter.new_attributes(NewAttributes::from([MetricKeyValue::new(key, value)]))
        };
        let booking = Self {
            ended: counter(
                ORDERS_ENDED,
                "Orders ended, by status (confirmed, expired, cancelled, failed)",
            ),
            endings: ENDINGS.map(|s| label("status", s)),
            attempts: counter(
                PAYMENT_ATTEMPTS,
                "Payment validation attempts recorded, by outcome",
            ),
            outcomes: OUTCOMES.map(|o| label("outcome", o)),
            refunds: counter(
                REFUNDS_ENDED,
                "Refunds ended, by outcome (refunded, failed: an operator must act)",
            ),
            refund_endings: REFUND_ENDINGS.map(|o| label("outcome", o)),
            discrepancies: meter.gauge(
                MetricParameters::builder()
                    .name(MONEY_DISCREPANCIES)
                    .description(
                        "Orders whose approved charges less refunds are not the price of what \
                         they hold sold, at the reconciliation sweep's last run",
                    )
                    .build(),
            ),
            unlabelled: meter.new_attributes(NewAttributes::from([])),
        };
        // Every series from the start, so rates work from the first event.
        for attrs in &booking.endings {
            booking.ended.add(0, attrs);
        }
        for attrs in &booking.outcomes {
            booking.attempts.add(0, attrs);
        }
        for attrs in &booking.refund_endings {
            booking.refunds.add(0, attrs);
        }
        booking
    }
}

/// The worker's metrics endpoint, serving.
pub struct WorkerExporter {
    /// The meter the Temporal runtime records its worker metrics with.
    pub meter: Arc<dyn CoreMeter>,
    pub address: SocketAddr,
    abort: tokio::task::AbortHandle,
}

impl Drop for WorkerExporter {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

/// Serve `GET /metrics` on `port` (0: a free one) on every interface: the
/// Temporal SDK's Prometheus exporter, with our counters on its meter.
pub fn start_worker_exporter(port: u16) -> anyhow::Result<WorkerExporter> {
    let options = PrometheusExporterOptions::builder()
        .socket_addr(SocketAddr::from(([0, 0, 0, 0], port)))
        .use_seconds_for_durations(true)
        .build();
    let started = start_prometheus_metric_exporter(options)?;
    let meter: Arc<dyn CoreMeter> = started.meter;
    // A second exporter in one process (tests) keeps counting on the first.
    let _ = BOOKING.set(Booking::new(meter.as_ref()));
    Ok(WorkerExporter {
        meter,
        address: started.bound_addr,
        abort: started.abort_handle,
    })
}

/// A refund ended: paid back, or failed after its last attempt (counted
/// where the change commits, once).
pub fn refund_ended(refunded: bool) {
    if let Some(m) = BOOKING.get() {
        m.refunds.add(1, &m.refund_endings[usize::from(!refunded)]);
    }
}

/// An order reached a final status (counted where the change commits).
pub fn order_ended(status: OrderStatus) {
    let index = match status {
        OrderStatus::Confirmed => 0,
        OrderStatus::Expired => 1,
        OrderStatus::Cancelled => 2,
        OrderStatus::Failed => 3,
        _ => return,
    };
    if let Some(m) = BOOKING.get() {
        m.ended.add(1, &m.endings[index]);
    }
}

/// A payment attempt was recorded (once per attempt).
pub fn payment_attempt(outcome: AttemptOutcome) {
    let index = match outcome {
        AttemptOutcome::Succeeded => 0,
        AttemptOutcome::Declined => 1,
        AttemptOutcome::TimedOut => 2,
        AttemptOutcome::Error => 3,
    };
    if let Some(m) = BOOKING.get() {
        m.attempts.add(1, &m.outcomes[index]);
    }
}

/// The sweep checked the money ledger: this many orders do not balance.
pub fn money_discrepancies(count: usize) {
    if let Some(m) = BOOKING.get() {
        m.discrepancies.record(count as u64, &m.unlabelled);
    }
}
