//! The network thread: one tokio current-thread runtime that owns the
//! sockets, DNS, TLS, the clock and the control channel, and pumps the
//! sans-IO [`Phone`] core. Nothing else touches the network.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};

use crate::api::server::{self, CtlMessage};
use crate::api::{Reply, Request};
use crate::audio::AudioSpec;
use crate::audio::policy::{Choice, DevicePolicy, DeviceWatch, OnLost};
use crate::config::Config;
use crate::media::session::MediaConfig;
use crate::phone::{CallId, Command, LocalAddrs, Output, Phone, Resolved};
use crate::runtime::media::{MediaEndpoints, MediaSockets, MediaTask, bind_pair, start_audio_test};
use crate::runtime::net::{self, NetConfig, NetEvent, Network, SipTarget, TlsClientConfig};
use crate::runtime::trace::{Dir, Trace};
use crate::sdp::NegotiatedMedia;
use crate::sip::transport::{TransportError, TransportKind};

mod conference;

/// How long shutdown waits for un-REGISTER and BYE to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Options of headless mode.
pub struct HeadlessOptions {
    pub config: Config,
    pub ctl_socket: PathBuf,
}

/// Run the phone headless until `shutdown` (ctl) or SIGINT/SIGTERM.
pub fn run_headless(opts: HeadlessOptions) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let (ctl_tx, ctl_rx) = mpsc::channel::<CtlMessage>(64);
    let (events_tx, _) = broadcast::channel::<String>(1024);
    let channels = CoreChannels {
        ctl_tx,
        ctl_rx,
        events_tx,
        ready: None,
        watch_signals: true,
    };
    rt.block_on(run(opts, channels))
}

/// The ways into and out of a running core.
struct CoreChannels {
    ctl_tx: mpsc::Sender<CtlMessage>,
    ctl_rx: mpsc::Receiver<CtlMessage>,
    events_tx: broadcast::Sender<String>,
    /// Told once the sockets are open (or why they could not be).
    ready: Option<std::sync::mpsc::Sender<Result<(), String>>>,
    /// Stop on SIGINT/SIGTERM (headless); a GUI stops when its window closes.
    watch_signals: bool,
}

/// A core running on its own thread, as the GUI (or a test) uses it: the same
/// requests and events as the control channel, without a socket between.
pub struct CoreHandle {
    requests: mpsc::Sender<CtlMessage>,
    events: broadcast::Sender<String>,
    runtime: tokio::runtime::Handle,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl CoreHandle {
    /// Send a request; `done` gets the reply on the core's thread (it must
    /// not block). Never blocks the caller.
    pub fn request(&self, request: Request, done: impl FnOnce(Reply) + Send + 'static) {
        let to_core = self.requests.clone();
        self.runtime.spawn(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let reply = if to_core
                .send(CtlMessage { request, reply: tx })
                .await
                .is_err()
            {
                Reply::err("the phone has stopped")
            } else {
                rx.await
                    .unwrap_or_else(|_| Reply::err("the phone has stopped"))
            };
            done(reply);
        });
    }

    /// Call `on_event` with every event (JSON text, as `ctl events` prints
    /// it) until it returns false or the core stops. `on_event` runs on the
    /// core's thread and must not block.
    pub fn subscribe(&self, mut on_event: impl FnMut(Option<String>) -> bool + Send + 'static) {
        let mut rx = self.events.subscribe();
        self.runtime.spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(line) => {
                        if !on_event(Some(line)) {
                            return;
                        }
                    }
                    // Events were dropped: the face should re-read the status.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !on_event(None) {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// Whether the core's thread has ended (a fatal error, or shut down).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Ask the core to unregister and end its calls, then wait for it (at
    /// most the shutdown grace plus a little).
    pub fn shutdown(mut self) -> Result<(), String> {
        self.request(Request::Shutdown, |_| {});
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err("the phone's thread panicked".into())),
            None => Ok(()),
        }
    }
}

/// Start the core on its own thread: sockets, control channel and all. Returns
/// once the sockets are open, or with the reason they could not be opened.
pub fn spawn_core(opts: HeadlessOptions) -> Result<CoreHandle, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let runtime = rt.handle().clone();
    let (ctl_tx, ctl_rx) = mpsc::channel::<CtlMessage>(64);
    let (events_tx, _) = broadcast::channel::<String>(1024);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let channels = CoreChannels {
        ctl_tx: ctl_tx.clone(),
        ctl_rx,
        events_tx: events_tx.clone(),
        ready: Some(ready_tx),
        watch_signals: false,
    };
    let thread = std::thread::Builder::new()
        .name("softline-core".into())
        .spawn(move || rt.block_on(run(opts, channels)))
        .map_err(|e| format!("cannot start the phone's thread: {e}"))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(CoreHandle {
            requests: ctl_tx,
            events: events_tx,
            runtime,
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(match thread.join() {
            Ok(Err(e)) => e,
            _ => "the phone stopped while starting".into(),
        }),
    }
}

pub(crate) fn net_config(config: &Config) -> NetConfig {
    let tls_account = config
        .accounts
        .iter()
        .find(|a| a.transport == TransportKind::Tls);
    NetConfig {
        listen_udp: Config::listen(&config.sip.listen_udp),
        listen_tcp: Config::listen(&config.sip.listen_tcp),
        tls: TlsClientConfig {
            extra_ca_file: tls_account.and_then(|a| a.tls_ca_file.clone()),
            extra_ca_pem: tls_account.and_then(|a| a.tls_ca_pem.clone()),
            pinned_sha256: tls_account
                .and_then(|a| a.tls_pin_sha256.as_ref())
                .and_then(|p| crate::config::parse_fingerprint(p.get_ref())),
            verify: true,
        },
        connect_timeout: Duration::from_secs(config.sip.connect_timeout_secs.max(1)),
        udp_keepalive: (config.sip.udp_keepalive_secs > 0)
            .then(|| Duration::from_secs(config.sip.udp_keepalive_secs)),
        stream_keepalive: Duration::from_secs(config.sip.stream_keepalive_secs),
    }
}

/// The local IP the kernel would use to reach `peer` (a UDP connect sends
/// nothing; it only consults the routing table).
pub(crate) fn local_ip_towards(peer: SocketAddr) -> IpAddr {
    let bind: SocketAddr = if peer.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .unwrap_or(peer);
    UdpSocket::bind(bind)
        .and_then(|s| {
            s.connect(peer)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(if peer.is_ipv4() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
        })
}

/// Open the SIP sockets and the control socket.
async fn start_sockets(
    opts: &HeadlessOptions,
) -> Result<(Network, interprocess::local_socket::tokio::Listener), String> {
    let network = Network::bind(net_config(&opts.config))
        .await
        .map_err(|e| format!("cannot open the SIP sockets: {e}"))?;
    let listener = server::bind(&opts.ctl_socket).map_err(|e| {
        format!(
            "cannot open the control socket {}: {e}",
            opts.ctl_socket.display()
        )
    })?;
    Ok((network, listener))
}

struct Resolution {
    token: u64,
    result: Result<Vec<Resolved>, TransportError>,
}

async fn run(opts: HeadlessOptions, channels: CoreChannels) -> Result<(), String> {
    let CoreChannels {
        ctl_tx,
        mut ctl_rx,
        events_tx,
        ready,
        watch_signals: signals_on,
    } = channels;
    let started = start_sockets(&opts).await;
    if let Some(ready) = &ready {
        let _ = ready.send(started.as_ref().map(|_| ()).map_err(|e| e.clone()));
    }
    let (mut network, listener) = started?;
    let config = opts.config;
    let local = LocalAddrs {
        udp: network.local_addr(TransportKind::Udp),
        tcp: network.local_addr(TransportKind::Tcp),
    };
    tracing::info!(udp = ?local.udp, tcp = ?local.tcp, "listening");
    let mut trace = Trace::new(&config.trace);

    tokio::spawn(server::serve(listener, ctl_tx, events_tx.clone()));

    let (resolved_tx, mut resolved_rx) = mpsc::unbounded_channel::<Resolution>();
    let seed: u64 = rand::random();
    let mut phone = Phone::new(&config, local, seed);
    // SRTP keys come from OS randomness, not from the 64-bit core seed.
    phone.set_key_seed(rand::random::<[u8; 32]>());
    let started = Instant::now();
    phone.start(started);

    let mut history = crate::runtime::history::History::new(&config.history);
    let mut shutdown_deadline: Option<Instant> = None;
    let mut signals = if signals_on {
        watch_signals()
    } else {
        mpsc::channel(1).1
    };
    let mut devices_rx = watch_devices(&config);
    let mut media = Media {
        calls: HashMap::new(),
        device_watch: device_watches(&config),
        device_state: serde_json::Value::Null,
        test: None,
        codecs: config.media.codecs.clone(),
        endpoints: media_endpoints(&config),
        gain_locked: (
            config.is_locked("audio.input_gain_db"),
            config.is_locked("audio.output_gain_db"),
        ),
        range: (config.media.rtp_port_min, config.media.rtp_port_max),
        seed,
    };
    let mut ringer = crate::runtime::ringer::Ringer::new(crate::runtime::ringer::RingConfig {
        device: config.audio.ring_device(),
        ringtone: config.audio.ringtone.clone(),
    });
    let mut ctx = Pump {
        network: &mut network,
        trace: &mut trace,
        events: &events_tx,
        resolved: &resolved_tx,
        media: &mut media,
        history: &mut history,
        ringer: &mut ringer,
    };
    ctx.drain(&mut phone);
    let mut media_watch = crate::runtime::media_watch::MediaWatch::default();
    let mut media_poll = tokio::time::interval(crate::runtime::media_watch::POLL_EVERY);
    let mut quality_watch = crate::runtime::quality_watch::QualityWatch::new(Duration::from_secs(
        config.media.no_media_warning_secs.max(1),
    ));

    loop {
        if let Some(deadline) = shutdown_deadline
            && (phone.is_quiescent() || Instant::now() >= deadline)
        {
            break;
        }
        let wake = [phone.poll_timeout(), shutdown_deadline]
            .into_iter()
            .flatten()
            .min();
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = ctx.network.next_event() => {
                let now = Instant::now();
                match ev {
                    NetEvent::Received { peer, local, data } => {
                        ctx.trace.record(Dir::Received, peer, &data);
                        phone.handle_received(now, peer, local, &data);
                    }
                    NetEvent::Failed { peer, error } => {
                        tracing::info!(peer = %peer.addr, transport = ?peer.transport, "transport failure: {error}");
                        phone.handle_transport_error(now, peer, error);
                    }
                    NetEvent::Closed { peer } => {
                        phone.handle_transport_error(now, peer, TransportError::Closed);
                    }
                }
            }
            Some(msg) = ctl_rx.recv() => {
                let now = Instant::now();
                let shutting = matches!(msg.request, Request::Shutdown);
                if matches!(msg.request, Request::Devices) {
                    // Enumerating sound devices can take a while (cpal opens
                    // each one): off the network thread, answered from there.
                    let chosen = ctx.media.device_state.clone();
                    let reply = msg.reply;
                    tokio::task::spawn_blocking(move || {
                        let _ = reply.send(devices_reply(chosen));
                    });
                    continue;
                }
                let reply = match msg.request {
                    Request::History { limit } => Reply::ok(serde_json::json!(ctx.history.list(limit))),
                    // A second launch asks the running phone to show itself:
                    // the window (if any) takes this event and comes forward.
                    Request::Focus => {
                        let _ = ctx.events.send(r#"{"event":"focus"}"#.to_string());
                        Reply::ok(serde_json::json!("Done"))
                    }
                    request => crate::runtime::config_guard::guarded(&config, request, |r| {
                        handle_ctl(&mut phone, ctx.trace, &*ctx.network, ctx.media, now, r)
                    }),
                };
                let _ = msg.reply.send(reply);
                if shutting && shutdown_deadline.is_none() {
                    shutdown_deadline = Some(now + SHUTDOWN_GRACE);
                }
            }
            Some(res) = resolved_rx.recv() => {
                phone.handle_resolved(Instant::now(), res.token, res.result);
            }
            Some(list) = devices_rx.recv() => {
                ctx.media.on_devices(&list, ctx.events);
            }
            _ = sleep => {
                phone.handle_timeout(Instant::now());
            }
            _ = media_poll.tick(), if !ctx.media.calls.is_empty() => {
                let stats = ctx.media.call_stats();
                for ev in quality_watch.poll(Instant::now(), &stats) {
                    let _ = ctx.events.send(ev);
                }
                media_watch.poll(&mut phone, Instant::now(), stats);
            }
            Some(()) = signals.recv(), if shutdown_deadline.is_none() => {
                let now = Instant::now();
                tracing::info!("shutting down: unregistering and ending calls");
                let _ = phone.handle_command(now, Command::Shutdown);
                shutdown_deadline = Some(now + SHUTDOWN_GRACE);
            }
        }
        ctx.drain(&mut phone);
    }
    ctx.drain(&mut phone);
    // Let the last datagrams leave.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

struct Pump<'a> {
    network: &'a mut Network,
    trace: &'a mut Trace,
    events: &'a broadcast::Sender<String>,
    resolved: &'a mpsc::UnboundedSender<Resolution>,
    media: &'a mut Media,
    history: &'a mut crate::runtime::history::History,
    ringer: &'a mut crate::runtime::ringer::Ringer,
}

/// The calls' media: bound sockets waiting for their stream, running tasks.
struct Media {
    calls: HashMap<CallId, MediaSlot>,
    /// The admin's device ranking, when configured (input, output).
    device_watch: (Option<DeviceWatch>, Option<DeviceWatch>),
    device_state: serde_json::Value,
    /// The running (or last) audio test.
    test: Option<MediaTask>,
    codecs: Vec<String>,
    endpoints: MediaEndpoints,
    /// The admin locked `audio.input_gain_db` / `audio.output_gain_db`.
    gain_locked: (bool, bool),
    range: (u16, u16),
    seed: u64,
}

#[derive(Default)]
struct MediaSlot {
    sockets: Option<MediaSockets>,
    task: Option<MediaTask>,
    /// What offer/answer settled last (for replies that depend on it).
    media: Option<NegotiatedMedia>,
}

/// The admin's device rankings, for the directions configured to use
/// devices (not files or null).
fn device_watches(config: &Config) -> (Option<DeviceWatch>, Option<DeviceWatch>) {
    let on_lost = OnLost::parse(&config.audio.on_device_lost).unwrap_or(OnLost::Mute);
    let make = |endpoint: &str, priority: &[String]| {
        let uses_device = matches!(
            AudioSpec::parse(endpoint),
            Ok(AudioSpec::Default | AudioSpec::Device(_))
        );
        (uses_device && !priority.is_empty()).then(|| {
            DeviceWatch::new(DevicePolicy {
                priority: priority.to_vec(),
                on_lost,
            })
        })
    };
    (
        make(&config.audio.input, &config.audio.input_priority),
        make(&config.audio.output, &config.audio.output_priority),
    )
}

/// Poll the sound devices every 2 s (on a blocking thread: enumeration may
/// be slow) when a device ranking is configured.
fn watch_devices(config: &Config) -> mpsc::Receiver<Vec<crate::audio::device::DeviceInfo>> {
    let (tx, rx) = mpsc::channel(2);
    let (i, o) = device_watches(config);
    if i.is_none() && o.is_none() {
        return rx;
    }
    tokio::spawn(async move {
        loop {
            let list = tokio::task::spawn_blocking(crate::audio::device::list_devices)
                .await
                .unwrap_or_default();
            if tx.send(list).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    rx
}

/// Where call recordings go by default (XDG data dir / recordings).
fn recordings_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "softline")
        .map(|d| d.data_dir().join("recordings"))
        .unwrap_or_else(|| std::env::temp_dir().join("softline-recordings"))
}

pub(crate) fn media_endpoints(config: &Config) -> MediaEndpoints {
    let spec = |s: &str| AudioSpec::parse(s).unwrap_or(AudioSpec::Null);
    MediaEndpoints {
        media: MediaConfig {
            jitter_min_ms: config.media.jitter_min_ms,
            jitter_max_ms: config.media.jitter_max_ms,
            no_media_warning: Duration::from_secs(config.media.no_media_warning_secs.max(1)),
            codec: Default::default(),
            ..MediaConfig::default()
        },
        input: spec(&config.audio.input),
        output: spec(&config.audio.output),
        limiter_ceiling_dbfs: config
            .audio
            .limiter
            .then_some(config.audio.limiter_ceiling_dbfs),
        aec: config.audio.aec(),
        input_gain_db: config.audio.input_gain_db,
        output_gain_db: config.audio.output_gain_db,
        stop_after: None,
        reference_tone: false,
        fallback_on_loss: (
            config.audio.input_priority.is_empty(),
            config.audio.output_priority.is_empty(),
        ),
    }
}

impl Media {
    fn next_seed(&mut self) -> u64 {
        crate::sip::rng::splitmix64(&mut self.seed)
    }

    fn open(&mut self, call: CallId) -> Result<u16, String> {
        let seed = self.next_seed();
        let sockets = bind_pair(self.range, seed).map_err(|e| e.to_string())?;
        let port = sockets.port;
        self.calls.insert(
            call,
            MediaSlot {
                sockets: Some(sockets),
                task: None,
                media: None,
            },
        );
        Ok(port)
    }

    fn start(&mut self, call: CallId, media: NegotiatedMedia) {
        let seed = self.next_seed();
        let Some(slot) = self.calls.get_mut(&call) else {
            tracing::warn!(call, "media start for a call without ports");
            return;
        };
        slot.media = Some(media.clone());
        if let Some(task) = &slot.task {
            task.update(media);
            return;
        }
        if let Some(sockets) = slot.sockets.take() {
            match MediaTask::start(sockets, media, self.endpoints.clone(), seed) {
                Ok(task) => slot.task = Some(task),
                Err(e) => tracing::warn!(call, "media not started: {e}"),
            }
        }
    }

    /// Statistics of each call with running media.
    fn call_stats(&self) -> Vec<(CallId, crate::media::session::MediaStats)> {
        self.calls
            .iter()
            .filter_map(|(id, s)| Some((*id, s.task.as_ref()?.stats()?)))
            .collect()
    }

    fn stop(&mut self, call: CallId) {
        if let Some(slot) = self.calls.remove(&call)
            && let Some(task) = slot.task
        {
            task.stop();
        }
    }

    /// The device list changed (or was polled): apply the admin's ranking,
    /// switch running calls, tell the faces.
    fn on_devices(
        &mut self,
        list: &[crate::audio::device::DeviceInfo],
        events: &broadcast::Sender<String>,
    ) {
        let inputs: Vec<String> = list
            .iter()
            .filter(|d| d.is_input)
            .map(|d| d.name.clone())
            .collect();
        let outputs: Vec<String> = list
            .iter()
            .filter(|d| d.is_output)
            .map(|d| d.name.clone())
            .collect();
        let mut changed = false;
        for (dir, watch, names) in [
            ("input", self.device_watch.0.as_mut(), &inputs),
            ("output", self.device_watch.1.as_mut(), &outputs),
        ] {
            let Some(watch) = watch else { continue };
            let Some(change) = watch.update(names) else {
                continue;
            };
            let (spec, state, device) = match &change.to {
                Choice::Device(n) => (AudioSpec::Device(n.clone()), "using", Some(n.clone())),
                Choice::Default => (AudioSpec::Default, "default", None),
                Choice::Muted => (AudioSpec::Null, "muted", None),
            };
            if change.to == Choice::Muted {
                tracing::warn!("{dir}: no ranked device present: muted until one returns");
            } else {
                tracing::info!(?device, "{dir}: audio device chosen");
            }
            if dir == "input" {
                self.endpoints.input = spec;
            } else {
                self.endpoints.output = spec;
            }
            let ev = serde_json::json!({"event": "audio_device", "direction": dir, "state": state, "device": device});
            self.device_state[dir] = ev.clone();
            let _ = events.send(ev.to_string());
            changed = true;
        }
        if changed {
            for task in self.calls.values().filter_map(|s| s.task.as_ref()) {
                task.switch_endpoints(self.endpoints.input.clone(), self.endpoints.output.clone());
            }
        }
    }

    /// `ctl test-audio`: loop the microphone back through a call's whole
    /// media path for `seconds` (default 10), with `codec` or our first.
    fn test_audio(&mut self, seconds: Option<u32>, codec: Option<String>, tone: bool) -> Reply {
        let name = codec
            .or_else(|| self.codecs.first().cloned())
            .unwrap_or_else(|| "PCMU".into());
        let Some(spec) = crate::phone::codec_spec(&name) else {
            return Reply::err(format!("unknown codec `{name}` (opus, G722, PCMU, PCMA)"));
        };
        let secs = seconds.unwrap_or(10).clamp(1, 600);
        if let Some(old) = self.test.take() {
            old.stop();
        }
        let seed = self.next_seed();
        match start_audio_test(
            self.range,
            spec.clone(),
            self.endpoints.clone(),
            Duration::from_secs(u64::from(secs)),
            tone,
            seed,
        ) {
            Ok(task) => {
                self.test = Some(task);
                Reply::ok(
                    serde_json::json!({"running": true, "seconds": secs, "codec": spec.name, "tone": tone}),
                )
            }
            Err(e) => Reply::err(format!("cannot start the audio test: {e}")),
        }
    }

    /// The call with running media named by `call`, or the only one.
    fn running_call(&self, call: Option<CallId>) -> Result<(CallId, &MediaTask), String> {
        let running: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, s)| s.task.is_some())
            .map(|(id, _)| *id)
            .collect();
        let id = match (call, running.as_slice()) {
            (Some(id), _) => id,
            (None, [one]) => *one,
            (None, []) => return Err("no call with media".into()),
            (None, _) => return Err("several calls: name one with --call".into()),
        };
        self.calls
            .get(&id)
            .and_then(|s| s.task.as_ref())
            .map(|t| (id, t))
            .ok_or_else(|| format!("call {id} has no media running"))
    }

    /// `ctl dtmf`: send digits as RFC 4733 events.
    fn dtmf(&self, call: Option<CallId>, digits: String) -> Reply {
        if let Some(bad) = digits
            .chars()
            .find(|c| !c.is_whitespace() && crate::rtp::char_to_event(*c).is_none())
        {
            return Reply::err(format!("`{bad}` is not a DTMF digit (0-9 * # A-D)"));
        }
        match self.running_call(call) {
            Ok((id, task)) => {
                let media = self.calls.get(&id).and_then(|s| s.media.as_ref());
                if media.is_some_and(|m| m.telephone_event.is_none()) {
                    return Reply::err(format!(
                        "call {id}: the far end did not accept telephone-event (RFC 4733), DTMF cannot be sent in the media"
                    ));
                }
                if media.is_some_and(|m| !m.direction.sends()) {
                    return Reply::err(format!("call {id} is on hold: DTMF would not be sent"));
                }
                task.send_dtmf(digits.clone());
                Reply::ok(serde_json::json!({"call": id, "digits": digits}))
            }
            Err(e) => Reply::err(e),
        }
    }

    /// `ctl mute`: silence the microphone of a call (local only).
    fn mute(&self, call: Option<CallId>, on: bool) -> Reply {
        match self.running_call(call) {
            Ok((id, task)) => {
                task.mute(on);
                Reply::ok(serde_json::json!({"call": id, "muted": on}))
            }
            Err(e) => Reply::err(e),
        }
    }

    /// `ctl gain`: new microphone/speaker gains for the running calls and
    /// the next ones; the current ones when neither is given.
    fn gain(&mut self, input_db: Option<f32>, output_db: Option<f32>) -> Reply {
        for (value, locked, key) in [
            (input_db, self.gain_locked.0, "input_gain_db"),
            (output_db, self.gain_locked.1, "output_gain_db"),
        ] {
            let Some(db) = value else { continue };
            if locked {
                return Reply::err(format!("audio.{key} is locked by the administrator"));
            }
            if !crate::media::level::GAIN_RANGE_DB.contains(&db) {
                return Reply::err(format!("{key}: {db} dB is outside -20 … +20 dB"));
            }
        }
        if let Some(db) = input_db {
            self.endpoints.input_gain_db = db;
        }
        if let Some(db) = output_db {
            self.endpoints.output_gain_db = db;
        }
        let (i, o) = (self.endpoints.input_gain_db, self.endpoints.output_gain_db);
        if input_db.is_some() || output_db.is_some() {
            for task in self.calls.values().filter_map(|s| s.task.as_ref()) {
                task.set_gain(i, o);
            }
        }
        Reply::ok(serde_json::json!({"input_db": i, "output_db": o}))
    }

    /// `ctl record`: start or stop recording a call's media.
    fn record(&self, call: Option<CallId>, on: bool, file: Option<PathBuf>) -> Reply {
        let (id, task) = match self.running_call(call) {
            Ok(found) => found,
            Err(e) => return Reply::err(e),
        };
        if !on {
            task.record(None);
            return Reply::ok(serde_json::json!({"call": id, "recording": false}));
        }
        let path = match file {
            Some(p) => p,
            None => {
                let dir = recordings_dir();
                if let Err(e) = std::fs::create_dir_all(&dir) {
                    return Reply::err(format!("cannot create {}: {e}", dir.display()));
                }
                let stamp = crate::runtime::trace::timestamp(std::time::SystemTime::now())
                    .replace(':', "-");
                dir.join(format!("call-{id}-{stamp}.wav"))
            }
        };
        // The file is created here so a bad path is the reply, not a log line.
        let rate = self
            .calls
            .get(&id)
            .and_then(|s| s.media.as_ref())
            .and_then(|m| crate::media::codec::CodecKind::from_name(&m.codec.name))
            .map_or(8_000, |k| k.sample_rate());
        match crate::audio::wav::WavWriter::create_channels(&path, rate, 2) {
            Ok(writer) => {
                task.record(Some(writer));
                Reply::ok(serde_json::json!({"call": id, "recording": true, "file": path}))
            }
            Err(e) => Reply::err(format!("cannot record to {}: {e}", path.display())),
        }
    }

    /// Add each call's media statistics to a `status` value.
    fn annotate(&self, status: &mut serde_json::Value) {
        if !self.device_state.is_null() {
            status["audio_devices"] = self.device_state.clone();
        }
        if let Some(t) = &self.test {
            status["audio_test"] = serde_json::json!({
                "media": t.stats(),
                "audio_warning": t.audio_warning(),
            });
        }
        let Some(calls) = status.get_mut("calls").and_then(|c| c.as_array_mut()) else {
            return;
        };
        for c in calls {
            let Some(id) = c.get("id").and_then(|i| i.as_u64()) else {
                continue;
            };
            if let Some(task) = self.calls.get(&id).and_then(|s| s.task.as_ref()) {
                let stats = task.stats();
                // Estimated listening quality (E-model) once media flows.
                if let Some(m) = stats.as_ref().filter(|m| m.packets_received > 0) {
                    let lost = m.packets_lost.max(0) as f64;
                    let loss_pct = 100.0 * lost / (m.packets_received as f64 + lost);
                    let delay = m.rtt_ms.map(|r| r / 2.0).unwrap_or(0.0)
                        + f64::from(m.jitter_buffer_ms)
                        + 20.0;
                    c["quality"] = serde_json::to_value(crate::media::quality::estimate(
                        &m.codec, loss_pct, delay,
                    ))
                    .unwrap_or_default();
                    c["quality"]["loss_pct"] = serde_json::json!((loss_pct * 10.0).round() / 10.0);
                }
                c["media"] = serde_json::to_value(stats).unwrap_or_default();
                c["muted"] = serde_json::json!(task.is_muted());
                if let Some(w) = task.audio_warning() {
                    c["audio_warning"] = serde_json::json!(w);
                }
            }
        }
    }
}

impl Pump<'_> {
    /// Carry out everything the core asked for.
    fn drain(&mut self, phone: &mut Phone) {
        let mut calls_changed = false;
        while let Some(out) = phone.poll_output() {
            match out {
                Output::Transmit {
                    peer,
                    server_name,
                    data,
                } => {
                    self.trace.record(Dir::Sent, peer, &data);
                    self.network.send(peer, server_name.as_deref(), data);
                }
                Output::Resolve {
                    token,
                    host,
                    port,
                    transport,
                } => {
                    let tx = self.resolved.clone();
                    let target = SipTarget {
                        host,
                        port,
                        transport: Some(transport),
                        sips: false,
                    };
                    tokio::spawn(async move {
                        let result = net::resolve(&target).await.map(|list| {
                            list.into_iter()
                                .map(|(peer, _name)| Resolved {
                                    peer,
                                    local_ip: local_ip_towards(peer.addr),
                                })
                                .collect()
                        });
                        let _ = tx.send(Resolution { token, result });
                    });
                }
                Output::KeepAlivePeers(peers) => self.network.set_udp_keepalive_peers(peers),
                Output::OpenMedia { call } => {
                    let result = self.media.open(call);
                    if let Err(e) = &result {
                        tracing::warn!(call, "no RTP port: {e}");
                    }
                    phone.handle_media_opened(Instant::now(), call, result);
                }
                Output::StartMedia { call, media } => self.media.start(call, media),
                Output::StopMedia { call } => self.media.stop(call),
                Output::SendDtmf { call, digits } => {
                    let reply = self.media.dtmf(Some(call), digits);
                    if let Some(e) = reply.error {
                        tracing::warn!(call, "DTMF not sent: {e}");
                    }
                }
                Output::Conference { a, b } => self.media.conference(a, b),
                Output::Split { a, b } => self.media.split(a, b),
                Output::PlayTone { call, tone } => self.media.play_tone(call, tone),
                Output::Event(ev) => {
                    if let crate::phone::Event::History(entry) = &ev {
                        self.history.append(entry, std::time::SystemTime::now());
                    }
                    if matches!(ev, crate::phone::Event::Call(_)) {
                        calls_changed = true;
                    }
                    if let Ok(line) = serde_json::to_string(&ev) {
                        tracing::debug!("event {line}");
                        let _ = self.events.send(line);
                    }
                }
            }
        }
        if calls_changed {
            // Ring while a call rings in (not silenced by the agent) and no
            // call is connected: during a call the waiting call is signalled
            // in the earpiece instead, not on the speakers.
            let calls = phone.status().calls;
            let ringing = calls.iter().any(|c| {
                c.direction == crate::phone::Direction::Incoming
                    && c.state == "ringing"
                    && !c.ignored
            });
            // A held call does not count: the call-waiting tone only plays
            // in a connected call, so with the only call on hold, ring.
            let talking = calls.iter().any(|c| c.state == "connected");
            self.ringer.set(ringing && !talking);
        }
    }
}

/// The `devices` reply: the sound devices present and what the admin's
/// ranking chose. Blocking (cpal enumeration): call it off the network thread.
fn devices_reply(chosen: serde_json::Value) -> Reply {
    let list: Vec<serde_json::Value> = crate::audio::device::list_devices()
        .into_iter()
        .map(|d| {
            serde_json::json!({
                "name": d.name, "input": d.is_input, "output": d.is_output,
                "default": d.is_default, "rate": d.default_rate, "channels": d.channels,
            })
        })
        .collect();
    Reply::ok(serde_json::json!({"devices": list, "chosen": chosen}))
}

fn handle_ctl(
    phone: &mut Phone,
    trace: &mut Trace,
    network: &Network,
    media: &mut Media,
    now: Instant,
    req: Request,
) -> Reply {
    let command = match req {
        Request::Status => {
            let status = phone.status();
            let mut value = serde_json::to_value(&status).unwrap_or_default();
            media.annotate(&mut value);
            value["listen"] = serde_json::json!({
                "udp": network.local_addr(TransportKind::Udp),
                "tcp": network.local_addr(TransportKind::Tcp),
            });
            value["trace"] = serde_json::json!({
                "enabled": trace.is_enabled(),
                "file": trace.path(),
            });
            if let Some(p) = crate::runtime::provisioning::status_json() {
                value["provisioning"] = p;
            }
            return Reply::ok(value);
        }
        Request::Trace { on } => {
            if let Err(e) = trace.set_enabled(on) {
                return Reply::err(format!(
                    "cannot write the SIP trace {}: {e}",
                    trace.path().display()
                ));
            }
            return Reply::ok(serde_json::json!({"enabled": on, "file": trace.path()}));
        }
        Request::Events => return Reply::err("events is handled by the server"),
        Request::Focus => return Reply::err("focus is handled by the driver"),
        Request::Record { call, on, file } => return media.record(call, on, file),
        Request::Mute { call, on } => return media.mute(call, on),
        Request::Gain {
            input_db,
            output_db,
        } => return media.gain(input_db, output_db),
        Request::TestAudio {
            seconds,
            codec,
            tone,
        } => return media.test_audio(seconds, codec, tone),
        Request::Devices => return devices_reply(media.device_state.clone()),
        Request::Register { account } => Command::Register { account },
        Request::Unregister { account } => Command::Unregister { account },
        Request::Call {
            target,
            account,
            line,
        } => {
            if let Some(line) = line
                && let Err(e) = phone.handle_command(now, Command::Line { line })
            {
                return Reply::err(e.0);
            }
            Command::Call { account, target }
        }
        Request::Answer { call } => Command::Answer { call },
        Request::Hangup { call } => Command::Hangup { call },
        Request::Hold { call } => Command::Hold { call },
        Request::Resume { call } => Command::Resume { call },
        Request::Transfer { call, target } => Command::Transfer { call, target },
        Request::TransferAttended { call, to_call } => Command::TransferAttended { call, to_call },
        Request::Shutdown => Command::Shutdown,
        Request::Line { line } => Command::Line { line },
        Request::HangupAll => Command::HangupAll,
        Request::Reject { call, code } => Command::Reject { call, code },
        Request::Ignore { call } => Command::Ignore { call },
        Request::Dnd { on } => Command::Dnd { on },
        Request::Forward { mode, target } => Command::Forward { mode, target },
        Request::History { .. } => return Reply::err("history is handled by the driver"),
        Request::Dtmf { call, digits } => Command::Dtmf { call, digits },
        Request::Message {
            target,
            text,
            account,
        } => Command::Message {
            account,
            target,
            text,
        },
        Request::Conference { a, b } => Command::Conference { a, b },
        Request::Split { call } => Command::Split { call },
    };
    match phone.handle_command(now, command) {
        Ok(r) => Reply::ok(serde_json::to_value(r).unwrap_or_default()),
        Err(e) => Reply::err(e.0),
    }
}

/// SIGTERM / Ctrl-C as a channel, subscribed once for the whole run so
/// no signal is lost between loop iterations.
fn watch_signals() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            #[cfg(unix)]
            let got = match term.as_mut() {
                Some(t) => tokio::select! {
                    r = t.recv() => r.is_some(),
                    r = tokio::signal::ctrl_c() => r.is_ok(),
                },
                None => tokio::signal::ctrl_c().await.is_ok(),
            };
            #[cfg(not(unix))]
            let got = tokio::signal::ctrl_c().await.is_ok();
            if !got || tx.send(()).await.is_err() {
                return;
            }
        }
    });
    rx
}
