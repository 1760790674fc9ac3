//! `softline`: the phone (a window, or `--headless`) and `softline ctl`, the
//! command-line client of its control channel.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use softline::api::{self, Request};
use softline::config::LayerPaths;

/// Debug builds refuse allocation inside `assert_no_alloc` blocks (the
/// sound-device callbacks): an allocation there aborts the process with a
/// message instead of passing unnoticed. Release builds keep the system
/// allocator untouched.
#[cfg(debug_assertions)]
#[global_allocator]
static ALLOC: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

#[derive(Parser)]
#[command(
    name = "softline",
    version,
    about = "SIP softphone for call-centre agents"
)]
struct Cli {
    /// Run without any GUI: the core, the network and the control channel.
    #[arg(long)]
    headless: bool,
    /// Configuration file (TOML); default: softline.toml in the user config dir.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Control socket path (default: under the XDG runtime dir).
    #[arg(long, value_name = "PATH")]
    ctl_socket: Option<PathBuf>,
    /// A number or a `sip:`, `sips:`, `tel:` or `callto:` link to call. When
    /// a Softline is already running, it makes the call and this one exits.
    #[arg(value_name = "URL")]
    url: Option<String>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Talk to a running phone.
    Ctl {
        /// Control socket of the phone.
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        #[command(subcommand)]
        action: CtlAction,
    },
    /// Check a configuration file (same as `config check FILE`).
    #[command(hide = true)]
    CheckConfig { file: PathBuf },
    /// Check config, DNS, reachability, TLS, registration and NAT in order;
    /// say what fails and what to do (docs/doctor.md). Uses --config.
    Doctor {
        /// The account to check (default: the first).
        #[arg(long)]
        account: Option<String>,
        /// Machine-readable report: an array of {check, status, evidence, advice}.
        #[arg(long)]
        json: bool,
        /// Also write a support bundle (zip, secrets redacted).
        #[arg(long, value_name = "FILE.zip")]
        bundle: Option<PathBuf>,
    },
    /// The configuration: the merged layers, or one file checked.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Provisioning: sign profiles, make keys, fetch now (docs/provisioning.md).
    Provision {
        #[command(subcommand)]
        action: softline::runtime::provisioning::ProvisionCmd,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Print the merged configuration (system file < profile < user file)
    /// with the origin of every value; secrets are shown as ***.
    Show {
        /// The merged configuration the phone runs with (the only view).
        #[arg(long)]
        effective: bool,
        #[arg(long)]
        json: bool,
    },
    /// Validate one file: the first error with its file, line and key.
    Check { file: PathBuf },
    /// Store an account's password in the OS keyring, read from stdin (one
    /// line); set `password_keyring = true` for the account to use it.
    Password { account: String },
}

#[derive(Subcommand)]
enum CtlAction {
    /// Accounts and calls (human text, or JSON with --json).
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Register one account (or all).
    Register { account: Option<String> },
    /// Unregister one account (or all).
    Unregister { account: Option<String> },
    /// Call a number or SIP URI; prints the call id.
    Call {
        target: String,
        #[arg(long)]
        account: Option<String>,
        /// Switch to this line first (holding the other calls) and call on it.
        #[arg(long)]
        line: Option<u8>,
    },
    /// Answer the ringing call (or the one with this id).
    Answer { call: Option<u64> },
    /// Hang up, cancel or reject the call (or the one with this id).
    Hangup {
        call: Option<u64>,
        /// End every call.
        #[arg(long, conflicts_with = "call")]
        all: bool,
    },
    /// Send DTMF digits (RFC 4733 or SIP INFO), e.g. `softline ctl dtmf 1234#`.
    Dtmf {
        digits: String,
        #[arg(long)]
        call: Option<u64>,
    },
    /// Mute or unmute the microphone (local only).
    Mute {
        #[arg(value_parser = ["on", "off"])]
        state: String,
        #[arg(long)]
        call: Option<u64>,
    },
    /// Microphone and speaker gain in dB (-20 … +20) until the phone
    /// restarts, e.g. `softline ctl gain --output-db -6`; without options:
    /// the current gains.
    Gain {
        #[arg(long, allow_negative_numbers = true)]
        input_db: Option<f32>,
        #[arg(long, allow_negative_numbers = true)]
        output_db: Option<f32>,
    },
    /// Put a call on hold (re-INVITE, sendonly).
    Hold { call: Option<u64> },
    /// Take a call off hold.
    Resume { call: Option<u64> },
    /// Print events as JSON lines as they happen.
    Events,
    /// Switch the SIP trace file on or off.
    Trace {
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// List the sound devices (JSON).
    Devices,
    /// Hear yourself as the far end would: the microphone looped back through
    /// encode, RTP, jitter buffer and decode (no server needed).
    TestAudio {
        /// How long (default 10 s).
        #[arg(long)]
        seconds: Option<u32>,
        /// Codec to test (default: the first of [media] codecs).
        #[arg(long)]
        codec: Option<String>,
        /// Also send a 440 Hz reference tone (half a second on, half off)
        /// through the path with the microphone.
        #[arg(long)]
        tone: bool,
    },
    /// Record a call to a stereo WAV (near end left, far end right), or stop.
    Record {
        #[arg(value_parser = ["on", "off"])]
        state: String,
        /// The call (default: the only live call).
        #[arg(long)]
        call: Option<u64>,
        /// Output file (default: under the recordings directory).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Unregister, end calls and stop the phone.
    Shutdown,
    /// Reject the ringing call: 486 Busy Here (default) or 603 Decline.
    Reject {
        #[arg(long)]
        call: Option<u64>,
        #[arg(long, value_parser = ["486", "603"])]
        code: Option<String>,
    },
    /// Stop ringing locally; the caller keeps ringing until it gives up.
    Ignore {
        #[arg(long)]
        call: Option<u64>,
    },
    /// Make line N active: hold the other calls, resume/answer the call on N.
    Line { line: u8 },
    /// Do not disturb.
    Dnd {
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Forward calls: `forward always|busy|no-answer URI`, `forward MODE` to
    /// clear one rule, `forward off` to clear all.
    Forward {
        #[arg(value_parser = ["always", "busy", "no-answer", "off"])]
        mode: String,
        target: Option<String>,
    },
    /// The call history, newest first.
    History {
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Transfer a call: `--blind URI` (REFER) or `--attended CALL` /
    /// `--attended-line N` (REFER with Replaces: the far end takes over that
    /// other call).
    #[command(group(clap::ArgGroup::new("kind").required(true).args(["blind", "attended", "attended_line"])))]
    Transfer {
        /// Number or URI to send the far end to.
        #[arg(long)]
        blind: Option<String>,
        /// The other call (its id) whose party the far end is connected to.
        #[arg(long)]
        attended: Option<u64>,
        /// The other call, by its line (the live call on line N).
        #[arg(long)]
        attended_line: Option<u8>,
        /// The call to transfer (default: the only connected one).
        #[arg(long)]
        call: Option<u64>,
    },
    /// Send an instant message (SIP MESSAGE); prints the message id.
    Message {
        /// Number or SIP URI.
        target: String,
        text: String,
        #[arg(long)]
        account: Option<String>,
    },
    /// Join two calls (ids) in a local three-way conference; `--lines`
    /// takes two line numbers instead.
    Conference {
        a: u64,
        b: u64,
        #[arg(long)]
        lines: bool,
    },
    /// End the local conference: CALL (default: its first) stays
    /// connected, the other call is held.
    Split { call: Option<u64> },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Cmd::Ctl { socket, action }) => {
            ctl(socket.unwrap_or_else(api::default_socket_path), action)
        }
        Some(Cmd::CheckConfig { file })
        | Some(Cmd::Config {
            action: ConfigAction::Check { file },
        }) => check_config(&file),
        Some(Cmd::Config {
            action: ConfigAction::Show { effective: _, json },
        }) => show_config(cli.config, json),
        Some(Cmd::Config {
            action: ConfigAction::Password { account },
        }) => {
            let paths = LayerPaths::discover(cli.config.unwrap_or_else(user_config_path));
            match softline::config::secrets::store_from_stdin(&paths, &account) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("softline: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Cmd::Doctor {
            account,
            json,
            bundle,
        }) => {
            let opts = softline::doctor::Options {
                config_path: cli
                    .config
                    .unwrap_or_else(softline::doctor::default_config_path),
                account,
            };
            if softline::doctor::main(&opts, json, bundle.as_deref()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some(Cmd::Provision { action }) => {
            let user = cli.config.unwrap_or_else(user_config_path);
            match softline::runtime::provisioning::run_cli(action, user) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("softline: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => {
            let socket = cli.ctl_socket.unwrap_or_else(api::default_socket_path);
            // One phone per user: a second launch (a click on a sip: link)
            // hands its work to the running one and leaves.
            if let Ok(reply) = api::client::request(&socket, &Request::Status)
                && reply.ok
            {
                return forward_to_running(&socket, cli.url.as_deref());
            }
            phone(cli.headless, cli.config, socket, cli.url)
        }
    }
}

/// Give a running phone our URL to call (or ask it to come forward).
fn forward_to_running(socket: &std::path::Path, url: Option<&str>) -> ExitCode {
    let request = match url {
        Some(u) => match softline::gui::dial::normalize(u) {
            Ok(target) => Request::Call {
                target,
                account: None,
                line: None,
            },
            Err(e) => {
                eprintln!("softline: {u}: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => Request::Focus,
    };
    match api::client::request(socket, &request) {
        Ok(r) if r.ok => {
            eprintln!(
                "softline: already running ({}): {}",
                socket.display(),
                if url.is_some() {
                    "it is making the call"
                } else {
                    "brought it to the front"
                }
            );
            ExitCode::SUCCESS
        }
        Ok(r) => {
            eprintln!(
                "softline: the running phone refused: {}",
                r.error.unwrap_or_default()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("softline: cannot reach the running phone: {e}");
            ExitCode::FAILURE
        }
    }
}

fn phone(
    headless: bool,
    config: Option<PathBuf>,
    ctl_socket: PathBuf,
    url: Option<String>,
) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let dirs = directories::ProjectDirs::from("", "", "softline");
    let path = config.unwrap_or_else(user_config_path);
    // The admin's profile first, so this start uses the freshest good one.
    softline::runtime::provisioning::start(&LayerPaths::discover(path.clone()));
    if !headless {
        let opts = softline::gui::GuiOptions {
            config_path: path,
            ctl_socket,
            prefs_path: dirs.map(|d| d.config_dir().join("gui.json")),
            dial_on_start: url,
            system_config: None,
            keyring: true,
        };
        return match softline::gui::run(opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!(
                    "softline: {e}\n(no display? `softline --headless` runs the phone without a window)"
                );
                ExitCode::FAILURE
            }
        };
    }
    let config = match LayerPaths::discover(path).load(true) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("softline: {e}");
            return ExitCode::FAILURE;
        }
    };
    if url.is_some() {
        eprintln!(
            "softline: a URL to call needs the window (or `softline ctl call` once the phone runs)"
        );
        return ExitCode::FAILURE;
    }
    for w in &config.provenance.warnings {
        tracing::warn!("config: {w}");
    }
    let opts = softline::runtime::driver::HeadlessOptions { config, ctl_socket };
    match softline::runtime::driver::run_headless(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("softline: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The user's config file: softline.toml in the user config dir.
fn user_config_path() -> PathBuf {
    directories::ProjectDirs::from("", "", "softline")
        .map(|d| d.config_dir().join("softline.toml"))
        .unwrap_or_else(|| PathBuf::from("softline.toml"))
}

/// `softline config check FILE` (and `check-config FILE`).
fn check_config(file: &std::path::Path) -> ExitCode {
    match softline::config::check_file(file) {
        Ok((c, warnings)) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            println!("{}: OK ({} account(s))", file.display(), c.accounts.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `softline config show --effective [--json]`.
fn show_config(user: Option<PathBuf>, json: bool) -> ExitCode {
    let paths = LayerPaths::discover(user.unwrap_or_else(user_config_path));
    match paths.load(false) {
        Ok(c) if json => {
            println!("{}", c.show_effective_json());
            ExitCode::SUCCESS
        }
        Ok(c) => {
            print!("{}", c.show_effective());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn ctl(socket: PathBuf, action: CtlAction) -> ExitCode {
    let (request, json) = match action {
        CtlAction::Status { json } => (Request::Status, json),
        CtlAction::Register { account } => (Request::Register { account }, false),
        CtlAction::Unregister { account } => (Request::Unregister { account }, false),
        CtlAction::Call {
            target,
            account,
            line,
        } => (
            Request::Call {
                target,
                account,
                line,
            },
            false,
        ),
        CtlAction::Answer { call } => (Request::Answer { call }, false),
        CtlAction::Hangup { all: true, .. } => (Request::HangupAll, false),
        CtlAction::Hangup { call, .. } => (Request::Hangup { call }, false),
        CtlAction::Reject { call, code } => (
            Request::Reject {
                call,
                code: code.and_then(|c| c.parse().ok()),
            },
            false,
        ),
        CtlAction::Ignore { call } => (Request::Ignore { call }, false),
        CtlAction::Line { line } => (Request::Line { line }, false),
        CtlAction::Dnd { state } => (Request::Dnd { on: state == "on" }, false),
        CtlAction::Forward { mode, target } => {
            let mode = match mode.as_str() {
                "always" => softline::phone::ForwardMode::Always,
                "busy" => softline::phone::ForwardMode::Busy,
                "no-answer" => softline::phone::ForwardMode::NoAnswer,
                _ => softline::phone::ForwardMode::Off,
            };
            (Request::Forward { mode, target }, false)
        }
        CtlAction::History { limit, json } => {
            return print_history(&socket, limit, json);
        }
        CtlAction::Hold { call } => (Request::Hold { call }, false),
        CtlAction::Dtmf { digits, call } => (Request::Dtmf { call, digits }, false),
        CtlAction::Mute { state, call } => (
            Request::Mute {
                call,
                on: state == "on",
            },
            false,
        ),
        CtlAction::Gain {
            input_db,
            output_db,
        } => (
            Request::Gain {
                input_db,
                output_db,
            },
            false,
        ),
        CtlAction::Resume { call } => (Request::Resume { call }, false),
        CtlAction::Trace { state } => (Request::Trace { on: state == "on" }, false),
        CtlAction::Devices => (Request::Devices, true),
        CtlAction::TestAudio {
            seconds,
            codec,
            tone,
        } => (
            Request::TestAudio {
                seconds,
                codec,
                tone,
            },
            false,
        ),
        CtlAction::Record { state, call, file } => (
            Request::Record {
                call,
                on: state == "on",
                file,
            },
            false,
        ),
        CtlAction::Shutdown => (Request::Shutdown, false),
        CtlAction::Transfer {
            blind,
            attended,
            attended_line,
            call,
        } => match (blind, attended, attended_line) {
            (Some(target), _, _) => (Request::Transfer { call, target }, false),
            (None, Some(to_call), _) => (Request::TransferAttended { call, to_call }, false),
            (None, None, Some(line)) => match call_on_line(&socket, line) {
                Ok(to_call) => (Request::TransferAttended { call, to_call }, false),
                Err(e) => {
                    eprintln!("softline ctl: {e}");
                    return ExitCode::FAILURE;
                }
            },
            (None, None, None) => {
                eprintln!(
                    "softline ctl: transfer needs --blind URI, --attended CALL or --attended-line N"
                );
                return ExitCode::FAILURE;
            }
        },
        CtlAction::Message {
            target,
            text,
            account,
        } => (
            Request::Message {
                target,
                text,
                account,
            },
            false,
        ),
        CtlAction::Conference { a, b, lines } => {
            let ids = if lines {
                u8::try_from(a)
                    .map_err(|_| format!("no line {a}"))
                    .and_then(|a| call_on_line(&socket, a))
                    .and_then(|a| {
                        u8::try_from(b)
                            .map_err(|_| format!("no line {b}"))
                            .and_then(|b| call_on_line(&socket, b))
                            .map(|b| (a, b))
                    })
            } else {
                Ok((a, b))
            };
            match ids {
                Ok((a, b)) => (Request::Conference { a, b }, false),
                Err(e) => {
                    eprintln!("softline ctl: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        CtlAction::Split { call } => (Request::Split { call }, false),
        CtlAction::Events => {
            use std::io::Write;
            let result = api::client::stream_events(&socket, |line| {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{line}").and_then(|_| out.flush()).is_ok()
            });
            return match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("softline ctl: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    let is_status = request == Request::Status;
    match api::client::request(&socket, &request) {
        Ok(reply) if reply.ok => {
            let result = reply.result.unwrap_or_default();
            if json || !is_status {
                match &result {
                    serde_json::Value::Object(m) if m.contains_key("call") && !is_status => {
                        println!("{}", m["call"]);
                    }
                    serde_json::Value::String(s) if s == "Done" => println!("ok"),
                    other => println!("{other}"),
                }
            } else {
                print!("{}", human_status(&result));
            }
            ExitCode::SUCCESS
        }
        Ok(reply) => {
            eprintln!(
                "softline ctl: {}",
                reply.error.unwrap_or_else(|| "failed".into())
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("softline ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The id of the live call on `line` (the newest, should a transfer's old
/// and new call briefly share it), from `status`.
fn call_on_line(socket: &std::path::Path, line: u8) -> Result<u64, String> {
    let reply = api::client::request(socket, &Request::Status)?;
    if !reply.ok {
        return Err(reply.error.unwrap_or_else(|| "status failed".into()));
    }
    let status = reply.result.unwrap_or_default();
    status["calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["line"].as_u64() == Some(u64::from(line)))
        .filter(|c| !matches!(c["state"].as_str(), Some("ended" | "ending")))
        .filter_map(|c| c["id"].as_u64())
        .max()
        .ok_or_else(|| format!("no call on line {line}"))
}

/// `ctl history`: JSON lines with `--json`, else one line per call.
fn print_history(socket: &std::path::Path, limit: Option<usize>, json: bool) -> ExitCode {
    let reply = match api::client::request(socket, &Request::History { limit }) {
        Ok(r) if r.ok => r,
        Ok(r) => {
            let why = r.error.unwrap_or_else(|| "failed".into());
            eprintln!("softline ctl: {why}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("softline ctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    for e in reply
        .result
        .as_ref()
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
    {
        if json {
            println!("{e}");
            continue;
        }
        let arrow = if s(&e["direction"]) == "incoming" {
            "<-"
        } else {
            "->"
        };
        println!(
            "{} {arrow} {} {} ({}s talk, {}s ring){}",
            s(&e["start"]),
            s(&e["remote"]),
            s(&e["disposition"]),
            e["talk_secs"],
            e["ring_secs"],
            e["status_code"]
                .as_u64()
                .map(|c| format!(" {c}"))
                .unwrap_or_default()
        );
    }
    ExitCode::SUCCESS
}

fn human_status(v: &serde_json::Value) -> String {
    let mut out = String::new();
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    for a in v["accounts"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "account {} ({}, {}): {}",
            s(&a["id"]),
            s(&a["aor"]),
            s(&a["transport"]),
            s(&a["state"])
        ));
        if let Some(e) = a["expires"].as_u64() {
            out.push_str(&format!(", expires in {e} s"));
        }
        if !s(&a["reason"]).is_empty() && s(&a["state"]) != "registered" {
            out.push_str(&format!(" — {}", s(&a["reason"])));
        }
        let vm = &a["voicemail"];
        if vm.is_object() {
            out.push_str(&format!(
                "; voicemail: {} new, {} old ({} urgent new){}",
                vm["new"],
                vm["old"],
                vm["urgent_new"],
                if vm["waiting"] == true {
                    ", waiting"
                } else {
                    ""
                }
            ));
        }
        out.push('\n');
    }
    for c in v["calls"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "call {} {} {}: {}",
            c["id"],
            s(&c["direction"]),
            s(&c["remote"]),
            s(&c["state"])
        ));
        if !s(&c["cause"]).is_empty() {
            out.push_str(&format!(" — {}", s(&c["cause"])));
        }
        out.push('\n');
    }
    if let Some(l) = v.get("listen") {
        out.push_str(&format!("listening: udp {} tcp {}\n", l["udp"], l["tcp"]));
    }
    out
}
