//! A small lossy SIP + RTP relay between two phones on 127.0.0.1, for the
//! live call-quality tests (include it with `#[path = "support/relay.rs"]`,
//! beside `mod support`).
//!
//! - SIP: the caller sends its INVITE to [`Relay::sip`]; the relay forwards
//!   every datagram from the caller to the callee (from a second socket) and
//!   every datagram the callee sends to that socket back to the caller (the
//!   callee answers to the source port, RFC 3581 `rport`). Nothing is
//!   changed but the SDP bodies' `m=audio` port (and Content-Length): the
//!   caller's offer names the relay's callee-facing media port, the callee's
//!   answer the relay's caller-facing one, so RTP (and RTCP, multiplexed,
//!   RFC 5761) flows through the relay. Requests inside the dialog go to the
//!   Contacts directly.
//! - RTP: per direction, the k-th RTP packet is dropped when a seeded hash
//!   of (seed, direction, k) falls below the loss set with
//!   [`Relay::set_loss`]; RTCP is always forwarded, except at 100 % (the
//!   direction is cut: nothing passes).
//!
//! One thread, non-blocking sockets polled every 0.5 ms. This is a test
//! harness around real processes: it reads the clock and sleeps.
#![allow(dead_code)]
#![allow(clippy::disallowed_methods)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Caller → callee, or callee → caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Forward = 0,
    Backward = 1,
}

#[derive(Default)]
struct Counters {
    /// RTP packets forwarded / dropped, per direction.
    forwarded: [AtomicU64; 2],
    dropped: [AtomicU64; 2],
    /// Loss per direction in percent (100 = cut).
    loss_pct: [AtomicU32; 2],
}

/// Where each side's media really is (learned from the SDP bodies).
#[derive(Default, Clone, Copy, Debug)]
pub struct Learned {
    pub caller_sip: Option<SocketAddr>,
    pub caller_rtp: Option<SocketAddr>,
    pub callee_rtp: Option<SocketAddr>,
}

pub struct Relay {
    /// Where the caller sends its INVITE.
    pub sip: SocketAddr,
    /// The relay's media ports: facing the caller, facing the callee.
    pub media_for_caller: SocketAddr,
    pub media_for_callee: SocketAddr,
    counters: Arc<Counters>,
    learned: Arc<Mutex<Learned>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// SplitMix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Is the k-th RTP packet of `dir` dropped at `pct` percent loss?
pub fn dropped(seed: u64, dir: Dir, k: u64, pct: u32) -> bool {
    mix(mix(mix(seed) ^ dir as u64) ^ k) % 100 < u64::from(pct)
}

/// RFC 5761 §4: RTCP packet types 192–223 in the second byte.
fn is_rtcp(data: &[u8]) -> bool {
    data.get(1).is_some_and(|b| (192..=223).contains(b))
}

fn bind() -> UdpSocket {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

/// Replace the `m=audio` port of a SIP message's SDP body by `port`, fix
/// Content-Length; returns the new message and the address (`c=` or the
/// source IP, old port) the body announced. Messages without SDP are
/// returned unchanged.
pub fn rewrite_sdp(msg: &[u8], port: u16, fallback_ip: IpAddr) -> (Vec<u8>, Option<SocketAddr>) {
    let text = String::from_utf8_lossy(msg);
    let Some(split) = text.find("\r\n\r\n") else {
        return (msg.to_vec(), None);
    };
    let (head, body) = (&text[..split], &text[split + 4..]);
    if !body.contains("m=audio ") {
        return (msg.to_vec(), None);
    }
    let mut ip = fallback_ip;
    let mut announced = None;
    let mut lines = Vec::new();
    for line in body.split("\r\n") {
        if let Some(c) = line.strip_prefix("c=IN IP4 ")
            && let Ok(a) = c.trim().parse()
        {
            ip = a;
        }
        if let Some(rest) = line.strip_prefix("m=audio ") {
            let (old, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            announced = old.parse::<u16>().ok();
            lines.push(format!("m=audio {port} {tail}"));
        } else {
            lines.push(line.to_string());
        }
    }
    let body = lines.join("\r\n");
    let head = crate::support::set_content_length(head, body.len());
    let out = format!("{head}\r\n\r\n{body}");
    (out.into_bytes(), announced.map(|p| SocketAddr::new(ip, p)))
}

impl Relay {
    /// A relay toward the callee's SIP address; `seed` fixes which packets
    /// are dropped.
    pub fn start(callee_sip: SocketAddr, seed: u64) -> Relay {
        let (sip_a, sip_b, media_a, media_b) = (bind(), bind(), bind(), bind());
        let sip = sip_a.local_addr().unwrap();
        let media_for_caller = media_a.local_addr().unwrap();
        let media_for_callee = media_b.local_addr().unwrap();
        let counters = Arc::new(Counters::default());
        let learned = Arc::new(Mutex::new(Learned::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, l, halt) = (counters.clone(), learned.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            let mut k = [0u64; 2];
            while !halt.load(Ordering::Relaxed) {
                let mut idle = true;
                // SIP from the caller → callee, its offer pointing at media_b.
                while let Ok((n, from)) = sip_a.recv_from(&mut buf) {
                    idle = false;
                    let (out, rtp) = rewrite_sdp(&buf[..n], media_for_callee.port(), from.ip());
                    let mut g = l.lock().unwrap();
                    g.caller_sip = Some(from);
                    if rtp.is_some() {
                        g.caller_rtp = rtp;
                    }
                    let _ = sip_b.send_to(&out, callee_sip);
                }
                // SIP from the callee → caller, its answer pointing at media_a.
                while let Ok((n, from)) = sip_b.recv_from(&mut buf) {
                    idle = false;
                    let (out, rtp) = rewrite_sdp(&buf[..n], media_for_caller.port(), from.ip());
                    let mut g = l.lock().unwrap();
                    if rtp.is_some() {
                        g.callee_rtp = rtp;
                    }
                    if let Some(to) = g.caller_sip {
                        let _ = sip_a.send_to(&out, to);
                    }
                }
                // Media, each direction.
                for (dir, rx, tx) in [
                    (Dir::Forward, &media_a, &media_b),
                    (Dir::Backward, &media_b, &media_a),
                ] {
                    while let Ok((n, _)) = rx.recv_from(&mut buf) {
                        idle = false;
                        let d = dir as usize;
                        let pct = c.loss_pct[d].load(Ordering::Relaxed);
                        let data = &buf[..n];
                        let drop = if pct >= 100 {
                            true
                        } else if is_rtcp(data) {
                            false
                        } else {
                            k[d] += 1;
                            dropped(seed, dir, k[d], pct)
                        };
                        if drop {
                            c.dropped[d].fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        let g = *l.lock().unwrap();
                        let to = match dir {
                            Dir::Forward => g.callee_rtp,
                            Dir::Backward => g.caller_rtp,
                        };
                        if let Some(to) = to {
                            if !is_rtcp(data) {
                                c.forwarded[d].fetch_add(1, Ordering::Relaxed);
                            }
                            let _ = tx.send_to(data, to);
                        }
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        });
        Relay {
            sip,
            media_for_caller,
            media_for_callee,
            counters,
            learned,
            stop,
            thread: Some(thread),
        }
    }

    /// Drop `pct` percent of `dir`'s RTP from now on (100: cut the
    /// direction, RTCP included; 0: forward everything).
    pub fn set_loss(&self, dir: Dir, pct: u32) {
        self.counters.loss_pct[dir as usize].store(pct.min(100), Ordering::Relaxed);
    }

    /// (forwarded RTP packets, dropped packets) of `dir` so far.
    pub fn counts(&self, dir: Dir) -> (u64, u64) {
        let d = dir as usize;
        (
            self.counters.forwarded[d].load(Ordering::Relaxed),
            self.counters.dropped[d].load(Ordering::Relaxed),
        )
    }

    /// The phones' real addresses as learned from the signalling.
    pub fn learned(&self) -> Learned {
        *self.learned.lock().unwrap()
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
