//! Session timers (RFC 4028), as UAC and UAS: `Session-Expires` / `Min-SE`
//! in our INVITE, the interval and refresher taken from the 2xx (or chosen
//! when we answer), refreshes at half the interval (UPDATE without a body
//! when the far end allows UPDATE, else a re-INVITE with our SDP), 422
//! retried with the larger Min-SE, and a BYE when the far end was to
//! refresh and did not. Also the home of the state that `prack.rs`,
//! `update.rs` and `dialog_auth.rs` keep, and of their timer dispatch.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::sip::auth::Authenticator;
use crate::sip::headers::TypedHeaders;
use crate::sip::message::{Headers, Method, Request, Response};
use crate::sip::txn::TxnId;

use super::call::{self, CallState};
use super::types::CallId;
use super::{Owner, Phone, prack};

/// RFC 4028 §4: nobody may ask for less than 90 s.
pub const ABSOLUTE_MIN_SE: u32 = 90;

/// How often a 422 is followed before the call fails.
const MAX_422_RETRIES: u8 = 2;

/// What our own transactions of these parts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxnKind {
    /// PRACK for a reliable provisional response.
    Prack,
    /// UPDATE without a body refreshing the session.
    Refresh,
}

/// The state of session timers, PRACK, and in-dialog digest retries.
pub(super) struct State {
    /// `[phone] session_expires_secs` (0 = we ask for no timer).
    pub config_se: u32,
    /// `[phone] min_se`.
    pub config_min_se: u32,
    pub calls: HashMap<CallId, SessionTimer>,
    pub prack: HashMap<CallId, prack::CallPrack>,
    pub txns: HashMap<TxnId, TxnKind>,
    /// Digest state per call for in-dialog requests.
    pub auth: HashMap<CallId, Authenticator>,
    /// Requests already re-sent with credentials: a second challenge fails.
    pub auth_retried: HashSet<TxnId>,
    /// Calls whose next re-INVITE is a session refresh.
    pub refresh_reinvite: HashSet<CallId>,
}

impl State {
    pub fn new(config: &Config) -> State {
        State {
            config_se: config.phone.session_expires_secs,
            config_min_se: config.phone.min_se.max(ABSOLUTE_MIN_SE),
            calls: HashMap::new(),
            prack: HashMap::new(),
            txns: HashMap::new(),
            auth: HashMap::new(),
            auth_retried: HashSet::new(),
            refresh_reinvite: HashSet::new(),
        }
    }
}

/// One call's session timer.
#[derive(Debug, Clone, Default)]
pub(super) struct SessionTimer {
    /// The interval we ask for, then the one negotiated (seconds).
    pub interval: u32,
    /// Min-SE we put in requests (raised by a 422).
    pub min_se: u32,
    pub retries_422: u8,
    /// Negotiated: refreshes are due.
    pub active: bool,
    pub we_refresh: bool,
    pub refresh_at: Option<Instant>,
    pub expire_at: Option<Instant>,
    /// The far end lists UPDATE in its Allow.
    pub peer_allows_update: bool,
}

impl SessionTimer {
    /// Start a new interval at `now` (after a refresh either way).
    fn arm(&mut self, now: Instant) {
        let interval = self.interval.max(ABSOLUTE_MIN_SE);
        self.active = true;
        self.refresh_at = self
            .we_refresh
            .then(|| now + Duration::from_secs(u64::from(interval / 2)));
        // RFC 4028 §10: BYE before expiry, by the smaller of 32 s and a third.
        let margin = (interval / 3).min(32);
        self.expire_at = Some(now + Duration::from_secs(u64::from(interval - margin)));
    }
}

/// `Session-Expires` (or `x`): the interval and the refresher parameter.
/// `Err` when the header is there but unreadable.
pub fn session_expires(headers: &Headers) -> Result<Option<(u32, Option<String>)>, String> {
    let Some(value) = headers.get("Session-Expires").or_else(|| headers.get("x")) else {
        return Ok(None);
    };
    let mut parts = value.split(';');
    let secs = parts
        .next()
        .unwrap_or("")
        .trim()
        .parse::<u32>()
        .map_err(|_| format!("bad Session-Expires `{value}`"))?;
    let refresher = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| v.trim().to_ascii_lowercase())
    });
    Ok(Some((secs, refresher)))
}

/// `Min-SE` seconds, when present and readable.
pub fn min_se(headers: &Headers) -> Option<u32> {
    headers
        .get("Min-SE")
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.trim().parse().ok())
}

/// True when `token` is in the message's `Supported` (or `k`) or `Require`.
pub fn has_option(headers: &Headers, token: &str) -> bool {
    ["Supported", "Require"].iter().any(|h| {
        headers
            .tokens(h)
            .iter()
            .any(|t| t.eq_ignore_ascii_case(token))
    })
}

/// True when the message's Allow lists `method`.
pub fn allows(headers: &Headers, method: &str) -> bool {
    headers
        .tokens("Allow")
        .iter()
        .any(|t| t.eq_ignore_ascii_case(method))
}

impl Phone {
    // ----- UAC: the INVITE and its answers -------------------------------

    /// Our initial INVITE: `Supported: 100rel, timer`, and the session
    /// interval we ask for. Also remembered as the call's INVITE.
    pub(super) fn timers_outgoing_invite(&mut self, id: CallId, invite: &mut Request) {
        let se = self.st.config_se;
        let min = self.st.config_min_se;
        let timer = self.st.calls.entry(id).or_insert_with(|| SessionTimer {
            interval: se,
            min_se: min,
            ..Default::default()
        });
        if se > 0 {
            invite.headers.set("Supported", "100rel, timer");
            invite
                .headers
                .set("Session-Expires", timer.interval.to_string());
            invite.headers.set("Min-SE", timer.min_se.to_string());
        } else {
            invite.headers.set("Supported", "100rel");
        }
        if let Some(c) = self.calls.iter_mut().find(|c| c.id == id) {
            c.invite = Some(invite.clone());
        }
    }

    /// The first 2xx to our INVITE: the dialog's CSeq goes on past our
    /// PRACKs, and the session timer settles.
    pub(super) fn timers_on_invite_2xx(&mut self, now: Instant, id: CallId, response: &Response) {
        self.prack_on_confirmed(id);
        let Some(timer) = self.st.calls.get_mut(&id) else {
            return;
        };
        timer.peer_allows_update = allows(&response.headers, "UPDATE");
        match session_expires(&response.headers) {
            Ok(Some((secs, refresher))) => {
                timer.interval = secs.max(ABSOLUTE_MIN_SE);
                // `uac` is us; a missing refresher (a proxy added the
                // header, RFC 4028 §7.2) leaves it to us too.
                timer.we_refresh = refresher.as_deref() != Some("uas");
                timer.arm(now);
            }
            Ok(None) | Err(_) => {
                // The far end does not do session timers: none apply.
                timer.active = false;
                timer.refresh_at = None;
                timer.expire_at = None;
            }
        }
    }

    /// 422 to our INVITE: send it again asking for at least the far end's
    /// Min-SE. False when it cannot be retried (the call then fails).
    pub(super) fn session_timer_on_422(
        &mut self,
        now: Instant,
        pos: usize,
        response: &Response,
    ) -> bool {
        let Some(id) = self.calls.get(pos).map(|c| c.id) else {
            return false;
        };
        let Some(want) = min_se(&response.headers) else {
            return false;
        };
        let Some(timer) = self.st.calls.get_mut(&id) else {
            return false;
        };
        if timer.retries_422 >= MAX_422_RETRIES || want <= timer.interval && want <= timer.min_se {
            return false;
        }
        timer.retries_422 += 1;
        timer.min_se = timer.min_se.max(want);
        timer.interval = timer.interval.max(want);
        let (interval, min) = (timer.interval, timer.min_se);
        let via = self.call_via(pos);
        let call = &mut self.calls[pos];
        if call.state == CallState::Ending || call.cancel_pending {
            return false;
        }
        let (Some(mut invite), Some(peer)) = (call.invite.clone(), call.peer) else {
            return false;
        };
        let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(1);
        invite.headers.set("CSeq", format!("{} INVITE", seq + 1));
        invite.headers.remove("Via");
        invite.headers.push_front("Via", via);
        invite.headers.set("Session-Expires", interval.to_string());
        invite.headers.set("Min-SE", min.to_string());
        call.invite = Some(invite.clone());
        call.got_provisional = false;
        tracing::info!(
            call = id,
            interval,
            "422: asking again for a longer session interval"
        );
        let t = self.txn.send_request(now, invite, peer);
        self.calls[pos].invite_txn = Some(t);
        self.owners.insert(t, Owner::Invite(id));
        true
    }

    // ----- UAS: answering, and refreshes from the far end ------------------

    /// An incoming INVITE (or re-INVITE / UPDATE) asking for a session
    /// interval below our Min-SE gets 422, an unreadable one 400. True
    /// when it was answered here.
    pub(super) fn session_timer_check_request(
        &mut self,
        now: Instant,
        txn: TxnId,
        request: &Request,
    ) -> bool {
        match session_expires(&request.headers) {
            Ok(Some((secs, _))) if secs < self.st.config_min_se => {
                let min = self.st.config_min_se.to_string();
                self.respond(now, txn, request, 422, &[("Min-SE", min)]);
                true
            }
            Ok(_) => false,
            Err(why) => {
                let mut resp = crate::sip::dialog::response_to(request, 400, None);
                resp.reason = format!("Bad Request ({why})");
                self.txn.send_response(now, txn, resp);
                true
            }
        }
    }

    /// Our 200 to an incoming INVITE: the session interval and refresher
    /// (RFC 4028 §9), with `Require: timer` when the caller supports it.
    pub(super) fn session_timer_on_answer(
        &mut self,
        now: Instant,
        pos: usize,
        resp: &mut Response,
    ) {
        let Some(call) = self.calls.get(pos) else {
            return;
        };
        let id = call.id;
        let Some(invite) = call.invite.as_ref() else {
            return;
        };
        let supports = has_option(&invite.headers, "timer");
        let (interval, peer_refreshes) = match session_expires(&invite.headers) {
            Ok(Some((secs, refresher))) => {
                let peer = match refresher.as_deref() {
                    Some("uas") => false,
                    Some("uac") => true,
                    // We choose: the caller when it can.
                    _ => supports,
                };
                (secs.max(ABSOLUTE_MIN_SE), peer && supports)
            }
            _ if supports && self.st.config_se > 0 => (self.st.config_se, true),
            _ => return,
        };
        let peer_allows_update = allows(&invite.headers, "UPDATE");
        let refresher = if peer_refreshes { "uac" } else { "uas" };
        resp.headers.set(
            "Session-Expires",
            format!("{interval};refresher={refresher}"),
        );
        if supports {
            resp.headers.push("Require", "timer");
        }
        let mut timer = SessionTimer {
            interval,
            min_se: self.st.config_min_se,
            we_refresh: !peer_refreshes,
            peer_allows_update,
            ..Default::default()
        };
        timer.arm(now);
        self.st.calls.insert(id, timer);
    }

    /// A re-INVITE or UPDATE from the far end was accepted with `resp`: it
    /// refreshes the session; the interval and refresher it names apply.
    pub(super) fn session_timer_on_refresh_request(
        &mut self,
        now: Instant,
        id: CallId,
        request: &Request,
        resp: &mut Response,
    ) {
        let config_min = self.st.config_min_se;
        let asked = session_expires(&request.headers).ok().flatten();
        let timer = match (self.st.calls.get_mut(&id), &asked) {
            (Some(t), _) => t,
            (None, Some(_)) => self.st.calls.entry(id).or_insert_with(|| SessionTimer {
                min_se: config_min,
                ..Default::default()
            }),
            (None, None) => return,
        };
        if let Some((secs, refresher)) = asked {
            timer.interval = secs.max(ABSOLUTE_MIN_SE);
            // In this transaction `uac` is the far end.
            timer.we_refresh =
                refresher.as_deref() == Some("uas") || !has_option(&request.headers, "timer");
        } else if !timer.active {
            return;
        }
        if allows(&request.headers, "UPDATE") {
            timer.peer_allows_update = true;
        }
        let refresher = if timer.we_refresh { "uas" } else { "uac" };
        resp.headers.set(
            "Session-Expires",
            format!("{};refresher={refresher}", timer.interval),
        );
        if has_option(&request.headers, "timer") {
            resp.headers.push("Require", "timer");
        }
        timer.arm(now);
    }

    // ----- our refreshes ----------------------------------------------------

    /// Headers of a refresh we send (re-INVITE or UPDATE).
    fn refresh_headers(&self, id: CallId, req: &mut Request) {
        let Some(timer) = self.st.calls.get(&id).filter(|t| t.active) else {
            return;
        };
        let refresher = if timer.we_refresh { "uac" } else { "uas" };
        req.headers.set("Supported", "timer");
        req.headers.set(
            "Session-Expires",
            format!("{};refresher={refresher}", timer.interval),
        );
        req.headers.set("Min-SE", timer.min_se.to_string());
    }

    /// Our re-INVITE (hold, resume or refresh) carries the session timer.
    pub(super) fn session_timer_reinvite_headers(&self, id: CallId, req: &mut Request) {
        self.refresh_headers(id, req);
    }

    /// The final response to our re-INVITE. A 2xx refreshed the session,
    /// a 422 asks for a longer interval (the refresh goes again at once).
    pub(super) fn session_timer_reinvite_final(
        &mut self,
        now: Instant,
        id: CallId,
        response: &Response,
    ) {
        let was_refresh = self.st.refresh_reinvite.remove(&id);
        self.refresh_answered(now, id, response, was_refresh);
    }

    fn refresh_answered(&mut self, now: Instant, id: CallId, response: &Response, retry: bool) {
        let Some(timer) = self.st.calls.get_mut(&id).filter(|t| t.active) else {
            return;
        };
        match response.code {
            200..=299 => {
                if let Ok(Some((secs, refresher))) = session_expires(&response.headers) {
                    timer.interval = secs.max(ABSOLUTE_MIN_SE);
                    timer.we_refresh = refresher.as_deref() != Some("uas");
                }
                timer.arm(now);
            }
            422 => {
                if let Some(want) = min_se(&response.headers)
                    && timer.retries_422 < MAX_422_RETRIES
                {
                    timer.retries_422 += 1;
                    timer.min_se = timer.min_se.max(want);
                    timer.interval = timer.interval.max(want);
                    timer.refresh_at = Some(now);
                }
            }
            405 | 501 if !retry => {
                // UPDATE not understood after all: refresh by re-INVITE.
                timer.peer_allows_update = false;
                timer.refresh_at = Some(now);
            }
            _ => {
                // Refused: the session runs out unless a refresh succeeds.
                if timer.we_refresh {
                    timer.refresh_at = timer
                        .expire_at
                        .filter(|&e| e > now + Duration::from_secs(10))
                        .map(|_| now + Duration::from_secs(10));
                }
            }
        }
    }

    /// Send the refresh of a call whose turn it is.
    fn send_refresh(&mut self, now: Instant, id: CallId) {
        let Some(pos) = self.calls.iter().position(|c| c.id == id) else {
            return;
        };
        let Some(timer) = self.st.calls.get_mut(&id) else {
            return;
        };
        timer.refresh_at = None;
        if self.calls[pos].reinvite.is_some() || self.calls[pos].reinvite_retry.is_some() {
            // Our re-INVITE in flight refreshes the session when answered.
            timer.refresh_at = Some(now + Duration::from_secs(2));
            return;
        }
        if timer.peer_allows_update {
            let contact = self.contact_for_call(pos);
            let via = self.call_via(pos);
            let call = &mut self.calls[pos];
            let Some(dialog) = call.dialog.as_mut() else {
                return;
            };
            let mut req = dialog.request(Method::Update, &contact, None);
            req.headers.push_front("Via", via);
            let Some(peer) = call::dialog_peer(dialog, call.peer) else {
                return;
            };
            self.refresh_headers(id, &mut req);
            tracing::debug!(call = id, "session refresh by UPDATE");
            let t = self.txn.send_request(now, req, peer);
            self.owners.insert(t, Owner::Timers(id));
            self.st.txns.insert(t, TxnKind::Refresh);
        } else {
            let hold = self.calls[pos].state == CallState::Held;
            tracing::debug!(call = id, "session refresh by re-INVITE");
            self.st.refresh_reinvite.insert(id);
            if let Err(e) = self.send_reinvite(now, id, hold) {
                self.st.refresh_reinvite.remove(&id);
                tracing::info!(call = id, "session refresh not sent: {e}");
            }
        }
    }

    // ----- dispatch -----------------------------------------------------------

    /// A response to a transaction of these parts (PRACK, refresh UPDATE).
    pub(super) fn timers_response(
        &mut self,
        now: Instant,
        txn: TxnId,
        id: CallId,
        response: Response,
    ) {
        if response.code < 200 {
            return;
        }
        self.owners.remove(&txn);
        let Some(kind) = self.st.txns.remove(&txn) else {
            return;
        };
        if kind == TxnKind::Prack {
            if response.code >= 300 {
                tracing::info!(call = id, code = response.code, "PRACK refused");
            }
            return;
        }
        match response.code {
            481 | 408 => {
                let _ = self.send_bye(now, id);
                self.end_call(
                    id,
                    format!("the far end lost the call ({})", response.code),
                    Some(response.code),
                );
            }
            _ => self.refresh_answered(now, id, &response, false),
        }
    }

    /// A transaction of these parts timed out or could not be sent.
    pub(super) fn timers_failure(&mut self, now: Instant, txn: TxnId, id: CallId) {
        if self.st.txns.remove(&txn) == Some(TxnKind::Refresh) {
            let _ = self.send_bye(now, id);
            self.end_call(id, "no answer to our session refresh".into(), None);
        }
    }

    /// Timers of these parts: refreshes, expiry, reliable 180
    /// retransmission; and forgetting what ended calls left behind.
    pub(super) fn timers_timeout(&mut self, now: Instant) {
        let live = |s: CallState| matches!(s, CallState::Connected | CallState::Held);
        let mut expired = Vec::new();
        let mut refresh = Vec::new();
        for c in self.calls.iter().filter(|c| live(c.state)) {
            let Some(t) = self.st.calls.get(&c.id).filter(|t| t.active) else {
                continue;
            };
            if t.expire_at.is_some_and(|e| e <= now) {
                expired.push(c.id);
            } else if t.refresh_at.is_some_and(|r| r <= now) {
                refresh.push(c.id);
            }
        }
        for id in expired {
            tracing::info!(call = id, "session timer expired: hanging up");
            if let Some(t) = self.st.calls.get_mut(&id) {
                t.active = false;
            }
            let _ = self.send_bye(now, id);
            self.end_call(id, "session timer expired".into(), None);
        }
        for id in refresh {
            self.send_refresh(now, id);
        }
        self.prack_timeout(now);
    }

    pub(super) fn timers_poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut take = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        for c in self
            .calls
            .iter()
            .filter(|c| matches!(c.state, CallState::Connected | CallState::Held))
        {
            if let Some(timer) = self.st.calls.get(&c.id).filter(|t| t.active) {
                take(timer.refresh_at);
                take(timer.expire_at);
            }
        }
        take(self.prack_poll_timeout());
        t
    }

    /// Drop the state of calls that ended or were forgotten, and owners of
    /// transactions that are gone (a 2xx-answered INVITE leaves its owner
    /// behind otherwise). Run after the pump, when no event of those
    /// transactions is pending.
    pub(super) fn timers_gc(&mut self) {
        let Phone {
            calls,
            st,
            owners,
            txn,
            ..
        } = self;
        owners.retain(|t, _| txn.request(*t).is_some());
        let alive = |id: &CallId| calls.iter().any(|c| c.id == *id && !c.is_ended());
        st.calls.retain(|id, _| alive(id));
        st.prack.retain(|id, _| alive(id));
        st.auth.retain(|id, _| calls.iter().any(|c| c.id == *id));
        st.refresh_reinvite.retain(|id| alive(id));
        st.txns.retain(|t, _| owners.contains_key(t));
        st.auth_retried.retain(|t| owners.contains_key(t));
    }

    /// Sizes of the tables the long-call tests watch for leaks:
    /// (transactions, transaction owners, per-call timer/PRACK/auth state).
    pub fn table_sizes(&self) -> (usize, usize, usize) {
        let st = &self.st;
        (
            self.txn.len(),
            self.owners.len(),
            st.calls.len()
                + st.prack.len()
                + st.txns.len()
                + st.auth.len()
                + st.auth_retried.len()
                + st.refresh_reinvite.len(),
        )
    }
}
