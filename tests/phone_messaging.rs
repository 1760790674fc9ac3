//! MESSAGE (RFC 3428), MWI (RFC 3842 / RFC 6665) and DTMF by SIP INFO in
//! the sans-IO phone core, on a fake clock: scripted servers answer what
//! the phone sends, and two in-memory phones talk to each other.
#![allow(clippy::disallowed_methods)]

#[path = "support/core.rs"]
mod core_support;

use core_support::{drain, first_line, phone, udp};

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use softline::phone::{Command, Event, Phone, Reply, Resolved, Voicemail};
use softline::sip::headers::TypedHeaders;
use softline::sip::message::{Method, Request};

const ME: &str = "10.0.0.1:5060";
const SERVER: &str = "10.0.0.5:5060";

/// A response to `req` (Via, From, To with a tag, Call-ID, CSeq copied).
fn reply(req: &Request, status: &str, extra: &str) -> Vec<u8> {
    let to = req.headers.get("To").unwrap();
    let to = if to.contains("tag=") {
        to.to_string()
    } else {
        format!("{to};tag=srv")
    };
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        req.headers.get("Via").unwrap(),
        req.headers.get("From").unwrap(),
        req.headers.call_id().unwrap(),
        req.headers.get("CSeq").unwrap()
    )
    .into_bytes()
}

fn deliver(p: &mut Phone, now: Instant, from: &str, data: &[u8]) {
    p.handle_received(now, udp(from), ME.parse().unwrap(), data);
}

fn resolve_to(p: &mut Phone, now: Instant, token: u64, addr: &str) {
    p.handle_resolved(
        now,
        token,
        Ok(vec![Resolved {
            peer: udp(addr),
            local_ip: "10.0.0.1".parse().unwrap(),
        }]),
    );
}

const ACCOUNT: &str = "[[account]]\nid = \"main\"\nusername = \"1001\"\npassword = \"secret\"\ndomain = \"10.0.0.5\"\nregister = false\n";

fn statuses(events: &[Event]) -> Vec<(u64, String, Option<u16>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageStatus {
                id, state, code, ..
            } => Some((*id, state.to_string(), *code)),
            _ => None,
        })
        .collect()
}

/// MESSAGE through the account's server: 407 challenge, the retry carries
/// Proxy-Authorization (same Call-ID, CSeq + 1), 202 → `delivered`.
#[test]
fn message_out_with_407_challenge_then_delivered() {
    let mut p = phone(ME, ACCOUNT, 3);
    let now = Instant::now();
    p.start(now);
    drain(&mut p, now);
    let r = p
        .handle_command(
            now,
            Command::Message {
                account: None,
                target: "1002".into(),
                text: "héllo agent".into(),
            },
        )
        .unwrap();
    assert_eq!(r, Reply::Message { message: 1 });
    let d = drain(&mut p, now);
    let (token, host, _) = d.resolves[0].clone();
    assert_eq!(host, "10.0.0.5");
    resolve_to(&mut p, now, token, SERVER);
    let d = drain(&mut p, now);
    assert_eq!(statuses(&d.events), vec![(1, "sent".into(), None)]);
    let reqs = d.requests();
    assert_eq!(reqs.len(), 1);
    let m = &reqs[0];
    assert_eq!(d.sent[0].0.addr, SERVER.parse::<SocketAddr>().unwrap());
    assert_eq!(
        first_line(&d.sent[0].1),
        "MESSAGE sip:1002@10.0.0.5 SIP/2.0"
    );
    assert_eq!(
        m.headers.get("Content-Type"),
        Some("text/plain;charset=UTF-8")
    );
    assert_eq!(m.body, "héllo agent".as_bytes());
    assert!(
        m.headers
            .get("From")
            .unwrap()
            .starts_with("<sip:1001@10.0.0.5>;tag=")
    );
    assert_eq!(m.headers.get("To"), Some("<sip:1002@10.0.0.5>"));
    assert_eq!(m.headers.cseq().unwrap().seq, 1);
    let challenge = reply(
        m,
        "407 Proxy Authentication Required",
        "Proxy-Authenticate: Digest realm=\"pbx\", nonce=\"abc\", algorithm=MD5, qop=\"auth\"\r\n",
    );
    deliver(&mut p, now, SERVER, &challenge);
    let d = drain(&mut p, now);
    let reqs = d.requests();
    assert_eq!(reqs.len(), 1, "{:?}", d.first_lines());
    let m2 = &reqs[0];
    assert_eq!(m2.method, Method::Message);
    assert_eq!(m2.headers.call_id().unwrap(), m.headers.call_id().unwrap());
    assert_eq!(m2.headers.cseq().unwrap().seq, 2);
    let auth = m2.headers.get("Proxy-Authorization").unwrap();
    assert!(
        auth.contains("username=\"1001\"") && auth.contains("realm=\"pbx\""),
        "{auth}"
    );
    assert_ne!(
        m2.headers.top_via().unwrap().branch(),
        m.headers.top_via().unwrap().branch()
    );
    assert!(statuses(&d.events).is_empty());
    deliver(&mut p, now, SERVER, &reply(m2, "202 Accepted", ""));
    let d = drain(&mut p, now);
    assert_eq!(
        statuses(&d.events),
        vec![(1, "delivered".into(), Some(202))]
    );
}

/// A second challenge after our answer is a wrong password: `failed`,
/// and no third MESSAGE. A 404 is `failed` with its code.
#[test]
fn message_failures_are_reported_once() {
    let mut p = phone(ME, ACCOUNT, 4);
    let now = Instant::now();
    p.start(now);
    drain(&mut p, now);
    let send = |p: &mut Phone| {
        p.handle_command(
            now,
            Command::Message {
                account: Some("main".into()),
                target: "sip:bob@example.com".into(),
                text: "hi".into(),
            },
        )
        .unwrap();
        let d = drain(p, now);
        let (token, _, _) = d.resolves[0].clone();
        resolve_to(p, now, token, SERVER);
        drain(p, now).requests().remove(0)
    };
    let challenge = "WWW-Authenticate: Digest realm=\"pbx\", nonce=\"n1\", algorithm=MD5\r\n";
    let m = send(&mut p);
    assert_eq!(m.uri.to_string(), "sip:bob@example.com");
    deliver(
        &mut p,
        now,
        SERVER,
        &reply(&m, "401 Unauthorized", challenge),
    );
    let m2 = drain(&mut p, now).requests().remove(0);
    assert!(m2.headers.get("Authorization").is_some());
    deliver(
        &mut p,
        now,
        SERVER,
        &reply(&m2, "401 Unauthorized", challenge),
    );
    let d = drain(&mut p, now);
    assert!(d.requests().is_empty(), "{:?}", d.first_lines());
    assert_eq!(statuses(&d.events), vec![(1, "failed".into(), Some(401))]);
    let m = send(&mut p);
    deliver(&mut p, now, SERVER, &reply(&m, "404 Not Found", ""));
    let d = drain(&mut p, now);
    assert_eq!(statuses(&d.events), vec![(2, "failed".into(), Some(404))]);
    // Bad input: a text over the UDP limit is refused before anything is sent.
    let long = "x".repeat(5000);
    let e = p
        .handle_command(
            now,
            Command::Message {
                account: None,
                target: "1002".into(),
                text: long,
            },
        )
        .unwrap_err();
    assert!(e.0.contains("UDP"), "{e}");
}

fn message_request(n: u32, to_tag: &str, ctype: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "MESSAGE sip:1001@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKm{n}\r\nFrom: \"Sup\" <sip:sup@10.0.0.9>;tag=f{n}\r\nTo: <sip:1001@10.0.0.1>{to_tag}\r\nCall-ID: msg-{n}\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

/// Incoming MESSAGE: 200 and an event with the text; other types are
/// reported by type; too large → 413; unknown dialog → 481.
#[test]
fn incoming_messages_are_answered_and_reported() {
    let mut p = phone(ME, ACCOUNT, 5);
    let now = Instant::now();
    p.start(now);
    drain(&mut p, now);
    deliver(
        &mut p,
        now,
        "10.0.0.9:5060",
        &message_request(1, "", "text/plain;charset=UTF-8", "Call me back".as_bytes()),
    );
    let d = drain(&mut p, now);
    assert_eq!(d.first_lines(), vec!["SIP/2.0 200 OK"]);
    assert_eq!(
        d.events,
        vec![Event::MessageReceived {
            from: "\"Sup\" <sip:sup@10.0.0.9>".into(),
            to: "sip:1001@10.0.0.1".into(),
            account: Some("main".into()),
            call: None,
            content_type: "text/plain".into(),
            text: "Call me back".into(),
        }]
    );
    deliver(
        &mut p,
        now,
        "10.0.0.9:5060",
        &message_request(2, "", "application/im-iscomposing+xml", b"<x/>"),
    );
    let d = drain(&mut p, now);
    assert_eq!(d.first_lines(), vec!["SIP/2.0 200 OK"]);
    assert!(
        matches!(&d.events[..], [Event::MessageReceived { content_type, text, .. }]
        if content_type == "application/im-iscomposing+xml" && text.is_empty())
    );
    // Over 60 KiB (possible over TCP): 413, no event; over the 65 535
    // bytes a SIP message may have: 513 from the parser.
    let big = vec![b'a'; 60 * 1024 + 1];
    deliver(
        &mut p,
        now,
        "10.0.0.9:5060",
        &message_request(3, "", "text/plain", &big),
    );
    let d = drain(&mut p, now);
    assert_eq!(
        d.first_lines(),
        vec!["SIP/2.0 413 Request Entity Too Large"]
    );
    assert!(d.events.is_empty());
    let huge = vec![b'a'; 64 * 1024 + 1];
    deliver(
        &mut p,
        now,
        "10.0.0.9:5060",
        &message_request(5, "", "text/plain", &huge),
    );
    let d = drain(&mut p, now);
    assert!(
        d.first_lines()[0].starts_with("SIP/2.0 513 "),
        "{:?}",
        d.first_lines()
    );
    assert!(
        !d.events
            .iter()
            .any(|e| matches!(e, Event::MessageReceived { .. }))
    );
    deliver(
        &mut p,
        now,
        "10.0.0.9:5060",
        &message_request(4, ";tag=nope", "text/plain", b"x"),
    );
    let d = drain(&mut p, now);
    assert_eq!(d.first_lines()[0].split(' ').nth(1), Some("481"));
    assert!(d.events.is_empty());
}

// ----- MWI ------------------------------------------------------------------

/// What the scripted server does with a SUBSCRIBE.
type SubscribeHandler = dyn FnMut(&Request) -> Vec<u8>;

/// A registered account whose server answers REGISTER with 200 and
/// SUBSCRIBE as `on_subscribe` says; every SUBSCRIBE seen is returned.
struct Mwi {
    p: Phone,
    now: Instant,
    subscribes: Vec<(Duration, Request)>,
    start: Instant,
    events: Vec<Event>,
}

impl Mwi {
    fn new(extra: &str) -> Mwi {
        let account = format!(
            "[[account]]\nid = \"main\"\nusername = \"1001\"\npassword = \"secret\"\ndomain = \"10.0.0.5\"\nexpires = 7200\n{extra}"
        );
        let mut p = phone(ME, &account, 6);
        let now = Instant::now();
        p.start(now);
        let d = drain(&mut p, now);
        let (token, _, _) = d.resolves[0].clone();
        resolve_to(&mut p, now, token, SERVER);
        Mwi {
            p,
            now,
            subscribes: Vec::new(),
            start: now,
            events: Vec::new(),
        }
    }

    /// Answer everything the phone sends until it is quiet.
    fn serve(&mut self, on_subscribe: &mut SubscribeHandler) {
        for _ in 0..20 {
            let d = drain(&mut self.p, self.now);
            self.events.extend(d.events.iter().cloned());
            if d.sent.is_empty() {
                return;
            }
            for req in d.requests() {
                let resp = match req.method {
                    Method::Register => reply(
                        &req,
                        "200 OK",
                        &format!(
                            "Contact: {};expires=7200\r\n",
                            req.headers.get("Contact").unwrap()
                        ),
                    ),
                    Method::Subscribe => {
                        self.subscribes.push((self.now - self.start, req.clone()));
                        on_subscribe(&req)
                    }
                    _ => continue,
                };
                deliver(&mut self.p, self.now, SERVER, &resp);
            }
        }
        panic!("the phone kept sending");
    }

    /// Run the fake clock forward in steps, serving as it goes.
    fn run_for(&mut self, total: Duration, step: Duration, on_subscribe: &mut SubscribeHandler) {
        let end = self.now + total;
        while self.now < end {
            self.now += step;
            self.p.handle_timeout(self.now);
            self.serve(on_subscribe);
        }
    }

    fn notify(
        &mut self,
        from: &str,
        to_tag: Option<&str>,
        call_id: &str,
        extra: &str,
        body: &str,
    ) -> String {
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let ctype = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/simple-message-summary\r\n".into()
        };
        let data = format!(
            "NOTIFY sip:1001@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKn{}{}\r\nFrom: <sip:1001@10.0.0.5>;tag=srv\r\nTo: <sip:1001@10.0.0.5>{to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {} NOTIFY\r\nContact: <sip:asterisk@10.0.0.5:5060>\r\nMax-Forwards: 70\r\nEvent: message-summary\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
            call_id.replace(['@', '.'], ""),
            self.events.len() + self.subscribes.len() * 100,
            self.subscribes.len() + 1,
            body.len()
        );
        deliver(&mut self.p, self.now, from, data.as_bytes());
        let d = drain(&mut self.p, self.now);
        self.events.extend(d.events.iter().cloned());
        d.first_lines().join("|")
    }
}

fn ok_3600(req: &Request) -> Vec<u8> {
    reply(
        req,
        "200 OK",
        "Expires: 3600\r\nContact: <sip:asterisk@10.0.0.5:5060>\r\n",
    )
}

fn voicemail(p: &Phone) -> Option<Voicemail> {
    p.status().accounts[0].voicemail
}

/// Registered → SUBSCRIBE message-summary with auth, NOTIFY counts reach
/// the status and an Account event, refresh 60 s before the 3600 s run
/// out (in the dialog), and unregistering removes it with Expires: 0.
#[test]
fn mwi_subscribes_with_auth_parses_notify_and_refreshes_on_time() {
    let mut t = Mwi::new("");
    let mut challenged = false;
    let mut handler = move |req: &Request| {
        if req.headers.get("Authorization").is_none() && !challenged {
            challenged = true;
            reply(
                req,
                "401 Unauthorized",
                "WWW-Authenticate: Digest realm=\"pbx\", nonce=\"s1\", algorithm=MD5, qop=\"auth\"\r\n",
            )
        } else {
            ok_3600(req)
        }
    };
    t.serve(&mut handler);
    assert_eq!(t.p.status().accounts[0].state, "registered");
    assert_eq!(t.subscribes.len(), 2, "plain, then authorised");
    let s0 = &t.subscribes[0].1;
    assert_eq!(s0.uri.to_string(), "sip:1001@10.0.0.5");
    assert_eq!(s0.headers.get("Event"), Some("message-summary"));
    assert_eq!(
        s0.headers.get("Accept"),
        Some("application/simple-message-summary")
    );
    assert_eq!(s0.headers.get("Expires"), Some("3600"));
    let s1 = t.subscribes[1].1.clone();
    assert!(s1.headers.get("Authorization").is_some());
    assert_eq!(s1.headers.cseq().unwrap().seq, 2);
    let call_id = s1.headers.call_id().unwrap().to_string();
    let tag = s1.headers.from_addr().unwrap().tag().unwrap().to_string();
    // NOTIFY in the dialog.
    let r = t.notify(
        SERVER,
        Some(&tag),
        &call_id,
        "Subscription-State: active;expires=3600\r\n",
        "Messages-Waiting: yes\r\nMessage-Account: sip:*97@10.0.0.5\r\nVoice-Message: 2/8 (0/2)\r\n",
    );
    assert_eq!(r, "SIP/2.0 200 OK");
    let want = Voicemail {
        waiting: true,
        new: 2,
        old: 8,
        urgent_new: 0,
        urgent_old: 2,
    };
    assert_eq!(voicemail(&t.p), Some(want));
    assert!(
        t.events
            .iter()
            .any(|e| matches!(e, Event::Account(a) if a.voicemail == Some(want)))
    );
    // Refresh: none before 3540 s, one (in the dialog) right after.
    t.run_for(
        Duration::from_secs(3530),
        Duration::from_secs(10),
        &mut handler,
    );
    assert_eq!(t.subscribes.len(), 2, "refreshed too early");
    t.run_for(
        Duration::from_secs(20),
        Duration::from_secs(1),
        &mut handler,
    );
    assert_eq!(t.subscribes.len(), 3, "no refresh in time");
    let (at, refresh) = t.subscribes[2].clone();
    assert!(
        at >= Duration::from_secs(3540) && at <= Duration::from_secs(3541),
        "{at:?}"
    );
    assert_eq!(refresh.headers.call_id().unwrap(), call_id);
    assert_eq!(
        refresh.headers.to_addr().unwrap().tag(),
        Some("srv"),
        "in the dialog"
    );
    assert_eq!(refresh.headers.cseq().unwrap().seq, 3);
    assert_eq!(
        refresh.uri.to_string(),
        "sip:asterisk@10.0.0.5:5060",
        "to the remote target"
    );
    assert!(
        refresh.headers.get("Authorization").is_some(),
        "credentials reused"
    );
    // Unregister: the subscription is removed.
    t.p.handle_command(t.now, Command::Unregister { account: None })
        .unwrap();
    t.serve(&mut handler);
    let last = &t.subscribes.last().unwrap().1;
    assert_eq!(t.subscribes.len(), 4);
    assert_eq!(last.headers.get("Expires"), Some("0"));
    assert_eq!(last.headers.call_id().unwrap(), call_id);
}

/// Unsolicited NOTIFY (Asterisk style, no subscription) from the account's
/// server updates the counts; from a stranger it is refused (481); a bad
/// body is 400 and changes nothing; another package is 489.
#[test]
fn unsolicited_notify_only_from_our_server() {
    let mut t = Mwi::new("mwi = false\n");
    t.serve(&mut |req: &Request| ok_3600(req));
    assert!(t.subscribes.is_empty(), "mwi = false: no SUBSCRIBE");
    let r = t.notify(
        "10.0.0.9:5060",
        None,
        "u1",
        "",
        "Messages-Waiting: yes\r\nVoice-Message: 9/9\r\n",
    );
    assert_eq!(r, "SIP/2.0 481 Call/Transaction Does Not Exist");
    assert_eq!(voicemail(&t.p), None);
    let r = t.notify(
        SERVER,
        None,
        "u2",
        "",
        "Messages-Waiting: yes\r\nVoice-Message: 1/0 (1/0)\r\n",
    );
    assert_eq!(r, "SIP/2.0 200 OK");
    assert_eq!(
        voicemail(&t.p),
        Some(Voicemail {
            waiting: true,
            new: 1,
            old: 0,
            urgent_new: 1,
            urgent_old: 0
        })
    );
    let r = t.notify(SERVER, None, "u3", "", "Voice-Message: 1/2/3\r\n");
    assert!(
        r.starts_with("SIP/2.0 400 Bad Request (message-summary"),
        "{r}"
    );
    assert_eq!(voicemail(&t.p).map(|v| v.new), Some(1));
    let r = t.notify(SERVER, None, "u4", "", "Messages-Waiting: no\r\n");
    assert_eq!(r, "SIP/2.0 200 OK");
    assert_eq!(
        voicemail(&t.p).map(|v| (v.waiting, v.new)),
        Some((false, 0))
    );
    // Another event package.
    let data = "NOTIFY sip:1001@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKpres\r\nFrom: <sip:x@10.0.0.5>;tag=a\r\nTo: <sip:1001@10.0.0.1>\r\nCall-ID: pres\r\nCSeq: 1 NOTIFY\r\nEvent: presence\r\nContent-Length: 0\r\n\r\n";
    deliver(&mut t.p, t.now, SERVER, data.as_bytes());
    let d = drain(&mut t.p, t.now);
    assert_eq!(d.first_lines(), vec!["SIP/2.0 489 Bad Event"]);
}

/// The server ends the subscription: a new one (new Call-ID) after the
/// backoff, not before. 489 stops for good.
#[test]
fn terminated_resubscribes_after_backoff_and_489_stops() {
    let mut t = Mwi::new("");
    let mut handler = |req: &Request| ok_3600(req);
    t.serve(&mut handler);
    assert_eq!(t.subscribes.len(), 1);
    let s = t.subscribes[0].1.clone();
    let tag = s.headers.from_addr().unwrap().tag().unwrap().to_string();
    let call_id = s.headers.call_id().unwrap().to_string();
    let r = t.notify(
        SERVER,
        Some(&tag),
        &call_id,
        "Subscription-State: terminated;reason=timeout\r\n",
        "",
    );
    assert_eq!(r, "SIP/2.0 200 OK");
    t.run_for(
        Duration::from_secs(29),
        Duration::from_secs(1),
        &mut handler,
    );
    assert_eq!(t.subscribes.len(), 1, "resubscribed before the backoff");
    t.run_for(Duration::from_secs(2), Duration::from_secs(1), &mut handler);
    assert_eq!(t.subscribes.len(), 2, "no resubscription after the backoff");
    let again = &t.subscribes[1].1;
    assert_ne!(again.headers.call_id().unwrap(), call_id);
    assert_eq!(
        again.headers.to_addr().unwrap().tag(),
        None,
        "a new subscription"
    );
    // A NOTIFY for the old dialog is now unknown.
    let r = t.notify(
        SERVER,
        Some(&tag),
        &call_id,
        "Subscription-State: active\r\n",
        "",
    );
    assert!(r.starts_with("SIP/2.0 481"), "{r}");

    // A server without the package: 489, then never again.
    let mut t = Mwi::new("");
    let mut refuse = |req: &Request| reply(req, "489 Bad Event", "");
    t.serve(&mut refuse);
    t.run_for(
        Duration::from_secs(4000),
        Duration::from_secs(20),
        &mut refuse,
    );
    assert_eq!(t.subscribes.len(), 1, "489 must stop the subscription");
}

// ----- DTMF -----------------------------------------------------------------

/// A (10.0.0.1) calls a scripted callee at 10.0.0.2 that answers without
/// telephone-event; returns the phone, the INVITE and A's call id.
fn call_without_telephone_event(dtmf: &str) -> (Phone, Instant, u64) {
    let account = format!(
        "[[account]]\nid = \"main\"\nusername = \"1001\"\ndomain = \"10.0.0.2\"\nregister = false\ndtmf = \"{dtmf}\"\n"
    );
    let mut p = phone(ME, &account, 7);
    let now = Instant::now();
    p.start(now);
    drain(&mut p, now);
    let Reply::Call { call } = p
        .handle_command(
            now,
            Command::Call {
                account: None,
                target: "bob".into(),
            },
        )
        .unwrap()
    else {
        panic!()
    };
    let d = drain(&mut p, now);
    let (token, _, _) = d.resolves[0].clone();
    resolve_to(&mut p, now, token, "10.0.0.2:5060");
    let invite = drain(&mut p, now).requests().remove(0);
    assert_eq!(invite.method, Method::Invite);
    let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let mut ok = String::from_utf8(reply(
        &invite,
        "200 OK",
        "Contact: <sip:bob@10.0.0.2:5060>\r\nContent-Type: application/sdp\r\n",
    ))
    .unwrap();
    ok = ok.replace(
        "Content-Length: 0\r\n\r\n",
        &format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len()),
    );
    p.handle_received(
        now,
        udp("10.0.0.2:5060"),
        ME.parse().unwrap(),
        ok.as_bytes(),
    );
    let d = drain(&mut p, now);
    assert_eq!(d.first_lines(), vec!["ACK sip:bob@10.0.0.2:5060 SIP/2.0"]);
    assert_eq!(p.status().calls[0].state, "connected");
    (p, now, call)
}

/// `auto` without telephone-event in the answer → INFO, one digit per
/// transaction, each only after the previous one's final response.
#[test]
fn info_dtmf_is_sent_one_digit_at_a_time_in_order() {
    let (mut p, now, call) = call_without_telephone_event("auto");
    let r = p
        .handle_command(
            now,
            Command::Dtmf {
                call: None,
                digits: "1 2#".into(),
            },
        )
        .unwrap();
    assert_eq!(
        r,
        Reply::Dtmf {
            call,
            digits: "12#".into(),
            method: "info"
        }
    );
    let mut got = Vec::new();
    let mut d = drain(&mut p, now);
    for _ in 0..3 {
        let reqs = d.requests();
        assert_eq!(
            reqs.len(),
            1,
            "exactly one INFO in flight: {:?}",
            d.first_lines()
        );
        let info = &reqs[0];
        assert_eq!(
            first_line(&d.sent[0].1),
            "INFO sip:bob@10.0.0.2:5060 SIP/2.0"
        );
        assert_eq!(
            info.headers.get("Content-Type"),
            Some("application/dtmf-relay")
        );
        got.push(String::from_utf8(info.body.clone()).unwrap());
        // Nothing more until it is answered, even as time passes.
        p.handle_timeout(now + Duration::from_millis(100));
        let quiet = drain(&mut p, now + Duration::from_millis(100));
        assert!(
            quiet
                .requests()
                .iter()
                .all(|r| r.method != Method::Info || r.body == info.body)
        );
        p.handle_received(
            now,
            udp("10.0.0.2:5060"),
            ME.parse().unwrap(),
            &reply(info, "200 OK", ""),
        );
        d = drain(&mut p, now);
    }
    assert_eq!(
        got,
        vec![
            "Signal=1\r\nDuration=160\r\n",
            "Signal=2\r\nDuration=160\r\n",
            "Signal=#\r\nDuration=160\r\n"
        ]
    );
    assert!(d.requests().is_empty());
    // rfc4733 forced without telephone-event: refused, nothing sent.
    let (mut p, now, _) = call_without_telephone_event("rfc4733");
    let e = p
        .handle_command(
            now,
            Command::Dtmf {
                call: None,
                digits: "1".into(),
            },
        )
        .unwrap_err();
    assert!(e.0.contains("telephone-event"), "{e}");
    let e = p
        .handle_command(
            now,
            Command::Dtmf {
                call: None,
                digits: "1x".into(),
            },
        )
        .unwrap_err();
    assert!(e.0.contains("`x`"), "{e}");
    assert!(drain(&mut p, now).sent.is_empty());
}

/// Two phones: with telephone-event negotiated `auto` hands the digits to
/// the media (RFC 4733); with `dtmf = "info"` the far phone receives each
/// digit as an event, in order. Bad INFOs never break the call.
#[test]
fn dtmf_auto_uses_rfc4733_and_info_reaches_the_far_phone() {
    for (setting, method) in [("auto", "rfc4733"), ("info", "info")] {
        let account = format!(
            "[[account]]\nid = \"main\"\nusername = \"1001\"\ndomain = \"10.0.0.2\"\nregister = false\ndtmf = \"{setting}\"\n"
        );
        let mut a = phone(ME, &account, 11);
        let mut b = phone("10.0.0.2:5060", "", 12);
        let now = Instant::now();
        a.start(now);
        b.start(now);
        drain(&mut a, now);
        a.handle_command(
            now,
            Command::Call {
                account: None,
                target: "bob".into(),
            },
        )
        .unwrap();
        let d = drain(&mut a, now);
        let (token, _, _) = d.resolves[0].clone();
        resolve_to(&mut a, now, token, "10.0.0.2:5060");
        let mut b_events = Vec::new();
        let mut a_dtmf = Vec::new();
        let shuttle = |a: &mut Phone,
                       b: &mut Phone,
                       b_events: &mut Vec<Event>,
                       a_dtmf: &mut Vec<(u64, String)>| {
            for _ in 0..50 {
                let da = drain(a, now);
                let db = drain(b, now);
                b_events.extend(db.events);
                a_dtmf.extend(da.dtmf);
                if da.sent.is_empty() && db.sent.is_empty() {
                    return;
                }
                for (_, m) in da.sent {
                    b.handle_received(now, udp(ME), "10.0.0.2:5060".parse().unwrap(), &m);
                }
                for (_, m) in db.sent {
                    a.handle_received(now, udp("10.0.0.2:5060"), ME.parse().unwrap(), &m);
                }
            }
            panic!("kept flowing");
        };
        shuttle(&mut a, &mut b, &mut b_events, &mut a_dtmf);
        b.handle_command(now, Command::Answer { call: None })
            .unwrap();
        shuttle(&mut a, &mut b, &mut b_events, &mut a_dtmf);
        assert_eq!(a.status().calls[0].state, "connected");
        let r = a
            .handle_command(
                now,
                Command::Dtmf {
                    call: None,
                    digits: "5*9".into(),
                },
            )
            .unwrap();
        assert!(
            matches!(r, Reply::Dtmf { method: m, .. } if m == method),
            "{r:?}"
        );
        shuttle(&mut a, &mut b, &mut b_events, &mut a_dtmf);
        let b_call = b.status().calls[0].id;
        let digits: Vec<String> = b_events
            .iter()
            .filter_map(|e| match e {
                Event::Dtmf {
                    call,
                    digit,
                    method,
                } if *call == b_call && *method == "info" => Some(digit.clone()),
                _ => None,
            })
            .collect();
        if method == "info" {
            assert_eq!(digits, vec!["5", "*", "9"]);
            assert!(a_dtmf.is_empty());
        } else {
            assert!(digits.is_empty());
            assert_eq!(a_dtmf, vec![(1, "5*9".to_string())]);
        }
    }
}

/// Incoming INFO: unknown body type → 415, unreadable digit → 400, out of
/// dialog → 481; the call stays connected.
#[test]
fn incoming_info_edge_cases() {
    let (mut p, now, _) = call_without_telephone_event("auto");
    // The dialog as the callee sees it: From = bob;tag=srv, To = our From.
    let d = drain(&mut p, now);
    assert!(d.sent.is_empty());
    let our_from = {
        p.handle_command(
            now,
            Command::Dtmf {
                call: None,
                digits: "1".into(),
            },
        )
        .unwrap();
        let info = drain(&mut p, now).requests().remove(0);
        p.handle_received(
            now,
            udp("10.0.0.2:5060"),
            ME.parse().unwrap(),
            &reply(&info, "200 OK", ""),
        );
        drain(&mut p, now);
        (
            info.headers.get("From").unwrap().to_string(),
            info.headers.get("To").unwrap().to_string(),
            info.headers.call_id().unwrap().to_string(),
        )
    };
    let (from, to, call_id) = our_from;
    let info = |n: u32, ctype: &str, body: &str, call_id: &str| {
        format!(
            "INFO sip:1001@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKin{n}\r\nFrom: {to}\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: {} INFO\r\nMax-Forwards: 70\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
            10 + n,
            body.len()
        )
    };
    let answer = |p: &mut Phone, data: String| {
        p.handle_received(
            now,
            udp("10.0.0.2:5060"),
            ME.parse().unwrap(),
            data.as_bytes(),
        );
        let d = drain(p, now);
        (d.first_lines().join("|"), d.events)
    };
    let (r, ev) = answer(&mut p, info(1, "application/dtmf", "7", &call_id));
    assert_eq!(r, "SIP/2.0 200 OK");
    assert!(
        matches!(&ev[..], [Event::Dtmf { digit, method: "info", .. }] if digit == "7"),
        "{ev:?}"
    );
    let (r, ev) = answer(
        &mut p,
        info(2, "application/media_control+xml", "<x/>", &call_id),
    );
    assert_eq!(r, "SIP/2.0 415 Unsupported Media Type");
    assert!(ev.is_empty());
    let (r, ev) = answer(
        &mut p,
        info(3, "application/dtmf-relay", "Signal=Z\r\n", &call_id),
    );
    assert!(r.starts_with("SIP/2.0 400 Bad Request ("), "{r}");
    assert!(ev.is_empty());
    let (r, _) = answer(
        &mut p,
        info(4, "application/dtmf-relay", "Signal=1\r\n", "other-call"),
    );
    assert!(r.starts_with("SIP/2.0 481"), "{r}");
    assert_eq!(p.status().calls[0].state, "connected");
}

// ----- with transfer and DND ------------------------------------------------

/// A 200 to `invite` with bob's Contact and an SDP answer (PCMU only).
fn ok_with_sdp(invite: &Request) -> Vec<u8> {
    let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    String::from_utf8(reply(
        invite,
        "200 OK",
        "Contact: <sip:bob@10.0.0.2:5060>\r\nContent-Type: application/sdp\r\n",
    ))
    .unwrap()
    .replace(
        "Content-Length: 0\r\n\r\n",
        &format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len()),
    )
    .into_bytes()
}

/// One phone with an MWI subscription and a call it transfers: NOTIFYs of
/// the `refer` package reach the transfer, `message-summary` ones (in the
/// subscription or unsolicited from the server) reach MWI, neither takes
/// the other's, and other packages get 489 naming both. Once the transfer
/// succeeded and the phone hung up, INFO and MESSAGE in the old dialog
/// get 481 and no event.
#[test]
fn refer_and_message_summary_notifies_reach_their_parts() {
    let mut t = Mwi::new("");
    t.serve(&mut |req: &Request| ok_3600(req));
    assert_eq!(t.subscribes.len(), 1);
    let sub = t.subscribes[0].1.clone();
    let sub_call_id = sub.headers.call_id().unwrap().to_string();
    let sub_tag = sub.headers.from_addr().unwrap().tag().unwrap().to_string();
    let now = t.now;
    // A call through the server, answered by bob.
    let Reply::Call { call } =
        t.p.handle_command(
            now,
            Command::Call {
                account: None,
                target: "bob".into(),
            },
        )
        .unwrap()
    else {
        panic!()
    };
    let mut d = drain(&mut t.p, now);
    if let Some((token, _, _)) = d.resolves.first().cloned() {
        resolve_to(&mut t.p, now, token, SERVER);
        d = drain(&mut t.p, now);
    }
    let invite = d.requests().remove(0);
    assert_eq!(invite.method, Method::Invite);
    deliver(&mut t.p, now, SERVER, &ok_with_sdp(&invite));
    drain(&mut t.p, now);
    let state = |p: &Phone| {
        let c = p.status().calls.into_iter().find(|c| c.id == call).unwrap();
        (c.state, c.transfer)
    };
    assert_eq!(state(&t.p).0, "connected");
    // Blind transfer: REFER to bob, 202.
    t.p.handle_command(
        now,
        Command::Transfer {
            call: None,
            target: "sip:carol@10.0.0.3".into(),
        },
    )
    .unwrap();
    let refer = drain(&mut t.p, now).requests().remove(0);
    assert_eq!(refer.method, Method::Refer);
    deliver(
        &mut t.p,
        now,
        "10.0.0.2:5060",
        &reply(&refer, "202 Accepted", ""),
    );
    drain(&mut t.p, now);
    // Requests from bob in the call's dialog.
    let mut cseq = 100;
    let mut from_bob = |p: &mut Phone, method: &str, headers: &str, body: &str| {
        cseq += 1;
        let data = format!(
            "{method} sip:1001@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKbob{cseq}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:bob@10.0.0.2:5060>\r\nMax-Forwards: 70\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            refer.headers.get("To").unwrap(),
            refer.headers.get("From").unwrap(),
            refer.headers.call_id().unwrap(),
            body.len()
        );
        deliver(p, now, "10.0.0.2:5060", data.as_bytes());
        let d = drain(p, now);
        (d.first_lines(), d.requests(), d.events)
    };
    let sipfrag = |state: &str| {
        format!("Event: refer\r\nSubscription-State: {state}\r\nContent-Type: message/sipfrag\r\n")
    };
    let (r, _, _) = from_bob(
        &mut t.p,
        "NOTIFY",
        &sipfrag("active;expires=60"),
        "SIP/2.0 100 Trying\r\n",
    );
    assert_eq!(r, vec!["SIP/2.0 200 OK"]);
    assert_eq!(state(&t.p).1.as_deref(), Some("trying"));
    // message-summary, unsolicited and in the subscription: MWI's, the
    // transfer is untouched.
    let r = t.notify(
        SERVER,
        None,
        "u1",
        "",
        "Messages-Waiting: yes\r\nVoice-Message: 3/1\r\n",
    );
    assert_eq!(r, "SIP/2.0 200 OK");
    assert_eq!(voicemail(&t.p).map(|v| (v.waiting, v.new)), Some((true, 3)));
    let r = t.notify(
        SERVER,
        Some(&sub_tag),
        &sub_call_id,
        "Subscription-State: active;expires=3600\r\n",
        "Messages-Waiting: yes\r\nVoice-Message: 4/1\r\n",
    );
    assert_eq!(r, "SIP/2.0 200 OK");
    assert_eq!(voicemail(&t.p).map(|v| v.new), Some(4));
    assert_eq!(state(&t.p), ("connected", Some("trying".into())));
    // message-summary in the call's dialog is no subscription of ours, a
    // refer NOTIFY outside it no transfer of ours: 481 each.
    let (r, _, _) = from_bob(
        &mut t.p,
        "NOTIFY",
        "Event: message-summary\r\nSubscription-State: active\r\nContent-Type: application/simple-message-summary\r\n",
        "Messages-Waiting: no\r\n",
    );
    assert_eq!(r, vec!["SIP/2.0 481 Call/Transaction Does Not Exist"]);
    assert_eq!(voicemail(&t.p).map(|v| v.new), Some(4));
    let stray = format!(
        "NOTIFY sip:1001@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKstray\r\nFrom: <sip:bob@10.0.0.2>;tag=x\r\nTo: <sip:1001@10.0.0.1>;tag=y\r\nCall-ID: stray\r\nCSeq: 1 NOTIFY\r\nMax-Forwards: 70\r\n{}Content-Length: 16\r\n\r\nSIP/2.0 200 OK\r\n",
        sipfrag("terminated")
    );
    deliver(&mut t.p, now, "10.0.0.2:5060", stray.as_bytes());
    assert_eq!(
        drain(&mut t.p, now).first_lines(),
        vec!["SIP/2.0 481 Call/Transaction Does Not Exist"]
    );
    assert_eq!(state(&t.p), ("connected", Some("trying".into())));
    // Another package: 489, and Allow-Events names what we take.
    deliver(
        &mut t.p,
        now,
        "10.0.0.2:5060",
        stray
            .replace("Event: refer", "Event: presence")
            .replace("Call-ID: stray", "Call-ID: pres")
            .replace("z9hG4bKstray", "z9hG4bKpres")
            .as_bytes(),
    );
    let d = drain(&mut t.p, now);
    assert_eq!(d.first_lines(), vec!["SIP/2.0 489 Bad Event"]);
    let resp = String::from_utf8_lossy(&d.sent[0].1).into_owned();
    assert!(
        resp.contains("Allow-Events: message-summary, refer\r\n"),
        "{resp}"
    );
    // The transfer succeeds: 200, then our BYE.
    let (r, reqs, _) = from_bob(
        &mut t.p,
        "NOTIFY",
        &sipfrag("terminated;reason=noresource"),
        "SIP/2.0 200 OK\r\n",
    );
    assert_eq!(r[0], "SIP/2.0 200 OK");
    let bye = reqs.into_iter().find(|r| r.method == Method::Bye).unwrap();
    assert_eq!(state(&t.p), ("ending", Some("accepted".into())));
    // INFO and MESSAGE in the dialog we are ending: 481, no event.
    let (r, _, ev) = from_bob(
        &mut t.p,
        "INFO",
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=5\r\nDuration=160\r\n",
    );
    assert_eq!(r, vec!["SIP/2.0 481 Call/Transaction Does Not Exist"]);
    assert!(ev.is_empty(), "{ev:?}");
    let (r, _, ev) = from_bob(
        &mut t.p,
        "MESSAGE",
        "Content-Type: text/plain\r\n",
        "still there?",
    );
    assert_eq!(r, vec!["SIP/2.0 481 Call/Transaction Does Not Exist"]);
    assert!(ev.is_empty(), "{ev:?}");
    deliver(&mut t.p, now, "10.0.0.2:5060", &reply(&bye, "200 OK", ""));
    drain(&mut t.p, now);
    assert_eq!(state(&t.p).0, "ended");
    // MWI goes on after the call.
    let r = t.notify(SERVER, None, "u2", "", "Messages-Waiting: no\r\n");
    assert_eq!(r, "SIP/2.0 200 OK");
    assert_eq!(voicemail(&t.p).map(|v| v.waiting), Some(false));
}

/// DND screens calls only: with it on, an INVITE is answered 486 while
/// the server's message-summary NOTIFY and an incoming MESSAGE are still
/// taken (200) and reported.
#[test]
fn dnd_refuses_calls_but_not_voicemail_news_or_messages() {
    let mut t = Mwi::new("mwi = false\n");
    t.serve(&mut |req: &Request| ok_3600(req));
    t.p.handle_command(t.now, Command::Dnd { on: true })
        .unwrap();
    drain(&mut t.p, t.now);
    let invite = "INVITE sip:1001@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKdnd1\r\nFrom: <sip:x@10.0.0.9>;tag=c1\r\nTo: <sip:1001@10.0.0.1>\r\nCall-ID: dnd-call\r\nCSeq: 1 INVITE\r\nContact: <sip:x@10.0.0.9:5060>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    deliver(&mut t.p, t.now, "10.0.0.9:5060", invite.as_bytes());
    let d = drain(&mut t.p, t.now);
    assert_eq!(d.first_lines(), vec!["SIP/2.0 486 Busy Here"]);
    let r = t.notify(
        SERVER,
        None,
        "d1",
        "",
        "Messages-Waiting: yes\r\nVoice-Message: 1/0\r\n",
    );
    assert_eq!(r, "SIP/2.0 200 OK");
    assert_eq!(voicemail(&t.p).map(|v| v.new), Some(1));
    deliver(
        &mut t.p,
        t.now,
        "10.0.0.9:5060",
        &message_request(1, "", "text/plain", b"call back"),
    );
    let d = drain(&mut t.p, t.now);
    assert_eq!(d.first_lines(), vec!["SIP/2.0 200 OK"]);
    assert!(
        matches!(&d.events[..], [Event::MessageReceived { text, .. }] if text == "call back"),
        "{:?}",
        d.events
    );
}
