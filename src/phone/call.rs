//! One call (an INVITE dialog usage) as the phone core sees it.

use std::net::{IpAddr, SocketAddr};

use crate::config::AccountConfig;
use crate::sip::auth::{Authenticator, Credentials};
use crate::sip::dialog::{self, ALLOW, Dialog};
use crate::sip::headers::TypedHeaders;
use crate::sip::message::{Headers, Method, Request, Response, reason_phrase};
use crate::sip::parse::ParseError;
use crate::sip::transport::{Peer, TransportKind};
use crate::sip::txn::TxnId;
use crate::sip::uri::{Host, Scheme, Uri};

use super::account::Account;
use super::media::CallMedia;
use super::types::{CallId, CallStatus, Direction};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// Outgoing: looking up the called host.
    Resolving,
    /// Outgoing: INVITE sent, no ringing yet.
    Calling,
    /// Ringing (outgoing: 180 received; incoming: waiting for the user).
    Ringing,
    /// Outgoing: early media (183 / provisional with SDP).
    Early,
    Connected,
    /// We put the call on hold (our re-INVITE with sendonly was accepted).
    Held,
    /// Hangup sent (CANCEL or BYE), waiting for the end.
    Ending,
    Ended,
}

impl CallState {
    fn name(self) -> &'static str {
        match self {
            CallState::Resolving | CallState::Calling => "calling",
            CallState::Ringing => "ringing",
            CallState::Early => "early",
            CallState::Connected => "connected",
            CallState::Held => "held",
            CallState::Ending => "ending",
            CallState::Ended => "ended",
        }
    }
}

pub struct Call {
    pub id: CallId,
    pub account: Option<usize>,
    pub direction: Direction,
    pub state: CallState,
    /// Called URI (outgoing) or caller's From (incoming), for display.
    pub remote: String,
    pub target: Uri,
    pub cause: Option<String>,
    pub status_code: Option<u16>,
    /// Our INVITE (outgoing) or theirs (incoming), as last sent/received.
    pub invite: Option<Request>,
    pub invite_txn: Option<TxnId>,
    pub server_txn: Option<TxnId>,
    pub peer: Option<Peer>,
    pub local_ip: IpAddr,
    pub local_tag: String,
    pub dialog: Option<Dialog>,
    pub got_provisional: bool,
    pub cancel_pending: bool,
    /// After our CANCEL: when to give up waiting for the INVITE's final response.
    pub cancel_deadline: Option<std::time::Instant>,
    pub acked: bool,
    auth: Option<Authenticator>,
    /// RTP port, offers and answers, what the runtime plays.
    pub media: CallMedia,
    /// Outgoing: resolved, waiting for the RTP port to send the INVITE.
    pub pending_target: Option<super::types::Resolved>,
    /// Incoming: answered by the user, waiting for the RTP port.
    pub answer_pending: bool,
    /// Our re-INVITE in flight: Some(true) = hold, Some(false) = resume.
    pub reinvite: Option<bool>,
    /// After a 491 (glare): re-send our re-INVITE at this instant.
    pub reinvite_retry: Option<(std::time::Instant, bool)>,
    /// The far end put us on hold (its offer was sendonly/inactive).
    pub remote_hold: bool,
    /// Incoming: answer by itself at this instant (auto-answer), and why.
    pub auto_answer: Option<(std::time::Instant, String)>,
    /// Why the call was answered automatically, once it was.
    pub auto_answered: Option<String>,
    /// Its part in a transfer (REFER, NOTIFY, Replaces).
    pub transfer: super::transfer::CallTransfer,
}

impl Call {
    /// A call with nothing exchanged yet; the constructors below fill in
    /// what each direction knows from the start.
    #[allow(clippy::too_many_arguments)]
    fn fresh(
        id: CallId,
        account: Option<usize>,
        direction: Direction,
        state: CallState,
        remote: String,
        target: Uri,
        local_tag: String,
        local_ip: IpAddr,
    ) -> Call {
        Call {
            id,
            account,
            direction,
            state,
            remote,
            target,
            cause: None,
            status_code: None,
            invite: None,
            invite_txn: None,
            server_txn: None,
            peer: None,
            local_ip,
            local_tag,
            dialog: None,
            got_provisional: false,
            cancel_pending: false,
            cancel_deadline: None,
            acked: false,
            auth: None,
            media: CallMedia::new(id),
            pending_target: None,
            answer_pending: false,
            reinvite: None,
            reinvite_retry: None,
            remote_hold: false,
            auto_answer: None,
            auto_answered: None,
            transfer: Default::default(),
        }
    }

    pub fn outgoing(id: CallId, account: Option<usize>, target: Uri, local_tag: String) -> Call {
        let remote = target.to_string();
        let loopback = IpAddr::from([127, 0, 0, 1]);
        Call::fresh(
            id,
            account,
            Direction::Outgoing,
            CallState::Resolving,
            remote,
            target,
            local_tag,
            loopback,
        )
    }

    pub fn incoming(
        id: CallId,
        account: Option<usize>,
        invite: Request,
        txn: TxnId,
        source: Peer,
        local_tag: String,
        local_ip: IpAddr,
    ) -> Call {
        // The caller's address (with the display name when there is one),
        // without header parameters such as the tag.
        let remote = invite
            .headers
            .from_addr()
            .map(|f| match f.display.filter(|d| !d.is_empty()) {
                Some(d) => format!("\"{}\" <{}>", d.replace(['"', '\\'], ""), f.uri),
                None => f.uri.to_string(),
            })
            .unwrap_or_else(|_| "unknown".into());
        let target = invite.uri.clone();
        Call {
            invite: Some(invite),
            server_txn: Some(txn),
            peer: Some(source),
            ..Call::fresh(
                id,
                account,
                Direction::Incoming,
                CallState::Ringing,
                remote,
                target,
                local_tag,
                local_ip,
            )
        }
    }

    pub fn is_ended(&self) -> bool {
        self.state == CallState::Ended
    }

    pub fn end(&mut self, cause: String, code: Option<u16>) {
        self.state = CallState::Ended;
        self.reinvite = None;
        self.reinvite_retry = None;
        self.auto_answer = None;
        self.cause = Some(cause);
        if code.is_some() {
            self.status_code = code;
        }
    }

    /// Build the initial INVITE (RFC 3261 §8.1.1) with the SDP offer `sdp`.
    #[allow(clippy::too_many_arguments)]
    pub fn build_invite(
        &mut self,
        account: Option<&AccountConfig>,
        via: &str,
        contact: &str,
        call_id: &str,
        user_agent: &str,
        sdp: String,
    ) -> Request {
        let from = match account {
            Some(a) => {
                let display = a
                    .display_name
                    .as_ref()
                    .map(|d| format!("\"{}\" ", d.replace(['"', '\\'], "")))
                    .unwrap_or_default();
                format!(
                    "{display}<sip:{}@{}>;tag={}",
                    a.username,
                    a.domain(),
                    self.local_tag
                )
            }
            // A direct IP call has no address of record: our Contact (with
            // its port) is the address the far end can call back.
            None if contact.starts_with('<') && contact.ends_with('>') => {
                format!("{contact};tag={}", self.local_tag)
            }
            None => format!(
                "<sip:softline@{}>;tag={}",
                ip_text(self.local_ip),
                self.local_tag
            ),
        };
        let mut headers = Headers::new();
        headers.push("Via", via.to_string());
        headers.push("Max-Forwards", "70");
        headers.push("From", from);
        headers.push("To", format!("<{}>", self.target));
        headers.push("Call-ID", call_id.to_string());
        headers.push("CSeq", "1 INVITE");
        headers.push("Contact", contact.to_string());
        headers.push("Allow", ALLOW);
        headers.push("User-Agent", user_agent.to_string());
        for (name, value) in &self.transfer.invite_headers {
            headers.push(name.clone(), value.clone());
        }
        let mut req = Request {
            method: Method::Invite,
            uri: self.target.clone(),
            headers,
            body: Vec::new(),
        };
        dialog::set_body(
            &mut req.headers,
            &mut req.body,
            "application/sdp",
            sdp.into_bytes(),
        );
        self.state = CallState::Calling;
        self.invite = Some(req.clone());
        req
    }

    /// 401/407 to our INVITE: the same INVITE with credentials, CSeq + 1 and
    /// a new branch (RFC 3261 §22.2), at most one retry per challenge.
    pub fn retry_with_auth(
        &mut self,
        response: &Response,
        credentials: Option<Credentials>,
        via: &str,
        seed: u64,
    ) -> Result<Request, String> {
        let code = response.code;
        let Some(creds) = credentials else {
            return Err(format!(
                "the server asks for a password ({code}) and no account is set"
            ));
        };
        let auth = self.auth.get_or_insert_with(|| Authenticator::new(creds));
        auth.on_challenge(response)
            .map_err(|e| format!("password rejected for the call ({code}): {e}"))?;
        let Some(mut invite) = self.invite.clone() else {
            return Err("no INVITE to retry".into());
        };
        let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(1);
        invite.headers.set("CSeq", format!("{} INVITE", seq + 1));
        invite.headers.remove("Via");
        invite.headers.push_front("Via", via.to_string());
        invite.headers.remove("Authorization");
        invite.headers.remove("Proxy-Authorization");
        auth.authorize(&mut invite, seed);
        self.invite = Some(invite.clone());
        Ok(invite)
    }

    /// Accept a ringing incoming call: the 200 with `sdp` (our answer to
    /// the INVITE's offer, or our offer when it had none).
    pub fn accept(&mut self, contact: &str, sdp: String) -> Result<(Response, TxnId), String> {
        let (Some(invite), Some(txn)) = (self.invite.clone(), self.server_txn) else {
            return Err("call has no INVITE".into());
        };
        let dialog =
            Dialog::uas(&invite, &self.local_tag).map_err(|e| format!("cannot answer: {e}"))?;
        let mut resp = dialog::response_to(&invite, 200, Some(&self.local_tag));
        for rr in invite.headers.get_all("Record-Route") {
            resp.headers.push("Record-Route", rr.to_string());
        }
        resp.headers.push("Contact", contact.to_string());
        resp.headers.push("Allow", ALLOW);
        dialog::set_body(
            &mut resp.headers,
            &mut resp.body,
            "application/sdp",
            sdp.into_bytes(),
        );
        self.dialog = Some(dialog);
        self.state = CallState::Connected;
        self.status_code = Some(200);
        Ok((resp, txn))
    }

    /// 200 to a re-INVITE inside our dialog, carrying `sdp` (our answer, or
    /// our offer when the re-INVITE had none).
    pub fn reinvite_response(&mut self, request: &Request, contact: &str, sdp: String) -> Response {
        let mut resp = dialog::response_to(request, 200, None);
        resp.headers.push("Contact", contact.to_string());
        if let Some(seq) = request.headers.cseq().ok().map(|c| c.seq)
            && let Some(d) = self.dialog.as_mut()
        {
            d.remote_seq = Some(seq);
        }
        dialog::set_body(
            &mut resp.headers,
            &mut resp.body,
            "application/sdp",
            sdp.into_bytes(),
        );
        resp
    }

    /// True when an in-dialog request (BYE, ACK, re-INVITE) is for this call.
    pub fn dialog_matches(&self, request: &Request) -> bool {
        if self.state == CallState::Ended {
            return false;
        }
        match &self.dialog {
            Some(d) => d.matches(request),
            None => {
                // ACK for our 2xx before the dialog was stored is impossible;
                // a BYE before answer matches nothing (481).
                false
            }
        }
    }

    /// True when the call's dialog takes no new business (INFO, MESSAGE,
    /// DTMF): we sent its BYE (a hang-up, a completed transfer, a call
    /// replaced by RFC 3891), or as transferee the new call was answered
    /// and only the transferor's BYE (or our own fallback one) is awaited.
    pub fn is_retiring(&self) -> bool {
        matches!(self.state, CallState::Ending | CallState::Ended) || self.transfer.bye_at.is_some()
    }

    /// True when a response (e.g. a retransmitted 2xx) belongs to our INVITE.
    pub fn matches_response(&self, response: &Response) -> bool {
        let Some(invite) = &self.invite else {
            return false;
        };
        let same_call = invite.headers.call_id().ok() == response.headers.call_id().ok();
        let our_tag = response
            .headers
            .from_addr()
            .ok()
            .and_then(|f| f.tag().map(str::to_string))
            == Some(self.local_tag.clone());
        self.direction == Direction::Outgoing && same_call && our_tag
    }

    pub fn status(&self, accounts: &[Account]) -> CallStatus {
        CallStatus {
            id: self.id,
            account: self
                .account
                .and_then(|i| accounts.get(i))
                .map(|a| a.config.id.clone()),
            direction: self.direction,
            state: self.state.name(),
            remote: self.remote.clone(),
            cause: self.cause.clone(),
            status_code: self.status_code,
            remote_hold: self.remote_hold,
            auto_answered: self.auto_answered.clone(),
            line: None,
            ignored: false,
            transfer: self.transfer.status.clone(),
            conference: None,
        }
    }
}

fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// Copy the INVITE's credentials into its ACK (RFC 3261 §22.1: an ACK for
/// a 2xx carries the same Authorization/Proxy-Authorization).
pub fn copy_credentials(invite: &Request, ack: &mut Request) {
    for name in ["Authorization", "Proxy-Authorization"] {
        for v in invite.headers.get_all(name) {
            ack.headers.push(name, v.to_string());
        }
    }
}

/// CANCEL for an INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From,
/// To, CSeq number and top Via; Route headers copied.
pub fn build_cancel(invite: &Request) -> Request {
    let mut headers = Headers::new();
    if let Some(via) = invite.headers.get("Via") {
        headers.push("Via", via.to_string());
    }
    for r in invite.headers.get_all("Route") {
        headers.push("Route", r.to_string());
    }
    headers.push("Max-Forwards", "70");
    for name in ["From", "To", "Call-ID"] {
        if let Some(v) = invite.headers.get(name) {
            headers.push(name, v.to_string());
        }
    }
    let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(1);
    headers.push("CSeq", format!("{seq} CANCEL"));
    headers.push("Content-Length", "0");
    Request {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        headers,
        body: Vec::new(),
    }
}

/// Where in-dialog requests go: the next hop's address when it is an IP
/// literal, else the peer the dialog was set up through.
pub fn dialog_peer(dialog: &Dialog, fallback: Option<Peer>) -> Option<Peer> {
    let hop = dialog.next_hop();
    let transport = hop
        .param("transport")
        .flatten()
        .map(|t| match t.to_ascii_lowercase().as_str() {
            "tcp" => TransportKind::Tcp,
            "tls" => TransportKind::Tls,
            _ => TransportKind::Udp,
        })
        .or(fallback.map(|p| p.transport))
        .unwrap_or(TransportKind::Udp);
    let transport = if hop.scheme == Scheme::Sips {
        TransportKind::Tls
    } else {
        transport
    };
    let ip: Option<IpAddr> = match &hop.host {
        Host::V4(a) => Some(IpAddr::V4(*a)),
        Host::V6(a) => Some(IpAddr::V6(*a)),
        Host::Name(_) => None,
    };
    match ip {
        Some(ip) => Some(Peer {
            transport,
            addr: SocketAddr::new(ip, hop.port.unwrap_or(transport.default_port())),
        }),
        None => fallback,
    }
}

/// The account an incoming INVITE is for: the one whose user name is in
/// the Request-URI, else the first.
pub fn account_for(invite: &Request, accounts: &[Account]) -> Option<usize> {
    let user = invite.uri.user.as_deref();
    accounts
        .iter()
        .position(|a| Some(a.config.username.as_str()) == user)
        .or((!accounts.is_empty()).then_some(0))
}

/// Our IP for an incoming call: the Request-URI's host when it is an IP
/// (the caller reached us there), else the account's local address.
pub fn local_ip_for_incoming(
    invite: &Request,
    accounts: &[Account],
    account: Option<usize>,
) -> IpAddr {
    match &invite.uri.host {
        Host::V4(a) if !a.is_unspecified() => IpAddr::V4(*a),
        Host::V6(a) if !a.is_unspecified() => IpAddr::V6(*a),
        _ => account
            .and_then(|i| accounts.get(i))
            .and_then(Account::current_target)
            .map(|t| t.local_ip)
            .unwrap_or(IpAddr::from([127, 0, 0, 1])),
    }
}

/// Turn what a user typed or pasted into a URI: `tel:`/`callto:` prefixes,
/// spaces and dashes in numbers, bare numbers at the account's domain.
pub fn normalize_target(input: &str, account: Option<&AccountConfig>) -> Result<Uri, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty number or address".into());
    }
    let lower = s.to_ascii_lowercase();
    let s = if lower.starts_with("tel:") || lower.starts_with("callto:") {
        s.split_once(':')
            .map(|(_, r)| r)
            .unwrap_or(s)
            .trim_start_matches("//")
    } else {
        s
    };
    let lower = s.to_ascii_lowercase();
    let text = if lower.starts_with("sip:") || lower.starts_with("sips:") {
        s.to_string()
    } else if s.contains('@') {
        format!("sip:{s}")
    } else {
        let is_number = s
            .chars()
            .all(|c| c.is_ascii_digit() || " -().+*#".contains(c));
        let number: String = if is_number {
            s.chars().filter(|c| !" -().".contains(*c)).collect()
        } else {
            s.to_string()
        };
        match account {
            Some(a) => format!("sip:{number}@{}", a.domain()),
            None if is_number => {
                return Err(format!(
                    "`{input}` is a number but no account is set: use sip:{number}@HOST"
                ));
            }
            None => format!("sip:{number}"),
        }
    };
    Uri::parse(&text).map_err(|e| format!("`{input}` is not a valid SIP address: {e}"))
}

/// A 400 for a malformed request when enough of it is readable to route a
/// response (Via, From, To, Call-ID, CSeq lines present); `None` otherwise.
/// The reason phrase names the problem.
pub fn bad_request_response(data: &[u8], error: &ParseError) -> Option<Response> {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let first = lines.next()?.trim();
    // Only requests get answers; a malformed response is dropped.
    if first.starts_with("SIP/") || !first.contains("SIP/") {
        return None;
    }
    // An ACK is never answered (RFC 3261 §17).
    if first
        .split_whitespace()
        .next()
        .is_some_and(|m| m.eq_ignore_ascii_case("ACK"))
    {
        return None;
    }
    let mut headers = Headers::new();
    let mut seen = [false; 5];
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let canon = crate::sip::message::canonical_name(name.trim());
        for (i, want) in ["Via", "From", "To", "Call-ID", "CSeq"].iter().enumerate() {
            if canon.eq_ignore_ascii_case(want) {
                headers.push(want.to_string(), value.trim().to_string());
                seen[i] = true;
            }
        }
    }
    if !seen.iter().all(|s| *s) {
        return None;
    }
    let code = error.status_code();
    let why: String = error
        .to_string()
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    headers.push("Content-Length", "0");
    Some(Response {
        code,
        reason: format!("{} ({why})", reason_phrase(code)),
        headers,
        body: Vec::new(),
    })
}
