//! The local control channel: one JSON object per line over a local socket
//! (a Unix socket under the XDG runtime dir, a named pipe on Windows, both
//! through `interprocess`). `softline ctl` is its client; scripts and CRMs
//! can speak it directly. The protocol is documented in `docs/ctl.md`.

pub mod client;
pub mod server;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A request on the control channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Accounts, calls and listening addresses.
    Status,
    Register {
        account: Option<String>,
    },
    Unregister {
        account: Option<String>,
    },
    Call {
        target: String,
        account: Option<String>,
        /// Make this line active first (holding the others), then call on it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<u8>,
    },
    Answer {
        call: Option<u64>,
    },
    Hangup {
        call: Option<u64>,
    },
    /// Send DTMF digits in a call (RFC 4733 or SIP INFO, per the account's
    /// `dtmf` setting).
    Dtmf {
        call: Option<u64>,
        digits: String,
    },
    /// Mute or unmute the microphone for a call (local, no signalling).
    Mute {
        call: Option<u64>,
        on: bool,
    },
    /// Microphone and/or speaker gain in dB (−20 … +20) for the running
    /// calls and the next ones, until the phone restarts (the lasting
    /// values are `[audio] input_gain_db` / `output_gain_db`). Neither:
    /// report the current gains. Refused for a key the admin locked.
    Gain {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_db: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output_db: Option<f32>,
    },
    /// Put a connected call on hold.
    Hold {
        call: Option<u64>,
    },
    /// Take a held call off hold.
    Resume {
        call: Option<u64>,
    },
    /// Switch the SIP trace file on or off.
    Trace {
        on: bool,
    },
    /// Sound devices present (and which the admin's ranking chose).
    Devices,
    /// The built-in audio test: the microphone looped back through the
    /// whole media path (no server needed).
    TestAudio {
        seconds: Option<u32>,
        codec: Option<String>,
        /// Also send a reference tone (440 Hz, −20 dBFS, half a second on,
        /// half off) through the path with the microphone, so the
        /// speaker and the codec can be judged on a known signal.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        tone: bool,
    },
    /// Record a call (both directions, stereo WAV) or stop recording.
    Record {
        call: Option<u64>,
        on: bool,
        /// File to write (default: under the recordings directory).
        file: Option<PathBuf>,
    },
    /// Stream events: the reply is followed by one event object per line.
    Events,
    /// Unregister, end calls and exit.
    Shutdown,
    /// Make a line active (holds the other calls, resumes/answers its call).
    Line {
        line: u8,
    },
    /// End every call.
    HangupAll,
    /// Reject a ringing call with 486 (default) or 603.
    Reject {
        call: Option<u64>,
        code: Option<u16>,
    },
    /// Stop alerting for a ringing call (the caller keeps ringing).
    Ignore {
        call: Option<u64>,
    },
    /// Do not disturb on or off.
    Dnd {
        on: bool,
    },
    /// Set or clear call forwarding (`mode`: always, busy, no-answer, off).
    Forward {
        mode: crate::phone::ForwardMode,
        target: Option<String>,
    },
    /// The call history, newest first.
    History {
        limit: Option<usize>,
    },
    /// Blind transfer of a call to a number or URI (REFER).
    Transfer {
        call: Option<u64>,
        target: String,
    },
    /// Attended transfer: the far end of `call` takes over `to_call`
    /// (REFER with Replaces).
    TransferAttended {
        call: Option<u64>,
        to_call: u64,
    },
    /// Send an instant message (SIP MESSAGE).
    Message {
        target: String,
        text: String,
        account: Option<String>,
    },
    /// Bring the phone's window to the front (a second launch sends this).
    Focus,
    /// Join two calls in a local three-way conference.
    Conference {
        a: u64,
        b: u64,
    },
    /// End the local conference; `call` stays connected, the other is held.
    Split {
        call: Option<u64>,
    },
}

/// The reply to a request: `{"ok":true,"result":...}` or
/// `{"ok":false,"error":"..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    pub fn ok(result: serde_json::Value) -> Reply {
        Reply {
            ok: true,
            result: Some(result),
            error: None,
        }
    }
    pub fn err(error: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            result: None,
            error: Some(error.into()),
        }
    }
}

/// Where the control socket lives when `--ctl-socket` is not given: the
/// XDG runtime dir (private to the user), else a private per-user folder in
/// the temp dir (never one path shared by every user of the machine). On
/// Windows, a pipe name with the user's name in it.
pub fn default_socket_path() -> PathBuf {
    if cfg!(windows) {
        let user = std::env::var("USERNAME").unwrap_or_default();
        let user: String = user
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        return PathBuf::from(format!("softline-ctl-{user}"));
    }
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            directories::ProjectDirs::from("", "", "softline")
                .and_then(|d| d.runtime_dir().map(|p| p.to_path_buf()))
        })
        .unwrap_or_else(private_temp_dir);
    dir.join("softline-ctl.sock")
}

/// `$TMPDIR/softline-UID`, created readable by its user only (the uid is
/// the owner of `/proc/self`, else of `$HOME`).
fn private_temp_dir() -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let uid = std::fs::metadata("/proc/self")
            .or_else(|_| std::fs::metadata(std::env::var_os("HOME").unwrap_or_default()))
            .map(|m| m.uid().to_string())
            .unwrap_or_else(|_| "user".into());
        let dir = std::env::temp_dir().join(format!("softline-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        dir
    }
    #[cfg(not(unix))]
    {
        std::env::temp_dir()
    }
}

/// The platform name of a control socket path (a file path on Unix, a
/// namespaced pipe name on Windows).
pub fn socket_name(
    path: &std::path::Path,
) -> std::io::Result<interprocess::local_socket::Name<'static>> {
    use interprocess::local_socket::prelude::*;
    #[cfg(windows)]
    {
        let name = path.to_string_lossy().into_owned();
        name.to_ns_name::<interprocess::local_socket::GenericNamespaced>()
    }
    #[cfg(not(windows))]
    {
        path.to_path_buf()
            .to_fs_name::<interprocess::local_socket::GenericFilePath>()
    }
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn without_a_runtime_dir_the_socket_is_in_a_private_per_user_folder() {
        use std::os::unix::fs::PermissionsExt;
        let dir = super::private_temp_dir();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("softline-") && name.len() > "softline-".len(),
            "{name}"
        );
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode & 0o077,
            0,
            "only its user may open {}: {mode:o}",
            dir.display()
        );
    }
}
