//! The booking process: one Temporal workflow per order (`workflow`), the
//! activities that do its I/O (`activities`), the messages both sides and
//! the API exchange (`messages`), the refund of a booking (`refund`), the
//! mails a booking sends (`mails`), and the [`Engine`](service::Engine)
//! that starts and talks to the workflows.

pub mod activities;
pub mod mails;
pub mod messages;
pub mod payment;
pub mod reconcile;
pub mod refund;
pub mod service;
pub mod workflow;

pub use activities::BookingActivities;
pub use workflow::Booking;
