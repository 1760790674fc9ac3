//! Transactions per second over loopback UDP: a `Phone` core on a real socket
//! answers OPTIONS requests that a client pipelines (64 in flight).
//! Measures parse + transaction matching + response building + serialize +
//! the socket round trip. Run with `cargo xtask bench sip`.
#![allow(clippy::disallowed_methods)]

use std::net::UdpSocket;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use softline::config::Config;
use softline::phone::{LocalAddrs, Output, Phone};
use softline::sip::transport::{Peer, TransportKind};

const TOTAL: usize = 50_000;
const WINDOW: usize = 64;

fn main() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server_addr = server.local_addr().unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let config = Config::parse(
        "[sip]\nlisten_udp = \"127.0.0.1:0\"\n",
        Path::new("bench.toml"),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut phone = Phone::new(
            &config,
            LocalAddrs {
                udp: Some(server_addr),
                tcp: None,
            },
            7,
        );
        let mut buf = vec![0u8; 65_536];
        while !stop2.load(Ordering::Relaxed) {
            if let Ok((n, from)) = server.recv_from(&mut buf) {
                let now = Instant::now();
                let peer = Peer {
                    transport: TransportKind::Udp,
                    addr: from,
                };
                phone.handle_received(now, peer, server_addr, &buf[..n]);
            }
            let now = Instant::now();
            if phone.poll_timeout().is_some_and(|t| t <= now) {
                phone.handle_timeout(now);
            }
            while let Some(out) = phone.poll_output() {
                if let Output::Transmit { peer, data, .. } = out {
                    let _ = server.send_to(&data, peer.addr);
                }
            }
        }
    });

    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let caddr = client.local_addr().unwrap();
    let request = |i: usize| {
        format!(
            "OPTIONS sip:bench@{server_addr} SIP/2.0\r\nVia: SIP/2.0/UDP {caddr};branch=z9hG4bK-bench-{i};rport\r\nMax-Forwards: 70\r\nFrom: <sip:client@{caddr}>;tag=b{i}\r\nTo: <sip:bench@{server_addr}>\r\nCall-ID: bench-{i}@{caddr}\r\nCSeq: 1 OPTIONS\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let mut buf = vec![0u8; 65_536];
    let start = Instant::now();
    let (mut sent, mut ok) = (0usize, 0usize);
    while sent < WINDOW.min(TOTAL) {
        client
            .send_to(request(sent).as_bytes(), server_addr)
            .unwrap();
        sent += 1;
    }
    while ok < TOTAL {
        match client.recv_from(&mut buf) {
            Ok((n, _)) => {
                if buf[..n].starts_with(b"SIP/2.0 200") {
                    ok += 1;
                }
                if sent < TOTAL {
                    client
                        .send_to(request(sent).as_bytes(), server_addr)
                        .unwrap();
                    sent += 1;
                }
            }
            Err(e) => panic!("no response after {ok} transactions: {e}"),
        }
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
    println!(
        "sip_loopback: {TOTAL} OPTIONS transactions over UDP loopback in {:.3} s = {:.0} transactions/s (window {WINDOW})",
        elapsed.as_secs_f64(),
        TOTAL as f64 / elapsed.as_secs_f64()
    );
}
