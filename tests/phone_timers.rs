//! Session timers (RFC 4028), reliable provisional responses (RFC 3262),
//! UPDATE (RFC 3311), in-dialog digest retries, RTP inactivity and RFC 4733
//! digit events, on a fake clock: two in-memory phones, or one phone and a
//! scripted far end whose messages the test writes out.
#![allow(clippy::disallowed_methods)]

#[path = "support/core.rs"]
mod core_support;

use core_support::{drain, first_line, phone, udp};

use std::path::Path;
use std::time::{Duration, Instant};

use softline::config::Config;
use softline::phone::{Command, Event, Phone, Reply, Resolved};
use softline::sip::dialog::response_to;
use softline::sip::headers::TypedHeaders;
use softline::sip::message::{Message, Request, Response};

fn parse(data: &[u8]) -> Message {
    Message::parse(data).expect("the phone sends parsable messages")
}

fn call_state(p: &Phone, id: u64) -> (String, Option<String>) {
    let s = p.status();
    let c = s.calls.iter().find(|c| c.id == id).expect("call listed");
    (c.state.to_string(), c.cause.clone())
}

// ----- two phones ---------------------------------------------------------

struct Pair {
    a: Phone,
    b: Phone,
    now: Instant,
    log: Vec<String>,
}

impl Pair {
    fn new(a_cfg: &str, b_cfg: &str) -> Pair {
        Pair {
            a: phone("10.0.0.1:5060", a_cfg, 1),
            b: phone("10.0.0.2:5060", b_cfg, 2),
            now: Instant::now(),
            log: Vec::new(),
        }
    }

    /// Deliver until quiet; returns the messages delivered (full text).
    fn run(&mut self, mut drop: impl FnMut(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        for _ in 0..100 {
            let da = drain(&mut self.a, self.now);
            let db = drain(&mut self.b, self.now);
            if da.sent.is_empty() && db.sent.is_empty() {
                return seen;
            }
            for (data, to_b) in da
                .sent
                .into_iter()
                .map(|(_, d)| (d, true))
                .chain(db.sent.into_iter().map(|(_, d)| (d, false)))
            {
                let line = first_line(&data);
                let dir = if to_b { "A>B" } else { "B>A" };
                if drop(&line) {
                    self.log.push(format!("{dir} (lost): {line}"));
                    continue;
                }
                self.log.push(format!("{dir}: {line}"));
                seen.push(String::from_utf8_lossy(&data).into_owned());
                if to_b {
                    self.b.handle_received(
                        self.now,
                        udp("10.0.0.1:5060"),
                        "10.0.0.2:5060".parse().unwrap(),
                        &data,
                    );
                } else {
                    self.a.handle_received(
                        self.now,
                        udp("10.0.0.2:5060"),
                        "10.0.0.1:5060".parse().unwrap(),
                        &data,
                    );
                }
            }
        }
        panic!("messages kept flowing: {:#?}", self.log);
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
    }

    fn dial(&mut self) -> u64 {
        let Reply::Call { call } = self
            .a
            .handle_command(
                self.now,
                Command::Call {
                    account: None,
                    target: "sip:bob@10.0.0.2:5060".into(),
                },
            )
            .unwrap()
        else {
            panic!("no call id")
        };
        let d = drain(&mut self.a, self.now);
        let (token, _, _) = d.resolves[0].clone();
        self.a.handle_resolved(
            self.now,
            token,
            Ok(vec![Resolved {
                peer: udp("10.0.0.2:5060"),
                local_ip: "10.0.0.1".parse().unwrap(),
            }]),
        );
        call
    }

    /// A calls B, B answers: (A's call, B's call, every message delivered).
    fn connect(&mut self) -> (u64, u64, Vec<String>) {
        let a_call = self.dial();
        let mut msgs = self.run(|_| false);
        let b_call = self.b.status().calls[0].id;
        self.b
            .handle_command(self.now, Command::Answer { call: None })
            .unwrap();
        msgs.extend(self.run(|_| false));
        assert_eq!(call_state(&self.a, a_call).0, "connected");
        assert_eq!(call_state(&self.b, b_call).0, "connected");
        (a_call, b_call, msgs)
    }
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

fn find<'a>(msgs: &'a [String], start: &str) -> &'a str {
    msgs.iter()
        .find(|m| m.starts_with(start))
        .unwrap_or_else(|| panic!("no `{start}` in {msgs:#?}"))
}

/// A 30-minute-equivalent (here 40 minutes) call: A asks for 1800 s, B
/// answers with the caller as refresher, A refreshes by UPDATE every 900 s,
/// both stay connected, and nothing accumulates in the transaction tables
/// or the per-call state; after the hang-up everything drains to zero.
#[test]
fn long_call_refreshes_every_half_interval_without_leaks() {
    let mut t = Pair::new("", "");
    let (a_call, b_call, msgs) = t.connect();
    let invite = find(&msgs, "INVITE ");
    assert_eq!(header(invite, "Session-Expires"), Some("1800"));
    assert_eq!(header(invite, "Min-SE"), Some("90"));
    assert_eq!(header(invite, "Supported"), Some("100rel, timer"));
    assert!(header(invite, "Allow").unwrap().contains("UPDATE"));
    let ok = find(&msgs, "SIP/2.0 200 OK");
    assert_eq!(
        header(ok, "Session-Expires"),
        Some("1800;refresher=uac"),
        "{ok}"
    );
    assert_eq!(header(ok, "Require"), Some("timer"));

    let mut updates = Vec::new();
    let mut sizes = Vec::new();
    for step in 1..=240 {
        t.advance(Duration::from_secs(10));
        for m in t.run(|_| false) {
            if m.starts_with("UPDATE ") {
                updates.push((step * 10, m));
            }
        }
        assert_eq!(call_state(&t.a, a_call).0, "connected", "{:#?}", t.log);
        assert_eq!(call_state(&t.b, b_call).0, "connected", "{:#?}", t.log);
        sizes.push((t.a.table_sizes(), t.b.table_sizes()));
    }
    let at: Vec<u64> = updates.iter().map(|(s, _)| *s).collect();
    assert_eq!(at, vec![900, 1800], "refresh at half the interval");
    for (_, u) in &updates {
        assert_eq!(header(u, "Session-Expires"), Some("1800;refresher=uac"));
        assert_eq!(header(u, "Content-Length"), Some("0"), "no SDP: {u}");
    }
    // CSeq grows in the dialog: 2 and 3 for the two UPDATEs.
    assert_eq!(header(&updates[1].1, "CSeq"), Some("3 UPDATE"));
    // Bounded: each phone holds at most the refresh's transaction.
    for ((ta, oa, sa), (tb, ob, sb)) in &sizes {
        assert!(*ta <= 2 && *oa <= 1 && *sa <= 2, "A {ta} {oa} {sa}");
        assert!(*tb <= 2 && *ob <= 1 && *sb <= 2, "B {tb} {ob} {sb}");
    }
    let s = t.a.status();
    assert_eq!(s.calls.len(), 1);
    t.a.handle_command(t.now, Command::Hangup { call: Some(a_call) })
        .unwrap();
    t.run(|_| false);
    assert_eq!(call_state(&t.b, b_call).0, "ended");
    t.advance(Duration::from_secs(40));
    t.run(|_| false);
    assert_eq!(t.a.table_sizes(), (0, 0, 0));
    assert_eq!(t.b.table_sizes(), (0, 0, 0));
    assert_eq!(t.a.poll_timeout(), None, "no timer left behind");
    assert_eq!(t.b.poll_timeout(), None, "no timer left behind");
}

/// When the far end lists no UPDATE, the refresh is a re-INVITE with SDP
/// (same media), answered with the timer again.
#[test]
fn refresh_by_reinvite_when_update_not_allowed() {
    let mut t = Pair::new("[phone]\nsession_expires_secs = 120\n", "");
    let a_call = t.dial();
    t.run(|_| false);
    t.b.handle_command(t.now, Command::Answer { call: None })
        .unwrap();
    // The 200 loses UPDATE from its Allow on the way (an old PBX).
    let da = drain(&mut t.a, t.now);
    assert!(da.sent.is_empty());
    let db = drain(&mut t.b, t.now);
    for (_, data) in db.sent {
        let text = String::from_utf8_lossy(&data).replace(", PRACK, UPDATE", "");
        t.a.handle_received(
            t.now,
            udp("10.0.0.2:5060"),
            "10.0.0.1:5060".parse().unwrap(),
            text.as_bytes(),
        );
    }
    t.run(|_| false);
    assert_eq!(call_state(&t.a, a_call).0, "connected");
    t.advance(Duration::from_secs(59));
    assert!(t.run(|_| false).is_empty(), "nothing before 60 s");
    t.advance(Duration::from_secs(1));
    let msgs = t.run(|_| false);
    let reinvite = find(&msgs, "INVITE ");
    assert_eq!(
        header(reinvite, "Session-Expires"),
        Some("120;refresher=uac")
    );
    assert!(
        reinvite.contains("m=audio 40002 "),
        "same media: {reinvite}"
    );
    let ok = find(&msgs, "SIP/2.0 200 OK");
    assert_eq!(header(ok, "Session-Expires"), Some("120;refresher=uac"));
    assert!(msgs.iter().any(|m| m.starts_with("ACK ")));
    assert_eq!(call_state(&t.a, a_call).0, "connected");
}

/// B insists on a Min-SE above what A asks: 422, A asks again with B's
/// Min-SE (CSeq 2), the call connects with that interval.
#[test]
fn uac_follows_422_min_se() {
    let mut t = Pair::new("", "[phone]\nsession_expires_secs = 3600\nmin_se = 2000\n");
    let a_call = t.dial();
    let msgs = t.run(|_| false);
    let r422 = find(&msgs, "SIP/2.0 422");
    assert_eq!(header(r422, "Min-SE"), Some("2000"));
    let second = msgs
        .iter()
        .filter(|m| m.starts_with("INVITE "))
        .nth(1)
        .expect("INVITE sent again");
    assert_eq!(header(second, "Session-Expires"), Some("2000"));
    assert_eq!(header(second, "Min-SE"), Some("2000"));
    assert_eq!(header(second, "CSeq"), Some("2 INVITE"));
    t.b.handle_command(t.now, Command::Answer { call: None })
        .unwrap();
    let msgs = t.run(|_| false);
    assert_eq!(
        header(find(&msgs, "SIP/2.0 200 OK"), "Session-Expires"),
        Some("2000;refresher=uac")
    );
    assert_eq!(call_state(&t.a, a_call).0, "connected");
}

// ----- one phone and a scripted far end ------------------------------------

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

struct Script {
    p: Phone,
    now: Instant,
    branch: u32,
}

impl Script {
    fn new(extra: &str) -> Script {
        Script {
            p: phone("10.0.0.1:5060", extra, 7),
            now: Instant::now(),
            branch: 0,
        }
    }

    fn send(&mut self, text: &str) -> Vec<String> {
        self.p.handle_received(
            self.now,
            udp("10.0.0.2:5060"),
            "10.0.0.1:5060".parse().unwrap(),
            text.as_bytes(),
        );
        self.take()
    }

    fn take(&mut self) -> Vec<String> {
        drain(&mut self.p, self.now)
            .sent
            .into_iter()
            .map(|(_, d)| String::from_utf8_lossy(&d).into_owned())
            .collect()
    }

    fn advance(&mut self, d: Duration) -> Vec<String> {
        self.now += d;
        self.p.handle_timeout(self.now);
        self.take()
    }

    /// A request from the scripted caller (alice, tag a1, Call-ID c1).
    fn request(
        &mut self,
        method: &str,
        to_tag: Option<&str>,
        cseq: u32,
        extra: &str,
        body: &str,
    ) -> String {
        self.branch += 1;
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let ctype = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".into()
        };
        format!(
            "{method} sip:bob@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKs{}\r\nFrom: <sip:alice@10.0.0.2>;tag=a1\r\nTo: <sip:bob@10.0.0.1>{to_tag}\r\nCall-ID: c1\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContact: <sip:alice@10.0.0.2:5060>\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
            self.branch,
            body.len()
        )
    }

    /// The scripted caller's INVITE, answered by the phone: its To tag.
    fn incoming_connected(&mut self, extra: &str) -> String {
        let invite = self.request("INVITE", None, 1, extra, SDP);
        let out = self.send(&invite);
        assert!(out[0].starts_with("SIP/2.0 180"), "{out:?}");
        self.p
            .handle_command(self.now, Command::Answer { call: None })
            .unwrap();
        let out = self.take();
        let ok = find(&out, "SIP/2.0 200 OK").to_string();
        let tag = header(&ok, "To")
            .and_then(|t| t.split(";tag=").nth(1))
            .unwrap()
            .to_string();
        let ack = self.request("ACK", Some(&tag), 1, "", "");
        assert!(self.send(&ack).is_empty());
        tag
    }

    /// The phone calls bob@10.0.0.2: its INVITE.
    fn outgoing(&mut self) -> (u64, Request) {
        let Reply::Call { call } = self
            .p
            .handle_command(
                self.now,
                Command::Call {
                    account: None,
                    target: "sip:bob@10.0.0.2:5060".into(),
                },
            )
            .unwrap()
        else {
            panic!("no call id")
        };
        let d = drain(&mut self.p, self.now);
        let (token, _, _) = d.resolves[0].clone();
        self.p.handle_resolved(
            self.now,
            token,
            Ok(vec![Resolved {
                peer: udp("10.0.0.2:5060"),
                local_ip: "10.0.0.1".parse().unwrap(),
            }]),
        );
        let out = self.take();
        let Message::Request(inv) = parse(find(&out, "INVITE ").as_bytes()) else {
            panic!()
        };
        (call, inv)
    }

    fn respond(&mut self, resp: Response) -> Vec<String> {
        self.send(&String::from_utf8_lossy(
            &Message::Response(resp).to_bytes(),
        ))
    }
}

fn answer_sdp() -> Vec<u8> {
    SDP.replace("30000", "30002").into_bytes()
}

fn with_body(mut r: Response, body: Vec<u8>) -> Response {
    r.headers.set("Content-Type", "application/sdp");
    r.headers.set("Content-Length", body.len().to_string());
    r.body = body;
    r
}

/// The caller is the refresher and never refreshes: the phone sends BYE
/// (cause "session timer expired") at the interval minus a third (90 s →
/// 60 s); an UPDATE refresh in between moves the expiry on.
#[test]
fn peer_refresher_silent_means_bye_before_expiry() {
    let mut s = Script::new("");
    let tag = s.incoming_connected("Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n");
    let call = s.p.status().calls[0].id;
    assert!(s.advance(Duration::from_secs(45)).is_empty());
    // A refresh (UPDATE without SDP) at 45 s: 200 with the timer.
    let update = s.request(
        "UPDATE",
        Some(&tag),
        2,
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
        "",
    );
    let out = s.send(&update);
    assert!(out[0].starts_with("SIP/2.0 200 OK"), "{out:?}");
    assert_eq!(header(&out[0], "Session-Expires"), Some("90;refresher=uac"));
    assert_eq!(header(&out[0], "Require"), Some("timer"));
    // Expiry now 45 + 60 = 105 s.
    let out = s.advance(Duration::from_secs(59));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(call_state(&s.p, call).0, "connected");
    let out = s.advance(Duration::from_secs(2));
    let bye = find(&out, "BYE ");
    assert_eq!(header(bye, "CSeq"), Some("1 BYE"));
    assert_eq!(
        call_state(&s.p, call),
        ("ended".into(), Some("session timer expired".into()))
    );
}

#[test]
fn session_interval_below_min_se_gets_422() {
    let mut s = Script::new("");
    let invite = s.request("INVITE", None, 1, "Session-Expires: 60\r\n", SDP);
    let out = s.send(&invite);
    assert!(out[0].starts_with("SIP/2.0 422"), "{out:?}");
    assert_eq!(header(&out[0], "Min-SE"), Some("90"));
    let invite = s.request("INVITE", None, 1, "Session-Expires: soon\r\n", SDP);
    let out = s.send(&invite);
    assert!(out[0].starts_with("SIP/2.0 400"), "{out:?}");
    assert!(s.p.status().calls.is_empty(), "nothing rang");
}

/// UAS side of 100rel: the INVITE requires it, the 180 carries Require
/// and RSeq, is retransmitted T1, 2T1, ... until the PRACK (200), then
/// never again; a PRACK with a wrong RAck gets 481.
#[test]
fn reliable_180_retransmitted_until_prack() {
    let mut s = Script::new("");
    let invite = s.request("INVITE", None, 1, "Require: 100rel\r\n", SDP);
    let out = s.send(&invite);
    let ringing = &out[0];
    assert!(ringing.starts_with("SIP/2.0 180"), "{out:?}");
    assert_eq!(header(ringing, "Require"), Some("100rel"));
    let rseq: u32 = header(ringing, "RSeq").unwrap().parse().unwrap();
    assert!(rseq >= 1);
    let tag = header(ringing, "To")
        .and_then(|t| t.split(";tag=").nth(1))
        .unwrap()
        .to_string();
    let again = s.advance(Duration::from_millis(500));
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(header(&again[0], "RSeq"), Some(rseq.to_string().as_str()));
    assert!(
        s.advance(Duration::from_millis(900)).is_empty(),
        "waits 2×T1"
    );
    assert_eq!(s.advance(Duration::from_millis(100)).len(), 1);
    let wrong = s.request(
        "PRACK",
        Some(&tag),
        2,
        &format!("RAck: {} 1 INVITE\r\n", rseq + 5),
        "",
    );
    assert!(s.send(&wrong)[0].starts_with("SIP/2.0 481"));
    let prack = s.request(
        "PRACK",
        Some(&tag),
        3,
        &format!("RAck: {rseq} 1 INVITE\r\n"),
        "",
    );
    let out = s.send(&prack);
    assert!(out[0].starts_with("SIP/2.0 200 OK"), "{out:?}");
    assert!(
        s.advance(Duration::from_secs(10)).is_empty(),
        "no more 180s"
    );
    let call = s.p.status().calls[0].id;
    assert_eq!(call_state(&s.p, call).0, "ringing");
    // A PRACK outside any dialog: 481.
    let stray = s
        .request("PRACK", Some("nope"), 4, "RAck: 1 1 INVITE\r\n", "")
        .replace("Call-ID: c1", "Call-ID: other");
    assert!(s.send(&stray)[0].starts_with("SIP/2.0 481"));
}

/// No PRACK ever: the 180 is given up after 64×T1 with 504, and the call
/// ends (no line stuck ringing).
#[test]
fn reliable_180_without_prack_gives_up_with_504() {
    let mut s = Script::new("");
    let invite = s.request("INVITE", None, 1, "Require: 100rel\r\n", SDP);
    s.send(&invite);
    let mut finals = Vec::new();
    let mut ringings = 0;
    for _ in 0..70 {
        for m in s.advance(Duration::from_millis(500)) {
            if m.starts_with("SIP/2.0 180") {
                ringings += 1;
            } else {
                finals.push(first_line(m.as_bytes()));
            }
        }
    }
    assert!((5..=7).contains(&ringings), "{ringings} retransmissions");
    assert_eq!(
        finals.first().map(String::as_str),
        Some("SIP/2.0 504 Server Time-out")
    );
    let call = s.p.status().calls[0].id;
    let (state, cause) = call_state(&s.p, call);
    assert_eq!(state, "ended");
    assert!(cause.unwrap().contains("PRACK"));
}

/// UAC side of 100rel: a reliable 183 with SDP starts early media and is
/// PRACKed (RAck = RSeq, INVITE CSeq) once; its retransmission is not
/// PRACKed again; after the 200 the BYE's CSeq follows the PRACK's.
#[test]
fn reliable_183_is_pracked_once_and_plays_early_media() {
    let mut s = Script::new("");
    let (call, inv) = s.outgoing();
    assert_eq!(inv.headers.get("Supported"), Some("100rel, timer"));
    let mut r183 = response_to(&inv, 183, Some("b1"));
    r183.headers.push("Require", "100rel");
    r183.headers.push("RSeq", "7");
    r183.headers.push("Contact", "<sip:bob@10.0.0.2:5060>");
    let r183 = with_body(r183, answer_sdp());
    s.p.handle_received(
        s.now,
        udp("10.0.0.2:5060"),
        "10.0.0.1:5060".parse().unwrap(),
        &Message::Response(r183.clone()).to_bytes(),
    );
    let d = drain(&mut s.p, s.now);
    assert_eq!(d.media_started.len(), 1, "early media plays");
    let sent: Vec<String> = d
        .sent
        .iter()
        .map(|(_, m)| String::from_utf8_lossy(m).into_owned())
        .collect();
    let prack = find(&sent, "PRACK sip:bob@10.0.0.2:5060");
    assert_eq!(header(prack, "RAck"), Some("7 1 INVITE"));
    assert_eq!(header(prack, "CSeq"), Some("2 PRACK"));
    assert!(header(prack, "To").unwrap().contains("tag=b1"));
    assert_eq!(call_state(&s.p, call).0, "early");
    // Retransmitted 183: no second PRACK.
    let out = s.respond(r183.clone());
    assert!(out.iter().all(|m| !m.starts_with("PRACK")), "{out:?}");
    let Message::Request(prack_req) = parse(prack.as_bytes()) else {
        panic!()
    };
    assert!(s.respond(response_to(&prack_req, 200, None)).is_empty());
    let mut ok = response_to(&inv, 200, Some("b1"));
    ok.headers.push("Contact", "<sip:bob@10.0.0.2:5060>");
    let out = s.respond(ok);
    assert!(out.iter().any(|m| m.starts_with("ACK ")), "{out:?}");
    assert_eq!(call_state(&s.p, call).0, "connected");
    s.p.handle_command(s.now, Command::Hangup { call: Some(call) })
        .unwrap();
    let out = s.take();
    assert_eq!(header(find(&out, "BYE "), "CSeq"), Some("3 BYE"));
}

/// UPDATE in a confirmed dialog: with a sendonly offer it holds us (200
/// with our recvonly answer), without SDP it is a 200 without body; one
/// for no dialog gets 481; an out-of-order CSeq gets 500.
#[test]
fn update_with_and_without_sdp() {
    let mut s = Script::new("");
    let tag = s.incoming_connected("");
    let call = s.p.status().calls[0].id;
    let hold = SDP
        .replace("a=sendrecv", "a=sendonly")
        .replace("1 1 IN", "1 2 IN");
    let update = s.request("UPDATE", Some(&tag), 2, "", &hold);
    s.p.handle_received(
        s.now,
        udp("10.0.0.2:5060"),
        "10.0.0.1:5060".parse().unwrap(),
        update.as_bytes(),
    );
    let d = drain(&mut s.p, s.now);
    let ok = String::from_utf8_lossy(&d.sent[0].1).into_owned();
    assert!(ok.starts_with("SIP/2.0 200 OK"), "{ok}");
    assert!(ok.contains("a=recvonly"), "{ok}");
    assert_eq!(d.media_started.len(), 1, "media follows the new offer");
    assert!(s.p.status().calls[0].remote_hold);
    let _ = call;
    let update = s.request(
        "UPDATE",
        Some(&tag),
        3,
        "",
        &SDP.replace("1 1 IN", "1 3 IN"),
    );
    let out = s.send(&update);
    assert!(out[0].contains("a=sendrecv"));
    assert!(!s.p.status().calls[0].remote_hold, "resumed");
    let refresh = s.request("UPDATE", Some(&tag), 4, "", "");
    let out = s.send(&refresh);
    assert!(out[0].starts_with("SIP/2.0 200 OK"));
    assert_eq!(header(&out[0], "Content-Length"), Some("0"));
    let old = s.request("UPDATE", Some(&tag), 4, "", "");
    assert!(s.send(&old)[0].starts_with("SIP/2.0 500"));
    let stray = s.request("UPDATE", Some("zzz"), 5, "", "");
    assert!(s.send(&stray)[0].starts_with("SIP/2.0 481"));
    // OPTIONS lists UPDATE and PRACK.
    let options = s.request("OPTIONS", None, 9, "", "");
    let out = s.send(&options);
    assert!(header(&out[0], "Allow").unwrap().contains("PRACK, UPDATE"));
}

/// UPDATE in the early dialog of a ringing incoming call: without SDP 200;
/// with an offer (ours not yet given) 500 with Retry-After.
#[test]
fn update_in_early_dialog() {
    let mut s = Script::new("");
    let invite = s.request("INVITE", None, 1, "", SDP);
    let out = s.send(&invite);
    let tag = header(&out[0], "To")
        .and_then(|t| t.split(";tag=").nth(1))
        .unwrap()
        .to_string();
    let update = s.request("UPDATE", Some(&tag), 2, "", "");
    assert!(s.send(&update)[0].starts_with("SIP/2.0 200 OK"));
    let update = s.request("UPDATE", Some(&tag), 3, "", SDP);
    let out = s.send(&update);
    assert!(out[0].starts_with("SIP/2.0 500"));
    assert!(header(&out[0], "Retry-After").is_some());
    assert_eq!(s.p.status().calls[0].state, "ringing");
}

const ACCOUNT: &str = "[[account]]\nid = \"main\"\nusername = \"1001\"\npassword = \"secret\"\ndomain = \"10.0.0.2\"\nregister = false\n";

/// A 407 to our BYE is answered once with Proxy-Authorization (CSeq + 1);
/// a second 407 fails it (the call still ends, no third BYE).
#[test]
fn bye_challenged_is_retried_once_with_credentials() {
    let mut s = Script::new(ACCOUNT);
    let tag = s.incoming_connected("");
    let call = s.p.status().calls[0].id;
    s.p.handle_command(s.now, Command::Hangup { call: Some(call) })
        .unwrap();
    let out = s.take();
    let Message::Request(bye) = parse(find(&out, "BYE ").as_bytes()) else {
        panic!()
    };
    assert_eq!(bye.headers.get("CSeq"), Some("1 BYE"));
    let challenge = |req: &Request| {
        let mut r = response_to(req, 407, None);
        r.headers.push(
            "Proxy-Authenticate",
            "Digest realm=\"pbx\", nonce=\"n1\", qop=\"auth\", algorithm=MD5",
        );
        r
    };
    let out = s.respond(challenge(&bye));
    let Message::Request(bye2) = parse(find(&out, "BYE ").as_bytes()) else {
        panic!("{out:?}")
    };
    assert_eq!(bye2.headers.get("CSeq"), Some("2 BYE"));
    let auth = bye2.headers.get("Proxy-Authorization").unwrap();
    assert!(auth.contains("username=\"1001\"") && auth.contains("realm=\"pbx\""));
    assert_ne!(
        bye.headers.top_via().unwrap().branch(),
        bye2.headers.top_via().unwrap().branch()
    );
    let out = s.respond(challenge(&bye2));
    assert!(out.iter().all(|m| !m.starts_with("BYE")), "{out:?}");
    assert_eq!(call_state(&s.p, call).0, "ended");
    let _ = tag;
}

/// A 401 to our hold re-INVITE is retried with credentials; the 200 that
/// follows puts the call on hold.
#[test]
fn reinvite_challenged_is_retried_with_credentials() {
    let mut s = Script::new(ACCOUNT);
    s.incoming_connected("");
    let call = s.p.status().calls[0].id;
    s.p.handle_command(s.now, Command::Hold { call: Some(call) })
        .unwrap();
    let out = s.take();
    let Message::Request(re) = parse(find(&out, "INVITE ").as_bytes()) else {
        panic!()
    };
    let mut r = response_to(&re, 401, None);
    r.headers
        .push("WWW-Authenticate", "Digest realm=\"pbx\", nonce=\"n2\"");
    let out = s.respond(r);
    assert!(out.iter().any(|m| m.starts_with("ACK ")), "non-2xx ACKed");
    let Message::Request(re2) = parse(find(&out, "INVITE ").as_bytes()) else {
        panic!("{out:?}")
    };
    assert_eq!(re2.headers.get("CSeq"), Some("2 INVITE"));
    assert!(re2.headers.get("Authorization").is_some());
    assert!(String::from_utf8_lossy(&re2.body).contains("a=sendonly"));
    let ok = with_body(
        response_to(&re2, 200, None),
        SDP.replace("a=sendrecv", "a=recvonly").into_bytes(),
    );
    s.respond(ok);
    assert_eq!(call_state(&s.p, call).0, "held");
}

/// No RTP for `inactivity_hangup_secs`: a connected call is hung up with
/// a clear cause; below the limit, or with the setting off, nothing.
#[test]
fn media_inactivity_hangs_up() {
    let mut s = Script::new("[media]\ninactivity_hangup_secs = 20\n");
    s.incoming_connected("");
    let call = s.p.status().calls[0].id;
    s.p.handle_media_silent(s.now, call, 19);
    assert!(s.take().is_empty());
    s.p.handle_media_silent(s.now, call, 20);
    let out = s.take();
    assert!(out.iter().any(|m| m.starts_with("BYE ")), "{out:?}");
    assert_eq!(
        call_state(&s.p, call),
        ("ended".into(), Some("no media for 20 s".into()))
    );

    let mut off = Script::new("");
    off.incoming_connected("");
    let call = off.p.status().calls[0].id;
    off.p.handle_media_silent(off.now, call, 3600);
    assert!(off.take().is_empty());
    assert_eq!(call_state(&off.p, call).0, "connected");
}

/// RFC 4733 digits the media task decoded become `Event::Dtmf`.
#[test]
fn media_dtmf_becomes_an_event() {
    let mut s = Script::new("");
    s.incoming_connected("");
    let call = s.p.status().calls[0].id;
    s.p.handle_media_dtmf(call, '5');
    let d = drain(&mut s.p, s.now);
    assert!(d.events.contains(&Event::Dtmf {
        call,
        digit: "5".into(),
        method: "rfc4733"
    }));
    s.p.handle_media_dtmf(call + 100, '1');
    assert!(drain(&mut s.p, s.now).events.is_empty(), "unknown call");
}

/// Session timers off (`session_expires_secs = 0`): no Session-Expires in
/// the INVITE; a caller asking for one still gets it honoured.
#[test]
fn timer_off_asks_for_nothing() {
    let mut s = Script::new("[phone]\nsession_expires_secs = 0\n");
    let (_, inv) = s.outgoing();
    assert_eq!(inv.headers.get("Session-Expires"), None);
    assert_eq!(inv.headers.get("Supported"), Some("100rel"));
}

/// `min_se` below RFC 4028's 90 s, or a session interval below `min_se`,
/// are refused with the key named.
#[test]
fn session_timer_config_is_validated() {
    let parse = |t: &str| Config::parse(t, Path::new("t.toml"));
    let e = parse("[phone]\nmin_se = 60\n").unwrap_err().to_string();
    assert!(e.contains("phone.min_se") && e.contains("90"), "{e}");
    let e = parse("[phone]\nsession_expires_secs = 100\nmin_se = 120\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("phone.session_expires_secs"), "{e}");
    assert!(parse("[phone]\nsession_expires_secs = 0\nmin_se = 120\n").is_ok());
    assert!(parse("[media]\ninactivity_hangup_secs = 30\n").is_ok());
}

/// An UPDATE asking for a session interval below our Min-SE gets 422.
#[test]
fn update_with_too_short_interval_gets_422() {
    let mut s = Script::new("");
    let tag = s.incoming_connected("");
    let update = s.request("UPDATE", Some(&tag), 2, "Session-Expires: 30\r\n", "");
    let out = s.send(&update);
    assert!(out[0].starts_with("SIP/2.0 422"), "{out:?}");
    assert_eq!(header(&out[0], "Min-SE"), Some("90"));
    // Out of any dialog it is 481 whatever it asks for.
    let stray = s.request("UPDATE", Some("zzz"), 3, "Session-Expires: 30\r\n", "");
    assert!(s.send(&stray)[0].starts_with("SIP/2.0 481"));
}

/// A 401 to an INFO (DTMF by SIP INFO) is retried once with credentials.
#[test]
fn info_challenged_is_retried_with_credentials() {
    let mut s = Script::new(&format!("{ACCOUNT}dtmf = \"info\"\n"));
    s.incoming_connected("");
    s.p.handle_command(
        s.now,
        Command::Dtmf {
            call: None,
            digits: "7".into(),
        },
    )
    .unwrap();
    let out = s.take();
    let Message::Request(info) = parse(find(&out, "INFO ").as_bytes()) else {
        panic!()
    };
    let mut r = response_to(&info, 401, None);
    r.headers
        .push("WWW-Authenticate", "Digest realm=\"pbx\", nonce=\"n3\"");
    let out = s.respond(r);
    let Message::Request(info2) = parse(find(&out, "INFO ").as_bytes()) else {
        panic!("{out:?}")
    };
    assert_eq!(
        info2.headers.cseq().unwrap().seq,
        info.headers.cseq().unwrap().seq + 1
    );
    assert!(info2.headers.get("Authorization").is_some());
    assert_eq!(info2.body, info.body, "same digit");
    assert!(s.respond(response_to(&info2, 200, None)).is_empty());
}
