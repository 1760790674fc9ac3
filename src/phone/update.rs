//! UPDATE received (RFC 3311) in early or confirmed dialogs. With SDP it
//! is an offer, answered like a re-INVITE's (hold, resume, new address or
//! codec); without one it refreshes the session (RFC 4028). Offers that
//! cross ours get 491; an offer while the INVITE's own offer is still
//! unanswered gets 500 with Retry-After (RFC 3311 §5.2).

use std::time::Instant;

use crate::sip::dialog;
use crate::sip::headers::TypedHeaders;
use crate::sip::message::Request;
use crate::sip::txn::TxnId;

use super::call::CallState;
use super::types::Direction;
use super::{Phone, answer_error_code, answer_warning};

impl Phone {
    pub(super) fn on_update(&mut self, now: Instant, txn: TxnId, request: Request) {
        if let Some(pos) = self.calls.iter().position(|c| c.dialog_matches(&request)) {
            self.update_confirmed(now, txn, pos, request);
            return;
        }
        // An early dialog: an incoming call still ringing (our To tag), or
        // our outgoing call in a reliable 18x's early dialog.
        let early_in = self.calls.iter().position(|c| {
            c.direction == Direction::Incoming
                && c.state == CallState::Ringing
                && c.invite
                    .as_ref()
                    .is_some_and(|i| same_early(i, &request, &c.local_tag))
        });
        let early_out = self
            .prack_early_dialog(&request)
            .and_then(|id| self.calls.iter().position(|c| c.id == id))
            .filter(|&p| {
                matches!(
                    self.calls[p].state,
                    CallState::Calling | CallState::Ringing | CallState::Early
                )
            });
        match (early_in, early_out) {
            (Some(_), _) if !request.body.is_empty() => {
                // Our 180 carried no answer to the INVITE's offer yet.
                let retry = (self.rng.next_u64() % 10).to_string();
                self.respond(now, txn, &request, 500, &[("Retry-After", retry)]);
            }
            (Some(_), _) => self.respond(now, txn, &request, 200, &[]),
            (None, Some(pos)) => self.update_early_outgoing(now, txn, pos, request),
            (None, None) => self.respond(now, txn, &request, 481, &[]),
        }
    }

    fn update_confirmed(&mut self, now: Instant, txn: TxnId, pos: usize, request: Request) {
        let seq = request.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let last = self.calls[pos].dialog.as_ref().and_then(|d| d.remote_seq);
        if last.is_some_and(|l| seq <= l) {
            self.respond(now, txn, &request, 500, &[]);
            return;
        }
        if let Some(d) = self.calls[pos].dialog.as_mut() {
            d.remote_seq = Some(seq);
        }
        if self.session_timer_check_request(now, txn, &request) {
            return;
        }
        let id = self.calls[pos].id;
        let contact = self.contact_for_call(pos);
        let mut resp = dialog::response_to(&request, 200, None);
        resp.headers.push("Contact", contact);
        if !request.body.is_empty() {
            if self.calls[pos].reinvite.is_some() {
                // Our own offer is out: glare.
                self.respond(now, txn, &request, 491, &[]);
                return;
            }
            let media_cfg = self.media_cfg.clone();
            let srtp = self.call_srtp(pos);
            let call = &mut self.calls[pos];
            let dir = if call.state == CallState::Held {
                crate::sdp::Direction::SendOnly
            } else {
                crate::sdp::Direction::SendRecv
            };
            let ip = call.local_ip;
            match call
                .media
                .answer_with(&media_cfg, ip, &request.body, &srtp, dir)
            {
                Ok(sdp) => {
                    call.remote_hold = call
                        .media
                        .negotiated
                        .as_ref()
                        .is_some_and(|n| !n.direction.sends());
                    dialog::set_body(
                        &mut resp.headers,
                        &mut resp.body,
                        "application/sdp",
                        sdp.into_bytes(),
                    );
                }
                Err(e) => {
                    tracing::info!(call = id, "UPDATE offer refused: {e}");
                    let code = answer_error_code(&e);
                    self.respond(now, txn, &request, code, &[answer_warning(&e)]);
                    return;
                }
            }
        }
        self.session_timer_on_refresh_request(now, id, &request, &mut resp);
        self.txn.send_response(now, txn, resp);
        if !request.body.is_empty() {
            self.start_media(id);
            self.emit_call(id);
        }
    }

    /// UPDATE from the far end of our call before it answered (in the early
    /// dialog of a reliable 18x): an offer is answered and played.
    fn update_early_outgoing(&mut self, now: Instant, txn: TxnId, pos: usize, request: Request) {
        let id = self.calls[pos].id;
        let contact = self.contact_for_call(pos);
        let mut resp = dialog::response_to(&request, 200, None);
        resp.headers.push("Contact", contact);
        if !request.body.is_empty() {
            if self.calls[pos].media.negotiated.is_none() {
                let retry = (self.rng.next_u64() % 10).to_string();
                self.respond(now, txn, &request, 500, &[("Retry-After", retry)]);
                return;
            }
            let media_cfg = self.media_cfg.clone();
            let srtp = self.call_srtp(pos);
            let call = &mut self.calls[pos];
            let ip = call.local_ip;
            match call.media.answer_with(
                &media_cfg,
                ip,
                &request.body,
                &srtp,
                crate::sdp::Direction::SendRecv,
            ) {
                Ok(sdp) => dialog::set_body(
                    &mut resp.headers,
                    &mut resp.body,
                    "application/sdp",
                    sdp.into_bytes(),
                ),
                Err(e) => {
                    let code = answer_error_code(&e);
                    self.respond(now, txn, &request, code, &[answer_warning(&e)]);
                    return;
                }
            }
        }
        self.txn.send_response(now, txn, resp);
        self.start_media(id);
    }
}

/// True when `request` is in the early dialog our 18x to `invite` made.
fn same_early(invite: &Request, request: &Request, local_tag: &str) -> bool {
    let tag = |r: &Request| {
        r.headers
            .from_addr()
            .ok()
            .and_then(|f| f.tag().map(str::to_string))
    };
    invite.headers.call_id().ok() == request.headers.call_id().ok()
        && tag(invite) == tag(request)
        && request
            .headers
            .to_addr()
            .ok()
            .and_then(|t| t.tag().map(str::to_string))
            .as_deref()
            == Some(local_tag)
}
