//! Media tasks: one per call, on the network thread's runtime. Each owns
//! the call's RTP/RTCP sockets and its audio endpoints, and pumps the
//! sans-IO [`MediaSession`] every frame. The frame tick is the clock of the
//! file and null backends (a file output receives exactly what a sound card
//! would have played, concealment included).

use crate::media::level::{AudioLevels, LevelMeter, apply_gain, gain_factor};
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::audio::policy::fallback_after_loss;
use crate::audio::wav::WavWriter;
use crate::audio::{self, AudioSink, AudioSource, AudioSpec};
use crate::media::aec::{AecConfig, EchoCanceller, echo_canceller};
use crate::media::limiter::Limiter;
use crate::media::mixer::{Beeps, ToneSpec};
use crate::media::resample::Resampler;
use crate::media::session::{MediaConfig, MediaSession, MediaStats};
use crate::media::tone::ReferenceTone;
use crate::runtime::conference::ConfLink;
use crate::runtime::net::{canonical, udp_destination};
use crate::sdp::NegotiatedMedia;

/// The audio test's reference tone.
pub const REFERENCE_TONE_HZ: f64 = 440.0;

/// The bound RTP port (even) and RTCP port (RTP + 1) of a call.
pub struct MediaSockets {
    rtp: std::net::UdpSocket,
    rtcp: std::net::UdpSocket,
    pub port: u16,
}

/// The audio test (`softline ctl test-audio`): no server, no far end. The
/// stream is sent to its own socket, so the microphone is heard back
/// through the whole path a call uses: encode, RTP over UDP, jitter
/// buffer, decode (and concealment), limiter, playout. With `tone`, a
/// reference tone ([`REFERENCE_TONE_HZ`]) is sent along with it.
pub fn start_audio_test(
    range: (u16, u16),
    codec: crate::sdp::CodecSpec,
    mut ends: MediaEndpoints,
    duration: Duration,
    tone: bool,
    seed: u64,
) -> io::Result<MediaTask> {
    let sockets = bind_pair(range, seed)?;
    let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let media = NegotiatedMedia {
        remote_rtp: loopback(sockets.port),
        remote_rtcp: loopback(sockets.port + 1),
        codec,
        telephone_event: None,
        ptime_ms: 20,
        direction: crate::sdp::Direction::SendRecv,
        rtcp_mux: false,
        srtp: None,
        red: None,
    };
    ends.stop_after = Some(duration);
    ends.reference_tone = tone;
    // AEC: here the far end is the microphone itself; a canceller would remove it.
    ends.aec.echo_cancellation = false;
    MediaTask::start(sockets, media, ends, seed)
}

/// Bind an RTP/RTCP pair on a random even port of `range`, dual-stack.
pub fn bind_pair(range: (u16, u16), seed: u64) -> io::Result<MediaSockets> {
    let (lo, hi) = (range.0.max(1024) & !1, range.1);
    let slots = u64::from(hi.saturating_sub(lo) / 2).max(1);
    let mut state = seed;
    for _ in 0..64 {
        let slot = crate::sip::rng::splitmix64(&mut state) % slots;
        let port = lo + (slot as u16) * 2;
        let Ok(rtp) = bind_udp(port) else { continue };
        let Ok(rtcp) = bind_udp(port + 1) else {
            continue;
        };
        return Ok(MediaSockets { rtp, rtcp, port });
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no free RTP port pair in {}-{}", range.0, range.1),
    ))
}

fn bind_udp(port: u16) -> io::Result<std::net::UdpSocket> {
    let sock = socket2::Socket::new(
        socket2::Domain::IPV6,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .and_then(|s| {
        s.set_only_v6(false)?;
        s.bind(&SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port).into())?;
        Ok(s)
    })
    .or_else(|_| {
        // No IPv6 on this host: IPv4 only.
        let s = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        s.bind(&SocketAddr::from(([0, 0, 0, 0], port)).into())?;
        Ok::<_, io::Error>(s)
    })?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// What a media task needs besides the negotiated stream.
#[derive(Debug, Clone)]
pub struct MediaEndpoints {
    pub media: MediaConfig,
    /// Stop on its own after this long (the audio test); `None` for calls.
    pub stop_after: Option<Duration>,
    /// The audio test's reference tone: [`REFERENCE_TONE_HZ`] at −20 dBFS,
    /// half a second on and half off, added to the microphone before it is
    /// encoded. Never for calls.
    pub reference_tone: bool,
    pub input: AudioSpec,
    pub output: AudioSpec,
    /// Playout peak ceiling in dBFS when the hearing-protection limiter is on.
    pub limiter_ceiling_dbfs: Option<f32>,
    /// AEC: echo cancellation, noise suppression, AGC of the microphone.
    pub aec: AecConfig,
    /// Microphone and speaker gain in dB (`[audio] input_gain_db`,
    /// `output_gain_db`; `ctl gain` while calls run).
    pub input_gain_db: f32,
    pub output_gain_db: f32,
    /// (input, output): a named device that fails mid-call gives way to
    /// the system default — for a direction without an admin ranking (the
    /// ranking's own policy decides there).
    pub fallback_on_loss: (bool, bool),
}

enum Cmd {
    Update(NegotiatedMedia),
    /// Local mute: silence goes out (RTP keeps flowing for NAT bindings).
    Mute(bool),
    /// Send DTMF digits (RFC 4733).
    Dtmf(String),
    /// Microphone and speaker gain in dB.
    Gain {
        input_db: f32,
        output_db: f32,
    },
    /// Switch audio endpoints (device policy: moved, muted, back).
    Endpoints {
        input: AudioSpec,
        output: AudioSpec,
    },
    Record(Option<WavWriter>),
    Stop,
    /// Join (or leave, `None`) a local conference (`runtime::conference`).
    Conference(Option<ConfLink>),
    /// Play a tone to the local user (not sent to the far end).
    Tone(ToneSpec),
}

/// Handle to a running media task.
pub struct MediaTask {
    cmd: mpsc::UnboundedSender<Cmd>,
    muted: Arc<Mutex<bool>>,
    stats: Arc<Mutex<Option<MediaStats>>>,
    audio_warning: Arc<Mutex<Option<String>>>,
}

impl MediaTask {
    /// Start the stream of a call on its sockets.
    pub fn start(
        sockets: MediaSockets,
        media: NegotiatedMedia,
        ends: MediaEndpoints,
        seed: u64,
    ) -> io::Result<MediaTask> {
        let rtp = UdpSocket::from_std(sockets.rtp)?;
        let rtcp = UdpSocket::from_std(sockets.rtcp)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Mutex::new(None));
        let audio_warning = Arc::new(Mutex::new(None));
        tokio::spawn(run(
            rtp,
            rtcp,
            media,
            ends,
            seed,
            rx,
            stats.clone(),
            audio_warning.clone(),
        ));
        Ok(MediaTask {
            cmd: tx,
            muted: Arc::new(Mutex::new(false)),
            stats,
            audio_warning,
        })
    }

    /// New offer/answer result for the same call (hold, resume, new address or codec).
    pub fn update(&self, media: NegotiatedMedia) {
        let _ = self.cmd.send(Cmd::Update(media));
    }

    /// Start recording both directions into `writer` (a stereo WAV opened
    /// at the codec's rate: near end left, far end right), or stop (`None`).
    pub fn record(&self, writer: Option<WavWriter>) {
        let _ = self.cmd.send(Cmd::Record(writer));
    }

    /// Use other audio endpoints from now on (a ranked device came or
    /// went; `AudioSpec::Null` mutes).
    pub fn switch_endpoints(&self, input: AudioSpec, output: AudioSpec) {
        let _ = self.cmd.send(Cmd::Endpoints { input, output });
    }

    /// New microphone and speaker gains (dB), from the next frame on.
    pub fn set_gain(&self, input_db: f32, output_db: f32) {
        let _ = self.cmd.send(Cmd::Gain {
            input_db,
            output_db,
        });
    }

    /// Send DTMF digits as RFC 4733 events (errors are logged: the reply
    /// already checked that telephone-event was negotiated).
    pub fn send_dtmf(&self, digits: String) {
        let _ = self.cmd.send(Cmd::Dtmf(digits));
    }

    /// Mute or unmute the microphone (no re-INVITE: purely local).
    pub fn mute(&self, on: bool) {
        let _ = self.cmd.send(Cmd::Mute(on));
        if let Ok(mut m) = self.muted.lock() {
            *m = on;
        }
    }

    pub fn is_muted(&self) -> bool {
        self.muted.lock().map(|m| *m).unwrap_or(false)
    }

    /// Join a local conference through `link`, or leave it (`None`).
    pub fn conference(&self, link: Option<ConfLink>) {
        let _ = self.cmd.send(Cmd::Conference(link));
    }

    /// Add a tone to what the local user hears in this call.
    pub fn play_tone(&self, tone: ToneSpec) {
        let _ = self.cmd.send(Cmd::Tone(tone));
    }

    /// Stop the stream; the output file is finished.
    pub fn stop(&self) {
        let _ = self.cmd.send(Cmd::Stop);
    }

    pub fn stats(&self) -> Option<MediaStats> {
        self.stats.lock().ok().and_then(|s| s.clone())
    }

    /// Why the audio endpoints are not what was asked for (missing file,
    /// no device backend), if they are not.
    pub fn audio_warning(&self) -> Option<String> {
        self.audio_warning.lock().ok().and_then(|s| s.clone())
    }
}

/// What audio endpoints must deliver for a session: codec rate, samples
/// per frame, frame duration.
fn shape(session: &MediaSession) -> (u32, usize, Duration) {
    (
        session.pcm_rate(),
        session.frame_samples(),
        session.frame_duration(),
    )
}

/// Wall clock as a 64-bit NTP timestamp (for RTCP sender reports).
fn ntp_now() -> u64 {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() + 2_208_988_800;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The endpoints a task opens: none while it is a conference's guest
/// (the host's task plays and records for both calls).
fn audio_ends(ends: &MediaEndpoints, conf: &Option<ConfLink>) -> MediaEndpoints {
    if conf.as_ref().is_some_and(ConfLink::is_guest) {
        MediaEndpoints {
            input: AudioSpec::Null,
            output: AudioSpec::Null,
            ..ends.clone()
        }
    } else {
        ends.clone()
    }
}

struct Audio {
    source: Box<dyn AudioSource>,
    sink: Box<dyn AudioSink>,
    up: Resampler,
    down: Resampler,
    mic: Vec<i16>,
    mic_codec: Vec<i16>,
    mic_fifo: std::collections::VecDeque<i16>,
    play: Vec<i16>,
    play_out: Vec<i16>,
    limiter: Option<Limiter>,
    /// AEC: cleans `mic_codec`; `play` is its far-end reference.
    aec: Box<dyn EchoCanceller>,
}

impl Audio {
    /// Open the endpoints off the network thread (a sound device can take
    /// seconds to open; SIP and other calls' media must not wait for it).
    async fn open(
        ends: &MediaEndpoints,
        (rate, n, frame): (u32, usize, Duration),
        warning: &Arc<Mutex<Option<String>>>,
    ) -> Audio {
        let (ends2, warning2) = (ends.clone(), warning.clone());
        match tokio::task::spawn_blocking(move || {
            Audio::open_now(&ends2, rate, n, frame, &warning2)
        })
        .await
        {
            Ok(audio) => audio,
            Err(e) => {
                tracing::warn!("audio endpoints not opened ({e}): silence");
                let silent = MediaEndpoints {
                    input: AudioSpec::Null,
                    output: AudioSpec::Null,
                    ..ends.clone()
                };
                Audio::open_now(&silent, rate, n, frame, warning)
            }
        }
    }

    fn open_now(
        ends: &MediaEndpoints,
        rate: u32,
        frame_samples: usize,
        frame: Duration,
        warning: &Mutex<Option<String>>,
    ) -> Audio {
        let (source, e1) = audio::open_source(&ends.input, rate);
        let (sink, e2) = audio::open_sink(&ends.output, rate);
        let why: Vec<String> = [e1, e2]
            .into_iter()
            .flatten()
            .map(|e| e.to_string())
            .collect();
        if !why.is_empty() {
            tracing::warn!("audio: {}", why.join("; "));
            if let Ok(mut w) = warning.lock() {
                *w = Some(why.join("; "));
            }
        }
        let src_n =
            (u64::from(source.sample_rate()) * frame.as_micros() as u64 / 1_000_000) as usize;
        Audio {
            up: Resampler::new(source.sample_rate(), rate),
            down: Resampler::new(rate, sink.sample_rate()),
            mic: vec![0; src_n],
            mic_codec: Vec::new(),
            mic_fifo: std::collections::VecDeque::with_capacity(4096),
            play: Vec::new(),
            play_out: Vec::new(),
            limiter: ends
                .limiter_ceiling_dbfs
                .map(|c| Limiter::new(c, sink.sample_rate())),
            aec: echo_canceller(
                rate,
                frame_samples,
                &ends
                    .aec
                    .for_endpoints(ends.input.is_sound_device(), ends.output.is_sound_device()),
            ),
            source,
            sink,
        }
    }
}

/// Our RTCP BYE for `session`'s stream, sent at once (best effort: a full
/// socket buffer loses it, as any UDP datagram).
fn send_bye(
    session: &mut MediaSession,
    rtp: &UdpSocket,
    rtcp: &UdpSocket,
    rtcp_mux: bool,
    reason: &str,
    packet: &mut Vec<u8>,
) {
    let Some(to) = session.rtcp_bye(Instant::now(), ntp_now(), reason, packet) else {
        return;
    };
    let sock = if rtcp_mux { rtp } else { rtcp };
    let unspecified = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0);
    let local = sock.local_addr().unwrap_or(unspecified);
    if let Err(e) = sock.try_send_to(packet, udp_destination(local, to)) {
        tracing::debug!(%to, "RTCP BYE not sent: {e}");
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    rtp: UdpSocket,
    rtcp: UdpSocket,
    media: NegotiatedMedia,
    mut ends: MediaEndpoints,
    seed: u64,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    stats: Arc<Mutex<Option<MediaStats>>>,
    warning: Arc<Mutex<Option<String>>>,
) {
    let mut session = match MediaSession::new(Instant::now(), &media, &ends.media, seed) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("media not started: {e}");
            if let Ok(mut w) = warning.lock() {
                *w = Some(format!("media not started: {e}"));
            }
            return;
        }
    };
    let mut audio = Audio::open(&ends, shape(&session), &warning).await;
    let mut tick = tokio::time::interval(session.frame_duration());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    // The sockets' own addresses, read once (not per packet).
    let unspecified = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0);
    let rtp_local = rtp.local_addr().unwrap_or(unspecified);
    let rtcp_local = rtcp.local_addr().unwrap_or(unspecified);
    let mut rtp_buf = vec![0u8; 2048];
    let mut rtcp_buf = vec![0u8; 2048];
    let mut packet = Vec::with_capacity(1500);
    let mut last_stats = Instant::now();
    let (mut mic_meter, mut speaker_meter) = (LevelMeter::default(), LevelMeter::default());
    let mut recorder: Option<WavWriter> = None;
    let mut muted = false;
    let mut gain = (
        gain_factor(ends.input_gain_db),
        gain_factor(ends.output_gain_db),
    );
    // -20 dBFS peak.
    let mut reference = ReferenceTone::new(REFERENCE_TONE_HZ, 3277.0);
    let mut rebuild_seed = seed ^ 0x6d65_6469_615f_7265;
    let deadline = ends.stop_after.map(|d| Instant::now() + d);
    let mut conf: Option<ConfLink> = None;
    let mut beeps = Beeps::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    break;
                }
                if conf.as_ref().is_some_and(ConfLink::peer_gone) {
                    // The other call's media ended: back to our own audio.
                    let was_guest = conf.take().is_some_and(|c| c.is_guest());
                    if was_guest {
                        let _ = audio.sink.finish();
                        audio = Audio::open(&ends, shape(&session), &warning).await;
                    }
                }
                audio.source.read(&mut audio.mic);
                audio.up.process(&audio.mic, &mut audio.mic_codec);
                // Exactly one codec frame per tick, whatever the resampler
                // gave this time (its output count wobbles by a sample).
                audio.mic_fifo.extend(audio.mic_codec.drain(..));
                let n = session.frame_samples();
                while audio.mic_fifo.len() < n {
                    audio.mic_fifo.push_front(0);
                }
                audio.mic_codec.extend(audio.mic_fifo.drain(..n));
                apply_gain(&mut audio.mic_codec, gain.0);
                audio.aec.process_near_end(&mut audio.mic_codec); // AEC: near end
                if ends.reference_tone {
                    reference.add_to(&mut audio.mic_codec, session.pcm_rate());
                }
                mic_meter.feed(&audio.mic_codec);
                if muted {
                    audio.mic_codec.fill(0);
                }
                session.playout(now, &mut audio.play);
                if let Some(link) = conf.as_mut() {
                    link.tick(&mut audio.mic_codec, &mut audio.play, session.pcm_rate());
                }
                beeps.add_to(&mut audio.play, session.pcm_rate());
                apply_gain(&mut audio.play, gain.1);
                if let Some(to) = session.send_frame(now, &audio.mic_codec, &mut packet)
                    && let Err(e) = rtp.try_send_to(&packet, udp_destination(rtp_local, to)) {
                        tracing::debug!(%to, "RTP not sent: {e}");
                    }
                audio.aec.far_end(&audio.play); // AEC: far-end reference
                if let Some(rec) = recorder.as_mut()
                    && let Err(e) = rec.write_stereo(&audio.mic_codec, &audio.play) {
                        tracing::warn!("recording stopped: {e}");
                        recorder = None;
                    }
                audio.down.process(&audio.play, &mut audio.play_out);
                if let Some(l) = audio.limiter.as_mut() {
                    l.process(&mut audio.play_out);
                }
                speaker_meter.feed(&audio.play_out);
                if let Err(e) = audio.sink.write(&audio.play_out) {
                    tracing::warn!("audio output failed: {e}");
                }
                if let Some(to) = session.poll_rtcp(now, ntp_now(), &mut packet) {
                    let (sock, local) = if media.rtcp_mux { (&rtp, rtp_local) } else { (&rtcp, rtcp_local) };
                    let _ = sock.try_send_to(&packet, udp_destination(local, to));
                }
                if now.duration_since(last_stats) >= Duration::from_millis(200) {
                    last_stats = now;
                    let (mic_failed, speaker_failed) = (audio.source.failure(), audio.sink.failure());
                    if let Some((input, output, said)) = fallback_after_loss(
                        (&ends.input, &ends.output),
                        ends.fallback_on_loss,
                        (mic_failed.as_deref(), speaker_failed.as_deref()),
                    ) {
                        tracing::warn!("audio: {said}");
                        let _ = audio.sink.finish();
                        ends.input = input;
                        ends.output = output;
                        audio = Audio::open(&audio_ends(&ends, &conf), shape(&session), &warning).await;
                        if let Ok(mut w) = warning.lock() {
                            *w = Some(said);
                        }
                        continue;
                    }
                    // A device that failed mid-call (unplugged headset) is
                    // shown, not hidden behind silence.
                    if let Some(why) = audio.source.failure().or_else(|| audio.sink.failure())
                        && let Ok(mut w) = warning.lock() {
                            *w = Some(why);
                        }
                    let mut st = session.stats(now);
                    st.levels = Some(AudioLevels {
                        mic: mic_meter.take(),
                        speaker: speaker_meter.take(),
                    });
                    st.mic_device = audio.source.device_stats();
                    st.speaker_device = audio.sink.device_stats();
                    if let Ok(mut s) = stats.lock() {
                        *s = Some(st);
                    }
                }
            }
            r = rtp.recv_from(&mut rtp_buf) => {
                if let Ok((n, from)) = r {
                    session.on_datagram(Instant::now(), canonical(from), rtp_buf.get(..n).unwrap_or_default());
                }
            }
            r = rtcp.recv_from(&mut rtcp_buf) => {
                if let Ok((n, from)) = r {
                    session.on_datagram(Instant::now(), canonical(from), rtcp_buf.get(..n).unwrap_or_default());
                }
            }
            cmd = cmds.recv() => match cmd {
                Some(Cmd::Update(m)) => {
                    if !session.update(&m) {
                        // A new SSRC and sequence each time (never reuse them
                        // under the same SRTP key).
                        let fresh = crate::sip::rng::splitmix64(&mut rebuild_seed);
                        match MediaSession::new(Instant::now(), &m, &ends.media, fresh) {
                            Ok(s) => {
                                // The old SSRC leaves (RFC 3550 §8.2).
                                send_bye(&mut session, &rtp, &rtcp, media.rtcp_mux, "new stream", &mut packet);
                                let _ = audio.sink.finish();
                                session = s;
                                audio = Audio::open(&audio_ends(&ends, &conf), shape(&session), &warning).await;
                                tick = tokio::time::interval(session.frame_duration());
                                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                            }
                            Err(e) => tracing::warn!("media not updated: {e}"),
                        }
                    }
                }
                Some(Cmd::Mute(on)) => muted = on,
                Some(Cmd::Gain { input_db, output_db }) => {
                    gain = (gain_factor(input_db), gain_factor(output_db));
                }
                Some(Cmd::Dtmf(digits)) => {
                    if let Err(e) = session.send_dtmf(&digits) {
                        tracing::warn!("DTMF not sent: {e}");
                        if let Ok(mut w) = warning.lock() {
                            *w = Some(format!("DTMF not sent: {e}"));
                        }
                    }
                }
                Some(Cmd::Endpoints { input, output }) => {
                    let _ = audio.sink.finish();
                    ends.input = input;
                    ends.output = output;
                    if let Ok(mut w) = warning.lock() {
                        *w = None;
                    }
                    audio = Audio::open(&audio_ends(&ends, &conf), shape(&session), &warning).await;
                }
                Some(Cmd::Conference(link)) => {
                    let was_guest = conf.as_ref().is_some_and(ConfLink::is_guest);
                    conf = link;
                    if was_guest != conf.as_ref().is_some_and(ConfLink::is_guest) {
                        let _ = audio.sink.finish();
                        audio = Audio::open(&audio_ends(&ends, &conf), shape(&session), &warning).await;
                    }
                }
                Some(Cmd::Tone(tone)) => beeps.play(tone),
                Some(Cmd::Record(writer)) => {
                    if let Some(mut old) = recorder.take() {
                        let _ = old.finish();
                    }
                    recorder = writer;
                }
                Some(Cmd::Stop) | None => break,
            }
        }
    }
    send_bye(
        &mut session,
        &rtp,
        &rtcp,
        media.rtcp_mux,
        "call ended",
        &mut packet,
    );
    if let Ok(mut s) = stats.lock() {
        *s = Some(session.stats(Instant::now()));
    }
    if let Some(mut rec) = recorder.take() {
        let _ = rec.finish();
    }
    if let Err(e) = audio.sink.finish() {
        tracing::warn!("audio output not finished: {e}");
    }
}
