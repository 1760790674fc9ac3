//! Transactions (RFC 3261 §17, with the RFC 6026 "Accepted" state).
//!
//! Sans-IO: the layer is fed messages, TU commands and the current time, and
//! hands back messages to send and events through [`TransactionLayer::poll_output`].
//! Every timer lives in one table ordered by deadline; the next deadline is
//! [`TransactionLayer::poll_timeout`] and expiries are processed by
//! [`TransactionLayer::handle_timeout`].
//!
//! Summary of the state machines (UDP values; on TCP/TLS nothing is
//! retransmitted and timers D, I, J, K are zero):
//!
//! | txn | timers |
//! |---|---|
//! | client INVITE | A = T1 doubling (uncapped) in Calling, B = 64·T1 in Calling, D = 32 s in Completed, M = 64·T1 in Accepted |
//! | client non-INVITE | E = T1 doubling capped at T2 (T2 once Proceeding), F = 64·T1, K = T4 |
//! | server INVITE | 100 Trying after 200 ms without a TU response, G = T1 doubling capped at T2 (for non-2xx in Completed and for 2xx in Accepted), H = 64·T1, I = T4, L = 64·T1 |
//! | server non-INVITE | J = 64·T1; a server non-INVITE that the TU never answers is dropped after 64·T1 |
//!
//! A transaction that ends is removed at once; [`TransactionLayer::request`]
//! and [`TransactionLayer::peer`] keep answering for it until the output
//! queue has been drained, so the TU can still look it up while it handles
//! the transaction's last event.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::sip::dialog::{BRANCH_COOKIE, response_to};
use crate::sip::headers::TypedHeaders;
use crate::sip::message::{Headers, Message, Method, Request, Response};
use crate::sip::parse::ParseError;
use crate::sip::transport::Peer;

/// The RFC 3261 timer base values (§17.1.1.1, table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Largest retransmission interval for non-INVITE requests and INVITE
    /// responses, 4 s by default.
    pub t2: Duration,
    /// Longest time a message stays in the network, 5 s by default.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Identifies one transaction (client or server) for the TU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxnId(pub u64);

/// What the layer asks of its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOutput {
    /// Put this message on the wire toward `peer`.
    Send { peer: Peer, message: Message },
    /// Tell the TU.
    Event(TxnEvent),
}

/// What the layer tells the TU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnEvent {
    /// Client transaction: a provisional or final response. In the INVITE
    /// Accepted state every further 2xx (retransmission or another fork) is
    /// passed up as well.
    Response { id: TxnId, response: Response },
    /// Timer B or F fired: no final response.
    Timeout { id: TxnId },
    /// The transport reported an error for this transaction's peer.
    TransportError { id: TxnId },
    /// A new server transaction (not sent for retransmissions). CANCEL gets
    /// its own server transaction and is reported here too.
    Request {
        id: TxnId,
        request: Request,
        source: Peer,
    },
    /// An ACK for a 2xx: `id` is the Accepted INVITE server transaction it
    /// belongs to (Call-ID, CSeq number and From tag), `None` when no such
    /// transaction exists any more.
    Ack {
        id: Option<TxnId>,
        request: Request,
        source: Peer,
    },
    /// Server INVITE: no ACK came for the final response (Timer H for a
    /// non-2xx, 64·T1 after the 2xx for a 2xx).
    AckTimeout { id: TxnId },
    /// A response that matches no client transaction.
    StrayResponse { response: Response, source: Peer },
}

/// Timer D lower bound on unreliable transports (RFC 3261 table 4).
const TIMER_D: Duration = Duration::from_secs(32);
/// Delay before the server INVITE transaction answers 100 Trying itself.
const TRYING_DELAY: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Timer {
    A,
    B,
    D,
    E,
    F,
    G,
    H,
    I,
    J,
    K,
    L,
    M,
    /// Server INVITE: send 100 Trying if the TU is silent.
    Trying,
    /// Server non-INVITE: the TU never answered; forget the transaction.
    Abandon,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InvClient,
    NonInvClient,
    InvServer,
    NonInvServer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

/// Client matching key (§17.1.3): branch and method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    branch: String,
    method: Method,
}

/// Server matching key (§17.2.3): branch, sent-by and method (ACK is looked
/// up as INVITE).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ServerKey {
    branch: String,
    host: String,
    port: Option<u16>,
    method: Method,
}

/// What ties an ACK for a 2xx to its INVITE (the ACK has a new branch).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AckKey {
    call_id: String,
    seq: u32,
    from_tag: Option<String>,
}

#[derive(Debug)]
enum Key {
    Client(ClientKey),
    Server(ServerKey),
    None,
}

#[derive(Debug)]
struct Txn {
    kind: Kind,
    state: State,
    request: Request,
    peer: Peer,
    key: Key,
    /// Server INVITE in Accepted: registered in the ACK index under this.
    ack_key: Option<AckKey>,
    /// Server: the last response sent (resent on request retransmission).
    last_response: Option<Response>,
    /// Client INVITE: the ACK built for a non-2xx final response.
    ack: Option<Request>,
    /// Current retransmission interval (A, E or G).
    interval: Duration,
    /// Server INVITE Accepted: an ACK has arrived.
    acked: bool,
    /// Pending timers of this transaction (mirrors the layer's table).
    timers: Vec<(Timer, Instant)>,
}

impl Txn {
    fn reliable(&self) -> bool {
        self.peer.transport.is_reliable()
    }
}

/// The transaction layer: every client and server transaction of the phone.
#[derive(Debug)]
pub struct TransactionLayer {
    config: TimerConfig,
    next_id: u64,
    txns: BTreeMap<TxnId, Txn>,
    client_index: HashMap<ClientKey, TxnId>,
    server_index: HashMap<ServerKey, TxnId>,
    ack_index: HashMap<AckKey, TxnId>,
    timers: BTreeSet<(Instant, TxnId, Timer)>,
    outputs: VecDeque<TxnOutput>,
    /// Transactions that ended since the output queue was last drained.
    ended: Vec<(TxnId, Txn)>,
}

fn is_provisional(code: u16) -> bool {
    (100..200).contains(&code)
}

fn is_success(code: u16) -> bool {
    (200..300).contains(&code)
}

/// The server key of a request, looked up under `method`. A branch without
/// the RFC 3261 cookie (RFC 2543 peer) is made unique with Call-ID, From tag
/// and CSeq number so that its ACK and CANCEL still find the INVITE.
fn server_key(request: &Request, method: Method) -> Result<ServerKey, ParseError> {
    let via = request.headers.top_via()?;
    let branch = match via.branch() {
        Some(b) if b.starts_with(BRANCH_COOKIE) => b.to_string(),
        other => {
            let call_id = request.headers.call_id()?;
            let from = request.headers.from_addr()?;
            let seq = request.headers.cseq()?.seq;
            format!(
                "{}|{}|{}|{}",
                other.unwrap_or_default(),
                call_id,
                from.tag().unwrap_or_default(),
                seq
            )
        }
    };
    Ok(ServerKey {
        branch,
        host: via.host.to_string().to_ascii_lowercase(),
        port: via.port,
        method,
    })
}

fn ack_key(headers: &Headers) -> Result<AckKey, ParseError> {
    Ok(AckKey {
        call_id: headers.call_id()?.to_string(),
        seq: headers.cseq()?.seq,
        from_tag: headers.from_addr()?.tag().map(str::to_string),
    })
}

/// The ACK for a non-2xx final response (§17.1.1.3).
fn build_ack(invite: &Request, response: &Response) -> Request {
    let mut headers = Headers::new();
    // Exactly the top Via value of the INVITE (a line may hold a list).
    let top_via = match invite.headers.get("Via") {
        Some(line) if !line.contains(',') => Some(line.to_string()),
        Some(_) => invite.headers.top_via().ok().map(|v| v.to_string()),
        None => None,
    };
    if let Some(via) = top_via {
        headers.push("Via", via);
    }
    headers.push("Max-Forwards", "70");
    for name in ["From", "Call-ID"] {
        if let Some(v) = invite.headers.get(name) {
            headers.push(name, v.to_string());
        }
    }
    if let Some(to) = response.headers.get("To") {
        headers.push("To", to.to_string());
    }
    let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(0);
    headers.push("CSeq", format!("{seq} ACK"));
    for route in invite.headers.get_all("Route") {
        headers.push("Route", route.to_string());
    }
    headers.push("Content-Length", "0");
    Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        headers,
        body: Vec::new(),
    }
}

impl TransactionLayer {
    pub fn new(timers: TimerConfig) -> Self {
        // Zero timers would make retransmission loops spin.
        let t1 = timers.t1.max(Duration::from_millis(1));
        let config = TimerConfig {
            t1,
            t2: timers.t2.max(t1),
            t4: timers.t4,
        };
        TransactionLayer {
            config,
            next_id: 1,
            txns: BTreeMap::new(),
            client_index: HashMap::new(),
            server_index: HashMap::new(),
            ack_index: HashMap::new(),
            timers: BTreeSet::new(),
            outputs: VecDeque::new(),
            ended: Vec::new(),
        }
    }

    fn t64(&self) -> Duration {
        self.config.t1 * 64
    }

    fn alloc_id(&mut self) -> TxnId {
        let id = TxnId(self.next_id);
        self.next_id += 1;
        id
    }

    // ----- timer table -------------------------------------------------

    fn start_timer(&mut self, id: TxnId, timer: Timer, at: Instant) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        if let Some(slot) = txn.timers.iter_mut().find(|(t, _)| *t == timer) {
            self.timers.remove(&(slot.1, id, timer));
            slot.1 = at;
        } else {
            txn.timers.push((timer, at));
        }
        self.timers.insert((at, id, timer));
    }

    fn stop_timer(&mut self, id: TxnId, timer: Timer) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        if let Some(pos) = txn.timers.iter().position(|(t, _)| *t == timer) {
            let (_, at) = txn.timers.swap_remove(pos);
            self.timers.remove(&(at, id, timer));
        }
    }

    /// End a transaction: drop its timers and index entries.
    fn remove(&mut self, id: TxnId) {
        let Some(txn) = self.txns.remove(&id) else {
            return;
        };
        for (timer, at) in &txn.timers {
            self.timers.remove(&(*at, id, *timer));
        }
        match &txn.key {
            Key::Client(k) => {
                if self.client_index.get(k) == Some(&id) {
                    self.client_index.remove(k);
                }
            }
            Key::Server(k) => {
                if self.server_index.get(k) == Some(&id) {
                    self.server_index.remove(k);
                }
            }
            Key::None => {}
        }
        if let Some(k) = &txn.ack_key {
            if self.ack_index.get(k) == Some(&id) {
                self.ack_index.remove(k);
            }
        }
        let mut txn = txn;
        txn.timers.clear();
        self.ended.push((id, txn));
    }

    fn send(&mut self, peer: Peer, message: Message) {
        self.outputs.push_back(TxnOutput::Send { peer, message });
    }

    fn event(&mut self, event: TxnEvent) {
        self.outputs.push_back(TxnOutput::Event(event));
    }

    // ----- TU commands -------------------------------------------------

    /// Start a client transaction for `request` (which already carries its
    /// top Via with a fresh branch) toward `peer`. ACK is not a transaction:
    /// an ACK given here is sent once, statelessly.
    pub fn send_request(&mut self, now: Instant, request: Request, peer: Peer) -> TxnId {
        let id = self.alloc_id();
        if request.method == Method::Ack {
            tracing::debug!("ACK passed to send_request: sent without a transaction");
            self.send(peer, Message::Request(request));
            return id;
        }
        let invite = request.method == Method::Invite;
        let key = match request.headers.top_via() {
            Ok(via) => match via.branch() {
                Some(branch) => Key::Client(ClientKey {
                    branch: branch.to_string(),
                    method: request.method.clone(),
                }),
                None => {
                    tracing::debug!("request without a Via branch: responses cannot match it");
                    Key::None
                }
            },
            Err(e) => {
                tracing::debug!("request with unusable Via ({e}): responses cannot match it");
                Key::None
            }
        };
        if let Key::Client(k) = &key {
            if let Some(old) = self.client_index.insert(k.clone(), id) {
                tracing::debug!(?old, "branch reused by a new client transaction");
            }
        }
        let t1 = self.config.t1;
        self.txns.insert(
            id,
            Txn {
                kind: if invite {
                    Kind::InvClient
                } else {
                    Kind::NonInvClient
                },
                state: if invite {
                    State::Calling
                } else {
                    State::Trying
                },
                request: request.clone(),
                peer,
                key,
                ack_key: None,
                last_response: None,
                ack: None,
                interval: t1,
                acked: false,
                timers: Vec::new(),
            },
        );
        self.send(peer, Message::Request(request));
        let reliable = peer.transport.is_reliable();
        let t64 = self.t64();
        if invite {
            if !reliable {
                self.start_timer(id, Timer::A, now + t1);
            }
            self.start_timer(id, Timer::B, now + t64);
        } else {
            if !reliable {
                self.start_timer(id, Timer::E, now + t1);
            }
            self.start_timer(id, Timer::F, now + t64);
        }
        id
    }

    /// Send a response on server transaction `id`. A 2xx to an INVITE moves
    /// it to Accepted, where the layer retransmits the 2xx (UDP) until the
    /// ACK arrives or 64·T1 pass. Responses on an unknown or finished
    /// transaction are dropped (logged).
    pub fn send_response(&mut self, now: Instant, id: TxnId, response: Response) {
        let Some(txn) = self.txns.get_mut(&id) else {
            tracing::debug!(
                ?id,
                code = response.code,
                "response for no live server transaction"
            );
            return;
        };
        let code = response.code;
        let peer = txn.peer;
        let reliable = txn.reliable();
        let t1 = self.config.t1;
        let t64 = self.config.t1 * 64;
        match (txn.kind, txn.state) {
            (Kind::InvServer, State::Proceeding) => {
                txn.last_response = Some(response.clone());
                self.send(peer, Message::Response(response));
                self.stop_timer(id, Timer::Trying);
                if is_provisional(code) {
                    return;
                }
                let txn = match self.txns.get_mut(&id) {
                    Some(t) => t,
                    None => return,
                };
                txn.interval = t1;
                if is_success(code) {
                    txn.state = State::Accepted;
                    if let Ok(k) = ack_key(&txn.request.headers) {
                        txn.ack_key = Some(k.clone());
                        self.ack_index.insert(k, id);
                    }
                    self.start_timer(id, Timer::L, now + t64);
                } else {
                    txn.state = State::Completed;
                    self.start_timer(id, Timer::H, now + t64);
                }
                if !reliable {
                    self.start_timer(id, Timer::G, now + t1);
                }
            }
            (Kind::InvServer, State::Accepted) if is_success(code) => {
                // RFC 6026 §7.1: a 2xx from the TU in Accepted goes out.
                txn.last_response = Some(response.clone());
                self.send(peer, Message::Response(response));
            }
            (Kind::NonInvServer, State::Trying | State::Proceeding) => {
                txn.last_response = Some(response.clone());
                self.send(peer, Message::Response(response));
                let Some(txn) = self.txns.get_mut(&id) else {
                    return;
                };
                if is_provisional(code) {
                    txn.state = State::Proceeding;
                    return;
                }
                txn.state = State::Completed;
                self.stop_timer(id, Timer::Abandon);
                if reliable {
                    self.remove(id);
                } else {
                    self.start_timer(id, Timer::J, now + t64);
                }
            }
            (kind, state) => {
                tracing::debug!(
                    ?id,
                    ?kind,
                    ?state,
                    code,
                    "response not sendable in this state"
                );
            }
        }
    }

    // ----- network input -----------------------------------------------

    /// A parsed message arrived from `source`.
    pub fn handle_message(&mut self, now: Instant, message: Message, source: Peer) {
        match message {
            Message::Request(request) => self.handle_request(now, request, source),
            Message::Response(response) => self.handle_response(now, response, source),
        }
    }

    fn handle_response(&mut self, now: Instant, response: Response, source: Peer) {
        let (via, cseq) = match (response.headers.top_via(), response.headers.cseq()) {
            (Ok(v), Ok(c)) => (v, c),
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!(code = response.code, "response dropped: {e}");
                return;
            }
        };
        let id = via.branch().and_then(|branch| {
            self.client_index
                .get(&ClientKey {
                    branch: branch.to_string(),
                    method: cseq.method.clone(),
                })
                .copied()
        });
        let Some(id) = id else {
            self.event(TxnEvent::StrayResponse { response, source });
            return;
        };
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        let code = response.code;
        let reliable = txn.reliable();
        let peer = txn.peer;
        let t4 = self.config.t4;
        let t64 = self.config.t1 * 64;
        match (txn.kind, txn.state) {
            (Kind::InvClient, State::Calling | State::Proceeding) => {
                if is_provisional(code) {
                    if txn.state == State::Calling {
                        txn.state = State::Proceeding;
                        self.stop_timer(id, Timer::A);
                        self.stop_timer(id, Timer::B);
                    }
                } else if is_success(code) {
                    txn.state = State::Accepted;
                    self.stop_timer(id, Timer::A);
                    self.stop_timer(id, Timer::B);
                    self.start_timer(id, Timer::M, now + t64);
                } else {
                    let ack = build_ack(&txn.request, &response);
                    txn.state = State::Completed;
                    txn.ack = Some(ack.clone());
                    self.send(peer, Message::Request(ack));
                    self.stop_timer(id, Timer::A);
                    self.stop_timer(id, Timer::B);
                    if reliable {
                        self.remove(id);
                    } else {
                        self.start_timer(id, Timer::D, now + TIMER_D);
                    }
                }
                self.event(TxnEvent::Response { id, response });
            }
            (Kind::InvClient, State::Accepted) => {
                if is_success(code) {
                    self.event(TxnEvent::Response { id, response });
                } else {
                    tracing::debug!(?id, code, "non-2xx in Accepted absorbed");
                }
            }
            (Kind::InvClient, State::Completed) => {
                if code >= 300 {
                    if let Some(ack) = txn.ack.clone() {
                        self.send(peer, Message::Request(ack));
                    }
                } else {
                    tracing::debug!(?id, code, "response in Completed absorbed");
                }
            }
            (Kind::NonInvClient, State::Trying | State::Proceeding) => {
                if is_provisional(code) {
                    txn.state = State::Proceeding;
                } else {
                    txn.state = State::Completed;
                    self.stop_timer(id, Timer::E);
                    self.stop_timer(id, Timer::F);
                    if reliable {
                        self.remove(id);
                    } else {
                        self.start_timer(id, Timer::K, now + t4);
                    }
                }
                self.event(TxnEvent::Response { id, response });
            }
            (kind, state) => {
                tracing::debug!(?id, ?kind, ?state, code, "response absorbed");
            }
        }
    }

    fn handle_request(&mut self, now: Instant, request: Request, source: Peer) {
        let cseq = match request.headers.cseq() {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(method = %request.method, "request dropped: {e}");
                return;
            }
        };
        if cseq.method != request.method {
            tracing::debug!(method = %request.method, cseq = %cseq.method, "request dropped: CSeq method differs");
            return;
        }
        let lookup = if request.method == Method::Ack {
            Method::Invite
        } else {
            request.method.clone()
        };
        let key = match server_key(&request, lookup) {
            Ok(k) => k,
            Err(e) => {
                tracing::debug!(method = %request.method, "request dropped: {e}");
                return;
            }
        };
        if request.method == Method::Ack {
            self.handle_ack(now, key, request, source);
            return;
        }
        if let Some(&id) = self.server_index.get(&key) {
            self.retransmitted_request(id);
            return;
        }
        let id = self.alloc_id();
        let invite = request.method == Method::Invite;
        self.server_index.insert(key.clone(), id);
        self.txns.insert(
            id,
            Txn {
                kind: if invite {
                    Kind::InvServer
                } else {
                    Kind::NonInvServer
                },
                state: if invite {
                    State::Proceeding
                } else {
                    State::Trying
                },
                request: request.clone(),
                peer: source,
                key: Key::Server(key),
                ack_key: None,
                last_response: None,
                ack: None,
                interval: self.config.t1,
                acked: false,
                timers: Vec::new(),
            },
        );
        if invite {
            self.start_timer(id, Timer::Trying, now + TRYING_DELAY);
        } else {
            let t64 = self.t64();
            self.start_timer(id, Timer::Abandon, now + t64);
        }
        self.event(TxnEvent::Request {
            id,
            request,
            source,
        });
    }

    /// A request matched a live server transaction.
    fn retransmitted_request(&mut self, id: TxnId) {
        let Some(txn) = self.txns.get(&id) else {
            return;
        };
        let resend = match (txn.kind, txn.state) {
            (Kind::InvServer, State::Proceeding | State::Completed) => txn.last_response.clone(),
            (Kind::NonInvServer, State::Proceeding | State::Completed) => txn.last_response.clone(),
            _ => None,
        };
        let peer = txn.peer;
        if let Some(response) = resend {
            self.send(peer, Message::Response(response));
        }
    }

    fn handle_ack(&mut self, now: Instant, key: ServerKey, request: Request, source: Peer) {
        if let Some(&id) = self.server_index.get(&key) {
            let Some(txn) = self.txns.get_mut(&id) else {
                return;
            };
            match txn.state {
                State::Completed => {
                    txn.state = State::Confirmed;
                    let reliable = txn.reliable();
                    self.stop_timer(id, Timer::G);
                    self.stop_timer(id, Timer::H);
                    if reliable {
                        self.remove(id);
                    } else {
                        let t4 = self.config.t4;
                        self.start_timer(id, Timer::I, now + t4);
                    }
                    return;
                }
                State::Accepted => {
                    // Same branch as the INVITE: a 2xx ACK from a peer that
                    // reuses the branch (or RFC 2543 style).
                    txn.acked = true;
                    self.stop_timer(id, Timer::G);
                    self.event(TxnEvent::Ack {
                        id: Some(id),
                        request,
                        source,
                    });
                    return;
                }
                _ => {
                    tracing::debug!(?id, "ACK absorbed");
                    return;
                }
            }
        }
        let id = match ack_key(&request.headers) {
            Ok(k) => self.ack_index.get(&k).copied(),
            Err(e) => {
                tracing::debug!("ACK without Call-ID/CSeq/From: {e}");
                None
            }
        };
        if let Some(id) = id {
            if let Some(txn) = self.txns.get_mut(&id) {
                txn.acked = true;
                self.stop_timer(id, Timer::G);
            }
        }
        self.event(TxnEvent::Ack {
            id,
            request,
            source,
        });
    }

    /// The runtime could not reach `peer` or lost its connection: every
    /// transaction with that peer ends with [`TxnEvent::TransportError`].
    pub fn handle_transport_error(&mut self, _now: Instant, peer: Peer) {
        let hit: Vec<TxnId> = self
            .txns
            .iter()
            .filter(|(_, t)| t.peer == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in hit {
            self.remove(id);
            self.event(TxnEvent::TransportError { id });
        }
    }

    // ----- time ----------------------------------------------------------

    /// Fire every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, id, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if let Some(txn) = self.txns.get_mut(&id) {
                txn.timers.retain(|(t, _)| *t != timer);
            }
            self.fire(now, id, timer);
        }
    }

    fn fire(&mut self, now: Instant, id: TxnId, timer: Timer) {
        let Some(txn) = self.txns.get_mut(&id) else {
            return;
        };
        let peer = txn.peer;
        let t2 = self.config.t2;
        match timer {
            Timer::A => {
                let request = txn.request.clone();
                txn.interval *= 2;
                let next = now + txn.interval;
                self.send(peer, Message::Request(request));
                self.start_timer(id, Timer::A, next);
            }
            Timer::E => {
                let request = txn.request.clone();
                txn.interval = if txn.state == State::Proceeding {
                    t2
                } else {
                    (txn.interval * 2).min(t2)
                };
                let next = now + txn.interval;
                self.send(peer, Message::Request(request));
                self.start_timer(id, Timer::E, next);
            }
            Timer::G => {
                if let Some(response) = txn.last_response.clone() {
                    txn.interval = (txn.interval * 2).min(t2);
                    let next = now + txn.interval;
                    self.send(peer, Message::Response(response));
                    self.start_timer(id, Timer::G, next);
                }
            }
            Timer::B | Timer::F => {
                self.remove(id);
                self.event(TxnEvent::Timeout { id });
            }
            Timer::H => {
                self.remove(id);
                self.event(TxnEvent::AckTimeout { id });
            }
            Timer::L => {
                let acked = txn.acked;
                self.remove(id);
                if !acked {
                    self.event(TxnEvent::AckTimeout { id });
                }
            }
            Timer::D | Timer::I | Timer::J | Timer::K | Timer::M => self.remove(id),
            Timer::Trying => {
                if txn.state == State::Proceeding && txn.last_response.is_none() {
                    let trying = response_to(&txn.request, 100, None);
                    txn.last_response = Some(trying.clone());
                    self.send(peer, Message::Response(trying));
                }
            }
            Timer::Abandon => {
                tracing::debug!(?id, "server transaction never answered by the TU: dropped");
                self.remove(id);
            }
        }
    }

    /// The earliest pending timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _, _)| *at)
    }

    /// Next message to send or event for the TU.
    pub fn poll_output(&mut self) -> Option<TxnOutput> {
        let out = self.outputs.pop_front();
        if out.is_none() {
            self.ended.clear();
        }
        out
    }

    // ----- queries -------------------------------------------------------

    fn any(&self, id: TxnId) -> Option<&Txn> {
        self.txns.get(&id).or_else(|| {
            self.ended
                .iter()
                .rev()
                .find(|(i, _)| *i == id)
                .map(|(_, t)| t)
        })
    }

    /// The request that created transaction `id` (client or server).
    pub fn request(&self, id: TxnId) -> Option<&Request> {
        self.any(id).map(|t| &t.request)
    }

    /// The peer of transaction `id`: destination (client) or source (server).
    pub fn peer(&self, id: TxnId) -> Option<Peer> {
        self.any(id).map(|t| t.peer)
    }

    /// The live server INVITE transaction a CANCEL targets (§9.2): same
    /// branch and sent-by, same Request-URI, Call-ID, From tag and CSeq
    /// number.
    pub fn matching_invite(&self, cancel: &Request) -> Option<TxnId> {
        let key = server_key(cancel, Method::Invite).ok()?;
        let id = *self.server_index.get(&key)?;
        let txn = self.txns.get(&id)?;
        if txn.kind != Kind::InvServer || txn.request.uri != cancel.uri {
            return None;
        }
        let a = ack_key(&txn.request.headers).ok()?;
        let b = ack_key(&cancel.headers).ok()?;
        (a == b).then_some(id)
    }

    /// Live transactions.
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }
}
