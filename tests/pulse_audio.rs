//! The default devices through a PulseAudio server, verified by signal: a
//! private `pulseaudio` with two null sinks, "mic" and "speaker". `paplay`
//! plays 700 Hz into "mic", whose monitor is phone A's default microphone
//! (`PULSE_SOURCE`); A's default speaker is "speaker" (`PULSE_SINK`),
//! recorded with `parec`. A calls B, a headless Softline playing 1100 Hz
//! from a file and writing what it hears to a file: B must hear 700 Hz and
//! "speaker" must carry 1100 Hz, and A's device bridges must drop nothing
//! once running. libpulse is loaded only by A, which opens a default
//! device. (A null sink starts its first stream only after about
//! 1.7 s, its initial block; the test lets that pass before it listens.)
#![cfg(target_os = "linux")]
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use softline::audio::wav::Wav;
use softline::media::tone::{sine, tone_share};
use support::{Phone, TestDir, free_udp_port, growing_wav_samples, poll};

const FIVE_S: Duration = Duration::from_secs(5);

struct Pulse {
    child: Child,
    server: String,
}

impl Pulse {
    fn start(dir: &TestDir) -> Pulse {
        std::fs::create_dir_all(dir.file("state")).unwrap();
        let child = pulse_dl::private_server::command(
            &dir.path,
            &[
                "sink_name=mic rate=48000 channels=1",
                "sink_name=speaker rate=48000 channels=1",
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.file("pulseaudio.log")).unwrap())
        .spawn()
        .expect("pulseaudio (Debian package pulseaudio) must be installed");
        let pulse = Pulse {
            child,
            server: pulse_dl::private_server::address(&dir.path),
        };
        let up = poll(Duration::from_secs(10), || {
            Command::new("pactl")
                .arg("info")
                .env("PULSE_SERVER", &pulse.server)
                .output()
                .ok()
                .filter(|o| o.status.success())
        });
        assert!(
            up.is_some(),
            "pulseaudio did not start: {}",
            std::fs::read_to_string(dir.file("pulseaudio.log")).unwrap_or_default()
        );
        pulse
    }

    fn tool(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("PULSE_SERVER", &self.server)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_tone(path: &Path, freq: f64, rate: u32, secs: usize) {
    let w = Wav {
        sample_rate: rate,
        samples: sine(freq, rate, 8000.0, rate as usize * secs),
    };
    std::fs::write(path, w.to_bytes()).unwrap();
}

fn call_state(s: &Value) -> Value {
    s["calls"][0]["state"].clone()
}

#[test]
fn the_default_devices_carry_both_directions_through_pulseaudio() {
    call_through_pulseaudio("PCMU", 8000);
}

/// At 48 kHz the codec and the devices run at one rate: nothing between
/// them smooths the server's start-up request (see the repeat check).
#[test]
fn an_opus_call_on_the_default_devices_starts_without_repeating_samples() {
    call_through_pulseaudio("opus", 48000);
}

/// A calls B with `codec`, whose PCM rate (B's playout file) is `rate`.
fn call_through_pulseaudio(codec: &str, rate: u32) {
    let dir = TestDir::new("pulse-audio");
    let pulse = Pulse::start(&dir);
    let (mic_tone, b_in, b_out, heard) = (
        dir.file("mic-700.wav"),
        dir.file("b-1100.wav"),
        dir.file("b-out.wav"),
        dir.file("speaker.wav"),
    );
    write_tone(&mic_tone, 700.0, 48000, 20);
    write_tone(&b_in, 1100.0, 8000, 1);

    let mut player = pulse
        .tool("paplay")
        .args(["-d", "mic"])
        .arg(&mic_tone)
        .spawn()
        .expect("paplay (Debian package pulseaudio-utils) must be installed");
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let media = |port: u16| {
        let rtp = 25000 + (port % 2000) * 10;
        format!(
            "[media]\ncodecs = [\"{codec}\"]\nrtp_port_min = {rtp}\nrtp_port_max = {}\n",
            rtp + 9
        )
    };
    // A: the default devices, no echo canceller or noise suppressor (a
    // steady tone is what a suppressor removes).
    let a = Phone::start_with_env(
        &format!(
            "[sip]\nlisten_udp = \"127.0.0.1:{pa}\"\n\n[audio]\ninput = \"default\"\noutput = \"default\"\necho_cancellation = false\nnoise_suppression = false\n\n{}",
            media(pa)
        ),
        &[
            ("PULSE_SERVER", pulse.server.clone()),
            ("PULSE_SOURCE", "mic.monitor".to_string()),
            ("PULSE_SINK", "speaker".to_string()),
        ],
    );
    let b = Phone::start(&format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{pb}\"\n\n[audio]\ninput = \"loop:{}\"\noutput = \"file:{}\"\necho_cancellation = false\nnoise_suppression = false\n\n{}",
        b_in.display(),
        b_out.display(),
        media(pb)
    ));
    a.cmd(json!({"cmd": "call", "target": format!("sip:b@127.0.0.1:{pb}")}));
    b.wait_for(|s| call_state(s) == "ringing", FIVE_S).unwrap();
    b.cmd(json!({"cmd": "answer"}));
    a.wait_for(|s| s["calls"][0]["media"].is_object(), FIVE_S)
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let before = a.ctl(json!({"cmd": "status"}));

    let mut rec = pulse
        .tool("parec")
        .args(["-d", "speaker.monitor", "--rate=8000", "--channels=1"])
        .args(["--format=s16le", "--file-format=wav"])
        .arg(&heard)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let _ = Command::new("kill")
        .args(["-INT", &rec.id().to_string()])
        .status();
    let _ = rec.wait();
    let status = a.ctl(json!({"cmd": "status"}));
    // libpulse is loaded when a default device opens, not linked: A maps
    // it, B (files only) does not.
    let (a_libs, b_libs) = (a.mapped_libraries(), b.mapped_libraries());
    a.cmd(json!({"cmd": "hangup"}));
    b.wait_for(|s| call_state(s) == "ended", FIVE_S).unwrap();
    let _ = player.kill();
    let _ = player.wait();

    // A's speaker: the last 2 s of the recording are B's 1100 Hz.
    let spk = growing_wav_samples(&heard);
    assert!(spk.len() >= 16000, "recorded {} samples", spk.len());
    let tail = &spk[spk.len() - 16000..];
    let media = &status["result"]["calls"][0]["media"];
    let share = tone_share(tail, 8000, 1100.0);
    assert!(
        share > 0.8,
        "1100 Hz share at A's speaker {share:.2}: {media:#}"
    );
    // B's playout: A's microphone, the 700 Hz from PulseAudio.
    let b_heard = growing_wav_samples(&b_out);
    let r = rate as usize;
    assert!(b_heard.len() >= 3 * r, "B wrote {} samples", b_heard.len());
    let tail = &b_heard[b_heard.len() - 2 * r..];
    let share = tone_share(tail, rate, 700.0);
    assert!(share > 0.8, "700 Hz share at B {share:.2}: {media:#}");
    assert!(a_libs.contains("libpulse.so"), "A maps:\n{a_libs}");
    assert!(
        b_libs.contains("softline") && !b_libs.contains("libpulse"),
        "B maps:\n{b_libs}"
    );
    // The server's first request for a whole queue of playback did not
    // drain the speaker's ring below its target (which the drift control
    // would refill by repeating samples, a pitch shift).
    assert_eq!(
        media["speaker_device"]["repeated"], 0,
        "speaker repeated samples: {media:#}"
    );
    // A's bridges ran (the device path, not a file) and lost nothing to
    // over- or underruns after the start.
    let earlier = &before["result"]["calls"][0]["media"];
    for side in ["mic_device", "speaker_device"] {
        assert!(media[side].is_object(), "{media:#}");
        for counter in ["overrun_samples", "underrun_samples"] {
            assert_eq!(
                media[side][counter], earlier[side][counter],
                "{side} {counter} rose while listening: {earlier:#} then {media:#}"
            );
        }
    }
}
