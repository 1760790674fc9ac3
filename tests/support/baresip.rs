//! A real baresip (Debian's 1.0.0) as the far end of audio tests.
//!
//! Headless set-up, all found by trying 1.0.0:
//! - `net_interface 127.0.0.1` so that its SDP says `c=IN IP4 127.0.0.1`
//!   (without it 1.0.0 advertises the host's first non-loopback address
//!   even when `sip_listen` is on 127.0.0.1);
//! - `audio_source aufile,PATH`: aufile insists on the codec's own rate and
//!   channel count (8000/1 for G.711, 16000/1 for G.722, 48000/2 for Opus)
//!   and S16LE, so the tone file is written in exactly that format; at the
//!   end of the file the `menu` module hangs the call up ("audio error
//!   (0,end of file)"), so the tone (8 s) bounds how long a call may last;
//! - `audio_player aubridge,nil`: a bridge with no source attached, i.e. a
//!   player that needs no sound card and discards what it is given;
//! - the `sndfile` filter dumps both directions to
//!   `snd/dump-<time>-{enc,dec}.wav`; `dec` is what baresip decoded;
//! - `answermode=auto` on the account line answers incoming calls;
//! - `ctrl_tcp` (netstring-framed JSON `{"command","params","token"}`)
//!   dials and hangs up; `stdio` is not loaded, stdin is /dev/null;
//! - SDES-SRTP: the `srtp` module plus `mediaenc=` on the account line.
//!   1.0.0 registers three: `srtp` (RTP/AVP with a=crypto, plain RTP
//!   accepted), `srtp-mand` (RTP/SAVP) and `srtp-mandf` (RTP/SAVPF); it
//!   offers AES_CM_128_HMAC_SHA1_80/32 and AEAD_AES_128/256_GCM and logs
//!   `srtp: audio: SRTP is Enabled (cryptosuite=…)` once keys are set.
//!
//! baresip does not exit on SIGTERM while it winds calls down, so Drop
//! kills it (SIGTERM, then SIGKILL after a short grace).

use std::fs;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use softline::media::tone::sine;

use super::{TestDir, free_port, free_ports, poll, read_lossy, stop_group, tail};

const BARESIP: &str = "/usr/bin/baresip";
const MODULES: &str = "/usr/lib/baresip/modules";

/// How baresip names a codec on the account line and the PCM format its
/// audio source must deliver for it.
#[derive(Debug, Clone, Copy)]
pub struct BaresipCodec {
    /// `audio_codecs=` value.
    pub name: &'static str,
    pub rate: u32,
    pub channels: u16,
}

/// The baresip codec for Softline's codec name (`PCMU`, `PCMA`, `G722`,
/// `opus`).
pub fn baresip_codec(softline_name: &str) -> BaresipCodec {
    match softline_name.to_ascii_lowercase().as_str() {
        "pcmu" => BaresipCodec {
            name: "pcmu",
            rate: 8000,
            channels: 1,
        },
        "pcma" => BaresipCodec {
            name: "pcma",
            rate: 8000,
            channels: 1,
        },
        "g722" => BaresipCodec {
            name: "g722",
            rate: 16000,
            channels: 1,
        },
        "opus" => BaresipCodec {
            name: "opus/48000/2",
            rate: 48000,
            channels: 2,
        },
        other => panic!("no baresip codec for {other:?}"),
    }
}

/// A 16-bit PCM WAV with `channels` identical channels.
pub fn write_tone_wav(path: &Path, freq: f64, rate: u32, channels: u16, secs: u32) {
    let mono = sine(freq, rate, 8000.0, (rate * secs) as usize);
    let ch = usize::from(channels);
    let data_len = (mono.len() * 2 * ch) as u32;
    let mut b = Vec::with_capacity(44 + data_len as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2 * u32::from(channels)).to_le_bytes());
    b.extend_from_slice(&(2 * channels).to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in mono {
        for _ in 0..ch {
            b.extend_from_slice(&s.to_le_bytes());
        }
    }
    fs::write(path, b).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// One running baresip with one account `sip:bs@127.0.0.1`, listening for
/// SIP on UDP/TCP `127.0.0.1:port`, restricted to one codec and playing a
/// tone.
pub struct Baresip {
    child: Child,
    pub port: u16,
    pub ctrl_port: u16,
    pub codec: BaresipCodec,
    pub dir: TestDir,
    log: PathBuf,
}

impl Baresip {
    /// Start baresip playing `tone_hz` (8 s of it, longer than any test
    /// call) with only `softline_codec` allowed, auto-answering; returns
    /// once it says it is ready and its control port accepts connections.
    pub fn start(softline_codec: &str, tone_hz: f64) -> Baresip {
        Baresip::start_with(softline_codec, tone_hz, None)
    }

    /// As [`Baresip::start`], with `mediaenc` (`srtp`, `srtp-mand`,
    /// `srtp-mandf`) on the account and the `srtp` module loaded.
    pub fn start_with(softline_codec: &str, tone_hz: f64, mediaenc: Option<&str>) -> Baresip {
        Baresip::start_account(softline_codec, tone_hz, mediaenc, None)
    }

    /// As [`Baresip::start`], registered as `user` (digest `password`) at
    /// the registrar on UDP `127.0.0.1:registrar_port` instead of the
    /// direct-only `sip:bs@127.0.0.1`; returns once the registrar took the
    /// binding.
    pub fn start_registered(
        softline_codec: &str,
        tone_hz: f64,
        registrar_port: u16,
        user: &str,
        password: &str,
    ) -> Baresip {
        let b = Baresip::start_account(
            softline_codec,
            tone_hz,
            None,
            Some(format!(
                "<sip:{user}@127.0.0.1:{registrar_port}>;auth_pass={password};regint=60"
            )),
        );
        b.wait_log("[1 binding]", Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("baresip did not register: {e}"));
        b
    }

    fn start_account(
        softline_codec: &str,
        tone_hz: f64,
        mediaenc: Option<&str>,
        aor: Option<String>,
    ) -> Baresip {
        let codec = baresip_codec(softline_codec);
        let dir = TestDir::new(&format!("baresip-{}", codec.name.replace('/', "-")));
        let port = free_port();
        let ctrl_port = free_port();
        let rtp = free_ports(16, false);
        let tone = dir.file("tone.wav");
        write_tone_wav(&tone, tone_hz, codec.rate, codec.channels, 8);
        let snd = dir.file("snd");
        fs::create_dir_all(&snd).unwrap();
        let config = format!(
            "# Generated by Softline's integration tests.\n\
             poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:{port}\n\
             net_interface\t\t127.0.0.1\n\
             call_local_timeout\t120\n\
             call_max_calls\t\t4\n\
             audio_player\t\taubridge,nil\n\
             audio_source\t\taufile,{tone}\n\
             audio_alert\t\taubridge,nil\n\
             audio_buffer\t\t20-160\n\
             rtp_ports\t\t{rtp}-{rtp_end}\n\
             rtcp_mux\t\tno\n\
             jitter_buffer_delay\t5-10\n\
             module_path\t\t{MODULES}\n\
             module\t\t\tg711.so\n\
             module\t\t\tg722.so\n\
             module\t\t\topus.so\n\
             module\t\t\tsndfile.so\n\
             module\t\t\taufile.so\n\
             module\t\t\taubridge.so\n\
             {srtp_module}\
             module_tmp\t\taccount.so\n\
             module_app\t\tmenu.so\n\
             module_app\t\tctrl_tcp.so\n\
             ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}\n\
             snd_path\t\t{snd}\n",
            tone = tone.display(),
            rtp_end = rtp + 15,
            snd = snd.display(),
            srtp_module = if mediaenc.is_some() {
                "module\t\t\tsrtp.so\n"
            } else {
                ""
            },
        );
        fs::write(dir.file("config"), config).unwrap();
        fs::write(
            dir.file("accounts"),
            format!(
                "{};answermode=auto;audio_codecs={}{}\n",
                aor.unwrap_or_else(|| "<sip:bs@127.0.0.1>;regint=0".into()),
                codec.name,
                mediaenc
                    .map(|m| format!(";mediaenc={m}"))
                    .unwrap_or_default()
            ),
        )
        .unwrap();
        let log = dir.file("baresip.log");
        let out = fs::File::create(&log).unwrap();
        let child = Command::new(BARESIP)
            .arg("-f")
            .arg(&dir.path)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .current_dir(&dir.path)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {BARESIP}: {e}"));
        let mut b = Baresip {
            child,
            port,
            ctrl_port,
            codec,
            dir,
            log,
        };
        let up = poll(Duration::from_secs(10), || {
            if let Ok(Some(status)) = b.child.try_wait() {
                panic!("baresip exited at start ({status}):\n{}", b.log_text());
            }
            (b.log_text().contains("baresip is ready")
                && TcpStream::connect(("127.0.0.1", ctrl_port)).is_ok())
            .then_some(())
        });
        if up.is_none() {
            panic!("baresip did not come up:\n{}", b.log_text());
        }
        b
    }

    /// Its AOR as reached directly: `sip:bs@127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("sip:bs@127.0.0.1:{}", self.port)
    }

    /// The log, with the `\r`-rewritten status line turned into lines.
    pub fn log_text(&self) -> String {
        read_lossy(&self.log).replace('\r', "\n")
    }

    /// Wait until the log holds `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> Result<(), String> {
        poll(timeout, || self.log_text().contains(needle).then_some(())).ok_or_else(|| {
            format!(
                "baresip log does not say {needle:?} after {timeout:?}:\n{}",
                self.log_tail()
            )
        })
    }

    /// The last lines of the log, without the per-second status line.
    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.contains("audio=0/0"))
            .collect();
        tail(&lines.join("\n"), 60)
    }

    /// One ctrl_tcp command; its response object (`{"response":true,
    /// "ok":…,"data":…}`). Events arriving before it are skipped.
    pub fn command(&self, command: &str, params: &str) -> Value {
        let stream = TcpStream::connect(("127.0.0.1", self.ctrl_port))
            .unwrap_or_else(|e| panic!("baresip ctrl_tcp connect: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let token = format!("t-{command}");
        let body = json!({"command": command, "params": params, "token": token}).to_string();
        (&stream)
            .write_all(format!("{}:{body},", body.len()).as_bytes())
            .unwrap();
        let mut reader = BufReader::new(&stream);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let msg = read_netstring(&mut reader)
                .unwrap_or_else(|e| panic!("baresip ctrl_tcp {command}: {e}\n{}", self.log_tail()));
            let v: Value = serde_json::from_str(&msg)
                .unwrap_or_else(|e| panic!("baresip ctrl_tcp sent {msg:?}: {e}"));
            if v["response"] == json!(true) && v["token"] == json!(token) {
                return v;
            }
        }
        panic!(
            "baresip ctrl_tcp {command}: no response\n{}",
            self.log_tail()
        );
    }

    /// Dial `uri`; panics unless baresip accepted the command.
    pub fn dial(&self, uri: &str) {
        let r = self.command("dial", uri);
        assert_eq!(r["ok"], json!(true), "baresip dial {uri}: {r}");
    }

    /// Hang up the current call.
    pub fn hangup(&self) {
        let r = self.command("hangup", "");
        assert_eq!(r["ok"], json!(true), "baresip hangup: {r}");
    }

    /// Wait until baresip's call is over (its audio dumps are then closed).
    pub fn wait_call_ended(&self, timeout: Duration) -> Result<(), String> {
        self.wait_log(" terminated (duration:", timeout)
    }

    /// The WAV file sndfile wrote with what baresip decoded (`*-dec.wav`).
    pub fn decoded_dump(&self) -> PathBuf {
        self.dump("-dec.wav")
    }

    /// The WAV file sndfile wrote with what baresip encoded (`*-enc.wav`).
    pub fn encoded_dump(&self) -> PathBuf {
        self.dump("-enc.wav")
    }

    fn dump(&self, suffix: &str) -> PathBuf {
        let snd = self.dir.file("snd");
        let mut found: Vec<PathBuf> = fs::read_dir(&snd)
            .unwrap_or_else(|e| panic!("{}: {e}", snd.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect();
        found.sort();
        found.pop().unwrap_or_else(|| {
            panic!(
                "baresip wrote no {suffix} dump in {}:\n{}",
                snd.display(),
                self.log_tail()
            )
        })
    }
}

fn read_netstring(r: &mut impl Read) -> Result<String, String> {
    let mut len = 0usize;
    let mut byte = [0u8; 1];
    loop {
        r.read_exact(&mut byte).map_err(|e| format!("read: {e}"))?;
        match byte[0] {
            b @ b'0'..=b'9' => len = len * 10 + usize::from(b - b'0'),
            b':' => break,
            b => return Err(format!("bad netstring length byte {b:#x}")),
        }
    }
    let mut body = vec![0u8; len + 1];
    r.read_exact(&mut body).map_err(|e| format!("read: {e}"))?;
    if body.pop() != Some(b',') {
        return Err("netstring without trailing comma".into());
    }
    String::from_utf8(body).map_err(|e| e.to_string())
}

impl Drop for Baresip {
    fn drop(&mut self) {
        stop_group(&mut self.child, Duration::from_millis(300));
        if std::thread::panicking() {
            eprintln!("--- baresip log (tail) ---\n{}", self.log_tail());
        }
    }
}
