//! `cargo xtask screenshots`: the real `softline` window under Xvfb (Mesa's
//! software OpenGL, no GPU), in a scripted scenario, captured to
//! `docs/screenshots/*.png` for the README:
//!
//! 1. `first-run.png`: no config yet, the account form;
//! 2. `registration-failed.png`: an account whose server refuses, in words;
//! 3. `incoming.png`: a second (headless) Softline calls the window;
//! 4. `call.png`: the call answered through the window's own control socket;
//! 5. `history.png`, `settings.png`: those pages (tabs clicked with xdotool).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{BUILD_PACKAGES, Result, SCREENSHOT_PACKAGES, cargo, deps, status};

/// Kills its process on drop, so a failed step leaves nothing running.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(47000)
}

pub(crate) fn spawn(cmd: &mut Command, log: &Path) -> std::result::Result<Proc, String> {
    let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone().map_err(|e| e.to_string())?)
        .stderr(out)
        .spawn()
        .map(Proc)
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))
}

/// A private X server on a free display number, up and accepting clients.
pub(crate) fn start_xvfb(work: &Path) -> std::result::Result<(String, Proc), String> {
    let n = (90..200)
        .find(|n| {
            !Path::new(&format!("/tmp/.X{n}-lock")).exists()
                && !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        })
        .ok_or("no free X display number")?;
    let display = format!(":{n}");
    let xvfb = spawn(
        Command::new("Xvfb").args([
            display.as_str(),
            "-screen",
            "0",
            "1280x900x24",
            "-nolisten",
            "tcp",
        ]),
        &work.join("xvfb.log"),
    )?;
    for _ in 0..100 {
        if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
            sleep_ms(200);
            return Ok((display, xvfb));
        }
        sleep_ms(50);
    }
    Err(format!("Xvfb did not start on {display}"))
}

/// A mono 16-bit WAV of a sine (the "microphones" of the scripted call, so
/// the level meters show something).
fn write_tone(path: &Path, freq: f64, secs: u32) -> Result {
    let rate = 16_000u32;
    let samples: Vec<i16> = (0..rate * secs)
        .map(|i| {
            (6000.0 * (2.0 * std::f64::consts::PI * freq * f64::from(i) / f64::from(rate)).sin())
                as i16
        })
        .collect();
    std::fs::write(path, crate::bench_quality::wav_bytes(rate, 1, &samples))
        .map_err(|e| format!("{}: {e}", path.display()))
}

pub(crate) fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// The window's X id (xdotool), waiting for it to appear.
pub(crate) fn window_id(display: &str) -> std::result::Result<String, String> {
    for _ in 0..100 {
        let out = Command::new("xdotool")
            .args(["search", "--name", "^Softline$"])
            .env("DISPLAY", display)
            .output()
            .map_err(|e| format!("xdotool: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(id) = text.lines().next().filter(|l| !l.trim().is_empty()) {
            return Ok(id.trim().to_string());
        }
        sleep_ms(100);
    }
    Err("the Softline window did not appear".into())
}

fn shoot(display: &str, window: &str, file: &Path) -> Result {
    status(
        Command::new("import")
            .args(["-window", window])
            .arg(file)
            .env("DISPLAY", display),
    )?;
    eprintln!("xtask: wrote {}", file.display());
    Ok(())
}

pub(crate) fn ctl(bin: &Path, socket: &Path, args: &[&str]) -> Result {
    status(
        Command::new(bin)
            .arg("ctl")
            .arg("--socket")
            .arg(socket)
            .args(args),
    )
}

pub(crate) fn gui(
    bin: &Path,
    display: &str,
    home: &Path,
    config: Option<&Path>,
    socket: &Path,
) -> std::result::Result<Proc, String> {
    let mut cmd = Command::new(bin);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.arg("--ctl-socket")
        .arg(socket)
        .env("DISPLAY", display)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_RUNTIME_DIR", home)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env_remove("WAYLAND_DISPLAY");
    spawn(&mut cmd, &home.join("gui.log"))
}

pub fn screenshots() -> Result {
    deps(&[BUILD_PACKAGES, SCREENSHOT_PACKAGES].concat())?;
    status(cargo().args(["build", "--bin", "softline"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let bin = std::fs::canonicalize(target.join("debug/softline"))
        .map_err(|e| format!("the softline binary: {e}"))?;
    let out_dir = PathBuf::from("docs/screenshots");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let work = std::env::temp_dir().join(format!("softline-shots-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;

    let display = format!(":{}", 90 + std::process::id() % 9);
    let _xvfb = spawn(
        Command::new("Xvfb").args([
            display.as_str(),
            "-screen",
            "0",
            "1280x900x24",
            "-nolisten",
            "tcp",
        ]),
        &work.join("xvfb.log"),
    )?;
    sleep_ms(800);

    // 1. First run.
    {
        let home = work.join("first");
        std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        let _g = gui(&bin, &display, &home, None, &home.join("ctl.sock"))?;
        let w = window_id(&display)?;
        sleep_ms(1500);
        shoot(&display, &w, &out_dir.join("first-run.png"))?;
    }

    // 2–5. An account whose server refuses, a call in, answered, settings.
    let home = work.join("agent");
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let (pa, pb, dead) = (free_udp_port(), free_udp_port(), free_udp_port());
    let (tone_a, tone_b) = (home.join("a.wav"), home.join("b.wav"));
    write_tone(&tone_a, 440.0, 2)?;
    write_tone(&tone_b, 660.0, 2)?;
    let config = home.join("softline.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nlisten_udp = \"127.0.0.1:{pa}\"\n\n[[account]]\nid = \"desk\"\ndisplay_name = \"Agent 1001\"\nusername = \"1001\"\npassword = \"not-shown\"\ndomain = \"127.0.0.1:{dead}\"\ntransport = \"tcp\"\n\n[audio]\ninput = \"loop:{}\"\noutput = \"null\"\n",
            tone_a.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let peer_config = home.join("peer.toml");
    std::fs::write(
        &peer_config,
        format!(
            "[sip]\nlisten_udp = \"127.0.0.1:{pb}\"\n\n[audio]\ninput = \"loop:{}\"\noutput = \"null\"\n",
            tone_b.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let gui_sock = home.join("gui.sock");
    let peer_sock = home.join("peer.sock");
    let _g = gui(&bin, &display, &home, Some(&config), &gui_sock)?;
    let w = window_id(&display)?;
    let _peer = spawn(
        Command::new(&bin)
            .args(["--headless", "--config"])
            .arg(&peer_config)
            .arg("--ctl-socket")
            .arg(&peer_sock),
        &home.join("peer.log"),
    )?;
    sleep_ms(2500);
    shoot(&display, &w, &out_dir.join("registration-failed.png"))?;
    ctl(
        &bin,
        &peer_sock,
        &["call", &format!("sip:1001@127.0.0.1:{pa}")],
    )?;
    sleep_ms(1500);
    shoot(&display, &w, &out_dir.join("incoming.png"))?;
    ctl(&bin, &gui_sock, &["answer"])?;
    sleep_ms(3500);
    shoot(&display, &w, &out_dir.join("call.png"))?;
    ctl(&bin, &gui_sock, &["hangup"])?;
    sleep_ms(5000);
    // Pages by their tab in the top bar (x of the tab's centre at scale 1:
    // Phone, History, Messages, Account, Settings, Help). Update these when
    // the tab row changes.
    for (x, name) in [("97", "history.png"), ("318", "settings.png")] {
        status(
            Command::new("xdotool")
                .args(["mousemove", "--window", &w, x, "12", "click", "1"])
                .env("DISPLAY", &display),
        )?;
        sleep_ms(1200);
        shoot(&display, &w, &out_dir.join(name))?;
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
