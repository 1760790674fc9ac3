//! `cargo xtask bench gui`: the release `softline` window under Xvfb (Mesa
//! llvmpipe, no GPU). Measures start to first frame (spawn until the window
//! logs its first frame), resident memory and CPU while idle, and the same
//! during one call (a headless Softline calls the window, which answers
//! through its control socket). CPU comes from /proc utime+stime over 10 s.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::screenshots::{ctl, free_udp_port, gui, sleep_ms, spawn, start_xvfb, window_id};
use crate::{BUILD_PACKAGES, Result, SCREENSHOT_PACKAGES, cargo, deps, status};

fn proc_field(pid: u32, file: &str) -> std::result::Result<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .map_err(|e| format!("/proc/{pid}/{file}: {e}"))
}

/// Resident memory in MiB: (all, anonymous = the process's own heap and
/// stacks, file-backed = mapped libraries such as Mesa's LLVM).
fn rss_mib(pid: u32) -> std::result::Result<(f64, f64, f64), String> {
    let status = proc_field(pid, "status")?;
    let field = |name: &str| -> std::result::Result<f64, String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
            .ok_or(format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("RssAnon:")?, field("RssFile:")?))
}

/// utime + stime, in clock ticks.
fn cpu_ticks(pid: u32) -> std::result::Result<u64, String> {
    let stat = proc_field(pid, "stat")?;
    // Fields after the `(comm)`, which may contain spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("bad stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11).and_then(|v| v.parse().ok()).ok_or("bad utime")?;
    let stime: u64 = f.get(12).and_then(|v| v.parse().ok()).ok_or("bad stime")?;
    Ok(utime + stime)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU share of one core over `secs` seconds, in percent.
fn cpu_pct(pid: u32, secs: u64) -> std::result::Result<f64, String> {
    let a = cpu_ticks(pid)?;
    let t = Instant::now();
    sleep_ms(secs * 1000);
    let b = cpu_ticks(pid)?;
    Ok(100.0 * (b - a) as f64 / clock_ticks() / t.elapsed().as_secs_f64())
}

fn wait_log(log: &Path, needle: &str, timeout: Duration) -> std::result::Result<Duration, String> {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if std::fs::read_to_string(log).is_ok_and(|s| s.contains(needle)) {
            return Ok(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(format!("`{needle}` did not appear in {}", log.display()))
}

pub fn bench_gui() -> Result {
    deps(&[BUILD_PACKAGES, SCREENSHOT_PACKAGES].concat())?;
    status(cargo().args(["build", "--release", "--bin", "softline"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "target".into());
    let bin = std::fs::canonicalize(target.join("release/softline"))
        .map_err(|e| format!("the softline binary: {e}"))?;
    let work = std::env::temp_dir().join(format!("softline-bench-gui-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let (display, _xvfb) = start_xvfb(&work)?;
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let config = work.join("softline.toml");
    let audio = "[audio]\ninput = \"null\"\noutput = \"null\"\n";
    std::fs::write(
        &config,
        format!("[sip]\nlisten_udp = \"127.0.0.1:{pa}\"\n\n{audio}"),
    )
    .map_err(|e| e.to_string())?;
    let peer_config = work.join("peer.toml");
    std::fs::write(
        &peer_config,
        format!("[sip]\nlisten_udp = \"127.0.0.1:{pb}\"\n\n{audio}"),
    )
    .map_err(|e| e.to_string())?;
    let (gui_sock, peer_sock) = (work.join("gui.sock"), work.join("peer.sock"));

    let g = gui(&bin, &display, &work, Some(&config), &gui_sock)?;
    let pid = g.0.id();
    let first_frame = wait_log(
        &work.join("gui.log"),
        "first frame",
        Duration::from_secs(30),
    )?;
    window_id(&display)?;
    sleep_ms(3000);
    let idle_rss = rss_mib(pid)?;
    let idle_cpu = cpu_pct(pid, 10)?;

    let _peer = spawn(
        Command::new(&bin)
            .args(["--headless", "--config"])
            .arg(&peer_config)
            .arg("--ctl-socket")
            .arg(&peer_sock),
        &work.join("peer.log"),
    )?;
    sleep_ms(1000);
    ctl(
        &bin,
        &peer_sock,
        &["call", &format!("sip:agent@127.0.0.1:{pa}")],
    )?;
    sleep_ms(1000);
    ctl(&bin, &gui_sock, &["answer"])?;
    sleep_ms(3000);
    let call_rss = rss_mib(pid)?;
    let call_cpu = cpu_pct(pid, 10)?;
    ctl(&bin, &gui_sock, &["hangup"])?;
    drop(g);

    println!("| figure | value |");
    println!("|---|---|");
    println!("| start to first frame | {} ms |", first_frame.as_millis());
    println!(
        "| RSS idle | {:.1} MiB ({:.1} MiB anonymous, {:.1} MiB file-backed) |",
        idle_rss.0, idle_rss.1, idle_rss.2
    );
    println!("| CPU idle (10 s) | {idle_cpu:.2} % of one core |");
    println!(
        "| RSS in a call (Opus, null audio) | {:.1} MiB ({:.1} MiB anonymous, {:.1} MiB file-backed) |",
        call_rss.0, call_rss.1, call_rss.2
    );
    println!("| CPU in a call (10 s) | {call_cpu:.2} % of one core |");
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
