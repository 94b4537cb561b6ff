//! flightctl: flight seat booking on PostgreSQL, Redis and Temporal.
//! See ARCHITECTURE.md for the map.

pub mod api;
pub mod bcbp;
pub mod booking;
pub mod cli;
pub mod codec;
pub mod config;
pub mod deployment;
pub mod domain;
pub mod fares;
pub mod mail;
pub mod metrics;
pub mod money;
pub mod ops;
pub mod orders;
pub mod passengers;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod temporal;
pub mod tickets;
pub mod time;
pub mod waiting;
pub mod worker;
