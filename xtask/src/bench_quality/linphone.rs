//! linphonec (Debian 12 `linphone-cli` 5.1) as a receiver of the audio
//! quality benchmark, in its file sound mode.
//!
//! What was established by trying (linphonec 5.1.65):
//! - It reads commands on stdin when stdin is a pipe, but only once its
//!   core is up: commands sent before that are taken while the global state
//!   is still `Startup` (no SIP listening point: a call fails with "No
//!   listening point matching"). It is up when its log says it created the
//!   UDP listening point. The core also stays in `Startup` when it cannot
//!   open its database, so `$HOME/.local/share/linphone` must exist.
//! - `soundcard use files` switches to the file sound mode; `record FILE`
//!   then names the WAV file the call's playout goes to and `autoanswer
//!   enable` answers incoming calls. The receive graph is then `MSRtpRecv →
//!   decoder → MSGenericPLC → MSAudioFlowControl → … → MSAudioMixer →
//!   MSResample → MSFileRec`, driven by the stream's real-time 10 ms
//!   ticker: the file holds the playout clocked in real time, concealment
//!   included (a 10 s call gives a 9.99 s file; lost packets are filled by
//!   the PLC, not left out).
//! - It binds `[::0]` and offers `c=IN IP6 <eth0>` unless `[sip] use_ipv6=0`;
//!   `sip_tcp_port=-1`/`sip_tls_port=-1` keep it off 5060/5061 so several
//!   run side by side.
//! - The `[audio_codec_N]` sections are merged with its built-in list
//!   (codecs it knows but the file does not name are appended with their
//!   default state), so the codec is pinned by enabling ours and disabling
//!   the others it would offer, and checked after the call from the decoder
//!   its log shows linked to `MSRtpRecv`. (The sender offers one codec.)
//! - Jitter buffer: its default, adaptive with `audio_jitt_comp=60` ms
//!   nominal (min 40, max 500 in its log); the current size is logged
//!   every few seconds as "Local current jitter buffer size: N ms", which
//!   is what the benchmark averages.

// A real-time harness around a real process: it reads the clock and sleeps.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use super::{Codec, Peer};

pub(super) const LINPHONEC: &str = "/usr/bin/linphonec";

/// The name and clock rate linphone lists a codec under, and the decoder
/// filter that shows in its log when the call runs it.
fn codec_entry(codec: Codec) -> (&'static str, u32, u16, &'static str) {
    match codec {
        Codec::Pcmu => ("PCMU", 8000, 1, "MSUlawDec"),
        // G.722's RTP clock is 8000 by RFC 3551's mistake; linphone lists
        // it so.
        Codec::G722 => ("G722", 8000, 1, "MSG722Dec"),
        Codec::Opus => ("opus", 48000, 2, "MSOpusDec"),
    }
}

/// linphonec's configuration file: SIP on `port`, contact at `ip` (IPv4 only,
/// no TCP/TLS), RTP on `rtp` (RTCP on `rtp + 1`), no echo canceller, its
/// default adaptive jitter buffer written out, and only `codec` enabled.
pub(super) fn linphonerc(ip: Ipv4Addr, port: u16, rtp: u16, codec: Codec) -> String {
    let mut rc = format!(
        "[sip]\nsip_port={port}\nsip_tcp_port=-1\nsip_tls_port=-1\nuse_ipv6=0\n\
         guess_hostname=0\ncontact=sip:bench@{ip}\n\n\
         [rtp]\naudio_rtp_port={rtp}\nvideo_rtp_port={}\ntext_rtp_port={}\n\
         audio_jitt_comp=60\naudio_adaptive_jitt_comp_enabled=1\n\n\
         [sound]\nechocancellation=0\n\n[video]\ncapture=0\ndisplay=0\n\n",
        rtp + 2,
        rtp + 4
    );
    let (want, _, _, _) = codec_entry(codec);
    let all: [(&str, u32, u16); 10] = [
        ("PCMU", 8000, 1),
        ("PCMA", 8000, 1),
        ("G722", 8000, 1),
        ("opus", 48000, 2),
        ("speex", 32000, 1),
        ("speex", 16000, 1),
        ("speex", 8000, 1),
        ("GSM", 8000, 1),
        ("G729", 8000, 1),
        ("L16", 44100, 1),
    ];
    for (n, (mime, rate, channels)) in all.into_iter().enumerate() {
        let enabled = u8::from(mime == want);
        rc.push_str(&format!(
            "[audio_codec_{n}]\nmime={mime}\nrate={rate}\nchannels={channels}\nenabled={enabled}\n\n"
        ));
    }
    rc
}

/// linphonec answering automatically in file sound mode, recording its
/// playout to `played.wav`.
pub(super) struct Linphone {
    child: Child,
    stdin: Option<ChildStdin>,
    dir: PathBuf,
    codec: Codec,
}

impl Linphone {
    pub(super) fn start(
        ns: Option<&str>,
        dir: &Path,
        ip: Ipv4Addr,
        port: u16,
        codec: Codec,
        rtp: u16,
    ) -> std::result::Result<Linphone, String> {
        // Its database and config folders (without them the core never
        // leaves its start-up state).
        fs::create_dir_all(dir.join(".local/share/linphone")).map_err(|e| e.to_string())?;
        fs::create_dir_all(dir.join(".config")).map_err(|e| e.to_string())?;
        let rc = dir.join("linphonerc");
        fs::write(&rc, linphonerc(ip, port, rtp, codec)).map_err(|e| e.to_string())?;
        let out = fs::File::create(dir.join("stdout.log")).map_err(|e| e.to_string())?;
        let mut child = crate::netns::command(ns, LINPHONEC)
            .arg("-c")
            .arg(&rc)
            .args(["-d", "6", "-l"])
            .arg(dir.join("linphone.log"))
            .env("HOME", dir)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("starting {LINPHONEC}: {e}"))?;
        let stdin = child.stdin.take();
        let mut l = Linphone {
            child,
            stdin,
            dir: dir.to_owned(),
            codec,
        };
        l.wait_log(
            &format!("on [sip:[::0]:{port};transport=UDP]"),
            Duration::from_secs(10),
        )
        .or_else(|_| {
            l.wait_log(
                &format!(":{port};transport=UDP]"),
                Duration::from_millis(100),
            )
        })?;
        let played = l.played_path();
        l.command("soundcard use files")?;
        l.command(&format!("record {}", played.display()))?;
        l.command("autoanswer enable")?;
        Ok(l)
    }

    fn played_path(&self) -> PathBuf {
        self.dir.join("played.wav")
    }

    fn command(&mut self, line: &str) -> std::result::Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("linphonec's stdin is closed")?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("linphonec {line:?}: {e}"))
    }

    fn log(&self) -> String {
        fs::read(self.dir.join("linphone.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn wait_log(&self, needle: &str, timeout: Duration) -> std::result::Result<(), String> {
        let t0 = Instant::now();
        loop {
            if self.log().contains(needle) {
                return Ok(());
            }
            if t0.elapsed() > timeout {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = fs::read_to_string(self.dir.join("stdout.log")).unwrap_or_default();
        let tail: Vec<&str> = out.lines().rev().take(8).collect();
        Err(format!(
            "linphonec never logged {needle:?}: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ))
    }
}

/// The mean of the "Local current jitter buffer size: N ms" values in a
/// linphone log.
pub(super) fn mean_jitter_buffer_ms(log: &str) -> Option<f64> {
    let v: Vec<f64> = log
        .lines()
        .filter_map(|l| {
            let rest = l.split("Local current jitter buffer size:").nth(1)?;
            rest.trim().trim_end_matches("ms").trim().parse().ok()
        })
        .collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

impl Drop for Linphone {
    fn drop(&mut self) {
        let _ = self.command("quit");
        self.stdin = None;
        super::reap(&mut self.child);
    }
}

impl Peer for Linphone {
    fn answer(&mut self) -> std::result::Result<(), String> {
        Ok(()) // autoanswer enable
    }
    fn jitter_buffer_ms(&mut self) -> Option<f64> {
        None // read from its log once the call is over
    }
    fn jitter_buffer_mean_ms(&mut self) -> Option<f64> {
        mean_jitter_buffer_ms(&self.log())
    }
    fn concealed(&mut self) -> Option<u64> {
        None
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn wait_ended(&mut self) -> std::result::Result<(), String> {
        // Released: the streams are stopped and the recording closed.
        self.wait_log("to LinphoneCallReleased", Duration::from_secs(5))
    }
    fn played(&mut self, _: &Path) -> std::result::Result<PathBuf, String> {
        let (mime, _, _, decoder) = codec_entry(self.codec);
        if !self.log().contains(&format!("-->{decoder}:")) {
            return Err(format!(
                "linphonec did not decode {mime} (no {decoder} in its log)"
            ));
        }
        let played = self.played_path();
        if !played.exists() {
            return Err(format!("linphonec wrote no {}", played.display()));
        }
        Ok(played)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_enables_only_the_codec_under_test() {
        let rc = linphonerc(Ipv4Addr::LOCALHOST, 5099, 30000, Codec::G722);
        assert!(rc.contains("sip_port=5099\n"));
        assert!(rc.contains("use_ipv6=0\n"));
        assert!(rc.contains("audio_rtp_port=30000\nvideo_rtp_port=30002\n"));
        assert!(rc.contains("mime=G722\nrate=8000\nchannels=1\nenabled=1\n"));
        assert_eq!(rc.matches("\nenabled=1").count(), 1);
        assert!(rc.contains("mime=PCMU\nrate=8000\nchannels=1\nenabled=0\n"));
    }

    #[test]
    fn the_jitter_buffer_is_read_from_the_log() {
        let log = "x\n\tLocal current jitter buffer size:  59.1ms\ny\n\
                   \tLocal current jitter buffer size:  80.9ms\n";
        assert_eq!(mean_jitter_buffer_ms(log), Some(70.0));
        assert_eq!(mean_jitter_buffer_ms("nothing"), None);
    }
}
