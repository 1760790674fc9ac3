//! RTP/RTCP parsers against untrusted bytes: the corpus in tests/corpus/rtp
//! (valid packets round-trip, invalid ones fail with the error their name
//! says, no prefix panics) and property tests over arbitrary and structured input.

#[path = "support/corpus.rs"]
mod corpus;

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use softline::rtp::{
    ReceiveStats, ReceiverReport, ReportBlock, RtcpPacket, RtpPacket, SenderReport, SeqStatus,
    TelephoneEvent, is_rtcp, parse_compound, write_compound,
};

/// The invariants (shared with the fuzz target `fuzz/fuzz_targets/rtp.rs`),
/// then the packet.
fn rtp_roundtrip(data: &[u8]) -> Result<RtpPacket, String> {
    softline::rtp::check_invariants(data)?;
    RtpPacket::parse(data).map_err(|e| e.to_string())
}

fn rtcp_roundtrip(data: &[u8]) -> Result<Vec<RtcpPacket>, String> {
    softline::rtp::check_invariants(data)?;
    parse_compound(data).map_err(|e| e.to_string())
}

#[test]
fn corpus() {
    let files = corpus::corpus("rtp", "bin");
    let (mut valid, mut invalid) = (0, 0);
    for (name, data) in &files {
        let parts: Vec<&str> = name.trim_end_matches(".bin").split('-').collect();
        match parts.as_slice() {
            ["valid", "rtp", ..] => {
                assert!(!is_rtcp(data), "{name}");
                rtp_roundtrip(data).unwrap_or_else(|e| panic!("{name}: {e}"));
                valid += 1;
            }
            ["valid", "rtcp", ..] => {
                assert!(is_rtcp(data), "{name}");
                rtcp_roundtrip(data).unwrap_or_else(|e| panic!("{name}: {e}"));
                valid += 1;
            }
            ["invalid", kind, variant, ..] => {
                let err = if *kind == "rtp" {
                    RtpPacket::parse(data).map(|_| ()).unwrap_err()
                } else {
                    parse_compound(data).map(|_| ()).unwrap_err()
                };
                let debug = format!("{err:?}");
                assert!(
                    debug.starts_with(variant),
                    "{name}: expected {variant}, got {debug} ({err})"
                );
                invalid += 1;
            }
            _ => panic!("unexpected corpus file {name}"),
        }
        // Every prefix: an error or a value that keeps the invariants.
        for cut in 0..data.len() {
            softline::rtp::check_invariants(&data[..cut])
                .unwrap_or_else(|e| panic!("{name} cut at {cut}: {e}"));
        }
    }
    assert!(
        valid >= 8 && invalid >= 14,
        "corpus went missing: {valid} valid, {invalid} invalid"
    );
}

#[test]
fn corpus_values() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/rtp");
    let te = RtpPacket::parse(&std::fs::read(dir.join("valid-rtp-telephone-event.bin")).unwrap())
        .unwrap();
    assert_eq!(
        (te.payload_type, te.marker, te.sequence, te.timestamp),
        (101, true, 300, 8000)
    );
    assert_eq!(
        TelephoneEvent::parse(&te.payload).unwrap(),
        TelephoneEvent {
            event: 5,
            end: false,
            volume: 10,
            duration: 160
        }
    );
    let padded =
        RtpPacket::parse(&std::fs::read(dir.join("valid-rtp-csrc-ext-padding.bin")).unwrap())
            .unwrap();
    assert_eq!(padded.csrc, [7, 9]);
    assert_eq!(padded.payload, [1, 2, 3]);
    let bye =
        parse_compound(&std::fs::read(dir.join("valid-rtcp-rr-sdes-bye.bin")).unwrap()).unwrap();
    assert_eq!(
        bye[2],
        RtcpPacket::Bye {
            ssrcs: vec![0x5eed_0002],
            reason: Some("hangup".into())
        }
    );
    let rr =
        parse_compound(&std::fs::read(dir.join("valid-rtcp-rr-sdes-padded.bin")).unwrap()).unwrap();
    let RtcpPacket::ReceiverReport(r) = &rr[0] else {
        panic!("{rr:?}")
    };
    assert_eq!(r.reports[0].cumulative_lost, -1);
    assert_eq!(rr[1], RtcpPacket::Sdes(vec![(1, vec![(1, "ab".into())])]));
}

fn block() -> impl Strategy<Value = ReportBlock> {
    (
        any::<u32>(),
        any::<u8>(),
        -0x80_0000..=0x7f_ffffi32,
        any::<[u32; 4]>(),
    )
        .prop_map(
            |(ssrc, fraction_lost, cumulative_lost, [highest_seq, jitter, last_sr, dlsr])| {
                ReportBlock {
                    ssrc,
                    fraction_lost,
                    cumulative_lost,
                    highest_seq,
                    jitter,
                    last_sr,
                    delay_since_last_sr: dlsr,
                }
            },
        )
}

fn text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[ -~é€]{0,40}").unwrap()
}

fn rtcp_packet() -> impl Strategy<Value = RtcpPacket> {
    prop_oneof![
        (
            any::<u32>(),
            any::<u64>(),
            any::<[u32; 3]>(),
            proptest::collection::vec(block(), 0..4)
        )
            .prop_map(|(ssrc, ntp, [ts, pc, oc], reports)| {
                RtcpPacket::SenderReport(SenderReport {
                    ssrc,
                    ntp_timestamp: ntp,
                    rtp_timestamp: ts,
                    packet_count: pc,
                    octet_count: oc,
                    reports,
                })
            }),
        (any::<u32>(), proptest::collection::vec(block(), 0..4)).prop_map(|(ssrc, reports)| {
            RtcpPacket::ReceiverReport(ReceiverReport { ssrc, reports })
        }),
        proptest::collection::vec(
            (
                any::<u32>(),
                proptest::collection::vec((1u8..=8, text()), 0..4)
            ),
            0..4
        )
        .prop_map(RtcpPacket::Sdes),
        (
            proptest::collection::vec(any::<u32>(), 0..4),
            proptest::option::of(text())
        )
            .prop_map(|(ssrcs, reason)| RtcpPacket::Bye { ssrcs, reason }),
        (
            205u8..=207,
            0u8..32,
            proptest::collection::vec(any::<u32>(), 0..4)
        )
            .prop_map(|(packet_type, fmt, words)| {
                let mut data = vec![0x80 | fmt, packet_type];
                data.extend_from_slice(&(words.len() as u16).to_be_bytes());
                data.extend(words.iter().flat_map(|w| w.to_be_bytes()));
                RtcpPacket::Other { packet_type, data }
            }),
    ]
}

fn rtp_packet() -> impl Strategy<Value = RtpPacket> {
    (
        any::<bool>(),
        0u8..128,
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        proptest::collection::vec(any::<u32>(), 0..=15),
        proptest::option::of((
            any::<u16>(),
            proptest::collection::vec(any::<[u8; 4]>(), 0..4),
        )),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(
            |(marker, payload_type, sequence, timestamp, ssrc, csrc, ext, payload)| RtpPacket {
                marker,
                payload_type,
                sequence,
                timestamp,
                ssrc,
                csrc,
                extension: ext.map(|(p, words)| (p, words.concat())),
                payload,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_valid_ones_round_trip(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        if RtpPacket::parse(&data).is_ok() {
            prop_assert!(rtp_roundtrip(&data).is_ok(), "{:?}", rtp_roundtrip(&data));
        }
        if parse_compound(&data).is_ok() {
            prop_assert!(rtcp_roundtrip(&data).is_ok(), "{:?}", rtcp_roundtrip(&data));
        }
        let _ = TelephoneEvent::parse(&data);
    }

    /// Bytes that look like RTCP (version 2, PT 200–204, any count and length)
    /// so the SR/RR/SDES/BYE parsers see deep, damaged input.
    #[test]
    fn rtcp_shaped_bytes_never_panic(
        first in 0x80u8..0xc0, pt in 200u8..=204, words in 0u16..12,
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut data = vec![first, pt];
        data.extend_from_slice(&words.to_be_bytes());
        data.extend_from_slice(&body);
        if parse_compound(&data).is_ok() {
            prop_assert!(rtcp_roundtrip(&data).is_ok(), "{:?}", rtcp_roundtrip(&data));
        }
    }

    #[test]
    fn structured_rtp_round_trips(p in rtp_packet()) {
        let mut out = Vec::new();
        p.write(&mut out);
        prop_assert_eq!(out.len(), 12 + 4 * p.csrc.len()
            + p.extension.as_ref().map_or(0, |(_, d)| 4 + d.len()) + p.payload.len());
        prop_assert!(!is_rtcp(&out) || (p.marker && (64..96).contains(&p.payload_type)));
        prop_assert_eq!(RtpPacket::parse(&out).unwrap(), p);
    }

    #[test]
    fn structured_rtcp_round_trips_and_damage_never_panics(
        packets in proptest::collection::vec(rtcp_packet(), 1..5),
        flip in any::<(usize, u8)>(),
    ) {
        let mut out = Vec::new();
        write_compound(&packets, &mut out);
        prop_assert_eq!(out.len() % 4, 0);
        prop_assert!(is_rtcp(&out));
        prop_assert_eq!(parse_compound(&out).unwrap(), packets);
        for cut in 0..out.len() {
            let _ = parse_compound(&out[..cut]);
        }
        let at = flip.0 % out.len();
        out[at] ^= flip.1;
        let _ = parse_compound(&out);
    }

    #[test]
    fn telephone_event_round_trips(b in any::<[u8; 4]>()) {
        let e = TelephoneEvent::parse(&b).unwrap();
        let mut out = Vec::new();
        e.write(&mut out);
        prop_assert_eq!(out, [b[0], b[1] & 0xbf, b[2], b[3]]);
    }

    /// In-order stream with random drops: loss counts exactly the dropped
    /// packets after the first counted one, across the 65535 wrap; jitter 0.
    #[test]
    fn stats_count_dropped_packets(
        start in any::<u16>(),
        keep in proptest::collection::vec(proptest::bool::weighted(0.8), 2..400),
    ) {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(8000);
        // The first two packets are always sent so the source passes probation.
        let mut kept = vec![];
        for (i, &k) in keep.iter().enumerate() {
            if i < 2 || k {
                let seq = start.wrapping_add(i as u16);
                let st = s.on_packet(seq, 160 * i as u32, t0 + Duration::from_millis(20 * i as u64));
                prop_assert_eq!(st, if i == 0 { SeqStatus::Probation { remaining: 1 } } else { SeqStatus::New });
                kept.push(i);
            }
        }
        let last = *kept.last().unwrap() as u64;
        prop_assert_eq!(s.expected(), last);
        // Counted from index 1 (index 0 is on probation): kept.len() - 1 received.
        prop_assert_eq!(s.lost(), (last + 1) as i64 - kept.len() as i64);
        prop_assert_eq!(s.jitter(), 0);
        let b = s.report_block(1, t0);
        prop_assert_eq!(b.highest_seq, u32::from(start.wrapping_add(1)) + last as u32 - 1);
        prop_assert_eq!(i64::from(b.cumulative_lost), s.lost());
    }
}
