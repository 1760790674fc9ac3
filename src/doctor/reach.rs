//! (c) Reachability of the server on the account's transport: UDP = an
//! OPTIONS round trip (any SIP response counts) on a connected socket, so
//! an ICMP "port unreachable" shows as refused; TCP/TLS = the TCP connect
//! time. "Refused" (something answered no) and "no answer" (packets
//! dropped: filtered) are told apart.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::{TcpStream, UdpSocket};

use super::{CheckResult, Context, Limits, sip, transport_name};
use crate::sip::message::Message;
use crate::sip::transport::{Peer, TransportKind};

/// How many of the resolved targets are tried.
const MAX_TARGETS: usize = 3;

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Probe {
    /// Reached: round trip (UDP: with the response's status) or connect time.
    Reached {
        time: Duration,
        response: Option<(u16, String)>,
    },
    Refused,
    NoAnswer,
    Error(String),
}

pub(super) async fn check(ctx: &mut Context, limits: Limits) -> CheckResult {
    let mut evidence = Vec::new();
    let mut first_problem: Option<(Peer, Probe)> = None;
    for (peer, name) in ctx.targets.iter().take(MAX_TARGETS) {
        let probe = match peer.transport {
            TransportKind::Udp => udp_options(ctx, *peer, limits.udp_probe).await,
            _ => tcp_connect(peer.addr, limits.connect).await,
        };
        let what = format!("{} {}", transport_name(peer.transport), peer.addr);
        match &probe {
            Probe::Reached { time, response } => {
                let how = match response {
                    Some((code, reason)) => {
                        format!(
                            "OPTIONS answered {code} {reason} in {} ms",
                            time.as_millis()
                        )
                    }
                    None => format!("TCP connected in {} ms", time.as_millis()),
                };
                evidence.push(format!("{what}: {how}"));
                ctx.chosen = Some((*peer, name.clone()));
                return CheckResult::passed("reachability", evidence.join("\n"));
            }
            Probe::Refused => evidence.push(format!("{what}: refused (nothing listens there)")),
            Probe::NoAnswer => evidence.push(format!(
                "{what}: no answer within {} s (packets dropped: filtered?)",
                match peer.transport {
                    TransportKind::Udp => limits.udp_probe.as_secs(),
                    _ => limits.connect.as_secs(),
                }
            )),
            Probe::Error(why) => evidence.push(format!("{what}: {why}")),
        }
        if first_problem.is_none() {
            first_problem = Some((*peer, probe));
        }
    }
    let advice = match first_problem {
        Some((peer, probe)) => advice(peer, &probe),
        None => "No server address to try.".to_string(),
    };
    CheckResult::failed("reachability", evidence.join("\n"), advice)
}

fn advice(peer: Peer, probe: &Probe) -> String {
    let port = peer.addr.port();
    match (peer.transport, probe) {
        (t, Probe::Refused) => format!(
            "Nothing accepts SIP over {} on port {port} of {}: check the port and transport \
             in the account with your admin (usual: 5060 UDP/TCP, 5061 TLS); the server may \
             not offer {}.",
            transport_name(t).to_uppercase(),
            peer.addr.ip(),
            transport_name(t).to_uppercase()
        ),
        (TransportKind::Udp, Probe::NoAnswer) => format!(
            "UDP {port} seems filtered (no answer at all): a firewall drops it; try transport \
             = \"tcp\" or \"tls\" (port 5061), or ask your network admin to open UDP {port}."
        ),
        (t, Probe::NoAnswer) => format!(
            "{} port {port} seems filtered (no answer at all): a firewall drops it; ask your \
             network admin to open it, or try another transport.",
            transport_name(t).to_uppercase()
        ),
        (_, Probe::Error(why)) => format!(
            "This computer cannot send to the server ({why}): check the network connection."
        ),
        (_, Probe::Reached { .. }) => String::new(),
    }
}

/// OPTIONS over a connected UDP socket, retransmitted (T1 doubling) until
/// a response, an ICMP refusal or `limit`.
async fn udp_options(ctx: &Context, peer: Peer, limit: Duration) -> Probe {
    let bind: SocketAddr = if peer.addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => return Probe::Error(e.to_string()),
    };
    if let Err(e) = sock.connect(peer.addr).await {
        return Probe::Error(e.to_string());
    }
    let local = match sock.local_addr() {
        Ok(a) => a,
        Err(e) => return Probe::Error(e.to_string()),
    };
    let request = sip::options_request(&ctx.account, peer, local);
    let started = Instant::now();
    let deadline = started + limit;
    let mut interval = Duration::from_millis(500);
    let mut buf = vec![0u8; 65_536];
    loop {
        match sock.send(request.text.as_bytes()).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Probe::Refused,
            Err(e) => return Probe::Error(e.to_string()),
        }
        let resend_at = (Instant::now() + interval).min(deadline);
        interval = (interval * 2).min(Duration::from_secs(4));
        loop {
            let wait = resend_at.saturating_duration_since(Instant::now());
            match tokio::time::timeout(wait, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Probe::Refused;
                }
                Ok(Err(e)) => return Probe::Error(e.to_string()),
                Ok(Ok(n)) => {
                    if let Some(Ok(Message::Response(r))) = buf.get(..n).map(Message::parse) {
                        return Probe::Reached {
                            time: started.elapsed(),
                            response: Some((r.code, r.reason)),
                        };
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            return Probe::NoAnswer;
        }
    }
}

/// A TCP connect, timed.
pub(super) async fn tcp_connect(addr: SocketAddr, limit: Duration) -> Probe {
    let started = Instant::now();
    match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Probe::Reached {
            time: started.elapsed(),
            response: None,
        },
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Probe::Refused,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => Probe::NoAnswer,
        Ok(Err(e)) => Probe::Error(e.to_string()),
        Err(_) => Probe::NoAnswer,
    }
}
