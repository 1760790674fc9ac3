//! RFC 2198 RED payloads against untrusted bytes: the corpus in
//! tests/corpus/red (valid packets re-write to the same payload, invalid
//! ones fail with the error their name says and are counted, never played,
//! by a media session; no prefix panics) and property tests over arbitrary
//! and structured input.

#[path = "support/corpus.rs"]
mod corpus;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use softline::media::session::{MediaConfig, MediaSession};
use softline::rtp::{RedBlock, RedPayload, RtpPacket, write_red};
use softline::sdp::{CodecSpec, Direction, NegotiatedMedia};

#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

const FROM: &str = "10.0.0.1:5000";

/// A receiving session for Opus 111 inside RED 100.
fn session(now: Instant) -> MediaSession {
    let remote: SocketAddr = FROM.parse().unwrap();
    let media = NegotiatedMedia {
        remote_rtp: remote,
        remote_rtcp: remote,
        codec: CodecSpec::opus(111),
        telephone_event: None,
        ptime_ms: 20,
        direction: Direction::SendRecv,
        rtcp_mux: true,
        srtp: None,
        red: Some(100),
    };
    MediaSession::new(now, &media, &MediaConfig::default(), 7).unwrap()
}

fn rewrite(p: &RedPayload<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    write_red(
        p.redundant(),
        p.primary.payload_type,
        p.primary.data,
        &mut out,
    )
    .unwrap();
    out
}

#[test]
fn corpus() {
    let files = corpus::corpus("red", "bin");
    let now = epoch();
    let mut rx = session(now);
    let (mut valid, mut invalid) = (0, 0);
    for (name, data) in &files {
        let rtp = RtpPacket::parse(data).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(rtp.payload_type, 100, "{name}");
        let parts: Vec<&str> = name.trim_end_matches(".bin").split('-').collect();
        match parts.as_slice() {
            ["valid", "red", ..] => {
                let p = RedPayload::parse(&rtp.payload).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(rewrite(&p), rtp.payload, "{name}: re-written payload");
                valid += 1;
            }
            ["invalid", "red", variant, ..] => {
                let err = RedPayload::parse(&rtp.payload).unwrap_err();
                let debug = format!("{err:?}");
                assert!(
                    debug.starts_with(variant),
                    "{name}: expected {variant}, got {debug} ({err})"
                );
                let before = rx.stats(now).bad_packets;
                rx.on_datagram(now, FROM.parse().unwrap(), data);
                let s = rx.stats(now);
                assert_eq!(
                    (s.bad_packets, s.packets_received),
                    (before + 1, 0),
                    "{name}"
                );
                invalid += 1;
            }
            _ => panic!("unexpected corpus file {name}"),
        }
        // Every prefix of the packet keeps the invariants of the fuzz
        // target `fuzz/fuzz_targets/rtp.rs` (RED read from its payload).
        for cut in 0..=data.len() {
            softline::rtp::check_invariants(&data[..cut])
                .unwrap_or_else(|e| panic!("{name} cut at {cut}: {e}"));
        }
    }
    assert!(
        valid >= 5 && invalid >= 6,
        "corpus went missing: {valid} valid, {invalid} invalid"
    );
    // The two-block packet: oldest first, offsets and the primary as laid out.
    let (_, data) = files
        .iter()
        .find(|(n, _)| n == "valid-red-two-blocks.bin")
        .expect("valid-red-two-blocks.bin");
    let rtp = RtpPacket::parse(data).unwrap();
    let p = RedPayload::parse(&rtp.payload).unwrap();
    let offsets: Vec<(u8, u16, usize)> = p
        .redundant()
        .iter()
        .map(|b| (b.payload_type, b.timestamp_offset, b.data.len()))
        .collect();
    assert_eq!(offsets, [(111, 1920, 4), (111, 960, 3)]);
    assert_eq!((p.primary.payload_type, p.primary.data.len()), (111, 5));
    assert_eq!(p.redundant()[0].timestamp(rtp.timestamp), 96000 - 1920);
}

fn block() -> impl Strategy<Value = (u8, u16, Vec<u8>)> {
    (
        0u8..128,
        0u16..16384,
        proptest::collection::vec(any::<u8>(), 0..40),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any bytes: an error or a payload whose blocks lie inside the input
    /// and re-write to exactly the input.
    #[test]
    fn arbitrary_bytes_never_panic_and_valid_ones_round_trip(
        data in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        if let Ok(p) = RedPayload::parse(&data) {
            prop_assert!(p.redundant().len() <= softline::rtp::red::MAX_BLOCKS);
            prop_assert!(!p.primary.data.is_empty());
            prop_assert_eq!(rewrite(&p), data);
        }
    }

    /// Structured payloads round-trip; damage to them never panics, and a
    /// session fed the damaged packet stays consistent.
    #[test]
    fn structured_red_round_trips_and_damage_never_panics(
        blocks in proptest::collection::vec(block(), 0..=4),
        primary in proptest::collection::vec(any::<u8>(), 1..60),
        flip in any::<(usize, u8)>(),
    ) {
        let red: Vec<RedBlock<'_>> = blocks
            .iter()
            .map(|(pt, off, data)| RedBlock { payload_type: *pt, timestamp_offset: *off, data })
            .collect();
        let mut out = Vec::new();
        write_red(&red, 111, &primary, &mut out).unwrap();
        let p = RedPayload::parse(&out).unwrap();
        prop_assert_eq!(p.redundant(), &red[..]);
        prop_assert_eq!(p.primary.data, &primary[..]);
        for cut in 0..out.len() {
            let _ = RedPayload::parse(&out[..cut]);
        }
        let at = flip.0 % out.len();
        out[at] ^= flip.1;
        let _ = RedPayload::parse(&out);
        let now = epoch();
        let mut rx = session(now);
        let packet = RtpPacket { payload_type: 100, sequence: 1, timestamp: 96000, ssrc: 5, payload: out, ..RtpPacket::default() };
        let mut data = Vec::new();
        packet.write(&mut data);
        rx.on_datagram(now, FROM.parse().unwrap(), &data);
        let mut pcm = Vec::new();
        rx.playout(now + Duration::from_millis(100), &mut pcm);
        prop_assert_eq!(pcm.len(), 960);
        let s = rx.stats(now);
        prop_assert_eq!(s.bad_packets + s.packets_received, 1);
    }
}
