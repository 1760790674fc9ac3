//! A seeded, per-packet impairment relay for the audio quality benchmark.
//!
//! The relay sits between a caller and a callee: on 127.0.0.1, or on the
//! root-namespace ends of the two veth pairs that lead into the caller's
//! and the callee's network namespaces (`crate::netns`), each side's
//! sockets on that side's address.
//! - SIP: the caller sends its INVITE to [`Relay::sip_addr`]; the relay
//!   forwards it to the callee from another socket and relays the callee's
//!   responses back (both phones answer to the source port, RFC 3581
//!   `rport`). The `m=audio` port (and `a=rtcp` port) of each SDP body is
//!   replaced by one of the relay's own RTP ports and its `c=` address by
//!   the relay's on that side, so that RTP and RTCP flow through it. Each
//!   `Contact` is pointed at the relay's SIP socket on the other side, so
//!   that requests inside the dialog (ACK, BYE) pass through it too (the
//!   two namespaces have no other way to each other), and the
//!   Request-URI of each request it passes on at the phone it goes to, as
//!   a proxy does (a callee takes the address it was reached at for its
//!   SDP).
//! - RTP: the k-th RTP packet of each direction is dropped or delayed by a
//!   pure function of (seed, direction, k) ([`fate`]), so every receiver
//!   tested with one seed meets exactly the same packet fate. RTCP (on its
//!   own port or multiplexed, RFC 5761) and SIP are never dropped or
//!   delayed.
//!
//! One thread, non-blocking sockets polled every 0.5 ms; due packets leave
//! in release-time order (a later packet with a shorter delay overtakes an
//! earlier one: reordering happens as on a real network).

// A real-time harness around real processes, not the sans-IO product: it
// reads the clock and sleeps.
#![allow(clippy::disallowed_methods)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What happens to RTP packets: random loss and a uniform one-way delay.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    pub seed: u64,
    /// Long-run share in 0..=1 of RTP packets dropped.
    pub loss: f64,
    /// Mean length of a loss burst in packets: 1 or less for independent
    /// (random) loss, above 1 for a two-state Gilbert model whose bad state
    /// drops every packet.
    pub burst: f64,
    /// Delay range (inclusive) in milliseconds, drawn uniformly per packet.
    pub delay_min_ms: u32,
    pub delay_max_ms: u32,
}

/// Caller → callee (the speech under test) or callee → caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward = 0,
    Backward = 1,
}

/// SplitMix64 finaliser: a well-mixed 64-bit hash of a 64-bit value.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash(seed: u64, dir: Direction, k: u64, field: u64) -> u64 {
    mix(mix(mix(mix(seed) ^ dir as u64) ^ k) ^ field)
}

/// A uniform number in [0, 1) from 53 bits of a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The fates of the RTP packets of both directions, packet after packet.
///
/// Each decision uses only the hash of (seed, direction, k) and, for
/// bursty loss, the chain state left by packet k-1 of that direction, so
/// the k-th packet of a direction meets the same fate in every run with
/// the same seed.
#[derive(Debug, Clone)]
pub struct Fates {
    imp: Impairment,
    bad: [bool; 2],
}

impl Fates {
    pub fn new(imp: Impairment) -> Fates {
        Fates {
            imp,
            bad: [false; 2],
        }
    }

    /// The fate of the k-th RTP packet (k from 0, called in order) of
    /// `dir`: `None` when it is dropped, else its delay in whole
    /// milliseconds.
    pub fn next(&mut self, dir: Direction, k: u64) -> Option<u32> {
        let imp = &self.imp;
        let u = unit(hash(imp.seed, dir, k, 1));
        let lost = if imp.burst <= 1.0 {
            u < imp.loss
        } else {
            // Gilbert: leave the bad state with r = 1/burst; enter it with
            // p chosen so that the stationary share p / (p + r) is `loss`.
            let r = 1.0 / imp.burst;
            let p = if imp.loss >= 1.0 {
                1.0
            } else {
                imp.loss * r / (1.0 - imp.loss)
            };
            let bad = &mut self.bad[dir as usize];
            *bad = if *bad { u >= r } else { u < p };
            *bad
        };
        if lost {
            return None;
        }
        let span = u64::from(imp.delay_max_ms.saturating_sub(imp.delay_min_ms)) + 1;
        Some(imp.delay_min_ms + (hash(imp.seed, dir, k, 2) % span) as u32)
    }
}

/// RFC 5761 §4: RTCP packet types 192–223 in the second byte.
fn is_rtcp(p: &[u8]) -> bool {
    matches!(p.get(1), Some(192..=223))
}

/// Counters the benchmark reports.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub rtp_forward: AtomicU64,
    /// RTP bytes (UDP payload) offered in the forward direction.
    pub rtp_forward_bytes: AtomicU64,
    pub dropped_forward: AtomicU64,
    pub rtp_backward: AtomicU64,
    pub dropped_backward: AtomicU64,
    pub rtcp: AtomicU64,
    pub sip: AtomicU64,
}

pub struct Relay {
    /// Where the caller sends its INVITE.
    pub sip_addr: SocketAddr,
    pub stats: Arc<RelayStats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Bind an even RTP port and the odd RTCP port above it on `ip`.
fn bind_pair(ip: Ipv4Addr, start: u16) -> std::io::Result<(UdpSocket, UdpSocket)> {
    let mut p = start & !1;
    while p < 65000 {
        if let Ok(rtp) = UdpSocket::bind((ip, p))
            && let Ok(rtcp) = UdpSocket::bind((ip, p + 1))
        {
            return Ok((rtp, rtcp));
        }
        p += 2;
    }
    Err(std::io::Error::new(
        ErrorKind::AddrInUse,
        "no free RTP port pair",
    ))
}

struct Pending {
    due: Instant,
    order: u64,
    to: SocketAddr,
    /// Index of the socket that sends it.
    via: usize,
    bytes: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.order) == (o.due, o.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.order).cmp(&(o.due, o.order))
    }
}

// Socket indices.
const SIP_FRONT: usize = 0; // faces the caller
const SIP_BACK: usize = 1; // faces the callee
const RTP_A: usize = 2; // faces the caller (the callee's answer is rewritten to it)
const RTCP_A: usize = 3;
const RTP_B: usize = 4; // faces the callee (the caller's offer is rewritten to it)
const RTCP_B: usize = 5;

impl Relay {
    /// Start relaying toward the callee's SIP address `callee`, with the
    /// caller's side on `front` and the callee's on `back` (both 127.0.0.1
    /// without namespaces).
    pub fn start(
        callee: SocketAddr,
        imp: Impairment,
        port_base: u16,
        front: Ipv4Addr,
        back: Ipv4Addr,
    ) -> std::io::Result<Relay> {
        let (front_ip, back_ip) = (front, back);
        let front = UdpSocket::bind((front_ip, 0))?;
        let back = UdpSocket::bind((back_ip, 0))?;
        let (rtp_a, rtcp_a) = bind_pair(front_ip, port_base)?;
        let (rtp_b, rtcp_b) = bind_pair(back_ip, rtp_a.local_addr()?.port() + 2)?;
        let socks = [front, back, rtp_a, rtcp_a, rtp_b, rtcp_b];
        for s in &socks {
            s.set_nonblocking(true)?;
        }
        let sip_addr = socks[SIP_FRONT].local_addr()?;
        let stats = Arc::new(RelayStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stats, stop) = (stats.clone(), stop.clone());
            std::thread::spawn(move || run(socks, callee, imp, &stats, &stop))
        };
        Ok(Relay {
            sip_addr,
            stats,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[allow(clippy::too_many_lines)]
fn run(
    socks: [UdpSocket; 6],
    callee: SocketAddr,
    imp: Impairment,
    stats: &RelayStats,
    stop: &AtomicBool,
) {
    let unspecified = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    let addr = |i: usize| socks[i].local_addr().unwrap_or(unspecified);
    let (rtp_a, rtp_b) = (addr(RTP_A), addr(RTP_B));
    let (sip_front, sip_back) = (addr(SIP_FRONT), addr(SIP_BACK));
    let mut caller_sip: Option<SocketAddr> = None;
    let mut caller_rtp: Option<SocketAddr> = None;
    let mut caller_rtcp: Option<SocketAddr> = None;
    let mut callee_rtp: Option<SocketAddr> = None;
    let mut callee_rtcp: Option<SocketAddr> = None;
    let mut k = [0u64; 2];
    let mut fates = Fates::new(imp);
    let mut queue: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut order = 0u64;
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        for (i, sock) in socks.iter().enumerate() {
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                let data = &buf[..n];
                match i {
                    SIP_FRONT => {
                        caller_sip = Some(from);
                        let text = rewrite_contact(&String::from_utf8_lossy(data), sip_back);
                        let text = rewrite_request_uri(&text, callee);
                        let (text, media) = rewrite_sdp(&text, rtp_b);
                        if let Some((rtp, rtcp)) = media {
                            caller_rtp = Some(rtp);
                            caller_rtcp = Some(rtcp);
                        }
                        stats.sip.fetch_add(1, Ordering::Relaxed);
                        let _ = socks[SIP_BACK].send_to(text.as_bytes(), callee);
                    }
                    SIP_BACK => {
                        let mut text = rewrite_contact(&String::from_utf8_lossy(data), sip_front);
                        if let Some(caller) = caller_sip {
                            text = rewrite_request_uri(&text, caller);
                        }
                        let (text, media) = rewrite_sdp(&text, rtp_a);
                        if let Some((rtp, rtcp)) = media {
                            callee_rtp = Some(rtp);
                            callee_rtcp = Some(rtcp);
                        }
                        stats.sip.fetch_add(1, Ordering::Relaxed);
                        if let Some(to) = caller_sip {
                            let _ = socks[SIP_FRONT].send_to(text.as_bytes(), to);
                        }
                    }
                    RTCP_A | RTCP_B => {
                        // The caller sends to the A ports (the answer it saw
                        // was rewritten to them), the callee to the B ports.
                        let (to, via) = if i == RTCP_A {
                            (callee_rtcp, RTCP_B)
                        } else {
                            (caller_rtcp, RTCP_A)
                        };
                        stats.rtcp.fetch_add(1, Ordering::Relaxed);
                        if let Some(to) = to {
                            let _ = socks[via].send_to(data, to);
                        }
                    }
                    _ => {
                        let (dir, to, send_via) = if i == RTP_A {
                            (Direction::Forward, callee_rtp, RTP_B)
                        } else {
                            (Direction::Backward, caller_rtp, RTP_A)
                        };
                        let Some(to) = to else { continue };
                        if is_rtcp(data) {
                            stats.rtcp.fetch_add(1, Ordering::Relaxed);
                            let _ = socks[send_via].send_to(data, to);
                            continue;
                        }
                        let idx = dir as usize;
                        let kk = k[idx];
                        k[idx] += 1;
                        let (count, dropped) = if dir == Direction::Forward {
                            (&stats.rtp_forward, &stats.dropped_forward)
                        } else {
                            (&stats.rtp_backward, &stats.dropped_backward)
                        };
                        count.fetch_add(1, Ordering::Relaxed);
                        if dir == Direction::Forward {
                            stats
                                .rtp_forward_bytes
                                .fetch_add(data.len() as u64, Ordering::Relaxed);
                        }
                        match fates.next(dir, kk) {
                            None => {
                                dropped.fetch_add(1, Ordering::Relaxed);
                            }
                            Some(ms) => {
                                order += 1;
                                queue.push(Reverse(Pending {
                                    due: now + Duration::from_millis(u64::from(ms)),
                                    order,
                                    to,
                                    via: send_via,
                                    bytes: data.to_vec(),
                                }));
                            }
                        }
                    }
                }
            }
        }
        let now = Instant::now();
        while queue.peek().is_some_and(|p| p.0.due <= now) {
            if let Some(Reverse(p)) = queue.pop() {
                let _ = socks[p.via].send_to(&p.bytes, p.to);
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Point a URI's host and port (after `sip:` and an optional `user@`, up
/// to `;`, `>`, a space or the end) at `to`.
fn point_uri(text: &str, to: SocketAddr) -> String {
    let Some(at) = text.find("sip:") else {
        return text.to_owned();
    };
    let uri = &text[at + 4..];
    let end = uri.find([';', '>', ' ']).unwrap_or(uri.len());
    let user = uri[..end].rfind('@').map_or(0, |i| i + 1);
    format!("{}{}{to}{}", &text[..at + 4], &uri[..user], &uri[end..])
}

/// In a SIP request, point the Request-URI at `to`, as a proxy does for
/// the next hop (the callee takes the address it was reached at for its
/// SDP); responses are returned unchanged.
pub fn rewrite_request_uri(msg: &str, to: SocketAddr) -> String {
    let (first, rest) = msg.split_once("\r\n").unwrap_or((msg, ""));
    if first.starts_with("SIP/") {
        return msg.to_owned();
    }
    format!("{}\r\n{rest}", point_uri(first, to))
}

/// In a SIP message, point the URI of the `Contact` header (`m` in compact
/// form) at `to` (see [`point_uri`]). Other headers and the body are kept.
pub fn rewrite_contact(msg: &str, to: SocketAddr) -> String {
    let Some((head, body)) = msg.split_once("\r\n\r\n") else {
        return msg.to_owned();
    };
    let lines: Vec<String> = head
        .split("\r\n")
        .map(|h| {
            let name = h.split(':').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("contact") || name.eq_ignore_ascii_case("m") {
                point_uri(h, to)
            } else {
                h.to_owned()
            }
        })
        .collect();
    format!("{}\r\n\r\n{body}", lines.join("\r\n"))
}

/// In a SIP message with an SDP body, point the audio stream (`c=`,
/// `m=audio` port, `a=rtcp` port) at `to` and fix Content-Length.
/// Returns the new text and, when there was an audio stream, where the
/// sender of the SDP receives RTP and RTCP.
pub fn rewrite_sdp(msg: &str, to: SocketAddr) -> (String, Option<(SocketAddr, SocketAddr)>) {
    let port = to.port();
    let Some((head, body)) = msg.split_once("\r\n\r\n") else {
        return (msg.to_owned(), None);
    };
    let mut ip: Option<IpAddr> = None;
    let mut rtp_port: Option<u16> = None;
    let mut rtcp_port: Option<u16> = None;
    let mut out = String::with_capacity(body.len() + 16);
    for line in body.split_inclusive("\r\n") {
        let bare = line.trim_end_matches(['\r', '\n']);
        if let Some(rest) = bare.strip_prefix("c=IN IP4 ") {
            if ip.is_none() || rtp_port.is_some() {
                ip = rest.trim().parse().ok();
            }
            out.push_str(&format!("c=IN IP4 {}\r\n", to.ip()));
        } else if let Some(rest) = bare.strip_prefix("m=audio ") {
            let (p, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            rtp_port = p.parse().ok();
            out.push_str(&format!("m=audio {port} {tail}\r\n"));
        } else if let Some(rest) = bare.strip_prefix("a=rtcp:") {
            let p = rest.split(' ').next().unwrap_or("");
            rtcp_port = p.parse().ok();
            out.push_str(&format!("a=rtcp:{}\r\n", port + 1));
        } else {
            out.push_str(line);
        }
    }
    let Some(rtp) = rtp_port else {
        return (msg.to_owned(), None);
    };
    let ip = ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let rtcp = rtcp_port.unwrap_or(rtp.wrapping_add(1));
    let head: Vec<String> = head
        .split("\r\n")
        .map(|h| {
            let name = h.split(':').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
                format!("Content-Length: {}", out.len())
            } else {
                h.to_owned()
            }
        })
        .collect();
    (
        format!("{}\r\n\r\n{out}", head.join("\r\n")),
        Some((SocketAddr::new(ip, rtp), SocketAddr::new(ip, rtcp))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imp(seed: u64, loss: f64) -> Impairment {
        Impairment {
            seed,
            loss,
            burst: 1.0,
            delay_min_ms: 10,
            delay_max_ms: 50,
        }
    }

    fn run(imp: Impairment, dir: Direction, n: u64) -> Vec<Option<u32>> {
        let mut f = Fates::new(imp);
        (0..n).map(|k| f.next(dir, k)).collect()
    }

    #[test]
    fn fate_is_a_pure_function_of_seed_direction_and_index() {
        for burst in [1.0, 3.0] {
            let a = Impairment {
                burst,
                ..imp(7, 0.1)
            };
            let fwd = run(a, Direction::Forward, 1000);
            assert_eq!(fwd, run(a, Direction::Forward, 1000));
            // Interleaving the other direction changes nothing.
            let mut f = Fates::new(a);
            let mixed: Vec<_> = (0..1000)
                .map(|k| {
                    f.next(Direction::Backward, k);
                    f.next(Direction::Forward, k)
                })
                .collect();
            assert_eq!(fwd, mixed);
            assert_ne!(fwd, run(a, Direction::Backward, 1000));
            let b = Impairment { seed: 8, ..a };
            assert_ne!(fwd, run(b, Direction::Forward, 1000));
        }
    }

    #[test]
    fn loss_rate_and_delay_range_match_the_parameters() {
        for (loss, lo, hi) in [(0.0, 0, 0), (0.05, 400, 600), (0.10, 900, 1100)] {
            let a = imp(3, loss);
            let fates = run(a, Direction::Forward, 10_000);
            let dropped = fates.iter().filter(|f| f.is_none()).count();
            assert!(
                (lo..=hi).contains(&dropped),
                "loss {loss}: {dropped} of 10000"
            );
            let delays: Vec<u32> = fates.iter().flatten().copied().collect();
            assert_eq!(delays.iter().min(), Some(&10));
            assert_eq!(delays.iter().max(), Some(&50));
            let mean = delays.iter().map(|&d| f64::from(d)).sum::<f64>() / delays.len() as f64;
            assert!((mean - 30.0).abs() < 0.5, "mean delay {mean}");
        }
    }

    #[test]
    fn bursty_loss_keeps_the_rate_and_comes_in_runs() {
        let a = Impairment {
            burst: 3.0,
            ..imp(5, 0.05)
        };
        let lost: Vec<bool> = run(a, Direction::Forward, 100_000)
            .iter()
            .map(Option::is_none)
            .collect();
        let dropped = lost.iter().filter(|&&l| l).count();
        // 5 % of 100 000, within a few percent of it.
        assert!((4_500..=5_500).contains(&dropped), "{dropped}");
        let bursts = lost.windows(2).filter(|w| !w[0] && w[1]).count();
        let mean = dropped as f64 / bursts as f64;
        assert!((2.7..=3.3).contains(&mean), "mean burst {mean}");
        // Independent loss at the same rate: bursts of about 1 / 0.95.
        let lost: Vec<bool> = run(imp(5, 0.05), Direction::Forward, 100_000)
            .iter()
            .map(Option::is_none)
            .collect();
        let dropped = lost.iter().filter(|&&l| l).count();
        let bursts = lost.windows(2).filter(|w| !w[0] && w[1]).count();
        let mean = dropped as f64 / bursts as f64;
        assert!((1.0..=1.1).contains(&mean), "mean burst {mean}");
    }

    #[test]
    fn sdp_is_pointed_at_the_relay() {
        let body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\na=rtcp:20001\r\na=rtcp-mux\r\n";
        let msg = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (out, media) = rewrite_sdp(&msg, "10.78.0.1:40000".parse().unwrap());
        let (rtp, rtcp) = media.unwrap();
        assert_eq!(rtp, "127.0.0.1:20000".parse().unwrap());
        assert_eq!(rtcp, "127.0.0.1:20001".parse().unwrap());
        assert!(out.contains("c=IN IP4 10.78.0.1\r\n"));
        assert!(out.contains("m=audio 40000 RTP/AVP 0\r\na=rtcp:40001\r\n"));
        let (_, new_body) = out.split_once("\r\n\r\n").unwrap();
        assert!(out.contains(&format!("Content-Length: {}\r\n", new_body.len())));
        // No SDP: untouched.
        let bye = "BYE sip:a@127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            rewrite_sdp(bye, "127.0.0.1:40000".parse().unwrap()),
            (bye.to_owned(), None)
        );
    }

    #[test]
    fn contact_and_request_uri_are_pointed_at_the_next_hop() {
        let to: SocketAddr = "10.77.0.1:41000".parse().unwrap();
        let msg = "INVITE sip:b@10.78.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.77.0.2:5070;rport\r\nContact: \"A\" <sip:alice@10.77.0.2:5070;transport=udp>;expires=60\r\nContent-Length: 0\r\n\r\n";
        let out = rewrite_contact(msg, to);
        assert!(
            out.contains(
                "\r\nContact: \"A\" <sip:alice@10.77.0.1:41000;transport=udp>;expires=60\r\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("Via: SIP/2.0/UDP 10.77.0.2:5070;rport"),
            "{out}"
        );
        let out = rewrite_request_uri(msg, "10.78.0.2:5099".parse().unwrap());
        assert!(
            out.starts_with(
                "INVITE sip:b@10.78.0.2:5099 SIP/2.0\r\nVia: SIP/2.0/UDP 10.77.0.2:5070;rport\r\n"
            ),
            "{out}"
        );
        let ok = "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(rewrite_request_uri(ok, to), ok);
        // Compact form, no user part, no angle brackets.
        let out = rewrite_contact("SIP/2.0 200 OK\r\nm: sip:10.78.0.2:5099\r\n\r\nbody", to);
        assert_eq!(out, "SIP/2.0 200 OK\r\nm: sip:10.77.0.1:41000\r\n\r\nbody");
    }

    #[test]
    fn rtcp_is_told_from_rtp_by_packet_type() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(!is_rtcp(&[0x80, 0, 0, 1]));
        assert!(!is_rtcp(&[0x80, 0x80 | 9, 0, 1]));
        assert!(!is_rtcp(&[0x80]));
    }
}
