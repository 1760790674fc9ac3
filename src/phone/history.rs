//! The call-history record the core emits when a call ends
//! ([`super::Event::History`]); the runtime stores it (src/runtime/history.rs).

use std::time::Duration;

use serde::Serialize;

use super::types::{CallId, Direction};

/// How a call ended, from the user's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Someone answered (either side).
    Answered,
    /// Incoming, never answered: the caller gave up, or the ring timed out.
    Missed,
    /// Declined: by the user (reject) or by DND; outgoing: 603 from the far end.
    Rejected,
    /// Busy: all lines busy / busy-on-busy (incoming), 486/600 (outgoing).
    Busy,
    /// Incoming, redirected with 302.
    Forwarded,
    /// Outgoing, cancelled by us before the answer.
    Cancelled,
    /// Anything else that kept the call from being set up.
    Failed,
}

/// One finished call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// The call's id (`None` for an INVITE refused before it became a call:
    /// DND, busy, forward-always).
    pub call: Option<CallId>,
    pub direction: Direction,
    pub remote: String,
    pub account: Option<String>,
    pub line: Option<u8>,
    pub disposition: Disposition,
    /// Final SIP status sent or received, when there was one.
    pub status_code: Option<u16>,
    /// Why it ended, in words.
    pub cause: Option<String>,
    /// Seconds from the first INVITE to the answer (or to the end).
    pub ring_secs: f64,
    /// Seconds from the answer to the end (0 when never answered).
    pub talk_secs: f64,
}

/// Seconds with millisecond precision.
pub(super) fn secs(d: Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}
