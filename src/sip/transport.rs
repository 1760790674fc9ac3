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
