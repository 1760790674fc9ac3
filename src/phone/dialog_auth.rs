//! In-dialog digest retries: a 401/407 to our re-INVITE, BYE, REFER, INFO,
//! UPDATE or PRACK is answered once with the credentials of the call's
//! account (RFC 3261 §22.2: same request, CSeq + 1, new branch); a second
//! challenge fails the request as any other error would. Also the media
//! task's reports the core acts on: RTP inactivity (hang up after
//! `[media] inactivity_hangup_secs`) and RFC 4733 digits received.

use std::time::Instant;

use crate::sip::auth::Authenticator;
use crate::sip::message::Response;
use crate::sip::txn::TxnId;

use super::call::CallState;
use super::types::{CallId, Event, Output};
use super::{Owner, Phone};

impl Phone {
    /// A 401/407 for one of the call's in-dialog requests: re-sent with
    /// credentials and true, or false when it is not ours to retry (no
    /// account, already retried, unusable challenge).
    pub(super) fn dialog_auth_retry(
        &mut self,
        now: Instant,
        txn: TxnId,
        response: &Response,
    ) -> bool {
        let Some(owner) = self.owners.get(&txn).copied() else {
            return false;
        };
        let id = match owner {
            Owner::Reinvite(c)
            | Owner::Bye(c)
            | Owner::Refer(c)
            | Owner::Info(c)
            | Owner::Timers(c) => c,
            _ => return false,
        };
        if self.st.auth_retried.contains(&txn) {
            tracing::info!(
                call = id,
                code = response.code,
                "credentials rejected in the call"
            );
            return false;
        }
        let Some(pos) = self.calls.iter().position(|c| c.id == id) else {
            return false;
        };
        let Some(creds) = self.calls[pos]
            .account
            .and_then(|i| self.accounts.get(i))
            .map(|a| a.credentials())
        else {
            return false;
        };
        let (Some(mut req), Some(peer)) = (self.txn.request(txn).cloned(), self.txn.peer(txn))
        else {
            return false;
        };
        let auth = self
            .st
            .auth
            .entry(id)
            .or_insert_with(|| Authenticator::new(creds));
        // A new request's first challenge: earlier rounds are over.
        auth.on_success();
        if let Err(e) = auth.on_challenge(response) {
            tracing::info!(call = id, "cannot answer the challenge: {e}");
            return false;
        }
        let via = self.call_via(pos);
        let seed = self.rng.next_u64();
        let Some(dialog) = self.calls[pos].dialog.as_mut() else {
            return false;
        };
        dialog.local_seq = dialog.local_seq.wrapping_add(1).max(1);
        let seq = dialog.local_seq;
        req.headers
            .set("CSeq", format!("{seq} {}", req.method.as_str()));
        req.headers.remove("Via");
        req.headers.push_front("Via", via);
        if let Some(auth) = self.st.auth.get_mut(&id) {
            auth.authorize(&mut req, seed);
        }
        tracing::info!(
            call = id,
            method = req.method.as_str(),
            code = response.code,
            "retrying with credentials"
        );
        let t = self.txn.send_request(now, req, peer);
        self.owners.remove(&txn);
        self.owners.insert(t, owner);
        self.st.auth_retried.insert(t);
        if let Some(kind) = self.st.txns.remove(&txn) {
            self.st.txns.insert(t, kind);
        }
        true
    }

    /// The media task of `call` has received no RTP for `secs` seconds.
    /// A connected call (not held either way) is hung up once that reaches
    /// `[media] inactivity_hangup_secs` (0 = never).
    pub fn handle_media_silent(&mut self, now: Instant, call: CallId, secs: u64) {
        let limit = self.media_cfg.inactivity_hangup_secs;
        if limit == 0 || secs < limit {
            return;
        }
        let Some(c) = self.calls.iter().find(|c| c.id == call) else {
            return;
        };
        if c.state != CallState::Connected || c.remote_hold {
            return;
        }
        tracing::info!(call, secs, "no RTP: hanging up");
        let _ = self.send_bye(now, call);
        self.end_call(call, format!("no media for {limit} s"), None);
        self.pump(now);
    }

    /// The media task of `call` decoded the end of an RFC 4733 digit.
    pub fn handle_media_dtmf(&mut self, call: CallId, digit: char) {
        if self.calls.iter().any(|c| c.id == call && !c.is_ended()) {
            self.outputs.push_back(Output::Event(Event::Dtmf {
                call,
                digit: digit.to_string(),
                method: "rfc4733",
            }));
        }
    }
}
