//! Instant messages (SIP MESSAGE, RFC 3428), sans-IO: sending through the
//! account's server with digest retry and a delivery status per message,
//! and receiving out of dialog or inside a call's dialog. Also home of the
//! state the MWI ([`super::mwi`]) and INFO DTMF ([`super::info_dtmf`])
//! parts keep, and of the dispatch from the core to the three of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use crate::sip::auth::Authenticator;
use crate::sip::dialog;
use crate::sip::headers::TypedHeaders;
use crate::sip::message::{Headers, Method, Request, Response};
use crate::sip::transport::{Peer, TransportError, TransportKind};
use crate::sip::txn::TxnId;
use crate::sip::uri::{Host, Uri};

use super::call;
use super::types::{CallId, Command, CommandError, Event, Output, Reply, Resolved};
use super::{Owner, Phone, ResolveFor, info_dtmf, mwi};

/// Largest MESSAGE body we accept or send (RFC 3428 §7: larger ones are
/// answered 413). Below 64 KiB so that the 413 is reachable: a whole
/// message over 65 535 bytes is already refused by the parser (513).
pub const MAX_MESSAGE_BODY: usize = 60 * 1024;

/// Over UDP a MESSAGE must stay below 1300 bytes (RFC 3428 §9), so the
/// text alone may not exceed this.
pub const MAX_UDP_TEXT: usize = 1000;

/// What the MESSAGE, MWI and INFO DTMF parts keep in the phone.
#[derive(Default)]
pub(super) struct State {
    pub messages: HashMap<u64, OutMessage>,
    next_message: u64,
    pub mwi: HashMap<usize, mwi::Slot>,
    pub dtmf: HashMap<CallId, info_dtmf::InfoQueue>,
}

/// One MESSAGE we send, until its final response.
pub(super) struct OutMessage {
    account: Option<usize>,
    target: Uri,
    text: String,
    from_tag: String,
    call_id: String,
    cseq: u32,
    peer: Option<Peer>,
    local_ip: IpAddr,
    auth: Option<Authenticator>,
}

/// The host, port and transport a URI's own host is reached at (direct
/// requests without an account).
pub(super) fn uri_hop(uri: &Uri) -> (String, Option<u16>, TransportKind) {
    let transport = uri
        .param("transport")
        .flatten()
        .map(|t| match t.to_ascii_lowercase().as_str() {
            "tcp" => TransportKind::Tcp,
            "tls" => TransportKind::Tls,
            _ => TransportKind::Udp,
        })
        .unwrap_or(TransportKind::Udp);
    let host = match &uri.host {
        Host::Name(n) => n.clone(),
        Host::V4(a) => a.to_string(),
        Host::V6(a) => a.to_string(),
    };
    (host, uri.port, transport)
}

/// The media type of a Content-Type value, lower case, without parameters.
pub(super) fn media_type(headers: &Headers) -> Option<String> {
    headers.get("Content-Type").map(|t| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

/// An address for events: the display name (when any) and the URI,
/// without header parameters such as the tag.
fn show_addr(addr: Result<crate::sip::headers::NameAddr, crate::sip::parse::ParseError>) -> String {
    addr.map(|a| match a.display.filter(|d| !d.is_empty()) {
        Some(d) => format!("\"{}\" <{}>", d.replace(['"', '\\'], ""), a.uri),
        None => a.uri.to_string(),
    })
    .unwrap_or_else(|_| "unknown".into())
}

impl Phone {
    // ----- dispatch from the core ---------------------------------------

    /// Commands of this part (`None` when `command` is not one of them).
    pub(super) fn messaging_command(
        &mut self,
        now: Instant,
        command: Command,
    ) -> Result<Reply, CommandError> {
        match command {
            Command::Message {
                account,
                target,
                text,
            } => self.send_message_command(now, account.as_deref(), &target, &text),
            Command::Dtmf { call, digits } => self.dtmf_command(now, call, &digits),
            _ => Err(CommandError("not a messaging command".into())),
        }
    }

    /// A response for a transaction owned by this part.
    pub(super) fn messaging_response(
        &mut self,
        now: Instant,
        id: TxnId,
        owner: Owner,
        response: Response,
    ) {
        if response.code >= 200 {
            self.owners.remove(&id);
        }
        match owner {
            Owner::Message(m) => self.on_message_response(now, m, response),
            Owner::Subscribe(i) => self.on_subscribe_response(now, id, i, response),
            Owner::Info(c) => self.on_info_response(now, c, response),
            _ => {}
        }
    }

    /// A transaction of this part timed out or could not be sent.
    pub(super) fn messaging_failure(
        &mut self,
        now: Instant,
        id: TxnId,
        owner: Owner,
        error: Option<TransportError>,
        transport: bool,
    ) {
        match owner {
            Owner::Message(m) => {
                let reason = match (transport, error) {
                    (true, Some(e)) => format!("cannot reach the server: {e}"),
                    (true, None) => "cannot reach the server".into(),
                    (false, _) => "no answer from the server (timeout)".into(),
                };
                self.finish_message(m, "failed", None, reason);
            }
            Owner::Subscribe(i) => self.on_subscribe_failure(now, id, i),
            Owner::Info(c) => self.on_info_failure(c),
            _ => {}
        }
    }

    /// Timers of this part.
    pub(super) fn messaging_timeout(&mut self, now: Instant) {
        self.mwi_timeout(now);
    }

    pub(super) fn messaging_poll_timeout(&self) -> Option<Instant> {
        self.mwi_poll_timeout()
    }

    // ----- sending -------------------------------------------------------

    fn send_message_command(
        &mut self,
        now: Instant,
        account: Option<&str>,
        target: &str,
        text: &str,
    ) -> Result<Reply, CommandError> {
        if self.shutting_down {
            return Err(CommandError("the phone is shutting down".into()));
        }
        let account = match account {
            Some(id) => Some(self.account_indices(Some(id))?[0]),
            None => (!self.accounts.is_empty()).then_some(0),
        };
        let cfg = account
            .and_then(|i| self.accounts.get(i))
            .map(|a| a.config.clone());
        let uri = call::normalize_target(target, cfg.as_ref()).map_err(CommandError)?;
        if text.len() > MAX_MESSAGE_BODY {
            return Err(CommandError(format!(
                "the message is {} bytes: at most {MAX_MESSAGE_BODY}",
                text.len()
            )));
        }
        let transport = match &cfg {
            Some(c) => c.transport,
            None => uri_hop(&uri).2,
        };
        if transport == TransportKind::Udp && text.len() > MAX_UDP_TEXT {
            return Err(CommandError(format!(
                "the message is {} bytes: over UDP at most {MAX_UDP_TEXT} (RFC 3428 §9); use TCP or TLS for longer ones",
                text.len()
            )));
        }
        self.msg.next_message += 1;
        let id = self.msg.next_message;
        let from_tag = self.rng.tag();
        let call_id = format!("{:016x}@softline", self.rng.next_u64());
        self.msg.messages.insert(
            id,
            OutMessage {
                account,
                target: uri.clone(),
                text: text.to_string(),
                from_tag,
                call_id,
                cseq: 0,
                peer: None,
                local_ip: IpAddr::from([127, 0, 0, 1]),
                auth: None,
            },
        );
        let via_account = account
            .and_then(|i| self.accounts.get(i))
            .and_then(|a| a.current_target());
        match via_account {
            Some(t) => self.send_message(now, id, t),
            None => {
                let (host, port, transport) = match &cfg {
                    Some(c) => {
                        let hop = c.first_hop();
                        (hop.host, hop.port, c.transport)
                    }
                    None => uri_hop(&uri),
                };
                let token = self.new_resolve(ResolveFor::Message(id));
                self.outputs.push_back(Output::Resolve {
                    token,
                    host,
                    port,
                    transport,
                });
            }
        }
        Ok(Reply::Message { message: id })
    }

    /// The host name a message's server is verified as (TLS).
    pub(super) fn message_server_name(&self, id: u64) -> Option<String> {
        let m = self.msg.messages.get(&id)?;
        match m.account.and_then(|i| self.accounts.get(i)) {
            Some(a) => Some(a.config.first_hop().host),
            None => Some(uri_hop(&m.target).0),
        }
    }

    /// The resolver answered for a message.
    pub(super) fn message_resolved(
        &mut self,
        now: Instant,
        id: u64,
        result: Result<Vec<Resolved>, TransportError>,
    ) {
        match result {
            Ok(targets) if !targets.is_empty() => self.send_message(now, id, targets[0]),
            Ok(_) => self.finish_message(id, "failed", None, "no address for the server".into()),
            Err(e) => {
                self.finish_message(id, "failed", None, format!("cannot find the server: {e}"))
            }
        }
    }

    fn send_message(&mut self, now: Instant, id: u64, target: Resolved) {
        let (via, _) = self.via_value(target.peer.transport, target.local_ip);
        let ua = self.user_agent.clone();
        let Some(m) = self.msg.messages.get(&id) else {
            return;
        };
        let from = self.our_from(m.account, target.local_ip, &m.from_tag);
        let Some(m) = self.msg.messages.get_mut(&id) else {
            return;
        };
        m.peer = Some(target.peer);
        m.local_ip = target.local_ip;
        m.cseq = 1;
        let mut headers = Headers::new();
        headers.push("Via", via);
        headers.push("Max-Forwards", "70");
        headers.push("From", from);
        headers.push("To", format!("<{}>", m.target));
        headers.push("Call-ID", m.call_id.clone());
        headers.push("CSeq", "1 MESSAGE");
        headers.push("User-Agent", ua);
        let mut req = Request {
            method: Method::Message,
            uri: m.target.clone(),
            headers,
            body: Vec::new(),
        };
        dialog::set_body(
            &mut req.headers,
            &mut req.body,
            "text/plain;charset=UTF-8",
            m.text.clone().into_bytes(),
        );
        let t = self.txn.send_request(now, req, target.peer);
        self.owners.insert(t, Owner::Message(id));
        self.outputs.push_back(Output::Event(Event::MessageStatus {
            id,
            state: "sent",
            code: None,
            reason: String::new(),
        }));
    }

    /// Our From for a request outside any dialog: the account's address of
    /// record (with its display name), or `softline@ip` without account.
    pub(super) fn our_from(&self, account: Option<usize>, local_ip: IpAddr, tag: &str) -> String {
        match account.and_then(|i| self.accounts.get(i)) {
            Some(a) => {
                let display = a
                    .config
                    .display_name
                    .as_ref()
                    .map(|d| format!("\"{}\" ", d.replace(['"', '\\'], "")))
                    .unwrap_or_default();
                format!(
                    "{display}<sip:{}@{}>;tag={tag}",
                    a.config.username,
                    a.config.domain()
                )
            }
            None => {
                let host = match local_ip {
                    IpAddr::V4(a) => a.to_string(),
                    IpAddr::V6(a) => format!("[{a}]"),
                };
                format!("<sip:softline@{host}>;tag={tag}")
            }
        }
    }

    fn on_message_response(&mut self, now: Instant, id: u64, response: Response) {
        let code = response.code;
        match code {
            100..=199 => {}
            200..=299 => {
                if let Some(auth) = self.msg.messages.get_mut(&id).and_then(|m| m.auth.as_mut()) {
                    auth.on_success();
                }
                self.finish_message(id, "delivered", Some(code), response.reason.clone());
            }
            401 | 407 => {
                if let Err(why) = self.retry_message_with_auth(now, id, &response) {
                    self.finish_message(id, "failed", Some(code), why);
                }
            }
            _ => {
                let reason = response.reason.clone();
                self.finish_message(id, "failed", Some(code), reason);
            }
        }
    }

    /// 401/407: the same MESSAGE with credentials, CSeq + 1, new branch.
    fn retry_message_with_auth(
        &mut self,
        now: Instant,
        id: u64,
        response: &Response,
    ) -> Result<(), String> {
        let code = response.code;
        let (transport, ip) = match self.msg.messages.get(&id) {
            Some(m) => (
                m.peer.map(|p| p.transport).unwrap_or(TransportKind::Udp),
                m.local_ip,
            ),
            None => return Ok(()),
        };
        let (via, _) = self.via_value(transport, ip);
        let seed = self.rng.next_u64();
        let creds = self
            .msg
            .messages
            .get(&id)
            .and_then(|m| m.account)
            .and_then(|i| self.accounts.get(i))
            .map(|a| a.credentials());
        let ua = self.user_agent.clone();
        let from = match self.msg.messages.get(&id) {
            Some(m) => self.our_from(m.account, m.local_ip, &m.from_tag),
            None => return Ok(()),
        };
        let Some(m) = self.msg.messages.get_mut(&id) else {
            return Ok(());
        };
        let Some(creds) = creds else {
            return Err(format!(
                "the server asks for a password ({code}) and no account is set"
            ));
        };
        let auth = m.auth.get_or_insert_with(|| Authenticator::new(creds));
        auth.on_challenge(response)
            .map_err(|e| format!("password rejected for the message ({code}): {e}"))?;
        m.cseq += 1;
        let mut headers = Headers::new();
        headers.push("Via", via);
        headers.push("Max-Forwards", "70");
        headers.push("From", from);
        headers.push("To", format!("<{}>", m.target));
        headers.push("Call-ID", m.call_id.clone());
        headers.push("CSeq", format!("{} MESSAGE", m.cseq));
        headers.push("User-Agent", ua);
        let mut req = Request {
            method: Method::Message,
            uri: m.target.clone(),
            headers,
            body: Vec::new(),
        };
        dialog::set_body(
            &mut req.headers,
            &mut req.body,
            "text/plain;charset=UTF-8",
            m.text.clone().into_bytes(),
        );
        auth.authorize(&mut req, seed);
        let Some(peer) = m.peer else {
            return Err("no server to send to".into());
        };
        let t = self.txn.send_request(now, req, peer);
        self.owners.insert(t, Owner::Message(id));
        Ok(())
    }

    fn finish_message(&mut self, id: u64, state: &'static str, code: Option<u16>, reason: String) {
        if self.msg.messages.remove(&id).is_none() {
            return;
        }
        tracing::info!(message = id, state, ?code, "MESSAGE {reason}");
        self.outputs.push_back(Output::Event(Event::MessageStatus {
            id,
            state,
            code,
            reason,
        }));
    }

    // ----- receiving -----------------------------------------------------

    /// An incoming MESSAGE (out of dialog, or inside a call's dialog).
    pub(super) fn on_message(&mut self, now: Instant, id: TxnId, request: Request) {
        if request.body.len() > MAX_MESSAGE_BODY {
            self.respond(now, id, &request, 413, &[]);
            return;
        }
        let in_dialog = request
            .headers
            .to_addr()
            .map(|a| a.tag().is_some())
            .unwrap_or(false);
        let (call, account) = if in_dialog {
            // A call on its way out (hung up, transferred, replaced)
            // takes no more messages in its dialog.
            match self.calls.iter().find(|c| c.dialog_matches(&request)) {
                Some(c) if !c.is_retiring() => (Some(c.id), c.account),
                _ => {
                    self.respond(now, id, &request, 481, &[]);
                    return;
                }
            }
        } else {
            (None, call::account_for(&request, &self.accounts))
        };
        let content_type = media_type(&request.headers).unwrap_or_else(|| "text/plain".into());
        let text = if content_type == "text/plain" {
            String::from_utf8_lossy(&request.body).into_owned()
        } else {
            String::new()
        };
        let event = Event::MessageReceived {
            from: show_addr(request.headers.from_addr()),
            to: show_addr(request.headers.to_addr()),
            account: account
                .and_then(|i| self.accounts.get(i))
                .map(|a| a.config.id.clone()),
            call,
            content_type,
            text,
        };
        self.respond(now, id, &request, 200, &[]);
        tracing::info!(?call, "MESSAGE received ({} bytes)", request.body.len());
        self.outputs.push_back(Output::Event(event));
    }
}
