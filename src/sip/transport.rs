//! Transport-level types shared by the sans-IO core and the runtime
//! (RFC 3261 §18). No sockets here: only where bytes go and came from.

use std::net::SocketAddr;

/// A SIP transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Udp,
    Tcp,
    Tls,
}

impl TransportKind {
    /// Reliable transports carry no retransmissions (RFC 3261 §17.1.1.2).
    pub fn is_reliable(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }
    /// Token for the Via header.
    pub fn via_token(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
        }
    }
    pub fn default_port(self) -> u16 {
        match self {
            TransportKind::Tls => 5061,
            _ => 5060,
        }
    }
}

/// Where a message goes or came from: transport and remote address. Stream
/// transports are identified by the remote address; the runtime keeps one
/// connection per (transport, remote) and reuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: TransportKind,
    pub addr: SocketAddr,
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub peer: Peer,
    pub data: Vec<u8>,
}

/// Why the runtime could not reach a peer. Reported to the core so that
/// transactions fail fast and registration says *why* in plain words.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum TransportError {
    /// The name did not resolve (NXDOMAIN, no records, resolver failure).
    Dns(String),
    /// TCP/TLS connection refused (RST) or UDP port unreachable (ICMP).
    Refused,
    /// No answer: connect timed out or packets vanish (filtered port).
    Timeout,
    /// The TLS handshake failed because of the server certificate.
    TlsCertificate(TlsCertProblem),
    /// Another TLS handshake failure (protocol version, alert, ...).
    Tls(String),
    /// The connection was closed or reset after it was established.
    Closed,
    /// Any other I/O error, with its text.
    Io(String),
}

/// What is wrong with a server certificate, in words an admin acts on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsCertProblem {
    Expired,
    NotYetValid,
    /// Certificate does not name the host we connected to.
    WrongHost,
    /// Self-signed or issued by a CA we do not trust.
    UntrustedIssuer,
    /// A pinned fingerprint was configured and the server's differs.
    PinMismatch,
    Revoked,
    Other(String),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Dns(why) => write!(f, "DNS lookup failed: {why}"),
            TransportError::Refused => f.write_str("connection refused"),
            TransportError::Timeout => f.write_str("no answer (timeout)"),
            TransportError::TlsCertificate(p) => write!(f, "server certificate {p}"),
            TransportError::Tls(why) => write!(f, "TLS handshake failed: {why}"),
            TransportError::Closed => f.write_str("connection closed"),
            TransportError::Io(why) => write!(f, "network error: {why}"),
        }
    }
}

impl std::fmt::Display for TlsCertProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsCertProblem::Expired => f.write_str("has expired"),
            TlsCertProblem::NotYetValid => f.write_str("is not valid yet"),
            TlsCertProblem::WrongHost => f.write_str("does not match the server name"),
            TlsCertProblem::UntrustedIssuer => {
                f.write_str("is self-signed or from an untrusted CA")
            }
            TlsCertProblem::PinMismatch => f.write_str("does not match the pinned fingerprint"),
            TlsCertProblem::Revoked => f.write_str("is revoked"),
            TlsCertProblem::Other(why) => write!(f, "is not accepted: {why}"),
        }
    }
}
