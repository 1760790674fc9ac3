//! RFC 4475 torture tests: every valid message parses to the right meaning,
//! every invalid one is rejected with a precise error and the right status
//! code, and the semantic ones behave as RFC 4475 §3.2–3.4 ask of a UA.
//! The corpus (tests/corpus/rfc4475) doubles as the fuzz seed corpus.

use std::path::PathBuf;

use softline::sip::headers::TypedHeaders;
use softline::sip::message::{Message, Method};
use softline::sip::parse::ParseError;
use softline::sip::uri::Host;

fn load(class: &str, name: &str) -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests/corpus/rfc4475",
        class,
        &format!("{name}.sip"),
    ]
    .iter()
    .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(class: &str, name: &str) -> Result<Message, ParseError> {
    Message::parse(&load(class, name))
}

fn ok(class: &str, name: &str) -> Message {
    parse(class, name).unwrap_or_else(|e| panic!("{name} must parse: {e}"))
}

#[test]
fn valid_messages_parse_to_their_meaning() {
    // 3.1.1.1 wsinv
    let m = ok("valid", "wsinv");
    let h = m.headers();
    assert_eq!(h.to_addr().unwrap().tag(), Some("1918181833n"));
    assert_eq!(
        h.from_addr().unwrap().display.as_deref(),
        Some("J Rosenberg \\\"")
    );
    assert_eq!(h.max_forwards().unwrap(), Some(68));
    assert_eq!(h.cseq().unwrap().seq, 9);
    assert_eq!(h.vias().unwrap().len(), 3);
    assert_eq!(
        h.get("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(m.body().len(), 150);

    // 3.1.1.2 intmeth
    let Message::Request(r) = ok("valid", "intmeth") else {
        panic!()
    };
    assert!(
        matches!(&r.method, Method::Other(t) if t.starts_with("!interesting-Method0123456789_*+`.%indeed'~"))
    );
    assert_eq!(
        r.uri.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(r.uri.host, Host::Name("example.com".into()));
    let to = r.headers.to_addr().unwrap();
    assert_eq!(to.display.as_deref(), Some("BEL:\x07 NUL:\0 DEL:\x7f"));
    assert_eq!(
        r.headers.from_addr().unwrap().display.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );

    // 3.1.1.3 esc01
    let Message::Request(r) = ok("valid", "esc01") else {
        panic!()
    };
    assert_eq!(r.uri.user.as_deref(), Some("sips:user@example.com"));
    assert_eq!(r.uri.host, Host::Name("example.net".into()));
    assert_eq!(
        r.headers.to_addr().unwrap().uri.user.as_deref(),
        Some("user")
    );

    // 3.1.1.4 escnull: two different Contacts, escaped NUL kept apart
    let m = ok("valid", "escnull");
    let contacts = m.headers().contacts().unwrap();
    assert_eq!(contacts.len(), 2);
    assert_ne!(contacts[0].uri, contacts[1].uri);

    // 3.1.1.5 esc02: the method is not REGISTER
    let Message::Request(r) = ok("valid", "esc02") else {
        panic!()
    };
    assert_eq!(r.method, Method::Other("RE%47IST%45R".into()));

    // 3.1.1.6 lwsdisp
    assert_eq!(
        ok("valid", "lwsdisp")
            .headers()
            .from_addr()
            .unwrap()
            .display
            .as_deref(),
        Some("caller")
    );

    // 3.1.1.7 longreq
    let m = ok("valid", "longreq");
    let vias = m.headers().vias().unwrap();
    assert_eq!(vias.len(), 34);
    assert!(
        vias[33].branch().unwrap().starts_with("very")
            && vias[33].branch().unwrap().ends_with("branchvalue")
    );

    // 3.1.1.8 dblreq: the trailing INVITE octets are discarded
    let m = ok("valid", "dblreq");
    assert!(matches!(&m, Message::Request(r) if r.method == Method::Register));
    assert!(m.body().is_empty());

    // 3.1.1.9 semiuri
    let Message::Request(r) = ok("valid", "semiuri") else {
        panic!()
    };
    assert_eq!(r.uri.user.as_deref(), Some("user;par=u@example.net"));
    assert!(r.uri.params.is_empty());

    // 3.1.1.10 transports
    let t: Vec<String> = ok("valid", "transports")
        .headers()
        .vias()
        .unwrap()
        .into_iter()
        .map(|v| v.transport)
        .collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);

    // 3.1.1.11 mpart01: binary body untouched
    let m = ok("valid", "mpart01");
    assert_eq!(m.body().len(), 553);
    assert!(m.body().contains(&0));

    // 3.1.1.12 unreason, 3.1.1.13 noreason
    let Message::Response(r) = ok("valid", "unreason") else {
        panic!()
    };
    assert_eq!(r.code, 200);
    assert!(r.reason.contains("но сто девяносто девять"));
    let Message::Response(r) = ok("valid", "noreason") else {
        panic!()
    };
    assert_eq!((r.code, r.reason.as_str()), (100, ""));
}

#[test]
fn valid_messages_survive_a_round_trip() {
    for name in [
        "wsinv",
        "intmeth",
        "esc01",
        "escnull",
        "esc02",
        "lwsdisp",
        "longreq",
        "dblreq",
        "semiuri",
        "transports",
        "mpart01",
        "unreason",
        "noreason",
    ] {
        let m = ok("valid", name);
        let again =
            Message::parse(&m.to_bytes()).unwrap_or_else(|e| panic!("{name} re-parse: {e}"));
        assert_eq!(again, m, "{name}");
    }
}

#[test]
fn invalid_messages_are_rejected_precisely() {
    // (name, status code of the answer, text the error must contain)
    let cases = [
        ("badinv01", 400, "Via"),
        ("clerr", 400, "Content-Length is 9999"),
        ("ncl", 400, "Content-Length"),
        ("scalar02", 400, "CSeq"),
        ("scalarlg", 400, "CSeq"),
        ("quotbal", 400, "unterminated quoted string"),
        ("ltgtruri", 400, "URI"),
        ("lwsruri", 400, "start line"),
        ("lwsstart", 400, "start line"),
        ("trws", 400, "start line"),
        ("escruri", 400, "Request-URI cannot carry headers"),
        ("baddate", 400, "Date"),
        ("regbadct", 400, "Contact"),
        ("badaspec", 400, "To"),
        ("baddn", 400, "From"),
        ("badvers", 505, "SIP/7.0"),
        ("mismatch01", 400, "CSeq"),
        ("mismatch02", 400, "CSeq"),
        ("bigcode", 400, "status code"),
    ];
    for (name, code, text) in cases {
        let err = match parse("invalid", name) {
            Ok(_) => panic!("{name} must be rejected"),
            Err(e) => e,
        };
        assert_eq!(err.status_code(), code, "{name}: {err}");
        assert!(
            err.to_string().contains(text),
            "{name}: {err:?} should mention {text:?}"
        );
    }
}

#[test]
fn semantic_messages() {
    // These are well-formed enough to read; what a UA answers is fixed here.
    for name in [
        "badbranch",
        "bcast",
        "bext01",
        "cparam01",
        "cparam02",
        "invut",
        "regaut01",
        "regescrt",
        "sdp01",
        "zeromf",
        "inv2543",
    ] {
        ok("semantic", name);
    }
    // cparam01: the parameter belongs to the Contact header, cparam02: to the URI.
    let c1 = &ok("semantic", "cparam01").headers().contacts().unwrap()[0];
    assert!(c1.params.get("unknownparam").is_some() && c1.uri.param("unknownparam").is_none());
    let c2 = &ok("semantic", "cparam02").headers().contacts().unwrap()[0];
    assert!(c2.uri.param("unknownparam").is_some() && c2.params.get("unknownparam").is_none());
    // regescrt: the escaped header stays part of the Contact URI.
    let c = &ok("semantic", "regescrt").headers().contacts().unwrap()[0];
    assert_eq!(
        c.uri.headers,
        vec![("Route".to_string(), "<sip:sip.example.com>".to_string())]
    );

    let expect_error = [
        ("insuf", 400),   // Call-ID, From, To missing
        ("unkscm", 416),  // unknown Request-URI scheme
        ("novelsc", 416), // soap.beep:
        ("unksm2", 400),  // To/From with schemes a phone cannot answer
        ("multi01", 400), // two CSeq, Call-ID, To, From...
        ("mcl01", 400),   // two Content-Length values
    ];
    for (name, code) in expect_error {
        let err = parse("semantic", name)
            .err()
            .unwrap_or_else(|| panic!("{name} must be refused"));
        assert_eq!(err.status_code(), code, "{name}: {err}");
    }
}

#[test]
fn whole_corpus_through_the_stream_framer_never_panics() {
    use softline::sip::framing::StreamFramer;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/rfc4475");
    let mut seen = 0;
    for class in ["valid", "invalid", "semantic"] {
        for entry in std::fs::read_dir(dir.join(class)).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let mut f = StreamFramer::new();
            for chunk in bytes.chunks(7) {
                f.push(chunk);
                while let Ok(Some(frame)) = f.next_frame() {
                    if let softline::sip::framing::Frame::Message(m) = frame {
                        let _ = Message::parse(&m);
                    }
                }
            }
            seen += 1;
        }
    }
    assert_eq!(seen, 49);
}
