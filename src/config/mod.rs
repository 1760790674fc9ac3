//! Configuration (TOML). Every error names the file, the line and the key.
//! One file is parsed here; `layers.rs` merges the system file, the
//! provisioned profile and the user file into one, and `locks.rs` keeps the
//! admin's locked keys.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::sip::transport::TransportKind;

mod layers;
mod lines;
pub mod locks;
mod profile_secrets;
pub mod provisioning;
pub mod secrets;
mod unknown;
pub use layers::{LayerKind, LayerPaths, Origin, Provenance, check_file, is_secret_key};
pub use lines::{HistorySection, PhoneSection};
pub use locks::LockSection;
pub use provisioning::ProvisioningSection;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Config {
    #[serde(default)]
    pub sip: SipConfig,
    #[serde(default, rename = "account")]
    pub accounts: Vec<AccountConfig>,
    #[serde(default)]
    pub audio: AudioConfig,
    #[serde(default)]
    pub media: MediaSection,
    #[serde(default)]
    pub trace: TraceConfig,
    #[serde(default)]
    pub phone: PhoneSection,
    #[serde(default)]
    pub history: HistorySection,
    #[serde(default)]
    pub provisioning: ProvisioningSection,
    #[serde(default)]
    pub lock: LockSection,
    #[serde(default)]
    pub doctor: DoctorSection,
    /// Where each value came from (layers, origins, warnings); filled by
    /// `LayerPaths::load`, empty for a single parsed file.
    #[serde(skip)]
    pub provenance: Provenance,
}

/// `[media]`: codecs, packetization, RTP ports, jitter buffer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct MediaSection {
    /// Codecs in preference order: `opus`, `G722`, `PCMU`, `PCMA`.
    pub codecs: Vec<String>,
    /// Packetization we ask for (10–60 ms).
    pub ptime_ms: u32,
    /// RTP ports are taken from this range (even RTP port, RTCP = RTP + 1).
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// Offer RTP and RTCP on one port (RFC 5761).
    pub rtcp_mux: bool,
    /// Lowest and highest target delay of the adaptive jitter buffer (ms).
    pub jitter_min_ms: u32,
    pub jitter_max_ms: u32,
    /// Warn when no RTP has arrived for this long (one-way audio).
    pub no_media_warning_secs: u64,
    /// Hang up a connected call after this many seconds without RTP; 0 = off.
    pub inactivity_hangup_secs: u64,
    /// SRTP with SDES keys (RFC 4568): `off`, `optional` (offer keys in
    /// RTP/AVP, accept plain RTP), `mandatory` (RTP/SAVP only).
    pub srtp: String,
    /// Offer RFC 2198 redundancy (`red`) carrying the previous Opus frame
    /// whenever Opus is offered, and accept it when offered.
    pub opus_red: bool,
}

impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            codecs: vec!["opus".into(), "G722".into(), "PCMU".into(), "PCMA".into()],
            ptime_ms: 20,
            rtp_port_min: 16384,
            rtp_port_max: 32767,
            rtcp_mux: true,
            jitter_min_ms: 10,
            jitter_max_ms: 300,
            no_media_warning_secs: 5,
            inactivity_hangup_secs: 0,
            srtp: "off".into(),
            opus_red: true,
        }
    }
}

/// `[sip]`: listening sockets and protocol timers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct SipConfig {
    /// UDP listen address, e.g. `0.0.0.0:5060`; port 0 picks a free port.
    pub listen_udp: Option<Spanned<String>>,
    /// TCP listen address (incoming calls over TCP); port 0 picks a free port.
    pub listen_tcp: Option<Spanned<String>>,
    /// RFC 3261 T1 in milliseconds (round-trip estimate).
    pub t1_ms: u64,
    /// RFC 3261 T2 in milliseconds (cap of non-INVITE retransmission).
    pub t2_ms: u64,
    /// RFC 3261 T4 in milliseconds (how long the network keeps a message).
    pub t4_ms: u64,
    /// CRLF keep-alive on UDP every N seconds towards the registrar (keeps NAT
    /// bindings open even when the server ignores RFC 5626); 0 = off.
    pub udp_keepalive_secs: u64,
    /// CRLFCRLF ping on TCP/TLS connections every N seconds; 0 = off.
    pub stream_keepalive_secs: u64,
    /// Seconds to wait for a TCP/TLS connection before "no answer".
    pub connect_timeout_secs: u64,
    /// User-Agent header.
    pub user_agent: String,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen_udp: Some(Spanned::new(0..0, "0.0.0.0:0".to_string())),
            listen_tcp: None,
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            udp_keepalive_secs: 25,
            stream_keepalive_secs: 30,
            connect_timeout_secs: 5,
            user_agent: format!("Softline/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// `[[account]]`: one SIP account.
#[derive(Clone, Deserialize, Serialize)]
pub struct AccountConfig {
    /// Short name used by `softline ctl` (`--account ID`).
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// User part of the address of record (the extension).
    pub username: String,
    /// Digest user name when it differs from `username`.
    #[serde(default)]
    pub auth_username: Option<String>,
    #[serde(default)]
    pub password: String,
    /// Take the password from the OS keyring when `password` is empty
    /// (`config::secrets`; the GUI stores typed passwords there).
    #[serde(default)]
    pub password_keyring: bool,
    /// Domain of the address of record, `sip:username@domain`.
    pub domain: Spanned<String>,
    /// Registrar `host[:port]`; default: the domain.
    #[serde(default)]
    pub registrar: Option<Spanned<String>>,
    /// Outbound proxy `host[:port]`: every request goes there first.
    #[serde(default)]
    pub outbound_proxy: Option<Spanned<String>>,
    #[serde(default = "default_transport")]
    pub transport: TransportKind,
    /// Requested registration expiry in seconds.
    #[serde(default = "default_expires")]
    pub expires: u32,
    /// PEM file with an extra CA to trust for this account's TLS server.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Inline PEM of CA certificates trusted for this account's TLS server
    /// (a profile can ship its private CA this way), besides `tls_ca_file`.
    #[serde(default)]
    pub tls_ca_pem: Option<String>,
    /// SHA-256 fingerprint of the server certificate to pin (hex, colons allowed).
    #[serde(default)]
    pub tls_pin_sha256: Option<Spanned<String>>,
    /// Register at start.
    #[serde(default = "default_true")]
    pub register: bool,
    /// SRTP for this account's calls: `off`, `optional`, `mandatory`
    /// (default: `[media] srtp`).
    #[serde(default)]
    pub srtp: Option<String>,
    /// `off`, `when-requested` (the INVITE asks, and comes from this
    /// account's server), `always`.
    #[serde(default = "default_auto_answer")]
    pub auto_answer: String,
    /// Extra wait before auto-answering (the longer of this and the
    /// request's own delay).
    #[serde(default)]
    pub auto_answer_delay_ms: u64,
    /// Auto-answer even while another call is active.
    #[serde(default)]
    pub auto_answer_over_active: bool,
    /// Play a short zip tone to the agent when a call is auto-answered.
    #[serde(default = "default_true")]
    pub auto_answer_beep: bool,
    /// Subscribe to voicemail notifications (RFC 3842) while registered.
    #[serde(default = "default_true")]
    pub mwi: bool,
    /// How DTMF is sent: `auto` (RFC 4733 when the call negotiated
    /// telephone-event, else SIP INFO), `rfc4733` or `info`.
    #[serde(default = "default_dtmf")]
    pub dtmf: String,
}

fn default_dtmf() -> String {
    "auto".into()
}

fn default_auto_answer() -> String {
    "when-requested".into()
}

impl fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountConfig")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("auth_username", &self.auth_username)
            .field("password", &"<redacted>")
            .field("domain", self.domain.get_ref())
            .field("registrar", &self.registrar.as_ref().map(|r| r.get_ref()))
            .field("transport", &self.transport)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

fn default_transport() -> TransportKind {
    TransportKind::Udp
}
fn default_expires() -> u32 {
    600
}
fn default_true() -> bool {
    true
}

/// `[audio]`: devices (used by the media engine).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct AudioConfig {
    /// `default`, a device name, `file:PATH.wav` or `null`.
    pub input: String,
    /// `default`, a device name, `file:PATH.wav` or `null`.
    pub output: String,
    /// Admin's ranking of microphones (name fragments, best first); when
    /// set, it decides the input device instead of `input = "default"`.
    pub input_priority: Vec<String>,
    /// Same for speakers/headsets.
    pub output_priority: Vec<String>,
    /// When no ranked device is present: `mute` (alert, move back when one
    /// returns) or `fallback` (use the system default).
    pub on_device_lost: String,
    /// Hearing protection: limit playout peaks (acoustic shock).
    pub limiter: bool,
    /// Highest playout peak with the limiter on, in dBFS (−20 … 0).
    pub limiter_ceiling_dbfs: f32,
    /// Microphone gain in dB (−20 … +20), before echo cancellation.
    pub input_gain_db: f32,
    /// Speaker gain in dB (−20 … +20), before the limiter.
    pub output_gain_db: f32,
    /// Cancel the far end's voice picked up by the microphone (speakers).
    pub echo_cancellation: bool,
    /// Lower steady background noise on the microphone signal.
    pub noise_suppression: bool,
    /// Bring the microphone level to a steady speech level.
    pub auto_gain: bool,
    /// Where incoming calls ring: `default`, a device name, `file:PATH.wav`,
    /// `null`. Unset: the `output` device when that is a sound device (no
    /// ring when `output` is a file or `null`).
    pub ring: Option<String>,
    /// A WAV file to loop as the ring instead of the built-in cadence.
    pub ringtone: Option<PathBuf>,
}

impl AudioConfig {
    /// Where the ring plays (`None`: nowhere), per `ring` and `output`.
    pub fn ring_device(&self) -> Option<crate::audio::AudioSpec> {
        use crate::audio::AudioSpec;
        match &self.ring {
            Some(r) => AudioSpec::parse(r).ok().filter(|s| *s != AudioSpec::Null),
            None => match AudioSpec::parse(&self.output).ok()? {
                s @ (AudioSpec::Default | AudioSpec::Device(_)) => Some(s),
                AudioSpec::File { .. } | AudioSpec::Null => None,
            },
        }
    }

    /// The microphone processing these keys ask for.
    pub fn aec(&self) -> crate::media::aec::AecConfig {
        crate::media::aec::AecConfig {
            echo_cancellation: self.echo_cancellation,
            noise_suppression: self.noise_suppression,
            auto_gain: self.auto_gain,
        }
    }
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            input: "default".into(),
            output: "default".into(),
            input_priority: Vec::new(),
            output_priority: Vec::new(),
            on_device_lost: "mute".into(),
            limiter: true,
            limiter_ceiling_dbfs: -6.0,
            input_gain_db: 0.0,
            output_gain_db: 0.0,
            echo_cancellation: true,
            noise_suppression: true,
            auto_gain: false,
            ring: None,
            ringtone: None,
        }
    }
}

/// `[doctor]`: settings of `softline doctor` and the check-up page.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DoctorSection {
    /// Extension that echoes audio back (Asterisk `Echo()`, e.g. `600`)
    /// for the media check's test call; unset: the built-in loopback.
    pub echo_extension: Option<String>,
}

/// `[trace]`: the SIP trace file support staff read.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct TraceConfig {
    /// Write every SIP message sent and received (secrets redacted).
    pub enabled: bool,
    /// Directory of the trace files; default: the XDG state dir.
    pub dir: Option<PathBuf>,
    /// Rotate when the file passes this size.
    pub max_file_kb: u64,
    /// Rotated files kept.
    pub keep_files: u32,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            enabled: false,
            dir: None,
            max_file_kb: 4096,
            keep_files: 5,
        }
    }
}

/// A configuration error: which file, which line, which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A `host[:port]` (IPv6 in brackets) from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: Option<u16>,
}

impl HostPort {
    /// Parse `host`, `host:port`, `[v6]`, `[v6]:port`, with an optional
    /// `sip:`/`sips:` prefix.
    pub fn parse(s: &str) -> Result<HostPort, String> {
        let s = s.trim();
        let s = s
            .strip_prefix("sips:")
            .or_else(|| s.strip_prefix("sip:"))
            .unwrap_or(s);
        if s.is_empty() {
            return Err("empty host".into());
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or("IPv6 address is missing its closing `]`")?;
            h.parse::<std::net::Ipv6Addr>()
                .map_err(|_| format!("`{h}` is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or("expected `:port` after `]`")?),
            };
            (h.to_string(), port)
        } else {
            match s.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p)),
                Some(_) => return Err("IPv6 addresses must be written in brackets".into()),
                None => (s.to_string(), None),
            }
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
        {
            return Err(format!("`{host}` is not a valid host name or address"));
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(format!("`{p}` is not a valid port (1-65535)")),
                Ok(n) => Some(n),
            },
        };
        Ok(HostPort { host, port })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map(|t| t.matches('\n').count() + 1)
        .unwrap_or(1)
}

impl Config {
    /// Read and validate a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: None,
            key: None,
            message: format!("cannot read the file: {e}"),
        })?;
        Config::parse(&text, path)
    }

    /// Parse and validate configuration text; `path` is used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            // serde names the field in its message (`missing field `x``);
            // the span's line shows where.
            let key = e.span().and_then(|s| key_at(text, s.start));
            // A wrong type of a secret: serde would quote the value.
            let message = match &key {
                Some(k) if is_secret_key(k) => {
                    "wrong type: expected a string (the value is not shown)".to_string()
                }
                _ => e.message().to_string(),
            };
            ConfigError {
                file: path.to_path_buf(),
                line,
                key,
                message,
            }
        })?;
        config.validate(text, path)?;
        // Unknown keys were skipped by serde: warnings with file and line.
        if let Ok(table) = text.parse::<toml::Table>() {
            config.provenance.warnings = unknown::warnings(path, &table, &layers::key_lines(text));
        }
        Ok(config)
    }

    fn validate(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let err = |span: std::ops::Range<usize>, key: &str, message: String| ConfigError {
            file: path.to_path_buf(),
            line: (span.end > 0).then(|| line_of(text, span.start)),
            key: Some(key.to_string()),
            message,
        };
        for (key, value) in [
            ("sip.listen_udp", &self.sip.listen_udp),
            ("sip.listen_tcp", &self.sip.listen_tcp),
        ] {
            if let Some(v) = value
                && v.get_ref() != "none"
                && v.get_ref().parse::<SocketAddr>().is_err()
            {
                return Err(err(
                    v.span(),
                    key,
                    format!(
                        "`{}` is not an address:port such as 0.0.0.0:5060 or [::]:5060",
                        v.get_ref()
                    ),
                ));
            }
        }
        if self.sip.t1_ms == 0 || self.sip.t2_ms < self.sip.t1_ms {
            return Err(err(
                0..0,
                "sip.t1_ms",
                "T1 must be > 0 and not above T2".into(),
            ));
        }
        let merr = |key: &str, message: String| ConfigError {
            file: path.to_path_buf(),
            line: key_line(text, "media", key),
            key: Some(format!("media.{key}")),
            message,
        };
        if crate::audio::policy::OnLost::parse(&self.audio.on_device_lost).is_none() {
            return Err(ConfigError {
                file: path.to_path_buf(),
                line: key_line(text, "audio", "on_device_lost"),
                key: Some("audio.on_device_lost".into()),
                message: format!("`{}`: use mute or fallback", self.audio.on_device_lost),
            });
        }
        if !(-20.0..=0.0).contains(&self.audio.limiter_ceiling_dbfs) {
            return Err(ConfigError {
                file: path.to_path_buf(),
                line: key_line(text, "audio", "limiter_ceiling_dbfs"),
                key: Some("audio.limiter_ceiling_dbfs".into()),
                message: "must be between -20 and 0 dBFS".into(),
            });
        }
        for (key, value) in [
            ("input_gain_db", self.audio.input_gain_db),
            ("output_gain_db", self.audio.output_gain_db),
        ] {
            if !crate::media::level::GAIN_RANGE_DB.contains(&value) {
                return Err(ConfigError {
                    file: path.to_path_buf(),
                    line: key_line(text, "audio", key),
                    key: Some(format!("audio.{key}")),
                    message: format!("{value} dB: must be between -20 and +20 dB"),
                });
            }
        }
        let m = &self.media;
        for c in &m.codecs {
            if crate::media::codec::CodecKind::from_name(c).is_none() {
                return Err(merr(
                    "codecs",
                    format!("unknown codec `{c}` (use opus, G722, PCMU, PCMA)"),
                ));
            }
        }
        if m.codecs.is_empty() {
            return Err(merr("codecs", "at least one codec is needed".into()));
        }
        if !(10..=60).contains(&m.ptime_ms) || !m.ptime_ms.is_multiple_of(10) {
            return Err(merr(
                "ptime_ms",
                "ptime must be 10, 20, 30, 40, 50 or 60".into(),
            ));
        }
        if m.rtp_port_min < 1024 || m.rtp_port_max < m.rtp_port_min.saturating_add(3) {
            return Err(merr(
                "rtp_port_min",
                "the RTP port range must be at least 4 ports above 1023".into(),
            ));
        }
        if !["off", "optional", "mandatory"].contains(&m.srtp.as_str()) {
            return Err(merr(
                "srtp",
                format!("`{}`: use off, optional or mandatory", m.srtp),
            ));
        }
        if m.jitter_max_ms < m.jitter_min_ms {
            return Err(merr(
                "jitter_max_ms",
                "must not be below jitter_min_ms".into(),
            ));
        }
        lines::validate(&self.phone, &self.history, text, path)?;
        locks::validate(&self.lock, text, path)?;
        if let Err((key, message)) = self.provisioning.validate() {
            return Err(ConfigError {
                file: path.to_path_buf(),
                line: key_line(text, "provisioning", key),
                key: Some(format!("provisioning.{key}")),
                message,
            });
        }
        let mut ids = std::collections::HashSet::new();
        for (i, acc) in self.accounts.iter().enumerate() {
            let k = |name: &str| format!("account[{i}].{name}");
            if acc.id.is_empty() || !ids.insert(acc.id.clone()) {
                return Err(err(
                    acc.domain.span(),
                    &k("id"),
                    format!("account id `{}` is empty or used twice", acc.id),
                ));
            }
            if acc.username.is_empty() {
                return Err(err(acc.domain.span(), &k("username"), "is empty".into()));
            }
            if crate::phone::auto_answer_policy(&acc.auto_answer).is_none() {
                return Err(err(
                    acc.domain.span(),
                    &k("auto_answer"),
                    format!("`{}`: use off, when-requested or always", acc.auto_answer),
                ));
            }
            if !["auto", "rfc4733", "info"].contains(&acc.dtmf.as_str()) {
                return Err(err(
                    acc.domain.span(),
                    &k("dtmf"),
                    format!("`{}`: use auto, rfc4733 or info", acc.dtmf),
                ));
            }
            if let Some(p) = acc.srtp.as_deref()
                && !["off", "optional", "mandatory"].contains(&p)
            {
                return Err(err(
                    acc.domain.span(),
                    &k("srtp"),
                    format!("`{p}`: use off, optional or mandatory"),
                ));
            }
            HostPort::parse(acc.domain.get_ref())
                .map_err(|m| err(acc.domain.span(), &k("domain"), m))?;
            for (name, v) in [
                ("registrar", &acc.registrar),
                ("outbound_proxy", &acc.outbound_proxy),
            ] {
                if let Some(v) = v {
                    HostPort::parse(v.get_ref()).map_err(|m| err(v.span(), &k(name), m))?;
                }
            }
            if acc.expires < 30 {
                return Err(err(
                    acc.domain.span(),
                    &k("expires"),
                    format!("{} s is too short (minimum 30)", acc.expires),
                ));
            }
            if let Some(pin) = &acc.tls_pin_sha256
                && parse_fingerprint(pin.get_ref()).is_none()
            {
                return Err(err(
                    pin.span(),
                    &k("tls_pin_sha256"),
                    "expected 32 bytes of hex (64 hex digits, colons allowed)".into(),
                ));
            }
            if let Some(pem) = &acc.tls_ca_pem
                && let Err(m) = pem_certificates(pem)
            {
                return Err(err(acc.domain.span(), &k("tls_ca_pem"), m));
            }
            if let Some(ca) = &acc.tls_ca_file
                && !ca.exists()
            {
                return Err(err(
                    acc.domain.span(),
                    &k("tls_ca_file"),
                    format!("file {} does not exist", ca.display()),
                ));
            }
        }
        Ok(())
    }

    /// Is this key path (`media.codecs`, `account.main.password`) locked by
    /// the admin? Faces show locked values read-only.
    pub fn is_locked(&self, path: &str) -> bool {
        self.lock.keys.iter().any(|p| locks::matches(p, path))
    }

    /// A listen address, `None` when absent or `"none"`.
    pub fn listen(value: &Option<Spanned<String>>) -> Option<SocketAddr> {
        value.as_ref().and_then(|v| v.get_ref().parse().ok())
    }
}

/// An SRTP policy value (`off`, `optional`, `mandatory`); validated at load.
pub fn srtp_policy(value: &str) -> crate::sdp::SrtpPolicy {
    match value {
        "optional" => crate::sdp::SrtpPolicy::Optional,
        "mandatory" => crate::sdp::SrtpPolicy::Mandatory,
        _ => crate::sdp::SrtpPolicy::Off,
    }
}

impl AccountConfig {
    pub fn domain(&self) -> HostPort {
        HostPort::parse(self.domain.get_ref()).unwrap_or(HostPort {
            host: self.domain.get_ref().clone(),
            port: None,
        })
    }
    /// Where REGISTER goes: the registrar, else the domain.
    pub fn registrar(&self) -> HostPort {
        self.registrar
            .as_ref()
            .and_then(|r| HostPort::parse(r.get_ref()).ok())
            .unwrap_or_else(|| self.domain())
    }
    /// Where every request goes first: the outbound proxy, else the registrar.
    pub fn first_hop(&self) -> HostPort {
        self.outbound_proxy
            .as_ref()
            .and_then(|r| HostPort::parse(r.get_ref()).ok())
            .unwrap_or_else(|| self.registrar())
    }
    pub fn auth_username(&self) -> &str {
        self.auth_username.as_deref().unwrap_or(&self.username)
    }
}

/// The DER certificates of PEM text (`tls_ca_pem`): at least one, all
/// well formed.
pub fn pem_certificates(
    pem: &str,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no `-----BEGIN CERTIFICATE-----` block".into());
    }
    Ok(certs)
}

/// Parse a SHA-256 fingerprint written as hex with optional colons.
/// Line (1-based) of `key = ...` inside `[section]`, for errors about
/// values serde accepted but that are out of range.
fn key_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            current = name.trim().to_string();
        } else if current == section
            && let Some(rest) = t.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return Some(i + 1);
        }
    }
    None
}

pub fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let hex: String = s
        .trim()
        .trim_start_matches("SHA256:")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The dotted key at a byte offset: walks back to the `key =` on that line
/// and the `[table]` above it.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset.min(text.len()))?;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text.get(line_start..)?.lines().next()?;
    // A table header (`[[account]]` missing a field): that table.
    if line.trim_start().starts_with('[') {
        return Some(
            line.trim()
                .trim_matches(|c| c == '[' || c == ']')
                .to_string(),
        );
    }
    let key = line.split_once('=').map(|(k, _)| k.trim().to_string());
    let table = before.lines().rev().find_map(|l| {
        let l = l.trim();
        l.starts_with('[')
            .then(|| l.trim_matches(|c| c == '[' || c == ']').to_string())
    });
    match (table, key) {
        (Some(t), Some(k)) if !k.starts_with('[') => Some(format!("{t}.{k}")),
        (None, Some(k)) if !k.starts_with('[') => Some(k),
        (Some(t), _) => Some(t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/softline/test.toml"))
    }

    #[test]
    fn full_account_parses() {
        let c = parse(
            r#"
[sip]
listen_udp = "127.0.0.1:0"
listen_tcp = "[::1]:5070"

[[account]]
id = "main"
username = "1001"
password = "s3cret"
domain = "pbx.example.com"
registrar = "10.0.0.5:5061"
transport = "tls"
expires = 120
tls_pin_sha256 = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
"#,
        )
        .unwrap();
        assert_eq!(c.accounts.len(), 1);
        let a = &c.accounts[0];
        assert_eq!(a.transport, TransportKind::Tls);
        assert_eq!(a.registrar().host, "10.0.0.5");
        assert_eq!(a.registrar().port, Some(5061));
        assert_eq!(a.first_hop().port, Some(5061));
        assert_eq!(
            Config::listen(&c.sip.listen_tcp),
            Some("[::1]:5070".parse().unwrap())
        );
        assert!(
            !format!("{a:?}").contains("s3cret"),
            "password leaked in Debug"
        );
    }

    #[test]
    fn media_section_defaults_and_range_errors_name_the_line() {
        let c = parse("").unwrap();
        assert_eq!(c.media.codecs, ["opus", "G722", "PCMU", "PCMA"]);
        assert_eq!(c.media.ptime_ms, 20);
        let e =
            parse("[sip]\nt1_ms = 500\n\n[media]\ncodecs = [\"PCMU\", \"G729\"]\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(5), Some("media.codecs")));
        assert!(e.message.contains("G729"), "{}", e.message);
        let e = parse("[media]\nptime_ms = 25\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(2), Some("media.ptime_ms"))
        );
        let e = parse("[media]\nrtp_port_min = 40000\nrtp_port_max = 40001\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("media.rtp_port_min"));
    }

    #[test]
    fn audio_processing_switches_default_and_parse() {
        let c = parse("").unwrap();
        assert_eq!(
            c.audio.aec(),
            crate::media::aec::AecConfig {
                echo_cancellation: true,
                noise_suppression: true,
                auto_gain: false,
            }
        );
        let c = parse(
            "[audio]\necho_cancellation = false\nnoise_suppression = false\nauto_gain = true\n",
        )
        .unwrap();
        assert_eq!(
            (
                c.audio.echo_cancellation,
                c.audio.noise_suppression,
                c.audio.auto_gain
            ),
            (false, false, true)
        );
        let e = parse("[audio]\n\necho_cancellation = \"yes\"\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert_eq!(e.key.as_deref(), Some("audio.echo_cancellation"));
    }

    #[test]
    fn unknown_key_is_a_warning_naming_file_line_key_and_the_likely_key() {
        let c = parse("[sip]\nlisten_udp = \"0.0.0.0:5060\"\nlisten_upd = \"x\"\n").unwrap();
        assert_eq!(
            c.provenance.warnings,
            [
                "/etc/softline/test.toml:3: unknown key `sip.listen_upd` is ignored \
              (did you mean `listen_udp`?)"
            ]
        );
        // A wrong type stays an error with file, line and key.
        let e = parse("[sip]\nlisten_upd = 1\nt1_ms = \"fast\"\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("sip.t1_ms")));
        // ... without echoing a secret's value.
        let e =
            parse("[[account]]\nid = \"a\"\nusername = \"1\"\ndomain = \"x\"\npassword = 123456\n")
                .unwrap_err();
        assert_eq!(e.line, Some(5));
        assert!(e.key.as_deref().unwrap_or("").ends_with("password"), "{e}");
        assert!(!e.to_string().contains("123456"), "{e}");
    }

    #[test]
    fn bad_transport_value_is_reported_with_its_line() {
        let e = parse(
            "[[account]]\nid = \"a\"\nusername = \"1\"\ndomain = \"x\"\ntransport = \"sctp\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(5));
        assert_eq!(e.key.as_deref(), Some("account.transport"));
        assert!(e.message.contains("sctp"), "{}", e.message);
    }

    #[test]
    fn gain_out_of_range_names_the_key_and_line() {
        let e = parse("[audio]\ninput = \"null\"\noutput_gain_db = 30\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(3), Some("audio.output_gain_db"))
        );
        assert!(e.message.contains("30"), "{}", e.message);
        let ok = parse("[audio]\ninput_gain_db = -6.5\noutput_gain_db = 20\n").unwrap();
        assert_eq!(
            (ok.audio.input_gain_db, ok.audio.output_gain_db),
            (-6.5, 20.0)
        );
    }

    #[test]
    fn bad_port_in_registrar_names_the_key() {
        let e = parse(
            "[[account]]\nid = \"a\"\nusername = \"1\"\ndomain = \"x\"\nregistrar = \"pbx:99999\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(5));
        assert_eq!(e.key.as_deref(), Some("account[0].registrar"));
        assert!(e.message.contains("99999"));
    }

    #[test]
    fn bad_listen_address_and_bad_pin() {
        let e = parse("[sip]\nlisten_udp = \"localhost\"\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(2), Some("sip.listen_udp"))
        );
        let e = parse(
            "[[account]]\nid = \"a\"\nusername = \"1\"\ndomain = \"x\"\ntls_pin_sha256 = \"abc\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("account[0].tls_pin_sha256"));
        assert_eq!(e.line, Some(5));

        let e = parse(
            "[[account]]\nid = \"a\"\nusername = \"1\"\ndomain = \"x\"\ntls_ca_pem = \"not a cert\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("account[0].tls_ca_pem"));
        assert!(e.message.contains("BEGIN CERTIFICATE"), "{}", e.message);
    }

    #[test]
    fn duplicate_account_ids_rejected() {
        let e = parse(
            "[[account]]\nid = \"a\"\nusername = \"1\"\ndomain = \"x\"\n[[account]]\nid = \"a\"\nusername = \"2\"\ndomain = \"y\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("account[1].id"));
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(
            HostPort::parse("sip:[2001:db8::1]:5062").unwrap(),
            HostPort {
                host: "2001:db8::1".into(),
                port: Some(5062)
            }
        );
        assert_eq!(HostPort::parse("pbx").unwrap().port, None);
        assert!(HostPort::parse("2001:db8::1").is_err());
        assert!(HostPort::parse("pbx:0").is_err());
        assert!(HostPort::parse("bad host").is_err());
        assert_eq!(
            HostPort::parse("[::1]:5060").unwrap().to_string(),
            "[::1]:5060"
        );
    }
}
