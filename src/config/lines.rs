//! `[phone]` (lines, incoming-call policies, transfer policy) and
//! `[history]` (the call history file).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ConfigError, key_line};

/// `[phone]`: lines, busy handling, DND, forwarding, ring timeout, REFER.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct PhoneSection {
    /// Number of lines (simultaneous calls), 1–32.
    pub lines: u32,
    /// Answer 486 to a new call while another call is connected.
    pub busy_on_busy: bool,
    /// `line N` holds the other connected call(s) first.
    pub hold_on_line_switch: bool,
    /// Do not disturb at start.
    pub dnd: bool,
    /// The status DND answers with: 486 (Busy Here) or 603 (Decline).
    pub dnd_code: u16,
    /// Forward every incoming call here (a number or SIP URI).
    pub forward_always: Option<String>,
    /// Forward when busy (all lines busy, or busy-on-busy).
    pub forward_busy: Option<String>,
    /// Forward when nobody answers within `forward_no_answer_secs`.
    pub forward_no_answer: Option<String>,
    pub forward_no_answer_secs: u64,
    /// Answer 480 to a ringing incoming call after this many seconds; 0 = off.
    pub ring_timeout_secs: u64,
    /// Act on a REFER from the far end (be transferred); false → 603.
    pub accept_refer: bool,
    /// Session timer (RFC 4028) asked for in our INVITEs, seconds; 0 = off.
    pub session_expires_secs: u32,
    /// Smallest session interval we accept (RFC 4028 Min-SE), seconds.
    pub min_se: u32,
}

impl Default for PhoneSection {
    fn default() -> Self {
        PhoneSection {
            lines: 8,
            busy_on_busy: false,
            hold_on_line_switch: true,
            dnd: false,
            dnd_code: 486,
            forward_always: None,
            forward_busy: None,
            forward_no_answer: None,
            forward_no_answer_secs: 20,
            ring_timeout_secs: 0,
            accept_refer: true,
            session_expires_secs: 1800,
            min_se: 90,
        }
    }
}

/// `[history]`: where finished calls are recorded.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct HistorySection {
    /// JSON-lines file; default `history.jsonl` under the XDG data dir.
    pub file: Option<PathBuf>,
    /// Oldest entries are dropped beyond this many.
    pub max_entries: usize,
}

impl Default for HistorySection {
    fn default() -> Self {
        HistorySection {
            file: None,
            max_entries: 10000,
        }
    }
}

/// Check `[phone]` and `[history]`; errors name the file, line and key.
pub(super) fn validate(
    phone: &PhoneSection,
    history: &HistorySection,
    text: &str,
    path: &Path,
) -> Result<(), ConfigError> {
    let err = |section: &str, key: &str, message: String| ConfigError {
        file: path.to_path_buf(),
        line: key_line(text, section, key),
        key: Some(format!("{section}.{key}")),
        message,
    };
    if !(1..=32).contains(&phone.lines) {
        return Err(err(
            "phone",
            "lines",
            format!("{} lines: use 1 to 32", phone.lines),
        ));
    }
    if ![486, 603].contains(&phone.dnd_code) {
        return Err(err(
            "phone",
            "dnd_code",
            format!("{}: use 486 (busy) or 603 (decline)", phone.dnd_code),
        ));
    }
    for (key, value) in [
        ("forward_always", &phone.forward_always),
        ("forward_busy", &phone.forward_busy),
        ("forward_no_answer", &phone.forward_no_answer),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(err(
                "phone",
                key,
                "is empty: remove it or give a number or URI".into(),
            ));
        }
    }
    if phone.forward_no_answer_secs == 0 {
        return Err(err(
            "phone",
            "forward_no_answer_secs",
            "must be at least 1 second".into(),
        ));
    }
    if phone.min_se < 90 {
        return Err(err(
            "phone",
            "min_se",
            format!("{}: RFC 4028 needs at least 90 seconds", phone.min_se),
        ));
    }
    if phone.session_expires_secs != 0 && phone.session_expires_secs < phone.min_se {
        return Err(err(
            "phone",
            "session_expires_secs",
            format!(
                "{} is below min_se ({}): use 0 (off) or at least min_se",
                phone.session_expires_secs, phone.min_se
            ),
        ));
    }
    if history.max_entries == 0 {
        return Err(err("history", "max_entries", "must be at least 1".into()));
    }
    Ok(())
}
