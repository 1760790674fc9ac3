//! One call's media stream, sans-IO: RTP in and out, the jitter buffer,
//! the codec, loss concealment, RTCP reports and symmetric-RTP latching.
//!
//! The runtime's media task owns the socket and the audio endpoints and
//! calls, every frame (`ptime`): [`MediaSession::send_frame`] with the
//! microphone PCM, and [`MediaSession::playout`] for the PCM to play; and
//! [`MediaSession::on_datagram`] for every datagram that arrives. The
//! current time is passed in; nothing here blocks or reads a clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::media::codec::{self, CodecKind, CodecOptions, Decoder, Encoder};
use crate::media::comfort_noise::ComfortNoise;
use crate::media::jitter::{JitterBuffer, JitterConfig, Playout};
use crate::rtp::red::{self, RedBlock, RedPayload, write_red};
use crate::rtp::srtp::SrtpSession;
use crate::rtp::{
    DtmfReport, TelephoneEvent, TelephoneEventReceiver, char_to_event, event_to_char,
};
use crate::rtp::{
    ReceiveStats, ReceiverReport, ReportBlock, RtcpPacket, RtpPacket, SendStats, is_rtcp,
    ntp_middle32, parse_compound, rtt_from_block, write_compound,
};
use crate::sdp::{Direction, NegotiatedMedia, OpusParams};

/// Knobs of the media path (from `[media]` in the config).
#[derive(Debug, Clone)]
pub struct MediaConfig {
    pub jitter_min_ms: u32,
    pub jitter_max_ms: u32,
    /// After this long without RTP, the stats say so (one-way audio).
    pub no_media_warning: Duration,
    pub codec: CodecOptions,
    /// Previous frames each RFC 2198 packet carries when `red` was
    /// negotiated, from the start and while the far end reports loss (1 or
    /// 2; 0 sends the primary alone). After a loss-free report interval
    /// packets carry at most one.
    pub red_depth: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            jitter_min_ms: 10,
            jitter_max_ms: 300,
            no_media_warning: Duration::from_secs(5),
            codec: CodecOptions::default(),
            red_depth: 2,
        }
    }
}

/// What a call's media is doing, for `status` and the faces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MediaStats {
    pub codec: String,
    /// Media is SRTP-protected.
    pub srtp: bool,
    /// Packets that failed SRTP authentication (forged, replayed, or plain).
    pub srtp_failures: u64,
    /// RFC 4733 digits received so far.
    pub dtmf_received: String,
    pub remote: String,
    /// The far end's RTP came from another address than it signalled and
    /// we now send there (symmetric RTP / NAT latching).
    pub latched: bool,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub packets_lost: i64,
    pub jitter_ms: f64,
    pub rtt_ms: Option<f64>,
    /// How long the frame being played waited in the jitter buffer, counted
    /// from the fastest packet's arrival (current delay).
    pub jitter_buffer_ms: u32,
    /// The delay the jitter buffer steers to (from the measured jitter,
    /// plus repair frames under loss); `jitter_buffer_ms` stays between it
    /// and about a frame more.
    pub jitter_target_ms: u32,
    pub concealed_frames: u64,
    /// Of `concealed_frames`, those rebuilt from in-band FEC (Opus LBRR in
    /// the following packet) rather than extrapolated.
    pub fec_recovered: u64,
    /// Lost packets whose frame was played at full quality from its RFC 2198
    /// redundant copy in a later packet (not counted in `concealed_frames`).
    pub red_recovered: u64,
    /// Loss (percent) the Opus encoder plans its FEC for: the configured
    /// start value, then what the far end's RTCP reports. `None` without FEC.
    pub fec_expected_loss_pct: Option<u8>,
    pub late_packets: u64,
    /// Frames the jitter buffer inserted (concealed without a loss) to
    /// raise its delay, and frames it skipped to lower it.
    pub inserted_frames: u64,
    pub dropped_frames: u64,
    pub bad_packets: u64,
    /// Milliseconds since the last RTP packet (since the start when none).
    pub silent_for_ms: u64,
    /// Set when nothing has arrived for the configured time (not after
    /// the far end's RTCP BYE).
    pub warning: Option<String>,
    /// The far end ended its stream with an RTCP BYE.
    pub far_end_bye: bool,
    /// Microphone and speaker levels since the last reading (set by the
    /// runtime, which sees the audio endpoints; `None` from the session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub levels: Option<crate::media::level::AudioLevels>,
    /// The microphone's and the speaker's device bridge counters, when they
    /// are sound devices (set by the runtime like `levels`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mic_device: Option<crate::audio::device::DeviceStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speaker_device: Option<crate::audio::device::DeviceStats>,
}

/// One digit being sent (RFC 4733 §2.5.1).
#[derive(Debug, Clone)]
struct DtmfTx {
    event: u8,
    start_ts: u32,
    /// Duration so far, in telephone-event clock units.
    duration: u32,
    /// End packets sent (three, for loss).
    ends_sent: u8,
    /// Silence sent after the digit, in ms.
    gap: u32,
}

const DTMF_TONE_MS: u32 = 100;
const DTMF_GAP_MS: u32 = 60;

/// RTCP report interval (RFC 3550 §6.2 minimum for a two-party call).
const RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// A new source address takes over only after the current one has been
/// quiet this long (NAT rebinding), never while it is sending.
const RELATCH_AFTER: Duration = Duration::from_secs(2);

pub struct MediaSession {
    encoder: Box<dyn Encoder>,
    /// Loss the encoder plans FEC for while the far end reports loss.
    fec_plan_pct: u8,
    decoder: Box<dyn Decoder>,
    codec_name: String,
    /// The far end's fmtp for our codec (a change means a new encoder).
    codec_fmtp: Option<String>,
    /// Opus DTX is on: frames libopus leaves empty are not sent.
    dtx: bool,
    /// Frames were left unsent since the last packet (the next is marked).
    dtx_pause: bool,
    /// Plays the far end's background level in the gaps of its stream.
    comfort_noise: ComfortNoise,
    /// The far end's stream ended with an RTCP BYE (until a new SSRC).
    far_end_bye: bool,
    payload_type: u8,
    telephone_event_pt: Option<u8>,
    pcm_rate: u32,
    frame_samples: usize,
    ts_step: u32,
    rtp_clock: u32,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    direction: Direction,
    remote_rtp: SocketAddr,
    remote_rtcp: SocketAddr,
    signalled_rtp: SocketAddr,
    rtcp_mux: bool,
    jitter: JitterBuffer,
    rx: ReceiveStats,
    rx_ssrc: Option<u32>,
    tx: SendStats,
    last_rx: Option<Instant>,
    started: Instant,
    next_rtcp: Instant,
    rtt: Option<Duration>,
    /// Wall clock reference (instant, NTP) from the runtime, for RTT.
    clock_ref: Option<(Instant, u64)>,
    bad_packets: u64,
    received: u64,
    cname: String,
    no_media_warning: Duration,
    payload: Vec<u8>,
    /// RFC 4733 digits waiting to be sent, and the one being sent.
    dtmf_queue: std::collections::VecDeque<u8>,
    dtmf: Option<DtmfTx>,
    te_clock: u32,
    dtmf_rx: TelephoneEventReceiver,
    /// Digits received (RFC 4733), in order.
    dtmf_received: String,
    /// Timestamp of the event being sent (constant over its packets).
    dtmf_start_ts: u32,
    /// SRTP when SDES settled keys; packets are protected on the way out
    /// and must authenticate on the way in.
    srtp: Option<SrtpSession>,
    /// The keys `srtp` runs with (a re-INVITE with the same keys keeps the
    /// SRTP state; new keys need a new session).
    srtp_keys: Option<Box<(crate::rtp::srtp::SrtpKey, crate::rtp::srtp::SrtpKey)>>,
    /// One frame of silence: what goes out while we hold the call.
    silence: Vec<i16>,
    /// Scratch for SRTP transforms (reused: no allocation per packet).
    clear: Vec<u8>,
    srtp_failures: u64,
    /// RFC 2198: the negotiated `red` type, how many previous frames each
    /// packet repeats, those frames (newest first, with their timestamps;
    /// buffers reused) and the scratch the RED payload is built in.
    red_pt: Option<u8>,
    red_depth: usize,
    /// `red_depth` as configured (the depth while loss is reported).
    red_depth_lossy: usize,
    red_prev: Vec<(u32, Vec<u8>)>,
    red_prev_len: usize,
    red_buf: Vec<u8>,
    /// Most redundant copies seen in one received RED packet: the jitter
    /// buffer waits that many frames for a lost one while loss is seen.
    red_depth_seen: usize,
}

/// An Opus frame this short (the TOC byte, maybe one more) is libopus
/// saying that DTX has nothing to send.
const DTX_MAX_BYTES: usize = 2;

/// Our codec settings narrowed by what the far end's Opus fmtp asks of a
/// sender (RFC 7587 §6.1): no more than its `maxaveragebitrate`, no wider
/// audio than its `maxplaybackrate` renders, DTX when it prefers it
/// (`usedtx=1`). In-band FEC stays as configured without `useinbandfec=1`:
/// that parameter is a preference, every receiver must take packets that
/// carry FEC, and an agent on a lossy link gains more from it than the few
/// kbit/s it costs. Other codecs take our settings unchanged.
pub fn codec_options(kind: CodecKind, far_fmtp: Option<&str>, ours: &CodecOptions) -> CodecOptions {
    let mut opts = ours.clone();
    if kind == CodecKind::Opus {
        let far = OpusParams::from_fmtp(far_fmtp.unwrap_or(""));
        if let Some(max) = far.maxaveragebitrate {
            opts.opus_bitrate = opts.opus_bitrate.min(max);
        }
        opts.opus_max_playback_rate = opts.opus_max_playback_rate.min(far.maxplaybackrate);
        opts.opus_dtx |= far.usedtx;
    }
    opts
}

impl MediaSession {
    /// A session for what offer/answer settled. `seed` gives the SSRC and
    /// the initial sequence number and timestamp (RFC 3550 §5.1: random).
    pub fn new(
        now: Instant,
        media: &NegotiatedMedia,
        config: &MediaConfig,
        seed: u64,
    ) -> Result<MediaSession, String> {
        let kind = CodecKind::from_name(&media.codec.name)
            .ok_or_else(|| format!("no codec for {}", media.codec.name))?;
        let opts = codec_options(kind, media.codec.fmtp.as_deref(), &config.codec);
        let mut encoder = codec::encoder(kind, &opts).map_err(|e| e.to_string())?;
        if media.red.is_some() {
            // RED repeats whole frames: no LBRR plan (see `plan_fec`).
            encoder.set_expected_loss(0).map_err(|e| e.to_string())?;
        }
        let decoder = codec::decoder(kind, &opts).map_err(|e| e.to_string())?;
        let ptime = media.ptime_ms.clamp(10, 60);
        let pcm_rate = encoder.sample_rate();
        let rtp_clock = media.codec.clock_rate;
        let jitter = JitterBuffer::new(JitterConfig {
            clock_rate: rtp_clock,
            frame_ms: ptime,
            min_delay_ms: config.jitter_min_ms,
            max_delay_ms: config.jitter_max_ms,
            // Opus LBRR for frame k rides in packet k + 1, as does the
            // first RFC 2198 copy; a sender with two copies per packet
            // raises this when they arrive (`on_datagram`).
            repair_frames: u32::from(kind == CodecKind::Opus || media.red.is_some()),
        });
        Ok(MediaSession {
            encoder,
            fec_plan_pct: opts.opus_expected_loss_pct,
            decoder,
            codec_name: media.codec.name.clone(),
            codec_fmtp: media.codec.fmtp.clone(),
            dtx: kind == CodecKind::Opus && opts.opus_dtx,
            dtx_pause: false,
            comfort_noise: ComfortNoise::new(seed as u32 ^ 0x636e_6f69),
            far_end_bye: false,
            payload_type: media.codec.payload_type,
            telephone_event_pt: media.telephone_event.as_ref().map(|t| t.payload_type),
            pcm_rate,
            frame_samples: (pcm_rate * ptime / 1000) as usize,
            ts_step: rtp_clock * ptime / 1000,
            rtp_clock,
            ssrc: (seed >> 32) as u32 | 1,
            seq: (seed >> 16) as u16,
            timestamp: seed as u32,
            direction: media.direction,
            remote_rtp: media.remote_rtp,
            remote_rtcp: media.remote_rtcp,
            signalled_rtp: media.remote_rtp,
            rtcp_mux: media.rtcp_mux,
            jitter,
            rx: ReceiveStats::new(rtp_clock),
            rx_ssrc: None,
            tx: SendStats::default(),
            last_rx: None,
            started: now,
            // RFC 3550 §6.2: the first report after half the interval, so
            // the far end learns our loss (and plans its FEC) early.
            next_rtcp: now + RTCP_INTERVAL / 2,
            rtt: None,
            clock_ref: None,
            bad_packets: 0,
            received: 0,
            cname: format!("softline-{:08x}", seed as u32),
            no_media_warning: config.no_media_warning,
            payload: Vec::with_capacity(1500),
            srtp: match &media.srtp {
                Some(keys) => {
                    Some(SrtpSession::new(&keys.0, &keys.1).map_err(|e| format!("SRTP: {e}"))?)
                }
                None => None,
            },
            clear: Vec::with_capacity(1500),
            srtp_keys: media.srtp.clone(),
            silence: vec![0; (pcm_rate * ptime / 1000) as usize],
            srtp_failures: 0,
            dtmf_queue: std::collections::VecDeque::new(),
            dtmf: None,
            te_clock: media
                .telephone_event
                .as_ref()
                .map(|t| t.clock_rate)
                .unwrap_or(8000),
            dtmf_rx: TelephoneEventReceiver::new(),
            dtmf_received: String::new(),
            dtmf_start_ts: 0,
            red_pt: media.red,
            red_depth: config.red_depth.min(2),
            red_depth_lossy: config.red_depth.min(2),
            red_prev: (0..2).map(|_| (0, Vec::with_capacity(1500))).collect(),
            red_prev_len: 0,
            red_buf: Vec::with_capacity(1500),
            red_depth_seen: 1,
        })
    }

    /// A re-negotiation that keeps the codec: new remote address and
    /// direction (hold/resume) without restarting the stream.
    pub fn update(&mut self, media: &NegotiatedMedia) -> bool {
        if !media.codec.name.eq_ignore_ascii_case(&self.codec_name)
            || media.codec.payload_type != self.payload_type
            || media.codec.fmtp != self.codec_fmtp
            || media.srtp != self.srtp_keys
        {
            // New keys (or a codec change, or new codec parameters) need a
            // new session.
            return false;
        }
        self.direction = media.direction;
        if media.red != self.red_pt {
            self.red_pt = media.red;
            self.red_prev_len = 0;
            if self.red_pt.is_some() {
                self.plan_fec(0);
            }
        }
        if media.remote_rtp != self.signalled_rtp {
            self.signalled_rtp = media.remote_rtp;
            self.remote_rtp = media.remote_rtp;
            self.remote_rtcp = media.remote_rtcp;
        }
        true
    }

    /// PCM rate the codec wants (and [`MediaSession::playout`] produces).
    pub fn pcm_rate(&self) -> u32 {
        self.pcm_rate
    }

    /// Samples per frame at [`MediaSession::pcm_rate`].
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    pub fn frame_duration(&self) -> Duration {
        Duration::from_micros(
            self.frame_samples as u64 * 1_000_000 / u64::from(self.pcm_rate.max(1)),
        )
    }

    fn sends(&self) -> bool {
        matches!(self.direction, Direction::SendRecv | Direction::SendOnly)
    }

    fn receives(&self) -> bool {
        matches!(self.direction, Direction::SendRecv | Direction::RecvOnly)
    }

    /// One datagram from `from` on our RTP (or, with rtcp-mux, shared) port.
    pub fn on_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let rtcp = is_rtcp(data);
        let mut clear = std::mem::take(&mut self.clear);
        let data = match self.srtp.as_mut() {
            Some(srtp) => {
                let r = if rtcp {
                    srtp.unprotect_rtcp(data, &mut clear)
                } else {
                    srtp.unprotect_rtp(data, &mut clear)
                };
                if r.is_err() {
                    // Forged, replayed or plain: never played.
                    self.srtp_failures += 1;
                    self.bad_packets += 1;
                    self.clear = clear;
                    return;
                }
                &clear[..]
            }
            None => data,
        };
        self.on_clear_datagram(now, from, rtcp, data);
        self.clear = clear;
    }

    fn on_clear_datagram(&mut self, now: Instant, from: SocketAddr, rtcp: bool, data: &[u8]) {
        if rtcp {
            self.on_rtcp(now, data);
            return;
        }
        // While the latched source is alive, RTP from anywhere else is not
        // played (injection, or a stale NAT mapping).
        if from != self.remote_rtp
            && self
                .last_rx
                .is_some_and(|t| now.saturating_duration_since(t) < RELATCH_AFTER)
        {
            self.bad_packets += 1;
            return;
        }
        let Ok(packet) = RtpPacket::parse(data) else {
            self.bad_packets += 1;
            return;
        };
        // RFC 2198: the primary block is the packet's audio; redundant
        // blocks may fill slots whose own packets were lost.
        let red = if self.red_pt.is_some() && Some(packet.payload_type) == self.red_pt {
            match RedPayload::parse(&packet.payload) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::trace!("malformed RED payload: {e}");
                    self.bad_packets += 1;
                    return;
                }
            }
        } else {
            None
        };
        let (payload_type, payload) = match &red {
            Some(r) => (r.primary.payload_type, r.primary.data),
            None => (packet.payload_type, &packet.payload[..]),
        };
        if Some(payload_type) == self.telephone_event_pt {
            if let Ok(ev) = TelephoneEvent::parse(payload)
                && let Some(DtmfReport::Ended { event, .. }) =
                    self.dtmf_rx.on_packet(packet.timestamp, packet.marker, &ev)
                && let Some(c) = event_to_char(event)
            {
                self.dtmf_received.push(c);
            }
            return;
        }
        if payload_type != self.payload_type {
            self.bad_packets += 1;
            return;
        }
        self.latch(now, from);
        self.last_rx = Some(now);
        self.received += 1;
        if self.rx_ssrc != Some(packet.ssrc) {
            self.rx_ssrc = Some(packet.ssrc);
            self.rx = ReceiveStats::new(self.rtp_clock);
            self.far_end_bye = false;
        }
        self.rx.on_packet(packet.sequence, packet.timestamp, now);
        if self.receives() {
            self.jitter.push(
                now,
                packet.sequence,
                packet.timestamp,
                packet.ssrc,
                packet.marker,
                payload,
            );
            if let Some(r) = &red {
                let depth = r.redundant().len().min(2);
                if depth > self.red_depth_seen {
                    self.red_depth_seen = depth;
                    self.jitter.set_repair_frames(depth as u32);
                }
            }
            for block in red.iter().flat_map(|r| r.redundant()) {
                if block.payload_type == self.payload_type
                    && block.timestamp_offset > 0
                    && !block.data.is_empty()
                {
                    self.jitter
                        .fill(block.timestamp(packet.timestamp), packet.ssrc, block.data);
                }
            }
        }
    }

    /// Symmetric RTP: send to where the far end's media really comes from.
    fn latch(&mut self, now: Instant, from: SocketAddr) {
        if from == self.remote_rtp {
            return;
        }
        let current_quiet = self
            .last_rx
            .is_none_or(|t| now.duration_since(t) >= RELATCH_AFTER);
        if current_quiet {
            tracing::info!(signalled = %self.signalled_rtp, actual = %from, "media: latching to the address RTP comes from");
            self.remote_rtp = from;
            self.remote_rtcp = if self.rtcp_mux {
                from
            } else {
                SocketAddr::new(from.ip(), from.port().wrapping_add(1))
            };
        }
    }

    fn on_rtcp(&mut self, now: Instant, data: &[u8]) {
        let Ok(packets) = parse_compound(data) else {
            self.bad_packets += 1;
            return;
        };
        for p in packets {
            match p {
                RtcpPacket::SenderReport(sr) => {
                    self.rx
                        .on_sender_report(ntp_middle32(sr.ntp_timestamp), now);
                    self.on_report_blocks(&sr.reports, now);
                }
                RtcpPacket::ReceiverReport(rr) => self.on_report_blocks(&rr.reports, now),
                RtcpPacket::Bye { ssrcs, reason }
                    if self.rx_ssrc.is_some_and(|theirs| ssrcs.contains(&theirs)) =>
                {
                    tracing::debug!(
                        reason = reason.as_deref().unwrap_or(""),
                        "far end's RTCP BYE"
                    );
                    self.far_end_bye = true;
                }
                _ => {}
            }
        }
    }

    fn on_report_blocks(&mut self, blocks: &[ReportBlock], now: Instant) {
        let Some(block) = blocks.iter().find(|b| b.ssrc == self.ssrc) else {
            return;
        };
        self.plan_fec(block.fraction_lost);
        let Some((at, ntp)) = self.clock_ref else {
            return;
        };
        // NTP now = the reference plus the time since, in 1/2^32 s.
        let since = now.saturating_duration_since(at);
        let ntp_now = ntp.wrapping_add(((since.as_nanos() << 32) / 1_000_000_000) as u64);
        if let Some(rtt) = rtt_from_block(block, ntp_middle32(ntp_now)) {
            self.rtt = Some(rtt);
        }
    }

    /// Follow the loss the far end reports (fraction lost over its last
    /// report interval): FEC planned for the configured loss while packets
    /// are lost, none after a clean interval. Planning for loss costs quality
    /// when nothing is lost (libopus spends bits on LBRR, weakens long-term
    /// prediction and narrows the band: PESQ 3.9 → 2.8 on the bench speech
    /// at 24 kbit/s), and planning for more than 10 % at 24 kbit/s lowers
    /// quality even at 10-15 % loss, so the plan does not track the
    /// reported value itself.
    ///
    /// With RED (RFC 2198) negotiated there is no plan at all: the LBRR of
    /// frame k rides in packet k + 1, as does frame k's full-quality RED
    /// copy, so LBRR would only cost quality and bits.
    fn plan_fec(&mut self, fraction_lost: u8) {
        self.red_depth = if fraction_lost == 0 {
            self.red_depth_lossy.min(1)
        } else {
            self.red_depth_lossy
        };
        let plan = if fraction_lost == 0 || self.red_pt.is_some() {
            0
        } else {
            self.fec_plan_pct
        };
        if let Err(e) = self.encoder.set_expected_loss(plan) {
            tracing::debug!("expected loss not set: {e}");
        }
    }

    /// The wall clock in NTP format at `now` (the runtime reads it).
    pub fn set_clock(&mut self, now: Instant, ntp: u64) {
        self.clock_ref = Some((now, ntp));
    }

    /// Queue digits (`0-9 * # A-D`) to send as RFC 4733 events; each lasts
    /// 100 ms with 60 ms between digits, what Asterisk IVRs expect.
    pub fn send_dtmf(&mut self, digits: &str) -> Result<(), String> {
        if self.telephone_event_pt.is_none() {
            return Err("the far end did not accept telephone-event (RFC 4733)".into());
        }
        let mut events = Vec::new();
        for c in digits.chars().filter(|c| !c.is_whitespace()) {
            events.push(char_to_event(c).ok_or_else(|| format!("`{c}` is not a DTMF digit"))?);
        }
        self.dtmf_queue.extend(events);
        Ok(())
    }

    /// Digits received so far (RFC 4733 events that ended), in order.
    pub fn dtmf_received(&self) -> &str {
        &self.dtmf_received
    }

    /// The next telephone-event packet in place of this frame's audio, if
    /// a digit is being sent.
    fn dtmf_frame(&mut self, ts: u32) -> Option<(Vec<u8>, bool)> {
        let frame_ms = self.frame_ms();
        let te_step = self.te_clock * frame_ms / 1000;
        if self.dtmf.is_none() {
            let event = self.dtmf_queue.pop_front()?;
            self.dtmf = Some(DtmfTx {
                event,
                start_ts: ts,
                duration: 0,
                ends_sent: 0,
                gap: 0,
            });
        }
        let tx = self.dtmf.as_mut()?;
        if tx.ends_sent >= 3 {
            // Inter-digit gap: audio (silence) for a few frames.
            tx.gap += frame_ms;
            if tx.gap >= DTMF_GAP_MS {
                self.dtmf = None;
            }
            return None;
        }
        let first = tx.duration == 0 && tx.ends_sent == 0;
        let tone = self.te_clock * DTMF_TONE_MS / 1000;
        if tx.duration < tone {
            tx.duration = (tx.duration + te_step).min(u32::from(u16::MAX));
        }
        let end = tx.duration >= tone;
        if end {
            tx.ends_sent += 1;
        }
        let ev = TelephoneEvent {
            event: tx.event,
            end,
            volume: 10,
            duration: tx.duration as u16,
        };
        let mut payload = Vec::with_capacity(4);
        ev.write(&mut payload);
        self.dtmf_start_ts = tx.start_ts;
        Some((payload, first))
    }

    fn frame_ms(&self) -> u32 {
        (self.frame_samples as u32 * 1000 / self.pcm_rate.max(1)).max(1)
    }

    /// Encode one frame of microphone PCM (at [`MediaSession::pcm_rate`],
    /// [`MediaSession::frame_samples`] long) into an RTP packet in `out`.
    /// Returns where to send it, `None` when on hold (not sending).
    pub fn send_frame(
        &mut self,
        now: Instant,
        pcm: &[i16],
        out: &mut Vec<u8>,
    ) -> Option<SocketAddr> {
        let _ = now;
        let ts = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(self.ts_step);
        if !self.sends() {
            return None;
        }
        self.payload.clear();
        let (payload_type, marker, ts) = match self.dtmf_frame(ts) {
            Some((event, first)) => {
                // Frames before the digit are not repeated after it.
                self.red_prev_len = 0;
                self.payload.extend_from_slice(&event);
                (
                    self.telephone_event_pt.unwrap_or(self.payload_type),
                    first,
                    self.dtmf_start_ts,
                )
            }
            None => {
                // On hold (our sendonly) the far end gets silence, never
                // the live microphone.
                let pcm = if self.direction == Direction::SendOnly {
                    &self.silence[..]
                } else {
                    pcm
                };
                if let Err(e) = self.encoder.encode(pcm, &mut self.payload) {
                    tracing::debug!("encode failed: {e}");
                    return None;
                }
                if self.dtx && self.payload.len() <= DTX_MAX_BYTES {
                    // Opus DTX: libopus found nothing worth sending (it
                    // sends a comfort-noise update every 400 ms). Copies of
                    // frames before the pause are not carried after it.
                    self.dtx_pause = true;
                    self.red_prev_len = 0;
                    return None;
                }
                // The first packet of a stream and of a talkspurt after a
                // DTX pause is marked (RFC 3551 §4.1, RFC 7587 §4.1).
                let marker = self.tx.packets == 0 || std::mem::take(&mut self.dtx_pause);
                match self.red_pt {
                    Some(red_pt) => {
                        self.wrap_red(ts);
                        (red_pt, marker, ts)
                    }
                    None => (self.payload_type, marker, ts),
                }
            }
        };
        let packet = RtpPacket {
            marker,
            payload_type,
            sequence: self.seq,
            timestamp: ts,
            ssrc: self.ssrc,
            csrc: Vec::new(),
            extension: None,
            payload: std::mem::take(&mut self.payload),
        };
        self.seq = self.seq.wrapping_add(1);
        out.clear();
        packet.write(out);
        self.payload = packet.payload;
        if let Some(srtp) = self.srtp.as_mut() {
            self.clear.clear();
            self.clear.extend_from_slice(out);
            if let Err(e) = srtp.protect_rtp(&self.clear, out) {
                tracing::debug!("SRTP protect failed: {e}");
                return None;
            }
        }
        self.tx.on_packet(self.payload.len());
        Some(self.remote_rtp)
    }

    /// Replace the encoded frame in `self.payload` (stamped `ts`) by a RED
    /// payload (RFC 2198) carrying the previous `red_depth` frames, oldest
    /// first, then this one; remember this frame for the next packets.
    fn wrap_red(&mut self, ts: u32) {
        let depth = self.red_depth.min(self.red_prev_len);
        let mut blocks = [RedBlock {
            payload_type: self.payload_type,
            timestamp_offset: 0,
            data: &[],
        }; 2];
        let mut n = 0;
        for (prev_ts, data) in self.red_prev.iter().take(depth).rev() {
            let offset = ts.wrapping_sub(*prev_ts);
            // Too old for 14 bits, or too long for 10: sent without it.
            if offset == 0
                || offset > u32::from(red::MAX_TIMESTAMP_OFFSET)
                || data.len() > red::MAX_BLOCK_LEN
            {
                continue;
            }
            if let Some(b) = blocks.get_mut(n) {
                b.timestamp_offset = offset as u16;
                b.data = data;
                n += 1;
            }
        }
        self.red_buf.clear();
        let blocks = blocks.get(..n).unwrap_or_default();
        if let Err(e) = write_red(blocks, self.payload_type, &self.payload, &mut self.red_buf) {
            // Only an empty frame gets here: send it without redundancy.
            tracing::debug!("RED not written: {e}");
            self.red_buf.clear();
            self.red_buf.push(self.payload_type & 0x7f);
            self.red_buf.extend_from_slice(&self.payload);
        }
        // Keep this frame as the newest previous one (buffers rotate).
        self.red_prev.rotate_right(1);
        if let Some((t, data)) = self.red_prev.first_mut() {
            *t = ts;
            data.clear();
            data.extend_from_slice(&self.payload);
        }
        self.red_prev_len = (self.red_prev_len + 1).min(self.red_prev.len());
        std::mem::swap(&mut self.payload, &mut self.red_buf);
    }

    /// One frame of PCM to play: decoded, concealed, or silence.
    pub fn playout(&mut self, now: Instant, out: &mut Vec<i16>) {
        out.clear();
        let n = self.frame_samples;
        let (result, heard) = match self.jitter.pop(now) {
            Playout::Frame { payload, .. } => {
                let r = self.decoder.decode(&payload, out);
                self.jitter.recycle(payload);
                (r, true)
            }
            Playout::Lost { next } => {
                let r = self.decoder.conceal(n, next.as_deref(), out);
                if let Some(next) = next {
                    self.jitter.recycle(next);
                }
                (r, false)
            }
            Playout::Empty => {
                // A gap (nothing yet, silence suppression, DTX, an
                // outage): the far end's background, not dead air.
                out.resize(n, 0);
                self.comfort_noise.fill(out);
                (Ok(()), false)
            }
        };
        if let Err(e) = result {
            tracing::debug!("decode failed: {e}");
            out.clear();
        }
        out.resize(n, 0);
        if heard {
            self.comfort_noise.heard(out);
        }
    }

    /// An RTCP report when one is due (SR when we send, else RR, with SDES
    /// CNAME). `ntp` is the wall clock in NTP format, from the runtime.
    pub fn poll_rtcp(&mut self, now: Instant, ntp: u64, out: &mut Vec<u8>) -> Option<SocketAddr> {
        if now < self.next_rtcp {
            return None;
        }
        self.next_rtcp = now + RTCP_INTERVAL;
        self.rtcp_compound(now, ntp, None, out)
    }

    /// The RTCP BYE that ends our stream (RFC 3550 §6.6): a last report,
    /// SDES and BYE in one compound packet, when the call's media stops or
    /// moves to a new SSRC. Nothing when we never sent RTP or RTCP
    /// (§6.3.7: then no BYE).
    pub fn rtcp_bye(
        &mut self,
        now: Instant,
        ntp: u64,
        reason: &str,
        out: &mut Vec<u8>,
    ) -> Option<SocketAddr> {
        if self.tx.packets == 0 && self.clock_ref.is_none() {
            return None;
        }
        self.rtcp_compound(now, ntp, Some(reason), out)
    }

    fn rtcp_compound(
        &mut self,
        now: Instant,
        ntp: u64,
        bye: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Option<SocketAddr> {
        let blocks: Vec<_> = self
            .rx_ssrc
            .map(|s| vec![self.rx.report_block(s, now)])
            .unwrap_or_default();
        self.clock_ref = Some((now, ntp));
        let report = if self.tx.packets > 0 {
            self.tx
                .sender_report(self.ssrc, ntp, self.timestamp, blocks)
        } else {
            RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: self.ssrc,
                reports: blocks,
            })
        };
        let sdes = RtcpPacket::Sdes(vec![(self.ssrc, vec![(1, self.cname.clone())])]);
        out.clear();
        match bye {
            Some(reason) => {
                let bye = RtcpPacket::Bye {
                    ssrcs: vec![self.ssrc],
                    reason: (!reason.is_empty()).then(|| reason.to_string()),
                };
                write_compound(&[report, sdes, bye], out);
            }
            None => write_compound(&[report, sdes], out),
        }
        if let Some(srtp) = self.srtp.as_mut() {
            self.clear.clear();
            self.clear.extend_from_slice(out);
            if srtp.protect_rtcp(&self.clear, out).is_err() {
                return None;
            }
        }
        Some(self.remote_rtcp)
    }

    pub fn stats(&self, now: Instant) -> MediaStats {
        let silent_for = now.duration_since(self.last_rx.unwrap_or(self.started));
        // After the far end's BYE its silence is on purpose, not one-way audio.
        let warning = (self.receives() && !self.far_end_bye && silent_for >= self.no_media_warning)
            .then(|| {
            format!(
                "no audio received for {} s (one-way audio: check NAT/firewall for RTP from {})",
                silent_for.as_secs(),
                self.remote_rtp
            )
        });
        let j = self.jitter.stats();
        MediaStats {
            codec: self.codec_name.clone(),
            srtp: self.srtp.is_some(),
            srtp_failures: self.srtp_failures,
            dtmf_received: self.dtmf_received.clone(),
            remote: self.remote_rtp.to_string(),
            latched: self.remote_rtp != self.signalled_rtp,
            packets_sent: u64::from(self.tx.packets),
            packets_received: self.received,
            packets_lost: self.rx.lost(),
            jitter_ms: self.rx.jitter_ms(),
            rtt_ms: self.rtt.map(|d| d.as_secs_f64() * 1000.0),
            jitter_buffer_ms: j.current_delay_ms,
            jitter_target_ms: j.target_delay_ms,
            concealed_frames: j.concealed,
            fec_recovered: self.decoder.fec_frames(),
            red_recovered: j.redundant_played,
            fec_expected_loss_pct: self.encoder.expected_loss(),
            late_packets: j.late,
            inserted_frames: j.inserted,
            dropped_frames: j.dropped_for_latency,
            bad_packets: self.bad_packets,
            silent_for_ms: silent_for.as_millis() as u64,
            warning,
            far_end_bye: self.far_end_bye,
            levels: None,
            mic_device: None,
            speaker_device: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tone::{sine, tone_share};
    use crate::sdp::CodecSpec;

    fn negotiated(remote: &str) -> NegotiatedMedia {
        let remote: SocketAddr = remote.parse().unwrap();
        NegotiatedMedia {
            remote_rtp: remote,
            remote_rtcp: SocketAddr::new(remote.ip(), remote.port() + 1),
            codec: CodecSpec::pcmu(),
            telephone_event: None,
            ptime_ms: 20,
            direction: Direction::SendRecv,
            rtcp_mux: false,
            srtp: None,
            red: None,
        }
    }

    use crate::runtime::test_epoch as t0;

    /// A (10.0.0.1:5000) and B (10.0.0.2:4000) on PCMU, default settings.
    fn pcmu_pair(now: Instant) -> (MediaSession, MediaSession) {
        let cfg = MediaConfig::default();
        (
            MediaSession::new(now, &negotiated("10.0.0.2:4000"), &cfg, 1).unwrap(),
            MediaSession::new(now, &negotiated("10.0.0.1:5000"), &cfg, 2).unwrap(),
        )
    }

    #[test]
    fn frames_sent_by_one_session_play_out_at_the_other() {
        let now = t0();
        let (mut a, mut b) = pcmu_pair(now);
        let tone = sine(1000.0, 8000, 8000.0, 8000);
        let (mut pkt, mut heard, mut out) = (Vec::new(), Vec::new(), Vec::new());
        for (i, frame) in tone.chunks(160).enumerate() {
            let at = now + Duration::from_millis(20 * i as u64);
            let to = a.send_frame(at, frame, &mut pkt).unwrap();
            assert_eq!(to, "10.0.0.2:4000".parse().unwrap());
            b.on_datagram(at, "10.0.0.1:5000".parse().unwrap(), &pkt);
            b.playout(at, &mut out);
            assert_eq!(out.len(), 160);
            heard.extend_from_slice(&out);
        }
        assert!(tone_share(&heard[1600..], 8000, 1000.0) > 0.95);
        let s = b.stats(now + Duration::from_secs(1));
        assert_eq!(
            (s.packets_received, s.bad_packets, s.latched),
            (50, 0, false)
        );
        assert!(s.warning.is_none());
    }

    #[test]
    fn rtp_from_another_address_is_latched_onto() {
        let now = t0();
        let mut b = MediaSession::new(
            now,
            &negotiated("10.0.0.1:5000"),
            &MediaConfig::default(),
            2,
        )
        .unwrap();
        let mut a = MediaSession::new(
            now,
            &negotiated("10.0.0.2:4000"),
            &MediaConfig::default(),
            1,
        )
        .unwrap();
        let mut pkt = Vec::new();
        a.send_frame(now, &[0; 160], &mut pkt);
        // The far end is behind a NAT: its RTP arrives from 203.0.113.9:61000.
        let nat: SocketAddr = "203.0.113.9:61000".parse().unwrap();
        b.on_datagram(now, nat, &pkt);
        assert_eq!(b.send_frame(now, &[0; 160], &mut pkt), Some(nat));
        assert!(b.stats(now).latched);
        // A stranger does not take over while the latched source is alive...
        a.send_frame(now, &[0; 160], &mut pkt);
        b.on_datagram(
            now + Duration::from_millis(20),
            "198.51.100.7:9".parse().unwrap(),
            &pkt,
        );
        assert_eq!(b.send_frame(now, &[0; 160], &mut pkt), Some(nat));
    }

    #[test]
    fn silence_from_the_far_end_is_reported_as_one_way_audio() {
        let now = t0();
        let mut s = MediaSession::new(
            now,
            &negotiated("10.0.0.2:4000"),
            &MediaConfig::default(),
            3,
        )
        .unwrap();
        assert!(s.stats(now + Duration::from_secs(4)).warning.is_none());
        let st = s.stats(now + Duration::from_secs(6));
        assert!(st.warning.unwrap().contains("no audio received for 6 s"));
        // Garbage on the port is counted, never played: a truncated RTP
        // header, an RTCP SR whose length runs past the datagram, an RTP
        // packet of version 1.
        let from = "10.0.0.2:4000".parse().unwrap();
        s.on_datagram(now, from, &[0x80, 0, 1]);
        assert_eq!(s.stats(now).bad_packets, 1);
        s.on_datagram(now, from, &[0x80, 200, 0, 9, 0, 0, 0, 1]);
        s.on_datagram(now, from, &[0x40, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff]);
        let st = s.stats(now);
        assert_eq!((st.bad_packets, st.packets_received), (3, 0));
    }

    #[test]
    fn dtmf_digits_cross_as_rfc4733_events() {
        let now = t0();
        let mut m = negotiated("10.0.0.2:4000");
        m.telephone_event = Some(CodecSpec::telephone_event(101, 8000));
        let mut a = MediaSession::new(now, &m, &MediaConfig::default(), 1).unwrap();
        let mut b = MediaSession::new(now, &m, &MediaConfig::default(), 2).unwrap();
        a.send_dtmf("12#").unwrap();
        assert!(a.send_dtmf("x").is_err());
        let mut pkt = Vec::new();
        let mut events = Vec::new();
        for i in 0..60u64 {
            let at = now + Duration::from_millis(20 * i);
            a.send_frame(at, &[0; 160], &mut pkt);
            let p = RtpPacket::parse(&pkt).unwrap();
            if p.payload_type == 101 {
                events.push((
                    p.marker,
                    p.timestamp,
                    TelephoneEvent::parse(&p.payload).unwrap(),
                ));
            }
            b.on_datagram(at, "10.0.0.1:5000".parse().unwrap(), &pkt);
        }
        assert_eq!(b.dtmf_received(), "12#");
        // First digit: marker on its first packet only, one timestamp,
        // durations growing by 160 to 800 (100 ms), three end packets.
        let first: Vec<_> = events.iter().filter(|e| e.2.event == 1).collect();
        assert!(first[0].0 && first.iter().skip(1).all(|e| !e.0));
        assert!(first.iter().all(|e| e.1 == first[0].1));
        assert_eq!(first.iter().map(|e| e.2.duration).max(), Some(800));
        assert_eq!(first.iter().filter(|e| e.2.end).count(), 3);
        // Without telephone-event negotiated, DTMF is refused.
        let mut plain = MediaSession::new(
            now,
            &negotiated("10.0.0.2:4000"),
            &MediaConfig::default(),
            3,
        )
        .unwrap();
        assert!(plain.send_dtmf("1").is_err());
    }

    #[test]
    fn holding_sends_silence_not_the_microphone() {
        let now = t0();
        let mut m = negotiated("10.0.0.2:4000");
        m.direction = Direction::SendOnly; // we hold
        let mut s = MediaSession::new(now, &m, &MediaConfig::default(), 5).unwrap();
        let mut pkt = Vec::new();
        s.send_frame(now, &sine(1000.0, 8000, 8000.0, 160), &mut pkt)
            .unwrap();
        let p = RtpPacket::parse(&pkt).unwrap();
        // µ-law silence is 0xFF.
        assert!(
            p.payload.iter().all(|&b| b == 0xFF),
            "{:?}",
            &p.payload[..8]
        );
    }

    #[test]
    fn on_hold_nothing_is_sent() {
        let now = t0();
        let mut m = negotiated("10.0.0.2:4000");
        m.direction = Direction::RecvOnly;
        let mut s = MediaSession::new(now, &m, &MediaConfig::default(), 4).unwrap();
        let mut pkt = Vec::new();
        assert_eq!(s.send_frame(now, &[0; 160], &mut pkt), None);
        m.direction = Direction::SendRecv;
        assert!(s.update(&m));
        assert!(s.send_frame(now, &[0; 160], &mut pkt).is_some());
    }

    fn opus_pair(now: Instant, config: &MediaConfig) -> (MediaSession, MediaSession) {
        let mut ma = negotiated("10.0.0.2:4000");
        ma.codec = CodecSpec::opus(111);
        let mut mb = negotiated("10.0.0.1:5000");
        mb.codec = CodecSpec::opus(111);
        (
            MediaSession::new(now, &ma, config, 1).unwrap(),
            MediaSession::new(now, &mb, config, 2).unwrap(),
        )
    }

    #[test]
    fn a_gap_in_the_far_ends_stream_plays_its_background_not_dead_air() {
        let now = t0();
        let (mut a, mut b) = pcmu_pair(now);
        // 1 s of a tone over a -60 dBFS hum-free background (a 3 kHz tone
        // at that level stands in for it), then the far end goes quiet.
        let talk = sine(440.0, 8000, 6000.0, 8000);
        let bg = sine(3000.0, 8000, 32.8, 8000);
        let (mut pkt, mut out, mut gap) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..100u64 {
            let at = now + Duration::from_millis(20 * i);
            if i < 50 {
                let k = i as usize * 160;
                let frame: Vec<i16> = if i % 10 < 7 {
                    talk[k..k + 160].to_vec()
                } else {
                    bg[k..k + 160].to_vec()
                };
                a.send_frame(at, &frame, &mut pkt).unwrap();
                b.on_datagram(at, "10.0.0.1:5000".parse().unwrap(), &pkt);
            }
            b.playout(at, &mut out);
            if i >= 60 {
                gap.extend_from_slice(&out);
            }
        }
        let sum: f64 = gap.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        let dbfs = 20.0 * ((sum / gap.len() as f64).sqrt() / 32768.0).log10();
        assert!((dbfs + 60.0).abs() < 3.0, "gap at {dbfs:.1} dBFS");
    }

    #[test]
    fn rtcp_bye_ends_our_stream_and_the_far_end_stops_warning() {
        let now = t0();
        let (mut a, mut b) = pcmu_pair(now);
        let mut pkt = Vec::new();
        // Nothing sent yet: no BYE (RFC 3550 §6.3.7).
        assert_eq!(a.rtcp_bye(now, 0, "call ended", &mut pkt), None);
        for i in 0..10u64 {
            let at = now + Duration::from_millis(20 * i);
            a.send_frame(at, &[0; 160], &mut pkt).unwrap();
            b.on_datagram(at, "10.0.0.1:5000".parse().unwrap(), &pkt);
        }
        let later = now + Duration::from_secs(10);
        assert!(
            b.stats(later).warning.is_some(),
            "silence without BYE warns"
        );
        let to = a.rtcp_bye(now, 1 << 32, "call ended", &mut pkt);
        assert_eq!(to, Some("10.0.0.2:4001".parse().unwrap()));
        let parsed = parse_compound(&pkt).unwrap();
        assert!(matches!(parsed.first(), Some(RtcpPacket::SenderReport(_))));
        assert!(matches!(parsed.get(1), Some(RtcpPacket::Sdes(_))));
        assert_eq!(
            parsed.get(2),
            Some(&RtcpPacket::Bye {
                ssrcs: vec![a.ssrc],
                reason: Some("call ended".into())
            })
        );
        b.on_datagram(now, "10.0.0.1:5001".parse().unwrap(), &pkt);
        let s = b.stats(later);
        assert!(s.far_end_bye);
        assert_eq!(s.warning, None, "its silence after BYE is on purpose");
        assert_eq!(s.bad_packets, 0);
    }

    #[test]
    fn codec_options_follow_the_far_ends_opus_fmtp() {
        let ours = CodecOptions::default();
        let o = codec_options(
            CodecKind::Opus,
            Some("maxplaybackrate=16000; maxaveragebitrate=12000; usedtx=1"),
            &ours,
        );
        assert_eq!(
            (
                o.opus_bitrate,
                o.opus_max_playback_rate,
                o.opus_dtx,
                o.opus_fec
            ),
            (12_000, 16_000, true, true)
        );
        // A higher cap than ours and no preferences: ours.
        let o = codec_options(CodecKind::Opus, Some("maxaveragebitrate=64000"), &ours);
        assert_eq!(o, ours);
        // No fmtp, or another codec: ours.
        assert_eq!(codec_options(CodecKind::Opus, None, &ours), ours);
        assert_eq!(
            codec_options(CodecKind::Pcmu, Some("usedtx=1"), &ours),
            ours
        );
    }

    /// Packets one Opus session sends for 1 s of silence then 0.4 s of a
    /// tone, with the far end's fmtp; and whether the first tone packet
    /// carries the marker bit.
    fn opus_packets_for_silence_then_tone(far_fmtp: &str) -> (usize, usize, bool) {
        let now = t0();
        let mut m = negotiated("10.0.0.2:4000");
        m.codec = CodecSpec::opus(111);
        m.codec.fmtp = Some(far_fmtp.into());
        let mut a = MediaSession::new(now, &m, &MediaConfig::default(), 1).unwrap();
        let tone = sine(440.0, 48_000, 8000.0, 48_000);
        let mut pkt = Vec::new();
        let (mut in_silence, mut in_tone, mut marked) = (0, 0, false);
        for i in 0..70u64 {
            let at = now + Duration::from_millis(20 * i);
            let frame = if i < 50 {
                vec![0i16; 960]
            } else {
                tone[(i as usize - 50) * 960..][..960].to_vec()
            };
            if a.send_frame(at, &frame, &mut pkt).is_some() {
                if i < 50 {
                    in_silence += 1;
                } else {
                    if in_tone == 0 {
                        marked = RtpPacket::parse(&pkt).unwrap().marker;
                    }
                    in_tone += 1;
                }
            }
        }
        (in_silence, in_tone, marked)
    }

    #[test]
    fn opus_dtx_when_the_far_end_prefers_it() {
        // usedtx=1: after a short hangover libopus leaves silent frames
        // empty and they are not sent; the talkspurt after is marked.
        let (silence, tone, marked) = opus_packets_for_silence_then_tone("usedtx=1");
        assert!(silence <= 20, "{silence} of 50 silent frames sent");
        assert_eq!(tone, 20);
        assert!(marked, "first packet after the pause carries the marker");
        // Without it every frame goes out.
        let (silence, tone, marked) = opus_packets_for_silence_then_tone("useinbandfec=1");
        assert_eq!((silence, tone, marked), (50, 20, false));
    }

    #[test]
    fn opus_fec_rebuilds_a_lost_frame_when_the_next_one_is_buffered() {
        let now = t0();
        let (mut a, mut b) = opus_pair(now, &MediaConfig::default());
        let voice = crate::media::codec::testutil::speechlike(48000, 48000 * 2);
        let from: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let (mut pkt, mut out) = (Vec::new(), Vec::new());
        // Frame 40 is lost alone (FEC from 41); 60 and 61 together (61 from
        // 62's FEC, 60 by PLC: 61 never came).
        let lost = [40, 60, 61];
        for (i, frame) in voice.chunks(960).enumerate() {
            let at = now + Duration::from_millis(20 * i as u64);
            a.send_frame(at, frame, &mut pkt).unwrap();
            if !lost.contains(&i) {
                b.on_datagram(at, from, &pkt);
            }
            b.playout(at, &mut out);
            assert_eq!(out.len(), 960);
        }
        let s = b.stats(now + Duration::from_secs(2));
        assert_eq!((s.concealed_frames, s.fec_recovered), (3, 2));
        assert_eq!(s.fec_expected_loss_pct, Some(10));
    }

    /// Opus with RED (type 100) both ways; the jitter buffer held at 60 ms
    /// (min = max), so a lossy and a lossless receiver play the same slots
    /// at the same instants and their outputs can be compared sample by sample.
    fn red_pair(now: Instant, depth: usize) -> (MediaSession, MediaSession) {
        let config = MediaConfig {
            jitter_min_ms: 60,
            jitter_max_ms: 60,
            red_depth: depth,
            ..MediaConfig::default()
        };
        let mut m = negotiated("10.0.0.2:4000");
        m.codec = CodecSpec::opus(111);
        m.red = Some(100);
        (
            MediaSession::new(now, &m, &config, 1).unwrap(),
            MediaSession::new(now, &m, &config, 2).unwrap(),
        )
    }

    /// Speech through a RED sender; returns what a lossless receiver and a
    /// receiver that misses the packets in `lost` play, and the latter's stats.
    fn red_run(depth: usize, lost: &[usize]) -> (Vec<i16>, Vec<i16>, MediaStats) {
        let now = t0();
        let (mut a, mut clean) = red_pair(now, depth);
        let (_, mut lossy) = red_pair(now, depth);
        let voice = crate::media::codec::testutil::speechlike(48000, 48000 * 3);
        let from: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let (mut pkt, mut out) = (Vec::new(), Vec::new());
        let (mut heard_clean, mut heard_lossy) = (Vec::new(), Vec::new());
        for (i, frame) in voice.chunks(960).enumerate() {
            let at = now + Duration::from_millis(20 * i as u64);
            a.send_frame(at, frame, &mut pkt).unwrap();
            clean.on_datagram(at, from, &pkt);
            if !lost.contains(&i) {
                lossy.on_datagram(at, from, &pkt);
            }
            clean.playout(at, &mut out);
            heard_clean.extend_from_slice(&out);
            lossy.playout(at, &mut out);
            heard_lossy.extend_from_slice(&out);
        }
        let end = now + Duration::from_secs(3);
        assert_eq!(clean.stats(end).concealed_frames, 0);
        (heard_clean, heard_lossy, lossy.stats(end))
    }

    #[test]
    fn red_packets_carry_the_previous_opus_frame() {
        let now = t0();
        let (mut a, _) = red_pair(now, 1);
        let voice = crate::media::codec::testutil::speechlike(48000, 960 * 3);
        let mut pkt = Vec::new();
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for (i, frame) in voice.chunks(960).enumerate() {
            a.send_frame(now + Duration::from_millis(20 * i as u64), frame, &mut pkt)
                .unwrap();
            let p = RtpPacket::parse(&pkt).unwrap();
            assert_eq!(p.payload_type, 100);
            let red = RedPayload::parse(&p.payload).unwrap();
            assert_eq!(red.primary.payload_type, 111);
            match frames.last() {
                // The first packet has nothing to repeat.
                None => assert!(red.redundant().is_empty()),
                Some(prev) => {
                    let r = red.redundant();
                    assert_eq!(r.len(), 1);
                    assert_eq!((r[0].payload_type, r[0].timestamp_offset), (111, 960));
                    assert_eq!(r[0].data, &prev[..]);
                }
            }
            frames.push(red.primary.data.to_vec());
        }
    }

    #[test]
    fn red_recovers_every_single_loss_sample_exactly() {
        // Single losses, two of them in a row of one-in-three.
        let lost = [20, 41, 60, 63, 66, 90, 120];
        let (clean, lossy, s) = red_run(1, &lost);
        assert_eq!(clean, lossy, "RED copies decode exactly like the packets");
        assert_eq!(
            (s.red_recovered, s.concealed_frames, s.fec_recovered),
            (7, 0, 0)
        );
        assert_eq!(s.bad_packets, 0);
        assert!(clean.iter().any(|&x| x.abs() > 1000), "speech was heard");
    }

    /// Delay of `b`'s jitter buffer after 3 s of speech from a RED sender
    /// sending `depth` copies, one packet in ten lost, no jitter.
    fn red_receiver_delay(depth: usize) -> u32 {
        let now = t0();
        let config = MediaConfig {
            red_depth: depth,
            ..MediaConfig::default()
        };
        let mut m = negotiated("10.0.0.2:4000");
        m.codec = CodecSpec::opus(111);
        m.red = Some(100);
        let mut a = MediaSession::new(now, &m, &config, 1).unwrap();
        // The receiver's own depth setting does not matter: it follows
        // what arrives.
        let mut b = MediaSession::new(now, &m, &MediaConfig::default(), 2).unwrap();
        let from: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let voice = crate::media::codec::testutil::speechlike(48000, 48000 * 3);
        let (mut pkt, mut out) = (Vec::new(), Vec::new());
        for (i, frame) in voice.chunks(960).enumerate() {
            let at = now + Duration::from_millis(20 * i as u64);
            a.send_frame(at, frame, &mut pkt).unwrap();
            if i % 10 != 5 {
                b.on_datagram(at, from, &pkt);
            }
            b.playout(at, &mut out);
        }
        let s = b.stats(now + Duration::from_secs(3));
        assert_eq!(s.concealed_frames, 0, "{s:?}");
        s.jitter_buffer_ms
    }

    #[test]
    fn under_loss_the_jitter_buffer_waits_for_as_many_copies_as_arrive() {
        // Clean: the 20 ms minimum. Under loss one frame more per copy the
        // sender's packets carry, so the last copy is here in time.
        assert_eq!(red_receiver_delay(1), 40);
        assert_eq!(red_receiver_delay(2), 60);
    }

    #[test]
    fn red_with_distance_one_does_not_recover_bursts_of_two() {
        // Pairs: the first of each is gone with its copy (in the second);
        // the second comes back from the packet after it.
        let lost = [30, 31, 80, 81];
        let (clean, lossy, s) = red_run(1, &lost);
        assert_eq!((s.red_recovered, s.concealed_frames), (2, 2));
        assert_ne!(clean, lossy);
        // Depth 2 repeats two frames: the same bursts are fully recovered.
        let (clean, lossy, s) = red_run(2, &lost);
        assert_eq!((s.red_recovered, s.concealed_frames), (4, 0));
        assert_eq!(clean, lossy);
    }

    #[test]
    fn with_red_the_encoder_plans_no_lbrr_and_depth_two_falls_back_after_a_clean_report() {
        let now = t0();
        let (mut a, mut b) = red_pair(now, 2);
        let from_a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let from_b: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        assert_eq!(a.stats(now).fec_expected_loss_pct, Some(0));
        let voice = crate::media::codec::testutil::speechlike(48000, 960 * 400);
        let (mut pkt, mut out, mut rtcp) = (Vec::new(), Vec::new(), Vec::new());
        let mut blocks = Vec::new();
        for (i, frame) in voice.chunks(960).enumerate() {
            let at = now + Duration::from_millis(20 * i as u64);
            a.send_frame(at, frame, &mut pkt).unwrap();
            let p = RtpPacket::parse(&pkt).unwrap();
            blocks.push(RedPayload::parse(&p.payload).unwrap().redundant().len());
            // One packet in ten lost during the first 2 s, none after.
            if i >= 100 || i % 10 != 3 {
                b.on_datagram(at, from_a, &pkt);
            }
            b.playout(at, &mut out);
            if b.poll_rtcp(at, 0, &mut rtcp).is_some() {
                a.on_datagram(at, from_b, &rtcp);
                // Loss reported or not: LBRR stays off (RED repeats frames).
                assert_eq!(a.stats(at).fec_expected_loss_pct, Some(0));
            }
        }
        // Two previous frames through the lossy report at 2.5 s, until the
        // clean one at 7.5 s; one after.
        assert!(blocks[2..=375].iter().all(|&n| n == 2));
        assert!(blocks[376..].iter().all(|&n| n == 1));
        let s = b.stats(now + Duration::from_secs(8));
        assert_eq!((s.red_recovered, s.concealed_frames), (10, 0));
    }

    #[test]
    fn dtmf_is_sent_as_plain_telephone_events_beside_red() {
        let now = t0();
        let mut m = negotiated("10.0.0.2:4000");
        m.codec = CodecSpec::opus(111);
        m.red = Some(100);
        m.telephone_event = Some(CodecSpec::telephone_event(110, 48000));
        let mut a = MediaSession::new(now, &m, &MediaConfig::default(), 1).unwrap();
        let mut b = MediaSession::new(now, &m, &MediaConfig::default(), 2).unwrap();
        a.send_dtmf("5").unwrap();
        let (mut pkt, mut types) = (Vec::new(), Vec::new());
        for i in 0..20u64 {
            let at = now + Duration::from_millis(20 * i);
            a.send_frame(at, &[0; 960], &mut pkt);
            types.push(RtpPacket::parse(&pkt).unwrap().payload_type);
            b.on_datagram(at, "10.0.0.1:5000".parse().unwrap(), &pkt);
        }
        assert_eq!(b.dtmf_received(), "5");
        // The digit (durations up to 100 ms, the last one sent three
        // times as the end), then audio again inside RED.
        assert_eq!(&types[..7], [110; 7]);
        assert!(types[7..].iter().all(|&t| t == 100), "{types:?}");
        assert_eq!(b.stats(now).bad_packets, 0);
    }

    #[test]
    fn red_works_inside_srtp() {
        use crate::rtp::srtp::{SrtpKey, SrtpSuite};
        let now = t0();
        let mut n = 0u64;
        let mut random = || {
            n = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
            n
        };
        let suite = SrtpSuite::ALL[0];
        let (ka, kb) = (
            SrtpKey::generate(suite, &mut random),
            SrtpKey::generate(suite, &mut random),
        );
        let mut m = negotiated("10.0.0.2:4000");
        m.codec = CodecSpec::opus(111);
        m.red = Some(100);
        m.srtp = Some(Box::new((ka.clone(), kb.clone())));
        let mut a = MediaSession::new(now, &m, &MediaConfig::default(), 1).unwrap();
        m.srtp = Some(Box::new((kb, ka)));
        let mut b = MediaSession::new(now, &m, &MediaConfig::default(), 2).unwrap();
        let voice = crate::media::codec::testutil::speechlike(48000, 960 * 50);
        let (mut pkt, mut out) = (Vec::new(), Vec::new());
        for (i, frame) in voice.chunks(960).enumerate() {
            let at = now + Duration::from_millis(20 * i as u64);
            a.send_frame(at, frame, &mut pkt).unwrap();
            if i != 20 {
                b.on_datagram(at, "10.0.0.1:5000".parse().unwrap(), &pkt);
            }
            b.playout(at, &mut out);
        }
        let s = b.stats(now + Duration::from_secs(1));
        assert!(s.srtp);
        assert_eq!(
            (s.srtp_failures, s.bad_packets, s.packets_received),
            (0, 0, 49)
        );
        assert_eq!((s.red_recovered, s.concealed_frames), (1, 0));
    }

    #[test]
    fn malformed_red_is_dropped_and_counted() {
        let now = t0();
        let (_, mut b) = red_pair(now, 1);
        let from: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        for payload in [
            &[][..],
            &[0xEF, 0x0F][..],
            &[0xEF, 0x0F, 0x00, 0x09, 0x6F, 1, 2][..],
            // Well formed, but the primary is not the negotiated codec.
            &[0x00, 1, 2, 3][..],
        ] {
            let p = RtpPacket {
                payload_type: 100,
                sequence: 7,
                timestamp: 960,
                ssrc: 9,
                payload: payload.to_vec(),
                ..RtpPacket::default()
            };
            let mut data = Vec::new();
            p.write(&mut data);
            b.on_datagram(now, from, &data);
        }
        let s = b.stats(now);
        assert_eq!((s.bad_packets, s.packets_received), (4, 0));
    }

    #[test]
    fn the_sender_plans_fec_for_the_loss_the_far_end_reports() {
        let now = t0();
        let (mut a, mut b) = opus_pair(now, &MediaConfig::default());
        let from_a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let from_b: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        let silence = vec![0i16; 960];
        let (mut pkt, mut out) = (Vec::new(), Vec::new());
        let mut planned = Vec::new();
        for i in 0..1000u64 {
            let at = now + Duration::from_millis(20 * i);
            a.send_frame(at, &silence, &mut pkt).unwrap();
            // One packet in ten is lost during the first 5 s and after 15 s.
            if (250..750).contains(&i) || i % 10 != 3 {
                b.on_datagram(at, from_a, &pkt);
            }
            b.playout(at, &mut out);
            if b.poll_rtcp(at, 0, &mut pkt).is_some() {
                a.on_datagram(at, from_b, &pkt);
                planned.push((at - now, a.stats(at).fec_expected_loss_pct));
            }
        }
        let secs = |s| Duration::from_millis(s);
        // First report after 2.5 s (RFC 3550 §6.2), then every 5 s: loss
        // → FEC planned for the configured 10 %; a clean interval → none;
        // loss again → 10 %.
        assert_eq!(
            planned,
            [
                (secs(2500), Some(10)),
                (secs(7500), Some(10)),
                (secs(12500), Some(0)),
                (secs(17500), Some(10)),
            ]
        );
    }
}
