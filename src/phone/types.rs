//! What goes in and out of the phone core: commands, events, outputs and
//! the status snapshot that `softline ctl status --json` prints.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::sip::transport::{Peer, TransportError, TransportKind};

/// A call's identifier, unique for the life of the process.
pub type CallId = u64;

/// A command from a face of the phone (ctl, GUI, API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// (Re-)register one account, or all.
    Register { account: Option<String> },
    /// Unregister one account, or all.
    Unregister { account: Option<String> },
    /// Call a number or URI (from an account, or the first one, or none for
    /// a direct IP call when no account exists).
    Call {
        account: Option<String>,
        target: String,
    },
    /// Answer a ringing call (the only one when `None`).
    Answer { call: Option<CallId> },
    /// Hang up / cancel / reject a call (the only active one when `None`).
    Hangup { call: Option<CallId> },
    /// Put a connected call on hold (re-INVITE with `a=sendonly`).
    Hold { call: Option<CallId> },
    /// Take a held call off hold (re-INVITE with `a=sendrecv`).
    Resume { call: Option<CallId> },
    /// Unregister and end every call before the process exits.
    Shutdown,
    /// Make a line the active one: hold the other connected call(s) (when
    /// `hold_on_line_switch`), resume or answer the call on that line.
    Line { line: u8 },
    /// End every call (hang up, cancel, reject).
    HangupAll,
    /// Reject a ringing incoming call with 486 (default) or 603.
    Reject {
        call: Option<CallId>,
        code: Option<u16>,
    },
    /// Stop alerting locally; the caller keeps ringing until it gives up.
    Ignore { call: Option<CallId> },
    /// Do not disturb on or off.
    Dnd { on: bool },
    /// Set (or clear, with no target) a forwarding rule; `Off` clears all.
    Forward {
        mode: ForwardMode,
        target: Option<String>,
    },
    /// Blind transfer (REFER, RFC 3515): the far end of `call` is sent to
    /// `target` (number or URI).
    Transfer {
        call: Option<CallId>,
        target: String,
    },
    /// Attended transfer (REFER with Replaces, RFC 3891): the far end of
    /// `call` takes over `to_call`.
    TransferAttended {
        call: Option<CallId>,
        to_call: CallId,
    },
    /// Send an instant message (SIP MESSAGE, RFC 3428) through the account's
    /// server (the first account when `None`).
    Message {
        account: Option<String>,
        target: String,
        text: String,
    },
    /// Send DTMF digits in a call: RFC 4733 in the media or SIP INFO, as
    /// the account's `dtmf` setting and the negotiated SDP decide.
    Dtmf {
        call: Option<CallId>,
        digits: String,
    },
    /// Join two connected or held calls in a local three-way conference
    /// (a held one is resumed); each party hears the other two.
    Conference { a: CallId, b: CallId },
    /// End the local conference: `call` (default: its first) stays
    /// connected, the other is held.
    Split { call: Option<CallId> },
}

/// Which forwarding rule [`Command::Forward`] changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardMode {
    Always,
    Busy,
    NoAnswer,
    Off,
}

/// What a command returned: `"Done"` or `{"call": ID}` on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Done,
    Call {
        call: CallId,
    },
    /// A MESSAGE went out; its final status comes as `Event::MessageStatus`.
    Message {
        message: u64,
    },
    /// DTMF digits queued, and how they are sent (`rfc4733` or `info`).
    Dtmf {
        call: CallId,
        digits: String,
        method: &'static str,
    },
}

impl Serialize for Reply {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Reply::Done => s.serialize_str("Done"),
            Reply::Call { call } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("call", call)?;
                m.end()
            }
            Reply::Message { message } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("message", message)?;
                m.end()
            }
            Reply::Dtmf {
                call,
                digits,
                method,
            } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("call", call)?;
                m.serialize_entry("digits", digits)?;
                m.serialize_entry("method", method)?;
                m.end()
            }
        }
    }
}

/// An error a person can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CommandError(pub String);

/// Output of the core for the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send these bytes. `server_name` is the host name to verify for TLS (SNI).
    Transmit {
        peer: Peer,
        server_name: Option<String>,
        data: Vec<u8>,
    },
    /// Resolve a SIP server per RFC 3263; answer with [`super::Phone::handle_resolved`].
    Resolve {
        token: u64,
        host: String,
        port: Option<u16>,
        transport: TransportKind,
    },
    /// Keep these peers' NAT bindings alive (UDP keep-alive targets).
    KeepAlivePeers(Vec<Peer>),
    /// Bind an RTP/RTCP port pair for the call; answer with
    /// [`super::Phone::handle_media_opened`].
    OpenMedia {
        call: CallId,
    },
    /// Play the call's media as offer/answer settled it (first time, or
    /// changed: hold, resume, new address or codec).
    StartMedia {
        call: CallId,
        media: crate::sdp::NegotiatedMedia,
    },
    /// Stop the call's media and release its ports.
    StopMedia {
        call: CallId,
    },
    Event(Event),
    /// Send these DTMF digits as RFC 4733 events in the call's media.
    SendDtmf {
        call: CallId,
        digits: String,
    },
    /// Mix these calls' media as a local three-way conference; `a` keeps
    /// the local audio endpoints.
    Conference {
        a: CallId,
        b: CallId,
    },
    /// Give each of these calls its own audio again (the conference ended).
    Split {
        a: CallId,
        b: CallId,
    },
    /// Play a tone to the local user in this call's playout (never sent to
    /// the far end).
    PlayTone {
        call: CallId,
        tone: super::conference::Tone,
    },
}

/// One resolved target: where to send and which local IP faces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub peer: Peer,
    pub local_ip: IpAddr,
}

/// Events for the faces (one JSON object per line in `softline ctl events`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Account(AccountStatus),
    Call(CallStatus),
    /// A message from the network was malformed (answered 400 or dropped).
    BadMessage {
        peer: String,
        transport: TransportKind,
        error: String,
        answered: bool,
    },
    /// DND, forwarding, busy handling or the active line changed.
    Settings(super::incoming::PhoneSettings),
    /// A call ended: its record for the call history.
    History(super::history::HistoryEntry),
    /// The final outcome of a MESSAGE we sent (`sent` when it left,
    /// then `delivered` on a 2xx or `failed`).
    MessageStatus {
        id: u64,
        state: &'static str,
        code: Option<u16>,
        reason: String,
    },
    /// A MESSAGE arrived (answered 200). `text` is the body for
    /// `text/plain`; other types are reported by type with an empty text.
    MessageReceived {
        from: String,
        to: String,
        account: Option<String>,
        /// The call whose dialog carried it, for in-dialog messages.
        call: Option<CallId>,
        content_type: String,
        text: String,
    },
    /// A DTMF digit received (`method`: `info`).
    Dtmf {
        call: CallId,
        digit: String,
        method: &'static str,
    },
}

/// Registration state as the faces see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountStatus {
    pub id: String,
    pub aor: String,
    /// `registered`, `registering`, `unregistered` or `failed`.
    pub state: &'static str,
    /// Why, in words a person understands (empty when registered).
    pub reason: String,
    /// Machine-readable failure cause, e.g. `dns`, `refused`, `timeout`,
    /// `tls_certificate`, `credentials`, `not_found`, `status`.
    pub cause: Option<String>,
    /// Seconds the registrar granted, when registered.
    pub expires: Option<u32>,
    pub transport: TransportKind,
    /// The server we talk to, when resolved.
    pub server: Option<SocketAddr>,
    /// Voicemail summary (RFC 3842 message-summary), once the server told.
    pub voicemail: Option<Voicemail>,
}

/// Call state as the faces see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallStatus {
    pub id: CallId,
    pub account: Option<String>,
    pub direction: Direction,
    /// `calling`, `ringing`, `early`, `connected`, `held`, `ending`, `ended`.
    pub state: &'static str,
    pub remote: String,
    /// Why it ended (or a failure), in words.
    pub cause: Option<String>,
    /// Final SIP status of the call when one was received or sent.
    pub status_code: Option<u16>,
    /// The far end has put the call on hold.
    pub remote_hold: bool,
    /// Answered automatically, and why (the header or policy).
    pub auto_answered: Option<String>,
    /// The line (1..=N) the call occupies.
    pub line: Option<u8>,
    /// The user ignored the ringing call (no local alert; still ringing
    /// at the caller).
    pub ignored: bool,
    /// Transfer progress: `requested`, `trying`, `ringing`, `accepted`,
    /// `failed: 486 Busy Here` (transferor); `transferring to URI`,
    /// `transferred` (transferee).
    pub transfer: Option<String>,
    /// The local conference (its number) this call is part of.
    pub conference: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Outgoing,
    Incoming,
}

/// Whole-phone snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub accounts: Vec<AccountStatus>,
    pub calls: Vec<CallStatus>,
    /// DND, forwarding, lines.
    pub settings: super::incoming::PhoneSettings,
}

/// Local addresses the runtime listens on (for Via and Contact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocalAddrs {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
}

impl LocalAddrs {
    /// The port to advertise for a transport (TLS: our TCP listen port or 5061).
    pub fn port(&self, kind: TransportKind) -> u16 {
        match kind {
            TransportKind::Udp => self.udp.map(|a| a.port()).unwrap_or(5060),
            TransportKind::Tcp => self.tcp.or(self.udp).map(|a| a.port()).unwrap_or(5060),
            TransportKind::Tls => self.tcp.map(|a| a.port()).unwrap_or(5061),
        }
    }
}

/// Machine-readable name of a transport error.
pub fn transport_cause(e: &TransportError) -> &'static str {
    match e {
        TransportError::Dns(_) => "dns",
        TransportError::Refused => "refused",
        TransportError::Timeout => "timeout",
        TransportError::TlsCertificate(_) => "tls_certificate",
        TransportError::Tls(_) => "tls",
        TransportError::Closed => "closed",
        TransportError::Io(_) => "io",
    }
}

/// Voicemail counts from a message-summary body (RFC 3842).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Voicemail {
    /// `Messages-Waiting: yes`.
    pub waiting: bool,
    pub new: u32,
    pub old: u32,
    pub urgent_new: u32,
    pub urgent_old: u32,
}
