//! Property tests: whatever the serializer writes, the parser reads back to
//! an equal value; no input makes the parser or the stream framer panic.

use proptest::prelude::*;

use softline::sip::framing::StreamFramer;
use softline::sip::headers::{NameAddr, Params, Via};
use softline::sip::message::{Headers, Message, Method, Request, Response};
use softline::sip::parse::{parse_name_addr, parse_uri};
use softline::sip::uri::{Host, Scheme, Uri};

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| Host::V4(b.into())),
        any::<[u16; 8]>().prop_map(|b| Host::V6(b.into())),
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9]{0,5}){0,2}".prop_map(Host::Name),
    ]
}

/// Any printable text, including what must be escaped or quoted.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[\\x20-\\x7e\\u{{a0}}-\\u{{3ff}}]{{1,{max}}}"))
        .unwrap()
}

fn uri() -> impl Strategy<Value = Uri> {
    (
        prop_oneof![Just(Scheme::Sip), Just(Scheme::Sips)],
        proptest::option::of((text(12), proptest::option::of(text(8)))),
        host(),
        proptest::option::of(any::<u16>()),
        proptest::collection::vec((text(6), proptest::option::of(text(8))), 0..4),
        proptest::collection::vec(
            (
                text(6),
                proptest::string::string_regex("[\\x20-\\x7e]{0,8}").unwrap(),
            ),
            0..3,
        ),
    )
        .prop_map(|(scheme, userinfo, host, port, params, headers)| {
            let (user, password) = match userinfo {
                Some((u, p)) => (Some(u), p),
                None => (None, None),
            };
            Uri {
                scheme,
                user,
                password,
                host,
                port,
                params,
                headers,
            }
        })
}

fn header_params() -> impl Strategy<Value = Params> {
    proptest::collection::vec(
        (
            "[a-z][a-z0-9-]{0,6}",
            proptest::option::of("[A-Za-z0-9.!%*_+`'~-]{1,10}"),
        ),
        0..4,
    )
    .prop_map(Params)
}

fn name_addr() -> impl Strategy<Value = NameAddr> {
    (
        proptest::option::of(
            proptest::string::string_regex("[\\x20-\\x7e\\u{a0}-\\u{3ff}]{0,12}").unwrap(),
        ),
        uri(),
        header_params(),
    )
        .prop_map(|(display, uri, params)| NameAddr {
            display,
            uri,
            params,
        })
}

fn via() -> impl Strategy<Value = Via> {
    (
        prop_oneof![Just("UDP"), Just("TCP"), Just("TLS"), Just("SCTP")],
        host(),
        proptest::option::of(any::<u16>()),
        "[a-zA-Z0-9]{1,20}",
    )
        .prop_map(|(t, host, port, branch)| {
            let mut params = Params::default();
            params.set("branch", Some(&format!("z9hG4bK{branch}")));
            params.set("rport", None);
            Via {
                transport: t.to_string(),
                host,
                port,
                params,
            }
        })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Register),
        Just(Method::Options),
        Just(Method::Bye),
        "[A-Z][A-Za-z0-9.!%*_+`'~-]{0,10}".prop_map(|t| Method::from_token(&t)),
    ]
}

#[allow(clippy::too_many_arguments)] // one argument per header of the message under test
fn common_headers(
    vias: Vec<Via>,
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    seq: u32,
    method: &Method,
    extra: Vec<(String, String)>,
    body: &[u8],
) -> Headers {
    let mut h = Headers::new();
    for v in vias {
        h.push("Via", v.to_string());
    }
    h.push("From", from.to_string());
    h.push("To", to.to_string());
    h.push("Call-ID", call_id);
    h.push("CSeq", format!("{seq} {method}"));
    h.push("Max-Forwards", "70");
    for (n, v) in extra {
        h.push(format!("X-{n}"), v);
    }
    h.push("Content-Length", body.len().to_string());
    h
}

fn message() -> impl Strategy<Value = Message> {
    (
        any::<bool>(),
        method(),
        uri(),
        100u16..700,
        proptest::collection::vec(via(), 1..4),
        (name_addr(), name_addr()),
        "[A-Za-z0-9.!%*_+`'~@-]{1,30}",
        0u32..(1 << 31),
        proptest::collection::vec(
            (
                "[A-Za-z0-9-]{1,10}",
                "[\\x21-\\x7e]([\\x20-\\x7e]{0,20}[\\x21-\\x7e])?",
            ),
            0..4,
        ),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(is_req, method, mut uri, code, vias, (from, to), call_id, seq, extra, body)| {
                uri.headers.clear();
                let headers = common_headers(vias, from, to, call_id, seq, &method, extra, &body);
                if is_req {
                    Message::Request(Request {
                        method,
                        uri,
                        headers,
                        body,
                    })
                } else {
                    Message::Response(Response {
                        code,
                        reason: "Some Reason".into(),
                        headers,
                        body,
                    })
                }
            },
        )
}

fn ok<T>(r: Result<T, softline::sip::parse::ParseError>, ctx: &str) -> Result<T, TestCaseError> {
    r.map_err(|e| TestCaseError::fail(format!("{ctx}: {e}")))
}

proptest! {
    #[test]
    fn uri_round_trips(u in uri()) {
        let text = u.to_string();
        prop_assert_eq!(ok(parse_uri(&text), &text)?, u);
    }

    #[test]
    fn name_addr_round_trips(n in name_addr()) {
        let text = n.to_string();
        prop_assert_eq!(ok(parse_name_addr(&text), &text)?, n);
    }

    #[test]
    fn message_round_trips(m in message()) {
        let bytes = m.to_bytes();
        let parsed = ok(Message::parse(&bytes), &String::from_utf8_lossy(&bytes))?;
        prop_assert_eq!(parsed, m);
    }

    #[test]
    fn stream_framer_reassembles_any_split(m in message(), splits in proptest::collection::vec(any::<prop::sample::Index>(), 0..5)) {
        let bytes = m.to_bytes();
        let mut cuts: Vec<usize> = splits.iter().map(|i| i.index(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut framer = StreamFramer::new();
        let mut prev = 0;
        let mut frames = Vec::new();
        for cut in cuts.into_iter().chain([bytes.len()]) {
            framer.push(&bytes[prev..cut]);
            prev = cut;
            while let Some(f) = ok(framer.next_frame(), "frame")? {
                frames.push(f);
            }
        }
        prop_assert_eq!(frames, vec![softline::sip::framing::Frame::Message(bytes)]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Message::parse(&data);
        let mut f = StreamFramer::new();
        f.push(&data);
        while let Ok(Some(_)) = f.next_frame() {}
    }

    #[test]
    fn mutated_messages_never_panic(m in message(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)) {
        let mut bytes = m.to_bytes();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len().max(1));
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i.min(bytes.len()), byte),
                _ if i < bytes.len() => { bytes.truncate(i); }
                _ => {}
            }
        }
        if let Ok(parsed) = Message::parse(&bytes) {
            // Whatever parses must serialize and parse again to the same value.
            prop_assert_eq!(ok(Message::parse(&parsed.to_bytes()), "reparse")?, parsed);
        }
    }
}
