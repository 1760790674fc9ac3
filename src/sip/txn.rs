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
        // Zero timers would make retransmission loops spin; absurd ones
        // would overflow `Instant` arithmetic.
        let t1 = timers
            .t1
            .clamp(Duration::from_millis(1), Duration::from_secs(60));
        let config = TimerConfig {
            t1,
            t2: timers.t2.clamp(t1, Duration::from_secs(600)),
            t4: timers.t4.min(Duration::from_secs(600)),
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
        if let Some(k) = &txn.ack_key
            && self.ack_index.get(k) == Some(&id)
        {
            self.ack_index.remove(k);
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
        if let Key::Client(k) = &key
            && let Some(old) = self.client_index.insert(k.clone(), id)
        {
            tracing::debug!(?old, "branch reused by a new client transaction");
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
        if let Some(id) = id
            && let Some(txn) = self.txns.get_mut(&id)
        {
            txn.acked = true;
            self.stop_timer(id, Timer::G);
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
                txn.interval = txn.interval.saturating_mul(2);
                let next = now + txn.interval;
                self.send(peer, Message::Request(request));
                self.start_timer(id, Timer::A, next);
            }
            Timer::E => {
                let request = txn.request.clone();
                txn.interval = if txn.state == State::Proceeding {
                    t2
                } else {
                    txn.interval.saturating_mul(2).min(t2)
                };
                let next = now + txn.interval;
                self.send(peer, Message::Request(request));
                self.start_timer(id, Timer::E, next);
            }
            Timer::G => {
                if let Some(response) = txn.last_response.clone() {
                    txn.interval = txn.interval.saturating_mul(2).min(t2);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::dialog::response_to;
    use crate::sip::transport::TransportKind;
    use crate::sip::uri::{Host, Uri};

    use crate::runtime::test_epoch as base;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn peer(transport: TransportKind, last: u8) -> Peer {
        Peer {
            transport,
            addr: std::net::SocketAddr::from(([192, 0, 2, last], 5060)),
        }
    }

    fn udp() -> Peer {
        peer(TransportKind::Udp, 1)
    }

    fn tcp() -> Peer {
        peer(TransportKind::Tcp, 1)
    }

    fn request(method: Method, branch: &str, transport: TransportKind) -> Request {
        let mut headers = Headers::new();
        headers.push(
            "Via",
            format!(
                "SIP/2.0/{} 198.51.100.7:5060;branch={branch};rport",
                transport.via_token()
            ),
        );
        headers.push("Via", "SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bKlower");
        headers.push("Route", "<sip:proxy.example.com;lr>");
        headers.push("Max-Forwards", "70");
        headers.push("From", "\"Alice\" <sip:alice@example.com>;tag=fromtag1");
        headers.push("To", "<sip:bob@example.com>");
        headers.push("Call-ID", "call-1@198.51.100.7");
        headers.push("CSeq", format!("7 {method}"));
        headers.push("Content-Length", "0");
        Request {
            method,
            uri: Uri::sip(Some("bob"), Host::Name("example.com".into())),
            headers,
            body: Vec::new(),
        }
    }

    fn respond(req: &Request, code: u16) -> Response {
        response_to(req, code, if code > 100 { Some("totag9") } else { None })
    }

    fn layer() -> TransactionLayer {
        TransactionLayer::new(TimerConfig::default())
    }

    fn drain(l: &mut TransactionLayer) -> Vec<TxnOutput> {
        std::iter::from_fn(|| l.poll_output()).collect()
    }

    /// Run the fake clock from `t0` up to `t0 + end`, firing every timer at
    /// its deadline; returns (offset, output) pairs.
    fn run(l: &mut TransactionLayer, t0: Instant, end: Duration) -> Vec<(Duration, TxnOutput)> {
        let mut out = Vec::new();
        while let Some(at) = l.poll_timeout() {
            if at > t0 + end {
                break;
            }
            l.handle_timeout(at);
            for o in drain(l) {
                out.push((at - t0, o));
            }
        }
        out
    }

    fn send_times(out: &[(Duration, TxnOutput)]) -> Vec<Duration> {
        out.iter()
            .filter(|(_, o)| matches!(o, TxnOutput::Send { .. }))
            .map(|(t, _)| *t)
            .collect()
    }

    fn events(out: &[(Duration, TxnOutput)]) -> Vec<(Duration, TxnEvent)> {
        out.iter()
            .filter_map(|(t, o)| match o {
                TxnOutput::Event(e) => Some((*t, e.clone())),
                TxnOutput::Send { .. } => None,
            })
            .collect()
    }

    fn secs_list(v: &[f64]) -> Vec<Duration> {
        v.iter().map(|s| Duration::from_secs_f64(*s)).collect()
    }

    fn sent_response(o: &TxnOutput) -> Option<&Response> {
        match o {
            TxnOutput::Send {
                message: Message::Response(r),
                ..
            } => Some(r),
            _ => None,
        }
    }

    fn sent_request(o: &TxnOutput) -> Option<&Request> {
        match o {
            TxnOutput::Send {
                message: Message::Request(r),
                ..
            } => Some(r),
            _ => None,
        }
    }

    fn assert_internals_empty(l: &TransactionLayer) {
        assert!(l.is_empty());
        assert!(l.timers.is_empty(), "timer table not empty");
        assert!(l.client_index.is_empty());
        assert!(l.server_index.is_empty());
        assert!(l.ack_index.is_empty());
        assert_eq!(l.poll_timeout(), None);
    }

    // ----- client INVITE --------------------------------------------------

    #[test]
    fn timer_a_doubles_uncapped_and_timer_b_fires_at_64_t1_on_udp() {
        let t0 = base();
        let mut l = layer();
        let id = l.send_request(
            t0,
            request(Method::Invite, "z9hG4bKa1", TransportKind::Udp),
            udp(),
        );
        let first = drain(&mut l);
        assert_eq!(first.len(), 1);
        assert_eq!(sent_request(&first[0]).unwrap().method, Method::Invite);
        let out = run(&mut l, t0, Duration::from_secs(100));
        assert_eq!(
            send_times(&out),
            secs_list(&[0.5, 1.5, 3.5, 7.5, 15.5, 31.5])
        );
        assert_eq!(
            events(&out),
            vec![(Duration::from_secs(32), TxnEvent::Timeout { id })]
        );
        assert_internals_empty(&l);
    }

    #[test]
    fn timer_a_absent_and_timer_b_kept_on_tcp() {
        let t0 = base();
        let mut l = layer();
        let id = l.send_request(
            t0,
            request(Method::Invite, "z9hG4bKa2", TransportKind::Tcp),
            tcp(),
        );
        assert_eq!(drain(&mut l).len(), 1);
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        let out = run(&mut l, t0, Duration::from_secs(100));
        assert!(send_times(&out).is_empty());
        assert_eq!(
            events(&out),
            vec![(Duration::from_secs(32), TxnEvent::Timeout { id })]
        );
        assert_internals_empty(&l);
    }

    #[test]
    fn provisional_stops_timer_a_and_timer_b() {
        let t0 = base();
        let mut l = layer();
        let inv = request(Method::Invite, "z9hG4bKa3", TransportKind::Udp);
        let id = l.send_request(t0, inv.clone(), udp());
        drain(&mut l);
        l.handle_message(t0 + ms(700), Message::Response(respond(&inv, 180)), udp());
        let out = drain(&mut l);
        assert_eq!(out.len(), 1);
        assert!(
            matches!(&out[0], TxnOutput::Event(TxnEvent::Response { id: i, response }) if *i == id && response.code == 180)
        );
        // Neither A nor B remain: the INVITE waits for the TU (CANCEL).
        assert_eq!(l.poll_timeout(), None);
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn non_2xx_final_gets_ack_built_by_the_layer() {
        let t0 = base();
        let mut l = layer();
        let inv = request(Method::Invite, "z9hG4bKack1", TransportKind::Udp);
        let id = l.send_request(t0, inv.clone(), udp());
        drain(&mut l);
        let busy = respond(&inv, 486);
        l.handle_message(t0 + ms(100), Message::Response(busy.clone()), udp());
        let out = drain(&mut l);
        assert_eq!(out.len(), 2, "{out:?}");
        let ack = sent_request(&out[0]).expect("ACK sent first").clone();
        assert!(matches!(&out[0], TxnOutput::Send { peer: p, .. } if *p == udp()));
        assert_eq!(
            out[1],
            TxnOutput::Event(TxnEvent::Response {
                id,
                response: busy.clone()
            })
        );
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, inv.uri);
        let vias: Vec<&str> = ack.headers.get_all("Via").collect();
        assert_eq!(
            vias,
            vec!["SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKack1;rport"]
        );
        assert_eq!(ack.headers.get("Call-ID"), inv.headers.get("Call-ID"));
        assert_eq!(ack.headers.get("From"), inv.headers.get("From"));
        assert_eq!(
            ack.headers.get("To"),
            Some("<sip:bob@example.com>;tag=totag9")
        );
        assert_eq!(ack.headers.get("CSeq"), Some("7 ACK"));
        assert_eq!(
            ack.headers.get_all("Route").collect::<Vec<_>>(),
            vec!["<sip:proxy.example.com;lr>"]
        );
        assert!(ack.body.is_empty());

        // A retransmitted final is absorbed and answered with the same ACK.
        l.handle_message(t0 + ms(600), Message::Response(busy.clone()), udp());
        let again = drain(&mut l);
        assert_eq!(again.len(), 1);
        assert_eq!(sent_request(&again[0]), Some(&ack));

        // Timer D: 32 s on UDP, then gone.
        assert_eq!(
            l.poll_timeout(),
            Some(t0 + ms(100) + Duration::from_secs(32))
        );
        let out = run(&mut l, t0, Duration::from_secs(40));
        assert!(out.is_empty());
        assert_internals_empty(&l);
    }

    #[test]
    fn timer_d_is_zero_on_tcp() {
        let t0 = base();
        let mut l = layer();
        let inv = request(Method::Invite, "z9hG4bKack2", TransportKind::Tcp);
        l.send_request(t0, inv.clone(), tcp());
        drain(&mut l);
        l.handle_message(t0 + ms(100), Message::Response(respond(&inv, 603)), tcp());
        let out = drain(&mut l);
        assert_eq!(sent_request(&out[0]).map(|r| &r.method), Some(&Method::Ack));
        assert_internals_empty(&l);
    }

    #[test]
    fn accepted_client_passes_2xx_retransmissions_up_until_timer_m() {
        let t0 = base();
        let mut l = layer();
        let inv = request(Method::Invite, "z9hG4bKok1", TransportKind::Udp);
        let id = l.send_request(t0, inv.clone(), udp());
        drain(&mut l);
        let ok = respond(&inv, 200);
        l.handle_message(t0 + ms(200), Message::Response(ok.clone()), udp());
        assert_eq!(
            drain(&mut l),
            vec![TxnOutput::Event(TxnEvent::Response {
                id,
                response: ok.clone()
            })]
        );
        // No ACK from the layer for a 2xx, no retransmission of the INVITE.
        l.handle_message(t0 + ms(700), Message::Response(ok.clone()), udp());
        assert_eq!(
            drain(&mut l),
            vec![TxnOutput::Event(TxnEvent::Response {
                id,
                response: ok.clone()
            })]
        );
        // Timer M = 64*T1 after the first 2xx.
        assert_eq!(
            l.poll_timeout(),
            Some(t0 + ms(200) + Duration::from_secs(32))
        );
        let out = run(&mut l, t0, Duration::from_secs(40));
        assert!(out.is_empty(), "{out:?}");
        assert_internals_empty(&l);
        // After Accepted ended, the 2xx is a stray.
        l.handle_message(
            t0 + Duration::from_secs(41),
            Message::Response(ok.clone()),
            udp(),
        );
        assert_eq!(
            drain(&mut l),
            vec![TxnOutput::Event(TxnEvent::StrayResponse {
                response: ok,
                source: udp()
            })]
        );
    }

    // ----- client non-INVITE ----------------------------------------------

    #[test]
    fn timer_e_doubles_capped_at_t2_and_timer_f_fires_on_udp() {
        let t0 = base();
        let mut l = layer();
        let id = l.send_request(
            t0,
            request(Method::Register, "z9hG4bKe1", TransportKind::Udp),
            udp(),
        );
        assert_eq!(drain(&mut l).len(), 1);
        let out = run(&mut l, t0, Duration::from_secs(100));
        assert_eq!(
            send_times(&out),
            secs_list(&[0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
        );
        assert_eq!(
            events(&out),
            vec![(Duration::from_secs(32), TxnEvent::Timeout { id })]
        );
        assert_internals_empty(&l);
    }

    #[test]
    fn timer_e_absent_and_timer_f_kept_on_tcp() {
        let t0 = base();
        let mut l = layer();
        let id = l.send_request(
            t0,
            request(Method::Options, "z9hG4bKe2", TransportKind::Tcp),
            tcp(),
        );
        drain(&mut l);
        let out = run(&mut l, t0, Duration::from_secs(100));
        assert!(send_times(&out).is_empty());
        assert_eq!(
            events(&out),
            vec![(Duration::from_secs(32), TxnEvent::Timeout { id })]
        );
    }

    #[test]
    fn provisional_moves_timer_e_to_t2() {
        let t0 = base();
        let mut l = layer();
        let req = request(Method::Register, "z9hG4bKe3", TransportKind::Udp);
        let id = l.send_request(t0, req.clone(), udp());
        drain(&mut l);
        l.handle_message(t0 + ms(200), Message::Response(respond(&req, 100)), udp());
        let out = drain(&mut l);
        assert!(
            matches!(&out[..], [TxnOutput::Event(TxnEvent::Response { id: i, response })] if *i == id && response.code == 100)
        );
        // The pending E (0.5 s) still fires; every later one is T2 apart.
        let out = run(&mut l, t0, Duration::from_secs(14));
        assert_eq!(send_times(&out), secs_list(&[0.5, 4.5, 8.5, 12.5]));
        // F still bounds the transaction.
        let out = run(&mut l, t0, Duration::from_secs(40));
        assert_eq!(
            events(&out),
            vec![(Duration::from_secs(32), TxnEvent::Timeout { id })]
        );
    }

    #[test]
    fn timer_k_is_t4_on_udp_and_zero_on_tcp() {
        let t0 = base();
        let mut l = layer();
        let req = request(Method::Register, "z9hG4bKk1", TransportKind::Udp);
        let id = l.send_request(t0, req.clone(), udp());
        drain(&mut l);
        let ok = respond(&req, 200);
        l.handle_message(t0 + ms(300), Message::Response(ok.clone()), udp());
        assert_eq!(
            drain(&mut l),
            vec![TxnOutput::Event(TxnEvent::Response {
                id,
                response: ok.clone()
            })]
        );
        assert_eq!(l.poll_timeout(), Some(t0 + ms(5300)));
        // A retransmitted final is absorbed in Completed.
        l.handle_message(t0 + ms(900), Message::Response(ok.clone()), udp());
        assert!(drain(&mut l).is_empty());
        assert_eq!(l.len(), 1);
        let out = run(&mut l, t0, Duration::from_secs(10));
        assert!(out.is_empty());
        assert_internals_empty(&l);

        let req = request(Method::Register, "z9hG4bKk2", TransportKind::Tcp);
        l.send_request(t0, req.clone(), tcp());
        drain(&mut l);
        l.handle_message(t0 + ms(300), Message::Response(respond(&req, 200)), tcp());
        assert_eq!(drain(&mut l).len(), 1);
        assert_internals_empty(&l);
    }

    #[test]
    fn response_matches_branch_and_cseq_method_only() {
        let t0 = base();
        let mut l = layer();
        let inv = request(Method::Invite, "z9hG4bKm1", TransportKind::Udp);
        let inv_id = l.send_request(t0, inv.clone(), udp());
        let cancel = request(Method::Cancel, "z9hG4bKm1", TransportKind::Udp);
        let cancel_id = l.send_request(t0, cancel.clone(), udp());
        drain(&mut l);
        // The 200 to the CANCEL goes to the CANCEL transaction only.
        let ok = respond(&cancel, 200);
        l.handle_message(t0 + ms(50), Message::Response(ok.clone()), udp());
        assert_eq!(
            drain(&mut l),
            vec![TxnOutput::Event(TxnEvent::Response {
                id: cancel_id,
                response: ok
            })]
        );
        let rt = respond(&inv, 487);
        l.handle_message(t0 + ms(60), Message::Response(rt.clone()), udp());
        let out = drain(&mut l);
        assert_eq!(
            out.last(),
            Some(&TxnOutput::Event(TxnEvent::Response {
                id: inv_id,
                response: rt
            }))
        );
    }

    #[test]
    fn stray_response_is_reported() {
        let t0 = base();
        let mut l = layer();
        let req = request(Method::Options, "z9hG4bKnobody", TransportKind::Udp);
        let resp = respond(&req, 200);
        l.handle_message(t0, Message::Response(resp.clone()), udp());
        assert_eq!(
            drain(&mut l),
            vec![TxnOutput::Event(TxnEvent::StrayResponse {
                response: resp,
                source: udp()
            })]
        );
    }

    #[test]
    fn invalid_messages_are_dropped() {
        let t0 = base();
        let mut l = layer();
        let mut no_via = request(Method::Options, "z9hG4bKx", TransportKind::Udp);
        no_via.headers.remove("Via");
        l.handle_message(t0, Message::Request(no_via), udp());
        let mut no_cseq = request(Method::Options, "z9hG4bKy", TransportKind::Udp);
        no_cseq.headers.remove("CSeq");
        l.handle_message(t0, Message::Request(no_cseq.clone()), udp());
        let mut resp = respond(
            &request(Method::Options, "z9hG4bKz", TransportKind::Udp),
            200,
        );
        resp.headers.remove("CSeq");
        l.handle_message(t0, Message::Response(resp), udp());
        let mut resp = respond(
            &request(Method::Options, "z9hG4bKz", TransportKind::Udp),
            200,
        );
        resp.headers.remove("Via");
        l.handle_message(t0, Message::Response(resp), udp());
        assert!(drain(&mut l).is_empty());
        assert!(l.is_empty());
    }

    // ----- server INVITE ----------------------------------------------------

    fn new_server_invite(
        l: &mut TransactionLayer,
        t0: Instant,
        branch: &str,
        from: Peer,
    ) -> (TxnId, Request) {
        let inv = request(Method::Invite, branch, from.transport);
        l.handle_message(t0, Message::Request(inv.clone()), from);
        let out = drain(l);
        match &out[..] {
            [
                TxnOutput::Event(TxnEvent::Request {
                    id,
                    request,
                    source,
                }),
            ] => {
                assert_eq!(request, &inv);
                assert_eq!(*source, from);
                (*id, inv)
            }
            other => panic!("expected one Request event, got {other:?}"),
        }
    }

    #[test]
    fn server_sends_100_trying_only_when_tu_silent_for_200ms() {
        let t0 = base();
        let mut l = layer();
        let (_, inv) = new_server_invite(&mut l, t0, "z9hG4bKs1", udp());
        let out = run(&mut l, t0, Duration::from_secs(1));
        assert_eq!(send_times(&out), vec![ms(200)]);
        let trying = sent_response(&out[0].1).unwrap();
        assert_eq!(trying.code, 100);
        assert_eq!(trying.headers.get("To"), inv.headers.get("To"), "no To tag");

        let mut l = layer();
        let (id, inv) = new_server_invite(&mut l, t0, "z9hG4bKs2", udp());
        l.send_response(t0 + ms(50), id, respond(&inv, 180));
        assert_eq!(drain(&mut l).len(), 1);
        let out = run(&mut l, t0, Duration::from_secs(1));
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn server_invite_timer_g_and_h_on_udp() {
        let t0 = base();
        let mut l = layer();
        let (id, inv) = new_server_invite(&mut l, t0, "z9hG4bKg1", udp());
        l.send_response(t0, id, respond(&inv, 486));
        let out = drain(&mut l);
        assert_eq!(sent_response(&out[0]).map(|r| r.code), Some(486));
        let out = run(&mut l, t0, Duration::from_secs(100));
        assert_eq!(
            send_times(&out),
            secs_list(&[0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
        );
        assert!(out.iter().all(|(_, o)| match o {
            TxnOutput::Send {
                message: Message::Response(r),
                peer: p,
            } => r.code == 486 && *p == udp(),
            _ => true,
        }));
        assert_eq!(
            events(&out),
            vec![(Duration::from_secs(32), TxnEvent::AckTimeout { id })]
        );
        assert_internals_empty(&l);
    }

    #[test]
    fn server_invite_no_timer_g_and_timer_h_kept_on_tcp() {
        let t0 = base();
        let mut l = layer();
        let (id, inv) = new_server_invite(&mut l, t0, "z9hG4bKg2", tcp());
        l.send_response(t0, id, respond(&inv, 480));
        drain(&mut l);
        let out = run(&mut l, t0, Duration::from_secs(100));
        assert!(send_times(&out).is_empty());
        assert_eq!(
            events(&out),
            vec![(Duration::from_secs(32), TxnEvent::AckTimeout { id })]
        );
    }

    #[test]
    fn ack_for_non_2xx_is_absorbed_and_timer_i_runs() {
        let t0 = base();
        let mut l = layer();
        let (id, inv) = new_server_invite(&mut l, t0, "z9hG4bKi1", udp());
        l.send_response(t0, id, respond(&inv, 486));
        drain(&mut l);
        // ACK for the non-2xx: same branch, To with our tag.
        let mut ack = request(Method::Ack, "z9hG4bKi1", TransportKind::Udp);
        ack.headers.set("To", "<sip:bob@example.com>;tag=totag9");
        l.handle_message(t0 + ms(1000), Message::Request(ack.clone()), udp());
        assert!(drain(&mut l).is_empty(), "ACK is absorbed");
        // G stopped (the one at 0.5 s is already past); I = T4.
        assert_eq!(l.poll_timeout(), Some(t0 + ms(6000)));
        // The INVITE retransmitted in Confirmed is absorbed.
        l.handle_message(t0 + ms(1100), Message::Request(inv.clone()), udp());
        assert!(drain(&mut l).is_empty());
        let out = run(&mut l, t0, Duration::from_secs(10));
        assert!(out.is_empty());
        assert_internals_empty(&l);

        // TCP: Timer I is zero.
        let (id, inv) = new_server_invite(&mut l, t0, "z9hG4bKi2", tcp());
        l.send_response(t0, id, respond(&inv, 486));
        drain(&mut l);
        let mut ack = request(Method::Ack, "z9hG4bKi2", TransportKind::Tcp);
        ack.headers.set("To", "<sip:bob@example.com>;tag=totag9");
        l.handle_message(t0 + ms(100), Message::Request(ack), tcp());
        assert!(drain(&mut l).is_empty());
        assert_internals_empty(&l);
    }

    #[test]
    fn server_2xx_is_retransmitted_until_the_ack() {
        let t0 = base();
        let mut l = layer();
        let (id, inv) = new_server_invite(&mut l, t0, "z9hG4bKok2", udp());
        let ok = respond(&inv, 200);
        l.send_response(t0, id, ok.clone());
        assert_eq!(sent_response(&drain(&mut l)[0]), Some(&ok));
        let out = run(&mut l, t0, ms(4000));
        assert_eq!(send_times(&out), secs_list(&[0.5, 1.5, 3.5]));
        // INVITE retransmission in Accepted: absorbed, not passed up.
        l.handle_message(t0 + ms(3600), Message::Request(inv.clone()), udp());
        assert!(drain(&mut l).is_empty());
        // The ACK for the 2xx has its own branch.
        let mut ack = request(Method::Ack, "z9hG4bKackfor2xx", TransportKind::Udp);
        ack.headers.set("To", "<sip:bob@example.com>;tag=totag9");
        l.handle_message(t0 + ms(4000), Message::Request(ack.clone()), udp());
        assert_eq!(
            drain(&mut l),
            vec![TxnOutput::Event(TxnEvent::Ack {
                id: Some(id),
                request: ack.clone(),
                source: udp()
            })]
        );
        // No more retransmissions; Timer L ends it quietly at 64*T1.
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        let out = run(&mut l, t0, Duration::from_secs(40));
        assert!(out.is_empty(), "{out:?}");
        assert_internals_empty(&l);
        // A late ACK has no transaction.
        l.handle_message(
            t0 + Duration::from_secs(41),
            Message::Request(ack.clone()),
            udp(),
        );
        assert_eq!(
            drain(&mut l),
            vec![TxnOutput::Event(TxnEvent::Ack {
                id: None,
                request: ack,
                source: udp()
            })]
        );
    }

    #[test]
    fn server_2xx_without_ack_times_out_after_64_t1() {
        let t0 = base();
        let mut l = layer();
        let (id, inv) = new_server_invite(&mut l, t0, "z9hG4bKok3", udp());
        l.send_response(t0, id, respond(&inv, 200));
        drain(&mut l);
        let out = run(&mut l, t0, Duration::from_secs(100));
        assert_eq!(
            send_times(&out),
            secs_list(&[0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
        );
        assert_eq!(
            events(&out),
            vec![(Duration::from_secs(32), TxnEvent::AckTimeout { id })]
        );
        assert_internals_empty(&l);

        // TCP: no retransmission, same deadline.
        let (id, inv) = new_server_invite(&mut l, t0, "z9hG4bKok4", tcp());
        l.send_response(t0, id, respond(&inv, 200));
        drain(&mut l);
        let out = run(&mut l, t0, Duration::from_secs(100));
        assert!(send_times(&out).is_empty());
        assert_eq!(
            events(&out),
            vec![(Duration::from_secs(32), TxnEvent::AckTimeout { id })]
        );
    }

    #[test]
    fn server_invite_resends_last_response_on_retransmission() {
        let t0 = base();
        let mut l = layer();
        let (id, inv) = new_server_invite(&mut l, t0, "z9hG4bKr1", udp());
        // Before any response: absorbed, no second Request event.
        l.handle_message(t0 + ms(100), Message::Request(inv.clone()), udp());
        assert!(drain(&mut l).is_empty());
        let ringing = respond(&inv, 180);
        l.send_response(t0 + ms(150), id, ringing.clone());
        drain(&mut l);
        l.handle_message(t0 + ms(500), Message::Request(inv.clone()), udp());
        let out = drain(&mut l);
        assert_eq!(out.len(), 1);
        assert_eq!(sent_response(&out[0]), Some(&ringing));
        let busy = respond(&inv, 486);
        l.send_response(t0 + ms(600), id, busy.clone());
        drain(&mut l);
        l.handle_message(t0 + ms(700), Message::Request(inv.clone()), udp());
        let out = drain(&mut l);
        assert_eq!(out.len(), 1);
        assert_eq!(sent_response(&out[0]), Some(&busy));
    }

    // ----- server non-INVITE ------------------------------------------------

    #[test]
    fn server_non_invite_absorbs_retransmissions_and_timer_j() {
        let t0 = base();
        let mut l = layer();
        let opt = request(Method::Options, "z9hG4bKj1", TransportKind::Udp);
        l.handle_message(t0, Message::Request(opt.clone()), udp());
        let id = match &drain(&mut l)[..] {
            [TxnOutput::Event(TxnEvent::Request { id, .. })] => *id,
            other => panic!("{other:?}"),
        };
        // Trying: retransmission absorbed silently.
        l.handle_message(t0 + ms(500), Message::Request(opt.clone()), udp());
        assert!(drain(&mut l).is_empty());
        let ok = respond(&opt, 200);
        l.send_response(t0 + ms(600), id, ok.clone());
        assert_eq!(sent_response(&drain(&mut l)[0]), Some(&ok));
        // Completed: the final is resent, the TU hears nothing.
        l.handle_message(t0 + ms(1500), Message::Request(opt.clone()), udp());
        let out = drain(&mut l);
        assert_eq!(out.len(), 1);
        assert_eq!(sent_response(&out[0]), Some(&ok));
        // The layer itself never retransmits a non-INVITE response.
        assert_eq!(
            l.poll_timeout(),
            Some(t0 + ms(600) + Duration::from_secs(32))
        );
        let out = run(&mut l, t0, Duration::from_secs(40));
        assert!(out.is_empty());
        assert_internals_empty(&l);

        // TCP: Timer J is zero.
        let opt = request(Method::Options, "z9hG4bKj2", TransportKind::Tcp);
        l.handle_message(t0, Message::Request(opt.clone()), tcp());
        let id = match &drain(&mut l)[..] {
            [TxnOutput::Event(TxnEvent::Request { id, .. })] => *id,
            other => panic!("{other:?}"),
        };
        l.send_response(t0, id, respond(&opt, 200));
        assert_eq!(drain(&mut l).len(), 1);
        assert_internals_empty(&l);
    }

    #[test]
    fn cancel_gets_its_own_transaction_and_matches_the_invite() {
        let t0 = base();
        let mut l = layer();
        let (inv_id, inv) = new_server_invite(&mut l, t0, "z9hG4bKc1", udp());
        l.send_response(t0, inv_id, respond(&inv, 180));
        drain(&mut l);
        let cancel = request(Method::Cancel, "z9hG4bKc1", TransportKind::Udp);
        l.handle_message(t0 + ms(10), Message::Request(cancel.clone()), udp());
        let cancel_id = match &drain(&mut l)[..] {
            [TxnOutput::Event(TxnEvent::Request { id, request, .. })] => {
                assert_eq!(request, &cancel);
                *id
            }
            other => panic!("{other:?}"),
        };
        assert_ne!(cancel_id, inv_id);
        assert_eq!(l.matching_invite(&cancel), Some(inv_id));
        assert_eq!(l.request(inv_id), Some(&inv));

        let other_branch = request(Method::Cancel, "z9hG4bKc2", TransportKind::Udp);
        assert_eq!(l.matching_invite(&other_branch), None);
        let mut other_tag = cancel.clone();
        other_tag
            .headers
            .set("From", "<sip:alice@example.com>;tag=other");
        assert_eq!(l.matching_invite(&other_tag), None);
        let mut other_uri = cancel.clone();
        other_uri.uri = Uri::sip(Some("carol"), Host::Name("example.com".into()));
        assert_eq!(l.matching_invite(&other_uri), None);
        let mut other_seq = cancel.clone();
        other_seq.headers.set("CSeq", "8 CANCEL");
        assert_eq!(l.matching_invite(&other_seq), None);

        // The TU answers both; the INVITE ends with 487.
        l.send_response(t0 + ms(20), cancel_id, respond(&cancel, 200));
        l.send_response(t0 + ms(20), inv_id, respond(&inv, 487));
        let out = drain(&mut l);
        let codes: Vec<u16> = out
            .iter()
            .filter_map(sent_response)
            .map(|r| r.code)
            .collect();
        assert_eq!(codes, vec![200, 487]);
    }

    #[test]
    fn ack_carries_only_the_top_via_of_a_comma_list() {
        let t0 = base();
        let mut l = layer();
        let mut inv = request(Method::Invite, "z9hG4bKlist", TransportKind::Udp);
        inv.headers.remove("Via");
        inv.headers.push_front(
            "v",
            "SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKlist, SIP/2.0/UDP 203.0.113.9;branch=z9hG4bKlow",
        );
        l.send_request(t0, inv.clone(), udp());
        drain(&mut l);
        l.handle_message(t0, Message::Response(respond(&inv, 404)), udp());
        let out = drain(&mut l);
        let ack = sent_request(&out[0]).unwrap();
        let vias = ack.headers.vias().unwrap();
        assert_eq!(vias.len(), 1);
        assert_eq!(vias[0].branch(), Some("z9hG4bKlist"));
        assert_eq!(vias[0].port, Some(5060));
    }

    #[test]
    fn timers_follow_the_configured_t1_t2_t4() {
        let t0 = base();
        let mut l = TransactionLayer::new(TimerConfig {
            t1: ms(100),
            t2: ms(300),
            t4: ms(700),
        });
        let req = request(Method::Options, "z9hG4bKcfg", TransportKind::Udp);
        l.send_request(t0, req.clone(), udp());
        drain(&mut l);
        let out = run(&mut l, t0, ms(1000));
        // E: 100, +200, +300 (capped), +300 ...
        assert_eq!(send_times(&out), vec![ms(100), ms(300), ms(600), ms(900)]);
        l.handle_message(t0 + ms(1000), Message::Response(respond(&req, 200)), udp());
        drain(&mut l);
        assert_eq!(l.poll_timeout(), Some(t0 + ms(1700)), "K = T4");
        assert_eq!(l.len(), 1);
        let out = run(&mut l, t0, ms(10_000));
        assert!(out.is_empty());
        assert!(l.is_empty());
    }

    #[test]
    fn ack_reusing_the_invite_branch_is_matched_to_the_accepted_txn() {
        let t0 = base();
        let mut l = layer();
        let (id, inv) = new_server_invite(&mut l, t0, "z9hG4bKsame", udp());
        l.send_response(t0, id, respond(&inv, 200));
        drain(&mut l);
        let mut ack = request(Method::Ack, "z9hG4bKsame", TransportKind::Udp);
        ack.headers.set("To", "<sip:bob@example.com>;tag=totag9");
        l.handle_message(t0 + ms(100), Message::Request(ack.clone()), udp());
        assert_eq!(
            drain(&mut l),
            vec![TxnOutput::Event(TxnEvent::Ack {
                id: Some(id),
                request: ack,
                source: udp()
            })]
        );
        // G stopped: nothing until Timer L, which ends it without AckTimeout.
        let out = run(&mut l, t0, Duration::from_secs(40));
        assert!(out.is_empty(), "{out:?}");
        assert!(l.is_empty());
    }

    #[test]
    fn rfc2543_branchless_invite_matches_its_ack_and_cancel() {
        let t0 = base();
        let mut l = layer();
        let mut inv = request(Method::Invite, "x", TransportKind::Udp);
        inv.headers.set("Via", "SIP/2.0/UDP 198.51.100.7:5060");
        l.handle_message(t0, Message::Request(inv.clone()), udp());
        let id = match &drain(&mut l)[..] {
            [TxnOutput::Event(TxnEvent::Request { id, .. })] => *id,
            other => panic!("{other:?}"),
        };
        // A retransmission is recognised.
        l.handle_message(t0 + ms(500), Message::Request(inv.clone()), udp());
        assert!(drain(&mut l).is_empty());
        let mut cancel = inv.clone();
        cancel.method = Method::Cancel;
        cancel.headers.set("CSeq", "7 CANCEL");
        assert_eq!(l.matching_invite(&cancel), Some(id));
        l.send_response(t0 + ms(600), id, respond(&inv, 486));
        drain(&mut l);
        let mut ack = inv.clone();
        ack.method = Method::Ack;
        ack.headers.set("CSeq", "7 ACK");
        ack.headers.set("To", "<sip:bob@example.com>;tag=totag9");
        l.handle_message(t0 + ms(700), Message::Request(ack), udp());
        assert!(drain(&mut l).is_empty(), "ACK absorbed in Completed");
        assert_eq!(l.poll_timeout(), Some(t0 + ms(5700)), "Timer I running");
    }

    #[test]
    fn responses_on_finished_or_unknown_transactions_are_ignored() {
        let t0 = base();
        let mut l = layer();
        let opt = request(Method::Options, "z9hG4bKlate", TransportKind::Tcp);
        l.handle_message(t0, Message::Request(opt.clone()), tcp());
        let id = match &drain(&mut l)[..] {
            [TxnOutput::Event(TxnEvent::Request { id, .. })] => *id,
            other => panic!("{other:?}"),
        };
        l.send_response(t0, id, respond(&opt, 200));
        assert_eq!(drain(&mut l).len(), 1);
        l.send_response(t0, id, respond(&opt, 500));
        l.send_response(t0, TxnId(9999), respond(&opt, 200));
        assert!(drain(&mut l).is_empty());
    }

    #[test]
    fn unanswered_server_non_invite_is_dropped_after_64_t1() {
        let t0 = base();
        let mut l = layer();
        let opt = request(Method::Options, "z9hG4bKsilent", TransportKind::Udp);
        l.handle_message(t0, Message::Request(opt), udp());
        drain(&mut l);
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        let out = run(&mut l, t0, Duration::from_secs(40));
        assert!(out.is_empty());
        assert_internals_empty(&l);
    }

    // ----- transport errors, memory -----------------------------------------

    #[test]
    fn transport_error_ends_every_transaction_of_that_peer() {
        let t0 = base();
        let mut l = layer();
        let p = peer(TransportKind::Tcp, 1);
        let q = peer(TransportKind::Tcp, 2);
        let req = request(Method::Register, "z9hG4bKt1", TransportKind::Tcp);
        let client = l.send_request(t0, req.clone(), p);
        let other = l.send_request(
            t0,
            request(Method::Options, "z9hG4bKt2", TransportKind::Tcp),
            q,
        );
        drain(&mut l);
        let (server, _) = new_server_invite(&mut l, t0, "z9hG4bKt3", p);
        drain(&mut l);
        l.handle_transport_error(t0 + ms(10), p);
        // Until the queue is drained the TU can still look the txns up.
        assert_eq!(l.peer(client), Some(p));
        assert_eq!(l.request(client), Some(&req));
        let out = drain(&mut l);
        assert_eq!(
            out,
            vec![
                TxnOutput::Event(TxnEvent::TransportError { id: client }),
                TxnOutput::Event(TxnEvent::TransportError { id: server }),
            ]
        );
        assert_eq!(l.len(), 1);
        assert_eq!(l.peer(other), Some(q));
        assert_eq!(l.peer(client), None);
        assert_eq!(l.request(server), None);
        // Their timers are gone: only the other txn's Timer F remains.
        let out = run(&mut l, t0, Duration::from_secs(40));
        assert_eq!(
            events(&out),
            vec![(Duration::from_secs(32), TxnEvent::Timeout { id: other })]
        );
        assert_internals_empty(&l);
    }

    #[test]
    fn ten_thousand_completed_transactions_are_all_removed() {
        let t0 = base();
        let mut l = layer();
        for i in 0..10_000u32 {
            let branch = format!("z9hG4bKmem{i}");
            // Client non-INVITE answered 200 (Timer K).
            let req = request(Method::Options, &branch, TransportKind::Udp);
            l.send_request(t0, req.clone(), udp());
            l.handle_message(t0, Message::Response(respond(&req, 200)), udp());
            // Server non-INVITE answered 200 (Timer J).
            let sreq = request(Method::Message, &branch, TransportKind::Udp);
            l.handle_message(
                t0,
                Message::Request(sreq.clone()),
                peer(TransportKind::Udp, 3),
            );
            let sid = match l.outputs.back() {
                Some(TxnOutput::Event(TxnEvent::Request { id, .. })) => *id,
                other => panic!("{other:?}"),
            };
            l.send_response(t0, sid, respond(&sreq, 200));
            // Server INVITE answered 486 and ACKed (Timers H, I).
            let inv = request(Method::Invite, &branch, TransportKind::Udp);
            l.handle_message(
                t0,
                Message::Request(inv.clone()),
                peer(TransportKind::Udp, 4),
            );
            let iid = match l.outputs.back() {
                Some(TxnOutput::Event(TxnEvent::Request { id, .. })) => *id,
                other => panic!("{other:?}"),
            };
            l.send_response(t0, iid, respond(&inv, 486));
            let ack = request(Method::Ack, &branch, TransportKind::Udp);
            l.handle_message(t0, Message::Request(ack), peer(TransportKind::Udp, 4));
        }
        drain(&mut l);
        assert_eq!(l.len(), 30_000);
        let out = run(&mut l, t0, Duration::from_secs(40));
        assert!(events(&out).is_empty(), "no timeouts expected");
        drain(&mut l);
        assert_internals_empty(&l);
        assert!(l.ended.is_empty());
    }
}
