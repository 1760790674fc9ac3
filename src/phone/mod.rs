//! The phone core (sans-IO): accounts with their registrations, calls with
//! their dialogs, and the policy between them. The runtime feeds it bytes,
//! resolver answers, commands and timer expiries, with the current time;
//! it answers with [`Output`]s: bytes to send, names to resolve, events.
//! Nothing here reads the clock, opens a socket or spawns a task.

mod account;
mod autoanswer;
mod call;
mod conference;
mod dialog_auth;
mod history;
mod incoming;
mod info_dtmf;
mod lines;
mod media;
mod messaging;
mod mwi;
mod prack;
mod rng;
mod session_timer;
mod transfer;
pub mod types;
mod update;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::config::{AccountConfig, Config};
use crate::sip::dialog::{self, ALLOW};
use crate::sip::headers::{TypedHeaders, stamp_received};
use crate::sip::message::{Message, Method, Request, Response};
use crate::sip::parse::ParseError;
use crate::sip::transport::{Peer, TransportError, TransportKind};
use crate::sip::txn::{TimerConfig, TransactionLayer, TxnEvent, TxnId, TxnOutput};
use crate::sip::uri::Host;

use account::Account;
use call::{Call, CallState};
use rng::Rng;
pub use types::*;

pub use conference::Tone;
pub use history::{Disposition, HistoryEntry};
pub use incoming::PhoneSettings;
pub use media::codec_spec;

/// The auto-answer policy named by a config value, if it is one.
pub fn auto_answer_policy(value: &str) -> Option<autoanswer::Policy> {
    autoanswer::Policy::parse(value)
}

/// Who a client transaction belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Register(usize),
    Invite(CallId),
    Cancel(CallId),
    Bye(CallId),
    /// Our re-INVITE (hold / resume).
    Reinvite(CallId),
    /// BYE ending a dialog we did not want (a second fork's 2xx).
    Stray,
    /// Our REFER (transfer) in the call's dialog.
    Refer(CallId),
    /// Our NOTIFY of a transfer's progress in the call's dialog.
    Notify(CallId),
    /// An instant message (MESSAGE) by its id.
    Message(u64),
    /// The MWI SUBSCRIBE of an account.
    Subscribe(usize),
    /// INFO carrying a DTMF digit in a call.
    Info(CallId),
    /// PRACK or session-refresh UPDATE of a call (`session_timer.rs`).
    Timers(CallId),
}

/// Extensions we support (`Require` of anything else gets 420).
const SUPPORTED: &[&str] = &["replaces", "100rel", "timer"];

/// What a pending DNS lookup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResolveFor {
    Account(usize),
    Call(CallId),
    Message(u64),
}

/// Ended calls kept in the status for the faces to read.
const ENDED_CALLS_KEPT: usize = 16;

/// The phone core. See the module documentation.
pub struct Phone {
    user_agent: String,
    media_cfg: crate::config::MediaSection,
    /// Cryptographic generator for SRTP keys (seeded by the runtime with
    /// OS randomness, see [`Phone::set_key_seed`]).
    key_rng: rand::rngs::StdRng,
    local: LocalAddrs,
    txn: TransactionLayer,
    timers: TimerConfig,
    accounts: Vec<Account>,
    calls: Vec<Call>,
    owners: HashMap<TxnId, Owner>,
    resolving: HashMap<u64, ResolveFor>,
    peer_errors: HashMap<Peer, TransportError>,
    server_names: HashMap<Peer, String>,
    keepalive_peers: Vec<Peer>,
    outputs: VecDeque<Output>,
    rng: Rng,
    next_call_id: CallId,
    next_token: u64,
    shutting_down: bool,
    /// DND, forwarding, lines (src/phone/incoming.rs).
    settings: PhoneSettings,
    /// Calls' lines and history instants (src/phone/lines.rs).
    lines: lines::Lines,
    /// `[phone] accept_refer`: act on a REFER from the far end.
    accept_refer: bool,
    /// MESSAGE, MWI and INFO DTMF state (see `messaging.rs`).
    msg: messaging::State,
    /// Local conference and local tones (see `conference.rs`).
    conf: conference::State,
    /// Session timers, PRACK, in-dialog digest retries (`session_timer.rs`).
    st: session_timer::State,
}

impl Phone {
    /// A phone for `config`, listening on `local`. `seed` feeds tags,
    /// branches, Call-IDs and backoff jitter.
    pub fn new(config: &Config, local: LocalAddrs, seed: u64) -> Phone {
        let timers = TimerConfig {
            t1: Duration::from_millis(config.sip.t1_ms),
            t2: Duration::from_millis(config.sip.t2_ms),
            t4: Duration::from_millis(config.sip.t4_ms),
        };
        let mut rng = Rng::new(seed);
        let accounts = config
            .accounts
            .iter()
            .map(|a| Account::new(a.clone(), rng.next_u64()))
            .collect();
        Phone {
            user_agent: config.sip.user_agent.clone(),
            media_cfg: config.media.clone(),
            key_rng: rand::SeedableRng::seed_from_u64(seed ^ 0x5354_5250_4b45_5953),
            local,
            txn: TransactionLayer::new(timers),
            timers,
            accounts,
            calls: Vec::new(),
            owners: HashMap::new(),
            resolving: HashMap::new(),
            peer_errors: HashMap::new(),
            server_names: HashMap::new(),
            keepalive_peers: Vec::new(),
            outputs: VecDeque::new(),
            rng,
            next_call_id: 1,
            next_token: 1,
            shutting_down: false,
            settings: PhoneSettings::from_config(config),
            lines: lines::Lines {
                hold_on_switch: config.phone.hold_on_line_switch,
                ..Default::default()
            },
            accept_refer: config.phone.accept_refer,
            msg: messaging::State::default(),
            conf: conference::State::default(),
            st: session_timer::State::new(config),
        }
    }

    /// Start: register the accounts configured to register.
    pub fn start(&mut self, now: Instant) {
        for i in 0..self.accounts.len() {
            if self.accounts[i].config.register {
                self.register_account(now, i);
            }
            self.emit_account(i);
        }
        self.pump(now);
    }

    // ----- inputs --------------------------------------------------------

    /// Seed the SRTP key generator with 32 bytes of OS randomness (the
    /// runtime does this once at start; tests may leave the default).
    pub fn set_key_seed(&mut self, seed: [u8; 32]) {
        self.key_rng = rand::SeedableRng::from_seed(seed);
    }

    /// The SRTP policy of `account`'s calls (or of direct calls).
    fn srtp_setup_policy(&self, account: Option<usize>) -> crate::sdp::SrtpPolicy {
        crate::config::srtp_policy(
            account
                .and_then(|i| self.accounts.get(i))
                .and_then(|a| a.config.srtp.as_deref())
                .unwrap_or(&self.media_cfg.srtp),
        )
    }

    /// The call's SRTP setup: made once per call, then reused by every
    /// offer and answer of the call (re-INVITEs keep the same key, so the
    /// far end's SRTP state — rollover counter, replay window — stays valid).
    fn call_srtp(&mut self, pos: usize) -> media::SrtpSetup {
        if let Some(s) = self.calls.get(pos).and_then(|c| c.media.srtp.clone()) {
            return s;
        }
        let account = self.calls.get(pos).and_then(|c| c.account);
        let setup = self.srtp_setup(account);
        if let Some(c) = self.calls.get_mut(pos) {
            c.media.srtp = Some(setup.clone());
        }
        setup
    }

    /// SRTP policy and fresh keys for a call of `account`.
    fn srtp_setup(&mut self, account: Option<usize>) -> media::SrtpSetup {
        let policy = self.srtp_setup_policy(account);
        let rng = &mut self.key_rng;
        media::SrtpSetup::new(policy, &mut || rand::RngCore::next_u64(rng))
    }

    /// The runtime bound (or failed to bind) the RTP port of `call`, as asked
    /// by [`Output::OpenMedia`].
    pub fn handle_media_opened(&mut self, now: Instant, call: CallId, result: Result<u16, String>) {
        let Some(pos) = self.calls.iter().position(|c| c.id == call) else {
            return;
        };
        match result {
            Ok(port) => {
                self.calls[pos].media.port = Some(port);
                if let Some(target) = self.calls[pos].pending_target.take() {
                    self.send_invite(now, call, target);
                }
                if std::mem::take(&mut self.calls[pos].answer_pending)
                    && let Err(e) = self.answer(now, Some(call))
                {
                    tracing::info!("answer failed: {e}");
                }
            }
            Err(why) => {
                if let Some(txn) = self.calls[pos]
                    .server_txn
                    .filter(|_| self.calls[pos].state == CallState::Ringing)
                    && let Some(invite) = self.calls[pos].invite.clone()
                {
                    let resp = dialog::response_to(&invite, 500, Some(&self.calls[pos].local_tag));
                    self.txn.send_response(now, txn, resp);
                }
                self.calls[pos].media.requested = false;
                self.end_call(call, format!("no RTP port for the call: {why}"), None);
            }
        }
        self.pump(now);
    }

    /// Bytes of one SIP message arrived from `peer` on local address `_local`
    /// (unused until multi-homed hosts pick the Contact per interface).
    pub fn handle_received(&mut self, now: Instant, peer: Peer, _local: SocketAddr, data: &[u8]) {
        match Message::parse(data) {
            Ok(mut message) => {
                if let Message::Request(req) = &mut message {
                    // Responses then carry where the request really came
                    // from (RFC 3261 §18.2.1, RFC 3581).
                    if let Err(e) = stamp_received(&mut req.headers, peer.addr) {
                        tracing::debug!("cannot stamp the Via: {e}");
                    }
                }
                self.txn.handle_message(now, message, peer);
            }
            Err(error) => self.bad_message(peer, data, &error),
        }
        self.pump(now);
    }

    /// The runtime failed to reach `peer` or lost the connection to it.
    pub fn handle_transport_error(&mut self, now: Instant, peer: Peer, error: TransportError) {
        self.peer_errors.insert(peer, error.clone());
        self.txn.handle_transport_error(now, peer);
        // A registration over a stream whose connection dropped re-registers.
        if peer.transport.is_reliable() {
            for i in 0..self.accounts.len() {
                if self.accounts[i].current_peer() == Some(peer) {
                    self.accounts[i].connection_lost(now, error.clone());
                }
            }
        }
        self.pump(now);
    }

    /// Answer to an [`Output::Resolve`].
    pub fn handle_resolved(
        &mut self,
        now: Instant,
        token: u64,
        result: Result<Vec<Resolved>, TransportError>,
    ) {
        let Some(purpose) = self.resolving.remove(&token) else {
            return;
        };
        if let Ok(targets) = &result {
            for t in targets {
                if let Some(name) = self.pending_server_name(purpose)
                    && name.parse::<IpAddr>().is_err()
                {
                    self.server_names.insert(t.peer, name);
                }
            }
        }
        match purpose {
            ResolveFor::Account(i) => {
                let seed = self.rng.next_u64();
                let local = self.local;
                let ua = self.user_agent.clone();
                if let Some(acc) = self.accounts.get_mut(i) {
                    acc.resolved(now, result, local, &ua, seed);
                }
            }
            ResolveFor::Call(id) => match result {
                Ok(targets) if !targets.is_empty() => {
                    self.send_invite(now, id, targets[0]);
                }
                Ok(_) => self.end_call(id, "no address for the called host".into(), None),
                Err(e) => self.end_call(id, format!("cannot reach the called host: {e}"), None),
            },
            ResolveFor::Message(id) => self.message_resolved(now, id, result),
        }
        self.pump(now);
    }

    /// A timer set by [`Phone::poll_timeout`] expired (late calls are fine).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.txn.handle_timeout(now);
        for acc in &mut self.accounts {
            acc.handle_timeout(now);
        }
        let given_up: Vec<CallId> = self
            .calls
            .iter()
            .filter(|c| c.state == CallState::Ending && c.cancel_deadline.is_some_and(|d| d <= now))
            .map(|c| c.id)
            .collect();
        for id in given_up {
            self.end_call(
                id,
                "cancelled (no final response from the server)".into(),
                None,
            );
        }
        let due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|c| {
                c.state == CallState::Ringing
                    && c.auto_answer.as_ref().is_some_and(|(at, _)| *at <= now)
            })
            .map(|c| c.id)
            .collect();
        for id in due {
            if let Some(c) = self.calls.iter_mut().find(|c| c.id == id)
                && let Some((_, reason)) = c.auto_answer.take()
            {
                tracing::info!(call = id, "auto-answering: {reason}");
                c.auto_answered = Some(reason);
            }
            if let Err(e) = self.answer(now, Some(id)) {
                tracing::info!("auto-answer failed: {e}");
            }
        }
        let retries: Vec<(CallId, bool)> = self
            .calls
            .iter_mut()
            .filter(|c| c.reinvite_retry.is_some_and(|(at, _)| at <= now))
            .filter(|c| {
                matches!(c.state, CallState::Connected | CallState::Held) && c.reinvite.is_none()
            })
            .filter_map(|c| c.reinvite_retry.take().map(|(_, hold)| (c.id, hold)))
            .collect();
        for (id, hold) in retries {
            if let Err(e) = self.send_reinvite(now, id, hold) {
                tracing::info!("re-INVITE retry failed: {e}");
            }
        }
        self.incoming_timers(now);
        self.messaging_timeout(now);
        self.timers_timeout(now);
        self.pump(now);
    }

    /// A command from a face.
    pub fn handle_command(
        &mut self,
        now: Instant,
        command: Command,
    ) -> Result<Reply, CommandError> {
        let reply = match command {
            Command::Register { account } => {
                for i in self.account_indices(account.as_deref())? {
                    self.register_account(now, i);
                }
                Ok(Reply::Done)
            }
            Command::Unregister { account } => {
                for i in self.account_indices(account.as_deref())? {
                    self.accounts[i].unregister(now);
                }
                Ok(Reply::Done)
            }
            Command::Call { account, target } => self
                .check_free_line()
                .and_then(|()| self.start_call(now, account.as_deref(), &target)),
            Command::Answer { call } => self.answer(now, call),
            Command::Hold { call } => self.hold(now, call, true),
            Command::Resume { call } => self.hold(now, call, false),
            Command::Hangup { call } => self.hangup(now, call),
            Command::Transfer { call, target } => self.transfer_blind(now, call, &target),
            Command::TransferAttended { call, to_call } => {
                self.transfer_attended(now, call, to_call)
            }
            Command::Shutdown => {
                self.shutting_down = true;
                let ids: Vec<CallId> = self
                    .calls
                    .iter()
                    .filter(|c| !c.is_ended())
                    .map(|c| c.id)
                    .collect();
                for id in ids {
                    let _ = self.hangup(now, Some(id));
                }
                for acc in &mut self.accounts {
                    acc.unregister(now);
                }
                Ok(Reply::Done)
            }
            Command::Line { line } => self.switch_line(now, line),
            Command::HangupAll => self.hangup_all(now),
            Command::Reject { call, code } => self.reject(now, call, code),
            Command::Ignore { call } => self.ignore(call),
            Command::Dnd { on } => self.set_dnd(on),
            Command::Forward { mode, target } => self.set_forward(mode, target),
            c @ (Command::Message { .. } | Command::Dtmf { .. }) => self.messaging_command(now, c),
            Command::Conference { a, b } => self.conference(now, a, b),
            Command::Split { call } => self.split(now, call),
        };
        self.pump(now);
        reply
    }

    // ----- outputs -------------------------------------------------------

    /// Next output, until `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Phone::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.txn.poll_timeout();
        for acc in &self.accounts {
            t = min_opt(t, acc.poll_timeout());
        }
        for c in self.calls.iter().filter(|c| c.state == CallState::Ending) {
            t = min_opt(t, c.cancel_deadline);
        }
        for c in &self.calls {
            t = min_opt(t, c.reinvite_retry.map(|(at, _)| at));
            if c.state == CallState::Ringing {
                t = min_opt(t, c.auto_answer.as_ref().map(|(at, _)| *at));
            }
        }
        t = min_opt(t, self.incoming_deadline());
        t = min_opt(t, self.transfer_deadline());
        t = min_opt(t, self.conference_timeout());
        t = min_opt(t, self.timers_poll_timeout());
        min_opt(t, self.messaging_poll_timeout())
    }

    /// Snapshot for `status`.
    pub fn status(&self) -> Status {
        Status {
            accounts: self.accounts.iter().map(Account::status).collect(),
            calls: self
                .calls
                .iter()
                .map(|c| self.annotate(c.status(&self.accounts)))
                .collect(),
            settings: self.settings.clone(),
        }
    }

    /// After [`Command::Shutdown`]: true once nothing is left to finish.
    pub fn is_quiescent(&self) -> bool {
        self.accounts.iter().all(Account::is_idle) && self.calls.iter().all(|c| c.is_ended())
    }

    // ----- internals -----------------------------------------------------

    fn account_indices(&self, id: Option<&str>) -> Result<Vec<usize>, CommandError> {
        match id {
            None => Ok((0..self.accounts.len()).collect()),
            Some(id) => self
                .accounts
                .iter()
                .position(|a| a.config.id == id)
                .map(|i| vec![i])
                .ok_or_else(|| CommandError(format!("no account `{id}`"))),
        }
    }

    fn register_account(&mut self, now: Instant, i: usize) {
        let Some(acc) = self.accounts.get_mut(i) else {
            return;
        };
        if let Some((host, port, transport)) = acc.register(now) {
            let token = self.new_resolve(ResolveFor::Account(i));
            self.outputs.push_back(Output::Resolve {
                token,
                host,
                port,
                transport,
            });
        }
    }

    fn new_resolve(&mut self, purpose: ResolveFor) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        self.resolving.insert(token, purpose);
        token
    }

    fn pending_server_name(&self, purpose: ResolveFor) -> Option<String> {
        match purpose {
            ResolveFor::Account(i) => self.accounts.get(i).map(|a| a.config.first_hop().host),
            ResolveFor::Call(id) => self
                .calls
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.target.host.to_string()),
            ResolveFor::Message(id) => self.message_server_name(id),
        }
    }

    /// Drive the transaction layer and registrations until both are quiet.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progress = false;
            while let Some(out) = self.txn.poll_output() {
                progress = true;
                match out {
                    TxnOutput::Send { peer, message } => self.transmit(peer, &message),
                    TxnOutput::Event(ev) => self.on_txn_event(now, ev),
                }
            }
            for i in 0..self.accounts.len() {
                while let Some(out) = self.accounts[i].poll_output() {
                    progress = true;
                    match out {
                        account::AccountOutput::Send(peer, mut req) => {
                            // The registration leaves the sent-by to us: the
                            // local address and transport this hop really uses.
                            let ip = self.accounts[i]
                                .current_target()
                                .map(|t| t.local_ip)
                                .unwrap_or(IpAddr::from([127, 0, 0, 1]));
                            self.set_via_sent_by(&mut req, peer.transport, ip);
                            let id = self.txn.send_request(now, *req, peer);
                            self.owners.insert(id, Owner::Register(i));
                        }
                        account::AccountOutput::Resolve {
                            host,
                            port,
                            transport,
                        } => {
                            let token = self.new_resolve(ResolveFor::Account(i));
                            self.outputs.push_back(Output::Resolve {
                                token,
                                host,
                                port,
                                transport,
                            });
                        }
                        account::AccountOutput::StatusChanged => self.emit_account(i),
                    }
                }
            }
            progress |= self.transfer_poll(now);
            progress |= self.mwi_update(now);
            if !progress {
                break;
            }
        }
        self.update_keepalives();
        self.conference_update(now);
        self.track_calls(now);
        self.timers_gc();
    }

    fn update_keepalives(&mut self) {
        let peers: Vec<Peer> = self
            .accounts
            .iter()
            .filter(|a| a.is_registered())
            .filter_map(Account::current_peer)
            .filter(|p| p.transport == TransportKind::Udp)
            .collect();
        if peers != self.keepalive_peers {
            self.keepalive_peers = peers.clone();
            self.outputs.push_back(Output::KeepAlivePeers(peers));
        }
    }

    fn transmit(&mut self, peer: Peer, message: &Message) {
        let data = message.to_bytes();
        let server_name = self.server_names.get(&peer).cloned();
        self.outputs.push_back(Output::Transmit {
            peer,
            server_name,
            data,
        });
    }

    fn emit_account(&mut self, i: usize) {
        if let Some(a) = self.accounts.get(i) {
            self.outputs
                .push_back(Output::Event(Event::Account(a.status())));
        }
    }

    fn emit_call(&mut self, id: CallId) {
        self.assign_line(id);
        if let Some(c) = self.calls.iter().find(|c| c.id == id) {
            let status = self.annotate(c.status(&self.accounts));
            self.outputs.push_back(Output::Event(Event::Call(status)));
        }
    }

    fn on_txn_event(&mut self, now: Instant, ev: TxnEvent) {
        match ev {
            TxnEvent::Response { id, response }
                if matches!(response.code, 401 | 407)
                    && self.dialog_auth_retry(now, id, &response) => {}
            TxnEvent::Response { id, response } => match self.owners.get(&id).copied() {
                Some(Owner::Register(i)) => {
                    if response.code >= 200 {
                        self.owners.remove(&id);
                    }
                    if let Some(acc) = self.accounts.get_mut(i) {
                        acc.handle_response(now, &response);
                    }
                }
                Some(Owner::Invite(call)) => {
                    if response.code >= 300 {
                        self.owners.remove(&id);
                    }
                    self.on_invite_response(now, call, id, response);
                }
                Some(Owner::Reinvite(call)) => {
                    // 2xx retransmissions keep coming while the transaction
                    // is Accepted: the owner stays so each is ACKed again.
                    if response.code >= 300 {
                        self.owners.remove(&id);
                    }
                    self.on_reinvite_response(now, call, response);
                }
                Some(Owner::Bye(call)) if response.code >= 200 => {
                    self.owners.remove(&id);
                    self.end_call(call, "hung up".into(), None);
                }
                Some(Owner::Cancel(_)) if response.code >= 200 => {
                    self.owners.remove(&id);
                }
                Some(Owner::Stray) if response.code >= 200 => {
                    self.owners.remove(&id);
                }
                Some(Owner::Refer(call)) => {
                    if response.code >= 200 {
                        self.owners.remove(&id);
                    }
                    self.on_refer_response(call, &response);
                }
                Some(Owner::Notify(_)) => {
                    if response.code >= 200 {
                        self.owners.remove(&id);
                    }
                }
                Some(o @ (Owner::Message(_) | Owner::Subscribe(_) | Owner::Info(_))) => {
                    self.messaging_response(now, id, o, response)
                }
                Some(Owner::Timers(call)) => self.timers_response(now, id, call, response),
                Some(Owner::Bye(_)) | Some(Owner::Cancel(_)) | Some(Owner::Stray) | None => {}
            },
            TxnEvent::Timeout { id } => self.on_txn_failure(now, id, None),
            TxnEvent::TransportError { id } => self.on_txn_failure(now, id, Some(())),
            TxnEvent::Request {
                id,
                request,
                source,
            } => self.on_request(now, id, request, source),
            TxnEvent::Ack { request, .. } => {
                if let Some(c) = self.calls.iter_mut().find(|c| c.dialog_matches(&request)) {
                    c.acked = true;
                    let id = c.id;
                    // Our 200 carried the offer: the ACK carries the answer.
                    // (A body when we made no offer is ignored.)
                    let awaiting = c.media.awaiting_answer();
                    let result = if !request.body.is_empty() && awaiting {
                        self.on_sdp_answer(id, &request.body)
                    } else {
                        Ok(())
                    };
                    if let Some(c) = self.calls.iter_mut().find(|c| c.id == id) {
                        c.media.settle();
                    }
                    if let Err(e) = result {
                        tracing::info!("answer in the ACK unusable: {e}");
                        let _ = self.send_bye(now, id);
                        self.end_call(id, format!("media negotiation failed: {e}"), Some(488));
                    }
                }
            }
            TxnEvent::AckTimeout { id } => {
                if let Some(call) = self
                    .calls
                    .iter()
                    .find(|c| c.server_txn == Some(id))
                    .map(|c| c.id)
                {
                    let _ = self.send_bye(now, call);
                    self.end_call(call, "no ACK from the caller".into(), None);
                }
            }
            TxnEvent::StrayResponse { response, source } => {
                // A retransmitted 2xx for an INVITE whose transaction ended:
                // ACK it again (RFC 6026).
                if response.code / 100 == 2
                    && let Ok(cseq) = response.headers.cseq()
                    && cseq.method == Method::Invite
                    && let Some(id) = self
                        .calls
                        .iter()
                        .find(|c| c.matches_response(&response))
                        .map(|c| c.id)
                    && let Err(e) = self.send_ack_2xx(id, &response, Some(source))
                {
                    tracing::info!("cannot ACK a retransmitted 2xx: {e}");
                }
            }
        }
    }

    fn on_txn_failure(&mut self, now: Instant, id: TxnId, transport: Option<()>) {
        let owner = self.owners.remove(&id);
        let peer = self.txn.peer(id);
        let error = peer.and_then(|p| self.peer_errors.get(&p).cloned());
        match owner {
            Some(Owner::Register(i)) => {
                if let Some(acc) = self.accounts.get_mut(i) {
                    match (transport, error) {
                        (Some(()), Some(e)) => acc.transport_failure(now, e),
                        (Some(()), None) => acc.transport_failure(now, TransportError::Closed),
                        (None, _) => acc.no_response(now),
                    }
                }
            }
            Some(Owner::Invite(call)) => {
                let why = match (transport, error) {
                    (Some(()), Some(e)) => format!("cannot reach the server: {e}"),
                    (Some(()), None) => "cannot reach the server".into(),
                    (None, _) => "no answer from the server (timeout)".into(),
                };
                self.end_call(call, why, None);
            }
            Some(Owner::Bye(call)) => {
                self.end_call(call, "hung up (no answer to BYE)".into(), None)
            }
            Some(Owner::Cancel(call)) => {
                // Nobody answers our CANCEL: give the call up.
                self.end_call(call, "cancelled (no answer to CANCEL)".into(), None)
            }
            Some(Owner::Stray) | Some(Owner::Notify(_)) => {}
            Some(Owner::Timers(call)) => self.timers_failure(now, id, call),
            Some(Owner::Refer(call)) => self.on_refer_timeout(call),
            Some(o @ (Owner::Message(_) | Owner::Subscribe(_) | Owner::Info(_))) => {
                self.messaging_failure(now, id, o, error, transport.is_some())
            }
            Some(Owner::Reinvite(call)) => {
                // No answer to our re-INVITE: the session is in doubt
                // (RFC 3261 §14.1 lets us end it).
                if let Some(c) = self.calls.iter_mut().find(|c| c.id == call) {
                    c.reinvite = None;
                }
                let _ = self.send_bye(now, call);
                self.end_call(call, "no answer to our re-INVITE".into(), None);
            }
            None => {
                // A ringing incoming call whose transaction died: the caller
                // is gone.
                if let Some(call) = self
                    .calls
                    .iter()
                    .find(|c| c.server_txn == Some(id) && c.state == CallState::Ringing)
                    .map(|c| c.id)
                {
                    self.end_call(call, "the caller is gone (transport failure)".into(), None);
                }
            }
        }
    }

    fn bad_message(&mut self, peer: Peer, data: &[u8], error: &ParseError) {
        let answered = match call::bad_request_response(data, error) {
            Some(resp) => {
                self.transmit(peer, &Message::Response(resp));
                true
            }
            None => false,
        };
        tracing::warn!(
            peer = %peer.addr,
            transport = ?peer.transport,
            answered,
            "malformed SIP message: {error}"
        );
        self.outputs.push_back(Output::Event(Event::BadMessage {
            peer: peer.addr.to_string(),
            transport: peer.transport,
            error: error.to_string(),
            answered,
        }));
    }

    fn respond(
        &mut self,
        now: Instant,
        id: TxnId,
        request: &Request,
        code: u16,
        extra: &[(&str, String)],
    ) {
        let mut resp = dialog::response_to(request, code, None);
        for (n, v) in extra {
            resp.headers.push(n.to_string(), v.clone());
        }
        self.txn.send_response(now, id, resp);
    }

    fn on_request(&mut self, now: Instant, id: TxnId, request: Request, source: Peer) {
        match request.method {
            Method::Invite => self.on_invite(now, id, request, source),
            Method::Cancel => self.on_cancel(now, id, request),
            Method::Bye => match self.calls.iter().position(|c| c.dialog_matches(&request)) {
                Some(pos) => {
                    let call = self.calls[pos].id;
                    self.respond(now, id, &request, 200, &[]);
                    self.end_call(call, "remote party hung up".into(), None);
                }
                None => self.respond(now, id, &request, 481, &[]),
            },
            Method::Options => {
                let extra = [
                    ("Allow", ALLOW.to_string()),
                    ("Accept", "application/sdp".to_string()),
                    ("User-Agent", self.user_agent.clone()),
                ];
                self.respond(now, id, &request, 200, &extra);
            }
            Method::Refer => self.on_refer(now, id, request, source),
            Method::Notify if transfer::is_refer_event(&request) => {
                self.on_refer_notify(now, id, request)
            }
            Method::Message => self.on_message(now, id, request),
            Method::Notify => self.on_notify(now, id, request, source),
            Method::Info => self.on_info(now, id, request),
            Method::Update => self.on_update(now, id, request),
            Method::Prack => self.on_prack(now, id, request),
            Method::Other(_) => {
                self.respond(now, id, &request, 501, &[("Allow", ALLOW.to_string())]);
            }
            _ => self.respond(now, id, &request, 405, &[("Allow", ALLOW.to_string())]),
        }
    }

    fn on_cancel(&mut self, now: Instant, id: TxnId, request: Request) {
        let Some(invite_txn) = self.txn.matching_invite(&request) else {
            self.respond(now, id, &request, 481, &[]);
            return;
        };
        self.respond(now, id, &request, 200, &[]);
        if let Some(pos) = self
            .calls
            .iter()
            .position(|c| c.server_txn == Some(invite_txn))
        {
            let call = &self.calls[pos];
            if call.state == CallState::Ringing {
                let tag = call.local_tag.clone();
                let invite = call.invite.clone();
                let callid = call.id;
                if let Some(invite) = invite {
                    let resp = dialog::response_to(&invite, 487, Some(&tag));
                    self.txn.send_response(now, invite_txn, resp);
                }
                self.end_call(
                    callid,
                    "caller hung up before answer (missed call)".into(),
                    Some(487),
                );
            }
        }
    }

    fn on_invite(&mut self, now: Instant, id: TxnId, request: Request, source: Peer) {
        let has_to_tag = request
            .headers
            .to_addr()
            .map(|a| a.tag().is_some())
            .unwrap_or(false);
        if has_to_tag {
            // Re-INVITE: answer with our current SDP.
            match self.calls.iter().position(|c| c.dialog_matches(&request)) {
                Some(pos) => {
                    let seq = request.headers.cseq().map(|c| c.seq).unwrap_or(0);
                    let last = self.calls[pos].dialog.as_ref().and_then(|d| d.remote_seq);
                    if last.is_some_and(|l| seq <= l) {
                        // Out of order (RFC 3261 §12.2.2).
                        self.respond(now, id, &request, 500, &[]);
                        return;
                    }
                    if self.calls[pos].reinvite.is_some() {
                        // Our own re-INVITE is in flight: glare (§14.2).
                        self.respond(now, id, &request, 491, &[]);
                        return;
                    }
                    if self.session_timer_check_request(now, id, &request) {
                        return;
                    }
                    let contact = self.contact_for_call(pos);
                    let media_cfg = self.media_cfg.clone();
                    let srtp = self.call_srtp(pos);
                    let call = &mut self.calls[pos];
                    let ip = call.local_ip;
                    // An offer is answered (hold, resume, new address);
                    // without one, ours goes in the 200 and the ACK answers.
                    // While we hold the call, a refresh or move from the far
                    // end must not take it off hold.
                    let dir = if call.state == CallState::Held {
                        crate::sdp::Direction::SendOnly
                    } else {
                        crate::sdp::Direction::SendRecv
                    };
                    let sdp = if request.body.is_empty() {
                        Ok(call.media.offer(&media_cfg, ip, dir, &srtp))
                    } else {
                        call.media
                            .answer_with(&media_cfg, ip, &request.body, &srtp, dir)
                    };
                    match sdp {
                        Ok(sdp) => {
                            let cid = call.id;
                            // Their offer sendonly/inactive: they hold us.
                            if !request.body.is_empty() {
                                call.remote_hold = call
                                    .media
                                    .negotiated
                                    .as_ref()
                                    .is_some_and(|n| !n.direction.sends());
                            }
                            let mut resp = call.reinvite_response(&request, &contact, sdp);
                            self.session_timer_on_refresh_request(now, cid, &request, &mut resp);
                            self.txn.send_response(now, id, resp);
                            self.start_media(cid);
                        }
                        Err(e) => {
                            tracing::info!("re-INVITE refused: {e}");
                            let code = answer_error_code(&e);
                            self.respond(now, id, &request, code, &[answer_warning(&e)]);
                        }
                    }
                }
                None => self.respond(now, id, &request, 481, &[]),
            }
            return;
        }
        if self.shutting_down {
            self.respond(now, id, &request, 480, &[]);
            return;
        }
        if !request.headers.contacts().is_ok_and(|c| !c.is_empty()) {
            self.respond(now, id, &request, 400, &[]);
            return;
        }
        let unsupported: Vec<String> = request
            .headers
            .tokens("Require")
            .into_iter()
            .filter(|t| !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(t)))
            .collect();
        if !unsupported.is_empty() {
            self.respond(
                now,
                id,
                &request,
                420,
                &[("Unsupported", unsupported.join(", "))],
            );
            return;
        }
        if self.session_timer_check_request(now, id, &request) {
            return;
        }
        let replaces = match self.invite_replaces(&request) {
            Ok(r) => r,
            Err(code) => {
                self.respond(now, id, &request, code, &[]);
                return;
            }
        };
        // An INVITE with Replaces takes over a call we already have (RFC
        // 3891): DND, forwarding and busy do not apply to it, and it uses
        // the replaced call's line.
        if replaces.is_none() && self.screen_incoming(now, id, &request) {
            return;
        }
        let account = call::account_for(&request, &self.accounts);
        let call_id = self.next_call_id;
        self.next_call_id += 1;
        let local_ip = call::local_ip_for_incoming(&request, &self.accounts, account);
        let local_tag = self.rng.tag();
        let mut call = Call::incoming(
            call_id,
            account,
            request.clone(),
            id,
            source,
            local_tag,
            local_ip,
        );
        // Validate the offer now: no common codec → 488 (bad SDP → 400) at once.
        if !request.body.is_empty() {
            let policy = self.srtp_setup_policy(account);
            if let Err(e) =
                media::CallMedia::check_offer(&self.media_cfg, local_ip, &request.body, policy)
            {
                let code = answer_error_code(&e);
                let mut resp = dialog::response_to(&request, code, Some(&call.local_tag));
                let (name, value) = answer_warning(&e);
                resp.headers.push(name.to_string(), value);
                self.txn.send_response(now, id, resp);
                call.end(format!("offer not acceptable: {e}"), Some(code));
                self.push_call(call);
                self.emit_call(call_id);
                return;
            }
        }
        let contact = self.contact_value(account, local_ip, source.transport);
        let mut ringing = dialog::response_to(&request, 180, Some(&call.local_tag));
        for rr in request.headers.get_all("Record-Route") {
            ringing.headers.push("Record-Route", rr.to_string());
        }
        ringing.headers.push("Contact", contact);
        let ringing = self.prack_reliable_provisional(now, call_id, id, &request, ringing);
        self.txn.send_response(now, id, ringing);
        // Auto-answer (VICIdial): only as the account's policy allows.
        let busy = self
            .calls
            .iter()
            .any(|c| matches!(c.state, CallState::Connected | CallState::Held));
        if let Some(acc) = account.and_then(|i| self.accounts.get(i)) {
            let policy = autoanswer::Policy::parse(&acc.config.auto_answer)
                .unwrap_or(autoanswer::Policy::Off);
            let from_our_server = acc.is_our_server(source.addr.ip());
            let delay = Duration::from_millis(acc.config.auto_answer_delay_ms);
            if let autoanswer::Decision::Answer { delay, reason } = autoanswer::decide(
                policy,
                &request,
                from_our_server,
                busy,
                acc.config.auto_answer_over_active,
                delay,
            ) {
                tracing::info!(
                    call = call_id,
                    "auto-answer in {} ms: {reason}",
                    delay.as_millis()
                );
                call.auto_answer = Some((now + delay, reason));
            }
        }
        if let Some(old) = replaces {
            transfer::mark_replacing(&mut call, old);
        }
        self.push_call(call);
        self.open_media(call_id);
        self.emit_call(call_id);
    }

    fn push_call(&mut self, call: Call) {
        self.calls.push(call);
        // Forget the oldest ended calls beyond the kept number.
        let ended = self.calls.iter().filter(|c| c.is_ended()).count();
        if ended > ENDED_CALLS_KEPT {
            let mut drop = ended - ENDED_CALLS_KEPT;
            self.calls.retain(|c| {
                if drop > 0 && c.is_ended() {
                    drop -= 1;
                    false
                } else {
                    true
                }
            });
        }
    }

    fn contact_value(
        &self,
        account: Option<usize>,
        ip: IpAddr,
        transport: TransportKind,
    ) -> String {
        let acc = account.and_then(|i| self.accounts.get(i));
        let user = acc
            .map(|a| a.config.username.clone())
            .unwrap_or_else(|| "softline".into());
        // Behind a NAT, the address the registrar saw is the one the far
        // end can reach for BYE and re-INVITEs.
        let public = acc
            .and_then(Account::public_addr)
            .filter(|_| transport == TransportKind::Udp);
        let (ip, port) = public.unwrap_or((ip, self.local.port(transport)));
        let host = match ip {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        let tp = match transport {
            TransportKind::Udp => "",
            TransportKind::Tcp => ";transport=tcp",
            TransportKind::Tls => ";transport=tls",
        };
        format!("<sip:{user}@{host}:{port}{tp}>")
    }

    fn contact_for_call(&self, pos: usize) -> String {
        let c = &self.calls[pos];
        let transport = c.peer.map(|p| p.transport).unwrap_or(TransportKind::Udp);
        self.contact_value(c.account, c.local_ip, transport)
    }

    /// A fresh Via for a request of the call at `pos` (its transport and
    /// local address).
    fn call_via(&mut self, pos: usize) -> String {
        let (transport, ip) = match self.calls.get(pos) {
            Some(c) => (
                c.peer.map(|p| p.transport).unwrap_or(TransportKind::Udp),
                c.local_ip,
            ),
            None => (TransportKind::Udp, IpAddr::from([127, 0, 0, 1])),
        };
        self.via_value(transport, ip).0
    }

    /// Replace the top Via's transport and sent-by, keeping its branch.
    fn set_via_sent_by(&self, req: &mut Request, transport: TransportKind, ip: IpAddr) {
        let Ok(mut via) = req.headers.top_via() else {
            return;
        };
        via.transport = transport.via_token().to_string();
        via.host = match ip {
            IpAddr::V4(a) => Host::V4(a),
            IpAddr::V6(a) => Host::V6(a),
        };
        via.port = Some(self.local.port(transport));
        if via.params.get("rport").is_none() {
            via.params.set("rport", None);
        }
        req.headers.remove("Via");
        req.headers.push_front("Via", via.to_string());
    }

    fn via_value(&mut self, transport: TransportKind, ip: IpAddr) -> (String, String) {
        let branch = dialog::branch(self.rng.next_u64());
        let host = match ip {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        let port = self.local.port(transport);
        (
            format!(
                "SIP/2.0/{} {host}:{port};rport;branch={branch}",
                transport.via_token()
            ),
            branch,
        )
    }

    // ----- outgoing calls ------------------------------------------------

    fn start_call(
        &mut self,
        now: Instant,
        account: Option<&str>,
        target: &str,
    ) -> Result<Reply, CommandError> {
        self.start_call_with(now, account, target, |_| {})
    }

    /// [`Self::start_call`], with `setup` filling in the new call before it
    /// is announced (and given its line) or its INVITE goes out.
    fn start_call_with(
        &mut self,
        now: Instant,
        account: Option<&str>,
        target: &str,
        setup: impl FnOnce(&mut Call),
    ) -> Result<Reply, CommandError> {
        if self.shutting_down {
            return Err(CommandError("the phone is shutting down".into()));
        }
        let account = match account {
            Some(id) => Some(self.account_indices(Some(id))?[0]),
            None => (!self.accounts.is_empty()).then_some(0),
        };
        let cfg: Option<&AccountConfig> = account
            .and_then(|i| self.accounts.get(i))
            .map(|a| &a.config);
        let uri = call::normalize_target(target, cfg).map_err(CommandError)?;
        let id = self.next_call_id;
        self.next_call_id += 1;
        let mut call = Call::outgoing(id, account, uri.clone(), self.rng.tag());
        setup(&mut call);
        self.push_call(call);
        self.open_media(id);
        // Through the account's first hop when it has one, else straight to
        // the URI's host (direct IP call).
        let via_account = account
            .and_then(|i| self.accounts.get(i))
            .and_then(|a| a.current_target());
        match via_account {
            Some(target) => self.send_invite(now, id, target),
            None => {
                let (host, port, transport) = match account.and_then(|i| self.accounts.get(i)) {
                    Some(a) => {
                        let hop = a.config.first_hop();
                        (hop.host, hop.port, a.config.transport)
                    }
                    None => {
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
                };
                let token = self.new_resolve(ResolveFor::Call(id));
                self.outputs.push_back(Output::Resolve {
                    token,
                    host,
                    port,
                    transport,
                });
            }
        }
        self.emit_call(id);
        Ok(Reply::Call { call: id })
    }

    fn send_invite(&mut self, now: Instant, id: CallId, target: Resolved) {
        let Some(pos) = self.calls.iter().position(|c| c.id == id) else {
            return;
        };
        if self.calls[pos].is_ended() {
            return;
        }
        if self.calls[pos].media.port.is_none() {
            // The INVITE goes out once the runtime has bound the RTP port.
            self.calls[pos].pending_target = Some(target);
            return;
        }
        let (via, _) = self.via_value(target.peer.transport, target.local_ip);
        let account = self.calls[pos].account;
        let contact = self.contact_value(account, target.local_ip, target.peer.transport);
        let call_id = format!("{:016x}@softline", self.rng.next_u64());
        let cfg = account
            .and_then(|i| self.accounts.get(i))
            .map(|a| a.config.clone());
        let ua = self.user_agent.clone();
        let media_cfg = self.media_cfg.clone();
        let srtp = self.call_srtp(pos);
        let call = &mut self.calls[pos];
        call.peer = Some(target.peer);
        call.local_ip = target.local_ip;
        let sdp = call.media.offer(
            &media_cfg,
            target.local_ip,
            crate::sdp::Direction::SendRecv,
            &srtp,
        );
        let mut invite = call.build_invite(cfg.as_ref(), &via, &contact, &call_id, &ua, sdp);
        self.timers_outgoing_invite(id, &mut invite);
        let txn = self.txn.send_request(now, invite, target.peer);
        self.calls[pos].invite_txn = Some(txn);
        self.owners.insert(txn, Owner::Invite(id));
    }

    fn on_invite_response(&mut self, now: Instant, id: CallId, txn: TxnId, response: Response) {
        let Some(pos) = self.calls.iter().position(|c| c.id == id) else {
            return;
        };
        let code = response.code;
        match code {
            100..=199 => {
                if self.prack_on_provisional(now, pos, &response) {
                    return; // a reliable 18x we already PRACKed
                }
                let call = &mut self.calls[pos];
                // Any provisional, 100 included, allows a CANCEL (§9.1).
                call.got_provisional = true;
                if call.cancel_pending {
                    self.send_cancel(now, id);
                } else if code == 100 {
                    // Trying: nothing to show.
                } else if !call.is_ended() && call.state != CallState::Ending {
                    call.state = if code == 183 || !response.body.is_empty() {
                        CallState::Early
                    } else {
                        CallState::Ringing
                    };
                    // Early media: the provisional's SDP answers our offer.
                    if !response.body.is_empty()
                        && is_sdp(&response)
                        && let Err(e) = self.on_sdp_answer(id, &response.body)
                    {
                        tracing::info!("early media not started: {e}");
                    }
                    self.emit_call(id);
                }
            }
            200..=299 => {
                let to_tag = response
                    .headers
                    .to_addr()
                    .ok()
                    .and_then(|t| t.tag().map(str::to_string));
                let other_fork = matches!(
                    (&self.calls[pos].dialog, self.calls[pos].state),
                    (Some(d), CallState::Connected | CallState::Held | CallState::Ending) if d.remote_tag != to_tag
                );
                if self.calls[pos].is_ended() || other_fork {
                    // A 2xx from a second fork, or after the call ended:
                    // ACK it and end that dialog at once (§13.2.2.4).
                    self.ack_and_bye_stray(now, pos, &response);
                    return;
                }
                let already = self.calls[pos].dialog.is_some()
                    && self.calls[pos].state != CallState::Early
                    && self.calls[pos].state != CallState::Ringing;
                if let Err(why) = self.send_ack_2xx(id, &response, None) {
                    self.end_call(
                        id,
                        format!("unusable answer from the remote party: {why}"),
                        Some(code),
                    );
                    return;
                }
                if already {
                    return;
                }
                let call = &mut self.calls[pos];
                if call.state == CallState::Ending || call.cancel_pending {
                    // We hung up while it was being answered: end it now.
                    let _ = self.send_bye(now, id);
                    return;
                }
                call.state = CallState::Connected;
                call.status_code = Some(code);
                if !response.body.is_empty() && is_sdp(&response) {
                    let settled = self.on_sdp_answer(id, &response.body);
                    if let Some(c) = self.calls.get_mut(pos) {
                        c.media.settle();
                    }
                    if let Err(e) = settled {
                        // RFC 3264 §5: an unusable answer ends the session.
                        let _ = self.send_bye(now, id);
                        self.end_call(id, format!("media negotiation failed: {e}"), Some(488));
                        return;
                    }
                } else if self.calls[pos].media.negotiated.is_some() {
                    // The answer came early (183) and the 200 repeats nothing.
                    self.start_media(id);
                } else {
                    let _ = self.send_bye(now, id);
                    self.end_call(id, "the answer carried no SDP".into(), Some(code));
                    return;
                }
                self.timers_on_invite_2xx(now, id, &response);
                self.emit_call(id);
            }
            401 | 407 => {
                if self.calls[pos].state == CallState::Ending || self.calls[pos].cancel_pending {
                    self.end_call(id, "cancelled".into(), Some(code));
                    return;
                }
                let seed = self.rng.next_u64();
                let via = self.call_via(pos);
                let creds = self.calls[pos]
                    .account
                    .and_then(|i| self.accounts.get(i))
                    .map(|a| a.credentials());
                let call = &mut self.calls[pos];
                match call.retry_with_auth(&response, creds, &via, seed) {
                    Ok(invite) => {
                        let peer = call.peer;
                        if let Some(peer) = peer {
                            let t = self.txn.send_request(now, invite, peer);
                            self.calls[pos].invite_txn = Some(t);
                            self.calls[pos].got_provisional = false;
                            self.owners.insert(t, Owner::Invite(id));
                        }
                    }
                    Err(why) => self.end_call(id, why, Some(code)),
                }
                let _ = txn;
            }
            422 if self.session_timer_on_422(now, pos, &response) => {}
            _ => {
                let cancelled = self.calls[pos].state == CallState::Ending;
                let why = if cancelled && code == 487 {
                    "cancelled".to_string()
                } else {
                    format!("{} {}", code, response.reason)
                };
                self.end_call(id, why, Some(code));
            }
        }
    }

    /// ACK a 2xx to our INVITE (building the dialog from the first one).
    fn send_ack_2xx(
        &mut self,
        id: CallId,
        response: &Response,
        _source: Option<Peer>,
    ) -> Result<(), String> {
        let Some(pos) = self.calls.iter().position(|c| c.id == id) else {
            return Ok(());
        };
        let Some(invite) = self.calls[pos].invite.clone() else {
            return Ok(());
        };
        if self.calls[pos].dialog.is_none()
            || matches!(self.calls[pos].state, CallState::Ringing | CallState::Early)
        {
            let d = dialog::Dialog::uac(&invite, response).map_err(|e| e.to_string())?;
            self.calls[pos].dialog = Some(d);
        }
        let via = self.call_via(pos);
        let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(1);
        let call = &mut self.calls[pos];
        let Some(dialog) = call.dialog.as_mut() else {
            return Ok(());
        };
        let mut ack = dialog.request(Method::Ack, "", Some(seq));
        ack.headers.push_front("Via", via);
        call::copy_credentials(&invite, &mut ack);
        let peer = call::dialog_peer(dialog, call.peer);
        if let Some(peer) = peer {
            self.transmit(peer, &Message::Request(ack));
        }
        Ok(())
    }

    /// A 2xx we cannot use (another fork's, or after the call ended): ACK
    /// it on its own dialog and send BYE, leaving the call as it is.
    fn ack_and_bye_stray(&mut self, now: Instant, pos: usize, response: &Response) {
        let Some(invite) = self.calls[pos].invite.clone() else {
            return;
        };
        let Ok(mut d) = dialog::Dialog::uac(&invite, response) else {
            tracing::info!("ignoring an unusable stray 2xx");
            return;
        };
        let contact = self.contact_for_call(pos);
        let Some(peer) = call::dialog_peer(&d, self.calls[pos].peer) else {
            return;
        };
        let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(1);
        let mut ack = d.request(Method::Ack, "", Some(seq));
        ack.headers.push_front("Via", self.call_via(pos));
        call::copy_credentials(&invite, &mut ack);
        self.transmit(peer, &Message::Request(ack));
        let mut bye = d.request(Method::Bye, &contact, None);
        bye.headers.push_front("Via", self.call_via(pos));
        let t = self.txn.send_request(now, bye, peer);
        self.owners.insert(t, Owner::Stray);
    }

    fn send_cancel(&mut self, now: Instant, id: CallId) {
        let Some(pos) = self.calls.iter().position(|c| c.id == id) else {
            return;
        };
        let call = &mut self.calls[pos];
        call.cancel_pending = false;
        let (Some(invite_txn), Some(peer)) = (call.invite_txn, call.peer) else {
            return;
        };
        let Some(invite) = self.txn.request(invite_txn).cloned() else {
            return;
        };
        let cancel = call::build_cancel(&invite);
        // If no final response to the INVITE follows, give up after 64×T1.
        call.cancel_deadline = Some(now + self.timers.t1 * 64);
        let t = self.txn.send_request(now, cancel, peer);
        self.owners.insert(t, Owner::Cancel(id));
    }

    fn send_bye(&mut self, now: Instant, id: CallId) -> Result<(), CommandError> {
        let Some(pos) = self.calls.iter().position(|c| c.id == id) else {
            return Err(CommandError(format!("no call {id}")));
        };
        let contact = self.contact_for_call(pos);
        let via = self.call_via(pos);
        let call = &mut self.calls[pos];
        let Some(dialog) = call.dialog.as_mut() else {
            return Err(CommandError("the call has no dialog yet".into()));
        };
        let mut bye = dialog.request(Method::Bye, &contact, None);
        bye.headers.push_front("Via", via);
        let Some(peer) = call::dialog_peer(dialog, call.peer) else {
            return Err(CommandError("no route to the remote party".into()));
        };
        call.state = CallState::Ending;
        let t = self.txn.send_request(now, bye, peer);
        self.owners.insert(t, Owner::Bye(id));
        self.emit_call(id);
        Ok(())
    }

    fn pick_call(
        &self,
        id: Option<CallId>,
        want: impl Fn(&Call) -> bool,
    ) -> Result<usize, CommandError> {
        match id {
            Some(id) => self
                .calls
                .iter()
                .position(|c| c.id == id)
                .ok_or_else(|| CommandError(format!("no call {id}"))),
            None => {
                let live: Vec<usize> = (0..self.calls.len())
                    .filter(|&i| want(&self.calls[i]))
                    .collect();
                match live.as_slice() {
                    [one] => Ok(*one),
                    [] => Err(CommandError("no such call".into())),
                    _ => Err(CommandError("several calls: name one by its id".into())),
                }
            }
        }
    }

    fn answer(&mut self, now: Instant, id: Option<CallId>) -> Result<Reply, CommandError> {
        let pos = self.pick_call(id, |c| {
            c.direction == Direction::Incoming && c.state == CallState::Ringing
        })?;
        if self.calls[pos].state != CallState::Ringing
            || self.calls[pos].direction != Direction::Incoming
        {
            return Err(CommandError(format!(
                "call {} is not ringing",
                self.calls[pos].id
            )));
        }
        let cid = self.calls[pos].id;
        let live = self.calls[pos]
            .server_txn
            .is_some_and(|t| self.txn.request(t).is_some());
        if !live {
            self.end_call(cid, "the caller is gone".into(), None);
            return Err(CommandError(format!("call {cid}: the caller is gone")));
        }
        if self.calls[pos].media.port.is_none() {
            // Answered as soon as the runtime has bound the RTP port.
            self.calls[pos].answer_pending = true;
            return Ok(Reply::Done);
        }
        let contact = self.contact_for_call(pos);
        let media_cfg = self.media_cfg.clone();
        let srtp = self.call_srtp(pos);
        let call = &mut self.calls[pos];
        let offer = call
            .invite
            .as_ref()
            .map(|i| i.body.clone())
            .unwrap_or_default();
        let ip = call.local_ip;
        let sdp = if offer.is_empty() {
            call.media
                .offer(&media_cfg, ip, crate::sdp::Direction::SendRecv, &srtp)
        } else {
            call.media
                .answer(&media_cfg, ip, &offer, &srtp)
                .map_err(|e| CommandError(format!("cannot answer the offer: {e}")))?
        };
        let (mut resp, txn) = call.accept(&contact, sdp).map_err(CommandError)?;
        self.session_timer_on_answer(now, pos, &mut resp);
        self.txn.send_response(now, txn, resp);
        self.start_media(cid);
        self.emit_call(cid);
        Ok(Reply::Done)
    }

    /// Put a call on hold (`hold`) or take it off (RFC 3264 §8.4: a
    /// re-INVITE whose offer is sendonly, then sendrecv again).
    fn hold(
        &mut self,
        now: Instant,
        id: Option<CallId>,
        hold: bool,
    ) -> Result<Reply, CommandError> {
        let want = if hold {
            CallState::Connected
        } else {
            CallState::Held
        };
        let pos = self.pick_call(id, |c| c.state == want)?;
        let cid = self.calls[pos].id;
        if self.calls[pos].state != want {
            let what = if hold { "connected" } else { "on hold" };
            return Err(CommandError(format!("call {cid} is not {what}")));
        }
        if self.calls[pos].reinvite.is_some() || self.calls[pos].reinvite_retry.is_some() {
            return Err(CommandError(format!(
                "call {cid}: a re-INVITE is already in progress"
            )));
        }
        self.send_reinvite(now, cid, hold)?;
        Ok(Reply::Done)
    }

    fn send_reinvite(&mut self, now: Instant, id: CallId, hold: bool) -> Result<(), CommandError> {
        let Some(pos) = self.calls.iter().position(|c| c.id == id) else {
            return Err(CommandError(format!("no call {id}")));
        };
        let contact = self.contact_for_call(pos);
        let ip = self.calls[pos].local_ip;
        let via = self.call_via(pos);
        let media_cfg = self.media_cfg.clone();
        let srtp = self.call_srtp(pos);
        let call = &mut self.calls[pos];
        let direction = if hold {
            crate::sdp::Direction::SendOnly
        } else {
            crate::sdp::Direction::SendRecv
        };
        let sdp = call.media.offer(&media_cfg, ip, direction, &srtp);
        // Our own INVITE's credentials only: an incoming call's INVITE
        // carries the caller's.
        let invite_for_auth = call
            .invite
            .clone()
            .filter(|_| call.direction == Direction::Outgoing);
        let Some(dialog) = call.dialog.as_mut() else {
            return Err(CommandError("the call has no dialog yet".into()));
        };
        let mut req = dialog.request(Method::Invite, &contact, None);
        req.headers.push_front("Via", via);
        req.headers.push("Allow", ALLOW);
        dialog::set_body(
            &mut req.headers,
            &mut req.body,
            "application/sdp",
            sdp.into_bytes(),
        );
        // Proxies that challenged the INVITE want the same credentials.
        if let Some(inv) = &invite_for_auth {
            call::copy_credentials(inv, &mut req);
        }
        let Some(peer) = call::dialog_peer(dialog, call.peer) else {
            return Err(CommandError("no route to the remote party".into()));
        };
        call.reinvite = Some(hold);
        call.reinvite_retry = None;
        self.session_timer_reinvite_headers(id, &mut req);
        let t = self.txn.send_request(now, req, peer);
        self.owners.insert(t, Owner::Reinvite(id));
        Ok(())
    }

    fn on_reinvite_response(&mut self, now: Instant, id: CallId, response: Response) {
        let Some(pos) = self.calls.iter().position(|c| c.id == id) else {
            return;
        };
        let code = response.code;
        if code < 200 {
            return;
        }
        self.session_timer_reinvite_final(now, id, &response);
        let Some(hold) = self.calls[pos].reinvite.take() else {
            // A retransmitted 2xx (our ACK was lost): ACK it again.
            if (200..300).contains(&code) {
                self.ack_reinvite(pos, &response);
            }
            return;
        };
        match code {
            200..=299 => {
                self.ack_reinvite(pos, &response);
                if let Err(e) = self.on_sdp_answer(id, &response.body) {
                    tracing::info!("hold answer unusable: {e}");
                }
                if let Some(c) = self.calls.get_mut(pos) {
                    c.media.settle();
                }
                let call = &mut self.calls[pos];
                if !call.is_ended() && call.state != CallState::Ending {
                    call.state = if hold {
                        CallState::Held
                    } else {
                        CallState::Connected
                    };
                }
                self.emit_call(id);
            }
            491 => {
                // Glare (RFC 3261 §14.1): the Call-ID owner retries after
                // 2.1–4 s, the other side after 0–2 s.
                let owner = self.calls[pos].direction == Direction::Outgoing;
                let r = self.rng.next_u64() % 1000;
                let wait = if owner { 2100 + r * 19 / 10 } else { r * 2 };
                self.calls[pos].reinvite_retry = Some((now + Duration::from_millis(wait), hold));
            }
            481 | 408 => {
                let _ = self.send_bye(now, id);
                self.end_call(
                    id,
                    format!("the far end lost the call ({code})"),
                    Some(code),
                );
            }
            _ => {
                tracing::info!(code, "re-INVITE refused; the call goes on as before");
                self.emit_call(id);
            }
        }
    }

    /// ACK for a 2xx to our re-INVITE (same CSeq number, in the dialog).
    fn ack_reinvite(&mut self, pos: usize, response: &Response) {
        let via = self.call_via(pos);
        let seq = response.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let call = &mut self.calls[pos];
        let Some(dialog) = call.dialog.as_mut() else {
            return;
        };
        let mut ack = dialog.request(Method::Ack, "", Some(seq));
        ack.headers.push_front("Via", via);
        if let Some(peer) = call::dialog_peer(dialog, call.peer) {
            self.transmit(peer, &Message::Request(ack));
        }
    }

    fn hangup(&mut self, now: Instant, id: Option<CallId>) -> Result<Reply, CommandError> {
        let pos = self.pick_call(id, |c| !c.is_ended())?;
        let call = &mut self.calls[pos];
        let cid = call.id;
        match (call.direction, call.state) {
            (_, CallState::Ended) => {
                return Err(CommandError(format!("call {cid} has already ended")));
            }
            (_, CallState::Ending) => {}
            (Direction::Incoming, CallState::Ringing) => {
                let (Some(invite), Some(txn)) = (call.invite.clone(), call.server_txn) else {
                    return Err(CommandError("call has no transaction".into()));
                };
                let resp = dialog::response_to(&invite, 486, Some(&call.local_tag));
                self.txn.send_response(now, txn, resp);
                self.end_call(cid, "rejected".into(), Some(486));
            }
            (_, CallState::Connected | CallState::Held) | (Direction::Incoming, _) => {
                self.send_bye(now, cid)?;
            }
            (Direction::Outgoing, CallState::Resolving) => {
                self.end_call(cid, "cancelled".into(), None);
            }
            (Direction::Outgoing, _) => {
                let provisional = call.got_provisional;
                call.state = CallState::Ending;
                if provisional {
                    self.send_cancel(now, cid);
                } else {
                    // RFC 3261 §9.1: wait for a provisional before CANCEL.
                    self.calls[pos].cancel_pending = true;
                }
                self.emit_call(cid);
            }
        }
        Ok(Reply::Done)
    }

    fn end_call(&mut self, id: CallId, cause: String, code: Option<u16>) {
        let cause = self.transfer_end_cause(id).unwrap_or(cause);
        if let Some(c) = self.calls.iter_mut().find(|c| c.id == id) {
            if c.is_ended() {
                return;
            }
            c.end(cause, code);
            if c.media.requested {
                self.outputs.push_back(Output::StopMedia { call: id });
            }
        }
        self.emit_call(id);
    }

    // ----- media ---------------------------------------------------------

    /// Ask the runtime for the call's RTP port.
    fn open_media(&mut self, id: CallId) {
        if let Some(c) = self.calls.iter_mut().find(|c| c.id == id) {
            c.media.requested = true;
            self.outputs.push_back(Output::OpenMedia { call: id });
        }
    }

    /// Hand the runtime what offer/answer settled, when it changed.
    fn start_media(&mut self, id: CallId) {
        let Some(c) = self.calls.iter_mut().find(|c| c.id == id) else {
            return;
        };
        if c.is_ended() {
            return;
        }
        if let Some(media) = c.media.take_start() {
            self.outputs
                .push_back(Output::StartMedia { call: id, media });
        }
    }

    /// The peer's SDP answer (in a 18x, 2xx or ACK) to our offer.
    fn on_sdp_answer(&mut self, id: CallId, body: &[u8]) -> Result<(), String> {
        let Some(c) = self.calls.iter_mut().find(|c| c.id == id) else {
            return Ok(());
        };
        c.media.on_answer(body).map_err(|e| e.to_string())?;
        self.start_media(id);
        Ok(())
    }
}

/// The status for an offer we cannot answer: 400 for SDP that does not
/// parse, 488 Not Acceptable Here otherwise.
fn answer_error_code(e: &crate::sdp::AnswerError) -> u16 {
    match e {
        crate::sdp::AnswerError::Malformed(_) => 400,
        _ => 488,
    }
}

/// The reason an offer was refused, for the far end: a `Warning` header
/// (RFC 3261 §20.43) with the warn-code that fits (304 media type not
/// available, 305 incompatible media format, 302 incompatible transport
/// protocol, 399 otherwise) and our own words as its text.
fn answer_warning(e: &crate::sdp::AnswerError) -> (&'static str, String) {
    use crate::sdp::AnswerError as E;
    let code = match e {
        E::NoAudio => 304,
        E::NoCommonCodec => 305,
        E::UnsupportedProfile(_) | E::NoAcceptableCrypto => 302,
        E::BadCryptoAnswer(_) | E::Malformed(_) => 399,
    };
    // A quoted-string: no CR/LF, quotes and backslashes escaped, bounded.
    let mut text = String::new();
    for c in e.to_string().chars().filter(|c| !c.is_control()).take(200) {
        if matches!(c, '"' | '\\') {
            text.push('\\');
        }
        text.push(c);
    }
    ("Warning", format!("{code} softline \"{text}\""))
}

/// True when a message's body is SDP (no Content-Type: assumed SDP, as
/// RFC 3261 §13 INVITE bodies are).
fn is_sdp(response: &Response) -> bool {
    response
        .headers
        .get("Content-Type")
        .is_none_or(|t| t.to_ascii_lowercase().starts_with("application/sdp"))
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
