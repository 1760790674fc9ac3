//! Project tasks: `cargo xtask deps | run | test | bench [sip] | screenshots`.
//!
//! Every task installs the system packages it needs first, so a fresh
//! Debian 12 machine needs only a Rust toolchain.

// xtask drives real processes, clocks and sleeps: the sans-IO rule (clippy.toml's
// disallowed methods) is for the phone's protocol core, not for this harness.
#![allow(clippy::disallowed_methods)]

use std::process::{Command, ExitCode};

mod appimage;
mod bench_gui;
mod bench_quality;
mod impair;
mod netns;
mod package;
mod screenshots;

/// Debian packages needed to build the phone (cmake: opusic-sys builds
/// libopus 1.6 from its bundled source; Debian's libopus is 1.3).
const BUILD_PACKAGES: &[&str] = &[
    "build-essential",
    "pkg-config",
    "cmake",
    "libasound2-dev",
    // What the window needs at run time (eframe loads them with dlopen):
    // X11/Wayland client libraries and Mesa's OpenGL, which also renders
    // without a GPU (llvmpipe).
    "libxkbcommon-x11-0",
    "libwayland-client0",
    "libwayland-egl1",
    "libxcursor1",
    "libxrandr2",
    "libxi6",
    "libegl1",
    "libgl1",
    "libgl1-mesa-dri",
    // The default microphone and speakers on a PulseAudio/PipeWire desktop
    // (libpulse, loaded with dlopen).
    "libpulse0",
];

/// What `cargo xtask screenshots` needs: a virtual X server, a screen grabber
/// and a way to click.
const SCREENSHOT_PACKAGES: &[&str] = &["xvfb", "imagemagick", "xdotool"];

/// Debian packages the test suite starts as real peers.
const TEST_PACKAGES: &[&str] = &[
    "kamailio",
    "kamailio-tls-modules",
    "sip-tester",
    "openssl",
    "iproute2",
    "baresip-core",
    // A private session bus (dbus-daemon, dbus-monitor) for the desktop-notification and tray tests.
    "dbus",
    // The Secret Service for the keyring test (under dbus-run-session).
    "gnome-keyring",
    // mksquashfs for the AppImage runtime's tests (packaging/appimage-runtime).
    "squashfs-tools",
    // A private PulseAudio server (and pacat/parec) for the default-device test.
    "pulseaudio",
    "pulseaudio-utils",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = args.get(1..).unwrap_or(&[]);
    let result = match task {
        "deps" => deps(&[BUILD_PACKAGES, TEST_PACKAGES].concat()),
        "run" => run(rest),
        "test" => test(rest),
        "bench" => bench(rest),
        "screenshots" => screenshots::screenshots(),
        "package" => package::package(),
        "appimage" => appimage::appimage(),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n  deps        install the Debian packages for build and tests\n  run         build and start the phone (the window; headless with the example config when\n              there is no display)\n  screenshots run the real window under Xvfb and write docs/screenshots/*.png\n  package     build the .deb (cargo-deb) and the AppImage, and test both\n  appimage    build and test the AppImage only\n  test        install deps, run every test (unit, integration, doc)\n  bench [sip|audio|audio-quality|gui] run the benchmarks\n              (gui: start to first frame, RSS and CPU idle and in a call, under Xvfb)\n              (audio: per-frame cost, then PESQ of Softline vs baresip and linphonec playout\n              over an impaired link; audio-quality [--seeds N] [--codecs pcmu,g722,opus]\n              [--receivers softline,baresip,linphone] [--no-doc]: the PESQ comparison only)"
            );
            Err("unknown task".into())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result = std::result::Result<(), String>;

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn status(cmd: &mut Command) -> Result {
    eprintln!("xtask: running {cmd:?}");
    let st = cmd
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {st}"))
    }
}

fn is_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Install the missing packages with apt-get (non-interactive, idempotent).
pub(crate) fn deps(packages: &[&str]) -> Result {
    if Command::new("dpkg-query")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("xtask deps: not a Debian system; install these yourself: {packages:?}");
        return Ok(());
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    if missing.is_empty() {
        eprintln!("xtask deps: all {} packages present", packages.len());
        return Ok(());
    }
    eprintln!("xtask deps: installing {missing:?}");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        cmd
    };
    status(&mut apt(&["update", "-qq"]))?;
    let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
    install.args(&missing);
    status(&mut install)
}

fn run(args: &[String]) -> Result {
    deps(BUILD_PACKAGES)?;
    let mut cmd = cargo();
    cmd.args(["run", "--bin", "softline", "--"]);
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if args.is_empty() && !display {
        eprintln!(
            "xtask: no display (DISPLAY/WAYLAND_DISPLAY unset): starting the phone headless with packaging/softline.example.toml"
        );
        cmd.args(["--headless", "--config", "packaging/softline.example.toml"]);
    } else {
        cmd.args(args);
    }
    status(&mut cmd)
}

fn test(args: &[String]) -> Result {
    deps(&[BUILD_PACKAGES, TEST_PACKAGES].concat())?;
    // Unit, integration and doc tests of every workspace member.
    let mut cmd = cargo();
    cmd.args(["test", "--workspace"]).args(args);
    status(&mut cmd)
}

fn bench(args: &[String]) -> Result {
    deps(BUILD_PACKAGES)?;
    let which = args.first().map(String::as_str).unwrap_or("all");
    if which == "gui" {
        return bench_gui::bench_gui();
    }
    if which == "audio-quality" {
        return bench_quality::bench_quality(args.get(1..).unwrap_or(&[]));
    }
    let benches: &[&str] = match which {
        "sip" => &["sip_parse", "sip_txn", "sip_loopback"],
        "audio" => &["media"],
        "all" => &["sip_parse", "sip_txn", "sip_loopback", "media"],
        other => {
            return Err(format!(
                "unknown benchmark group {other:?} (try: sip, audio, audio-quality)"
            ));
        }
    };
    for b in benches {
        status(cargo().args(["bench", "--bench", b]))?;
    }
    if matches!(which, "audio" | "all") {
        // What a listener hears: Softline vs baresip over an impaired link.
        bench_quality::bench_quality(args.get(1..).unwrap_or(&[]))?;
    }
    Ok(())
}
