//! Incoming-call policies: do not disturb, forwarding (always, on busy, on
//! no answer: 302 with the target in Contact), busy (all lines busy,
//! busy-on-busy), reject (486/603), ignore, and the ring timeout (480).
//! Each change of a setting emits [`Event::Settings`].

use std::time::{Duration, Instant};

use serde::Serialize;

use super::Phone;
use super::call::{self, CallState};
use super::history::{Disposition, HistoryEntry};
use super::types::{CallId, CommandError, Direction, Event, ForwardMode, Output, Reply};
use crate::config::{AccountConfig, Config};
use crate::sip::dialog;
use crate::sip::headers::TypedHeaders;
use crate::sip::message::Request;
use crate::sip::txn::TxnId;
use crate::sip::uri::Uri;

/// What the faces show of the phone's call handling (and `status` carries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneSettings {
    pub dnd: bool,
    /// 486 or 603.
    pub dnd_code: u16,
    pub forward_always: Option<String>,
    pub forward_busy: Option<String>,
    pub forward_no_answer: Option<String>,
    pub forward_no_answer_secs: u64,
    pub busy_on_busy: bool,
    /// 0 = off.
    pub ring_timeout_secs: u64,
    /// Number of lines.
    pub lines: u8,
    /// The line `line N` made active last.
    pub active_line: Option<u8>,
}

impl PhoneSettings {
    /// The settings `[phone]` starts with (forward targets as URIs on the
    /// first account's domain when they are numbers).
    pub(super) fn from_config(config: &Config) -> PhoneSettings {
        let p = &config.phone;
        let first = config.accounts.first();
        let fwd = |t: &Option<String>| t.as_ref().map(|t| normalized_text(t, first));
        PhoneSettings {
            dnd: p.dnd,
            dnd_code: p.dnd_code,
            forward_always: fwd(&p.forward_always),
            forward_busy: fwd(&p.forward_busy),
            forward_no_answer: fwd(&p.forward_no_answer),
            forward_no_answer_secs: p.forward_no_answer_secs.max(1),
            busy_on_busy: p.busy_on_busy,
            ring_timeout_secs: p.ring_timeout_secs,
            lines: u8::try_from(p.lines.clamp(1, 32)).unwrap_or(8),
            active_line: None,
        }
    }
}

/// The target as a URI text when it can be one, else as typed.
fn normalized_text(target: &str, account: Option<&AccountConfig>) -> String {
    call::normalize_target(target, account)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| target.trim().to_string())
}

/// What a ringing incoming call's timer asks for.
enum Due {
    Forward,
    Timeout,
}

impl Phone {
    pub(super) fn emit_settings(&mut self) {
        let s = self.settings.clone();
        self.outputs.push_back(Output::Event(Event::Settings(s)));
    }

    /// A forwarding target as a URI for a call of `account`.
    fn forward_uri(&self, target: &str, account: Option<usize>) -> Result<Uri, String> {
        let cfg = account
            .and_then(|i| self.accounts.get(i))
            .or(self.accounts.first())
            .map(|a| &a.config);
        call::normalize_target(target, cfg)
    }

    /// Before a new INVITE rings: DND, forward-always and busy answer it at
    /// once (no call is created; the history gets its entry). True when
    /// the INVITE was answered here.
    pub(super) fn screen_incoming(&mut self, now: Instant, txn: TxnId, request: &Request) -> bool {
        let account = call::account_for(request, &self.accounts);
        let s = &self.settings;
        let busy = self.lines_full()
            || (s.busy_on_busy
                && self
                    .calls
                    .iter()
                    .any(|c| matches!(c.state, CallState::Connected | CallState::Held)));
        let forward =
            |t: &Option<String>| t.as_ref().and_then(|t| self.forward_uri(t, account).ok());
        let (code, disposition, cause, contact) = if s.dnd {
            (
                s.dnd_code,
                Disposition::Rejected,
                "do not disturb".to_string(),
                None,
            )
        } else if let Some(uri) = forward(&s.forward_always) {
            (
                302,
                Disposition::Forwarded,
                format!("forwarded to {uri}"),
                Some(uri),
            )
        } else if busy {
            match forward(&s.forward_busy) {
                Some(uri) => (
                    302,
                    Disposition::Forwarded,
                    format!("busy: forwarded to {uri}"),
                    Some(uri),
                ),
                None => {
                    let why = if self.lines_full() {
                        format!("busy: all {} lines in use", s.lines)
                    } else {
                        "busy: another call is in progress (busy-on-busy)".to_string()
                    };
                    (486, Disposition::Busy, why, None)
                }
            }
        } else {
            return false;
        };
        let tag = self.rng.tag();
        let mut resp = dialog::response_to(request, code, Some(&tag));
        if let Some(uri) = &contact {
            resp.headers.push("Contact", format!("<{uri}>"));
        }
        self.txn.send_response(now, txn, resp);
        tracing::info!(code, "incoming call answered by policy: {cause}");
        let entry = HistoryEntry {
            call: None,
            direction: Direction::Incoming,
            remote: caller(request),
            account: account
                .and_then(|i| self.accounts.get(i))
                .map(|a| a.config.id.clone()),
            line: None,
            disposition,
            status_code: Some(code),
            cause: Some(cause),
            ring_secs: 0.0,
            talk_secs: 0.0,
        };
        self.outputs.push_back(Output::Event(Event::History(entry)));
        true
    }

    /// Send a final response to a ringing incoming call and end it.
    fn end_ringing(
        &mut self,
        now: Instant,
        id: CallId,
        code: u16,
        contact: Option<&Uri>,
        cause: String,
        disposition: Disposition,
    ) {
        let Some(c) = self.calls.iter().find(|c| c.id == id) else {
            return;
        };
        if let (Some(invite), Some(txn)) = (c.invite.as_ref(), c.server_txn) {
            let mut resp = dialog::response_to(invite, code, Some(&c.local_tag));
            if let Some(uri) = contact {
                resp.headers.push("Contact", format!("<{uri}>"));
            }
            self.txn.send_response(now, txn, resp);
        }
        self.set_disposition(id, disposition);
        self.end_call(id, cause, Some(code));
    }

    /// `reject`: 486 (default) or 603 to a ringing incoming call.
    pub(super) fn reject(
        &mut self,
        now: Instant,
        id: Option<CallId>,
        code: Option<u16>,
    ) -> Result<Reply, CommandError> {
        let code = code.unwrap_or(486);
        if ![486, 603].contains(&code) {
            return Err(CommandError(format!(
                "reject with {code}? Use 486 (busy) or 603 (decline)"
            )));
        }
        let pos = self.pick_call(id, is_ringing_in)?;
        let c = &self.calls[pos];
        if !is_ringing_in(c) {
            return Err(CommandError(format!("call {} is not ringing", c.id)));
        }
        let cid = c.id;
        let cause = if code == 603 { "declined" } else { "rejected" };
        self.end_ringing(now, cid, code, None, cause.into(), Disposition::Rejected);
        Ok(Reply::Done)
    }

    /// `ignore`: no local alert any more; the caller keeps ringing.
    pub(super) fn ignore(&mut self, id: Option<CallId>) -> Result<Reply, CommandError> {
        let pos = self.pick_call(id, |c| is_ringing_in(c) && !self.is_ignored(c.id))?;
        let c = &self.calls[pos];
        if !is_ringing_in(c) {
            return Err(CommandError(format!("call {} is not ringing", c.id)));
        }
        let cid = c.id;
        self.lines.info.entry(cid).or_default().ignored = true;
        self.emit_call(cid);
        Ok(Reply::Done)
    }

    fn is_ignored(&self, id: CallId) -> bool {
        self.lines.info.get(&id).is_some_and(|i| i.ignored)
    }

    pub(super) fn set_dnd(&mut self, on: bool) -> Result<Reply, CommandError> {
        self.settings.dnd = on;
        tracing::info!("do not disturb {}", if on { "on" } else { "off" });
        self.emit_settings();
        Ok(Reply::Done)
    }

    pub(super) fn set_forward(
        &mut self,
        mode: ForwardMode,
        target: Option<String>,
    ) -> Result<Reply, CommandError> {
        let target = match target.filter(|t| !t.trim().is_empty()) {
            Some(t) => Some(
                self.forward_uri(&t, None)
                    .map_err(|e| CommandError(format!("cannot forward there: {e}")))?
                    .to_string(),
            ),
            None => None,
        };
        let s = &mut self.settings;
        match mode {
            ForwardMode::Always => s.forward_always = target,
            ForwardMode::Busy => s.forward_busy = target,
            ForwardMode::NoAnswer => s.forward_no_answer = target,
            ForwardMode::Off => {
                s.forward_always = None;
                s.forward_busy = None;
                s.forward_no_answer = None;
            }
        }
        self.emit_settings();
        Ok(Reply::Done)
    }

    /// Deadlines of ringing incoming calls (forward on no answer, ring
    /// timeout), with what each asks for.
    fn ring_deadlines(&self) -> Vec<(CallId, Instant, Due)> {
        let s = &self.settings;
        let mut out = Vec::new();
        for c in self.calls.iter().filter(|c| is_ringing_in(c)) {
            let Some(created) = self.lines.info.get(&c.id).and_then(|i| i.created) else {
                continue;
            };
            let fwd = s
                .forward_no_answer
                .as_ref()
                .map(|_| created + Duration::from_secs(s.forward_no_answer_secs));
            let timeout = (s.ring_timeout_secs > 0)
                .then(|| created + Duration::from_secs(s.ring_timeout_secs));
            match (fwd, timeout) {
                (Some(f), Some(t)) if t < f => out.push((c.id, t, Due::Timeout)),
                (Some(f), _) => out.push((c.id, f, Due::Forward)),
                (None, Some(t)) => out.push((c.id, t, Due::Timeout)),
                (None, None) => {}
            }
        }
        out
    }

    /// When a ringing incoming call's timer is due next.
    pub(super) fn incoming_deadline(&self) -> Option<Instant> {
        self.ring_deadlines().into_iter().map(|(_, at, _)| at).min()
    }

    /// Forward or time out the ringing calls whose timer is due.
    pub(super) fn incoming_timers(&mut self, now: Instant) {
        for (id, at, due) in self.ring_deadlines() {
            if at > now {
                continue;
            }
            let account = self
                .calls
                .iter()
                .find(|c| c.id == id)
                .and_then(|c| c.account);
            let target = self.settings.forward_no_answer.clone();
            let uri = target.and_then(|t| match self.forward_uri(&t, account) {
                Ok(u) => Some(u),
                Err(e) => {
                    tracing::warn!("cannot forward on no answer: {e}");
                    None
                }
            });
            match (due, uri) {
                (Due::Forward, Some(uri)) => {
                    let cause = format!("no answer: forwarded to {uri}");
                    self.end_ringing(now, id, 302, Some(&uri), cause, Disposition::Forwarded);
                }
                _ => {
                    let cause = "nobody answered (ring timeout)".to_string();
                    self.end_ringing(now, id, 480, None, cause, Disposition::Missed);
                }
            }
        }
    }
}

fn is_ringing_in(c: &call::Call) -> bool {
    c.direction == Direction::Incoming && c.state == CallState::Ringing
}

/// The caller as the history shows it (display name and URI).
fn caller(request: &Request) -> String {
    request
        .headers
        .from_addr()
        .map(|f| match f.display.filter(|d| !d.is_empty()) {
            Some(d) => format!("\"{}\" <{}>", d.replace(['"', '\\'], ""), f.uri),
            None => f.uri.to_string(),
        })
        .unwrap_or_else(|_| "unknown".into())
}
