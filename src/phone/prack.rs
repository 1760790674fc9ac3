//! Reliable provisional responses (RFC 3262, 100rel). As UAC: a 18x with
//! `Require: 100rel` and `RSeq` gets one PRACK (`RAck`) in its early
//! dialog; retransmissions of it are not PRACKed again. As UAS: when the
//! INVITE requires 100rel, our 180 carries `Require: 100rel` and `RSeq`
//! and is retransmitted (T1, doubling) until its PRACK arrives; after
//! 64×T1 without one the INVITE gets 504.

use std::time::{Duration, Instant};

use crate::sip::dialog::{self, Dialog};
use crate::sip::headers::TypedHeaders;
use crate::sip::message::{Method, Request, Response};
use crate::sip::txn::TxnId;

use super::call::{self, CallState};
use super::session_timer::TxnKind;
use super::types::{CallId, Direction};
use super::{Owner, Phone};

/// One call's reliable-provisional state.
#[derive(Debug, Clone, Default)]
pub(super) struct CallPrack {
    /// UAC: early dialogs by To tag, with the last RSeq we PRACKed.
    early: Vec<(String, Dialog, u32)>,
    /// UAS: the RSeq and INVITE CSeq of our reliable 180.
    sent: Option<(u32, u32)>,
    /// UAS: our reliable 180 until its PRACK arrives.
    pending: Option<Reliable>,
}

#[derive(Debug, Clone)]
struct Reliable {
    txn: TxnId,
    response: Response,
    next: Instant,
    wait: Duration,
    give_up: Instant,
}

/// `RAck`: response number, CSeq number, method.
fn rack(request: &Request) -> Option<(u32, u32, String)> {
    let value = request.headers.get("RAck")?;
    let mut it = value.split_whitespace();
    let rseq = it.next()?.parse().ok()?;
    let cseq = it.next()?.parse().ok()?;
    let method = it.next()?.to_string();
    Some((rseq, cseq, method))
}

fn requires_100rel(headers: &crate::sip::message::Headers) -> bool {
    headers
        .tokens("Require")
        .iter()
        .any(|t| t.eq_ignore_ascii_case("100rel"))
}

impl Phone {
    // ----- UAC --------------------------------------------------------------

    /// A provisional response to our INVITE. A reliable one is PRACKed the
    /// first time; true for a retransmission of one already PRACKed (the
    /// caller then ignores it).
    pub(super) fn prack_on_provisional(
        &mut self,
        now: Instant,
        pos: usize,
        response: &Response,
    ) -> bool {
        if response.code <= 100 || !requires_100rel(&response.headers) {
            return false;
        }
        let Some(rseq) = response
            .headers
            .get("RSeq")
            .and_then(|v| v.trim().parse::<u32>().ok())
        else {
            tracing::info!("reliable provisional without a usable RSeq: not PRACKed");
            return false;
        };
        let Some(tag) = response
            .headers
            .to_addr()
            .ok()
            .and_then(|t| t.tag().map(str::to_string))
        else {
            return false;
        };
        let Some(call) = self.calls.get(pos) else {
            return false;
        };
        let id = call.id;
        let Some(invite) = call.invite.clone() else {
            return false;
        };
        let state = self.st.prack.entry(id).or_default();
        let slot = match state.early.iter().position(|(t, _, _)| *t == tag) {
            Some(i) => i,
            None => {
                let Ok(d) = Dialog::uac(&invite, response) else {
                    return false;
                };
                state.early.push((tag, d, 0));
                state.early.len() - 1
            }
        };
        if state.early[slot].2 != 0 && rseq <= state.early[slot].2 {
            return true;
        }
        state.early[slot].2 = rseq;
        let contact = self.contact_for_call(pos);
        let via = self.call_via(pos);
        let fallback = self.calls[pos].peer;
        let Some((_, d, _)) = self
            .st
            .prack
            .get_mut(&id)
            .and_then(|s| s.early.get_mut(slot))
        else {
            return false;
        };
        let invite_seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(1);
        let mut prack = d.request(Method::Prack, &contact, None);
        prack.headers.push_front("Via", via);
        prack
            .headers
            .push("RAck", format!("{rseq} {invite_seq} INVITE"));
        call::copy_credentials(&invite, &mut prack);
        let Some(peer) = call::dialog_peer(d, fallback) else {
            return false;
        };
        tracing::debug!(call = id, rseq, "PRACK for a reliable provisional");
        let t = self.txn.send_request(now, prack, peer);
        self.owners.insert(t, Owner::Timers(id));
        self.st.txns.insert(t, TxnKind::Prack);
        false
    }

    /// The call is confirmed: requests in its dialog number on from the
    /// PRACKs sent in the early dialog with the same far end.
    pub(super) fn prack_on_confirmed(&mut self, id: CallId) {
        let Some(state) = self.st.prack.get_mut(&id) else {
            return;
        };
        let early = std::mem::take(&mut state.early);
        let Some(d) = self
            .calls
            .iter_mut()
            .find(|c| c.id == id)
            .and_then(|c| c.dialog.as_mut())
        else {
            return;
        };
        if let Some((_, e, _)) = early
            .iter()
            .find(|(t, _, _)| Some(t) == d.remote_tag.as_ref())
        {
            d.local_seq = d.local_seq.max(e.local_seq);
        }
    }

    /// The early dialog (ours as UAC) that an in-dialog request from the far
    /// end belongs to.
    pub(super) fn prack_early_dialog(&self, request: &Request) -> Option<CallId> {
        self.st.prack.iter().find_map(|(id, s)| {
            s.early
                .iter()
                .any(|(_, d, _)| d.matches(request))
                .then_some(*id)
        })
    }

    // ----- UAS --------------------------------------------------------------

    /// Our 180 to an incoming INVITE: reliable when the INVITE requires it.
    pub(super) fn prack_reliable_provisional(
        &mut self,
        now: Instant,
        id: CallId,
        txn: TxnId,
        invite: &Request,
        mut response: Response,
    ) -> Response {
        if !requires_100rel(&invite.headers) {
            return response;
        }
        // RFC 3262 §3: start between 1 and 2**31 - 1.
        let rseq = (self.rng.next_u64() % 0x7fff_0000) as u32 + 1;
        let cseq = invite.headers.cseq().map(|c| c.seq).unwrap_or(0);
        response.headers.push("Require", "100rel");
        response.headers.push("RSeq", rseq.to_string());
        let t1 = self.timers.t1;
        self.st.prack.insert(
            id,
            CallPrack {
                early: Vec::new(),
                sent: Some((rseq, cseq)),
                pending: Some(Reliable {
                    txn,
                    response: response.clone(),
                    next: now + t1,
                    wait: t1,
                    give_up: now + t1 * 64,
                }),
            },
        );
        response
    }

    /// A PRACK arrived.
    pub(super) fn on_prack(&mut self, now: Instant, txn: TxnId, request: Request) {
        let call_id = request.headers.call_id().ok().map(str::to_string);
        let from_tag = request
            .headers
            .from_addr()
            .ok()
            .and_then(|f| f.tag().map(str::to_string));
        let to_tag = request
            .headers
            .to_addr()
            .ok()
            .and_then(|t| t.tag().map(str::to_string));
        let found = self.calls.iter().find(|c| {
            c.direction == Direction::Incoming
                && !c.is_ended()
                && Some(&c.local_tag) == to_tag.as_ref()
                && c.invite.as_ref().is_some_and(|i| {
                    i.headers.call_id().ok().map(str::to_string) == call_id
                        && i.headers
                            .from_addr()
                            .ok()
                            .and_then(|f| f.tag().map(str::to_string))
                            == from_tag
                })
        });
        let Some(id) = found.map(|c| c.id) else {
            self.respond(now, txn, &request, 481, &[]);
            return;
        };
        let sent = self.st.prack.get(&id).and_then(|s| s.sent);
        match (rack(&request), sent) {
            (Some((rseq, cseq, method)), Some((want_rseq, want_cseq)))
                if rseq == want_rseq && cseq == want_cseq && method == "INVITE" =>
            {
                if let Some(s) = self.st.prack.get_mut(&id) {
                    s.pending = None;
                }
                self.respond(now, txn, &request, 200, &[]);
            }
            (None, _) => {
                let mut resp = dialog::response_to(&request, 400, None);
                resp.reason = "Bad Request (missing or malformed RAck)".into();
                self.txn.send_response(now, txn, resp);
            }
            _ => self.respond(now, txn, &request, 481, &[]),
        }
    }

    /// Retransmit our reliable 180s; give up on those never PRACKed.
    pub(super) fn prack_timeout(&mut self, now: Instant) {
        let due: Vec<CallId> = self
            .st
            .prack
            .iter()
            .filter(|(_, s)| s.pending.as_ref().is_some_and(|p| p.next <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let ringing = self
                .calls
                .iter()
                .any(|c| c.id == id && c.state == CallState::Ringing);
            let Some(s) = self.st.prack.get_mut(&id) else {
                continue;
            };
            let Some(p) = s.pending.as_mut() else {
                continue;
            };
            if !ringing || self.txn.request(p.txn).is_none() {
                // Answered, rejected or cancelled: the final response ends it.
                s.pending = None;
                continue;
            }
            if now >= p.give_up {
                let txn = p.txn;
                s.pending = None;
                if let Some(c) = self.calls.iter().find(|c| c.id == id)
                    && let Some(invite) = c.invite.as_ref()
                {
                    let resp = dialog::response_to(invite, 504, Some(&c.local_tag));
                    self.txn.send_response(now, txn, resp);
                }
                self.end_call(
                    id,
                    "no PRACK for our reliable 180 (the caller is gone)".into(),
                    Some(504),
                );
                continue;
            }
            let resp = p.response.clone();
            let txn = p.txn;
            p.wait *= 2;
            p.next = (now + p.wait).min(p.give_up);
            self.txn.send_response(now, txn, resp);
        }
    }

    pub(super) fn prack_poll_timeout(&self) -> Option<Instant> {
        self.st
            .prack
            .values()
            .filter_map(|s| s.pending.as_ref().map(|p| p.next))
            .min()
    }
}
