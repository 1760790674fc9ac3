//! Transaction layer cost: `cargo bench --bench sip_txn` (or `cargo xtask
//! bench sip`). Drives complete transactions through the layer with a fake
//! clock and prints ns per transaction.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use softline::sip::dialog::response_to;
use softline::sip::message::{Headers, Message, Method, Request};
use softline::sip::transport::{Peer, TransportKind};
use softline::sip::txn::{TimerConfig, TransactionLayer, TxnEvent, TxnOutput};
use softline::sip::uri::{Host, Uri};

const ROUNDS: u64 = 20_000;

fn request(method: Method, n: u64) -> Request {
    let mut headers = Headers::new();
    headers.push(
        "Via",
        format!("SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{n:016x};rport"),
    );
    headers.push("Max-Forwards", "70");
    headers.push("From", "<sip:1001@pbx.example.com>;tag=a73kszlfl");
    headers.push("To", "<sip:1002@pbx.example.com>");
    headers.push("Call-ID", format!("{n}@192.0.2.10"));
    headers.push("CSeq", format!("1 {method}"));
    headers.push("Content-Length", "0");
    Request {
        method,
        uri: Uri::sip(Some("1002"), Host::Name("pbx.example.com".into())),
        headers,
        body: Vec::new(),
    }
}

fn drain(l: &mut TransactionLayer) -> Option<u64> {
    let mut server = None;
    while let Some(out) = l.poll_output() {
        if let TxnOutput::Event(TxnEvent::Request { id, .. }) = &out {
            server = Some(id.0);
        }
        black_box(out);
    }
    server
}

fn report(name: &str, start: Instant, n: u64) {
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!("{name:<40} {ns:>10.0} ns/txn");
}

fn main() {
    let peer = Peer {
        transport: TransportKind::Udp,
        addr: SocketAddr::from(([192, 0, 2, 1], 5060)),
    };
    let t0 = Instant::now();

    // Client non-INVITE: send, 200, Timer K.
    let mut l = TransactionLayer::new(TimerConfig::default());
    let reqs: Vec<Request> = (0..ROUNDS).map(|n| request(Method::Options, n)).collect();
    let start = Instant::now();
    for (n, req) in reqs.into_iter().enumerate() {
        let now = t0 + Duration::from_micros(n as u64);
        let ok = response_to(&req, 200, Some("as1d07559a"));
        l.send_request(now, req, peer);
        l.handle_message(now, Message::Response(ok), peer);
        drain(&mut l);
    }
    l.handle_timeout(t0 + Duration::from_secs(60));
    drain(&mut l);
    assert!(l.is_empty());
    report("client OPTIONS (send, 200, Timer K)", start, ROUNDS);

    // Server INVITE: request, 180, 200, ACK, Timer L.
    let mut l = TransactionLayer::new(TimerConfig::default());
    let invites: Vec<Request> = (0..ROUNDS).map(|n| request(Method::Invite, n)).collect();
    let start = Instant::now();
    for (n, inv) in invites.into_iter().enumerate() {
        let now = t0 + Duration::from_micros(n as u64);
        let ringing = response_to(&inv, 180, Some("tag1"));
        let ok = response_to(&inv, 200, Some("tag1"));
        let mut ack = request(Method::Ack, n as u64 + ROUNDS);
        ack.headers.set("Call-ID", format!("{n}@192.0.2.10"));
        ack.headers.set("To", "<sip:1002@pbx.example.com>;tag=tag1");
        l.handle_message(now, Message::Request(inv), peer);
        let Some(id) = drain(&mut l) else {
            panic!("no server transaction")
        };
        let id = softline::sip::txn::TxnId(id);
        l.send_response(now, id, ringing);
        l.send_response(now, id, ok);
        l.handle_message(now, Message::Request(ack), peer);
        drain(&mut l);
    }
    l.handle_timeout(t0 + Duration::from_secs(60));
    drain(&mut l);
    assert!(l.is_empty());
    report("server INVITE (180, 200, ACK, Timer L)", start, ROUNDS);
}
