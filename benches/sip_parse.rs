//! Parser/serializer throughput: `cargo bench --bench sip_parse`
//! (or `cargo xtask bench sip`). Prints ns per operation and MB/s; the
//! figures go to docs/benchmarks.md.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::hint::black_box;
use std::time::Instant;

use softline::sip::framing::StreamFramer;
use softline::sip::headers::TypedHeaders;
use softline::sip::message::Message;

const INVITE: &str = "INVITE sip:1002@pbx.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Agent 1001\" <sip:1001@pbx.example.com>;tag=1928301774\r\n\
To: <sip:1002@pbx.example.com>\r\n\
Call-ID: a84b4c76e66710@192.0.2.10\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:1001@192.0.2.10:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n\
User-Agent: Softline/0.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 142\r\n\
\r\n\
v=0\r\n\
o=- 1 1 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n";

const OK_REGISTER: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnashds7;received=203.0.113.5;rport=40123\r\n\
From: <sip:1001@pbx.example.com>;tag=a73kszlfl\r\n\
To: <sip:1001@pbx.example.com>;tag=as1d07559a\r\n\
Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.10\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:1001@203.0.113.5:40123>;expires=600\r\n\
Expires: 600\r\n\
Server: Asterisk PBX 20.5.0\r\n\
Content-Length: 0\r\n\r\n";

fn run(name: &str, bytes: usize, iters: u32, mut f: impl FnMut()) {
    for _ in 0..iters / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(iters);
    let mbs = bytes as f64 / ns * 1e3;
    let per_s = 1e9 / ns;
    println!("{name:<40} {ns:>9.0} ns/op {per_s:>10.0} op/s {mbs:>8.1} MB/s");
}

fn main() {
    let iters = 200_000;
    let invite = INVITE.as_bytes();
    let ok = OK_REGISTER.as_bytes();
    run("parse INVITE with SDP (598 B)", invite.len(), iters, || {
        black_box(Message::parse(black_box(invite)).ok());
    });
    run("parse 200 OK to REGISTER", ok.len(), iters, || {
        black_box(Message::parse(black_box(ok)).ok());
    });
    let parsed = Message::parse(invite).expect("bench message parses");
    run("serialize INVITE", invite.len(), iters, || {
        black_box(black_box(&parsed).to_bytes());
    });
    run("parse + serialize INVITE", invite.len(), iters, || {
        let m = Message::parse(black_box(invite)).expect("parses");
        black_box(m.to_bytes());
    });
    run("parse + read Via/From/To/CSeq", invite.len(), iters, || {
        let m = Message::parse(black_box(invite)).expect("parses");
        let h = m.headers();
        black_box((
            h.top_via().ok(),
            h.from_addr().ok(),
            h.to_addr().ok(),
            h.cseq().ok(),
        ));
    });
    let mut stream = Vec::new();
    for _ in 0..100 {
        stream.extend_from_slice(invite);
    }
    run(
        "frame 100 INVITEs from a TCP stream",
        stream.len(),
        iters / 100,
        || {
            let mut f = StreamFramer::new();
            for chunk in stream.chunks(1460) {
                f.push(chunk);
                while let Ok(Some(fr)) = f.next_frame() {
                    black_box(fr);
                }
            }
        },
    );
}
