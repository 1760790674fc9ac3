//! Call transfer in the phone core, deterministic: three `Phone`s (A, B,
//! C) exchange messages in memory on a fake clock. Blind transfer (REFER,
//! RFC 3515), attended transfer (REFER with Replaces, RFC 3891), a busy
//! target, refused REFERs and INVITEs whose Replaces matches nothing, and
//! how transfers meet lines, DND and the call history.
#![allow(clippy::disallowed_methods)]

#[path = "support/core.rs"]
mod core_support;

use core_support::{phone, udp};

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use softline::phone::{
    CallStatus, Command, Disposition, Event, HistoryEntry, Output, Phone, Reply, Resolved,
};
use softline::sip::transport::{Peer, TransportKind};

const NAMES: [&str; 3] = ["A", "B", "C"];
const ADDRS: [&str; 3] = ["10.0.0.1:5060", "10.0.0.2:5060", "10.0.0.3:5060"];
const ALICE: &str = "sip:alice@10.0.0.1:5060";
const BOB: &str = "sip:bob@10.0.0.2:5060";
const CAROL: &str = "sip:carol@10.0.0.3:5060";

/// One message delivered: from, to, full text.
struct Delivered {
    from: usize,
    to: usize,
    text: String,
}

impl Delivered {
    fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }
}

/// Three phones on one fake network. Resolves of IP literals and RTP port
/// requests are answered at once, as the runtime would.
struct Net {
    p: Vec<Phone>,
    now: Instant,
    log: Vec<Delivered>,
    events: [Vec<CallStatus>; 3],
    /// The call-history entries each phone emitted.
    history: [Vec<HistoryEntry>; 3],
    /// Messages to `to` whose first line starts with this are lost.
    drop_to: Option<(usize, String)>,
}

impl Net {
    fn new(extra: [&str; 3]) -> Net {
        Net {
            p: (0..3)
                .map(|i| phone(ADDRS[i], extra[i], 101 + 100 * i as u64))
                .collect(),
            now: Instant::now(),
            log: Vec::new(),
            events: Default::default(),
            history: Default::default(),
            drop_to: None,
        }
    }

    /// Drain phone `i`: media ports bound, resolves answered, messages out.
    fn drain(&mut self, i: usize) -> Vec<(Peer, Vec<u8>)> {
        let mut sent = Vec::new();
        loop {
            let mut more = false;
            let mut opened = Vec::new();
            let mut resolves = Vec::new();
            while let Some(o) = self.p[i].poll_output() {
                match o {
                    Output::Transmit { peer, data, .. } => sent.push((peer, data)),
                    Output::Event(Event::Call(c)) => self.events[i].push(c),
                    Output::Event(Event::History(h)) => self.history[i].push(h),
                    Output::Resolve {
                        token, host, port, ..
                    } => resolves.push((token, host, port)),
                    Output::OpenMedia { call } => opened.push(call),
                    _ => {}
                }
            }
            for call in opened {
                more = true;
                self.p[i].handle_media_opened(self.now, call, Ok(40000 + 2 * call as u16));
            }
            for (token, host, port) in resolves {
                more = true;
                let addr: SocketAddr = format!("{host}:{}", port.unwrap_or(5060))
                    .parse()
                    .expect("IP literal");
                let target = Resolved {
                    peer: Peer {
                        transport: TransportKind::Udp,
                        addr,
                    },
                    local_ip: ADDRS[i].parse::<SocketAddr>().unwrap().ip(),
                };
                self.p[i].handle_resolved(self.now, token, Ok(vec![target]));
            }
            if !more {
                return sent;
            }
        }
    }

    fn run(&mut self) {
        for _ in 0..200 {
            let mut any = false;
            for i in 0..3 {
                for (peer, data) in self.drain(i) {
                    any = true;
                    let to = ADDRS
                        .iter()
                        .position(|a| a.parse::<SocketAddr>().unwrap() == peer.addr)
                        .unwrap_or_else(|| panic!("{} sent to {}", NAMES[i], peer.addr));
                    let d = Delivered {
                        from: i,
                        to,
                        text: String::from_utf8_lossy(&data).into_owned(),
                    };
                    let lost = self
                        .drop_to
                        .as_ref()
                        .is_some_and(|(t, l)| *t == to && d.first_line().starts_with(l.as_str()));
                    self.log.push(d);
                    if !lost {
                        let local = ADDRS[to].parse().unwrap();
                        self.p[to].handle_received(self.now, udp(ADDRS[i]), local, &data);
                    }
                }
            }
            if !any {
                return;
            }
        }
        panic!("messages kept flowing:\n{}", self.trace());
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        for p in &mut self.p {
            p.handle_timeout(self.now);
        }
        self.run();
    }

    fn cmd(&mut self, i: usize, c: Command) -> Result<Reply, String> {
        let r = self.p[i].handle_command(self.now, c).map_err(|e| e.0);
        self.run();
        r
    }

    /// Phone `from` calls `target`; `to` answers. Returns both call ids.
    fn connect(&mut self, from: usize, to: usize, target: &str) -> (u64, u64) {
        let Ok(Reply::Call { call }) = self.cmd(
            from,
            Command::Call {
                account: None,
                target: target.into(),
            },
        ) else {
            panic!("no call id")
        };
        let ringing = self.ringing(to);
        self.cmd(
            to,
            Command::Answer {
                call: Some(ringing),
            },
        )
        .unwrap();
        assert_eq!(self.call(from, call).state, "connected");
        assert_eq!(self.call(to, ringing).state, "connected");
        (call, ringing)
    }

    fn ringing(&self, i: usize) -> u64 {
        let s = self.p[i].status();
        let r: Vec<_> = s.calls.iter().filter(|c| c.state == "ringing").collect();
        assert_eq!(r.len(), 1, "{} rings once: {:?}", NAMES[i], s.calls);
        r[0].id
    }

    fn call(&self, i: usize, id: u64) -> CallStatus {
        self.p[i]
            .status()
            .calls
            .into_iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("{} has no call {id}", NAMES[i]))
    }

    fn live(&self, i: usize) -> Vec<CallStatus> {
        self.p[i]
            .status()
            .calls
            .into_iter()
            .filter(|c| c.state != "ended")
            .collect()
    }

    /// Hang up everything and check that no call is left in any phone.
    fn hang_up_all_and_check_idle(&mut self) {
        for i in 0..3 {
            for c in self.live(i) {
                let _ = self.cmd(i, Command::Hangup { call: Some(c.id) });
            }
        }
        self.advance(Duration::from_secs(40));
        for (i, name) in NAMES.iter().enumerate() {
            assert!(self.live(i).is_empty(), "{name} stuck: {:?}", self.live(i));
        }
    }

    fn trace(&self) -> String {
        self.log
            .iter()
            .map(|d| format!("{}>{}: {}", NAMES[d.from], NAMES[d.to], d.first_line()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Messages from `from` to `to` whose first line starts with `start`.
    fn sent(&self, from: usize, to: usize, start: &str) -> Vec<&str> {
        self.log
            .iter()
            .filter(|d| d.from == from && d.to == to && d.first_line().starts_with(start))
            .map(|d| d.text.as_str())
            .collect()
    }

    /// Check the log holds these "X>Y: start" lines in this order.
    fn assert_order(&self, want: &[&str]) {
        let lines: Vec<String> = self
            .log
            .iter()
            .map(|d| format!("{}>{}: {}", NAMES[d.from], NAMES[d.to], d.first_line()))
            .collect();
        let mut it = lines.iter();
        for w in want {
            assert!(
                it.any(|l| l.starts_with(w)),
                "missing `{w}` in order:\n{}",
                self.trace()
            );
        }
    }

    /// The transfer states phone `i` reported for `call`, without repeats.
    fn transfer_states(&self, i: usize, call: u64) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for e in self.events[i].iter().filter(|c| c.id == call) {
            if let Some(t) = &e.transfer
                && v.last() != Some(t)
            {
                v.push(t.clone());
            }
        }
        v
    }
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

/// Blind transfer: A calls B, B sends A to C. A gets the REFER, answers
/// 202, calls C with B's Referred-By and NOTIFYs 100/180/200; B then hangs
/// up ("transferred") and A talks to C.
#[test]
fn blind_transfer_connects_transferee_to_target() {
    let mut n = Net::new(["", "", ""]);
    let (a_b, b_a) = n.connect(A, B, BOB);
    let r = n.cmd(
        B,
        Command::Transfer {
            call: None,
            target: CAROL.into(),
        },
    );
    assert_eq!(r, Ok(Reply::Call { call: b_a }));
    // A is calling C; C rings.
    let c_new = n.ringing(C);
    let refer = n.sent(B, A, "REFER ")[0];
    assert_eq!(header(refer, "Refer-To"), Some("<sip:carol@10.0.0.3:5060>"));
    assert!(header(refer, "Referred-By").unwrap().contains("10.0.0.2"));
    let invite = n.sent(A, C, "INVITE ")[0];
    assert_eq!(header(invite, "Referred-By"), header(refer, "Referred-By"));
    assert_eq!(header(invite, "Replaces"), None);
    assert_eq!(n.call(B, b_a).transfer.as_deref(), Some("ringing"));
    n.cmd(C, Command::Answer { call: Some(c_new) }).unwrap();

    n.assert_order(&[
        "B>A: REFER sip:",
        "A>B: SIP/2.0 202 Accepted",
        "A>C: INVITE sip:carol@10.0.0.3:5060",
        "C>A: SIP/2.0 180 Ringing",
        "C>A: SIP/2.0 200 OK",
        "A>C: ACK",
        "B>A: BYE",
        "A>B: SIP/2.0 200 OK",
    ]);
    let frags: Vec<&str> = n.sent(A, B, "NOTIFY ").into_iter().map(body).collect();
    assert_eq!(
        frags,
        [
            "SIP/2.0 100 Trying\r\n",
            "SIP/2.0 180 Ringing\r\n",
            "SIP/2.0 200 OK\r\n"
        ]
    );
    let notifies = n.sent(A, B, "NOTIFY ");
    assert_eq!(header(notifies[0], "Event"), Some("refer"));
    assert_eq!(
        header(notifies[0], "Content-Type"),
        Some("message/sipfrag;version=2.0")
    );
    assert!(
        header(notifies[2], "Subscription-State")
            .unwrap()
            .starts_with("terminated")
    );
    // Each NOTIFY was answered 200 by B.
    assert_eq!(n.sent(B, A, "SIP/2.0 200 OK").len(), 3 + 1, "{}", n.trace());

    // B: progress seen, then the call ended as transferred.
    assert_eq!(
        n.transfer_states(B, b_a),
        ["requested", "trying", "ringing", "accepted"]
    );
    let b_call = n.call(B, b_a);
    assert_eq!(
        (b_call.state, b_call.cause.as_deref()),
        ("ended", Some("transferred"))
    );
    let a_old = n.call(A, a_b);
    assert_eq!(
        (a_old.state, a_old.cause.as_deref()),
        ("ended", Some("transferred"))
    );
    // A and C are connected.
    let a_live = n.live(A);
    assert_eq!(a_live.len(), 1, "{a_live:?}");
    assert_eq!(
        (a_live[0].state, a_live[0].remote.as_str()),
        ("connected", CAROL)
    );
    assert_eq!(n.call(C, c_new).state, "connected");
    assert!(n.live(B).is_empty());
    // The transferee's fallback BYE does not fire once B hung up.
    n.advance(Duration::from_secs(5));
    assert_eq!(n.sent(A, B, "BYE ").len(), 0, "{}", n.trace());
    n.hang_up_all_and_check_idle();
}

/// Attended transfer: B calls A and C, then hands A over to C with a
/// REFER whose Refer-To carries Replaces for the B–C dialog. A's INVITE to
/// C replaces C's call from B; B's two calls end as transferred.
#[test]
fn attended_transfer_replaces_the_consultation_call() {
    let mut n = Net::new(["", "", ""]);
    let (b_a, a_b) = n.connect(B, A, ALICE);
    n.cmd(B, Command::Hold { call: Some(b_a) }).unwrap();
    assert_eq!(n.call(B, b_a).state, "held");
    let (b_c, c_b) = n.connect(B, C, CAROL);
    let r = n.cmd(
        B,
        Command::TransferAttended {
            call: None,
            to_call: b_c,
        },
    );
    assert_eq!(r, Ok(Reply::Call { call: b_a }));

    // The Refer-To names C's contact with the escaped B–C dialog.
    let invite_bc = n.sent(B, C, "INVITE ")[0];
    let call_id = header(invite_bc, "Call-ID").unwrap();
    let ok_cb = n
        .sent(C, B, "SIP/2.0 200 OK")
        .into_iter()
        .find(|m| header(m, "CSeq") == Some("1 INVITE"))
        .unwrap();
    let tag = |v: &str| v.split(";tag=").nth(1).unwrap().to_string();
    let (b_tag, c_tag) = (
        tag(header(invite_bc, "From").unwrap()),
        tag(header(ok_cb, "To").unwrap()),
    );
    let refer = n.sent(B, A, "REFER ")[0];
    let refer_to = header(refer, "Refer-To").unwrap();
    let escaped = format!(
        "{}%3Bto-tag%3D{c_tag}%3Bfrom-tag%3D{b_tag}",
        call_id.replace('@', "%40")
    );
    assert!(
        refer_to.starts_with("<sip:softline@10.0.0.3:5060?Replaces=")
            && refer_to.contains(&escaped),
        "{refer_to} lacks {escaped}"
    );
    // A's INVITE to C carries the unescaped Replaces.
    let invite_ac = n.sent(A, C, "INVITE ")[0];
    assert_eq!(
        header(invite_ac, "Replaces"),
        Some(format!("{call_id};to-tag={c_tag};from-tag={b_tag}").as_str())
    );
    n.assert_order(&[
        "B>A: REFER",
        "A>B: SIP/2.0 202",
        "A>C: INVITE",
        "C>A: SIP/2.0 200 OK",
        "C>B: BYE",
        "A>B: NOTIFY",
        "B>A: BYE",
    ]);
    // C: the new call from A answered by itself, the old one replaced.
    let c_live = n.live(C);
    assert_eq!(c_live.len(), 1, "{c_live:?}");
    assert_eq!(c_live[0].state, "connected");
    assert!(c_live[0].remote.contains("10.0.0.1"), "{:?}", c_live[0]);
    assert_eq!(
        c_live[0].auto_answered.as_deref(),
        Some(format!("replaces call {c_b}").as_str())
    );
    assert_eq!(n.call(C, c_b).cause.as_deref(), Some("replaced"));
    // B: both calls ended as transferred.
    for id in [b_a, b_c] {
        let c = n.call(B, id);
        assert_eq!(
            (c.state, c.cause.as_deref()),
            ("ended", Some("transferred")),
            "{c:?}"
        );
    }
    assert_eq!(n.call(B, b_a).transfer.as_deref(), Some("accepted"));
    // A: the old call ended, the new one connected to C.
    assert_eq!(n.call(A, a_b).cause.as_deref(), Some("transferred"));
    let a_live = n.live(A);
    assert_eq!(a_live.len(), 1);
    assert_eq!(
        (a_live[0].state, a_live[0].remote.as_str()),
        ("connected", "sip:softline@10.0.0.3:5060")
    );
    n.hang_up_all_and_check_idle();
}

/// The target is busy: C rejects A's INVITE with 486. B learns it from
/// the sipfrag, A and B stay connected.
#[test]
fn blind_transfer_to_a_busy_target_keeps_the_call() {
    let mut n = Net::new(["", "", ""]);
    let (a_b, b_a) = n.connect(A, B, BOB);
    n.cmd(
        B,
        Command::Transfer {
            call: Some(b_a),
            target: CAROL.into(),
        },
    )
    .unwrap();
    let c_new = n.ringing(C);
    n.cmd(C, Command::Hangup { call: Some(c_new) }).unwrap();
    let frags: Vec<&str> = n.sent(A, B, "NOTIFY ").into_iter().map(body).collect();
    assert_eq!(frags.last(), Some(&"SIP/2.0 486 Busy Here\r\n"));
    assert_eq!(
        n.call(B, b_a).transfer.as_deref(),
        Some("failed: 486 Busy Here")
    );
    assert_eq!(n.call(B, b_a).state, "connected");
    assert_eq!(n.call(A, a_b).state, "connected");
    assert_eq!(
        n.call(A, a_b).transfer.as_deref(),
        Some("failed: 486 Busy Here")
    );
    assert!(n.sent(B, A, "BYE").is_empty() && n.sent(A, B, "BYE").is_empty());
    // Nothing left over: after 5 s the call is still up, then a new
    // transfer can be tried.
    n.advance(Duration::from_secs(5));
    assert_eq!(n.call(A, a_b).state, "connected");
    n.cmd(
        B,
        Command::Transfer {
            call: Some(b_a),
            target: CAROL.into(),
        },
    )
    .unwrap();
    assert_eq!(n.sent(B, A, "REFER").len(), 2);
    n.ringing(C);
    n.hang_up_all_and_check_idle();
}

/// A REFER in A's dialog from B, with `refer_to` as its Refer-To line.
fn refer_in_dialog(a_call_id: &str, a_tag: &str, b_tag: &str, refer_to: &str) -> String {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(10);
    let k = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "REFER sip:alice@10.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKr{k}\r\nMax-Forwards: 70\r\nFrom: <{BOB}>;tag={b_tag}\r\nTo: <sip:softline@10.0.0.1>;tag={a_tag}\r\nCall-ID: {a_call_id}\r\nCSeq: {k} REFER\r\nContact: <{BOB}>\r\n{refer_to}Content-Length: 0\r\n\r\n"
    )
}

/// Deliver raw `text` from B to A; the response's first line.
fn b_to_a(n: &mut Net, text: &str) -> String {
    let before = n.log.len();
    n.p[A].handle_received(
        n.now,
        udp(ADDRS[B]),
        ADDRS[A].parse().unwrap(),
        text.as_bytes(),
    );
    n.run();
    n.log[before..]
        .iter()
        .find(|d| d.from == A && d.to == B && d.first_line().starts_with("SIP/2.0"))
        .map(|d| d.first_line().to_string())
        .unwrap_or_default()
}

/// REFERs that cannot be honoured: no or unparsable Refer-To → 400 (the
/// call stays up), unknown dialog → 481, out of dialog → 481, a refer
/// NOTIFY nobody asked for → 481; `accept_refer = false` → 603.
#[test]
fn refused_refers_leave_the_call_up() {
    for accept in [true, false] {
        let extra = if accept {
            ""
        } else {
            "[phone]\naccept_refer = false\n"
        };
        let mut n = Net::new([extra, "", ""]);
        let (a_b, b_a) = n.connect(A, B, BOB);
        let invite = n.sent(A, B, "INVITE ")[0].to_string();
        let ok = n.sent(B, A, "SIP/2.0 200 OK")[0].to_string();
        let call_id = header(&invite, "Call-ID").unwrap().to_string();
        let a_tag = header(&invite, "From")
            .unwrap()
            .split(";tag=")
            .nth(1)
            .unwrap()
            .to_string();
        let b_tag = header(&ok, "To")
            .unwrap()
            .split(";tag=")
            .nth(1)
            .unwrap()
            .to_string();
        let good = format!("Refer-To: <{CAROL}>\r\n");
        if !accept {
            let r = b_to_a(&mut n, &refer_in_dialog(&call_id, &a_tag, &b_tag, &good));
            assert_eq!(r, "SIP/2.0 603 Decline");
        } else {
            for (refer_to, want) in [
                ("", "SIP/2.0 400 Bad Request (no Refer-To)"),
                (
                    "Refer-To: <sip:@@>\r\n",
                    "SIP/2.0 400 Bad Request (Refer-To unparsable",
                ),
                (
                    "Refer-To: <sip:x@y>, <sip:z@w>\r\n",
                    "SIP/2.0 400 Bad Request (more than one",
                ),
                (
                    "Refer-To: <sip:x@10.0.0.3;method=BYE>\r\n",
                    "SIP/2.0 400 Bad Request (Refer-To method",
                ),
            ] {
                let r = b_to_a(&mut n, &refer_in_dialog(&call_id, &a_tag, &b_tag, refer_to));
                assert!(r.starts_with(want), "{refer_to:?}: {r}");
            }
            // Unknown dialog, and no dialog at all.
            let r = b_to_a(&mut n, &refer_in_dialog("nope@x", &a_tag, &b_tag, &good));
            assert_eq!(r, "SIP/2.0 481 Call/Transaction Does Not Exist");
            let out = refer_in_dialog("out@x", &a_tag, &b_tag, &good)
                .replace(&format!(";tag={a_tag}"), "");
            assert_eq!(
                b_to_a(&mut n, &out),
                "SIP/2.0 481 Call/Transaction Does Not Exist"
            );
            // A refer NOTIFY to a phone that sent no REFER.
            let notify = refer_in_dialog(&call_id, &a_tag, &b_tag, "")
                .replace("REFER", "NOTIFY")
                .replace("Content-Length: 0", "Event: refer\r\nSubscription-State: active\r\nContent-Type: message/sipfrag\r\nContent-Length: 20");
            let notify = format!("{notify}SIP/2.0 100 Trying\r\n");
            assert_eq!(
                b_to_a(&mut n, &notify),
                "SIP/2.0 481 Call/Transaction Does Not Exist"
            );
        }
        // Nothing was called, the call is up on both sides.
        assert!(n.sent(A, C, "INVITE").is_empty());
        assert_eq!(n.live(A).len(), 1);
        assert_eq!(n.call(A, a_b).state, "connected");
        assert_eq!(n.call(B, b_a).state, "connected");
        n.hang_up_all_and_check_idle();
    }
}

/// The transferor's view of a refused REFER: the far end declines (603).
#[test]
fn transferor_sees_a_declined_refer() {
    let mut n = Net::new(["[phone]\naccept_refer = false\n", "", ""]);
    let (_, b_a) = n.connect(A, B, BOB);
    n.cmd(
        B,
        Command::Transfer {
            call: None,
            target: CAROL.into(),
        },
    )
    .unwrap();
    let c = n.call(B, b_a);
    assert_eq!(c.transfer.as_deref(), Some("failed: 603 Decline"));
    assert_eq!(c.state, "connected");
    // Not transferable: no such call, or the same call twice.
    assert!(
        n.cmd(
            B,
            Command::TransferAttended {
                call: None,
                to_call: b_a
            }
        )
        .is_err()
    );
    assert!(
        n.cmd(
            B,
            Command::Transfer {
                call: Some(99),
                target: CAROL.into()
            }
        )
        .is_err()
    );
    n.hang_up_all_and_check_idle();
}

/// INVITEs with Replaces that cannot be honoured (RFC 3891 §3): unknown
/// dialog → 481, malformed → 400, early-only for a confirmed dialog → 486.
#[test]
fn invite_with_replaces_for_no_dialog_of_ours_is_refused() {
    let mut n = Net::new(["", "", ""]);
    let (_, c_b) = n.connect(B, C, CAROL);
    let invite_bc = n.sent(B, C, "INVITE ")[0].to_string();
    let ok = n.sent(C, B, "SIP/2.0 200 OK")[0].to_string();
    let call_id = header(&invite_bc, "Call-ID").unwrap().to_string();
    let b_tag = header(&invite_bc, "From")
        .unwrap()
        .split(";tag=")
        .nth(1)
        .unwrap()
        .to_string();
    let c_tag = header(&ok, "To")
        .unwrap()
        .split(";tag=")
        .nth(1)
        .unwrap()
        .to_string();
    let cases = [
        ("nope@x;to-tag=1;from-tag=2".to_string(), "SIP/2.0 481"),
        (
            format!("{call_id};to-tag={b_tag};from-tag={c_tag}"),
            "SIP/2.0 481",
        ),
        (format!("{call_id};to-tag={c_tag}"), "SIP/2.0 400"),
        (
            format!("{call_id};to-tag={c_tag};from-tag={b_tag};early-only"),
            "SIP/2.0 486",
        ),
    ];
    for (k, (replaces, want)) in cases.iter().enumerate() {
        let invite = format!(
            "INVITE {CAROL} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKrep{k}\r\nFrom: <{ALICE}>;tag=a{k}\r\nTo: <{CAROL}>\r\nCall-ID: rep-{k}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <{ALICE}>\r\nReplaces: {replaces}\r\nContent-Length: 0\r\n\r\n"
        );
        let before = n.log.len();
        n.p[C].handle_received(
            n.now,
            udp(ADDRS[A]),
            ADDRS[C].parse().unwrap(),
            invite.as_bytes(),
        );
        n.run();
        let resp = n.log[before..]
            .iter()
            .find(|d| d.from == C && d.to == A)
            .map(|d| d.first_line().to_string())
            .unwrap_or_default();
        assert!(resp.starts_with(want), "{replaces}: {resp}");
    }
    // Only the B–C call exists at C, still connected.
    assert_eq!(n.live(C).len(), 1);
    assert_eq!(n.call(C, c_b).state, "connected");
    n.hang_up_all_and_check_idle();
}

/// Transfers and lines/policies/history together: single-line phones with
/// DND on at the target. A's call placed for the REFER takes over the line
/// of the call it continues (no free line is needed); C's INVITE with
/// Replaces is not refused by DND or busy and takes the replaced call's
/// line; every transferred or replaced call goes to the history as
/// answered, with its cause.
#[test]
fn attended_transfer_on_single_line_phones_with_dnd() {
    let one_line = "[phone]\nlines = 1\n";
    let mut n = Net::new([one_line, "", one_line]);
    let (b_a, a_b) = n.connect(B, A, ALICE);
    n.cmd(B, Command::Hold { call: Some(b_a) }).unwrap();
    let (b_c, c_b) = n.connect(B, C, CAROL);
    n.cmd(C, Command::Dnd { on: true }).unwrap();
    assert_eq!(n.call(A, a_b).line, Some(1));
    assert_eq!(n.call(C, c_b).line, Some(1));
    n.cmd(
        B,
        Command::TransferAttended {
            call: Some(b_a),
            to_call: b_c,
        },
    )
    .unwrap();

    // C took the INVITE with Replaces despite DND and its one busy line.
    assert!(
        n.sent(C, A, "SIP/2.0 486").is_empty() && n.sent(C, A, "SIP/2.0 603").is_empty(),
        "{}",
        n.trace()
    );
    let c_live = n.live(C);
    assert_eq!(c_live.len(), 1, "{c_live:?}");
    assert_eq!(
        (c_live[0].state, c_live[0].line),
        ("connected", Some(1)),
        "{:?}",
        c_live[0]
    );
    assert_eq!(n.call(C, c_b).cause.as_deref(), Some("replaced"));
    // A's new call is on line 1, from its first event on.
    let a_live = n.live(A);
    assert_eq!(a_live.len(), 1, "{a_live:?}");
    let a_c = a_live[0].id;
    assert_eq!((a_live[0].state, a_live[0].line), ("connected", Some(1)));
    assert!(
        n.events[A]
            .iter()
            .filter(|e| e.id == a_c)
            .all(|e| e.line == Some(1)),
        "{:?}",
        n.events[A]
    );
    assert_eq!(n.call(A, a_b).cause.as_deref(), Some("transferred"));

    // History: no call refused by a policy; the transferred and replaced
    // calls were answered.
    fn entry(n: &Net, i: usize, id: u64) -> HistoryEntry {
        n.history[i]
            .iter()
            .find(|h| h.call == Some(id))
            .unwrap_or_else(|| panic!("{} has no history of call {id}", NAMES[i]))
            .clone()
    }
    for (i, id, cause) in [
        (A, a_b, "transferred"),
        (B, b_a, "transferred"),
        (B, b_c, "transferred"),
        (C, c_b, "replaced"),
    ] {
        let h = entry(&n, i, id);
        assert_eq!(
            (h.disposition, h.cause.as_deref(), h.line.is_some()),
            (Disposition::Answered, Some(cause), true),
            "{} call {id}: {h:?}",
            NAMES[i]
        );
    }
    assert!(
        n.history[C].iter().all(|h| h.call.is_some()),
        "{:?}",
        n.history[C]
    );

    // Line 1 switches to the new call, not the ended one.
    n.cmd(A, Command::Line { line: 1 }).unwrap();
    assert_eq!(n.call(A, a_c).state, "connected");
    n.hang_up_all_and_check_idle();
    let h = entry(&n, A, a_c);
    assert_eq!((h.disposition, h.line), (Disposition::Answered, Some(1)));
    // The lines are free again: A's next call takes line 1.
    n.cmd(C, Command::Dnd { on: false }).unwrap();
    let (a_next, _) = n.connect(A, C, CAROL);
    assert_eq!(n.call(A, a_next).line, Some(1));
    n.hang_up_all_and_check_idle();
}

/// The transferee between its new call's answer and the transferor's BYE
/// (lost here): the old call shows `transferred` and takes no more INFO
/// DTMF or MESSAGE (481); `dtmf` without a call id goes to the new call,
/// and naming the old one is refused. The fallback BYE still ends it.
#[test]
fn transferred_dialog_takes_no_info_or_message() {
    let mut n = Net::new(["", "", ""]);
    let (a_b, b_a) = n.connect(A, B, BOB);
    n.drop_to = Some((A, "BYE ".into()));
    n.cmd(
        B,
        Command::Transfer {
            call: Some(b_a),
            target: CAROL.into(),
        },
    )
    .unwrap();
    let c_new = n.ringing(C);
    n.cmd(C, Command::Answer { call: Some(c_new) }).unwrap();
    let old = n.call(A, a_b);
    assert_eq!(
        (old.state, old.transfer.as_deref()),
        ("connected", Some("transferred"))
    );
    let a_c = n
        .live(A)
        .into_iter()
        .find(|c| c.remote == CAROL)
        .expect("A talks to C")
        .id;
    // B's requests in the old dialog.
    let refer = n.sent(B, A, "REFER ")[0].to_string();
    let in_dialog = |n: &mut Net, cseq: u32, method: &str, ctype: &str, body: &str| {
        let data = format!(
            "{method} {ALICE} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKlate{cseq}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
            ADDRS[B],
            header(&refer, "From").unwrap(),
            header(&refer, "To").unwrap(),
            header(&refer, "Call-ID").unwrap(),
            body.len()
        );
        let local = ADDRS[A].parse().unwrap();
        let now = n.now;
        n.p[A].handle_received(now, udp(ADDRS[B]), local, data.as_bytes());
        n.drain(A)
            .iter()
            .map(|(_, d)| {
                String::from_utf8_lossy(d)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        in_dialog(&mut n, 90, "INFO", "application/dtmf-relay", "Signal=5\r\n"),
        ["SIP/2.0 481 Call/Transaction Does Not Exist"]
    );
    assert_eq!(
        in_dialog(&mut n, 91, "MESSAGE", "text/plain", "hello?"),
        ["SIP/2.0 481 Call/Transaction Does Not Exist"]
    );
    let r = n.cmd(
        A,
        Command::Dtmf {
            call: None,
            digits: "1".into(),
        },
    );
    assert!(
        matches!(r, Ok(Reply::Dtmf { call, .. }) if call == a_c),
        "{r:?}"
    );
    let r = n.cmd(
        A,
        Command::Dtmf {
            call: Some(a_b),
            digits: "1".into(),
        },
    );
    assert!(
        r.as_ref().is_err_and(|e| e.contains("transferred")),
        "{r:?}"
    );
    // The fallback BYE ends the old call.
    n.drop_to = None;
    n.advance(Duration::from_secs(3));
    let old = n.call(A, a_b);
    assert_eq!(
        (old.state, old.cause.as_deref()),
        ("ended", Some("transferred"))
    );
    n.hang_up_all_and_check_idle();
}
