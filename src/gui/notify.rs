//! Desktop notifications for incoming and missed calls (D-Bus
//! `org.freedesktop.Notifications` on Linux, native on Windows and macOS),
//! sent from a helper thread so the window never waits on the desktop. The
//! incoming-call note is closed when its call is answered, rejected,
//! ignored or ends ([`Shown`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub summary: String,
    pub body: String,
    /// Stays until dismissed (an incoming call) or times out.
    pub urgent: bool,
}

/// An incoming call from `party` (already shortened for people).
pub fn incoming(party: &str, auto_answer: Option<&str>) -> Note {
    Note {
        summary: format!("Incoming call from {party}"),
        body: match auto_answer {
            Some(why) => format!("Answering automatically ({why})"),
            None => "Ctrl+Enter answers in the Softline window".into(),
        },
        urgent: true,
    }
}

/// A call nobody answered.
pub fn missed(party: &str) -> Note {
    Note {
        summary: format!("Missed call from {party}"),
        body: "It is in the History page, with Call back".into(),
        urgent: false,
    }
}

/// Show it (best effort: a desktop without a notification service only
/// gets a log line).
pub fn show(note: Note) {
    spawn_show(note, |_| {});
}

/// Incoming-call notifications on screen, by call id, so the window can
/// close each one when its call is answered, rejected, ignored or ends.
#[derive(Clone, Default)]
pub struct Shown(Arc<Mutex<HashMap<u64, Slot>>>);

enum Slot {
    /// The helper thread is still showing it.
    Pending,
    /// Closed before it was up: close it as soon as it is.
    CloseWhenUp,
    #[cfg(all(unix, not(target_os = "macos")))]
    Up(Box<notify_rust::NotificationHandle>),
}

impl Shown {
    /// Show the incoming-call note of `call`.
    pub fn incoming(&self, call: u64, note: Note) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(call, Slot::Pending);
        }
        let shown = self.clone();
        spawn_show(note, move |handle| shown.up(call, handle));
    }

    /// Calls whose note is (being) shown.
    pub fn calls(&self) -> Vec<u64> {
        self.0
            .lock()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Take the note of `call` off the screen (on a helper thread: closing
    /// is a D-Bus call).
    pub fn close(&self, call: u64) {
        let Ok(mut map) = self.0.lock() else { return };
        match map.remove(&call) {
            Some(Slot::Pending) => {
                map.insert(call, Slot::CloseWhenUp);
            }
            #[cfg(all(unix, not(target_os = "macos")))]
            Some(Slot::Up(handle)) => close_in_background(*handle),
            Some(Slot::CloseWhenUp) | None => {}
        }
    }

    #[cfg(all(unix, not(target_os = "macos")))]
    fn up(&self, call: u64, handle: Option<notify_rust::NotificationHandle>) {
        let Ok(mut map) = self.0.lock() else { return };
        match (map.remove(&call), handle) {
            (Some(Slot::Pending), Some(h)) => {
                map.insert(call, Slot::Up(Box::new(h)));
            }
            (Some(Slot::CloseWhenUp), Some(h)) => close_in_background(h),
            _ => {}
        }
    }

    #[cfg(not(all(unix, not(target_os = "macos"))))]
    fn up(&self, call: u64, _handle: Option<()>) {
        // No handle to close here: the note times out by itself.
        if let Ok(mut map) = self.0.lock() {
            map.remove(&call);
        }
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
type Handle = notify_rust::NotificationHandle;
#[cfg(not(all(unix, not(target_os = "macos"))))]
type Handle = ();

#[cfg(all(unix, not(target_os = "macos")))]
fn close_in_background(handle: notify_rust::NotificationHandle) {
    let spawned = std::thread::Builder::new()
        .name("softline-notify".into())
        .spawn(move || handle.close());
    if let Err(e) = spawned {
        tracing::warn!("cannot close a notification: {e}");
    }
}

/// Show `note` on a helper thread; `then` gets its handle (where the
/// platform has one to close) or `None` when it could not be shown.
fn spawn_show(note: Note, then: impl FnOnce(Option<Handle>) + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("softline-notify".into())
        .spawn(move || {
            let mut n = notify_rust::Notification::new();
            n.appname("Softline")
                .summary(&note.summary)
                .body(&note.body)
                .icon("softline");
            if note.urgent {
                n.timeout(notify_rust::Timeout::Never);
            }
            match n.show() {
                #[cfg(all(unix, not(target_os = "macos")))]
                Ok(handle) => then(Some(handle)),
                #[cfg(not(all(unix, not(target_os = "macos"))))]
                Ok(_) => then(Some(())),
                Err(e) => {
                    tracing::info!("no desktop notification ({e}): {}", note.summary);
                    then(None);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot notify: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_say_who_and_what_to_do() {
        let n = incoming("Bob (201)", None);
        assert_eq!(n.summary, "Incoming call from Bob (201)");
        assert!(n.urgent);
        assert_eq!(
            incoming("600", Some("Call-Info answer-after=0")).body,
            "Answering automatically (Call-Info answer-after=0)"
        );
        let m = missed("700");
        assert_eq!(m.summary, "Missed call from 700");
        assert!(!m.urgent);
    }
}
