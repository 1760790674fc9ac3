//! Call transfer in all three roles (RFC 3515 REFER, RFC 3891 Replaces,
//! RFC 5589 flows):
//!
//! - **transferor**: `Command::Transfer` (blind) and
//!   `Command::TransferAttended` send a REFER in the call's dialog, follow
//!   the implicit subscription's NOTIFYs (`message/sipfrag` bodies) and hang
//!   up once the far end reports a 2xx;
//! - **transferee**: an in-dialog REFER is accepted (202, or 603 by
//!   policy), a new call goes to the Refer-To URI (with its Replaces and the
//!   REFER's Referred-By), and each status of that call is NOTIFYed back;
//! - **target**: an INVITE whose Replaces names one of our dialogs is
//!   answered at once and the replaced call is ended.

use std::time::{Duration, Instant};

use crate::sip::dialog;
use crate::sip::headers::TypedHeaders;
use crate::sip::message::{Method, Request, Response, reason_phrase};
use crate::sip::transport::Peer;
use crate::sip::txn::TxnId;
use crate::sip::uri::{Scheme, Uri};

use super::call::{self, Call, CallState};
use super::types::{CallId, CommandError, Direction, Reply};
use super::{Owner, Phone};

/// How long the transferee waits for the transferor's BYE after the new
/// call was answered before it ends the original call itself.
const TRANSFEREE_BYE_AFTER: Duration = Duration::from_secs(2);

/// A call's part in a transfer (every role; all empty for a plain call).
#[derive(Debug, Clone, Default)]
pub struct CallTransfer {
    /// Progress as the faces see it: `requested`, `trying`, `ringing`,
    /// `accepted`, `failed: 486 Busy Here`, ...
    pub status: Option<String>,
    /// Transferor: our REFER's implicit subscription is alive on this call.
    pub refer_active: bool,
    /// Transferor (attended): the consultation call the transfer replaces.
    pub consult: Option<CallId>,
    /// The cause this call takes when it ends (set once a transfer makes
    /// the call obsolete: `transferred`, `replaced`).
    pub end_cause: Option<String>,
    /// Transferee (new call): the call whose dialog gets our NOTIFYs.
    pub notify_to: Option<CallId>,
    /// Transferee (new call): the last status code NOTIFYed.
    pub notified: Option<u16>,
    /// Transferee (original call): the call placed for the REFER.
    pub child: Option<CallId>,
    /// Transferee (original call): end it at this instant unless the
    /// transferor has hung up by then.
    pub bye_at: Option<Instant>,
    /// Extra headers of the INVITE (Replaces, Referred-By).
    pub invite_headers: Vec<(String, String)>,
    /// Target: once this call is answered it replaces that one (RFC 3891).
    pub replaces: Option<CallId>,
}

/// True for a NOTIFY of the `refer` event package (RFC 3515 §2.4.4).
pub fn is_refer_event(request: &Request) -> bool {
    request.method == Method::Notify
        && request.headers.get("Event").is_some_and(|e| {
            e.split(';')
                .next()
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("refer"))
        })
}

/// The status line of a `message/sipfrag` body: `SIP/2.0 180 Ringing`.
pub fn parse_sipfrag(body: &[u8]) -> Result<(u16, String), String> {
    let text = std::str::from_utf8(body).map_err(|_| "sipfrag is not UTF-8".to_string())?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| "empty sipfrag".to_string())?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(format!("sipfrag is not a status line: `{}`", clip(line)));
    }
    let code: u16 = parts
        .next()
        .filter(|c| c.len() == 3)
        .and_then(|c| c.parse().ok())
        .filter(|c| (100..700).contains(c))
        .ok_or_else(|| format!("sipfrag has no status code: `{}`", clip(line)))?;
    let reason = parts.next().unwrap_or_default().trim();
    let reason = if reason.is_empty() {
        reason_phrase(code).to_string()
    } else {
        clip(reason)
    };
    Ok((code, reason))
}

/// At most 80 printable characters of untrusted text.
fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// The one Refer-To URI of a REFER (RFC 3515 §2.1), or why it is unusable.
pub fn refer_to(request: &Request) -> Result<Uri, String> {
    let mut values = request.headers.get_all("Refer-To");
    let value = values.next().ok_or("no Refer-To")?;
    if values.next().is_some() || split_outside_brackets(value) {
        return Err("more than one Refer-To".into());
    }
    let addr = crate::sip::parse::parse_name_addr(value)
        .map_err(|e| format!("Refer-To unparsable: {e}"))?;
    if addr.uri.scheme == Scheme::Tel && addr.uri.user.as_deref().is_none_or(str::is_empty) {
        return Err("Refer-To has no number".into());
    }
    if let Some(Some(m)) = addr.uri.param("method")
        && !m.eq_ignore_ascii_case("INVITE")
    {
        return Err(format!("Refer-To method {} is not supported", clip(m)));
    }
    Ok(addr.uri)
}

/// True when a header value holds a comma outside `<...>` and quotes (a list).
fn split_outside_brackets(v: &str) -> bool {
    let (mut angle, mut quote) = (false, false);
    for c in v.chars() {
        match c {
            '"' if !angle => quote = !quote,
            '<' if !quote => angle = true,
            '>' if !quote => angle = false,
            ',' if !angle && !quote => return true,
            _ => {}
        }
    }
    false
}

/// A parsed Replaces header (RFC 3891 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    pub call_id: String,
    pub to_tag: String,
    pub from_tag: String,
    pub early_only: bool,
}

impl Replaces {
    pub fn parse(v: &str) -> Result<Replaces, String> {
        let mut parts = v.split(';');
        let call_id = parts.next().unwrap_or_default().trim().to_string();
        if call_id.is_empty() {
            return Err("Replaces has no Call-ID".into());
        }
        let (mut to_tag, mut from_tag, mut early_only) = (None, None, false);
        for p in parts {
            let (n, val) = match p.split_once('=') {
                Some((n, val)) => (n.trim(), Some(val.trim())),
                None => (p.trim(), None),
            };
            if n.eq_ignore_ascii_case("to-tag") {
                to_tag = val.map(str::to_string);
            } else if n.eq_ignore_ascii_case("from-tag") {
                from_tag = val.map(str::to_string);
            } else if n.eq_ignore_ascii_case("early-only") {
                early_only = true;
            }
        }
        match (to_tag, from_tag) {
            (Some(to_tag), Some(from_tag)) if !to_tag.is_empty() && !from_tag.is_empty() => {
                Ok(Replaces {
                    call_id,
                    to_tag,
                    from_tag,
                    early_only,
                })
            }
            _ => Err("Replaces lacks to-tag or from-tag".into()),
        }
    }
}

/// The transferee's view of the new call: the status to NOTIFY, if any.
fn progress(c: &Call) -> Option<(u16, String)> {
    match c.state {
        CallState::Resolving | CallState::Calling | CallState::Ending => None,
        CallState::Ringing => Some((180, reason_phrase(180).into())),
        CallState::Early => Some((183, reason_phrase(183).into())),
        CallState::Connected | CallState::Held => Some((200, reason_phrase(200).into())),
        CallState::Ended => {
            let code = c.status_code.filter(|c| *c >= 300).unwrap_or(503);
            Some((code, reason_phrase(code).into()))
        }
    }
}

impl Phone {
    fn call_pos(&self, id: CallId) -> Option<usize> {
        self.calls.iter().position(|c| c.id == id)
    }

    fn set_transfer_status(&mut self, id: CallId, status: String) {
        if let Some(pos) = self.call_pos(id) {
            self.calls[pos].transfer.status = Some(status);
        }
        self.emit_call(id);
    }

    /// The subscription of our REFER on `id` ended without success: the
    /// consultation call (attended) is no longer expected to go.
    fn transfer_failed(&mut self, id: CallId, why: String) {
        let Some(pos) = self.call_pos(id) else {
            return;
        };
        let t = &mut self.calls[pos].transfer;
        t.refer_active = false;
        if let Some(consult) = t.consult.take()
            && let Some(cpos) = self.call_pos(consult)
        {
            self.calls[cpos].transfer.end_cause = None;
        }
        tracing::info!(call = id, "transfer failed: {why}");
        self.set_transfer_status(id, format!("failed: {why}"));
    }

    // ----- transferor ----------------------------------------------------

    /// `Command::Transfer`: blind transfer of `call` to `target` (a number
    /// is taken at the call's account domain).
    pub(super) fn transfer_blind(
        &mut self,
        now: Instant,
        call: Option<CallId>,
        target: &str,
    ) -> Result<Reply, CommandError> {
        let pos = self.transferable(call, None)?;
        let cfg = self.calls[pos]
            .account
            .and_then(|i| self.accounts.get(i))
            .map(|a| a.config.clone());
        let uri = call::normalize_target(target, cfg.as_ref()).map_err(CommandError)?;
        let id = self.calls[pos].id;
        self.send_refer(now, pos, uri, None)?;
        Ok(Reply::Call { call: id })
    }

    /// `Command::TransferAttended`: hand `call`'s party over to `to_call`'s
    /// party (REFER with Replaces naming `to_call`'s dialog, RFC 3891).
    pub(super) fn transfer_attended(
        &mut self,
        now: Instant,
        call: Option<CallId>,
        to_call: CallId,
    ) -> Result<Reply, CommandError> {
        let to_pos = self
            .call_pos(to_call)
            .ok_or_else(|| CommandError(format!("no call {to_call}")))?;
        if !matches!(
            self.calls[to_pos].state,
            CallState::Connected | CallState::Held
        ) {
            return Err(CommandError(format!("call {to_call} is not connected")));
        }
        let Some(d) = self.calls[to_pos].dialog.as_ref() else {
            return Err(CommandError(format!("call {to_call} has no dialog")));
        };
        let Some(remote_tag) = d.remote_tag.clone() else {
            return Err(CommandError(format!(
                "call {to_call}: the far end gave no tag"
            )));
        };
        // Replaces from the target's side: its tag is the to-tag, ours
        // the from-tag (RFC 3891 §3).
        let mut uri = d.remote_target.clone();
        uri.headers = vec![(
            "Replaces".into(),
            format!(
                "{};to-tag={};from-tag={}",
                d.call_id, remote_tag, d.local_tag
            ),
        )];
        let pos = self.transferable(call, Some(to_call))?;
        let id = self.calls[pos].id;
        self.send_refer(now, pos, uri, Some(to_call))?;
        Ok(Reply::Call { call: id })
    }

    /// The call a transfer command acts on: `id`, or the only connected or
    /// held call other than `except`.
    fn transferable(
        &self,
        id: Option<CallId>,
        except: Option<CallId>,
    ) -> Result<usize, CommandError> {
        let pos = self.pick_call(id, |c| {
            matches!(c.state, CallState::Connected | CallState::Held) && Some(c.id) != except
        })?;
        let c = &self.calls[pos];
        if Some(c.id) == except {
            return Err(CommandError(format!(
                "call {} cannot be transferred to itself",
                c.id
            )));
        }
        if !matches!(c.state, CallState::Connected | CallState::Held) {
            return Err(CommandError(format!("call {} is not connected", c.id)));
        }
        if c.transfer.refer_active {
            return Err(CommandError(format!(
                "call {}: a transfer is already in progress",
                c.id
            )));
        }
        Ok(pos)
    }

    fn send_refer(
        &mut self,
        now: Instant,
        pos: usize,
        refer_to: Uri,
        consult: Option<CallId>,
    ) -> Result<(), CommandError> {
        let contact = self.contact_for_call(pos);
        let via = self.call_via(pos);
        let call = &mut self.calls[pos];
        let id = call.id;
        let Some(d) = call.dialog.as_mut() else {
            return Err(CommandError("the call has no dialog yet".into()));
        };
        let Some(peer) = call::dialog_peer(d, call.peer) else {
            return Err(CommandError("no route to the remote party".into()));
        };
        // Referred-By: our own address in the dialog (RFC 3892).
        let me = crate::sip::parse::parse_name_addr(&d.local_header)
            .map(|a| a.uri.to_string())
            .ok();
        let mut req = d.request(Method::Refer, &contact, None);
        req.headers.push_front("Via", via);
        req.headers.push("Refer-To", format!("<{refer_to}>"));
        if let Some(me) = me {
            req.headers.push("Referred-By", format!("<{me}>"));
        }
        call.transfer.refer_active = true;
        call.transfer.consult = consult;
        call.transfer.status = Some("requested".into());
        if let Some(c) = consult
            && let Some(cpos) = self.call_pos(c)
        {
            self.calls[cpos].transfer.end_cause = Some("transferred".into());
        }
        tracing::info!(call = id, "transfer: REFER to {refer_to}");
        let t = self.txn.send_request(now, req, peer);
        self.owners.insert(t, Owner::Refer(id));
        self.emit_call(id);
        Ok(())
    }

    /// A response to our REFER.
    pub(super) fn on_refer_response(&mut self, id: CallId, response: &Response) {
        let code = response.code;
        let Some(pos) = self.call_pos(id) else {
            return;
        };
        if code < 200 || !self.calls[pos].transfer.refer_active {
            return;
        }
        if code < 300 {
            // Accepted: the far end calls the target; NOTIFYs follow (one
            // may already have come).
            if self.calls[pos].transfer.status.as_deref() == Some("requested") {
                self.set_transfer_status(id, "trying".into());
            }
        } else {
            self.transfer_failed(id, format!("{code} {}", clip(&response.reason)));
        }
    }

    /// Our REFER got no answer at all.
    pub(super) fn on_refer_timeout(&mut self, id: CallId) {
        if self
            .call_pos(id)
            .is_some_and(|p| self.calls[p].transfer.refer_active)
        {
            self.transfer_failed(id, "no answer to REFER".into());
        }
    }

    /// An in-dialog NOTIFY of the refer package: the transfer's progress.
    pub(super) fn on_refer_notify(&mut self, now: Instant, txn: TxnId, request: Request) {
        let Some(pos) = self.calls.iter().position(|c| c.dialog_matches(&request)) else {
            self.respond(now, txn, &request, 481, &[]);
            return;
        };
        let id = self.calls[pos].id;
        if !self.calls[pos].transfer.refer_active {
            // No REFER of ours is waiting for news (RFC 6665 §4.1.3).
            self.respond(now, txn, &request, 481, &[]);
            return;
        }
        let sipfrag = request
            .headers
            .get("Content-Type")
            .is_none_or(|t| t.trim().to_ascii_lowercase().starts_with("message/sipfrag"));
        let parsed = if sipfrag {
            parse_sipfrag(&request.body)
        } else {
            Err("body is not message/sipfrag".into())
        };
        let (code, reason) = match parsed {
            Ok(p) => p,
            Err(why) => {
                let mut resp = dialog::response_to(&request, 400, None);
                resp.reason = format!("Bad Request ({why})");
                self.txn.send_response(now, txn, resp);
                return;
            }
        };
        self.respond(now, txn, &request, 200, &[]);
        let terminated = request
            .headers
            .get("Subscription-State")
            .is_some_and(|s| s.trim().to_ascii_lowercase().starts_with("terminated"));
        tracing::info!(call = id, code, "transfer progress: {code} {reason}");
        match code {
            100 => self.set_transfer_status(id, "trying".into()),
            101..=199 => self.set_transfer_status(id, "ringing".into()),
            200..=299 => {
                self.calls[pos].transfer.refer_active = false;
                self.calls[pos].transfer.consult = None;
                self.calls[pos].transfer.end_cause = Some("transferred".into());
                self.set_transfer_status(id, "accepted".into());
                if matches!(
                    self.calls[pos].state,
                    CallState::Connected | CallState::Held
                ) && let Err(e) = self.send_bye(now, id)
                {
                    tracing::info!(call = id, "cannot hang up after the transfer: {e}");
                }
                return;
            }
            _ => {
                self.transfer_failed(id, format!("{code} {reason}"));
                return;
            }
        }
        if terminated {
            self.transfer_failed(id, "the far end ended the transfer without a result".into());
        }
    }

    // ----- transferee ----------------------------------------------------

    /// An incoming REFER: accept it in a dialog (202, then NOTIFYs) and
    /// call the Refer-To target.
    pub(super) fn on_refer(&mut self, now: Instant, txn: TxnId, request: Request, _source: Peer) {
        let Some(pos) = self.calls.iter().position(|c| c.dialog_matches(&request)) else {
            self.respond(now, txn, &request, 481, &[]);
            return;
        };
        let x = self.calls[pos].id;
        if let Some(seq) = request.headers.cseq().ok().map(|c| c.seq)
            && let Some(d) = self.calls[pos].dialog.as_mut()
        {
            d.remote_seq = Some(d.remote_seq.map_or(seq, |s| s.max(seq)));
        }
        if !self.accept_refer {
            tracing::info!(call = x, "REFER declined by policy ([phone] accept_refer)");
            self.respond(now, txn, &request, 603, &[]);
            return;
        }
        if !matches!(
            self.calls[pos].state,
            CallState::Connected | CallState::Held
        ) {
            self.respond(now, txn, &request, 481, &[]);
            return;
        }
        if self.calls[pos]
            .transfer
            .child
            .and_then(|c| self.call_pos(c))
            .is_some_and(|p| !self.calls[p].is_ended())
        {
            self.respond(now, txn, &request, 491, &[]);
            return;
        }
        let uri = match refer_to(&request) {
            Ok(u) => u,
            Err(why) => {
                tracing::info!(call = x, "REFER refused: {why}");
                let mut resp = dialog::response_to(&request, 400, None);
                resp.reason = format!("Bad Request ({why})");
                self.txn.send_response(now, txn, resp);
                return;
            }
        };
        let mut invite_headers: Vec<(String, String)> = uri
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Replaces"))
            .map(|(_, v)| ("Replaces".to_string(), v.clone()))
            .take(1)
            .collect();
        if let Some(rb) = request.headers.get("Referred-By") {
            invite_headers.push(("Referred-By".into(), rb.to_string()));
        }
        let mut target = uri;
        target.headers.clear();
        let account = self.calls[pos]
            .account
            .and_then(|i| self.accounts.get(i))
            .map(|a| a.config.id.clone());
        // The new call knows its transferor from the start, so that it
        // takes over the line of the call it continues.
        let setup = |c: &mut Call| {
            c.transfer.notify_to = Some(x);
            c.transfer.notified = Some(100);
            c.transfer.invite_headers = invite_headers;
        };
        let y = match self.start_call_with(now, account.as_deref(), &target.to_string(), setup) {
            Ok(Reply::Call { call }) => call,
            Ok(_) => {
                self.respond(now, txn, &request, 500, &[]);
                return;
            }
            Err(e) => {
                tracing::info!(call = x, "REFER refused: {e}");
                let mut resp = dialog::response_to(&request, 400, None);
                resp.reason = format!("Bad Request ({})", clip(&e.0));
                self.txn.send_response(now, txn, resp);
                return;
            }
        };
        tracing::info!(call = x, new_call = y, "transferred to {target} by REFER");
        if let Some(p) = self.call_pos(x) {
            self.calls[p].transfer.child = Some(y);
        }
        self.respond(now, txn, &request, 202, &[]);
        self.send_refer_notify(now, x, 100, "Trying", false);
        self.set_transfer_status(x, format!("transferring to {target}"));
    }

    /// NOTIFY (refer package) with `SIP/2.0 code reason` in `x`'s dialog.
    fn send_refer_notify(
        &mut self,
        now: Instant,
        x: CallId,
        code: u16,
        reason: &str,
        terminated: bool,
    ) -> bool {
        let Some(pos) = self.call_pos(x) else {
            return false;
        };
        if !matches!(
            self.calls[pos].state,
            CallState::Connected | CallState::Held
        ) {
            return false;
        }
        let contact = self.contact_for_call(pos);
        let via = self.call_via(pos);
        let call = &mut self.calls[pos];
        let Some(d) = call.dialog.as_mut() else {
            return false;
        };
        let Some(peer) = call::dialog_peer(d, call.peer) else {
            return false;
        };
        let mut req = d.request(Method::Notify, &contact, None);
        req.headers.push_front("Via", via);
        req.headers.push("Event", "refer");
        req.headers.push(
            "Subscription-State",
            if terminated {
                "terminated;reason=noresource"
            } else {
                "active;expires=60"
            },
        );
        dialog::set_body(
            &mut req.headers,
            &mut req.body,
            "message/sipfrag;version=2.0",
            format!("SIP/2.0 {code} {reason}\r\n").into_bytes(),
        );
        let t = self.txn.send_request(now, req, peer);
        self.owners.insert(t, Owner::Notify(x));
        true
    }

    // ----- transfer target -----------------------------------------------

    /// The call an INVITE's Replaces header names (RFC 3891 §3): `Ok(None)`
    /// without the header, `Err(code)` when it cannot be honoured.
    pub(super) fn invite_replaces(&self, request: &Request) -> Result<Option<CallId>, u16> {
        let mut values = request.headers.get_all("Replaces");
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(400);
        }
        let r = Replaces::parse(value).map_err(|_| 400u16)?;
        for c in &self.calls {
            // A confirmed dialog: tags from our side (to-tag = ours).
            if let Some(d) = &c.dialog
                && d.call_id == r.call_id
                && d.local_tag == r.to_tag
                && d.remote_tag.as_deref() == Some(r.from_tag.as_str())
            {
                return match c.state {
                    CallState::Connected | CallState::Held if r.early_only => Err(486),
                    CallState::Connected | CallState::Held => Ok(Some(c.id)),
                    _ => Err(603),
                };
            }
            // An early dialog: only one we started may be replaced.
            let same_call = c
                .invite
                .as_ref()
                .and_then(|i| i.headers.call_id().ok())
                .is_some_and(|id| id == r.call_id);
            if same_call && c.dialog.is_none() && c.local_tag == r.to_tag {
                return match (c.direction, c.state) {
                    (
                        Direction::Outgoing,
                        CallState::Calling | CallState::Ringing | CallState::Early,
                    ) => Ok(Some(c.id)),
                    (Direction::Incoming, CallState::Ringing) => Err(481),
                    _ => Err(603),
                };
            }
        }
        Err(481)
    }

    // ----- progress, run on every pump ---------------------------------

    /// NOTIFY the transferor of each new status of a call placed for its
    /// REFER, end calls made obsolete by a transfer or a Replaces. True
    /// when anything was sent.
    pub(super) fn transfer_poll(&mut self, now: Instant) -> bool {
        let mut sent = false;
        // Transferee: progress of the new call to the transferor.
        let watched: Vec<(CallId, CallId)> = self
            .calls
            .iter()
            .filter_map(|c| c.transfer.notify_to.map(|x| (c.id, x)))
            .collect();
        for (y, x) in watched {
            let Some(ypos) = self.call_pos(y) else {
                continue;
            };
            let Some((code, reason)) = progress(&self.calls[ypos]) else {
                continue;
            };
            if self.calls[ypos].transfer.notified == Some(code) {
                continue;
            }
            let last = code >= 200;
            self.calls[ypos].transfer.notified = Some(code);
            if last {
                self.calls[ypos].transfer.notify_to = None;
            }
            sent |= self.send_refer_notify(now, x, code, &reason, last);
            if let Some(xpos) = self.call_pos(x) {
                let xt = &mut self.calls[xpos].transfer;
                if (200..300).contains(&code) {
                    xt.end_cause = Some("transferred".into());
                    xt.bye_at = Some(now + TRANSFEREE_BYE_AFTER);
                    xt.status = Some("transferred".into());
                    self.emit_call(x);
                } else if last {
                    xt.child = None;
                    xt.status = Some(format!("failed: {code} {reason}"));
                    self.emit_call(x);
                }
            }
        }
        // Transferee: the transferor did not hang up in time.
        let due: Vec<CallId> = self
            .calls
            .iter_mut()
            .filter(|c| c.transfer.bye_at.is_some_and(|t| t <= now))
            .map(|c| {
                c.transfer.bye_at = None;
                c.id
            })
            .collect();
        for x in due {
            if self.call_pos(x).is_some_and(|p| {
                matches!(self.calls[p].state, CallState::Connected | CallState::Held)
            }) {
                sent |= self.send_bye(now, x).is_ok();
            }
        }
        // Target: an answered call ends the one it replaces.
        let replacing: Vec<(CallId, CallId)> = self
            .calls
            .iter()
            .filter(|c| matches!(c.state, CallState::Connected | CallState::Held))
            .filter_map(|c| c.transfer.replaces.map(|old| (c.id, old)))
            .collect();
        for (new, old) in replacing {
            if let Some(p) = self.call_pos(new) {
                self.calls[p].transfer.replaces = None;
            }
            let Some(opos) = self.call_pos(old) else {
                continue;
            };
            if self.calls[opos].is_ended() {
                continue;
            }
            tracing::info!(call = new, replaced = old, "call replaced (RFC 3891)");
            self.calls[opos].transfer.end_cause = Some("replaced".into());
            sent |= self.hangup(now, Some(old)).is_ok();
        }
        sent
    }

    /// The earliest transfer deadline (the transferee's fallback BYE).
    pub(super) fn transfer_deadline(&self) -> Option<Instant> {
        self.calls.iter().filter_map(|c| c.transfer.bye_at).min()
    }

    /// The cause a call takes when it ends: a transfer's, if one applies.
    pub(super) fn transfer_end_cause(&self, id: CallId) -> Option<String> {
        self.call_pos(id)
            .and_then(|p| self.calls[p].transfer.end_cause.clone())
    }
}

/// Mark an incoming call as replacing `old` (RFC 3891): it is answered as
/// soon as its RTP port is bound, without ringing the user.
pub(super) fn mark_replacing(call: &mut Call, old: CallId) {
    call.transfer.replaces = Some(old);
    call.answer_pending = true;
    call.auto_answer = None;
    call.auto_answered = Some(format!("replaces call {old}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipfrag_status_lines() {
        assert_eq!(
            parse_sipfrag(b"SIP/2.0 180 Ringing\r\n").unwrap(),
            (180, "Ringing".into())
        );
        assert_eq!(
            parse_sipfrag(b"SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n").unwrap(),
            (486, "Busy Here".into())
        );
        assert_eq!(parse_sipfrag(b"SIP/2.0 200").unwrap(), (200, "OK".into()));
        for bad in [
            &b""[..],
            b"INVITE sip:x SIP/2.0",
            b"SIP/2.0 20 OK",
            b"\xff\xfe",
        ] {
            assert!(parse_sipfrag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replaces_header() {
        let r = Replaces::parse("abc@h;to-tag=1;from-tag=2;early-only").unwrap();
        assert_eq!(
            r,
            Replaces {
                call_id: "abc@h".into(),
                to_tag: "1".into(),
                from_tag: "2".into(),
                early_only: true
            }
        );
        assert!(Replaces::parse("abc;to-tag=1").is_err());
        assert!(Replaces::parse(";to-tag=1;from-tag=2").is_err());
    }

    #[test]
    fn refer_to_escapes_replaces_and_reads_back() {
        let mut uri = Uri::parse("sip:carol@10.0.0.3:5060").unwrap();
        uri.headers = vec![("Replaces".into(), "id@x;to-tag=a;from-tag=b".into())];
        let text = format!("<{uri}>");
        assert_eq!(
            text,
            "<sip:carol@10.0.0.3:5060?Replaces=id%40x%3Bto-tag%3Da%3Bfrom-tag%3Db>"
        );
        let mut req = Request {
            method: Method::Refer,
            uri: uri.clone(),
            headers: Default::default(),
            body: Vec::new(),
        };
        req.headers.push("Refer-To", text);
        assert_eq!(refer_to(&req).unwrap(), uri);
        req.headers.push("Refer-To", "<sip:x@y>");
        assert!(refer_to(&req).is_err());
    }
}
