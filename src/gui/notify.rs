//! Desktop notifications for incoming and missed calls (D-Bus
//! `org.freedesktop.Notifications` on Linux, native on Windows and macOS),
//! sent from a helper thread so the window never waits on the desktop.

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
            if let Err(e) = n.show() {
                tracing::info!("no desktop notification ({e}): {}", note.summary);
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
