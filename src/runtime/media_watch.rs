//! What the calls' media tasks report that the phone core acts on: RFC 4733
//! digits as they end (→ `Event::Dtmf`), and how long no RTP has arrived
//! (→ the core's inactivity hang-up). The driver polls the tasks' statistics
//! with [`MediaWatch::poll`] a few times a second.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::media::session::MediaStats;
use crate::phone::{CallId, Phone};

/// How often the driver polls the media statistics.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// Digits already reported per call.
#[derive(Default)]
pub struct MediaWatch {
    seen: HashMap<CallId, String>,
}

impl MediaWatch {
    /// Feed the statistics of every call with running media.
    pub fn poll(&mut self, phone: &mut Phone, now: Instant, stats: Vec<(CallId, MediaStats)>) {
        self.seen
            .retain(|id, _| stats.iter().any(|(call, _)| call == id));
        for (call, s) in stats {
            let seen = self.seen.entry(call).or_default();
            // A restarted stream starts its digit list again.
            let new = match s.dtmf_received.strip_prefix(seen.as_str()) {
                Some(rest) => rest.to_string(),
                None => s.dtmf_received.clone(),
            };
            for digit in new.chars() {
                phone.handle_media_dtmf(call, digit);
            }
            *seen = s.dtmf_received;
            phone.handle_media_silent(now, call, s.silent_for_ms / 1000);
        }
    }
}
