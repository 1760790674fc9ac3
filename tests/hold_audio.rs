//! Hold and resume, both directions, verified by signal: two headless
//! Softlines call each other by IP on 127.0.0.1, A playing 700 Hz and B
//! 1100 Hz from looped tone files. Each one's playout (a WAV file that
//! grows frame by frame, clocked like a sound card) is cut at the sample
//! positions where the call changed phase: before the hold both hear the
//! other's tone, during the hold neither does (the holder sends no
//! microphone and receives nothing), after the resume both do again.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use softline::audio::wav::Wav;
use softline::media::tone::{rms_dbfs, sine, tone_share};
use support::{Phone, TestDir, free_udp_port, growing_wav_samples};

const FIVE_S: Duration = Duration::from_secs(5);
const RATE: u32 = 8000;

fn write_tone(path: &Path, freq: f64) {
    let w = Wav {
        sample_rate: RATE,
        samples: sine(freq, RATE, 8000.0, RATE as usize),
    };
    std::fs::write(path, w.to_bytes()).unwrap();
}

fn config(port: u16, input: &Path, output: &Path) -> String {
    let rtp = 23000 + (port % 2000) * 10;
    format!(
        "[sip]\nlisten_udp = \"127.0.0.1:{port}\"\n\n[audio]\ninput = \"loop:{}\"\noutput = \"file:{}\"\necho_cancellation = false\nnoise_suppression = false\n\n[media]\ncodecs = [\"PCMU\"]\nrtp_port_min = {rtp}\nrtp_port_max = {}\nsrtp = \"off\"\n",
        input.display(),
        output.display(),
        rtp + 9,
    )
}

/// Share of `freq` and level in `[from, to)` of `path`'s samples.
fn window(path: &Path, from: usize, to: usize, freq: f64) -> (f64, f64, usize) {
    let all = growing_wav_samples(path);
    let to = to.min(all.len());
    let w = all.get(from.min(to)..to).unwrap_or_default();
    (tone_share(w, RATE, freq), rms_dbfs(w), w.len())
}

fn call_state(s: &Value) -> Value {
    s["calls"][0]["state"].clone()
}

/// The two outputs' lengths (samples) now.
fn marks(a_out: &Path, b_out: &Path) -> (usize, usize) {
    (
        growing_wav_samples(a_out).len(),
        growing_wav_samples(b_out).len(),
    )
}

/// Half a second after a phase change (the re-INVITE and the jitter
/// buffer settle), in samples.
const SETTLE: usize = (RATE / 2) as usize;
/// How long each phase is listened to.
const PHASE: Duration = Duration::from_millis(2000);

struct Pair<'a> {
    a: &'a Phone,
    b: &'a Phone,
    a_out: &'a Path,
    b_out: &'a Path,
}

impl Pair<'_> {
    /// Listen for one phase that starts now; the windows `[start+SETTLE,
    /// end)` of A's and B's output.
    fn listen(&self) -> ((usize, usize), (usize, usize)) {
        let (a0, b0) = marks(self.a_out, self.b_out);
        std::thread::sleep(PHASE);
        let (a1, b1) = marks(self.a_out, self.b_out);
        ((a0 + SETTLE, a1), (b0 + SETTLE, b1))
    }

    /// Both hear the other's tone in this phase.
    fn assert_talking(&self, what: &str) {
        let ((a0, a1), (b0, b1)) = self.listen();
        let (sa, la, na) = window(self.a_out, a0, a1, 1100.0);
        let (sb, lb, nb) = window(self.b_out, b0, b1, 700.0);
        eprintln!(
            "{what}: A hears 1100 Hz {sa:.3} at {la:.1} dBFS ({na} samples); B hears 700 Hz {sb:.3} at {lb:.1} dBFS ({nb} samples)"
        );
        let min = (RATE as usize) * 12 / 10;
        assert!(na >= min && nb >= min, "{what}: the playout did not run");
        assert!(
            sa > 0.5 && la > -30.0,
            "{what}: A does not hear B: {sa}, {la} dBFS"
        );
        assert!(
            sb > 0.5 && lb > -30.0,
            "{what}: B does not hear A: {sb}, {lb} dBFS"
        );
    }

    /// Neither hears the other's tone in this phase.
    fn assert_silent(&self, what: &str) {
        let ((a0, a1), (b0, b1)) = self.listen();
        let (sa, la, na) = window(self.a_out, a0, a1, 1100.0);
        let (sb, lb, nb) = window(self.b_out, b0, b1, 700.0);
        eprintln!(
            "{what}: A hears 1100 Hz {sa:.3} at {la:.1} dBFS ({na} samples); B hears 700 Hz {sb:.3} at {lb:.1} dBFS ({nb} samples)"
        );
        // The playout goes on (a sound card keeps playing), in silence.
        let min = (RATE as usize) * 12 / 10;
        assert!(na >= min && nb >= min, "{what}: the playout stopped");
        assert!(
            sa < 0.1 || la < -50.0,
            "{what}: A still hears B: {sa}, {la} dBFS"
        );
        assert!(
            sb < 0.1 || lb < -50.0,
            "{what}: B still hears A: {sb}, {lb} dBFS"
        );
    }
}

/// `holder` holds the call, the other side sees the remote hold; then
/// `holder` resumes and both are connected again.
fn hold_and_resume(pair: &Pair, holder: &Phone, other: &Phone, label: &str) {
    holder.cmd(json!({"cmd": "hold"}));
    holder
        .wait_for(|s| call_state(s) == "held", FIVE_S)
        .unwrap();
    let s = other
        .wait_for(|s| s["calls"][0]["remote_hold"] == json!(true), FIVE_S)
        .unwrap();
    assert_eq!(call_state(&s), json!("connected"), "{s:#}");
    pair.assert_silent(&format!("{label} holds"));

    holder.cmd(json!({"cmd": "resume"}));
    holder
        .wait_for(|s| call_state(s) == "connected", FIVE_S)
        .unwrap();
    other
        .wait_for(|s| s["calls"][0]["remote_hold"] == json!(false), FIVE_S)
        .unwrap();
    pair.assert_talking(&format!("{label} resumed"));
}

#[test]
fn hold_and_resume_both_directions_silence_and_restore_audio() {
    let dir = TestDir::new("hold-audio");
    let (a_in, b_in) = (dir.file("a-in.wav"), dir.file("b-in.wav"));
    let (a_out, b_out) = (dir.file("a-out.wav"), dir.file("b-out.wav"));
    write_tone(&a_in, 700.0);
    write_tone(&b_in, 1100.0);
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let a = Phone::start(&config(pa, &a_in, &a_out));
    let b = Phone::start(&config(pb, &b_in, &b_out));
    a.cmd(json!({"cmd": "call", "target": format!("sip:b@127.0.0.1:{pb}")}));
    b.wait_for(|s| call_state(s) == "ringing", FIVE_S).unwrap();
    b.cmd(json!({"cmd": "answer"}));
    a.wait_for(|s| s["calls"][0]["media"].is_object(), FIVE_S)
        .unwrap();
    b.wait_for(|s| s["calls"][0]["media"].is_object(), FIVE_S)
        .unwrap();
    let pair = Pair {
        a: &a,
        b: &b,
        a_out: &a_out,
        b_out: &b_out,
    };
    pair.assert_talking("connected");
    hold_and_resume(&pair, pair.a, pair.b, "A");
    hold_and_resume(&pair, pair.b, pair.a, "B");

    a.cmd(json!({"cmd": "hangup"}));
    b.wait_for(|s| call_state(s) == "ended", FIVE_S).unwrap();
    let s = a.wait_for(|s| call_state(s) == "ended", FIVE_S).unwrap();
    assert_eq!(s["calls"].as_array().map(Vec::len), Some(1), "{s:#}");
}
