//! SIP network I/O on tokio: UDP, TCP and TLS transports (RFC 3261 §18),
//! connection reuse, stream framing, CRLF keep-alives (RFC 5626 §4.4.1),
//! server certificate checks (platform verifier, extra CA file, pin) and
//! RFC 3263 server location.
//!
//! Every socket is owned by a spawned task that feeds one event queue;
//! [`Network::next_event`] only reads that queue, so it is cancel-safe.
//! [`Network::send`] never blocks: stream connects happen in their task and
//! the data waits in that connection's queue.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

use crate::sip::framing::{Frame, StreamFramer};
use crate::sip::parse::MAX_MESSAGE_SIZE;
use crate::sip::transport::{Peer, TlsCertProblem, TransportError, TransportKind};

/// How the server certificate of TLS connections is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsClientConfig {
    /// PEM file of CA certificates trusted in addition to the platform's.
    pub extra_ca_file: Option<PathBuf>,
    /// PEM text of CA certificates trusted besides the platform's (and the file's).
    pub extra_ca_pem: Option<String>,
    /// SHA-256 of the server's end-entity certificate (DER). When set, the
    /// certificate is accepted iff it matches; chain and name are not checked.
    pub pinned_sha256: Option<[u8; 32]>,
    /// `false` accepts any certificate (tests only; logs a warning).
    pub verify: bool,
}

impl Default for TlsClientConfig {
    fn default() -> Self {
        TlsClientConfig {
            extra_ca_file: None,
            extra_ca_pem: None,
            pinned_sha256: None,
            verify: true,
        }
    }
}

/// What the network layer opens and how it behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// UDP socket (also used to send UDP); `None` disables UDP.
    pub listen_udp: Option<SocketAddr>,
    /// TCP listener for inbound connections; `None` accepts none.
    pub listen_tcp: Option<SocketAddr>,
    pub tls: TlsClientConfig,
    /// Limit for TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Period of CRLFCRLF keep-alives to the UDP peers; `None` = off.
    pub udp_keepalive: Option<Duration>,
    /// A stream connection idle (nothing sent) this long gets a CRLFCRLF
    /// ping; zero = off.
    pub stream_keepalive: Duration,
}

/// What happened on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// A datagram or a framed stream message (keep-alives are not reported).
    Received {
        peer: Peer,
        local: SocketAddr,
        data: Vec<u8>,
    },
    /// Sending to `peer` failed (connect refused/timed out, TLS rejected,
    /// socket error). Data queued for it is dropped.
    Failed { peer: Peer, error: TransportError },
    /// An established stream connection to `peer` ended.
    Closed { peer: Peer },
}

/// A SIP server to locate (RFC 3263 §4): the host part of a URI with its
/// optional port and `transport` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipTarget {
    pub host: String,
    pub port: Option<u16>,
    pub transport: Option<TransportKind>,
    /// A SIPS URI: TLS only.
    pub sips: bool,
}

/// Capacity of the event queue between the socket tasks and the driver;
/// when full, socket tasks stop reading (back-pressure to the kernel).
const EVENT_QUEUE: usize = 1024;
const STREAM_READ_BUF: usize = 16 * 1024;
const PING: &[u8] = b"\r\n\r\n";
const PONG: &[u8] = b"\r\n";
/// Pause after a failing `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// One live (or connecting) stream connection: its outgoing queue.
struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<Vec<u8>>,
}

/// State shared by the [`Network`] and its socket tasks.
struct Shared {
    tls: Result<Arc<rustls::ClientConfig>, String>,
    connect_timeout: Duration,
    stream_keepalive: Option<Duration>,
    conns: Mutex<HashMap<Peer, Conn>>,
    next_id: AtomicU64,
    /// Closed (receiver dropped) when the `Network` is dropped: every task
    /// watches it and ends.
    events: mpsc::Sender<NetEvent>,
}

impl Shared {
    fn conns(&self) -> MutexGuard<'_, HashMap<Peer, Conn>> {
        self.conns
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Make `tx` the queue for `peer` (replacing an older connection).
    fn register(&self, peer: Peer, tx: mpsc::UnboundedSender<Vec<u8>>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.conns().insert(peer, Conn { id, tx });
        id
    }

    /// Forget connection `id` of `peer` (unless it was already replaced).
    fn unregister(&self, peer: Peer, id: u64) {
        let mut conns = self.conns();
        if conns.get(&peer).is_some_and(|c| c.id == id) {
            conns.remove(&peer);
        }
    }

    async fn emit(&self, event: NetEvent) {
        // Fails only when the Network is gone; then nobody cares.
        let _ = self.events.send(event).await;
    }
}

/// The SIP sockets: one UDP socket, one TCP listener, and outgoing/accepted
/// TCP and TLS connections keyed by [`Peer`].
pub struct Network {
    shared: Arc<Shared>,
    udp: Option<Arc<UdpSocket>>,
    udp_local: Option<SocketAddr>,
    tcp_local: Option<SocketAddr>,
    events: mpsc::Receiver<NetEvent>,
    /// Events produced synchronously by [`Network::send`].
    pending: VecDeque<NetEvent>,
    keepalive_peers: watch::Sender<Vec<SocketAddr>>,
}

impl Network {
    /// Open the configured sockets and start their tasks. Must run inside a
    /// tokio runtime. A broken TLS setup (unreadable CA file) does not fail
    /// here: it is logged and each TLS connect then fails with the reason.
    pub async fn bind(config: NetConfig) -> io::Result<Network> {
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let tls = client_tls_config(&config.tls);
        if let Err(why) = &tls {
            tracing::warn!("TLS is not usable: {why}");
        }
        let shared = Arc::new(Shared {
            tls,
            connect_timeout: config.connect_timeout,
            stream_keepalive: (!config.stream_keepalive.is_zero())
                .then_some(config.stream_keepalive),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            events: events_tx,
        });

        let udp = match config.listen_udp {
            Some(addr) => Some(Arc::new(bind_udp(addr)?)),
            None => None,
        };
        let udp_local = match &udp {
            Some(sock) => Some(sock.local_addr()?),
            None => None,
        };
        let listener = match config.listen_tcp {
            Some(addr) => Some(bind_tcp(addr)?),
            None => None,
        };
        let tcp_local = match &listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };

        let (keepalive_peers, keepalive_rx) = watch::channel(Vec::new());
        if let (Some(sock), Some(local)) = (&udp, udp_local) {
            tokio::spawn(udp_receive_loop(shared.clone(), sock.clone(), local));
            if let Some(period) = config.udp_keepalive.filter(|p| !p.is_zero()) {
                tokio::spawn(udp_keepalive_loop(
                    shared.clone(),
                    sock.clone(),
                    local,
                    period,
                    keepalive_rx,
                ));
            }
        }
        if let Some(listener) = listener {
            tokio::spawn(accept_loop(shared.clone(), listener));
        }

        Ok(Network {
            shared,
            udp,
            udp_local,
            tcp_local,
            events,
            pending: VecDeque::new(),
            keepalive_peers,
        })
    }

    /// Local address of the UDP socket or the TCP listener (TLS: none, there
    /// is no TLS listener).
    pub fn local_addr(&self, kind: TransportKind) -> Option<SocketAddr> {
        match kind {
            TransportKind::Udp => self.udp_local,
            TransportKind::Tcp => self.tcp_local,
            TransportKind::Tls => None,
        }
    }

    /// Send `data` to `peer`; never blocks. UDP: one datagram. TCP/TLS: over
    /// the open connection to `peer` (outgoing or accepted), else a new one
    /// is connected in the background and `data` waits for it. TLS checks
    /// the certificate against `server_name` (else the peer's IP) and sends
    /// it as SNI. Failures come back as [`NetEvent::Failed`].
    pub fn send(&mut self, peer: Peer, server_name: Option<&str>, data: Vec<u8>) {
        match peer.transport {
            TransportKind::Udp => self.send_udp(peer, data),
            TransportKind::Tcp | TransportKind::Tls => self.send_stream(peer, server_name, data),
        }
    }

    fn send_udp(&mut self, peer: Peer, data: Vec<u8>) {
        let (Some(sock), Some(local)) = (&self.udp, self.udp_local) else {
            self.pending.push_back(NetEvent::Failed {
                peer,
                error: TransportError::Io("UDP is not enabled".into()),
            });
            return;
        };
        let to = udp_destination(local, peer.addr);
        match sock.try_send_to(&data, to) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Socket buffer full: wait for room in a task.
                let sock = sock.clone();
                let shared = self.shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = sock.send_to(&data, to).await {
                        let error = io_error(&e);
                        shared.emit(NetEvent::Failed { peer, error }).await;
                    }
                });
            }
            Err(e) => self.pending.push_back(NetEvent::Failed {
                peer,
                error: io_error(&e),
            }),
        }
    }

    fn send_stream(&mut self, peer: Peer, server_name: Option<&str>, data: Vec<u8>) {
        let mut conns = self.shared.conns();
        let data = match conns.get(&peer) {
            Some(conn) => match conn.tx.send(data) {
                Ok(()) => return,
                // The connection's task ended but has not unregistered yet.
                Err(mpsc::error::SendError(data)) => data,
            },
            None => data,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        // Cannot fail: `rx` is alive.
        let _ = tx.send(data);
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        conns.insert(peer, Conn { id, tx });
        drop(conns);
        let shared = self.shared.clone();
        let server_name = server_name.map(str::to_string);
        tokio::spawn(connect_and_run(shared, peer, server_name, rx, id));
    }

    /// The next network event. Cancel-safe: nothing is lost when the future
    /// is dropped before it completes.
    pub async fn next_event(&mut self) -> NetEvent {
        if let Some(event) = self.pending.pop_front() {
            return event;
        }
        match self.events.recv().await {
            Some(event) => event,
            // Unreachable: `shared` holds a sender as long as `self` lives.
            None => std::future::pending().await,
        }
    }

    /// The UDP peers (registrar/proxy flows) that get a CRLFCRLF keep-alive
    /// every `udp_keepalive`. Non-UDP peers are ignored. Replaces the list.
    pub fn set_udp_keepalive_peers(&mut self, peers: Vec<Peer>) {
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for peer in peers {
            if peer.transport == TransportKind::Udp && !addrs.contains(&peer.addr) {
                addrs.push(peer.addr);
            }
        }
        self.keepalive_peers.send_replace(addrs);
    }

    /// Number of open or connecting stream connections (for status/tests).
    pub fn stream_count(&self) -> usize {
        self.shared.conns().len()
    }
}

/// Map an I/O error of a socket to what the core is told.
fn io_error(e: &io::Error) -> TransportError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => TransportError::Refused,
        io::ErrorKind::TimedOut => TransportError::Timeout,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => TransportError::Closed,
        _ => TransportError::Io(e.to_string()),
    }
}

/// A datagram that is only CRLFs is a keep-alive (RFC 5626 §4.4.1 ping or
/// pong, or an empty datagram): not a message.
fn is_crlf_keepalive(data: &[u8]) -> bool {
    data.iter().all(|&b| b == b'\r' || b == b'\n')
}

/// Bind a UDP socket. `[::]` is dual-stack (IPv4 peers appear as mapped
/// addresses, which [`canonical`] and [`udp_destination`] translate), so
/// one listen address serves IPv4 and IPv6 on every platform (Windows
/// defaults to IPv6-only).
fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        sock.set_only_v6(false)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

/// Bind the TCP listener; `[::]` is dual-stack as for UDP.
fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        sock.set_only_v6(false)?;
    }
    #[cfg(unix)]
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(128)?;
    TcpListener::from_std(sock.into())
}

/// An IPv4-mapped IPv6 address as the plain IPv4 address peers are known by.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Where to send to reach `addr` from a socket bound to `local`: IPv4
/// peers through a dual-stack IPv6 socket take the mapped form. (The local
/// address is known from the bind; no system call per packet.)
pub(crate) fn udp_destination(local: SocketAddr, addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(v4) if local.is_ipv6() => {
            SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), addr.port())
        }
        _ => addr,
    }
}

async fn udp_receive_loop(shared: Arc<Shared>, sock: Arc<UdpSocket>, local: SocketAddr) {
    // One byte more than the largest message, to notice truncation.
    let mut buf = vec![0u8; MAX_MESSAGE_SIZE + 1];
    loop {
        let received = tokio::select! {
            r = sock.recv_from(&mut buf) => r,
            _ = shared.events.closed() => return,
        };
        match received {
            Ok((n, from)) => {
                let from = canonical(from);
                let Some(data) = buf.get(..n) else { continue };
                if is_crlf_keepalive(data) {
                    continue;
                }
                if n > MAX_MESSAGE_SIZE {
                    tracing::warn!(%from, "dropping an oversized UDP datagram");
                    continue;
                }
                let peer = Peer {
                    transport: TransportKind::Udp,
                    addr: from,
                };
                shared
                    .emit(NetEvent::Received {
                        peer,
                        local,
                        data: data.to_vec(),
                    })
                    .await;
            }
            Err(e) => {
                // E.g. ICMP port unreachable reported on Windows (WSAECONNRESET):
                // it cannot be tied to a peer here; keep receiving.
                tracing::debug!("UDP receive error: {e}");
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
                ) {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

async fn udp_keepalive_loop(
    shared: Arc<Shared>,
    sock: Arc<UdpSocket>,
    local: SocketAddr,
    period: Duration,
    peers: watch::Receiver<Vec<SocketAddr>>,
) {
    let start = tokio::time::Instant::now() + period;
    let mut ticks = tokio::time::interval_at(start, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shared.events.closed() => return,
        }
        let targets = peers.borrow().clone();
        for addr in targets {
            if let Err(e) = sock.send_to(PING, udp_destination(local, addr)).await {
                tracing::debug!(%addr, "UDP keep-alive not sent: {e}");
            }
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shared.events.closed() => return,
        };
        match accepted {
            Ok((stream, remote)) => {
                let remote = canonical(remote);
                let _ = stream.set_nodelay(true);
                let local = match stream.local_addr() {
                    Ok(local) => local,
                    Err(e) => {
                        tracing::debug!(%remote, "accepted connection unusable: {e}");
                        continue;
                    }
                };
                let peer = Peer {
                    transport: TransportKind::Tcp,
                    addr: remote,
                };
                let (tx, rx) = mpsc::unbounded_channel();
                let id = shared.register(peer, tx);
                tracing::debug!(%remote, "accepted TCP connection");
                tokio::spawn(run_stream(shared.clone(), peer, local, stream, rx, id));
            }
            Err(e) => {
                tracing::warn!("TCP accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// A connected stream, before it runs.
enum Connected {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

async fn connect_and_run(
    shared: Arc<Shared>,
    peer: Peer,
    server_name: Option<String>,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    id: u64,
) {
    let attempt = tokio::time::timeout(
        shared.connect_timeout,
        connect(&shared, peer, server_name.as_deref()),
    );
    let outcome = tokio::select! {
        r = attempt => r,
        _ = shared.events.closed() => return,
    };
    let (connected, local) = match outcome {
        Ok(Ok(c)) => c,
        Ok(Err(error)) => return fail(&shared, peer, id, error).await,
        Err(_elapsed) => return fail(&shared, peer, id, TransportError::Timeout).await,
    };
    tracing::debug!(remote = %peer.addr, transport = ?peer.transport, "connected");
    match connected {
        Connected::Tcp(s) => run_stream(shared, peer, local, s, rx, id).await,
        Connected::Tls(s) => run_stream(shared, peer, local, s, rx, id).await,
    }
}

async fn fail(shared: &Shared, peer: Peer, id: u64, error: TransportError) {
    tracing::debug!(remote = %peer.addr, transport = ?peer.transport, "connect failed: {error}");
    shared.unregister(peer, id);
    shared.emit(NetEvent::Failed { peer, error }).await;
}

async fn connect(
    shared: &Shared,
    peer: Peer,
    server_name: Option<&str>,
) -> Result<(Connected, SocketAddr), TransportError> {
    // Check TLS usability before opening a connection for nothing.
    let tls = match peer.transport {
        TransportKind::Tls => Some(shared.tls.clone().map_err(TransportError::Tls)?),
        _ => None,
    };
    let tcp = TcpStream::connect(peer.addr)
        .await
        .map_err(|e| io_error(&e))?;
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().map_err(|e| io_error(&e))?;
    let Some(tls) = tls else {
        return Ok((Connected::Tcp(tcp), local));
    };
    let name = match server_name {
        Some(name) => tls_server_name(name)?,
        None => ServerName::IpAddress(peer.addr.ip().into()),
    };
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| tls_handshake_error(&e))?;
    Ok((Connected::Tls(Box::new(stream)), local))
}

/// Read, frame and write one stream connection until it ends; then report
/// [`NetEvent::Closed`] (unless the whole network is being dropped).
async fn run_stream<S>(
    shared: Arc<Shared>,
    peer: Peer,
    local: SocketAddr,
    mut stream: S,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    id: u64,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; STREAM_READ_BUF];
    let mut last_write = Instant::now();
    let why = 'conn: loop {
        let ping_at = shared
            .stream_keepalive
            .map_or(last_write + Duration::from_secs(86_400), |p| last_write + p);
        tokio::select! {
            _ = shared.events.closed() => return,
            out = rx.recv() => {
                let Some(data) = out else { break "replaced by a newer connection".to_string() };
                if let Err(e) = stream.write_all(&data).await {
                    break format!("write failed: {e}");
                }
                last_write = Instant::now();
            }
            read = stream.read(&mut buf) => {
                let n = match read {
                    Ok(0) => break "closed by the peer".to_string(),
                    Ok(n) => n,
                    Err(e) => break format!("read failed: {e}"),
                };
                framer.push(buf.get(..n).unwrap_or_default());
                loop {
                    match framer.next_frame() {
                        Ok(None) => break,
                        Ok(Some(Frame::Message(data))) => {
                            shared.emit(NetEvent::Received { peer, local, data }).await;
                        }
                        Ok(Some(Frame::KeepAlive)) => {
                            // RFC 5626 §4.4.1: answer a ping with a pong.
                            if let Err(e) = stream.write_all(PONG).await {
                                break 'conn format!("write failed: {e}");
                            }
                            last_write = Instant::now();
                        }
                        Ok(Some(Frame::Pong)) => {
                            tracing::trace!(remote = %peer.addr, "keep-alive pong");
                        }
                        Err(e) => {
                            tracing::warn!(remote = %peer.addr, "closing the connection: unframeable data: {e}");
                            break 'conn format!("framing error: {e}");
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(ping_at.into()), if shared.stream_keepalive.is_some() => {
                if let Err(e) = stream.write_all(PING).await {
                    break format!("write failed: {e}");
                }
                last_write = Instant::now();
            }
        }
    };
    tracing::debug!(remote = %peer.addr, transport = ?peer.transport, "connection ended: {why}");
    shared.unregister(peer, id);
    // Best effort close (TLS close_notify, TCP FIN).
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.shutdown()).await;
    shared.emit(NetEvent::Closed { peer }).await;
}

// ---------------------------------------------------------------- TLS ----

/// Why a pinned certificate was refused (carried in `CertificateError::Other`).
#[derive(Debug)]
struct PinMismatch;

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("certificate does not match the pinned SHA-256 fingerprint")
    }
}

impl std::error::Error for PinMismatch {}

/// Certificate checks that do not build a chain.
#[derive(Debug)]
enum NoChainMode {
    /// Accept iff the end-entity certificate's SHA-256 equals the pin.
    Pin([u8; 32]),
    /// Accept anything (`verify = false`).
    AcceptAny,
    /// No trust anchors could be loaded: nothing is trusted.
    NoRoots,
    /// Accept anything and keep the chain (the doctor's look at a server).
    Capture(Arc<Mutex<Vec<CertificateDer<'static>>>>),
}

/// A verifier for pinning / no verification: skips the chain but still
/// checks the handshake signature with the certificate's key.
#[derive(Debug)]
struct NoChainVerifier {
    mode: NoChainMode,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.mode {
            NoChainMode::Pin(pin) => {
                let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
                if digest == *pin {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                        OtherError(Arc::new(PinMismatch)),
                    )))
                }
            }
            NoChainMode::AcceptAny => Ok(ServerCertVerified::assertion()),
            NoChainMode::Capture(seen) => {
                let mut chain = vec![end_entity.clone().into_owned()];
                chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
                *seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = chain;
                Ok(ServerCertVerified::assertion())
            }
            NoChainMode::NoRoots => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad CA file {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in CA file {}", path.display()));
    }
    Ok(certs)
}

/// The rustls client configuration for `cfg` (ring provider).
pub(crate) fn client_tls_config(
    cfg: &TlsClientConfig,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = server_verifier(cfg, &provider)?;
    client_config_with(verifier, &provider)
}

fn client_config_with(
    verifier: Arc<dyn ServerCertVerifier>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificate verifier a TLS connect with `cfg` uses.
fn server_verifier(
    cfg: &TlsClientConfig,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    let no_chain = |mode| -> Arc<dyn ServerCertVerifier> {
        Arc::new(NoChainVerifier {
            mode,
            algorithms: provider.signature_verification_algorithms,
        })
    };
    let verifier: Arc<dyn ServerCertVerifier> = if let Some(pin) = cfg.pinned_sha256 {
        no_chain(NoChainMode::Pin(pin))
    } else if !cfg.verify {
        tracing::warn!("TLS certificate verification is OFF: any server is accepted");
        no_chain(NoChainMode::AcceptAny)
    } else if cfg.extra_ca_file.is_some() || cfg.extra_ca_pem.is_some() {
        let mut roots = match &cfg.extra_ca_file {
            Some(path) => load_ca_file(path)?,
            None => Vec::new(),
        };
        if let Some(pem) = &cfg.extra_ca_pem {
            roots.extend(
                crate::config::pem_certificates(pem).map_err(|e| format!("tls_ca_pem: {e}"))?,
            );
        }
        let path = cfg
            .extra_ca_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("tls_ca_pem"));
        match rustls_platform_verifier::Verifier::new_with_extra_roots(
            roots.clone(),
            provider.clone(),
        ) {
            Ok(v) => Arc::new(v),
            Err(e) => {
                tracing::info!("platform verifier unavailable ({e}); trusting only the CA file");
                let mut store = rustls::RootCertStore::empty();
                for cert in roots {
                    store
                        .add(cert)
                        .map_err(|e| format!("bad CA in {}: {e}", path.display()))?;
                }
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(store),
                    provider.clone(),
                )
                .build()
                .map_err(|e| format!("CA file {}: {e}", path.display()))?
            }
        }
    } else {
        match rustls_platform_verifier::Verifier::new(provider.clone()) {
            Ok(v) => Arc::new(v),
            Err(e) => {
                tracing::warn!("no trusted CA certificates ({e}): TLS servers will be refused");
                no_chain(NoChainMode::NoRoots)
            }
        }
    };
    Ok(verifier)
}

/// The TLS server name for `name` (host name or IP literal, brackets and
/// trailing dot allowed).
fn tls_server_name(name: &str) -> Result<ServerName<'static>, TransportError> {
    ServerName::try_from(
        name.trim_start_matches('[')
            .trim_end_matches([']', '.'])
            .to_string(),
    )
    .map_err(|_| TransportError::Tls(format!("invalid TLS server name {name:?}")))
}

/// Check a server's certificate chain (end entity first) for `server_name`
/// exactly as a TLS connect with `cfg` would, with the same error mapping
/// (used by `softline doctor` to name the reason).
pub fn verify_server_certificate(
    cfg: &TlsClientConfig,
    chain: &[CertificateDer<'static>],
    server_name: &str,
) -> Result<(), TransportError> {
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = server_verifier(cfg, &provider).map_err(TransportError::Tls)?;
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return Err(TransportError::Tls("the server sent no certificate".into()));
    };
    let name = tls_server_name(server_name)?;
    verifier
        .verify_server_cert(end_entity, intermediates, &name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| rustls_error(&e))
}

/// Connect to `addr` over TLS with any certificate accepted (the handshake
/// signature is still checked) and return the chain the server sent, with
/// the TCP connect time. For diagnosis only: nothing is sent.
pub async fn fetch_server_certificates(
    addr: SocketAddr,
    server_name: &str,
    timeout: Duration,
) -> Result<(Vec<CertificateDer<'static>>, Duration), TransportError> {
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let verifier = Arc::new(NoChainVerifier {
        mode: NoChainMode::Capture(seen.clone()),
        algorithms: provider.signature_verification_algorithms,
    });
    let config = client_config_with(verifier, &provider).map_err(TransportError::Tls)?;
    let name = tls_server_name(server_name)?;
    let attempt = async {
        let started = Instant::now();
        let tcp = TcpStream::connect(addr).await.map_err(|e| io_error(&e))?;
        let connect_time = started.elapsed();
        let mut stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| tls_handshake_error(&e))?;
        let _ = stream.shutdown().await;
        Ok::<_, TransportError>(connect_time)
    };
    let connect_time = tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| TransportError::Timeout)??;
    let chain = seen
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    Ok((chain, connect_time))
}

/// Map a failed TLS handshake to the reason the user acts on.
fn tls_handshake_error(e: &io::Error) -> TransportError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(err) => rustls_error(err),
        None => match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
                TransportError::Tls("the server closed the connection during the handshake".into())
            }
            _ => io_error(e),
        },
    }
}

fn rustls_error(err: &rustls::Error) -> TransportError {
    match err {
        rustls::Error::InvalidCertificate(cert) => {
            TransportError::TlsCertificate(certificate_problem(cert))
        }
        rustls::Error::AlertReceived(alert) => {
            TransportError::Tls(format!("the server refused the handshake ({alert:?})"))
        }
        other => TransportError::Tls(other.to_string()),
    }
}

fn certificate_problem(err: &CertificateError) -> TlsCertProblem {
    match err {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            TlsCertProblem::Expired
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            TlsCertProblem::NotYetValid
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            TlsCertProblem::WrongHost
        }
        CertificateError::UnknownIssuer => TlsCertProblem::UntrustedIssuer,
        CertificateError::Revoked => TlsCertProblem::Revoked,
        CertificateError::Other(OtherError(inner)) if inner.is::<PinMismatch>() => {
            TlsCertProblem::PinMismatch
        }
        other => TlsCertProblem::Other(other.to_string()),
    }
}

// ------------------------------------------------------- RFC 3263 DNS ----

/// One SRV answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SrvRecord {
    priority: u16,
    weight: u16,
    port: u16,
    /// Target host, without the trailing dot.
    target: String,
}

/// A server to try: transport, host name and port (from SRV or defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    transport: TransportKind,
    host: String,
    port: u16,
}

/// Order SRV records as RFC 2782 says: ascending priority; within one
/// priority a weighted random order (zero weights first in the running
/// sum). `pick(total)` returns a number in `0..=total`.
fn order_srv(mut records: Vec<SrvRecord>, mut pick: impl FnMut(u32) -> u32) -> Vec<SrvRecord> {
    records.sort_by_key(|r| r.priority);
    let mut ordered = Vec::with_capacity(records.len());
    let mut rest = records.into_iter().peekable();
    while let Some(first) = rest.next() {
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|r| r.priority == group[0].priority) {
            group.push(next);
        }
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let chosen = pick(total).min(total);
            let mut running = 0u32;
            let index = group
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= chosen
                })
                .unwrap_or(0);
            ordered.push(group.remove(index));
        }
    }
    ordered
}

/// The SRV service name for a transport (RFC 3263 §4.1).
fn srv_prefix(transport: TransportKind) -> &'static str {
    match transport {
        TransportKind::Udp => "_sip._udp",
        TransportKind::Tcp => "_sip._tcp",
        TransportKind::Tls => "_sips._tcp",
    }
}

/// The transport of a NAPTR service field, if it is one we use.
fn naptr_transport(services: &[u8], sips: bool) -> Option<TransportKind> {
    let service = std::str::from_utf8(services).ok()?;
    if service.eq_ignore_ascii_case("SIPS+D2T") {
        Some(TransportKind::Tls)
    } else if sips {
        None
    } else if service.eq_ignore_ascii_case("SIP+D2U") {
        Some(TransportKind::Udp)
    } else if service.eq_ignore_ascii_case("SIP+D2T") {
        Some(TransportKind::Tcp)
    } else {
        None
    }
}

/// RFC 6761 §6.3: "localhost" names are loopback, never asked of DNS.
fn is_localhost(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    host.eq_ignore_ascii_case("localhost")
        || host
            .len()
            .checked_sub(".localhost".len())
            .and_then(|cut| host.get(cut..))
            .is_some_and(|tail| tail.eq_ignore_ascii_case(".localhost"))
}

/// The name to query: absolute when it has a dot (no search-list walk).
fn dns_name(name: &str) -> String {
    if name.contains('.') && !name.ends_with('.') {
        format!("{name}.")
    } else {
        name.to_string()
    }
}

fn push_unique(out: &mut Vec<(Peer, String)>, peer: Peer, name: &str) {
    if !out.iter().any(|(p, _)| *p == peer) {
        out.push((peer, name.to_string()));
    }
}

type Resolver = hickory_resolver::TokioResolver;

/// Locate a SIP server (RFC 3263 §4): the ordered failover list of
/// (transport + address, TLS server name).
///
/// - IP literal: that address, port or the transport's default.
/// - Port given: A/AAAA of the host only.
/// - Otherwise NAPTR (when the transport is not fixed), then SRV
///   (`_sip._udp`, `_sip._tcp`, `_sips._tcp`; priority, then weight),
///   then A/AAAA on the default port.
///
/// The TLS server name is the SRV target (or the host).
pub async fn resolve(target: &SipTarget) -> Result<Vec<(Peer, String)>, TransportError> {
    let host = target.host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(TransportError::Dns("empty host name".into()));
    }
    // A SIPS URI is TLS whatever else is said (RFC 3261 §26.2.2).
    let fixed = if target.sips {
        Some(TransportKind::Tls)
    } else {
        target.transport
    };
    let default_transport = fixed.unwrap_or(TransportKind::Udp);

    if let Ok(ip) = host.parse::<IpAddr>() {
        let port = target
            .port
            .unwrap_or_else(|| default_transport.default_port());
        let peer = Peer {
            transport: default_transport,
            addr: SocketAddr::new(ip, port),
        };
        return Ok(vec![(peer, host.to_string())]);
    }
    let name = host.trim_end_matches('.');
    // RFC 6761 §6.4: `.invalid` names never resolve; answer at once
    // instead of asking (and perhaps waiting on) a DNS server.
    let lower = name.to_ascii_lowercase();
    if lower == "invalid" || lower.ends_with(".invalid") {
        return Err(TransportError::Dns(format!(
            "{name}: no such host (.invalid, RFC 6761)"
        )));
    }

    if is_localhost(name) {
        let port = target
            .port
            .unwrap_or_else(|| default_transport.default_port());
        let mut out = Vec::new();
        for addr in localhost_addrs(name, port).await {
            let peer = Peer {
                transport: default_transport,
                addr,
            };
            push_unique(&mut out, peer, name);
        }
        return Ok(out);
    }

    let resolver = match hickory_resolver::Resolver::builder_tokio() {
        Ok(builder) => Some(builder.build()),
        Err(e) => {
            tracing::debug!("DNS resolver configuration unusable ({e}); using the system lookup");
            None
        }
    };
    let mut last_error = String::from("no usable DNS records");

    if let Some(port) = target.port {
        let candidate = Candidate {
            transport: default_transport,
            host: name.to_string(),
            port,
        };
        let mut out = Vec::new();
        add_candidate(resolver.as_ref(), &candidate, &mut out, &mut last_error).await;
        return finish(name, out, last_error);
    }

    let mut candidates = Vec::new();
    if let Some(resolver) = &resolver {
        if fixed.is_none() {
            candidates = naptr_candidates(resolver, name, target.sips, &mut last_error).await;
        }
        if candidates.is_empty() {
            let transports = match fixed {
                Some(t) => vec![t],
                None => vec![TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls],
            };
            for transport in transports {
                let service = format!("{}.{name}", srv_prefix(transport));
                candidates
                    .extend(srv_candidates(resolver, &service, transport, &mut last_error).await);
            }
        }
    }

    let mut out = Vec::new();
    for candidate in &candidates {
        add_candidate(resolver.as_ref(), candidate, &mut out, &mut last_error).await;
    }
    if out.is_empty() {
        // RFC 3263 §4.2: no SRV, use the host's addresses on the default port.
        let candidate = Candidate {
            transport: default_transport,
            host: name.to_string(),
            port: default_transport.default_port(),
        };
        add_candidate(resolver.as_ref(), &candidate, &mut out, &mut last_error).await;
    }
    finish(name, out, last_error)
}

fn finish(
    name: &str,
    out: Vec<(Peer, String)>,
    last_error: String,
) -> Result<Vec<(Peer, String)>, TransportError> {
    if out.is_empty() {
        Err(TransportError::Dns(format!("{name}: {last_error}")))
    } else {
        Ok(out)
    }
}

/// Loopback addresses for a localhost name: the system's answer (hosts
/// file), else 127.0.0.1 and ::1.
async fn localhost_addrs(name: &str, port: u16) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = match tokio::net::lookup_host((name, port)).await {
        Ok(found) => found.filter(|a| a.ip().is_loopback()).collect(),
        Err(_) => Vec::new(),
    };
    if addrs.is_empty() {
        addrs.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
        addrs.push(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port));
    }
    // IPv4 first: a server bound to 127.0.0.1 is the common case.
    addrs.sort_by_key(|a| a.is_ipv6());
    addrs
}

/// Part of a DNS error's text when no DNS server answered (timeout,
/// unreachable): unlike "no such records", the name may well exist.
pub const DNS_NO_ANSWER: &str = "no answer from the DNS server";

/// A resolver error in words, marked with [`DNS_NO_ANSWER`] unless the DNS
/// server answered (no such name / no such records).
fn resolver_error(e: &hickory_resolver::ResolveError) -> String {
    if e.is_no_records_found() {
        e.to_string()
    } else {
        format!("{DNS_NO_ANSWER} ({e})")
    }
}

async fn naptr_candidates(
    resolver: &Resolver,
    name: &str,
    sips: bool,
    last_error: &mut String,
) -> Vec<Candidate> {
    use hickory_resolver::proto::rr::{RData, RecordType};
    let lookup = match resolver.lookup(dns_name(name), RecordType::NAPTR).await {
        Ok(lookup) => lookup,
        Err(e) => {
            if !e.is_no_records_found() {
                *last_error = resolver_error(&e);
            }
            return Vec::new();
        }
    };
    let mut records: Vec<(u16, u16, TransportKind, String)> = lookup
        .iter()
        .filter_map(|rdata| match rdata {
            RData::NAPTR(n) if n.flags().eq_ignore_ascii_case(b"s") => {
                let transport = naptr_transport(n.services(), sips)?;
                let replacement = n.replacement().to_utf8();
                Some((n.order(), n.preference(), transport, replacement))
            }
            _ => None,
        })
        .collect();
    records.sort_by_key(|(order, preference, _, _)| (*order, *preference));
    let mut candidates = Vec::new();
    for (_, _, transport, service) in records {
        candidates.extend(srv_candidates(resolver, &service, transport, last_error).await);
    }
    candidates
}

async fn srv_candidates(
    resolver: &Resolver,
    service: &str,
    transport: TransportKind,
    last_error: &mut String,
) -> Vec<Candidate> {
    let lookup = match resolver.srv_lookup(dns_name(service)).await {
        Ok(lookup) => lookup,
        Err(e) => {
            if !e.is_no_records_found() {
                *last_error = resolver_error(&e);
            }
            return Vec::new();
        }
    };
    let records: Vec<SrvRecord> = lookup
        .iter()
        .map(|srv| SrvRecord {
            priority: srv.priority(),
            weight: srv.weight(),
            port: srv.port(),
            target: srv.target().to_utf8().trim_end_matches('.').to_string(),
        })
        // RFC 2782: a target of "." means the service is not offered.
        .filter(|r| !r.target.is_empty())
        .collect();
    order_srv(records, |total| rand::random_range(0..=total))
        .into_iter()
        .map(|r| Candidate {
            transport,
            host: r.target,
            port: r.port,
        })
        .collect()
}

/// Resolve one candidate's host to addresses and append them.
async fn add_candidate(
    resolver: Option<&Resolver>,
    candidate: &Candidate,
    out: &mut Vec<(Peer, String)>,
    last_error: &mut String,
) {
    let host = candidate.host.as_str();
    let addrs: Vec<IpAddr> = if let Ok(ip) = host.parse::<IpAddr>() {
        vec![ip]
    } else if is_localhost(host) {
        localhost_addrs(host, candidate.port)
            .await
            .into_iter()
            .map(|a| a.ip())
            .collect()
    } else {
        let mut found = Vec::new();
        let mut ask_system = resolver.is_none();
        if let Some(resolver) = resolver {
            match resolver.lookup_ip(host).await {
                Ok(lookup) => found.extend(lookup.iter()),
                Err(e) => {
                    // Only a definite "no such records" is worth asking the
                    // system (nsswitch: mDNS, ...) again; a dead DNS server is
                    // the same dead server for the system.
                    ask_system = e.is_no_records_found();
                    *last_error = resolver_error(&e);
                }
            }
        }
        if found.is_empty() && ask_system {
            match tokio::net::lookup_host((host, candidate.port)).await {
                Ok(addrs) => found.extend(addrs.map(|a| a.ip())),
                Err(e) => *last_error = e.to_string(),
            }
        }
        found
    };
    for ip in addrs {
        let peer = Peer {
            transport: candidate.transport,
            addr: SocketAddr::new(ip, candidate.port),
        };
        push_unique(out, peer, host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port: 5060,
            target: target.to_string(),
        }
    }

    fn targets(records: &[SrvRecord]) -> Vec<&str> {
        records.iter().map(|r| r.target.as_str()).collect()
    }

    #[test]
    fn srv_sorted_by_priority_first() {
        let records = vec![
            srv(20, 100, "c"),
            srv(10, 0, "a"),
            srv(30, 5, "d"),
            srv(15, 1, "b"),
        ];
        let ordered = order_srv(records, |total| total);
        assert_eq!(targets(&ordered), ["a", "b", "c", "d"]);
    }

    #[test]
    fn srv_weighted_choice_within_a_priority() {
        // Weights 10 and 30: running sums 10, 40. A draw of 0..=10 picks
        // the first, 11..=40 the second (RFC 2782).
        let records = vec![
            srv(1, 10, "light"),
            srv(1, 30, "heavy"),
            srv(2, 0, "backup"),
        ];
        let mut draws = vec![25u32].into_iter();
        let ordered = order_srv(records.clone(), |_| draws.next().unwrap_or(0));
        assert_eq!(targets(&ordered), ["heavy", "light", "backup"]);
        let mut draws = vec![10u32].into_iter();
        let ordered = order_srv(records, |_| draws.next().unwrap_or(0));
        assert_eq!(targets(&ordered), ["light", "heavy", "backup"]);
    }

    #[test]
    fn srv_zero_weight_first_in_running_sum_and_totals_passed() {
        let records = vec![srv(1, 5, "w5"), srv(1, 0, "w0")];
        let mut totals = Vec::new();
        let ordered = order_srv(records, |total| {
            totals.push(total);
            0
        });
        // Draw 0 hits the zero-weight record, which sorts first.
        assert_eq!(targets(&ordered), ["w0", "w5"]);
        assert_eq!(totals, [5, 5]);
        // A draw beyond the total is clamped, never out of range.
        let ordered = order_srv(vec![srv(1, 1, "x"), srv(1, 1, "y")], |_| u32::MAX);
        assert_eq!(targets(&ordered), ["y", "x"]);
    }

    #[test]
    fn srv_random_order_keeps_every_record() {
        let records: Vec<_> = (0..20).map(|i| srv(i % 3, i, &format!("t{i}"))).collect();
        let ordered = order_srv(records.clone(), |total| rand::random_range(0..=total));
        assert_eq!(ordered.len(), records.len());
        assert!(ordered.windows(2).all(|w| w[0].priority <= w[1].priority));
        for r in &records {
            assert!(ordered.contains(r));
        }
    }

    #[test]
    fn naptr_services() {
        assert_eq!(naptr_transport(b"SIP+D2U", false), Some(TransportKind::Udp));
        assert_eq!(naptr_transport(b"sip+d2t", false), Some(TransportKind::Tcp));
        assert_eq!(
            naptr_transport(b"SIPS+D2T", false),
            Some(TransportKind::Tls)
        );
        assert_eq!(naptr_transport(b"SIPS+D2T", true), Some(TransportKind::Tls));
        assert_eq!(naptr_transport(b"SIP+D2U", true), None);
        assert_eq!(naptr_transport(b"SIP+D2S", false), None);
        assert_eq!(naptr_transport(b"E2U+sip", false), None);
        assert_eq!(naptr_transport(&[0xff, 0xfe], false), None);
    }

    #[test]
    fn localhost_names() {
        assert!(is_localhost("localhost"));
        assert!(is_localhost("LOCALHOST."));
        assert!(is_localhost("pbx.localhost"));
        assert!(!is_localhost("notlocalhost"));
        assert!(!is_localhost("localhost.example.com"));
        assert!(!is_localhost(""));
        assert_eq!(srv_prefix(TransportKind::Tls), "_sips._tcp");
        assert_eq!(dns_name("_sip._udp.example.com"), "_sip._udp.example.com.");
        assert_eq!(dns_name("example.com."), "example.com.");
        assert_eq!(dns_name("pbx"), "pbx");
    }

    #[test]
    fn crlf_datagrams_are_keepalives() {
        assert!(is_crlf_keepalive(b"\r\n\r\n"));
        assert!(is_crlf_keepalive(b"\r\n"));
        assert!(is_crlf_keepalive(b""));
        assert!(!is_crlf_keepalive(b"\r\nOPTIONS"));
    }

    #[test]
    fn certificate_errors_mapped_precisely() {
        use rustls::Error;
        let cert = |e| rustls_error(&Error::InvalidCertificate(e));
        let problem = TransportError::TlsCertificate;
        assert_eq!(
            cert(CertificateError::Expired),
            problem(TlsCertProblem::Expired)
        );
        let expired = CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(200)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs(100)),
        };
        assert_eq!(cert(expired), problem(TlsCertProblem::Expired));
        assert_eq!(
            cert(CertificateError::NotValidYet),
            problem(TlsCertProblem::NotYetValid)
        );
        assert_eq!(
            cert(CertificateError::NotValidForName),
            problem(TlsCertProblem::WrongHost)
        );
        assert_eq!(
            cert(CertificateError::UnknownIssuer),
            problem(TlsCertProblem::UntrustedIssuer)
        );
        assert_eq!(
            cert(CertificateError::Revoked),
            problem(TlsCertProblem::Revoked)
        );
        let pin = CertificateError::Other(OtherError(Arc::new(PinMismatch)));
        assert_eq!(cert(pin), problem(TlsCertProblem::PinMismatch));
        assert!(matches!(
            cert(CertificateError::BadSignature),
            TransportError::TlsCertificate(TlsCertProblem::Other(_))
        ));
        let alert = rustls_error(&Error::AlertReceived(
            rustls::AlertDescription::HandshakeFailure,
        ));
        assert!(matches!(alert, TransportError::Tls(ref why) if why.contains("HandshakeFailure")));
        // tokio-rustls wraps rustls errors in io::Error.
        let wrapped = io::Error::new(
            io::ErrorKind::InvalidData,
            Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(
            tls_handshake_error(&wrapped),
            problem(TlsCertProblem::UntrustedIssuer)
        );
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert!(matches!(tls_handshake_error(&eof), TransportError::Tls(_)));
    }

    #[test]
    fn io_errors_mapped() {
        let kind = |k| io_error(&io::Error::from(k));
        assert_eq!(
            kind(io::ErrorKind::ConnectionRefused),
            TransportError::Refused
        );
        assert_eq!(kind(io::ErrorKind::TimedOut), TransportError::Timeout);
        assert_eq!(kind(io::ErrorKind::ConnectionReset), TransportError::Closed);
        assert!(matches!(
            kind(io::ErrorKind::PermissionDenied),
            TransportError::Io(_)
        ));
    }

    #[test]
    fn unreadable_ca_file_is_an_error_with_the_path() {
        let cfg = TlsClientConfig {
            extra_ca_file: Some(PathBuf::from("/nonexistent/softline-ca.pem")),
            extra_ca_pem: None,
            pinned_sha256: None,
            verify: true,
        };
        let err = client_tls_config(&cfg).err().unwrap();
        assert!(err.contains("/nonexistent/softline-ca.pem"), "{err}");
        // Pin and verify=false need no roots at all.
        let pinned = TlsClientConfig {
            pinned_sha256: Some([7; 32]),
            ..TlsClientConfig::default()
        };
        assert!(client_tls_config(&pinned).is_ok());
    }
}
