//! Blind transfer with real parts: a `softline --headless` calls baresip
//! #1, which transfers it (baresip's `transfer` command sends a REFER) to
//! baresip #2. Softline must accept the REFER, call #2, report the
//! progress by NOTIFY, end the first call as transferred and end up
//! talking to #2 — checked by signal both ways: Softline's recording of
//! the new call holds #2's tone, and #2 decodes Softline's tone.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::Duration;

use serde_json::json;
use softline::audio::wav::{Wav, parse_channels};
use softline::media::tone::{rms_dbfs, sine, tone_share};
use support::baresip::Baresip;
use support::{Phone, TestDir, free_udp_block, free_udp_port};

const FIVE_S: Duration = Duration::from_secs(5);
const SOFTLINE_HZ: f64 = 700.0;
const TRANSFEROR_HZ: f64 = 1100.0;
const TARGET_HZ: f64 = 500.0;

#[test]
fn baresip_blind_transfers_softline_to_a_second_baresip() {
    let dir = TestDir::new("transfer-baresip");
    let transferor = Baresip::start("PCMU", TRANSFEROR_HZ);
    let target = Baresip::start("PCMU", TARGET_HZ);
    let input = dir.file("softline-in.wav");
    let w = Wav {
        sample_rate: 8000,
        samples: sine(SOFTLINE_HZ, 8000, 8000.0, 8000),
    };
    std::fs::write(&input, w.to_bytes()).unwrap();
    let port = free_udp_port();
    let rtp = free_udp_block(10);
    let phone = Phone::start(&format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{port}\"\n\n\
         [audio]\ninput = \"loop:{}\"\noutput = \"null\"\n\
         echo_cancellation = false\nnoise_suppression = false\n\n\
         [media]\ncodecs = [\"PCMU\"]\nrtp_port_min = {rtp}\nrtp_port_max = {}\n\n\
         [trace]\nenabled = true\ndir = \"{{dir}}\"\n",
        input.display(),
        rtp + 9,
    ));
    let first = phone.cmd(json!({"cmd": "call", "target": transferor.uri()}))["call"]
        .as_u64()
        .expect("call id");
    phone
        .wait_for(|s| s["calls"][0]["state"] == "connected", FIVE_S)
        .unwrap();
    transferor
        .wait_log("Call established", FIVE_S)
        .unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_millis(500));

    let r = transferor.command("transfer", &target.uri());
    assert_eq!(r["ok"], json!(true), "baresip transfer: {r}");

    // Softline calls the target, which answers; the first call ends.
    let status = phone
        .wait_for(
            |s| {
                let calls = s["calls"].as_array().cloned().unwrap_or_default();
                let first_ended = calls
                    .iter()
                    .any(|c| c["id"] == json!(first) && c["state"] == "ended");
                let second_up = calls.iter().any(|c| {
                    c["state"] == "connected" && c["remote"].as_str() == Some(&target.uri())
                });
                first_ended && second_up
            },
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| {
            panic!(
                "no transfer: {e}\n{}\n--- transferor ---\n{}",
                phone.trace_text(),
                transferor.log_tail()
            )
        });
    let calls = status["calls"].as_array().unwrap();
    let old = calls.iter().find(|c| c["id"] == json!(first)).unwrap();
    assert_eq!(old["cause"], json!("transferred"), "{old:#}");
    let new = calls
        .iter()
        .find(|c| c["state"] == "connected")
        .unwrap()
        .clone();
    let new_id = new["id"].as_u64().unwrap();
    // The REFER was answered 202 and the progress NOTIFYed.
    let trace = phone.trace_text();
    for want in [
        "SIP/2.0 202 Accepted",
        "SIP/2.0 100 Trying",
        "Event: refer",
        "SIP/2.0 200 OK\r\n",
    ] {
        assert!(trace.contains(want), "trace lacks {want:?}:\n{trace}");
    }

    // Signal: record the new call, hear the target's tone on the far-end
    // channel; the target hears Softline's tone.
    let rec = dir.file("after-transfer.wav");
    phone.cmd(json!({"cmd": "record", "call": new_id, "on": true, "file": rec}));
    std::thread::sleep(Duration::from_millis(2500));
    phone.cmd(json!({"cmd": "record", "call": new_id, "on": false}));
    phone.cmd(json!({"cmd": "hangup", "call": new_id}));
    phone
        .wait_for(
            |s| {
                s["calls"]
                    .as_array()
                    .is_some_and(|c| c.iter().all(|c| c["state"] == "ended"))
            },
            FIVE_S,
        )
        .unwrap_or_else(|e| panic!("a call is left: {e}"));
    target.wait_call_ended(FIVE_S).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let bytes = std::fs::read(&rec).unwrap_or_else(|e| panic!("{}: {e}", rec.display()));
    let (rate, channels) = parse_channels(&bytes).unwrap();
    let far = channels.get(1).expect("stereo recording");
    let skip = (rate / 2) as usize;
    let far = far.get(skip..).unwrap_or_default();
    assert!(far.len() > rate as usize, "recording too short");
    let share = tone_share(far, rate, TARGET_HZ);
    let old_share = tone_share(far, rate, TRANSFEROR_HZ);
    eprintln!(
        "after transfer Softline hears {TARGET_HZ} Hz share {share:.3} at {:.1} dBFS, {TRANSFEROR_HZ} Hz share {old_share:.3}",
        rms_dbfs(far)
    );
    assert!(
        share > 0.5 && rms_dbfs(far) > -30.0,
        "Softline does not hear the target"
    );
    assert!(old_share < 0.1, "Softline still hears the transferor");

    let dump = Wav::read(&target.decoded_dump()).unwrap();
    let tail = dump
        .samples
        .get((dump.sample_rate / 2) as usize..)
        .unwrap_or_default();
    let heard = tone_share(tail, dump.sample_rate, SOFTLINE_HZ);
    eprintln!("the target hears {SOFTLINE_HZ} Hz share {heard:.3}");
    assert!(heard > 0.5, "the target does not hear Softline");
}
