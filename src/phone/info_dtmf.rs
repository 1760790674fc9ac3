//! DTMF by SIP INFO (`application/dtmf-relay`, the Cisco/Asterisk form,
//! and `application/dtmf`), and the choice between INFO and RFC 4733.
//!
//! Sending: one digit per INFO transaction, the next only after the
//! previous got its final response, so the far end sees them in order.
//! Receiving: INFO in a call's dialog with either body type → 200 and an
//! [`Event::Dtmf`]; other body types → 415 (RFC 6086 §4.2.2 for legacy
//! INFO usage), outside any dialog → 481.

use std::collections::VecDeque;
use std::time::Instant;

use crate::rtp::char_to_event;
use crate::sip::dialog;
use crate::sip::message::{Method, Request, Response, reason_phrase};
use crate::sip::txn::TxnId;

use super::call::{self, CallState};
use super::messaging::media_type;
use super::types::{CallId, CommandError, Event, Output, Reply};
use super::{Owner, Phone};

/// Tone length announced in each INFO (ms).
pub const INFO_DURATION_MS: u32 = 160;

/// Digits waiting to go out by INFO in one call.
#[derive(Default)]
pub(super) struct InfoQueue {
    pending: VecDeque<char>,
    in_flight: bool,
}

/// How a call sends DTMF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfMethod {
    Rfc4733,
    Info,
}

impl DtmfMethod {
    pub fn name(self) -> &'static str {
        match self {
            DtmfMethod::Rfc4733 => "rfc4733",
            DtmfMethod::Info => "info",
        }
    }
}

/// The method for a call: the account's `dtmf` setting, and for `auto`
/// RFC 4733 when the SDP negotiated telephone-event, else INFO.
pub fn choose(setting: &str, telephone_event: bool) -> DtmfMethod {
    match setting {
        "info" => DtmfMethod::Info,
        "rfc4733" => DtmfMethod::Rfc4733,
        _ if telephone_event => DtmfMethod::Rfc4733,
        _ => DtmfMethod::Info,
    }
}

/// The digit in an INFO body of media type `ctype`: `Signal=5` lines for
/// `application/dtmf-relay`, the bare digit for `application/dtmf`;
/// `10`/`11` stand for `*`/`#` (and `12`–`15` for A–D) as some PBXs send.
pub fn parse_info_digit(ctype: &str, body: &[u8]) -> Result<char, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    let value = match ctype {
        "application/dtmf-relay" => text
            .lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("signal"))
            .map(|(_, v)| v.trim())
            .ok_or("no Signal= line")?,
        _ => text.trim(),
    };
    let digit = match value {
        "10" => '*',
        "11" => '#',
        "12" => 'A',
        "13" => 'B',
        "14" => 'C',
        "15" => 'D',
        v => {
            let mut chars = v.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if char_to_event(c).is_some() => c.to_ascii_uppercase(),
                _ => {
                    let shown: String = v.chars().filter(|c| !c.is_control()).take(20).collect();
                    return Err(format!("`{shown}` is not a DTMF digit"));
                }
            }
        }
    };
    Ok(digit)
}

impl Phone {
    /// `Command::Dtmf`: send the digits by the call's method.
    pub(super) fn dtmf_command(
        &mut self,
        now: Instant,
        call: Option<CallId>,
        digits: &str,
    ) -> Result<Reply, CommandError> {
        let digits: String = digits.chars().filter(|c| !c.is_whitespace()).collect();
        if let Some(bad) = digits.chars().find(|c| char_to_event(*c).is_none()) {
            return Err(CommandError(format!(
                "`{bad}` is not a DTMF digit (0-9 * # A-D)"
            )));
        }
        if digits.is_empty() {
            return Err(CommandError("no digits to send".into()));
        }
        let pos = self.pick_call(call, |c| {
            matches!(c.state, CallState::Connected | CallState::Early) && !c.is_retiring()
        })?;
        let c = &self.calls[pos];
        let id = c.id;
        if !matches!(c.state, CallState::Connected | CallState::Early) {
            return Err(CommandError(format!("call {id} is not connected")));
        }
        if c.is_retiring() {
            return Err(CommandError(format!(
                "call {id} was transferred and is ending: DTMF not sent"
            )));
        }
        let setting = c
            .account
            .and_then(|i| self.accounts.get(i))
            .map(|a| a.config.dtmf.clone())
            .unwrap_or_else(|| "auto".into());
        let negotiated = c.media.negotiated.as_ref();
        let te = negotiated.is_some_and(|n| n.telephone_event.is_some());
        let method = choose(&setting, te);
        match method {
            DtmfMethod::Rfc4733 => {
                if !te {
                    return Err(CommandError(format!(
                        "call {id}: the far end did not accept telephone-event (RFC 4733), DTMF cannot be sent in the media"
                    )));
                }
                if negotiated.is_some_and(|n| !n.direction.sends()) {
                    return Err(CommandError(format!(
                        "call {id} is on hold: DTMF would not be sent"
                    )));
                }
                self.outputs.push_back(Output::SendDtmf {
                    call: id,
                    digits: digits.clone(),
                });
            }
            DtmfMethod::Info => {
                if c.dialog.is_none() {
                    return Err(CommandError(format!(
                        "call {id} is not answered yet: DTMF by INFO needs the dialog"
                    )));
                }
                let q = self.msg.dtmf.entry(id).or_default();
                q.pending.extend(digits.chars());
                self.info_send_next(now, id);
            }
        }
        Ok(Reply::Dtmf {
            call: id,
            digits,
            method: method.name(),
        })
    }

    /// Send the call's next queued digit, unless one is in flight.
    fn info_send_next(&mut self, now: Instant, id: CallId) {
        let Some(q) = self.msg.dtmf.get_mut(&id) else {
            return;
        };
        if q.in_flight {
            return;
        }
        let Some(pos) = self
            .calls
            .iter()
            .position(|c| c.id == id && matches!(c.state, CallState::Connected | CallState::Held))
        else {
            self.msg.dtmf.remove(&id);
            return;
        };
        let Some(digit) = q.pending.pop_front() else {
            self.msg.dtmf.remove(&id);
            return;
        };
        let contact = self.contact_for_call(pos);
        let via = self.call_via(pos);
        let call = &mut self.calls[pos];
        let Some(dialog) = call.dialog.as_mut() else {
            self.msg.dtmf.remove(&id);
            return;
        };
        let mut req = dialog.request(Method::Info, &contact, None);
        req.headers.push_front("Via", via);
        dialog::set_body(
            &mut req.headers,
            &mut req.body,
            "application/dtmf-relay",
            format!("Signal={digit}\r\nDuration={INFO_DURATION_MS}\r\n").into_bytes(),
        );
        let Some(peer) = call::dialog_peer(dialog, call.peer) else {
            self.msg.dtmf.remove(&id);
            return;
        };
        let t = self.txn.send_request(now, req, peer);
        self.owners.insert(t, Owner::Info(id));
        if let Some(q) = self.msg.dtmf.get_mut(&id) {
            q.in_flight = true;
        }
    }

    pub(super) fn on_info_response(&mut self, now: Instant, id: CallId, response: Response) {
        if response.code < 200 {
            return;
        }
        if let Some(q) = self.msg.dtmf.get_mut(&id) {
            q.in_flight = false;
            if matches!(response.code, 481 | 408) {
                tracing::info!(
                    call = id,
                    "INFO DTMF refused ({}): digits dropped",
                    response.code
                );
                q.pending.clear();
            } else if response.code >= 300 {
                tracing::info!(
                    call = id,
                    "INFO DTMF answered {} {}",
                    response.code,
                    response.reason
                );
            }
        }
        self.info_send_next(now, id);
    }

    pub(super) fn on_info_failure(&mut self, id: CallId) {
        tracing::info!(call = id, "no answer to INFO DTMF: digits dropped");
        self.msg.dtmf.remove(&id);
    }

    /// An incoming INFO.
    pub(super) fn on_info(&mut self, now: Instant, id: TxnId, request: Request) {
        // A call on its way out (hung up, transferred, replaced) takes no
        // more digits: its dialog is as good as gone.
        let Some(call) = self
            .calls
            .iter()
            .find(|c| c.dialog_matches(&request) && !c.is_retiring())
            .map(|c| c.id)
        else {
            self.respond(now, id, &request, 481, &[]);
            return;
        };
        if request.body.is_empty() {
            // An empty INFO (a keep-alive some servers send).
            self.respond(now, id, &request, 200, &[]);
            return;
        }
        let ctype = media_type(&request.headers).unwrap_or_default();
        if ctype != "application/dtmf-relay" && ctype != "application/dtmf" {
            self.respond(
                now,
                id,
                &request,
                415,
                &[(
                    "Accept",
                    "application/dtmf-relay, application/dtmf".to_string(),
                )],
            );
            return;
        }
        match parse_info_digit(&ctype, &request.body) {
            Ok(digit) => {
                self.respond(now, id, &request, 200, &[]);
                self.outputs.push_back(Output::Event(Event::Dtmf {
                    call,
                    digit: digit.to_string(),
                    method: "info",
                }));
            }
            Err(why) => {
                let mut resp = dialog::response_to(&request, 400, None);
                resp.reason = format!("{} ({why})", reason_phrase(400));
                self.txn.send_response(now, id, resp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_prefers_rfc4733_when_negotiated() {
        assert_eq!(choose("auto", true), DtmfMethod::Rfc4733);
        assert_eq!(choose("auto", false), DtmfMethod::Info);
        assert_eq!(choose("info", true), DtmfMethod::Info);
        assert_eq!(choose("rfc4733", false), DtmfMethod::Rfc4733);
    }

    #[test]
    fn info_bodies() {
        let relay = "application/dtmf-relay";
        assert_eq!(
            parse_info_digit(relay, b"Signal=5\r\nDuration=160\r\n"),
            Ok('5')
        );
        assert_eq!(parse_info_digit(relay, b"signal= #\nDuration=250"), Ok('#'));
        assert_eq!(parse_info_digit(relay, b"Signal=10\r\n"), Ok('*'));
        assert_eq!(parse_info_digit(relay, b"Signal=11\r\n"), Ok('#'));
        assert_eq!(parse_info_digit(relay, b"Signal=d\r\n"), Ok('D'));
        assert_eq!(parse_info_digit("application/dtmf", b"7\r\n"), Ok('7'));
        for bad in [
            &b"Duration=160"[..],
            b"Signal=",
            b"Signal=55",
            b"Signal=x",
            b"\xff",
            b"",
        ] {
            assert!(parse_info_digit(relay, bad).is_err(), "{bad:?}");
        }
        assert!(parse_info_digit("application/dtmf", b"12345").is_err());
    }
}
