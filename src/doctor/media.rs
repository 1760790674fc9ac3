//! (h) Media: a tone goes out and must come back. With `[doctor]
//! echo_extension` set, through a real test call from the account to that
//! extension (Asterisk `Echo()`); otherwise through the built-in loopback
//! (the `ctl test-audio` path: encode, RTP over UDP, jitter buffer,
//! decode). The returned audio is checked by signal (Goertzel at the tone's
//! frequency); the RTP source is checked against the address the SDP
//! announced (latching = one-way audio behind NAT for phones that do not
//! latch); the negotiated codec, or the reason the call failed (488), is
//! reported.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::sip::network;
use super::{CheckResult, Context};
use crate::audio::AudioSpec;
use crate::audio::wav::{Wav, WavWriter};
use crate::media::aec::AecConfig;
use crate::media::session::MediaStats;
use crate::media::tone::{rms_dbfs, sine, tone_share};
use crate::phone::{Command, Event, LocalAddrs, Output, Phone, Resolved};
use crate::runtime::driver::{local_ip_towards, media_endpoints};
use crate::runtime::media::{MediaEndpoints, MediaSockets, MediaTask, bind_pair, start_audio_test};
use crate::runtime::net::NetEvent;
use crate::sip::transport::{TransportError, TransportKind};

const NAME: &str = "media";
/// The test tone.
const TONE_HZ: f64 = 1000.0;
const TONE_RATE: u32 = 8000;
/// How long the tone is sent.
const SEND_FOR: Duration = Duration::from_millis(2500);
/// How long the echo extension may take to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);
/// Share of the returned energy at the tone frequency that counts as "it
/// came back", and the lowest level.
const MIN_SHARE: f64 = 0.5;
const MIN_DBFS: f64 = -45.0;

/// Scratch files of one run (removed on drop).
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!(
            "softline-doctor-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir)?;
        // The tone the "microphone" sends, looped.
        let mut w = WavWriter::create(&dir.join("tone.wav"), TONE_RATE)?;
        w.write(&sine(TONE_HZ, TONE_RATE, 8000.0, TONE_RATE as usize))?;
        w.finish()?;
        Ok(Scratch { dir })
    }
    fn tone(&self) -> PathBuf {
        self.dir.join("tone.wav")
    }
    fn heard(&self) -> PathBuf {
        self.dir.join("heard.wav")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The call's endpoints with the tone as microphone and a file as speaker;
/// no echo canceller, noise suppression, gain or limiter (they would alter
/// or remove the returning tone).
fn endpoints(ctx: &Context, scratch: &Scratch) -> MediaEndpoints {
    let mut ends = media_endpoints(&ctx.config);
    ends.input = AudioSpec::File {
        path: scratch.tone(),
        looped: true,
    };
    ends.output = AudioSpec::File {
        path: scratch.heard(),
        looped: false,
    };
    ends.aec = AecConfig {
        echo_cancellation: false,
        noise_suppression: false,
        auto_gain: false,
    };
    ends.limiter_ceiling_dbfs = None;
    ends.input_gain_db = 0.0;
    ends.output_gain_db = 0.0;
    ends
}

/// What came back: (tone share, level in dBFS) of the second half of the
/// played-out audio (the first half holds the round trip's delay).
pub fn analyse(heard: &Wav) -> (f64, f64) {
    let n = heard.samples.len();
    let tail = heard.samples.get(n / 2..).unwrap_or(&[]);
    (tone_share(tail, heard.sample_rate, TONE_HZ), rms_dbfs(tail))
}

fn verdict(
    how: String,
    mut lines: Vec<String>,
    stats: Option<MediaStats>,
    scratch: &Scratch,
) -> CheckResult {
    lines.insert(0, how);
    let Some(s) = stats else {
        lines.push("no media statistics: the stream did not start".into());
        return CheckResult::failed(
            NAME,
            lines.join("\n"),
            "The audio stream did not start: check [media] rtp_port_min/max (free UDP ports).",
        );
    };
    lines.push(format!(
        "codec {}; RTP sent {}, received {}, lost {}; from {}",
        s.codec,
        s.packets_sent,
        s.packets_received,
        s.packets_lost.max(0),
        if s.remote.is_empty() { "-" } else { &s.remote }
    ));
    if s.packets_received == 0 {
        lines.push(format!(
            "no audio received for {:.1} s (one-way audio): no RTP came back ({} packets sent)",
            s.silent_for_ms as f64 / 1000.0,
            s.packets_sent
        ));
        return CheckResult::failed(
            NAME,
            lines.join("\n"),
            "One-way audio: the far end's RTP does not reach us (NAT/firewall). Allow UDP \
             [media] rtp_port_min–rtp_port_max inbound, and on the PBX set nat=yes / \
             directmedia=no (Softline sends first, so a PBX that latches finds us).",
        );
    }
    if s.latched {
        lines.push(
            "RTP arrives from another address than the SDP announced: Softline latched to it"
                .into(),
        );
    }
    let heard = Wav::read(&scratch.heard());
    let (share, level) = heard
        .as_ref()
        .map(analyse)
        .unwrap_or((0.0, f64::NEG_INFINITY));
    lines.push(format!(
        "tone {TONE_HZ:.0} Hz back: {:.0} % of the returned energy, level {}",
        share * 100.0,
        if level.is_finite() {
            format!("{level:.1} dBFS")
        } else {
            "silence".into()
        }
    ));
    if share < MIN_SHARE || level < MIN_DBFS {
        return CheckResult::failed(
            NAME,
            lines.join("\n"),
            "RTP comes back but the tone does not: the far end does not echo what we send \
             (check the echo extension, or a codec the PBX transcodes badly).",
        );
    }
    let result = CheckResult::passed(NAME, lines.join("\n"));
    if s.latched {
        result.with_advice(
            "The far end sends from another address than it announces (NAT): Softline copes \
             (it latches), phones that do not get one-way audio — on the PBX set nat=yes / \
             directmedia=no.",
        )
    } else {
        result
    }
}

/// Run the media check.
pub(super) async fn check(ctx: &Context) -> CheckResult {
    let scratch = match Scratch::new() {
        Ok(s) => s,
        Err(e) => {
            return CheckResult::failed(
                NAME,
                format!("cannot write scratch files: {e}"),
                "Free some disk space in the temp directory, then try again.",
            );
        }
    };
    let ends = endpoints(ctx, &scratch);
    match ctx.config.doctor.echo_extension.clone() {
        Some(ext) if !ext.trim().is_empty() => echo_call(ctx, ext.trim(), ends, &scratch).await,
        _ => loopback(ctx, ends, &scratch).await,
    }
}

async fn loopback(ctx: &Context, ends: MediaEndpoints, scratch: &Scratch) -> CheckResult {
    let name = ctx
        .config
        .media
        .codecs
        .first()
        .cloned()
        .unwrap_or_else(|| "PCMU".into());
    let Some(codec) = crate::phone::codec_spec(&name) else {
        return CheckResult::failed(
            NAME,
            format!("codec `{name}` is not available in this build"),
            "Put an available codec first in [media] codecs (opus, G722, PCMU, PCMA).",
        );
    };
    let range = (ctx.config.media.rtp_port_min, ctx.config.media.rtp_port_max);
    let task = match start_audio_test(range, codec, ends, SEND_FOR, false, rand::random()) {
        Ok(t) => t,
        Err(e) => {
            return CheckResult::failed(
                NAME,
                format!("built-in loopback: cannot open RTP ports: {e}"),
                "Free UDP ports in [media] rtp_port_min–rtp_port_max (or widen the range).",
            );
        }
    };
    tokio::time::sleep(SEND_FOR + Duration::from_millis(200)).await;
    let stats = task.stats();
    task.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    verdict(
        format!(
            "built-in loopback ({name} over RTP to ourselves; set [doctor] echo_extension to \
             test through the server)"
        ),
        Vec::new(),
        stats,
        scratch,
    )
}

/// The test call's media while it runs.
#[derive(Default)]
struct CallMedia {
    sockets: Option<MediaSockets>,
    task: Option<MediaTask>,
    since: Option<Instant>,
}

async fn echo_call(
    ctx: &Context,
    ext: &str,
    ends: MediaEndpoints,
    scratch: &Scratch,
) -> CheckResult {
    let how = format!("test call to `{ext}` (echo extension)");
    let Some((peer, _)) = ctx.chosen.clone() else {
        return CheckResult::skipped(NAME, "not run: no reachable server");
    };
    let mut account = ctx.account.clone();
    account.register = false;
    account.mwi = false;
    let mut config = ctx.config.clone();
    config.accounts = vec![account.clone()];
    let mut net = match network(&config, &account).await {
        Ok(n) => n,
        Err(e) => {
            return CheckResult::failed(NAME, e, "Close what holds the port, then try again.");
        }
    };
    let local_addrs = LocalAddrs {
        udp: net.local_addr(TransportKind::Udp),
        tcp: None,
    };
    let mut phone = Phone::new(&config, local_addrs, rand::random());
    phone.set_key_seed(rand::random());
    let targets = [Resolved {
        peer,
        local_ip: local_ip_towards(peer.addr),
    }];
    phone.start(Instant::now());
    if let Err(e) = phone.handle_command(
        Instant::now(),
        Command::Call {
            account: Some(account.id.clone()),
            target: ext.to_string(),
        },
    ) {
        return CheckResult::failed(
            NAME,
            format!("{how}: cannot place it: {e:?}"),
            "Check [doctor] echo_extension (a number or SIP URI).",
        );
    }
    let range = (config.media.rtp_port_min, config.media.rtp_port_max);
    let mut media = CallMedia::default();
    let mut lines: Vec<String> = Vec::new();
    let mut ended: Option<(Option<u16>, String)> = None;
    let mut hung_up = false;
    let mut stats = None;
    let started = Instant::now();
    let mut deadline = started + ANSWER_WITHIN;
    loop {
        while let Some(out) = phone.poll_output() {
            match out {
                Output::Transmit {
                    peer,
                    server_name,
                    data,
                } => net.send(peer, server_name.as_deref(), data),
                Output::Resolve { token, .. } => {
                    phone.handle_resolved(Instant::now(), token, Ok(targets.to_vec()));
                }
                Output::OpenMedia { call } => {
                    let result = bind_pair(range, rand::random())
                        .map(|s| {
                            let port = s.port;
                            media.sockets = Some(s);
                            port
                        })
                        .map_err(|e| e.to_string());
                    phone.handle_media_opened(Instant::now(), call, result);
                }
                Output::StartMedia { media: m, .. } => {
                    if let Some(task) = &media.task {
                        task.update(m);
                    } else if let Some(sockets) = media.sockets.take() {
                        match MediaTask::start(sockets, m, ends.clone(), rand::random()) {
                            Ok(t) => {
                                media.task = Some(t);
                                media.since = Some(Instant::now());
                                deadline = Instant::now() + SEND_FOR + Duration::from_secs(5);
                            }
                            Err(e) => lines.push(format!("media not started: {e}")),
                        }
                    }
                }
                Output::StopMedia { .. } => {
                    if let Some(t) = &media.task {
                        stats = stats.or_else(|| t.stats());
                        t.stop();
                    }
                }
                Output::Event(Event::Call(c)) => {
                    if c.state == "connected" && !lines.iter().any(|l| l == "answered") {
                        lines.push("answered".into());
                    }
                    if c.state == "ended" {
                        ended = Some((
                            c.status_code,
                            c.cause.clone().unwrap_or_else(|| "ended".into()),
                        ));
                    }
                }
                _ => {}
            }
        }
        if ended.is_some() {
            break;
        }
        let now = Instant::now();
        // Enough tone sent: take the statistics and hang up.
        if !hung_up && media.since.is_some_and(|t| now >= t + SEND_FOR) {
            stats = media.task.as_ref().and_then(MediaTask::stats);
            hung_up = true;
            deadline = now + Duration::from_secs(3);
            let _ = phone.handle_command(now, Command::Hangup { call: None });
            continue;
        }
        if now >= deadline {
            if !hung_up {
                let _ = phone.handle_command(now, Command::Hangup { call: None });
                lines.push(format!("no answer within {} s", ANSWER_WITHIN.as_secs()));
                // Give the CANCEL a moment, then give up.
                hung_up = true;
                deadline = now + Duration::from_secs(2);
                continue;
            }
            break;
        }
        let mut wake = deadline;
        if let Some(t) = media.since.filter(|_| !hung_up) {
            wake = wake.min(t + SEND_FOR);
        }
        if let Some(t) = phone.poll_timeout() {
            wake = wake.min(t);
        }
        tokio::select! {
            event = net.next_event() => {
                let now = Instant::now();
                match event {
                    NetEvent::Received { peer, local, data } => phone.handle_received(now, peer, local, &data),
                    NetEvent::Failed { peer, error } => phone.handle_transport_error(now, peer, error),
                    NetEvent::Closed { peer } => phone.handle_transport_error(now, peer, TransportError::Closed),
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => phone.handle_timeout(Instant::now()),
        }
    }
    if let Some(t) = &media.task {
        t.stop();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    if media.since.is_none() {
        // Never got media: the call failed (or was not answered).
        let (code, cause) = ended.unwrap_or((None, "no answer".into()));
        lines.insert(0, how);
        // The cause of a final response already starts with its code
        // ("488 Not Acceptable Here"); other causes get the code in front.
        let code_first = code
            .filter(|c| !cause.starts_with(&c.to_string()))
            .map(|c| format!("{c} "))
            .unwrap_or_default();
        lines.push(format!("call failed: {code_first}{cause}"));
        let advice = match code {
            Some(488) | Some(415) => {
                "No common codec with the PBX (488): add PCMU/PCMA to [media] codecs, or ask \
                 your admin which codecs the PBX allows."
            }
            Some(404) | Some(484) => {
                "The PBX does not know the echo extension: check [doctor] echo_extension with \
                 your admin."
            }
            Some(401) | Some(407) | Some(403) => {
                "The PBX refused the call with our credentials: check the account's password \
                 and whether it may place calls."
            }
            _ => {
                "The echo extension did not answer: check [doctor] echo_extension with your \
                  admin."
            }
        };
        return CheckResult::failed(NAME, lines.join("\n"), advice);
    }
    verdict(how, lines, stats, scratch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_finds_the_tone_after_the_delay() {
        let mut samples = vec![0i16; 8000];
        samples.extend(sine(TONE_HZ, 8000, 4000.0, 8000));
        let (share, level) = analyse(&Wav {
            sample_rate: 8000,
            samples,
        });
        assert!(share > 0.95 && level > -22.0, "{share} {level}");
        let (share, level) = analyse(&Wav {
            sample_rate: 8000,
            samples: sine(400.0, 8000, 4000.0, 16000),
        });
        assert!(share < 0.05 && level > -22.0, "{share} {level}");
    }
}
