//! The phone core driven deterministically: two `Phone`s exchange messages
//! in memory on a fake clock (no sockets), and a scripted registrar answers
//! REGISTERs. Covers call set-up/tear-down both ways, CANCEL, reject,
//! retransmission under loss, OPTIONS/405/501, 400 for malformed requests,
//! and registration with digest auth.
#![allow(clippy::disallowed_methods)]

#[path = "support/core.rs"]
mod core_support;

use core_support::{drain, first_line, phone, udp};

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use softline::phone::{Command, Event, Phone, Reply, Resolved};
use softline::sip::headers::TypedHeaders;
use softline::sip::message::Message;

struct Pair {
    a: Phone,
    b: Phone,
    a_addr: SocketAddr,
    b_addr: SocketAddr,
    now: Instant,
    /// Lines of every message delivered, "A>B: INVITE ..." in order.
    log: Vec<String>,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            a: phone("10.0.0.1:5060", "", 1),
            b: phone("10.0.0.2:5060", "", 2),
            a_addr: "10.0.0.1:5060".parse().unwrap(),
            b_addr: "10.0.0.2:5060".parse().unwrap(),
            now: Instant::now(),
            log: Vec::new(),
        }
    }

    /// Deliver until both are quiet; `drop` decides (by message first
    /// line) which messages the network loses.
    fn run(&mut self, mut drop: impl FnMut(&str) -> bool) {
        for _ in 0..100 {
            let da = drain(&mut self.a, self.now);
            let db = drain(&mut self.b, self.now);
            if da.sent.is_empty() && db.sent.is_empty() {
                return;
            }
            for (peer, data) in da.sent {
                assert_eq!(peer.addr, self.b_addr);
                let line = first_line(&data);
                if drop(&line) {
                    self.log.push(format!("A>B (lost): {line}"));
                    continue;
                }
                self.log.push(format!("A>B: {line}"));
                self.b
                    .handle_received(self.now, udp("10.0.0.1:5060"), self.b_addr, &data);
            }
            for (peer, data) in db.sent {
                assert_eq!(peer.addr, self.a_addr);
                let line = first_line(&data);
                if drop(&line) {
                    self.log.push(format!("B>A (lost): {line}"));
                    continue;
                }
                self.log.push(format!("B>A: {line}"));
                self.a
                    .handle_received(self.now, udp("10.0.0.2:5060"), self.a_addr, &data);
            }
        }
        panic!("messages kept flowing: {:#?}", self.log);
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
    }

    /// A calls B directly by IP; returns A's call id.
    fn dial(&mut self) -> u64 {
        let reply = self
            .a
            .handle_command(
                self.now,
                Command::Call {
                    account: None,
                    target: "sip:bob@10.0.0.2:5060".into(),
                },
            )
            .unwrap();
        let Reply::Call { call } = reply else {
            panic!("no call id: {reply:?}")
        };
        let d = drain(&mut self.a, self.now);
        assert_eq!(d.resolves.len(), 1, "a direct call resolves the host");
        let (token, host, port) = d.resolves[0].clone();
        assert_eq!((host.as_str(), port), ("10.0.0.2", Some(5060)));
        let target = Resolved {
            peer: udp("10.0.0.2:5060"),
            local_ip: "10.0.0.1".parse().unwrap(),
        };
        self.a.handle_resolved(self.now, token, Ok(vec![target]));
        call
    }
}

fn call_state(p: &Phone, id: u64) -> (String, Option<String>, Option<u16>) {
    let s = p.status();
    let c = s.calls.iter().find(|c| c.id == id).expect("call listed");
    (c.state.to_string(), c.cause.clone(), c.status_code)
}

fn only_call(p: &Phone) -> u64 {
    let s = p.status();
    assert_eq!(s.calls.len(), 1, "{:?}", s.calls);
    s.calls[0].id
}

#[test]
fn call_answer_and_hang_up_from_caller() {
    let mut t = Pair::new();
    let a_call = t.dial();
    t.run(|_| false);
    let b_call = only_call(&t.b);
    assert_eq!(call_state(&t.b, b_call).0, "ringing");
    assert_eq!(call_state(&t.a, a_call).0, "ringing");
    t.b.handle_command(t.now, Command::Answer { call: None })
        .unwrap();
    t.run(|_| false);
    assert_eq!(call_state(&t.a, a_call).0, "connected");
    assert_eq!(call_state(&t.b, b_call).0, "connected");
    assert!(
        t.log.iter().any(|l| l.starts_with("A>B: ACK sip:")),
        "{:#?}",
        t.log
    );
    t.a.handle_command(t.now, Command::Hangup { call: Some(a_call) })
        .unwrap();
    t.run(|_| false);
    let (state, cause, _) = call_state(&t.b, b_call);
    assert_eq!(state, "ended");
    assert_eq!(cause.as_deref(), Some("remote party hung up"));
    assert_eq!(call_state(&t.a, a_call).0, "ended");
    let expected = [
        "A>B: INVITE sip:bob@10.0.0.2:5060 SIP/2.0",
        "B>A: SIP/2.0 180 Ringing",
        "B>A: SIP/2.0 200 OK",
        "A>B: ACK",
        "A>B: BYE",
        "B>A: SIP/2.0 200 OK",
    ];
    let mut it = t.log.iter();
    for want in expected {
        assert!(
            it.any(|l| l.starts_with(want)),
            "missing `{want}` in order: {:#?}",
            t.log
        );
    }
}

#[test]
fn callee_hangs_up_after_answer() {
    let mut t = Pair::new();
    let a_call = t.dial();
    t.run(|_| false);
    t.b.handle_command(t.now, Command::Answer { call: None })
        .unwrap();
    t.run(|_| false);
    t.b.handle_command(t.now, Command::Hangup { call: None })
        .unwrap();
    t.run(|_| false);
    assert_eq!(
        call_state(&t.a, a_call),
        (
            "ended".into(),
            Some("remote party hung up".into()),
            Some(200)
        )
    );
    assert!(
        t.log.iter().any(|l| l.starts_with("B>A: BYE")),
        "{:#?}",
        t.log
    );
}

#[test]
fn caller_cancels_while_ringing() {
    let mut t = Pair::new();
    let a_call = t.dial();
    t.run(|_| false);
    t.a.handle_command(t.now, Command::Hangup { call: None })
        .unwrap();
    t.run(|_| false);
    let b_call = only_call(&t.b);
    let (state, cause, code) = call_state(&t.b, b_call);
    assert_eq!(state, "ended");
    assert!(cause.unwrap().contains("missed"));
    assert_eq!(code, Some(487));
    let (state, cause, code) = call_state(&t.a, a_call);
    assert_eq!(
        (state.as_str(), cause.as_deref(), code),
        ("ended", Some("cancelled"), Some(487))
    );
    assert!(
        t.log.iter().any(|l| l.starts_with("A>B: CANCEL")),
        "{:#?}",
        t.log
    );
    assert!(
        t.log.iter().any(|l| l.starts_with("A>B: ACK")),
        "487 must be ACKed: {:#?}",
        t.log
    );
}

#[test]
fn callee_rejects_with_486() {
    let mut t = Pair::new();
    let a_call = t.dial();
    t.run(|_| false);
    t.b.handle_command(t.now, Command::Hangup { call: None })
        .unwrap();
    t.run(|_| false);
    let (state, cause, code) = call_state(&t.a, a_call);
    assert_eq!((state.as_str(), code), ("ended", Some(486)));
    assert!(cause.unwrap().contains("486"));
}

#[test]
fn lost_invite_and_lost_200_are_retransmitted() {
    let mut t = Pair::new();
    let a_call = t.dial();
    // The first INVITE is lost: nothing arrives at B.
    let mut lost_invite = false;
    t.run(|l| {
        if l.starts_with("INVITE") && !lost_invite {
            lost_invite = true;
            return true;
        }
        false
    });
    assert!(t.b.status().calls.is_empty());
    t.advance(Duration::from_millis(500)); // Timer A fires: retransmission
    t.run(|_| false);
    assert_eq!(only_call(&t.b), 1);
    t.b.handle_command(t.now, Command::Answer { call: None })
        .unwrap();
    // The first 200 OK is lost; B retransmits it after T1.
    let mut lost_ok = false;
    t.run(|l| {
        if l.starts_with("SIP/2.0 200") && !lost_ok {
            lost_ok = true;
            return true;
        }
        false
    });
    assert_eq!(call_state(&t.a, a_call).0, "ringing");
    t.advance(Duration::from_millis(500));
    t.run(|_| false);
    assert_eq!(call_state(&t.a, a_call).0, "connected");
    let invites = t.log.iter().filter(|l| l.contains("INVITE sip:")).count();
    assert_eq!(invites, 2, "{:#?}", t.log);
}

#[test]
fn options_unknown_and_unsupported_methods() {
    let mut b = phone("10.0.0.2:5060", "", 3);
    let now = Instant::now();
    let req = |method: &str| {
        format!(
            "{method} sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK{method}1\r\nMax-Forwards: 70\r\nFrom: <sip:x@10.0.0.9>;tag=1\r\nTo: <sip:bob@10.0.0.2>\r\nCall-ID: {method}@x\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        )
    };
    for (method, want) in [("OPTIONS", "200"), ("FOO", "501"), ("SUBSCRIBE", "405")] {
        b.handle_received(
            now,
            udp("10.0.0.9:5060"),
            "10.0.0.2:5060".parse().unwrap(),
            req(method).as_bytes(),
        );
        let d = drain(&mut b, now);
        assert_eq!(d.sent.len(), 1, "{method}");
        let msg = Message::parse(&d.sent[0].1).unwrap();
        let Message::Response(r) = msg else {
            panic!("not a response")
        };
        assert_eq!(r.code.to_string(), want, "{method}");
        assert_eq!(
            d.sent[0].0.addr,
            "10.0.0.9:5060".parse::<SocketAddr>().unwrap()
        );
        if want != "200" || method == "OPTIONS" {
            assert!(
                r.headers.get("Allow").unwrap().contains("INVITE"),
                "{method} lacks Allow"
            );
        }
    }
}

#[test]
fn malformed_request_gets_400_naming_the_problem_and_garbage_is_dropped() {
    let mut b = phone("10.0.0.2:5060", "", 4);
    let now = Instant::now();
    let src = udp("10.0.0.9:5060");
    let local: SocketAddr = "10.0.0.2:5060".parse().unwrap();
    let bad_cseq = "INVITE sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKbad1\r\nMax-Forwards: 70\r\nFrom: <sip:x@10.0.0.9>;tag=1\r\nTo: <sip:bob@10.0.0.2>\r\nCall-ID: bad@x\r\nCSeq: one INVITE\r\nContent-Length: 0\r\n\r\n";
    b.handle_received(now, src, local, bad_cseq.as_bytes());
    let d = drain(&mut b, now);
    assert_eq!(d.sent.len(), 1);
    let text = String::from_utf8_lossy(&d.sent[0].1).to_string();
    assert!(text.starts_with("SIP/2.0 400 "), "{text}");
    assert!(
        first_line(&d.sent[0].1).contains("CSeq"),
        "reason should name CSeq: {text}"
    );
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::BadMessage { answered: true, .. }))
    );
    assert!(b.status().calls.is_empty());

    for garbage in [
        &b"\x00\x01\x02garbage"[..],
        b"HELLO\r\n\r\n",
        &[0xffu8; 300][..],
    ] {
        b.handle_received(now, src, local, garbage);
        let d = drain(&mut b, now);
        assert!(d.sent.is_empty(), "garbage must not be answered");
        assert!(d.events.iter().any(|e| matches!(
            e,
            Event::BadMessage {
                answered: false,
                ..
            }
        )));
    }
}

/// A registrar scripted in the test: challenges with 401, accepts the
/// credentials when the password is right.
fn register_account(password_ok: bool) -> (usize, Vec<String>, Phone) {
    let account = "[[account]]\nid = \"main\"\nusername = \"1001\"\npassword = \"secret\"\ndomain = \"10.0.0.5\"\nexpires = 60\n";
    let mut p = phone("10.0.0.1:5060", account, 5);
    let mut now = Instant::now();
    p.start(now);
    let d = drain(&mut p, now);
    let (token, host, _) = d.resolves[0].clone();
    assert_eq!(host, "10.0.0.5");
    p.handle_resolved(
        now,
        token,
        Ok(vec![Resolved {
            peer: udp("10.0.0.5:5060"),
            local_ip: "10.0.0.1".parse().unwrap(),
        }]),
    );
    let mut registers = 0;
    let mut states = Vec::new();
    // Run 35 s of fake time, answering every REGISTER.
    for _ in 0..700 {
        let d = drain(&mut p, now);
        for e in &d.events {
            if let Event::Account(a) = e
                && states.last() != Some(&a.state.to_string())
            {
                states.push(a.state.to_string());
            }
        }
        for (peer, data) in d.sent {
            assert_eq!(peer.addr, "10.0.0.5:5060".parse::<SocketAddr>().unwrap());
            let Ok(Message::Request(req)) = Message::parse(&data) else {
                continue;
            };
            registers += 1;
            let authorized = req.headers.get("Authorization").is_some();
            let via = req.headers.get("Via").unwrap().to_string();
            let common = format!(
                "Via: {via};received=10.0.0.1\r\nFrom: {}\r\nTo: {};tag=reg\r\nCall-ID: {}\r\nCSeq: {}\r\n",
                req.headers.get("From").unwrap(),
                req.headers.get("To").unwrap(),
                req.headers.call_id().unwrap(),
                req.headers.get("CSeq").unwrap()
            );
            let resp = if authorized && password_ok {
                format!(
                    "SIP/2.0 200 OK\r\n{common}Contact: {};expires=60\r\nContent-Length: 0\r\n\r\n",
                    req.headers.get("Contact").unwrap()
                )
            } else {
                format!(
                    "SIP/2.0 401 Unauthorized\r\n{common}WWW-Authenticate: Digest realm=\"pbx\", nonce=\"n{registers}\", algorithm=MD5, qop=\"auth\"\r\nContent-Length: 0\r\n\r\n"
                )
            };
            p.handle_received(
                now,
                udp("10.0.0.5:5060"),
                "10.0.0.1:5060".parse().unwrap(),
                resp.as_bytes(),
            );
        }
        now += Duration::from_millis(50);
        p.handle_timeout(now);
    }
    (registers, states, p)
}

#[test]
fn registers_with_digest_and_refreshes() {
    let (registers, states, p) = register_account(true);
    assert_eq!(p.status().accounts[0].state, "registered", "{states:?}");
    // Initial REGISTER + authorized one, then the refresh at half of the
    // 60 s granted (30 s), within 35 s.
    assert!(registers >= 3, "{registers} REGISTERs: expected a refresh");
    assert!(
        registers <= 8,
        "{registers} REGISTERs in 35 s: refreshing too often"
    );
}

#[test]
fn wrong_password_fails_with_credentials_cause_and_does_not_loop() {
    let (registers, states, p) = register_account(false);
    let a = &p.status().accounts[0];
    assert_eq!(a.state, "failed", "{states:?}");
    assert_eq!(a.cause.as_deref(), Some("credentials"));
    assert!(
        a.reason.to_lowercase().contains("password") || a.reason.contains("401"),
        "{}",
        a.reason
    );
    // Two REGISTERs per attempt (plain + authorized) and attempts backed off:
    // far fewer than one per 50 ms tick.
    assert!(registers <= 8, "{registers} REGISTERs in 35 s: looping");
}

/// A scripted callee answering A's INVITE with 100 Trying only: A hangs up,
/// CANCELs at once (100 is a provisional, RFC 3261 §9.1), and when no final
/// response ever comes the call still ends 64×T1 later.
#[test]
fn cancel_after_100_and_give_up_without_final_response() {
    let mut t = Pair::new();
    let a_call = t.dial();
    let d = drain(&mut t.a, t.now);
    let invite = d
        .sent
        .iter()
        .find(|(_, m)| first_line(m).starts_with("INVITE"))
        .expect("INVITE sent");
    let Ok(Message::Request(inv)) = Message::parse(&invite.1) else {
        panic!("bad INVITE")
    };
    let trying = softline::sip::dialog::response_to(&inv, 100, None);
    t.a.handle_received(
        t.now,
        udp("10.0.0.2:5060"),
        t.a_addr,
        &Message::Response(trying).to_bytes(),
    );
    drain(&mut t.a, t.now);
    t.a.handle_command(t.now, Command::Hangup { call: Some(a_call) })
        .unwrap();
    let d = drain(&mut t.a, t.now);
    let cancel = d
        .sent
        .iter()
        .find(|(_, m)| first_line(m).starts_with("CANCEL"))
        .expect("CANCEL sent at once after 100");
    let Ok(Message::Request(can)) = Message::parse(&cancel.1) else {
        panic!("bad CANCEL")
    };
    assert_eq!(
        can.headers.cseq().unwrap().seq,
        inv.headers.cseq().unwrap().seq
    );
    assert_eq!(
        can.headers.top_via().unwrap().branch(),
        inv.headers.top_via().unwrap().branch()
    );
    let ok = softline::sip::dialog::response_to(&can, 200, None);
    t.a.handle_received(
        t.now,
        udp("10.0.0.2:5060"),
        t.a_addr,
        &Message::Response(ok).to_bytes(),
    );
    assert_eq!(call_state(&t.a, a_call).0, "ending");
    // No 487 ever: the call ends 64 × T1 (32 s) after the CANCEL.
    t.now += Duration::from_secs(31);
    t.a.handle_timeout(t.now);
    assert_eq!(call_state(&t.a, a_call).0, "ending");
    t.now += Duration::from_secs(2);
    t.a.handle_timeout(t.now);
    let (state, cause, _) = call_state(&t.a, a_call);
    assert_eq!(state, "ended");
    assert!(cause.unwrap_or_default().contains("cancelled"));
}

fn deliver_invite(b: &mut Phone, now: Instant, extra: &str, contact: bool) -> String {
    let contact = if contact {
        "Contact: <sip:alice@10.0.0.1:5060>\r\n"
    } else {
        ""
    };
    let invite = format!(
        "INVITE sip:bob@10.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx{}\r\nFrom: <sip:alice@10.0.0.1>;tag=a1\r\nTo: <sip:bob@10.0.0.2>\r\nCall-ID: inv-{}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{contact}{extra}Content-Length: 0\r\n\r\n",
        extra.len(),
        extra.len()
    );
    b.handle_received(
        now,
        udp("10.0.0.1:5060"),
        "10.0.0.2:5060".parse().unwrap(),
        invite.as_bytes(),
    );
    let d = drain(b, now);
    d.sent
        .first()
        .map(|(_, m)| String::from_utf8_lossy(m).into_owned())
        .unwrap_or_default()
}

/// The first response `b` sends to an INVITE carrying `sdp`.
fn invite_with_offer(b: &mut Phone, now: Instant, call_id: &str, sdp: &str) -> String {
    let invite = format!(
        "INVITE sip:bob@10.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{call_id}\r\nFrom: <sip:alice@10.0.0.1>;tag=a1\r\nTo: <sip:bob@10.0.0.2>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:alice@10.0.0.1:5060>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    b.handle_received(
        now,
        udp("10.0.0.1:5060"),
        "10.0.0.2:5060".parse().unwrap(),
        invite.as_bytes(),
    );
    drain(b, now)
        .sent
        .iter()
        .map(|(_, m)| String::from_utf8_lossy(m).into_owned())
        .find(|m| !m.starts_with("SIP/2.0 100"))
        .unwrap_or_default()
}

#[test]
fn an_offer_we_cannot_answer_is_refused_with_the_reason() {
    let mut b = phone("10.0.0.2:5060", "", 2);
    let now = Instant::now();
    // Only G.729: no common codec → 488 with warn-code 305.
    let g729 = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let r = invite_with_offer(&mut b, now, "nocodec", g729);
    assert!(r.starts_with("SIP/2.0 488 "), "{r}");
    assert!(
        r.contains("\r\nWarning: 305 softline \"no common codec\"\r\n"),
        "{r}"
    );
    // Not SDP at all → 400 with warn-code 399 and the parser's words.
    let r = invite_with_offer(&mut b, now, "badsdp", "this is not SDP\r\n");
    assert!(r.starts_with("SIP/2.0 400 "), "{r}");
    let warning = r
        .lines()
        .find(|l| l.starts_with("Warning: 399 softline \""))
        .unwrap_or_else(|| panic!("no Warning in {r}"));
    assert!(
        warning.len() > "Warning: 399 softline \"\"".len(),
        "{warning}"
    );
    // The calls show why they ended, with the code that was sent.
    let codes: Vec<_> = b.status().calls.iter().map(|c| c.status_code).collect();
    assert_eq!(codes, [Some(488), Some(400)]);
}

#[test]
fn invites_we_cannot_honour_are_refused_not_rung() {
    let mut b = phone("10.0.0.2:5060", "", 2);
    let now = Instant::now();
    let first = |m: String| m.lines().next().unwrap_or("").to_string();
    assert_eq!(
        first(deliver_invite(&mut b, now, "", false)),
        "SIP/2.0 400 Bad Request"
    );
    // 100rel and timer are supported (tests/phone_timers.rs); others are not.
    let refused = deliver_invite(&mut b, now, "Require: 100rel, precondition\r\n", true);
    assert_eq!(first(refused.clone()), "SIP/2.0 420 Bad Extension");
    assert!(
        refused.contains("Unsupported: precondition\r\n"),
        "{refused}"
    );
    assert!(b.status().calls.is_empty(), "nothing rang");
    // A plain INVITE rings, and its 180 carries the Record-Route.
    let ringing = deliver_invite(
        &mut b,
        now,
        "Record-Route: <sip:proxy.example.com;lr>\r\n",
        true,
    );
    assert_eq!(first(ringing.clone()), "SIP/2.0 180 Ringing");
    assert!(
        ringing.contains("Record-Route: <sip:proxy.example.com;lr>\r\n"),
        "{ringing}"
    );
}

#[test]
fn a_malformed_ack_is_never_answered() {
    let mut b = phone("10.0.0.2:5060", "", 2);
    let ack = b"ACK sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
    b.handle_received(
        Instant::now(),
        udp("10.0.0.1:5060"),
        "10.0.0.2:5060".parse().unwrap(),
        ack,
    );
    assert!(drain(&mut b, Instant::now()).sent.is_empty());
}

/// Hold and resume (RFC 3264 §8.4): A's re-INVITE offers sendonly, B
/// answers recvonly and shows it is held; resume restores sendrecv.
#[test]
fn hold_and_resume_by_reinvite() {
    let mut t = Pair::new();
    let a_call = t.dial();
    t.run(|_| false);
    let b_call = only_call(&t.b);
    t.b.handle_command(t.now, Command::Answer { call: None })
        .unwrap();
    t.run(|_| false);
    assert_eq!(call_state(&t.a, a_call).0, "connected");

    t.a.handle_command(t.now, Command::Hold { call: Some(a_call) })
        .unwrap();
    let d = drain(&mut t.a, t.now);
    let reinvite = d
        .sent
        .iter()
        .find(|(_, m)| first_line(m).starts_with("INVITE"))
        .expect("re-INVITE sent");
    let text = String::from_utf8_lossy(&reinvite.1).to_string();
    assert!(text.contains("a=sendonly"), "{text}");
    let Ok(Message::Request(req)) = Message::parse(&reinvite.1) else {
        panic!()
    };
    assert!(
        req.headers.to_addr().unwrap().tag().is_some(),
        "in-dialog (To tag)"
    );
    assert_eq!(req.headers.cseq().unwrap().seq, 2);
    // Deliver it and let the exchange finish.
    t.b.handle_received(t.now, udp("10.0.0.1:5060"), t.b_addr, &reinvite.1);
    t.run(|_| false);
    assert_eq!(call_state(&t.a, a_call).0, "held");
    let b = t.b.status();
    let bc = b.calls.iter().find(|c| c.id == b_call).unwrap();
    assert!(bc.remote_hold, "B sees it is held");
    assert!(
        t.log.iter().any(|l| l.starts_with("A>B: ACK")),
        "{:#?}",
        t.log
    );
    // A cannot hold twice; resume brings it back.
    assert!(
        t.a.handle_command(t.now, Command::Hold { call: Some(a_call) })
            .is_err()
    );
    t.a.handle_command(t.now, Command::Resume { call: Some(a_call) })
        .unwrap();
    t.run(|_| false);
    assert_eq!(call_state(&t.a, a_call).0, "connected");
    assert!(
        !t.b.status()
            .calls
            .iter()
            .find(|c| c.id == b_call)
            .unwrap()
            .remote_hold
    );
    // Hang up from hold works too.
    t.a.handle_command(t.now, Command::Hold { call: Some(a_call) })
        .unwrap();
    t.run(|_| false);
    t.a.handle_command(t.now, Command::Hangup { call: Some(a_call) })
        .unwrap();
    t.run(|_| false);
    assert_eq!(call_state(&t.b, b_call).0, "ended");
}

/// VICIdial-style auto-answer: honoured from the account's server, ignored
/// from anywhere else (a stranger cannot open the agent's microphone).
#[test]
fn auto_answer_only_when_our_server_asks() {
    let account = "[[account]]\nid = \"main\"\nusername = \"1001\"\npassword = \"secret\"\ndomain = \"10.0.0.5\"\nregister = false\n";
    let mut p = phone("10.0.0.1:5060", account, 9);
    let now = Instant::now();
    p.start(now);
    // Make the account know its server: a call resolves it.
    p.handle_command(now, Command::Register { account: None })
        .unwrap();
    let d = drain(&mut p, now);
    let (token, _, _) = d.resolves[0].clone();
    p.handle_resolved(
        now,
        token,
        Ok(vec![Resolved {
            peer: udp("10.0.0.5:5060"),
            local_ip: "10.0.0.1".parse().unwrap(),
        }]),
    );
    drain(&mut p, now);
    let invite = |n: u32, from: &str| {
        format!(
            "INVITE sip:1001@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {from}:5060;branch=z9hG4bKaa{n}\r\nFrom: <sip:8600051@{from}>;tag=v{n}\r\nTo: <sip:1001@10.0.0.1>\r\nCall-ID: vici-{n}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:8600051@{from}:5060>\r\nCall-Info: <sip:{from}>;answer-after=0\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let local: SocketAddr = "10.0.0.1:5060".parse().unwrap();
    // From a stranger: it only rings, whatever its headers say.
    p.handle_received(
        now,
        udp("10.0.0.9:5060"),
        local,
        invite(1, "10.0.0.9").as_bytes(),
    );
    p.handle_timeout(now + Duration::from_secs(1));
    drain(&mut p, now + Duration::from_secs(1));
    let s = p.status();
    assert_eq!(
        (s.calls[0].state, s.calls[0].auto_answered.clone()),
        ("ringing", None)
    );
    // From the registrar: 180, then a 200 without any answer command.
    p.handle_received(
        now,
        udp("10.0.0.5:5060"),
        local,
        invite(2, "10.0.0.5").as_bytes(),
    );
    let d = drain(&mut p, now);
    let lines: Vec<String> = d.sent.iter().map(|(_, m)| first_line(m)).collect();
    assert!(
        lines.contains(&"SIP/2.0 180 Ringing".to_string()),
        "{lines:?}"
    );
    p.handle_timeout(now + Duration::from_secs(1));
    let d = drain(&mut p, now + Duration::from_secs(1));
    let lines: Vec<String> = d.sent.iter().map(|(_, m)| first_line(m)).collect();
    assert!(lines.contains(&"SIP/2.0 200 OK".to_string()), "{lines:?}");
    let s = p.status();
    assert_eq!(s.calls[1].state, "connected");
    assert_eq!(
        s.calls[1].auto_answered.as_deref(),
        Some("Call-Info answer-after=0")
    );
    assert_eq!(
        s.calls[0].state, "ringing",
        "the stranger's call still only rings"
    );
}
