//! `cargo xtask bench audio` (quality part): what Softline, baresip and
//! linphonec **play out** when they receive the same speech over the same impaired
//! link, scored with PESQ (ITU-T P.862 narrowband for PCMU, P.862.2
//! wideband for G.722 and Opus).
//!
//! Per run: a sending Softline (headless, `[audio] input = "file:…"`) calls
//! the receiver through [`crate::impair::Relay`], each phone in a network
//! namespace of its own ([`crate::netns`]; on 127.0.0.1 when namespaces
//! cannot be made, or with `SOFTLINE_BENCH_NO_NETNS` set), which applies
//! the seeded per-packet loss and 10–50 ms delay to RTP; the receiver is a
//! headless Softline (`output = "file:…"`, clocked like a sound card) or
//! baresip 1.0 (`pulse` player on a private PulseAudio null sink recorded
//! with `parec`; its `sndfile` dump of what it decoded is scored too) or
//! linphonec 5.1 (file sound mode, its file recorder; see [`linphone`]).
//! All calls of one (codec, loss) cell, every seed and every receiver, run
//! at the same moment, each with its own sender and relay.
//!
//! Options: `--seeds N` (3), `--codecs pcmu,g722,opus`, `--receivers
//! softline,baresip,linphone`, `--no-doc` (do not rewrite docs/benchmarks.md),
//! `--no-red` (Softlines neither offer nor accept RFC 2198 redundancy:
//! `[media] opus_red = false`, for before/after comparisons), `--conditions
//! clean,loss00,loss05,loss10,burst05` (some only; the doc is then left as it
//! is). `SOFTLINE_BENCH_MEDIA` adds its text to every Softline's `[media]`
//! section (e.g. `jitter_min_ms = 60`), for experiments.

// A real-time harness around real processes, not the sans-IO product: it
// reads the clock and sleeps.
#![allow(clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::impair::{Impairment, Relay};
use crate::netns::{self, CallNet};
use crate::{Result, cargo, deps, status};
use pulse_dl::private_server;

mod linphone;
use linphone::Linphone;

const SPEECH: &str = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue \
background. It is easy to tell the depth of a well.";
/// A network condition: the relay's impairment apart from the seed.
#[derive(Debug, Clone, Copy)]
struct Condition {
    label: &'static str,
    /// Short name for run directories.
    tag: &'static str,
    loss: f64,
    burst: f64,
    delay_min_ms: u32,
    delay_max_ms: u32,
}

const CONDITIONS: [Condition; 5] = [
    Condition {
        label: "none, no jitter",
        tag: "clean",
        loss: 0.0,
        burst: 1.0,
        delay_min_ms: 0,
        delay_max_ms: 0,
    },
    Condition {
        label: "0 %",
        tag: "loss00",
        loss: 0.0,
        burst: 1.0,
        delay_min_ms: 10,
        delay_max_ms: 50,
    },
    Condition {
        label: "5 %",
        tag: "loss05",
        loss: 0.05,
        burst: 1.0,
        delay_min_ms: 10,
        delay_max_ms: 50,
    },
    Condition {
        label: "10 %",
        tag: "loss10",
        loss: 0.10,
        burst: 1.0,
        delay_min_ms: 10,
        delay_max_ms: 50,
    },
    Condition {
        label: "5 % in bursts (mean 3 packets)",
        tag: "burst05",
        loss: 0.05,
        burst: 3.0,
        delay_min_ms: 10,
        delay_max_ms: 50,
    },
];
const BARESIP: &str = "/usr/bin/baresip";
/// Silence before the speech in the sender's file.
const LEAD_IN_SECS: f64 = 2.5;
const BARESIP_MODULES: &str = "/usr/lib/baresip/modules";
const DOC_BEGIN: &str = "<!-- bench-audio-quality: begin (written by cargo xtask bench audio) -->";
const DOC_END: &str = "<!-- bench-audio-quality: end -->";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Pcmu,
    G722,
    Opus,
}

impl Codec {
    fn softline(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::G722 => "G722",
            Codec::Opus => "opus",
        }
    }
    fn baresip(self) -> (&'static str, u32, u16) {
        match self {
            Codec::Pcmu => ("pcmu", 8000, 1),
            Codec::G722 => ("g722", 16000, 1),
            Codec::Opus => ("opus/48000/2", 48000, 2),
        }
    }
    /// Reference rate and PESQ mode.
    fn pesq(self) -> (u32, &'static str) {
        match self {
            Codec::Pcmu => (8000, "nb"),
            Codec::G722 | Codec::Opus => (16000, "wb"),
        }
    }
    fn label(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU (P.862 NB)",
            Codec::G722 => "G.722 (P.862.2 WB)",
            Codec::Opus => "Opus (P.862.2 WB)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Receiver {
    Softline,
    /// Softline on the default sound device, which with `PULSE_SERVER` set
    /// is its own PulseAudio stream (`src/audio/pulse.rs`): a null sink of
    /// the private PulseAudio server, its monitor as the microphone (so the
    /// echo canceller has an echo to cancel), recorded with `parec` like
    /// baresip. Echo cancellation and noise suppression run as on an
    /// agent's PC; the playout goes through the device rings and the
    /// resamplers.
    SoftlineDevice,
    Baresip,
    Linphone,
}

impl Receiver {
    fn name(self) -> &'static str {
        match self {
            Receiver::Softline => "Softline",
            Receiver::SoftlineDevice => "Softline, sound device (AEC3 + NS on)",
            Receiver::Baresip => "baresip 1.0",
            Receiver::Linphone => "linphonec 5.1",
        }
    }
    fn tag(self) -> &'static str {
        match self {
            Receiver::Softline => "softline",
            Receiver::SoftlineDevice => "softline-device",
            Receiver::Baresip => "baresip",
            Receiver::Linphone => "linphone",
        }
    }
    fn is_reference(self) -> bool {
        matches!(self, Receiver::Baresip | Receiver::Linphone)
    }
}

struct Setup {
    work: PathBuf,
    softline: PathBuf,
    python: PathBuf,
    score_py: PathBuf,
    speech_secs: f64,
    /// A private PulseAudio server: baresip plays to a null sink of its
    /// own, recorded with `parec` (its real playout, clocked by the sink).
    pulse: Option<Pulse>,
    /// Each call's two phones run in network namespaces of their own
    /// (`crate::netns`); otherwise all on 127.0.0.1.
    netns: bool,
}

struct Pulse {
    child: Child,
    /// `PULSE_SERVER` value.
    server: String,
}

impl Pulse {
    fn start(dir: &Path) -> std::result::Result<Pulse, String> {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir.join("state")).map_err(|e| e.to_string())?;
        let server = private_server::address(dir);
        let log = fs::File::create(dir.join("pulseaudio.log")).map_err(|e| e.to_string())?;
        let child = private_server::command(dir, &["sink_name=idle"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting pulseaudio: {e}"))?;
        let mut p = Pulse { child, server };
        let t0 = Instant::now();
        while p.pactl(&["info"]).is_err() {
            if t0.elapsed() > Duration::from_secs(10) || p.child.try_wait().ok().flatten().is_some()
            {
                return Err(format!(
                    "pulseaudio did not start (log: {})",
                    dir.join("pulseaudio.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(p)
    }

    fn pactl(&self, args: &[&str]) -> std::result::Result<String, String> {
        run_out(
            Command::new("pactl")
                .args(args)
                .env("PULSE_SERVER", &self.server),
        )
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Setup {
    fn speech(&self, rate: u32) -> PathBuf {
        self.work.join(format!("speech-{rate}.wav"))
    }
}

/// One receiver's result for one (codec, loss, seed).
#[derive(Debug, Clone, Default)]
struct Outcome {
    pesq: Option<f64>,
    /// baresip: the score of what its decoder produced (`sndfile` dump).
    pesq_dump: Option<f64>,
    /// Mean of the jitter-buffer delays sampled during the call (Softline).
    jb_ms: Option<f64>,
    concealed: Option<u64>,
    /// Of those, rebuilt from Opus in-band FEC (Softline).
    fec: Option<u64>,
    /// Lost packets played from their RFC 2198 copy (Softline with RED).
    red: Option<u64>,
    /// Jitter-buffer frames inserted and skipped (Softline).
    steering: Option<(u64, u64)>,
    /// Mean RTP bitrate sender → receiver (UDP payload, kbit/s).
    kbps: Option<f64>,
    cpu_s: Option<f64>,
    rss_mib: Option<f64>,
    dropped: u64,
    sent: u64,
    note: String,
}

pub fn bench_quality(args: &[String]) -> Result {
    let mut seeds = 3u64;
    let mut codecs = vec![Codec::Pcmu, Codec::G722, Codec::Opus];
    let mut receivers = vec![
        Receiver::Softline,
        Receiver::SoftlineDevice,
        Receiver::Baresip,
        Receiver::Linphone,
    ];
    let mut write_doc = true;
    let mut it = args.iter();
    let mut red = true;
    let mut conditions: Vec<Condition> = CONDITIONS.to_vec();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seeds" => {
                seeds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--seeds needs a number")?;
            }
            "--codecs" => {
                let list = it.next().ok_or("--codecs needs a list")?;
                codecs = list
                    .split(',')
                    .map(|c| match c.to_ascii_lowercase().as_str() {
                        "pcmu" => Ok(Codec::Pcmu),
                        "g722" => Ok(Codec::G722),
                        "opus" => Ok(Codec::Opus),
                        o => Err(format!("unknown codec {o:?} (pcmu, g722, opus)")),
                    })
                    .collect::<std::result::Result<_, _>>()?;
            }
            "--receivers" => {
                let list = it.next().ok_or("--receivers needs a list")?;
                receivers = list
                    .split(',')
                    .map(|c| match c {
                        "softline" => Ok(Receiver::Softline),
                        "softline-device" => Ok(Receiver::SoftlineDevice),
                        "baresip" => Ok(Receiver::Baresip),
                        "linphone" | "linphonec" => Ok(Receiver::Linphone),
                        o => Err(format!(
                            "unknown receiver {o:?} (softline, softline-device, baresip, linphone)"
                        )),
                    })
                    .collect::<std::result::Result<_, _>>()?;
            }
            "--conditions" => {
                let list = it.next().ok_or("--conditions needs a list")?;
                conditions = list
                    .split(',')
                    .map(|t| {
                        CONDITIONS
                            .iter()
                            .copied()
                            .find(|c| c.tag == t)
                            .ok_or_else(|| {
                                let tags: Vec<_> = CONDITIONS.iter().map(|c| c.tag).collect();
                                format!("unknown condition {t:?} ({})", tags.join(", "))
                            })
                    })
                    .collect::<std::result::Result<_, _>>()?;
            }
            "--no-doc" => write_doc = false,
            "--no-red" => red = false,
            o => return Err(format!("unknown option {o:?}")),
        }
    }
    if conditions.len() != CONDITIONS.len() && write_doc {
        eprintln!("bench audio: only some conditions run, docs/benchmarks.md is left as it is");
        write_doc = false;
    }
    let started = Instant::now();
    let setup = prepare()?;
    eprintln!(
        "bench audio: speech {:.1} s; {} codecs × {} conditions × {seeds} seeds, receivers side by side",
        setup.speech_secs,
        codecs.len(),
        conditions.len()
    );
    // results[codec][condition][receiver] = outcomes over seeds
    let mut results: Vec<Vec<Vec<Vec<Outcome>>>> =
        vec![vec![vec![Vec::new(); receivers.len()]; conditions.len()]; codecs.len()];
    let mut run_index = 0u16;
    for (ci, &codec) in codecs.iter().enumerate() {
        for (li, &cond) in conditions.iter().enumerate() {
            // Every seed and receiver of a cell at the same moment: each
            // call has its own sender, relay and ports.
            let jobs: Vec<(u64, usize)> = (1..=seeds)
                .flat_map(|seed| (0..receivers.len()).map(move |ri| (seed, ri)))
                .collect();
            let outcomes: Vec<Outcome> = std::thread::scope(|s| {
                let handles: Vec<_> = jobs
                    .iter()
                    .enumerate()
                    .map(|(j, &(seed, ri))| {
                        let imp = Impairment {
                            seed,
                            loss: cond.loss,
                            burst: cond.burst,
                            delay_min_ms: cond.delay_min_ms,
                            delay_max_ms: cond.delay_max_ms,
                        };
                        let slot = run_index.wrapping_mul(16).wrapping_add(j as u16);
                        let (setup, rx) = (&setup, receivers[ri]);
                        s.spawn(move || run_once(setup, codec, rx, cond.tag, imp, slot, red))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| Outcome {
                            note: "run panicked".into(),
                            ..Outcome::default()
                        })
                    })
                    .collect()
            });
            run_index = run_index.wrapping_add(1);
            for (&(seed, ri), o) in jobs.iter().zip(outcomes) {
                eprintln!(
                    "  {:<6} {:<7} seed {seed}  {:<11} PESQ {}  jb {}  dropped {}/{}{}{}{}{} {}",
                    codec.softline(),
                    cond.tag,
                    receivers[ri].name(),
                    o.pesq.map_or("—".into(), |p| format!("{p:.2}")),
                    o.jb_ms.map_or("—".into(), |j| format!("{j:.0} ms")),
                    o.dropped,
                    o.sent,
                    match (o.concealed, o.fec) {
                        (Some(c), Some(f)) if f > 0 => format!(" (concealed {c}, FEC {f})"),
                        _ => String::new(),
                    },
                    o.red
                        .filter(|r| *r > 0)
                        .map_or(String::new(), |r| format!(" RED {r}")),
                    o.steering
                        .filter(|s| *s != (0, 0))
                        .map_or(String::new(), |(i, d)| format!(" +{i}/-{d} frames")),
                    o.kbps.map_or(String::new(), |k| format!("  {k:.1} kbit/s")),
                    o.note
                );
                results[ci][li][ri].push(o);
            }
        }
    }
    let table = render(&codecs, &conditions, &receivers, &results, seeds);
    let call_secs = LEAD_IN_SECS + setup.speech_secs + 1.0;
    let table = format!(
        "{table}\n{}",
        targets(&codecs, &conditions, red, &receivers, &results, call_secs)
    );
    println!("\n{table}");
    eprintln!(
        "bench audio: quality comparison took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if write_doc {
        write_section(&table, &setup, seeds, started.elapsed())?;
    }
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
}

fn run_out(cmd: &mut Command) -> std::result::Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Packages, the release phone, the reference speech, the PESQ venv.
fn prepare() -> std::result::Result<Setup, String> {
    deps(&[
        "espeak-ng",
        "sox",
        "baresip-core",
        "python3-venv",
        "python3-dev",
        "pulseaudio",
        "pulseaudio-utils",
        "linphone-cli",
        // `ip netns`, `ip link` for the phones' network namespaces.
        "iproute2",
    ])?;
    let work = target_dir().join("bench-audio");
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    // The phone under test: a release build, copied so that other builds
    // sharing the target directory cannot swap it during the run.
    status(cargo().args(["build", "--release", "--bin", "softline"]))?;
    let built = target_dir().join("release/softline");
    let softline = work.join("softline");
    fs::copy(&built, &softline).map_err(|e| format!("copy {}: {e}", built.display()))?;

    // Reference speech: espeak-ng, normalised to a -10 dBFS peak (below the
    // playout limiter's ceiling), 0.3 s of silence before and 0.5 s after.
    let raw = work.join("speech-raw.wav");
    status(
        Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "150", "-w"])
            .arg(&raw)
            .arg(SPEECH),
    )?;
    for rate in [8000u32, 16000] {
        status(
            Command::new("sox")
                .arg(&raw)
                .args(["-r", &rate.to_string(), "-c", "1", "-b", "16"])
                .arg(work.join(format!("speech-{rate}.wav")))
                .args(["norm", "-10", "pad", "0.3", "0.5"]),
        )?;
        // What the sender plays: the same after LEAD_IN_SECS of silence,
        // so that a receiver's start-up (baresip's PulseAudio stream takes
        // about 1.5 s to start here, dropping what arrives meanwhile) falls
        // before the speech.
        status(
            Command::new("sox")
                .arg(work.join(format!("speech-{rate}.wav")))
                .arg(work.join(format!("send-{rate}.wav")))
                .args(["pad", &LEAD_IN_SECS.to_string(), "0"]),
        )?;
    }
    let secs = run_out(
        Command::new("soxi")
            .arg("-D")
            .arg(work.join("speech-8000.wav")),
    )?;
    let speech_secs: f64 = secs.trim().parse().map_err(|e| format!("soxi: {e}"))?;

    // PESQ from PyPI in a venv under target/.
    let venv = work.join("venv");
    let python = venv.join("bin/python");
    let have_pesq = Command::new(&python)
        .args(["-c", "import pesq, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_pesq {
        status(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        status(Command::new(venv.join("bin/pip")).args(["install", "-q", "numpy", "pesq"]))?;
    }
    let score_py = work.join("pesq_score.py");
    fs::write(&score_py, include_str!("pesq_score.py")).map_err(|e| e.to_string())?;
    let pulse = match Pulse::start(&work.join("pulse")) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("bench audio: {e}; baresip will be scored from its decoder dump only");
            None
        }
    };
    // Namespaces unless told not to (or not root).
    let netns = std::env::var_os("SOFTLINE_BENCH_NO_NETNS").is_none() && netns::available();
    if netns {
        netns::clean_stale();
        println!("bench audio: each phone in a network namespace of its own");
    } else {
        println!("bench audio: network namespaces unavailable: all phones on 127.0.0.1");
    }
    Ok(Setup {
        work,
        softline,
        python,
        score_py,
        speech_secs,
        pulse,
        netns,
    })
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// One call: the sender, the relay, one receiver; the receiver's score.
fn run_once(
    setup: &Setup,
    codec: Codec,
    rx: Receiver,
    cond: &str,
    imp: Impairment,
    slot: u16,
    red: bool,
) -> Outcome {
    let tag = format!(
        "{}-{}-{cond}-seed{}",
        rx.tag(),
        codec.softline().to_ascii_lowercase(),
        imp.seed
    );
    let dir = setup.work.join("runs").join(&tag);
    let _ = fs::remove_dir_all(&dir);
    if let Err(e) = fs::create_dir_all(&dir) {
        return Outcome {
            note: format!("{}: {e}", dir.display()),
            ..Outcome::default()
        };
    }
    match call(setup, codec, rx, imp, slot, &dir, red) {
        Ok(o) => o,
        Err(e) => {
            let _ = fs::write(dir.join("error.txt"), &e);
            Outcome {
                note: format!("FAILED: {}", e.lines().next().unwrap_or("")),
                ..Outcome::default()
            }
        }
    }
}

fn call(
    setup: &Setup,
    codec: Codec,
    rx: Receiver,
    imp: Impairment,
    slot: u16,
    dir: &Path,
    red: bool,
) -> std::result::Result<Outcome, String> {
    let rtp_base = 30000 + (slot % 500) * 20;
    let (ref_rate, mode) = codec.pesq();
    let mut out = Outcome::default();
    // Declared first, dropped last: after every process in them is gone.
    let net = if setup.netns {
        Some(CallNet::create(slot).map_err(|e| format!("network namespaces: {e}"))?)
    } else {
        None
    };
    let local = Ipv4Addr::LOCALHOST;
    let (tx_ns, tx_ip, tx_gw) = net.as_ref().map_or((None, local, local), |n| {
        (Some(n.tx.ns.as_str()), n.tx.ip, n.tx.gw)
    });
    let (rx_ns, rx_ip, rx_gw) = net.as_ref().map_or((None, local, local), |n| {
        (Some(n.rx.ns.as_str()), n.rx.ip, n.rx.gw)
    });

    // The receiver, on a port just seen free; another process of the run
    // can take it before the receiver binds it, so a start that finds it
    // in use is tried again on another.
    let played = dir.join("played.wav");
    let start_receiver = |rx_port: u16| -> std::result::Result<Box<dyn Peer>, String> {
        Ok(match rx {
            Receiver::Softline => Box::new(Softline::start(
                setup,
                rx_ns,
                &dir.join("rx"),
                &softline_config(
                    rx_ip,
                    rx_port,
                    codec,
                    "null",
                    &format!("file:{}", played.display()),
                    rtp_base,
                    red,
                    false,
                ),
                &[],
            )?),
            Receiver::SoftlineDevice => {
                let pulse = setup
                    .pulse
                    .as_ref()
                    .ok_or("the sound-device receiver needs PulseAudio, which did not start")?;
                let sink = PulseSink::open(pulse, slot, ref_rate, &dir.join("rx"))?;
                let env = sink.client_env();
                let phone = Softline::start(
                    setup,
                    rx_ns,
                    &dir.join("rx"),
                    &softline_config(
                        rx_ip, rx_port, codec, "default", "default", rtp_base, red, false,
                    ),
                    &env,
                )?;
                Box::new(SoftlineOnDevice { phone, sink })
            }
            Receiver::Baresip => Box::new(Baresip::start(
                rx_ns,
                &dir.join("rx"),
                rx_ip,
                rx_port,
                codec,
                rtp_base,
                setup.pulse.as_ref().map(|p| (p, slot)),
            )?),
            Receiver::Linphone => Box::new(Linphone::start(
                rx_ns,
                &dir.join("rx"),
                rx_ip,
                rx_port,
                codec,
                rtp_base,
            )?),
        })
    };
    let (rx_port, mut receiver) = {
        let mut attempt = 1;
        loop {
            let port = free_udp_port();
            match start_receiver(port) {
                Ok(r) => break (port, r),
                Err(e) if attempt < 3 && e.contains("Address already in use") => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    };
    let relay = Relay::start(
        SocketAddr::from((rx_ip, rx_port)),
        imp,
        41000 + (slot % 500) * 8,
        tx_gw,
        rx_gw,
    )
    .map_err(|e| format!("relay: {e}"))?;
    let sender = Softline::start(
        setup,
        tx_ns,
        &dir.join("tx"),
        &softline_config(
            tx_ip,
            free_udp_port(),
            codec,
            &format!(
                "file:{}",
                setup.work.join(format!("send-{ref_rate}.wav")).display()
            ),
            "null",
            rtp_base + 10,
            red,
            true,
        ),
        &[],
    )?;
    sender.ctl(&format!(
        "{{\"cmd\":\"call\",\"target\":\"sip:bench@{}\"}}",
        relay.sip_addr
    ))?;
    receiver.answer()?;
    sender.wait_status(
        |s| s.contains("\"state\":\"connected\""),
        Duration::from_secs(5),
    )?;

    // The call: the whole speech plus a second; the receiver's jitter
    // buffer sampled every 500 ms.
    let t0 = Instant::now();
    let length = Duration::from_secs_f64(LEAD_IN_SECS + setup.speech_secs + 1.0);
    let (mut jb, mut target) = (Vec::new(), Vec::new());
    while t0.elapsed() < length {
        std::thread::sleep(Duration::from_millis(500));
        if let Some(v) = receiver.jitter_buffer_ms() {
            jb.push(v);
        }
        if let Some(v) = receiver.jitter_target_ms() {
            target.push(v);
        }
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    out.jb_ms = mean(&jb);
    if let Some(t) = mean(&target) {
        let _ = write!(out.note, "JB target {t:.0} ms; ");
    }
    out.concealed = receiver.concealed();
    out.fec = receiver.fec_recovered();
    out.red = receiver.red_recovered();
    out.steering = receiver.steering();
    if let Some(note) = receiver.device_note() {
        let _ = write!(out.note, "{note}; ");
    }
    let bytes = relay.stats.rtp_forward_bytes.load(Ordering::Relaxed);
    out.kbps = Some(bytes as f64 * 8.0 / t0.elapsed().as_secs_f64() / 1000.0);
    if let Some((cpu, rss)) = proc_usage(receiver.pid()) {
        out.cpu_s = Some(cpu);
        out.rss_mib = Some(rss);
    }
    sender.ctl("{\"cmd\":\"hangup\"}")?;
    receiver.wait_ended()?;
    if out.jb_ms.is_none() {
        out.jb_ms = receiver.jitter_buffer_mean_ms();
    }
    std::thread::sleep(Duration::from_millis(300));
    out.sent = relay.stats.rtp_forward.load(Ordering::Relaxed);
    out.dropped = relay.stats.dropped_forward.load(Ordering::Relaxed);
    drop(sender);
    let deg = receiver.played(&played)?;
    let dump = receiver.decoder_dump();
    drop(receiver);
    drop(relay);

    let score = |deg: &Path, name: &str| -> std::result::Result<String, String> {
        let scored = run_out(
            Command::new(&setup.python)
                .arg(&setup.score_py)
                .arg(setup.speech(ref_rate))
                .arg(deg)
                .arg(mode),
        )?;
        let _ = fs::write(dir.join(name), &scored);
        Ok(scored)
    };
    let scored = score(&deg, "score.txt")?;
    out.pesq = field(&scored, "pesq=");
    if let Some(off) = field(&scored, "offset_ms=") {
        let _ = write!(out.note, "offset {off:.0} ms");
    }
    if let Some(dump) = dump {
        let scored = score(&dump, "score-dump.txt")?;
        out.pesq_dump = field(&scored, "pesq=");
        let _ = write!(
            out.note,
            "; decoder dump PESQ {}",
            out.pesq_dump.map_or("—".into(), |p| format!("{p:.2}"))
        );
    }
    Ok(out)
}

fn field(text: &str, key: &str) -> Option<f64> {
    let rest = &text[text.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// CPU seconds (user + system) and peak RSS (VmHWM) of a live process.
fn proc_usage(pid: u32) -> Option<(f64, f64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line, in clock ticks (100 Hz).
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((ticks / 100.0, hwm_kib / 1024.0))
}

/// A headless Softline's config. `raw_mic`: the sender's file input goes out
/// as it is, without echo cancellation and noise suppression, so that what
/// is sent is exactly the PESQ reference and a score measures the link and
/// the receiver only (with them on, the suppressor reshapes the clean speech
/// a little, which costs every receiver about 0.05 on a clean link and
/// interacts with loss: PCMU 5 % scored 3.14 instead of 3.28).
#[allow(clippy::too_many_arguments)]
fn softline_config(
    ip: Ipv4Addr,
    port: u16,
    codec: Codec,
    input: &str,
    output: &str,
    rtp: u16,
    red: bool,
    raw_mic: bool,
) -> String {
    let processing = if raw_mic {
        "echo_cancellation = false\nnoise_suppression = false\n"
    } else {
        ""
    };
    // Extra `[media]` lines for experiments (e.g. `jitter_min_ms = 60`).
    let extra = std::env::var("SOFTLINE_BENCH_MEDIA").unwrap_or_default();
    format!(
        "[sip]\nlisten_udp = \"{ip}:{port}\"\n\n[audio]\ninput = \"{input}\"\noutput = \"{output}\"\n{processing}\n[media]\ncodecs = [\"{}\"]\nrtp_port_min = {rtp}\nrtp_port_max = {}\nopus_red = {red}\n{extra}\n",
        codec.softline(),
        rtp + 9
    )
}

/// A receiving phone under test.
trait Peer: Send {
    /// Answer the incoming call (or check that it was auto-answered).
    fn answer(&mut self) -> std::result::Result<(), String>;
    fn jitter_buffer_ms(&mut self) -> Option<f64>;
    /// The delay its jitter buffer steers to, when it says.
    fn jitter_target_ms(&mut self) -> Option<f64> {
        None
    }
    /// The mean jitter-buffer delay of the call, for a receiver that
    /// cannot be sampled while it runs (read after the call).
    fn jitter_buffer_mean_ms(&mut self) -> Option<f64> {
        None
    }
    fn concealed(&mut self) -> Option<u64>;
    /// Concealed frames rebuilt from in-band FEC, when the receiver says.
    fn fec_recovered(&mut self) -> Option<u64> {
        None
    }
    /// Lost packets played from an RFC 2198 copy, when the receiver says.
    fn red_recovered(&mut self) -> Option<u64> {
        None
    }
    /// Frames its jitter buffer inserted and skipped, when it says.
    fn steering(&mut self) -> Option<(u64, u64)> {
        None
    }
    /// Its sound-device bridges' counters, when it has any.
    fn device_note(&mut self) -> Option<String> {
        None
    }
    fn pid(&self) -> u32;
    fn wait_ended(&mut self) -> std::result::Result<(), String>;
    /// The file holding what it played out.
    fn played(&mut self, softline_file: &Path) -> std::result::Result<PathBuf, String>;
    /// What its decoder produced, when that is a separate file.
    fn decoder_dump(&mut self) -> Option<PathBuf> {
        None
    }
}

struct Softline {
    child: Child,
    sock: PathBuf,
}

impl Softline {
    /// `env`: extra environment (the sound-device receiver's PulseAudio).
    fn start(
        setup: &Setup,
        ns: Option<&str>,
        dir: &Path,
        config: &str,
        env: &[(&str, String)],
    ) -> std::result::Result<Softline, String> {
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let cfg = dir.join("softline.toml");
        fs::write(&cfg, config).map_err(|e| e.to_string())?;
        let sock = dir.join("ctl.sock");
        let log = fs::File::create(dir.join("stderr.log")).map_err(|e| e.to_string())?;
        let child = netns::command(ns, &setup.softline)
            .arg("--headless")
            .arg("--config")
            .arg(&cfg)
            .arg("--ctl-socket")
            .arg(&sock)
            .env("XDG_RUNTIME_DIR", dir)
            .env("XDG_STATE_HOME", dir)
            .env("XDG_CONFIG_HOME", dir)
            .env("XDG_DATA_HOME", dir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting softline: {e}"))?;
        let mut phone = Softline { child, sock };
        let t0 = Instant::now();
        while phone.ctl("{\"cmd\":\"status\"}").is_err() {
            if let Ok(Some(status)) = phone.child.try_wait() {
                let said = fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                return Err(format!(
                    "softline in {} exited at start ({status}): {}",
                    dir.display(),
                    said.lines().last().unwrap_or("")
                ));
            }
            if t0.elapsed() > Duration::from_secs(10) {
                return Err(format!("softline in {} did not start", dir.display()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(phone)
    }

    /// One control request; the reply line (an error unless `"ok":true`).
    fn ctl(&self, request: &str) -> std::result::Result<String, String> {
        let stream = UnixStream::connect(&self.sock).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        (&stream)
            .write_all(format!("{request}\n").as_bytes())
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(&stream)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        if line.contains("\"ok\":true") {
            Ok(line)
        } else {
            Err(format!("softline ctl {request}: {}", line.trim()))
        }
    }

    fn wait_status(
        &self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> std::result::Result<String, String> {
        let t0 = Instant::now();
        let mut last = String::new();
        while t0.elapsed() < timeout {
            if let Ok(s) = self.ctl("{\"cmd\":\"status\"}") {
                if pred(&s) {
                    return Ok(s);
                }
                last = s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("softline status never matched: {}", last.trim()))
    }

    fn media_field(&self, key: &str) -> Option<f64> {
        let s = self.ctl("{\"cmd\":\"status\"}").ok()?;
        field(&s, &format!("\"{key}\":"))
    }
}

impl Drop for Softline {
    fn drop(&mut self) {
        let _ = self.ctl("{\"cmd\":\"shutdown\"}");
        reap(&mut self.child);
    }
}

/// Give a process asked to quit 3 s to exit, then kill it; reap it either way.
fn reap(child: &mut Child) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Peer for Softline {
    fn answer(&mut self) -> std::result::Result<(), String> {
        self.wait_status(
            |s| s.contains("\"state\":\"ringing\""),
            Duration::from_secs(5),
        )?;
        self.ctl("{\"cmd\":\"answer\"}").map(|_| ())
    }
    fn jitter_buffer_ms(&mut self) -> Option<f64> {
        self.media_field("jitter_buffer_ms")
    }
    fn jitter_target_ms(&mut self) -> Option<f64> {
        self.media_field("jitter_target_ms")
    }
    fn concealed(&mut self) -> Option<u64> {
        self.media_field("concealed_frames").map(|v| v as u64)
    }
    fn fec_recovered(&mut self) -> Option<u64> {
        self.media_field("fec_recovered").map(|v| v as u64)
    }
    fn red_recovered(&mut self) -> Option<u64> {
        self.media_field("red_recovered").map(|v| v as u64)
    }
    fn steering(&mut self) -> Option<(u64, u64)> {
        Some((
            self.media_field("inserted_frames")? as u64,
            self.media_field("dropped_frames")? as u64,
        ))
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn wait_ended(&mut self) -> std::result::Result<(), String> {
        self.wait_status(
            |s| s.contains("\"state\":\"ended\""),
            Duration::from_secs(5),
        )
        .map(|_| ())
    }
    fn played(&mut self, softline_file: &Path) -> std::result::Result<PathBuf, String> {
        Ok(softline_file.to_owned())
    }
}

/// A null sink of its own on the private PulseAudio server, at the rate PESQ
/// wants, one channel, with `parec` recording its monitor: a receiver's real
/// playout, clocked by the sink.
struct PulseSink {
    name: String,
    module: String,
    server: String,
    parec: Option<Child>,
    file: PathBuf,
}

impl PulseSink {
    fn open(
        pulse: &Pulse,
        slot: u16,
        rate: u32,
        dir: &Path,
    ) -> std::result::Result<PulseSink, String> {
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let name = format!("bench{slot}");
        let module = pulse
            .pactl(&[
                "load-module",
                "module-null-sink",
                &format!("sink_name={name}"),
                &format!("rate={rate}"),
                "channels=1",
            ])?
            .trim()
            .to_owned();
        let file = dir.join("played.wav");
        let mut sink = PulseSink {
            name,
            module,
            server: pulse.server.clone(),
            parec: None,
            file,
        };
        let rec = Command::new("parec")
            .arg("-d")
            .arg(format!("{}.monitor", sink.name))
            .arg(format!("--rate={rate}"))
            .args([
                "--channels=1",
                "--format=s16le",
                "--file-format=wav",
                "--latency-msec=20",
            ])
            .arg(&sink.file)
            .env("PULSE_SERVER", &sink.server)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("parec.log")).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("starting parec: {e}"))?;
        sink.parec = Some(rec);
        Ok(sink)
    }

    /// For a client that plays to the sink and records its monitor (ALSA's
    /// `pulse` plugin and libpulse read these).
    fn client_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PULSE_SERVER", self.server.clone()),
            ("PULSE_SINK", self.name.clone()),
            ("PULSE_SOURCE", format!("{}.monitor", self.name)),
        ]
    }

    /// Stop `parec` with SIGINT so that it finishes its WAV header; the
    /// recording.
    fn finish(&mut self) -> PathBuf {
        if let Some(mut rec) = self.parec.take() {
            let _ = Command::new("kill")
                .args(["-INT", &rec.id().to_string()])
                .status();
            reap(&mut rec);
        }
        self.file.clone()
    }
}

impl Drop for PulseSink {
    fn drop(&mut self) {
        self.finish();
        let _ = Command::new("pactl")
            .args(["unload-module", &self.module])
            .env("PULSE_SERVER", &self.server)
            .output();
    }
}

/// Softline playing to and recording from the default sound device, which
/// is a [`PulseSink`].
struct SoftlineOnDevice {
    phone: Softline,
    sink: PulseSink,
}

impl Peer for SoftlineOnDevice {
    fn answer(&mut self) -> std::result::Result<(), String> {
        self.phone.answer()
    }
    fn jitter_buffer_ms(&mut self) -> Option<f64> {
        self.phone.jitter_buffer_ms()
    }
    fn jitter_target_ms(&mut self) -> Option<f64> {
        self.phone.jitter_target_ms()
    }
    fn concealed(&mut self) -> Option<u64> {
        self.phone.concealed()
    }
    fn fec_recovered(&mut self) -> Option<u64> {
        self.phone.fec_recovered()
    }
    fn red_recovered(&mut self) -> Option<u64> {
        self.phone.red_recovered()
    }
    fn steering(&mut self) -> Option<(u64, u64)> {
        self.phone.steering()
    }
    fn device_note(&mut self) -> Option<String> {
        let s = self.phone.ctl("{\"cmd\":\"status\"}").ok()?;
        let side = |key: &str| -> Option<String> {
            let rest = &s[s.find(&format!("\"{key}\":{{"))?..];
            let obj = &rest[..=rest.find('}')?];
            let n = |k: &str| field(obj, &format!("\"{k}\":")).unwrap_or(0.0);
            Some(format!(
                "{key} underrun {} overrun {} skipped {} repeated {} padded {}",
                n("underrun_samples"),
                n("overrun_samples"),
                n("skipped"),
                n("repeated"),
                n("padded_samples")
            ))
        };
        Some(format!(
            "{}, {}",
            side("mic_device")?,
            side("speaker_device")?
        ))
    }
    fn pid(&self) -> u32 {
        self.phone.pid()
    }
    fn wait_ended(&mut self) -> std::result::Result<(), String> {
        self.phone.wait_ended()
    }
    fn played(&mut self, _: &Path) -> std::result::Result<PathBuf, String> {
        Ok(self.sink.finish())
    }
}

/// baresip 1.0 answering automatically, playing to ALSA's `null` device;
/// the `sndfile` module writes what it decoded to `snd/*-dec.wav`.
struct Baresip {
    child: Child,
    dir: PathBuf,
    /// With PulseAudio: the sink it plays to, recorded.
    sink: Option<PulseSink>,
}

impl Baresip {
    fn start(
        ns: Option<&str>,
        dir: &Path,
        ip: Ipv4Addr,
        port: u16,
        codec: Codec,
        rtp: u16,
        pulse: Option<(&Pulse, u16)>,
    ) -> std::result::Result<Baresip, String> {
        let (name, rate, channels) = codec.baresip();
        // Its own null sink at the rate PESQ wants (no resampling for
        // PCMU and G.722), one channel.
        let (ref_rate, _) = codec.pesq();
        let sink = match pulse {
            Some((p, slot)) => Some(PulseSink::open(p, slot, ref_rate, dir)?),
            None => None,
        };
        let player = match &sink {
            Some(s) => format!("pulse,{}", s.name),
            None => "aubridge,nil".to_owned(),
        };
        fs::create_dir_all(dir.join("snd")).map_err(|e| e.to_string())?;
        // Its microphone: silence, longer than the call (aufile ends the
        // call at the end of its file).
        let silence = dir.join("silence.wav");
        fs::write(&silence, silent_wav(rate, channels, 30)).map_err(|e| e.to_string())?;
        let config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t{ip}:{port}\n\
             net_interface\t\t{ip}\n\
             call_max_calls\t\t2\n\
             audio_player\t\t{player}\n\
             audio_source\t\taufile,{silence}\n\
             audio_alert\t\taubridge,nil\n\
             rtp_ports\t\t{rtp}-{rtp_end}\n\
             module_path\t\t{BARESIP_MODULES}\n\
             module\t\t\tg711.so\n\
             module\t\t\tg722.so\n\
             module\t\t\topus.so\n\
             module\t\t\tsndfile.so\n\
             module\t\t\tplc.so\n\
             module\t\t\taufile.so\n\
             module\t\t\taubridge.so\n\
             module\t\t\tpulse.so\n\
             module_tmp\t\taccount.so\n\
             module_app\t\tmenu.so\n\
             snd_path\t\t{snd}\n",
            silence = silence.display(),
            rtp_end = rtp + 9,
            snd = dir.join("snd").display(),
        );
        fs::write(dir.join("config"), config).map_err(|e| e.to_string())?;
        fs::write(
            dir.join("accounts"),
            format!("<sip:bench@{ip}>;answermode=auto;audio_codecs={name};regint=0\n"),
        )
        .map_err(|e| e.to_string())?;
        let log = fs::File::create(dir.join("baresip.log")).map_err(|e| e.to_string())?;
        let mut cmd = netns::command(ns, BARESIP);
        if let Some((p, _)) = pulse {
            // baresip 1.0's pulse player asks for no buffer size, so libpulse
            // gives it a 2 s buffer: the start of the call fills it with
            // silence while its 160 ms receive buffer overflows (1.6 s of
            // speech lost). PULSE_LATENCY_MSEC sets a sound-card-like one.
            cmd.env("PULSE_SERVER", &p.server)
                .env("PULSE_LATENCY_MSEC", "40")
                .env("HOME", dir);
        }
        let child = cmd
            .arg("-f")
            .arg(dir)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {BARESIP}: {e}"))?;
        let b = Baresip {
            child,
            dir: dir.to_owned(),
            sink,
        };
        b.wait_log("baresip is ready", Duration::from_secs(10))?;
        Ok(b)
    }

    fn log(&self) -> String {
        fs::read(self.dir.join("baresip.log"))
            .map(|b| String::from_utf8_lossy(&b).replace('\r', "\n"))
            .unwrap_or_default()
    }

    fn wait_log(&self, needle: &str, timeout: Duration) -> std::result::Result<(), String> {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if self.log().contains(needle) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        Err(format!(
            "baresip never said {needle:?}: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ))
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.as_mut() {
            sink.finish();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer for Baresip {
    fn answer(&mut self) -> std::result::Result<(), String> {
        Ok(()) // answermode=auto
    }
    fn jitter_buffer_ms(&mut self) -> Option<f64> {
        None
    }
    fn concealed(&mut self) -> Option<u64> {
        None
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn wait_ended(&mut self) -> std::result::Result<(), String> {
        self.wait_log(" terminated (duration:", Duration::from_secs(5))
    }
    fn played(&mut self, _: &Path) -> std::result::Result<PathBuf, String> {
        match self.sink.as_mut() {
            Some(sink) => Ok(sink.finish()),
            None => self.dump(),
        }
    }
    fn decoder_dump(&mut self) -> Option<PathBuf> {
        if self.sink.is_some() {
            self.dump().ok()
        } else {
            None
        }
    }
}

impl Baresip {
    fn dump(&self) -> std::result::Result<PathBuf, String> {
        let snd = self.dir.join("snd");
        let mut found: Vec<PathBuf> = fs::read_dir(&snd)
            .map_err(|e| format!("{}: {e}", snd.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        found.sort();
        found
            .pop()
            .ok_or_else(|| format!("baresip wrote no *-dec.wav in {}", snd.display()))
    }
}

/// A 16-bit PCM WAV of silence.
fn silent_wav(rate: u32, channels: u16, secs: u32) -> Vec<u8> {
    wav_bytes(
        rate,
        channels,
        &vec![0; (rate * secs) as usize * usize::from(channels)],
    )
}

/// A 16-bit PCM WAV file's bytes (interleaved samples).
pub(crate) fn wav_bytes(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + data_len as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2 * u32::from(channels)).to_le_bytes());
    b.extend_from_slice(&(2 * channels).to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

fn stats(v: &[f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    // Rounded to 3 decimals so that equal runs print equal mean and range.
    let mean = (v.iter().sum::<f64>() / v.len() as f64 * 1000.0).round() / 1000.0;
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((mean, min, max))
}

fn render(
    codecs: &[Codec],
    conditions: &[Condition],
    receivers: &[Receiver],
    results: &[Vec<Vec<Vec<Outcome>>>],
    seeds: u64,
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| codec | RTP loss (30 ± 20 ms jitter unless said) | receiver | PESQ mean (min – max), {seeds} seeds | jitter buffer | concealed frames | CPU s / call | peak RSS |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|");
    for (ci, codec) in codecs.iter().enumerate() {
        for (li, cond) in conditions.iter().enumerate() {
            for (ri, rx) in receivers.iter().enumerate() {
                let runs = &results[ci][li][ri];
                let pesq: Vec<f64> = runs.iter().filter_map(|o| o.pesq).collect();
                let failed = runs.len() - pesq.len();
                let p = stats(&pesq).map_or("failed".into(), |(m, lo, hi)| {
                    format!("**{m:.2}** ({lo:.2} – {hi:.2})")
                });
                let p = if failed > 0 && !pesq.is_empty() {
                    format!("{p}, {failed} run(s) failed")
                } else {
                    p
                };
                let jb: Vec<f64> = runs.iter().filter_map(|o| o.jb_ms).collect();
                let jb = stats(&jb).map_or(
                    match rx {
                        Receiver::Baresip => "not reported".to_string(),
                        Receiver::Softline | Receiver::SoftlineDevice | Receiver::Linphone => {
                            "—".to_string()
                        }
                    },
                    |(m, _, _)| format!("{m:.0} ms"),
                );
                let conc: Vec<f64> = runs
                    .iter()
                    .filter_map(|o| o.concealed.map(|c| c as f64))
                    .collect();
                let conc = stats(&conc).map_or("—".into(), |(m, _, _)| format!("{m:.0}"));
                let cpu: Vec<f64> = runs.iter().filter_map(|o| o.cpu_s).collect();
                let cpu = stats(&cpu).map_or("—".into(), |(m, _, _)| format!("{m:.2}"));
                let rss: Vec<f64> = runs.iter().filter_map(|o| o.rss_mib).collect();
                let rss = stats(&rss).map_or("—".into(), |(m, _, _)| format!("{m:.1} MiB"));
                let _ = writeln!(
                    t,
                    "| {} | {} | {} | {p} | {jb} | {conc} | {cpu} | {rss} |",
                    codec.label(),
                    cond.label,
                    rx.name()
                );
                let dump: Vec<f64> = runs.iter().filter_map(|o| o.pesq_dump).collect();
                if let Some((m, lo, hi)) = stats(&dump) {
                    let _ = writeln!(
                        t,
                        "| {} | {} | {}, decoder output (`sndfile`) | {m:.2} ({lo:.2} – {hi:.2}) | | | | |",
                        codec.label(),
                        cond.label,
                        rx.name()
                    );
                }
            }
        }
    }
    t
}

/// Mean PESQ of one cell's runs.
fn mean_pesq(runs: &[Outcome]) -> Option<f64> {
    let v: Vec<f64> = runs.iter().filter_map(|o| o.pesq).collect();
    stats(&v).map(|(m, _, _)| m)
}

/// The issue's targets read from this run: Softline against the better
/// reference phone of each cell (the one with the higher mean PESQ there).
fn targets(
    codecs: &[Codec],
    conditions: &[Condition],
    red: bool,
    receivers: &[Receiver],
    results: &[Vec<Vec<Vec<Outcome>>>],
    call_secs: f64,
) -> String {
    let cond = |tag: &str| conditions.iter().position(|c| c.tag == tag);
    let softline = receivers.iter().position(|&r| r == Receiver::Softline);
    let mut rows = Vec::new();
    let met = |ok: bool| if ok { "met" } else { "**not met**" };
    let pcmu = codecs.iter().position(|&c| c == Codec::Pcmu);
    for (tag, label, margin) in [("loss05", "5 %", 0.4), ("loss10", "10 %", 0.3)] {
        let (Some(ci), Some(li), Some(si)) = (pcmu, cond(tag), softline) else {
            continue;
        };
        let ours = mean_pesq(&results[ci][li][si]);
        let best = receivers
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_reference())
            .filter_map(|(ri, r)| Some((mean_pesq(&results[ci][li][ri])?, r.name())))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let (measured, verdict) = match (ours, best) {
            (Some(o), Some((b, name))) => (
                format!("{o:.2} vs {b:.2} ({name}): **{:+.2}**", o - b),
                met(o - b >= margin),
            ),
            _ => ("not measured".to_string(), "—"),
        };
        rows.push(format!(
            "| PCMU at {label} loss ≥ {margin} above the better reference phone | {measured} | {verdict} |"
        ));
    }
    if let (Some(ci), Some(clean), Some(l10), Some(si)) = (
        codecs.iter().position(|&c| c == Codec::Opus),
        cond("clean"),
        cond("loss10"),
        softline,
    ) && let (Some(c), Some(l)) = (
        mean_pesq(&results[ci][clean][si]),
        mean_pesq(&results[ci][l10][si]),
    ) {
        let r = l / c;
        let how = if red {
            "Softline to Softline: RFC 2198 RED as negotiated"
        } else {
            "in-band FEC alone, `--no-red`"
        };
        rows.push(format!(
                "| Opus at 10 % ≥ 85 % of its clean score ({how}) | {l:.2} / {c:.2} = **{:.0} %** | {} |",
                r * 100.0,
                met(r >= 0.85)
            ));
    }
    if let (Some(clean), Some(si)) = (cond("clean"), softline) {
        let jb: Vec<f64> = (0..codecs.len())
            .flat_map(|ci| results[ci][clean][si].iter().filter_map(|o| o.jb_ms))
            .collect();
        if let Some((_, lo, hi)) = stats(&jb) {
            rows.push(format!(
                "| jitter-buffer delay ≤ 40 ms on a clean link | **{lo:.1}–{hi:.1} ms** | {} |",
                met(hi <= 40.0)
            ));
        }
    }
    let device = receivers
        .iter()
        .position(|&r| r == Receiver::SoftlineDevice);
    for (si, how) in [
        (
            softline,
            "file and null audio: no echo cancellation or noise suppression runs",
        ),
        (
            device,
            "on the default sound device through PulseAudio, echo cancellation and noise suppression on",
        ),
    ] {
        let (Some(ci), Some(si)) = (pcmu, si) else {
            continue;
        };
        let runs: Vec<&Outcome> = results[ci].iter().flat_map(|c| c[si].iter()).collect();
        let cpu: Vec<f64> = runs.iter().filter_map(|o| o.cpu_s).collect();
        let rss: Vec<f64> = runs.iter().filter_map(|o| o.rss_mib).collect();
        if let (Some((_, _, cpu)), Some((_, _, rss))) = (stats(&cpu), stats(&rss)) {
            let share = cpu / call_secs * 100.0;
            rows.push(format!(
                "| headless Softline ≤ 1 % of a core per G.711 call ({how}; start-up included) | at most {cpu:.2} CPU s per {call_secs:.0} s call: **≈ {share:.1} %** | {} |",
                met(share <= 1.0)
            ));
            rows.push(format!(
                "| headless Softline ≤ 15 MiB RSS per G.711 call ({how}) | peak RSS at most **{rss:.1} MiB** | {} |",
                met(rss <= 15.0)
            ));
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "Against the issue's targets (this run; \"the better reference phone\" is, per cell, the \
reference receiver with the higher mean PESQ):\n\n| target | measured | |\n|---|---|---|\n{}\n",
        rows.join("\n")
    )
}

fn write_section(
    table: &str,
    setup: &Setup,
    seeds: u64,
    took: Duration,
) -> std::result::Result<(), String> {
    let path = Path::new("docs/benchmarks.md");
    let doc = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let date = run_out(Command::new("date").args(["-u", "+%Y-%m-%d"]))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let section = format!(
        "{DOC_BEGIN}\n## Playout quality against baresip and linphonec — `cargo xtask bench audio`\n\n\
Measured {date} on {cores} vCPU ({cpu}), release build, run by `cargo xtask bench audio` \
({seeds} seeds per cell, {:.0} s in all).\n\n{}\n{table}\n{DOC_END}\n",
        took.as_secs_f64(),
        method_text(setup.speech_secs, setup.netns)
    );
    let new = if let (Some(b), Some(e)) = (doc.find(DOC_BEGIN), doc.find(DOC_END)) {
        format!(
            "{}{section}{}",
            &doc[..b],
            &doc[e + DOC_END.len()..].trim_start_matches('\n')
        )
    } else if let Some(b) = doc.find("## Not measured yet") {
        format!("{}{section}", &doc[..b])
    } else {
        format!("{doc}\n{section}")
    };
    fs::write(path, new).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("bench audio: wrote the table to {}", path.display());
    Ok(())
}

fn method_text(speech_secs: f64, netns: bool) -> String {
    let network = if netns {
        "between two network namespaces the benchmark creates for each call (`xtask/src/netns.rs`: \
sender and receiver each in its own, each joined to the root namespace by a veth pair, no route \
between them) through a userspace UDP relay in xtask on the two veth addresses \
(`xtask/src/impair.rs`), the only way from one namespace to the other"
    } else {
        "by IP on 127.0.0.1 (network namespaces were not available) through a userspace UDP relay \
in xtask (`xtask/src/impair.rs`)"
    };
    format!(
        "How: a headless Softline sends {speech_secs:.1} s of espeak-ng speech (three Harvard \
sentences, peak -10 dBFS, after {LEAD_IN_SECS} s of silence; `[audio] input = \"file:…\"`, 8 kHz \
for PCMU, 16 kHz for G.722/Opus; its echo cancellation and noise suppression off, so that what is \
sent is exactly the scoring reference) and calls the receiver {network}. The relay forwards the \
dialog's SIP messages (each `Contact` pointed at itself) and rewrites each SDP's `c=`, \
`m=audio` and `a=rtcp` to its own address and ports, so RTP and RTCP cross it. The k-th RTP \
packet of each direction is dropped (independently, or in Gilbert-model bursts of mean length 3) \
and otherwise delayed 10–50 ms (uniform, so reordering happens), all drawn from a hash of (seed, \
direction, k): every receiver meets the same packet fate for a seed. SIP and RTCP are never \
dropped. All calls of a cell (every seed and receiver) run at the same moment, each with its \
own sender and relay.\n\n\
Receivers: Softline plays to `[audio] output = \"file:…\"` (written every frame as a sound card \
would take it, concealment included). \"Softline, sound device\" is the same phone on \
`[audio] input = output = \"default\"`, which with a PulseAudio server is Softline's own \
PulseAudio stream (`src/audio/pulse.rs`), to a null sink of the private server recorded with `parec` as for baresip, \
and the sink's monitor as its microphone, so the echo canceller hears its own playout as echo: \
echo cancellation (AEC3) and noise suppression run as on an agent's PC, and playout goes \
through the device ring buffers and resamplers. baresip 1.0.0 (Debian; default jitter buffer \
`jitter_buffer_delay 5-10` frames, `audio_buffer 20-160` ms, its `plc` module loaded) plays \
through its `pulse` module to a null sink of a private PulseAudio server, recorded from the \
sink's monitor with `parec` — its real playout, clocked by the sink (`PULSE_LATENCY_MSEC=40`). \
Its `sndfile` dump of what its decoder produced is scored too (\"decoder output\" rows): that \
dump is written when frames leave the jitter buffer and simply omits packets that never came, \
which PESQ's re-alignment partly forgives, so it is not a playout measure. (Found on the way: \
baresip's PulseAudio stream takes about 1.5 s to start here and its receive buffer drops what \
arrives meanwhile — hence the lead-in silence; with ALSA `null` as player baresip spins a core, \
9 CPU s per 10 s call.) linphonec 5.1.65 (Debian `linphone-cli`) runs with a linphonerc of \
its own (SIP on its namespace's address, IPv4 only, only the codec under test enabled, no echo canceller, its \
default adaptive jitter buffer: `audio_jitt_comp=60` ms nominal, 40–500 ms) and is driven on \
stdin: `soundcard use files`, `record FILE`, `autoanswer enable`. In that file sound mode its \
decoder, generic PLC and mixer are ticked every 10 ms by a real-time ticker into its file \
recorder, so the file is its playout clocked in real time, concealment included (the recording \
lasts as long as the call). Its jitter buffer is the mean of the sizes its log reports every few \
seconds (\"Local current jitter buffer size\"); it reports no concealment count.\n\n\
Scoring: the played-out file is aligned to the reference by cross-correlation and scored with \
PyPI `pesq` 0.0.4 (P.862 narrowband at 8 kHz for PCMU, P.862.2 wideband at 16 kHz for G.722 and \
Opus; Opus output is resampled 48 → 16 kHz). Jitter buffer: Softline's \
`calls[].media.jitter_buffer_ms`, averaged over samples every 0.5 s (baresip reports none; \
linphonec: from its log). CPU and peak RSS are the receiving process's (`/proc`, whole life: \
start-up and one call of {:.0} s; baresip's figure excludes the PulseAudio server; linphonec \
runs with its full log, `-d 6`, which the jitter-buffer figure needs). espeak-ng speech is synthetic: clean PCMU \
scores about 4.0 and clean G.722 about 3 on it, so compare receivers side by side rather than \
against absolute thresholds.\n",
        LEAD_IN_SECS + speech_secs + 1.0
    )
}
