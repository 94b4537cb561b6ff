//! The booking process: one Temporal workflow per order (`workflow`), the
//! activities that do its I/O (`activities`), and the messages both sides and
//! the API exchange (`messages`).

pub mod activities;
pub mod messages;
pub mod payment;
pub mod reconcile;
pub mod refund;
pub mod service;
pub mod workflow;

pub use activities::BookingActivities;
pub use workflow::Booking;
