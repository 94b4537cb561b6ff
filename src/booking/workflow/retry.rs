//! How a step's store call is retried, and given up on at its caller's
//! deadline.

use std::time::Duration;

use temporalio_common::RetryPolicy;
use temporalio_sdk::{LocalActivityOptions, WorkflowCancellationToken};

use crate::booking::messages::Deadline;

/// When a step runs: the caller's deadline and the workflow's time now
/// (Unix ms), so the two never travel as a bare pair.
#[derive(Clone, Copy, Debug)]
pub(super) struct Due {
    pub deadline: Deadline,
    pub now: u64,
}

impl Due {
    pub fn at(deadline: Deadline, now: u64) -> Self {
        Self { deadline, now }
    }

    /// The deadline has passed: work committed now would be late.
    pub fn passed(self) -> bool {
        self.deadline.has_passed(self.now)
    }

    /// What is left of the caller's wait.
    pub fn left(self) -> Duration {
        self.deadline.remaining(self.now)
    }
}

/// How a store call is retried.
#[derive(Clone, Copy)]
pub(super) enum Retry {
    /// A caller waits on it: quick tries until its deadline (or three).
    /// Not cancelled with the workflow, so compensation knows its outcome.
    Lock,
    /// Must eventually happen: retried until the store is back.
    Durable,
    /// Like `Durable`, and not cancelled with the workflow: compensation runs.
    Cleanup,
}

impl Retry {
    fn policy(self) -> RetryPolicy {
        match self {
            Retry::Lock => RetryPolicy::builder()
                .initial_interval(Duration::from_millis(200))
                .maximum_attempts(3)
                .build(),
            Retry::Durable | Retry::Cleanup => RetryPolicy::builder()
                .initial_interval(Duration::from_millis(500))
                .maximum_interval(Duration::from_secs(10))
                .build(),
        }
    }

    /// `due`: the caller's deadline and the time now; the activity is given
    /// up on at the deadline (its commit refuses later).
    pub fn local(self, due: Option<Due>) -> LocalActivityOptions {
        let attempt = match self {
            Retry::Lock => Duration::from_secs(5),
            Retry::Durable | Retry::Cleanup => Duration::from_secs(10),
        };
        let mut opts = LocalActivityOptions::builder()
            .start_to_close_timeout(attempt)
            .retry_policy(self.policy())
            .build();
        if let Some(due) = due {
            opts.schedule_to_close_timeout = Some(due.left().max(Duration::from_secs(1)));
        }
        opts.cancellation_token = match self {
            Retry::Lock | Retry::Cleanup => Some(WorkflowCancellationToken::new()),
            Retry::Durable => None,
        };
        opts
    }
}
