//! The GUI's view model: what the window shows, built only from the core's
//! events and status snapshots (the same JSON `softline ctl` sees). No
//! protocol logic lives here: it mirrors, it does not decide.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

/// How long an ended call keeps its tab (so the agent sees how it ended).
pub const ENDED_TAB_LINGER: Duration = Duration::from_secs(4);

/// One account's registration as shown in the status bar.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AccountView {
    pub id: String,
    pub aor: String,
    pub state: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub cause: Option<String>,
    #[serde(default)]
    pub transport: String,
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub expires: Option<u32>,
    /// Message-waiting indication (MWI), when the server sends it.
    #[serde(default)]
    pub voicemail: Option<VoicemailView>,
}

/// Voicemail counts from MWI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct VoicemailView {
    #[serde(default)]
    pub waiting: bool,
    #[serde(default)]
    pub new: u32,
    #[serde(default)]
    pub old: u32,
}

/// The phone-wide settings the core reports (DND, forwarding).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SettingsView {
    #[serde(default)]
    pub dnd: bool,
    #[serde(default)]
    pub forward_always: Option<String>,
    #[serde(default)]
    pub forward_busy: Option<String>,
    #[serde(default)]
    pub forward_no_answer: Option<String>,
    #[serde(default)]
    pub lines: u8,
}

/// One instant message, sent or received.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageView {
    pub incoming: bool,
    /// The other party (From for incoming, the target for outgoing).
    pub party: String,
    pub text: String,
    /// Outgoing: `sending`, `sent`, `delivered`, `failed: ...`.
    pub status: String,
    /// The core's id of an outgoing message (for its status events).
    pub id: Option<u64>,
}

/// Live media figures of a call (from `status`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MediaView {
    #[serde(default)]
    pub codec: String,
    #[serde(default)]
    pub srtp: bool,
    #[serde(default)]
    pub packets_received: u64,
    #[serde(default)]
    pub packets_lost: i64,
    #[serde(default)]
    pub jitter_ms: f64,
    #[serde(default)]
    pub rtt_ms: Option<f64>,
    #[serde(default)]
    pub jitter_buffer_ms: u32,
    #[serde(default)]
    pub warning: Option<String>,
    #[serde(default)]
    pub levels: Option<LevelsView>,
}

/// Microphone and speaker meters (dBFS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct LevelsView {
    pub mic: LevelView,
    pub speaker: LevelView,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct LevelView {
    pub peak_dbfs: f32,
    pub rms_dbfs: f32,
}

/// A meter's fill (0–1) for a level: −60 dBFS and below is empty, 0 full.
pub fn meter_fill(dbfs: f32) -> f32 {
    if dbfs.is_nan() {
        return 0.0;
    }
    ((dbfs + 60.0) / 60.0).clamp(0.0, 1.0)
}

impl MediaView {
    /// Share of packets lost, in percent.
    pub fn loss_pct(&self) -> f64 {
        let lost = self.packets_lost.max(0) as f64;
        let total = self.packets_received as f64 + lost;
        if total > 0.0 {
            100.0 * lost / total
        } else {
            0.0
        }
    }
}

/// The core's quality estimate of a call (E-model).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QualityView {
    pub mos: f64,
    /// `green`, `amber` or `red`.
    pub light: String,
    #[serde(default)]
    pub delay_ms: f64,
}

/// The fields of a call event / status entry the GUI reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct CallWire {
    id: u64,
    #[serde(default)]
    account: Option<String>,
    direction: String,
    state: String,
    #[serde(default)]
    remote: String,
    #[serde(default)]
    cause: Option<String>,
    #[serde(default)]
    status_code: Option<u16>,
    #[serde(default)]
    remote_hold: bool,
    #[serde(default)]
    auto_answered: Option<String>,
    #[serde(default)]
    muted: Option<bool>,
    #[serde(default)]
    media: Option<MediaView>,
    #[serde(default)]
    audio_warning: Option<String>,
    #[serde(default)]
    line: Option<u8>,
    #[serde(default)]
    quality: Option<QualityView>,
    #[serde(default)]
    conference: Option<u32>,
    #[serde(default)]
    ignored: bool,
    #[serde(default)]
    transfer: Option<String>,
}

/// One call tab.
#[derive(Debug, Clone, PartialEq)]
pub struct CallView {
    pub id: u64,
    pub account: Option<String>,
    pub incoming: bool,
    pub state: String,
    pub remote: String,
    pub cause: Option<String>,
    pub status_code: Option<u16>,
    pub remote_hold: bool,
    pub auto_answered: Option<String>,
    pub muted: bool,
    pub recording: bool,
    pub media: Option<MediaView>,
    pub audio_warning: Option<String>,
    /// The line the core put the call on.
    pub line: Option<u8>,
    pub quality: Option<QualityView>,
    /// The local conference this call is mixed into.
    pub conference: Option<u32>,
    /// The agent silenced this ringing call (the caller still hears ringing).
    pub ignored: bool,
    /// Transfer progress, in the core's words.
    pub transfer: Option<String>,
    /// When the GUI first saw the call.
    pub seen_at: Instant,
    /// When it was first seen connected (for the call timer).
    pub connected_at: Option<Instant>,
    pub ended_at: Option<Instant>,
}

impl CallView {
    pub fn is_ringing_in(&self) -> bool {
        self.incoming && self.state == "ringing" && self.ended_at.is_none()
    }
    pub fn is_live(&self) -> bool {
        self.ended_at.is_none()
    }
    /// Talk time so far (or in all, once ended).
    pub fn talk_time(&self, now: Instant) -> Option<Duration> {
        let start = self.connected_at?;
        Some(
            self.ended_at
                .unwrap_or(now)
                .saturating_duration_since(start),
        )
    }
    /// The remote party without the `sip:` and angle-bracket noise.
    pub fn remote_short(&self) -> String {
        short_party(&self.remote)
    }
}

/// `"Alice" <sip:201@pbx>;tag=x` → `Alice (201)`; `<sip:600@pbx>` → `600`.
pub fn short_party(remote: &str) -> String {
    let (name, rest) = match remote.find('<') {
        Some(i) => (
            remote[..i].trim().trim_matches('"').trim(),
            &remote[i + 1..],
        ),
        None => ("", remote),
    };
    let uri = rest.split(['>', ';']).next().unwrap_or(rest).trim();
    let uri = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .or_else(|| uri.strip_prefix("tel:"))
        .unwrap_or(uri);
    let user = uri.split('@').next().unwrap_or(uri);
    let user = if user.is_empty() { uri } else { user };
    if name.is_empty() || name == user {
        user.to_string()
    } else {
        format!("{name} ({user})")
    }
}

/// Everything the window shows.
#[derive(Debug, Default)]
pub struct ViewModel {
    pub accounts: Vec<AccountView>,
    pub calls: Vec<CallView>,
    /// The tab in front.
    pub selected: Option<u64>,
    /// A message for the agent that is not tied to one call (a refused
    /// command, a core that would not start). Cleared by the agent.
    pub banner: Option<String>,
    /// The core's UDP/TCP listening addresses, for the status line.
    pub listen: Option<String>,
    /// The core needs a fresh status (events were dropped).
    pub stale: bool,
    pub settings: Option<SettingsView>,
    /// Instant messages of this session, oldest first.
    pub messages: Vec<MessageView>,
    /// Incoming messages not yet seen on the Messages page.
    pub unread: usize,
    /// A call ended since the History page last loaded.
    pub history_stale: bool,
    /// Meters of the running built-in audio test (Settings).
    pub audio_test_levels: Option<LevelsView>,
    /// Missed calls not yet notified (parties, shortened).
    pub missed: Vec<String>,
    /// Someone (a second launch) asked the window to come forward.
    pub focus_requested: bool,
    /// Sound-device problems by direction (`input`/`output`), in words.
    pub device_alerts: std::collections::BTreeMap<String, String>,
}

impl ViewModel {
    /// Apply one event line from the core. Unknown events are ignored (a
    /// newer core may send more than this view shows).
    pub fn apply_event(&mut self, line: &str, now: Instant) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return;
        };
        match v.get("event").and_then(Value::as_str) {
            Some("account") => {
                if let Ok(a) = serde_json::from_value::<AccountView>(v) {
                    self.upsert_account(a);
                }
            }
            Some("call") => {
                if let Ok(c) = serde_json::from_value::<CallWire>(v) {
                    self.upsert_call(c, now);
                }
            }
            Some("settings") => {
                if let Ok(st) = serde_json::from_value::<SettingsView>(v) {
                    self.settings = Some(st);
                }
            }
            Some("history") => {
                self.history_stale = true;
                if v.get("disposition").and_then(Value::as_str) == Some("missed") {
                    let remote = v.get("remote").and_then(Value::as_str).unwrap_or("");
                    self.missed.push(short_party(remote));
                }
            }
            Some("focus") => self.focus_requested = true,
            Some("audio_device") => self.apply_device(&v),
            Some("message_received") => {
                let text = v.get("text").and_then(Value::as_str).unwrap_or("");
                let kind = v.get("content_type").and_then(Value::as_str).unwrap_or("");
                let text = if text.is_empty() && !kind.is_empty() {
                    format!("(a {kind} message)")
                } else {
                    text.to_string()
                };
                self.messages.push(MessageView {
                    incoming: true,
                    party: v
                        .get("from")
                        .and_then(Value::as_str)
                        .map(short_party)
                        .unwrap_or_default(),
                    text,
                    status: "received".into(),
                    id: None,
                });
                self.unread += 1;
            }
            Some("message_status") => {
                let id = v.get("id").and_then(Value::as_u64);
                let state = v.get("state").and_then(Value::as_str).unwrap_or("");
                let status = if state == "failed" {
                    let code = v.get("code").and_then(Value::as_u64);
                    let reason = v.get("reason").and_then(Value::as_str).unwrap_or("");
                    match code {
                        Some(c) => format!("failed: {c} {reason}"),
                        None => format!("failed: {reason}"),
                    }
                } else {
                    state.to_string()
                };
                if let Some(m) = self
                    .messages
                    .iter_mut()
                    .find(|m| m.id.is_some() && m.id == id)
                {
                    m.status = status;
                }
            }
            _ => {}
        }
    }

    /// Replace what the view knows with a status snapshot.
    pub fn apply_status(&mut self, v: &Value, now: Instant) {
        if let Some(list) = v.get("accounts").and_then(Value::as_array) {
            self.accounts = list
                .iter()
                .filter_map(|a| serde_json::from_value(a.clone()).ok())
                .collect();
        }
        if let Some(list) = v.get("calls").and_then(Value::as_array) {
            let present: Vec<u64> = list
                .iter()
                .filter_map(|c| c.get("id").and_then(Value::as_u64))
                .collect();
            for c in list {
                if let Ok(c) = serde_json::from_value::<CallWire>(c.clone()) {
                    self.upsert_call(c, now);
                }
            }
            // A live call the core no longer lists has ended.
            for c in &mut self.calls {
                if c.ended_at.is_none() && !present.contains(&c.id) {
                    c.ended_at = Some(now);
                    if c.state != "ended" {
                        c.state = "ended".into();
                    }
                }
            }
        }
        self.audio_test_levels = v
            .get("audio_test")
            .and_then(|t| t.get("media"))
            .and_then(|m| m.get("levels"))
            .and_then(|l| serde_json::from_value(l.clone()).ok());
        if let Some(d) = v.get("audio_devices") {
            for dir in ["input", "output"] {
                if let Some(ev) = d.get(dir).filter(|e| !e.is_null()) {
                    self.apply_device(ev);
                }
            }
        }
        if let Some(st) = v.get("settings")
            && let Ok(st) = serde_json::from_value::<SettingsView>(st.clone())
        {
            self.settings = Some(st);
        }
        if let Some(l) = v.get("listen") {
            let udp = l.get("udp").and_then(Value::as_str);
            let tcp = l.get("tcp").and_then(Value::as_str);
            self.listen = match (udp, tcp) {
                (Some(u), Some(t)) => Some(format!("UDP {u} · TCP {t}")),
                (Some(u), None) => Some(format!("UDP {u}")),
                (None, Some(t)) => Some(format!("TCP {t}")),
                (None, None) => None,
            };
        }
        self.stale = false;
    }

    /// The admin's device ranking found no device: say so where the agent
    /// looks; clear it when one is back.
    fn apply_device(&mut self, ev: &Value) {
        let dir = ev.get("direction").and_then(Value::as_str).unwrap_or("");
        let state = ev.get("state").and_then(Value::as_str).unwrap_or("");
        if !matches!(dir, "input" | "output") {
            return;
        }
        if state == "muted" {
            let what = if dir == "input" {
                "No approved microphone is connected: you are muted until it is back"
            } else {
                "No approved headset or speaker is connected: call audio is off until it is back"
            };
            self.device_alerts.insert(dir.to_string(), what.to_string());
        } else {
            self.device_alerts.remove(dir);
        }
    }

    fn upsert_account(&mut self, a: AccountView) {
        match self.accounts.iter_mut().find(|x| x.id == a.id) {
            Some(x) => *x = a,
            None => self.accounts.push(a),
        }
    }

    fn upsert_call(&mut self, c: CallWire, now: Instant) {
        let ended = c.state == "ended";
        let connected = c.state == "connected" || c.state == "held";
        let pos = match self.calls.iter().position(|x| x.id == c.id) {
            Some(p) => p,
            None => {
                self.calls.push(CallView {
                    id: c.id,
                    account: c.account.clone(),
                    incoming: c.direction == "incoming",
                    state: String::new(),
                    remote: String::new(),
                    cause: None,
                    status_code: None,
                    remote_hold: false,
                    auto_answered: None,
                    muted: false,
                    recording: false,
                    media: None,
                    audio_warning: None,
                    line: None,
                    quality: None,
                    conference: None,
                    ignored: false,
                    transfer: None,
                    seen_at: now,
                    connected_at: None,
                    ended_at: None,
                });
                // A new call comes to the front unless the agent is talking
                // on the tab in front (then the new tab waits beside it).
                let front_busy = self
                    .selected_call()
                    .is_some_and(|s| s.is_live() && s.state == "connected");
                if !front_busy {
                    self.selected = Some(c.id);
                }
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[pos];
        if !ended && call.ended_at.is_some() {
            // A live call under an id the view last saw ended (a restarted
            // core counts from 1 again): it is a new call.
            call.ended_at = None;
            call.connected_at = None;
        }
        call.state = c.state;
        call.remote = c.remote;
        call.cause = c.cause;
        call.status_code = c.status_code;
        call.remote_hold = c.remote_hold;
        call.auto_answered = c.auto_answered;
        if let Some(m) = c.muted {
            call.muted = m;
        }
        if c.media.is_some() {
            call.media = c.media;
        }
        if c.audio_warning.is_some() {
            call.audio_warning = c.audio_warning;
        }
        if c.line.is_some() {
            call.line = c.line;
        }
        if c.quality.is_some() {
            call.quality = c.quality;
        }
        call.ignored = c.ignored;
        call.conference = c.conference;
        call.transfer = c.transfer;
        if connected && call.connected_at.is_none() {
            call.connected_at = Some(now);
        }
        if ended && call.ended_at.is_none() {
            call.ended_at = Some(now);
        }
    }

    pub fn selected_call(&self) -> Option<&CallView> {
        let id = self.selected?;
        self.calls.iter().find(|c| c.id == id)
    }

    pub fn call_mut(&mut self, id: u64) -> Option<&mut CallView> {
        self.calls.iter_mut().find(|c| c.id == id)
    }

    /// The first incoming call still ringing that the agent has not
    /// silenced (the alert shows it).
    pub fn ringing_in(&self) -> Option<&CallView> {
        self.calls.iter().find(|c| c.is_ringing_in() && !c.ignored)
    }

    /// Drop tabs of calls that ended a while ago; returns when the next one
    /// is due, so the window can schedule a repaint for it.
    pub fn prune(&mut self, now: Instant) -> Option<Instant> {
        self.calls
            .retain(|c| c.ended_at.is_none_or(|t| now < t + ENDED_TAB_LINGER));
        if self
            .selected
            .is_some_and(|id| !self.calls.iter().any(|c| c.id == id))
        {
            self.selected = self
                .calls
                .iter()
                .find(|c| c.is_live())
                .or(self.calls.first())
                .map(|c| c.id);
        }
        self.calls
            .iter()
            .filter_map(|c| c.ended_at.map(|t| t + ENDED_TAB_LINGER))
            .min()
    }

    pub fn has_live_calls(&self) -> bool {
        self.calls.iter().any(CallView::is_live)
    }
}

/// How an account's registration looks: a traffic-light colour class, a
/// headline and, on failure, the one thing to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Light {
    Green,
    Amber,
    Red,
    Grey,
}

/// Plain words for an account's state.
pub fn account_words(a: &AccountView) -> (Light, String) {
    let server = a
        .server
        .clone()
        .unwrap_or_else(|| a.aor.split('@').nth(1).unwrap_or("the server").to_string());
    let transport = a.transport.to_uppercase();
    match a.state.as_str() {
        "registered" => (Light::Green, format!("Registered over {transport}")),
        "registering" => (
            Light::Amber,
            format!("Connecting to {server} over {transport}…"),
        ),
        "unregistered" => (Light::Grey, "Not registered".into()),
        _ => {
            let advice = match a.cause.as_deref() {
                Some("tls_certificate") => format!(
                    "Server certificate not trusted ({}) — ask your admin for the CA file, or pin the certificate",
                    a.reason
                ),
                Some("credentials") => format!(
                    "Password rejected ({}) — check the user name and password",
                    a.reason
                ),
                Some("forbidden") => format!(
                    "The server refused this account ({}) — ask your admin whether it is enabled",
                    a.reason
                ),
                Some("not_found") => format!(
                    "The server does not know this extension ({}) — check the user name",
                    a.reason
                ),
                Some("timeout") => format!(
                    "No answer from {server} over {transport} — port blocked? Try another transport"
                ),
                Some("refused") => format!(
                    "{server} refused the connection over {transport} — wrong port or transport?"
                ),
                Some("dns") => format!(
                    "Server name not found ({}) — check the server address",
                    a.reason
                ),
                _ if a.reason.is_empty() => "Registration failed".to_string(),
                _ => format!("Registration failed: {}", a.reason),
            };
            (Light::Red, advice)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch() -> Instant {
        crate::runtime::test_epoch()
    }

    #[test]
    fn events_build_tabs_and_ended_tabs_linger_then_go() {
        let t0 = epoch();
        let mut vm = ViewModel::default();
        vm.apply_event(
            r#"{"event":"call","id":3,"account":"a","direction":"outgoing","state":"calling","remote":"<sip:600@pbx>","cause":null,"status_code":null,"remote_hold":false,"auto_answered":null}"#,
            t0,
        );
        assert_eq!(vm.calls.len(), 1);
        assert_eq!(vm.selected, Some(3));
        assert_eq!(vm.calls[0].remote_short(), "600");
        vm.apply_event(
            r#"{"event":"call","id":3,"direction":"outgoing","state":"connected","remote":"<sip:600@pbx>"}"#,
            t0 + Duration::from_secs(2),
        );
        assert_eq!(
            vm.calls[0].talk_time(t0 + Duration::from_secs(12)),
            Some(Duration::from_secs(10))
        );
        vm.apply_event(
            r#"{"event":"call","id":3,"direction":"outgoing","state":"ended","remote":"<sip:600@pbx>","cause":"remote hung up"}"#,
            t0 + Duration::from_secs(20),
        );
        assert!(!vm.has_live_calls());
        let due = vm.prune(t0 + Duration::from_secs(21));
        assert_eq!(due, Some(t0 + Duration::from_secs(20) + ENDED_TAB_LINGER));
        assert_eq!(vm.calls.len(), 1);
        vm.prune(t0 + Duration::from_secs(25));
        assert!(vm.calls.is_empty());
        assert_eq!(vm.selected, None);
    }

    #[test]
    fn status_snapshot_replaces_accounts_and_ends_vanished_calls() {
        let t0 = epoch();
        let mut vm = ViewModel::default();
        vm.apply_event(
            r#"{"event":"call","id":1,"direction":"incoming","state":"ringing","remote":"\"Bob\" <sip:201@pbx>;tag=9"}"#,
            t0,
        );
        assert_eq!(
            vm.ringing_in().map(|c| c.remote_short()),
            Some("Bob (201)".into())
        );
        let status = serde_json::json!({
            "accounts": [{"id":"a","aor":"sip:100@pbx","state":"failed","reason":"401 Unauthorized","cause":"credentials","transport":"udp"}],
            "calls": [],
            "listen": {"udp": "0.0.0.0:5060", "tcp": null},
        });
        vm.apply_status(&status, t0 + Duration::from_secs(1));
        assert!(vm.ringing_in().is_none());
        assert_eq!(vm.calls[0].state, "ended");
        assert_eq!(vm.listen.as_deref(), Some("UDP 0.0.0.0:5060"));
        let (light, words) = account_words(&vm.accounts[0]);
        assert_eq!(light, Light::Red);
        assert!(
            words.starts_with("Password rejected (401 Unauthorized)"),
            "{words}"
        );
    }

    #[test]
    fn malformed_or_unknown_events_change_nothing() {
        let mut vm = ViewModel::default();
        vm.apply_event("not json", epoch());
        vm.apply_event(r#"{"event":"call","id":"x"}"#, epoch());
        vm.apply_event(r#"{"event":"something_new","id":1}"#, epoch());
        assert!(vm.calls.is_empty() && vm.accounts.is_empty());
    }

    #[test]
    fn failure_causes_read_as_advice() {
        let mut a = AccountView {
            id: "a".into(),
            aor: "sip:100@pbx.example.com".into(),
            state: "failed".into(),
            reason: "timeout".into(),
            cause: Some("timeout".into()),
            transport: "tls".into(),
            server: Some("10.0.0.5:5061".into()),
            expires: None,
            voicemail: None,
        };
        assert_eq!(
            account_words(&a).1,
            "No answer from 10.0.0.5:5061 over TLS — port blocked? Try another transport"
        );
        a.cause = Some("tls_certificate".into());
        a.reason = "self-signed certificate".into();
        assert!(
            account_words(&a)
                .1
                .contains("ask your admin for the CA file")
        );
        a.state = "registered".into();
        assert_eq!(
            account_words(&a),
            (Light::Green, "Registered over TLS".into())
        );
    }

    #[test]
    fn settings_messages_and_ignored_calls() {
        let t0 = epoch();
        let mut vm = ViewModel::default();
        vm.apply_event(
            r#"{"event":"settings","dnd":true,"dnd_code":486,"lines":8}"#,
            t0,
        );
        assert!(vm.settings.as_ref().is_some_and(|s| s.dnd && s.lines == 8));
        vm.apply_event(
            r#"{"event":"message_received","from":"\"Sup\" <sip:900@pbx>","to":"sip:100@pbx","content_type":"text/plain","text":"break at 3"}"#,
            t0,
        );
        assert_eq!(vm.unread, 1);
        assert_eq!(vm.messages[0].party, "Sup (900)");
        vm.messages.push(MessageView {
            incoming: false,
            party: "900".into(),
            text: "ok".into(),
            status: "sending".into(),
            id: Some(7),
        });
        vm.apply_event(
            r#"{"event":"message_status","id":7,"state":"failed","code":404,"reason":"Not Found"}"#,
            t0,
        );
        assert_eq!(vm.messages[1].status, "failed: 404 Not Found");
        vm.apply_event(
            r#"{"event":"call","id":4,"direction":"incoming","state":"ringing","remote":"<sip:7@pbx>","line":2,"ignored":true}"#,
            t0,
        );
        assert_eq!(vm.calls[0].line, Some(2));
        assert!(vm.calls[0].is_ringing_in());
        assert!(vm.ringing_in().is_none(), "an ignored call raises no alert");
        vm.apply_event(r#"{"event":"history"}"#, t0);
        assert!(vm.history_stale);
        vm.apply_event(
            r#"{"event":"history","disposition":"missed","remote":"\"Ann\" <sip:5@pbx>"}"#,
            t0,
        );
        assert_eq!(vm.missed, ["Ann (5)"]);
        vm.apply_event(
            r#"{"event":"audio_device","direction":"input","state":"muted","device":null}"#,
            t0,
        );
        assert!(vm.device_alerts["input"].contains("you are muted"));
        vm.apply_event(
            r#"{"event":"audio_device","direction":"input","state":"using","device":"Jabra"}"#,
            t0,
        );
        assert!(vm.device_alerts.is_empty());
    }

    #[test]
    fn meters_span_sixty_db() {
        assert_eq!(meter_fill(-90.0), 0.0);
        assert_eq!(meter_fill(-30.0), 0.5);
        assert_eq!(meter_fill(3.0), 1.0);
        assert_eq!(meter_fill(f32::NAN), 0.0);
    }

    #[test]
    fn party_names_are_short() {
        assert_eq!(short_party("<sip:600@pbx>"), "600");
        assert_eq!(short_party("sip:700@10.0.0.1:5060"), "700");
        assert_eq!(short_party("\"600\" <sip:600@pbx>"), "600");
        assert_eq!(short_party("tel:+15550100"), "+15550100");
        assert_eq!(short_party(""), "");
    }
}
