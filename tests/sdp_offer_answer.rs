//! RFC 3264 offer/answer against realistic offers (Asterisk, baresip,
//! Linphone over IPv6, an RFC 2543-style hold), negotiation tables, hold
//! re-offers, RTCP addressing, and parse → display → parse round trips.

use std::net::{IpAddr, SocketAddr};

use proptest::prelude::*;
use softline::sdp::{
    AnswerError, Attribute, Bandwidth, CodecSpec, Connection, Direction, LocalMedia,
    MediaDescription, NegotiatedMedia, Origin, SessionDescription, Timing, answer_offer,
    apply_answer, create_offer,
};

fn corpus(name: &str) -> SessionDescription {
    let path = format!("{}/tests/corpus/sdp/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap();
    SessionDescription::parse(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn sdp(text: &str) -> SessionDescription {
    SessionDescription::parse(text.replace('\n', "\r\n").as_bytes()).unwrap()
}

const ME: &str = "192.0.2.50";

fn g711() -> LocalMedia {
    LocalMedia::g711(ME.parse().unwrap(), 40000)
}

/// Opus, G.722, G.711, telephone-event at 8 and 48 kHz, rtcp-mux.
fn wideband() -> LocalMedia {
    LocalMedia {
        codecs: vec![
            CodecSpec::opus(111),
            CodecSpec::g722(),
            CodecSpec::pcmu(),
            CodecSpec::pcma(),
            CodecSpec::telephone_event(101, 8000),
            CodecSpec::telephone_event(110, 48000),
        ],
        rtcp_mux: true,
        ..g711()
    }
}

fn answer(offer: &SessionDescription, local: &LocalMedia) -> (SessionDescription, NegotiatedMedia) {
    let (a, n) = answer_offer(offer, local, 77, 1).unwrap();
    // What we send must parse, keep the m-line count, and be applicable by
    // the offerer with the same payload types.
    let reparsed = SessionDescription::parse(a.to_string().as_bytes()).unwrap();
    assert_eq!(reparsed, a);
    assert_eq!(a.media.len(), offer.media.len());
    let theirs = apply_answer(offer, &a).unwrap();
    assert_eq!(theirs.codec.payload_type, n.codec.payload_type);
    assert_eq!(
        theirs.telephone_event.as_ref().map(|t| t.payload_type),
        n.telephone_event.as_ref().map(|t| t.payload_type)
    );
    assert_eq!(
        theirs.remote_rtp,
        SocketAddr::new(local.addr, local.rtp_port)
    );
    (a, n)
}

/// Codec name, its payload type, telephone-event type, our direction.
type Summary = (String, u8, Option<u8>, Direction);

fn summary(n: &NegotiatedMedia) -> Summary {
    (
        n.codec.name.clone(),
        n.codec.payload_type,
        n.telephone_event.as_ref().map(|t| t.payload_type),
        n.direction,
    )
}

#[test]
fn negotiation_table() {
    use Direction::*;
    let s = |n: &str| n.to_string();
    let table: Vec<(&str, LocalMedia, Summary)> = vec![
        // Asterisk lists PCMU first: we keep the offerer's order even when
        // we would prefer G.722.
        (
            "asterisk_g711.sdp",
            g711(),
            (s("PCMU"), 0, Some(101), SendRecv),
        ),
        (
            "asterisk_g711.sdp",
            wideband(),
            (s("PCMU"), 0, Some(101), SendRecv),
        ),
        // Asterisk re-offer on hold (sendonly) with opus on 107.
        (
            "asterisk_opus_hold.sdp",
            g711(),
            (s("PCMU"), 0, Some(101), RecvOnly),
        ),
        (
            "asterisk_opus_hold.sdp",
            wideband(),
            (s("opus"), 107, Some(101), RecvOnly),
        ),
        // baresip: opus on 96 (we would use 111), G.722.1 unknown to us.
        (
            "baresip_opus_video.sdp",
            g711(),
            (s("PCMU"), 0, Some(101), SendRecv),
        ),
        (
            "baresip_opus_video.sdp",
            wideband(),
            (s("opus"), 96, Some(101), SendRecv),
        ),
        // Linphone: "OPUS" upper case on 120; telephone-event at 48 kHz
        // preferred with opus, 8 kHz with G.711.
        (
            "linphone_ipv6.sdp",
            wideband(),
            (s("opus"), 120, Some(101), SendRecv),
        ),
        (
            "linphone_ipv6.sdp",
            g711(),
            (s("PCMU"), 0, Some(110), SendRecv),
        ),
        // RFC 2543 hold (c=0.0.0.0, no direction attribute).
        (
            "old_hold_c0.sdp",
            g711(),
            (s("PCMU"), 0, Some(101), RecvOnly),
        ),
    ];
    for (file, local, expected) in table {
        let offer = corpus(file);
        let (_, n) = answer(&offer, &local);
        assert_eq!(summary(&n), expected, "{file}");
    }
}

#[test]
fn asterisk_offer_answered_like_before() {
    let offer = corpus("asterisk_g711.sdp");
    let (a, n) = answer(&offer, &g711());
    assert_eq!(
        a.to_string(),
        "v=0\r\no=softline 77 1 IN IP4 192.0.2.50\r\ns=Softline\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    );
    assert_eq!(n.remote_rtp, "203.0.113.10:17354".parse().unwrap());
    assert_eq!(n.remote_rtcp, "203.0.113.10:17355".parse().unwrap());
    assert_eq!(n.ptime_ms, 20);
    assert!(!n.rtcp_mux);
    assert_eq!(n.codec.fmtp, None);
    assert_eq!(n.telephone_event.unwrap().fmtp.as_deref(), Some("0-16"));
}

#[test]
fn baresip_offer_video_rejected_mux_and_remote_fmtp() {
    let offer = corpus("baresip_opus_video.sdp");
    let (a, n) = answer(&offer, &wideband());
    assert_eq!(a.media.len(), 2);
    let audio = &a.media[0];
    assert_eq!(audio.port, 40000);
    assert_eq!(audio.formats, ["96", "101"]);
    assert!(audio.rtcp_mux());
    // Our receive parameters in the answer, under the offerer's number.
    assert_eq!(audio.fmtp(96), Some("useinbandfec=1"));
    assert_eq!(audio.rtpmap(96).unwrap().to_string(), "96 opus/48000/2");
    let video = &a.media[1];
    assert_eq!((video.media.as_str(), video.port), ("video", 0));
    assert_eq!(video.formats, ["100"]);
    assert!(video.attributes.is_empty());
    // The remote's fmtp is what our sender honours.
    assert_eq!(
        n.codec,
        CodecSpec {
            name: "opus".into(),
            clock_rate: 48000,
            channels: 2,
            payload_type: 96,
            fmtp: Some("stereo=1;sprop-stereo=1;useinbandfec=1".into()),
        }
    );
    let p = softline::sdp::OpusParams::from_fmtp(n.codec.fmtp.as_deref().unwrap());
    assert!(p.stereo && p.useinbandfec && !p.usedtx);
    // rtcp-mux wins over a=rtcp.
    assert!(n.rtcp_mux);
    assert_eq!(n.remote_rtp, "192.168.1.20:10388".parse().unwrap());
    assert_eq!(n.remote_rtcp, n.remote_rtp);
    assert_eq!(n.telephone_event.unwrap().fmtp.as_deref(), Some("0-15"));

    // Without mux on our side: a=rtcp:10389 gives the RTCP port.
    let (a, n) = answer(&offer, &g711());
    assert!(!a.media[0].rtcp_mux());
    assert!(!n.rtcp_mux);
    assert_eq!(n.remote_rtcp, "192.168.1.20:10389".parse().unwrap());
}

#[test]
fn ipv6_offer_and_rtcp_address() {
    let offer = corpus("linphone_ipv6.sdp");
    let local = LocalMedia {
        addr: "2001:db8::50".parse().unwrap(),
        ..wideband()
    };
    let (a, n) = answer(&offer, &local);
    let text = a.to_string();
    assert!(
        text.contains("o=softline 77 1 IN IP6 2001:db8::50\r\n"),
        "{text}"
    );
    assert!(text.contains("c=IN IP6 2001:db8::50\r\n"), "{text}");
    assert_eq!(n.remote_rtp, "[2001:db8::20]:7078".parse().unwrap());
    assert_eq!(n.remote_rtcp, "[2001:db8::21]:7079".parse().unwrap());
    assert!(!n.rtcp_mux, "Linphone did not offer rtcp-mux");
    let te = n.telephone_event.unwrap();
    assert_eq!(
        (te.payload_type, te.clock_rate, te.fmtp),
        (101, 48000, None)
    );
    assert_eq!(
        n.codec.fmtp.as_deref(),
        Some("useinbandfec=1; maxplaybackrate=16000")
    );
    assert_eq!(
        softline::sdp::OpusParams::from_fmtp(n.codec.fmtp.as_deref().unwrap()).maxplaybackrate,
        16000
    );
}

#[test]
fn media_level_connection_overrides_session_level() {
    let offer = sdp(
        "v=0\no=- 1 1 IN IP4 198.51.100.1\ns=-\nc=IN IP4 198.51.100.1\nt=0 0\n\
m=audio 5004 RTP/AVP 8\nc=IN IP6 2001:db8::99\na=rtcp:6000\n",
    );
    let (_, n) = answer(&offer, &g711());
    assert_eq!(n.codec.name, "PCMA");
    assert_eq!(n.remote_rtp, "[2001:db8::99]:5004".parse().unwrap());
    assert_eq!(n.remote_rtcp, "[2001:db8::99]:6000".parse().unwrap());
}

#[test]
fn hold_reoffers() {
    let head = "v=0\no=- 5 6 IN IP4 203.0.113.10\ns=-\nc=IN IP4 203.0.113.10\nt=0 0\n";
    let cases = [
        // (session attrs, media attrs, expected answer direction)
        ("", "a=sendonly\n", Direction::RecvOnly),
        ("", "a=inactive\n", Direction::Inactive),
        ("", "a=recvonly\n", Direction::SendOnly),
        ("", "a=sendrecv\n", Direction::SendRecv),
        ("", "", Direction::SendRecv),
        ("a=sendonly\n", "", Direction::RecvOnly),
        ("a=inactive\n", "", Direction::Inactive),
        // Media level wins over session level.
        ("a=inactive\n", "a=sendrecv\n", Direction::SendRecv),
    ];
    for (session, media, expected) in cases {
        let text = format!("{head}{session}m=audio 4000 RTP/AVP 0\n{media}");
        let (a, n) = answer(&sdp(&text), &g711());
        assert_eq!(n.direction, expected, "{session:?} {media:?}");
        assert_eq!(a.media[0].attribute_direction(), Some(expected));
    }
    // RFC 2543 hold: c=0.0.0.0, with or without sendonly.
    for media in ["", "a=sendonly\n", "a=sendrecv\n"] {
        let text = format!(
            "v=0\no=- 5 6 IN IP4 203.0.113.10\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 4000 RTP/AVP 0\n{media}"
        );
        let (_, n) = answer(&sdp(&text), &g711());
        assert_eq!(n.direction, Direction::RecvOnly, "{media:?}");
        assert_eq!(n.remote_rtp, "0.0.0.0:4000".parse().unwrap());
    }
    // We hold (sendonly) and they hold too: nothing flows.
    let local = LocalMedia {
        direction: Direction::SendOnly,
        ..g711()
    };
    let text = format!("{head}m=audio 4000 RTP/AVP 0\na=sendonly\n");
    let (_, n) = answer(&sdp(&text), &local);
    assert_eq!(n.direction, Direction::Inactive);
}

/// Direction helper for the tests.
trait DirectionAttr {
    fn attribute_direction(&self) -> Option<Direction>;
}

impl DirectionAttr for MediaDescription {
    fn attribute_direction(&self) -> Option<Direction> {
        use softline::sdp::Attributes;
        self.direction()
    }
}

#[test]
fn ptime_and_maxptime() {
    let head = "v=0\no=- 5 6 IN IP4 203.0.113.10\ns=-\nc=IN IP4 203.0.113.10\nt=0 0\nm=audio 4000 RTP/AVP 0\n";
    for (attrs, ours, expected) in [
        ("", 20, 20),
        ("", 30, 30),
        ("a=ptime:30\n", 20, 30),
        ("a=ptime:40\na=maxptime:30\n", 20, 30),
        ("a=maxptime:25\n", 40, 20),
        ("a=ptime:0\n", 20, 20),
        ("a=ptime:1000\n", 20, 20),
        ("a=ptime:20.5\n", 10, 20),
    ] {
        let local = LocalMedia {
            ptime_ms: ours,
            ..g711()
        };
        let (a, n) = answer(&sdp(&format!("{head}{attrs}")), &local);
        assert_eq!(n.ptime_ms, expected, "{attrs:?} ours {ours}");
        assert_eq!(a.media[0].ptime(), Some(ours));
    }
}

#[test]
fn no_common_codec_no_audio_and_profiles() {
    let head = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n";
    let err = |body: &str, local: &LocalMedia| {
        answer_offer(&sdp(&format!("{head}{body}")), local, 1, 1).unwrap_err()
    };
    // G.729 and GSM only.
    assert_eq!(
        err("m=audio 4000 RTP/AVP 18 3\n", &g711()),
        AnswerError::NoCommonCodec
    );
    // Opus only, G.711 phone.
    let opus = "m=audio 4000 RTP/AVP 96 101\na=rtpmap:96 opus/48000/2\na=rtpmap:101 telephone-event/8000\n";
    assert_eq!(err(opus, &g711()), AnswerError::NoCommonCodec);
    // telephone-event alone is no codec.
    let te = "m=audio 4000 RTP/AVP 101\na=rtpmap:101 telephone-event/8000\n";
    assert_eq!(err(te, &g711()), AnswerError::NoCommonCodec);
    // Opus with the wrong channel count is not Opus (RFC 7587 §7).
    let mono = "m=audio 4000 RTP/AVP 96\na=rtpmap:96 opus/48000\n";
    assert_eq!(err(mono, &wideband()), AnswerError::NoCommonCodec);
    // A dynamic type without rtpmap cannot be identified.
    assert_eq!(
        err("m=audio 4000 RTP/AVP 96\n", &wideband()),
        AnswerError::NoCommonCodec
    );
    // Matching is by name, not number: 0 remapped to something else.
    let remap = "m=audio 4000 RTP/AVP 0\na=rtpmap:0 L16/16000\n";
    assert_eq!(err(remap, &g711()), AnswerError::NoCommonCodec);
    assert_eq!(
        err("m=video 4000 RTP/AVP 96\n", &g711()),
        AnswerError::NoAudio
    );
    assert_eq!(err("m=audio 0 RTP/AVP 0\n", &g711()), AnswerError::NoAudio);
    assert_eq!(
        err("m=audio 4000 UDP/TLS/RTP/SAVPF 0\n", &g711()),
        AnswerError::UnsupportedProfile("UDP/TLS/RTP/SAVPF".into())
    );
    // FQDN connection addresses need DNS, which offer/answer does not do.
    let fqdn = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 media.example.com\nt=0 0\nm=audio 4000 RTP/AVP 0\n";
    assert!(matches!(
        answer_offer(&sdp(fqdn), &g711(), 1, 1),
        Err(AnswerError::Malformed(w)) if w.contains("media.example.com")
    ));
    let no_c = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\n";
    assert_eq!(
        answer_offer(&sdp(no_c), &g711(), 1, 1),
        Err(AnswerError::Malformed("m-line 1 has no c= line".into()))
    );
}

#[test]
fn keeps_m_line_order_and_count() {
    let offer = corpus("lf_savp_then_avp.sdp");
    let (a, n) = answer(&offer, &g711());
    let lines: Vec<(&str, u16, &str)> = a
        .media
        .iter()
        .map(|m| (m.media.as_str(), m.port, m.proto.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            ("audio", 0, "RTP/SAVP"),
            ("audio", 40000, "RTP/AVP"),
            ("application", 0, "UDP/BFCP")
        ]
    );
    assert_eq!(a.media[2].formats, ["*"]);
    assert_eq!(n.remote_rtp, "10.0.0.1:4002".parse().unwrap());
    // Session-level inactive applies to the accepted stream.
    assert_eq!(n.direction, Direction::Inactive);
    // Two acceptable audio streams: the second is rejected.
    let two = sdp(
        "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n\
m=audio 4000 RTP/AVP 8\nm=audio 4002 RTP/AVP 0\n",
    );
    let (a, n) = answer(&two, &g711());
    assert_eq!((a.media[0].port, a.media[1].port), (40000, 0));
    assert_eq!(n.codec.name, "PCMA");
}

#[test]
fn offer_then_answer_then_apply() {
    // We offer wideband; the far end is a G.722/G.711 phone that numbers
    // telephone-event differently and puts G.722 first in its answer.
    let ours = create_offer(&wideband(), 1000, 1);
    assert_eq!(
        ours.to_string(),
        "v=0\r\no=softline 1000 1 IN IP4 192.0.2.50\r\ns=Softline\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 111 9 0 8 101 110\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\n\
a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=rtpmap:110 telephone-event/48000\r\n\
a=fmtp:110 0-16\r\na=ptime:20\r\na=rtcp-mux\r\na=sendrecv\r\n"
    );
    let their_answer = sdp(
        "v=0\no=- 9 9 IN IP4 198.51.100.3\ns=-\nc=IN IP4 198.51.100.3\nt=0 0\n\
m=audio 30000 RTP/AVP 9 0 100\na=rtpmap:100 telephone-event/8000\na=fmtp:100 0-15\na=ptime:30\na=recvonly\n",
    );
    let n = apply_answer(&ours, &their_answer).unwrap();
    assert_eq!(n.codec, CodecSpec::g722());
    let te = n.telephone_event.unwrap();
    assert_eq!((te.payload_type, te.clock_rate), (100, 8000));
    assert_eq!(te.fmtp.as_deref(), Some("0-15"));
    assert_eq!(n.direction, Direction::SendOnly);
    assert_eq!(n.ptime_ms, 30);
    assert!(!n.rtcp_mux, "the answer did not accept rtcp-mux");
    assert_eq!(n.remote_rtcp, "198.51.100.3:30001".parse().unwrap());

    // Two Softlines: each side's NegotiatedMedia points at the other.
    let a_local = wideband();
    let b_local = LocalMedia {
        addr: "192.0.2.60".parse().unwrap(),
        rtp_port: 50000,
        ..wideband()
    };
    let offer = create_offer(&a_local, 1, 1);
    let (ans, b) = answer_offer(&offer, &b_local, 2, 1).unwrap();
    let a = apply_answer(&offer, &ans).unwrap();
    assert_eq!(a.codec.payload_type, 111);
    assert_eq!(b.codec.payload_type, 111);
    assert_eq!(a.telephone_event.as_ref().unwrap().payload_type, 110);
    assert_eq!(a.remote_rtp, "192.0.2.60:50000".parse().unwrap());
    assert_eq!(b.remote_rtp, "192.0.2.50:40000".parse().unwrap());
    assert!(a.rtcp_mux && b.rtcp_mux);
    assert_eq!(a.remote_rtcp, a.remote_rtp);
}

#[test]
fn apply_answer_rejections() {
    let ours = create_offer(&g711(), 1, 1);
    let head = "v=0\no=- 9 9 IN IP4 198.51.100.3\ns=-\nc=IN IP4 198.51.100.3\nt=0 0\n";
    let apply = |body: &str| apply_answer(&ours, &sdp(&format!("{head}{body}")));
    assert_eq!(apply("m=audio 0 RTP/AVP 0\n"), Err(AnswerError::NoAudio));
    assert_eq!(
        apply("m=audio 3000 RTP/AVP 9\n"),
        Err(AnswerError::NoCommonCodec)
    );
    assert!(matches!(
        apply("m=audio 3000 RTP/AVP 0\nm=video 0 RTP/AVP 96\n"),
        Err(AnswerError::Malformed(w)) if w.contains("2 m-lines")
    ));
    assert!(matches!(
        apply("m=video 3000 RTP/AVP 0\n"),
        Err(AnswerError::Malformed(_))
    ));
    // A codec we did not offer is skipped in favour of one we did.
    let n = apply("m=audio 3000 RTP/AVP 9 8\n").unwrap();
    assert_eq!((n.codec.name.as_str(), n.codec.payload_type), ("PCMA", 8));
    assert_eq!(n.telephone_event, None);
}

#[test]
fn realistic_offers_round_trip() {
    for name in [
        "asterisk_g711.sdp",
        "asterisk_opus_hold.sdp",
        "baresip_opus_video.sdp",
        "linphone_ipv6.sdp",
        "old_hold_c0.sdp",
        "lf_savp_then_avp.sdp",
    ] {
        let sd = corpus(name);
        let text = sd.to_string();
        assert_eq!(
            SessionDescription::parse(text.as_bytes()).unwrap(),
            sd,
            "{name}"
        );
        // Files already in canonical order with CRLF come back byte-exact.
        let raw = std::fs::read_to_string(format!(
            "{}/tests/corpus/sdp/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        if raw.contains("\r\n") {
            assert_eq!(text, raw, "{name}");
        }
    }
}

// ---- property: parse(display(x)) == x for any well-formed model ----

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn word() -> impl Strategy<Value = String> {
    "[!-~]{1,10}"
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._+-]{0,8}"
}

fn connection() -> impl Strategy<Value = Connection> {
    (token(), token(), word()).prop_map(|(net_type, addr_type, address)| Connection {
        net_type,
        addr_type,
        address,
    })
}

fn bandwidth() -> impl Strategy<Value = Bandwidth> {
    (token(), any::<u64>()).prop_map(|(bw_type, bandwidth)| Bandwidth { bw_type, bandwidth })
}

fn attribute() -> impl Strategy<Value = Attribute> {
    (token(), proptest::option::of(text())).prop_map(|(name, value)| Attribute { name, value })
}

fn media() -> impl Strategy<Value = MediaDescription> {
    (
        (
            token(),
            any::<u16>(),
            proptest::option::of(any::<u16>()),
            "[A-Z]{1,4}(/[A-Z]{1,5}){0,2}",
            proptest::collection::vec(token(), 1..5),
        ),
        (
            proptest::option::of(text()),
            proptest::collection::vec(connection(), 0..2),
            proptest::collection::vec(bandwidth(), 0..2),
            proptest::option::of(text()),
            proptest::collection::vec(attribute(), 0..6),
        ),
    )
        .prop_map(
            |(
                (media, port, port_count, proto, formats),
                (information, connections, bandwidths, key, attributes),
            )| MediaDescription {
                media,
                port,
                port_count,
                proto,
                formats,
                information,
                connections,
                bandwidths,
                key,
                attributes,
            },
        )
}

fn session() -> impl Strategy<Value = SessionDescription> {
    let origin = (word(), any::<u64>(), any::<u64>(), token(), token(), word()).prop_map(
        |(username, session_id, session_version, net_type, addr_type, unicast_address)| Origin {
            username,
            session_id,
            session_version,
            net_type,
            addr_type,
            unicast_address,
        },
    );
    let timing = (
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(text(), 0..2),
    )
        .prop_map(|(start, stop, repeats)| Timing {
            start,
            stop,
            repeats,
        });
    (
        (
            origin,
            text(),
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::collection::vec(text(), 0..2),
            proptest::collection::vec(text(), 0..2),
        ),
        (
            proptest::option::of(connection()),
            proptest::collection::vec(bandwidth(), 0..2),
            proptest::collection::vec(timing, 1..3),
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::collection::vec(attribute(), 0..4),
            proptest::collection::vec(media(), 0..4),
        ),
    )
        .prop_map(
            |(
                (origin, session_name, information, uri, emails, phones),
                (connection, bandwidths, times, time_zones, key, attributes, media),
            )| SessionDescription {
                version: 0,
                origin,
                session_name,
                information,
                uri,
                emails,
                phones,
                connection,
                bandwidths,
                times,
                time_zones,
                key,
                attributes,
                media,
            },
        )
}

proptest! {
    #[test]
    fn display_then_parse_is_identity(sd in session()) {
        let text = sd.to_string();
        let again = SessionDescription::parse(text.as_bytes());
        prop_assert_eq!(again.as_ref(), Ok(&sd), "{}", text);
        // LF-only endings mean the same.
        let lf = text.replace("\r\n", "\n");
        prop_assert_eq!(SessionDescription::parse(lf.as_bytes()), Ok(sd));
    }

    #[test]
    fn answers_to_arbitrary_audio_offers_are_consistent(
        pts in proptest::collection::vec(0u8..128, 1..6),
        names in proptest::collection::vec(
            prop_oneof![
                Just("PCMU/8000"), Just("PCMA/8000"), Just("G722/8000"), Just("opus/48000/2"),
                Just("telephone-event/8000"), Just("telephone-event/48000"), Just("G729/8000"),
            ],
            6,
        ),
        dir in prop_oneof![Just("sendrecv"), Just("sendonly"), Just("recvonly"), Just("inactive")],
        mux in any::<bool>(),
    ) {
        let mut text = format!(
            "v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP {}\r\n",
            pts.iter().map(u8::to_string).collect::<Vec<_>>().join(" ")
        );
        for (pt, name) in pts.iter().zip(&names) {
            if *pt >= 96 {
                text.push_str(&format!("a=rtpmap:{pt} {name}\r\n"));
            }
        }
        text.push_str(&format!("a={dir}\r\n"));
        if mux {
            text.push_str("a=rtcp-mux\r\n");
        }
        let offer = SessionDescription::parse(text.as_bytes()).unwrap();
        match answer_offer(&offer, &wideband(), 1, 1) {
            Ok((a, n)) => {
                // The chosen type is the first offered one we support.
                let first = offer.media[0].payloads().into_iter().find(|m| {
                    wideband().codecs.iter().any(|c| !c.is_telephone_event() && c.matches(m))
                });
                prop_assert_eq!(Some(n.codec.payload_type), first.map(|m| m.payload_type));
                prop_assert_eq!(n.rtcp_mux, mux);
                let theirs = apply_answer(&offer, &a).unwrap();
                prop_assert_eq!(theirs.codec.payload_type, n.codec.payload_type);
                prop_assert_eq!(n.direction, Direction::from_attribute(dir).unwrap().reverse());
                let ip: IpAddr = ME.parse().unwrap();
                prop_assert_eq!(theirs.remote_rtp, SocketAddr::new(ip, 40000));
            }
            Err(e) => prop_assert_eq!(e, AnswerError::NoCommonCodec),
        }
    }
}

/// `wideband()` plus RFC 2198 RED around Opus, as `[media] opus_red` offers it.
fn wideband_red() -> LocalMedia {
    let mut local = wideband();
    local.codecs.insert(1, CodecSpec::red(100, 111));
    local
}

/// Codec, its type, and the RED type settled (None = plain codec).
type RedSummary = (String, u8, Option<u8>);

fn red_summary(n: &NegotiatedMedia) -> RedSummary {
    (n.codec.name.clone(), n.codec.payload_type, n.red)
}

#[test]
fn red_negotiation_table() {
    let head = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n";
    let s = |n: &str| n.to_string();
    // (what, offer's m-section, our local media, expected, answer's red lines)
    let table: Vec<(&str, String, LocalMedia, RedSummary, &str)> = vec![
        (
            "browser-style: red first, Opus inside → Opus with red",
            format!(
                "{head}m=audio 4000 RTP/AVP 63 111 0\na=rtpmap:63 red/48000/2\na=fmtp:63 111/111\n\
a=rtpmap:111 opus/48000/2\n"
            ),
            wideband_red(),
            (s("opus"), 111, Some(63)),
            "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n",
        ),
        (
            "Opus on 96, red after it → answered with the offer's numbers",
            format!(
                "{head}m=audio 4000 RTP/AVP 96 97\na=rtpmap:96 opus/48000/2\n\
a=rtpmap:97 red/48000/2\na=fmtp:97 96/96\n"
            ),
            wideband_red(),
            (s("opus"), 96, Some(97)),
            "a=rtpmap:97 red/48000/2\r\na=fmtp:97 96/96\r\n",
        ),
        (
            "red absent → plain Opus",
            format!("{head}m=audio 4000 RTP/AVP 111\na=rtpmap:111 opus/48000/2\n"),
            wideband_red(),
            (s("opus"), 111, None),
            "",
        ),
        (
            "red around another codec (G.722 chosen) → ignored",
            format!("{head}m=audio 4000 RTP/AVP 9 63\na=rtpmap:63 red/48000/2\na=fmtp:63 9/9\n"),
            wideband_red(),
            (s("G722"), 9, None),
            "",
        ),
        (
            "red around Opus and another type → ignored",
            format!(
                "{head}m=audio 4000 RTP/AVP 111 63 0\na=rtpmap:111 opus/48000/2\n\
a=rtpmap:63 red/48000/2\na=fmtp:63 111/0\n"
            ),
            wideband_red(),
            (s("opus"), 111, None),
            "",
        ),
        (
            "red without fmtp → ignored",
            format!(
                "{head}m=audio 4000 RTP/AVP 111 63\na=rtpmap:111 opus/48000/2\na=rtpmap:63 red/48000/2\n"
            ),
            wideband_red(),
            (s("opus"), 111, None),
            "",
        ),
        (
            "only red and PCMU: red is never the codec",
            format!("{head}m=audio 4000 RTP/AVP 63 0\na=rtpmap:63 red/48000/2\na=fmtp:63 0/0\n"),
            wideband_red(),
            (s("PCMU"), 0, None),
            "",
        ),
        (
            "offered with Opus inside, but red off here (opus_red = false)",
            format!(
                "{head}m=audio 4000 RTP/AVP 63 111\na=rtpmap:63 red/48000/2\na=fmtp:63 111/111\n\
a=rtpmap:111 opus/48000/2\n"
            ),
            wideband(),
            (s("opus"), 111, None),
            "",
        ),
    ];
    for (what, offer, local, expected, red_lines) in table {
        let offer = sdp(&offer);
        let (a, n) = answer(&offer, &local);
        assert_eq!(red_summary(&n), expected, "{what}");
        let text = a.to_string();
        if red_lines.is_empty() {
            assert!(!text.contains("red/"), "{what}: {text}");
        } else {
            assert!(text.contains(red_lines), "{what}: {text}");
        }
        // The offerer reads the same red type from our answer.
        assert_eq!(apply_answer(&offer, &a).unwrap().red, n.red, "{what}");
    }
}

#[test]
fn red_offered_accepted_and_kept_by_re_offers() {
    let ours = create_offer(&wideband_red(), 1000, 1);
    let text = ours.to_string();
    assert!(
        text.contains(
            "m=audio 40000 RTP/AVP 111 100 9 0 8 101 110\r\na=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 useinbandfec=1\r\na=rtpmap:100 red/48000/2\r\na=fmtp:100 111/111\r\n"
        ),
        "{text}"
    );
    // Another Softline answers with Opus and red; both ends settle red 100.
    let b_local = LocalMedia {
        addr: "192.0.2.60".parse().unwrap(),
        rtp_port: 50000,
        ..wideband_red()
    };
    let (ans, b) = answer_offer(&ours, &b_local, 2, 1).unwrap();
    let a = apply_answer(&ours, &ans).unwrap();
    assert_eq!(red_summary(&a), ("opus".into(), 111, Some(100)));
    assert_eq!(red_summary(&b), ("opus".into(), 111, Some(100)));
    assert!(
        ans.to_string()
            .contains("m=audio 50000 RTP/AVP 111 100 110\r\n"),
        "{ans}"
    );
    // Hold and resume re-offers carry red again, and it stays negotiated.
    for direction in [Direction::SendOnly, Direction::SendRecv] {
        let local = LocalMedia {
            direction,
            ..wideband_red()
        };
        let re = create_offer(&local, 1000, 2);
        let (ans, b) = answer_offer(&re, &b_local, 2, 2).unwrap();
        let a = apply_answer(&re, &ans).unwrap();
        assert_eq!((a.red, b.red), (Some(100), Some(100)), "{direction:?}");
    }
    // A peer that does not know red (baresip) answers plain Opus.
    let plain = sdp(
        "v=0\no=- 9 9 IN IP4 198.51.100.3\ns=-\nc=IN IP4 198.51.100.3\nt=0 0\n\
m=audio 30000 RTP/AVP 111 101\na=rtpmap:111 opus/48000/2\na=rtpmap:101 telephone-event/8000\n",
    );
    let n = apply_answer(&ours, &plain).unwrap();
    assert_eq!(red_summary(&n), ("opus".into(), 111, None));
    // An answer naming red around a type we did not offer for it: ignored.
    let odd = sdp(
        "v=0\no=- 9 9 IN IP4 198.51.100.3\ns=-\nc=IN IP4 198.51.100.3\nt=0 0\n\
m=audio 30000 RTP/AVP 111 100\na=rtpmap:111 opus/48000/2\na=rtpmap:100 red/48000/2\na=fmtp:100 9/9\n",
    );
    assert_eq!(apply_answer(&ours, &odd).unwrap().red, None);
    // Without red in our offer, an answer's red is not taken.
    let no_red = create_offer(&wideband(), 1000, 1);
    let with_red = sdp(
        "v=0\no=- 9 9 IN IP4 198.51.100.3\ns=-\nc=IN IP4 198.51.100.3\nt=0 0\n\
m=audio 30000 RTP/AVP 111 100\na=rtpmap:111 opus/48000/2\na=rtpmap:100 red/48000/2\na=fmtp:100 111/111\n",
    );
    assert_eq!(apply_answer(&no_red, &with_red).unwrap().red, None);
}
