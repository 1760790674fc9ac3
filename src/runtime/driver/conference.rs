//! The driver's part of a local conference: link the two calls' media
//! tasks, unlink them, and route local tones (see `runtime::conference`).

use super::Media;
use crate::media::mixer::ToneSpec;
use crate::phone::{CallId, Tone};
use crate::runtime::conference::link_pair;

impl Media {
    /// Mix calls `a` (keeps the local audio) and `b`.
    pub(super) fn conference(&mut self, a: CallId, b: CallId) {
        let task = |id| self.calls.get(&id).and_then(|s| s.task.as_ref());
        match (task(a), task(b)) {
            (Some(ta), Some(tb)) => {
                let (host, guest) = link_pair();
                ta.conference(Some(host));
                tb.conference(Some(guest));
            }
            _ => tracing::warn!(a, b, "conference: a call has no media running"),
        }
    }

    /// Give calls `a` and `b` their own audio again.
    pub(super) fn split(&mut self, a: CallId, b: CallId) {
        for id in [a, b] {
            if let Some(t) = self.calls.get(&id).and_then(|s| s.task.as_ref()) {
                t.conference(None);
            }
        }
    }

    /// Play a local tone in a call's playout.
    pub(super) fn play_tone(&self, call: CallId, tone: Tone) {
        let spec = match tone {
            Tone::CallWaiting => ToneSpec::CALL_WAITING,
            Tone::AutoAnswer => ToneSpec::ZIP,
        };
        match self.calls.get(&call).and_then(|s| s.task.as_ref()) {
            Some(t) => t.play_tone(spec),
            None => tracing::debug!(call, ?tone, "tone not played: no media"),
        }
    }
}
