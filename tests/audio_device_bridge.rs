//! The sound-device bridges without a sound card: the callback halves are
//! driven with slices, under an allocator that aborts on any allocation
//! inside `assert_no_alloc`, and whole media-tick ↔ device-callback
//! exchanges run on simulated clocks that drift ±0.5 %.

use assert_no_alloc::{AllocDisabler, assert_no_alloc};
use softline::audio::device::{DeviceSample, input_bridge, output_bridge};
use softline::audio::{AudioSink, AudioSource};
use softline::media::tone::{rms_dbfs, sine, tone_share};

/// RMS of a sine of amplitude 8000: 20·log10(8000/√2/32768) dBFS.
const TONE_DBFS: f64 = -15.26;

#[global_allocator]
static ALLOC: AllocDisabler = AllocDisabler;

const CANARY: &str = "SOFTLINE_ALLOC_CANARY";

/// Run in a child process by `the_no_alloc_guard_is_live`: allocates where
/// it must not, so the process aborts.
#[test]
fn alloc_canary() {
    if std::env::var_os(CANARY).is_some() {
        let v = assert_no_alloc(|| vec![1u8; 64]);
        println!("not reached: {}", v.len());
    }
}

#[test]
fn the_no_alloc_guard_is_live() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "alloc_canary", "--test-threads=1"])
        .env(CANARY, "1")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "an allocation inside assert_no_alloc must abort the process"
    );
}

/// The callback bodies in every device format, ring full and empty, stay
/// allocation-free (this process aborts otherwise).
#[test]
fn callbacks_do_not_allocate() {
    let (mut mic, mut src) = input_bridge(2, 48000);
    let (mut sink, mut spk) = output_bridge(2, 48000);
    let f: Vec<f32> = (0..960).map(|i| (i as f32 / 960.0) - 0.5).collect();
    let i: Vec<i16> = (0..960).map(|i| i as i16 * 30).collect();
    let u: Vec<u16> = i.iter().map(|&s| u16::from_i16(s)).collect();
    let mut out_f = vec![0f32; 960];
    let mut out_i = vec![0i16; 960];
    let mut out_u = vec![0u16; 960];
    // 60 × 3 × 480 mono samples: far more than the 24000-sample ring.
    for _ in 0..60 {
        assert_no_alloc(|| {
            mic.process(&f);
            mic.process(&i);
            mic.process(&u);
        });
    }
    assert!(src.stats().overrun_samples > 0, "ring was full");
    let mut frame = vec![0i16; 960];
    // The device takes 1440 per 960 written: the sink tops the ring up
    // with silence in its first 50 writes after starting, then it runs dry.
    for _ in 0..80 {
        src.read(&mut frame);
        sink.write(&frame).unwrap();
        assert_no_alloc(|| {
            spk.process(&mut out_f);
            spk.process(&mut out_i);
            spk.process(&mut out_u);
        });
    }
    assert!(sink.stats().underrun_samples > 0, "ring ran dry");
}

/// Output path on simulated clocks: the media tick writes a 1 kHz tone,
/// 960 samples per 20 ms; the device (stereo f32) takes 480 frames per
/// callback at 48 kHz·(1+drift). Returns what the device played (mono).
fn run_output(drift: f64, seconds: u32) -> (Vec<i16>, softline::audio::device::DeviceStats) {
    let (mut sink, mut spk) = output_bridge(2, 48000);
    let tone = sine(1000.0, 48000, 8000.0, 48000);
    let mut pos = 0usize;
    let mut buf = vec![0f32; 960];
    let mut played = Vec::new();
    let dt = 480.0 / (48000.0 * (1.0 + drift));
    let (mut tick, mut cb) = (0u64, 0u64);
    while tick < u64::from(seconds) * 50 {
        if tick as f64 * 0.02 <= cb as f64 * dt {
            // 1 kHz at 48 kHz repeats every 48 samples: the frame
            // continues the tone exactly.
            let frame = tone.get(pos..pos + 960).unwrap();
            pos = (pos + 960) % 48000;
            sink.write(frame).unwrap();
            tick += 1;
        } else {
            assert_no_alloc(|| spk.process(&mut buf));
            if played.len() < 48000 * 30 {
                played.extend(buf.iter().step_by(2).map(|s| s.to_i16()));
            }
            cb += 1;
        }
    }
    (played, sink.stats())
}

#[test]
fn output_holds_its_fill_and_plays_the_tone_with_drift() {
    for drift in [0.005, -0.005] {
        let (played, st) = run_output(drift, 600);
        assert_eq!(st.underrun_samples, 0, "drift {drift}: {st:?}");
        assert_eq!(st.overrun_samples, 0, "drift {drift}: {st:?}");
        // 600 s · 48000 · 0.005 = 144000 corrections, one per 100 samples
        // while correcting.
        let corr = st.repeated as i64 - st.skipped as i64;
        let want = if drift > 0.0 { 144_000 } else { -144_000 };
        assert!((corr - want).abs() < 2500, "drift {drift}: {st:?}");
        assert!(st.fill <= st.target + 2 * 960, "drift {drift}: {st:?}");
        // After priming (first 100 ms), the tone: in every 20 ms block of
        // the first 30 s most of the energy is at 1 kHz. (A correction
        // shifts the pitch by 1 % = 10 Hz while it runs; 20 ms blocks have
        // a 50 Hz bin: the shift alone costs up to 13 % there). And no
        // gap: every block's level is the tone's.
        let blocks = played[4800..].chunks_exact(960);
        let worst = blocks
            .clone()
            .map(|b| tone_share(b, 48000, 1000.0))
            .fold(1.0f64, f64::min);
        assert!(worst > 0.85, "drift {drift}: worst share {worst:.3}");
        for (k, b) in blocks.enumerate() {
            let db = rms_dbfs(b);
            assert!(
                (db - TONE_DBFS).abs() < 0.2,
                "drift {drift}: gap in block {k}, {db:.2} dBFS"
            );
        }
    }
}

#[test]
fn input_holds_its_fill_and_delivers_the_tone_with_drift() {
    for drift in [0.005f64, -0.005] {
        // Device: mono i16 mic, 441 samples per callback at
        // 44.1 kHz·(1+drift); media: 882 per 20 ms tick.
        let (mut mic, mut src) = input_bridge(1, 44100);
        let tone = sine(1000.0, 44100, 8000.0, 441 * 100);
        let mut pos = 0usize;
        let mut frame = vec![0i16; 882];
        let mut got = Vec::new();
        let dt = 441.0 / (44100.0 * (1.0 + drift));
        let (mut tick, mut cb) = (0u64, 0u64);
        let mut fills = (usize::MAX, 0usize);
        while tick < 600 * 50 {
            if cb as f64 * dt < tick as f64 * 0.02 {
                // 1 kHz at 44.1 kHz repeats every 441 samples.
                let chunk = tone.get(pos..pos + 441).unwrap();
                pos = (pos + 441) % tone.len();
                assert_no_alloc(|| mic.process(chunk));
                cb += 1;
            } else {
                src.read(&mut frame);
                if tick > 500 {
                    let f = src.stats().fill;
                    fills = (fills.0.min(f), fills.1.max(f));
                }
                if got.len() < 44100 * 30 {
                    got.extend_from_slice(&frame);
                }
                tick += 1;
            }
        }
        let st = src.stats();
        assert_eq!(st.overrun_samples, 0, "drift {drift}: {st:?}");
        // Only the start (priming) reads silence.
        assert!(st.underrun_samples == 0, "drift {drift}: {st:?}");
        // 600 s · 44100 · 0.005 = 132300 corrections.
        let corr = st.skipped as i64 - st.repeated as i64;
        let want = if drift > 0.0 { 132_300 } else { -132_300 };
        assert!((corr - want).abs() < 2500, "drift {drift}: {st:?}");
        assert!(
            fills.0 >= 882 && fills.1 <= st.target + 2 * 882,
            "drift {drift}: fill {fills:?}, {st:?}"
        );
        // The tone in every 20 ms block after priming (see the output test).
        let blocks = got[4410..].chunks_exact(882);
        let worst = blocks
            .clone()
            .map(|b| tone_share(b, 44100, 1000.0))
            .fold(1.0f64, f64::min);
        assert!(worst > 0.85, "drift {drift}: worst share {worst:.3}");
        for (k, b) in blocks.enumerate() {
            let db = rms_dbfs(b);
            assert!(
                (db - TONE_DBFS).abs() < 0.2,
                "drift {drift}: gap in block {k}, {db:.2} dBFS"
            );
        }
    }
}
