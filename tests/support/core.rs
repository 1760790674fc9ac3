//! In-memory phones for the core tests (no sockets, a fake clock): a phone
//! from config text, and the drain that plays the runtime's part. Included
//! by those test files only (`#[path = "support/core.rs"] mod core_support;`).
#![allow(dead_code)]

use std::path::Path;
use std::time::Instant;

use softline::config::Config;
use softline::phone::{Event, LocalAddrs, Output, Phone};
use softline::sip::message::{Message, Request};
use softline::sip::transport::{Peer, TransportKind};

pub fn udp(addr: &str) -> Peer {
    Peer {
        transport: TransportKind::Udp,
        addr: addr.parse().unwrap(),
    }
}

/// A phone listening (in name) on UDP `addr`, T1 = 500 ms, with `extra`
/// config text (accounts, sections) after `[sip]`.
pub fn phone(addr: &str, extra: &str, seed: u64) -> Phone {
    let text = format!("[sip]\nlisten_udp = \"{addr}\"\nt1_ms = 500\n{extra}");
    let config = Config::parse(&text, Path::new("test.toml")).unwrap();
    let local = LocalAddrs {
        udp: Some(addr.parse().unwrap()),
        tcp: None,
    };
    Phone::new(&config, local, seed)
}

/// Everything a phone emitted, split by kind.
#[derive(Default)]
pub struct Drained {
    pub sent: Vec<(Peer, Vec<u8>)>,
    pub events: Vec<Event>,
    pub resolves: Vec<(u64, String, Option<u16>)>,
    pub media_started: Vec<(u64, softline::sdp::NegotiatedMedia)>,
    pub media_stopped: Vec<u64>,
    /// RFC 4733 digits handed to the media side.
    pub dtmf: Vec<(u64, String)>,
}

impl Drained {
    pub fn requests(&self) -> Vec<Request> {
        self.sent
            .iter()
            .filter_map(|(_, d)| match Message::parse(d) {
                Ok(Message::Request(r)) => Some(r),
                _ => None,
            })
            .collect()
    }

    pub fn first_lines(&self) -> Vec<String> {
        self.sent.iter().map(|(_, d)| first_line(d)).collect()
    }
}

/// Drain a phone's outputs at `now`, playing the runtime's part for media:
/// every RTP port asked for is "bound" at once (40000 + 2 × call id).
pub fn drain(p: &mut Phone, now: Instant) -> Drained {
    let mut d = Drained::default();
    loop {
        let mut opened = Vec::new();
        while let Some(o) = p.poll_output() {
            match o {
                Output::Transmit { peer, data, .. } => d.sent.push((peer, data)),
                Output::Event(e) => d.events.push(e),
                Output::Resolve {
                    token, host, port, ..
                } => d.resolves.push((token, host, port)),
                Output::OpenMedia { call } => opened.push(call),
                Output::StartMedia { call, media } => d.media_started.push((call, media)),
                Output::StopMedia { call } => d.media_stopped.push(call),
                Output::SendDtmf { call, digits } => d.dtmf.push((call, digits)),
                _ => {}
            }
        }
        if opened.is_empty() {
            return d;
        }
        for call in opened {
            p.handle_media_opened(now, call, Ok(40000 + 2 * call as u16));
        }
    }
}

pub fn first_line(data: &[u8]) -> String {
    String::from_utf8_lossy(data)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}
