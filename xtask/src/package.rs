//! `cargo xtask package`: the Debian package, built with cargo-deb from the
//! `[package.metadata.deb]` in Cargo.toml, then checked: the files a desktop
//! needs are inside and the binary in it runs.
//!
//! Then the AppImage (xtask/src/appimage.rs: our runtime + Debian's
//! mksquashfs), tested the same way. The Windows and macOS recipes live in
//! `packaging/` and are built by the release workflow
//! (`.github/workflows/release.yml`): their tools (WiX, a Mac) are not here.

// A build tool, not the Sans-IO core: it waits for processes and times them.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{BUILD_PACKAGES, Result, cargo, deps, status};

/// Files the package must hold (a `.deb` without them installs but does not
/// integrate with the desktop).
const MUST_HAVE: &[&str] = &[
    "./usr/bin/softline",
    "./usr/share/applications/softline.desktop",
    "./usr/share/icons/hicolor/scalable/apps/softline.svg",
    "./usr/share/icons/hicolor/256x256/apps/softline.png",
    "./usr/share/man/man1/softline.1.gz",
    "./etc/softline/softline.toml",
];

pub fn package() -> Result {
    deps(
        &[
            BUILD_PACKAGES,
            &["dpkg-dev", "desktop-file-utils", "squashfs-tools"],
        ]
        .concat(),
    )?;
    status(Command::new("desktop-file-validate").arg("packaging/linux/softline.desktop"))?;
    let have_deb = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_deb {
        status(cargo().args(["install", "--locked", "cargo-deb"]))?;
    }
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["deb", "-p", "softline"])
        .output()
        .map_err(|e| format!("cargo deb: {e}"))?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err("cargo deb failed".into());
    }
    // cargo-deb prints the package's path last.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let deb = stdout
        .lines()
        .rev()
        .find(|l| l.trim().ends_with(".deb"))
        .map(|l| PathBuf::from(l.trim()))
        .ok_or("cargo deb did not say where the package is")?;
    let listing = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .map_err(|e| format!("dpkg-deb: {e}"))?;
    let listing = String::from_utf8_lossy(&listing.stdout);
    let missing: Vec<&&str> = MUST_HAVE
        .iter()
        .filter(|f| !listing.lines().any(|l| l.ends_with(**f)))
        .collect();
    if !missing.is_empty() {
        return Err(format!("{} lacks {missing:?}", deb.display()));
    }
    // The packaged binary runs (its libraries resolve on this system).
    let unpacked = std::env::temp_dir().join(format!("softline-deb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&unpacked);
    status(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    let version = Command::new(unpacked.join("usr/bin/softline"))
        .arg("--version")
        .output()
        .map_err(|e| format!("the packaged softline: {e}"))?;
    let _ = std::fs::remove_dir_all(&unpacked);
    if !version.status.success() {
        return Err("the packaged softline does not run".into());
    }
    print!("{}", String::from_utf8_lossy(&version.stdout));
    let info = Command::new("dpkg-deb")
        .args(["-f"])
        .arg(&deb)
        .args(["Package", "Version", "Depends"])
        .output()
        .map_err(|e| format!("dpkg-deb: {e}"))?;
    println!("{}", deb.display());
    print!("{}", String::from_utf8_lossy(&info.stdout));
    install_check(&deb)?;
    crate::appimage::appimage()
}

/// Start `phone` (a headless phone command, given `--ctl-socket` here) with
/// its log in `home`, wait up to 10 s until `CTL ctl --socket S status --json`
/// (`ctl` made by `prep`) answers, then shut it down.
pub(crate) fn answers_ctl(
    mut phone: Command,
    ctl: &Path,
    home: &Path,
    prep: impl Fn(Command) -> Command,
) -> Result {
    let sock = home.join("ctl.sock");
    let log = std::fs::File::create(home.join("phone.log")).map_err(|e| e.to_string())?;
    let mut child = phone
        .arg("--ctl-socket")
        .arg(&sock)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e}", ctl.display()))?;
    let ctl_cmd = |args: &[&str]| {
        let mut c = prep(Command::new(ctl));
        c.args(["ctl", "--socket"]).arg(&sock).args(args);
        c
    };
    let mut answered = false;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if ctl_cmd(&["status", "--json"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            answered = true;
            break;
        }
        if let Ok(Some(st)) = child.try_wait() {
            let log = std::fs::read_to_string(home.join("phone.log")).unwrap_or_default();
            return Err(format!("the phone exited ({st}) before answering:\n{log}"));
        }
    }
    let _ = ctl_cmd(&["shutdown"]).output();
    for _ in 0..50 {
        if child.try_wait().is_ok_and(|s| s.is_some()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    if answered {
        Ok(())
    } else {
        let log = std::fs::read_to_string(home.join("phone.log")).unwrap_or_default();
        Err(format!("the phone did not answer ctl status:\n{log}"))
    }
}

/// Install the package for real (as root: the CI machine and a developer's
/// test box), start the installed phone headless with the packaged
/// `/etc/softline/softline.toml`, talk to it, and purge it again.
fn install_check(deb: &std::path::Path) -> Result {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        eprintln!("xtask package: not root, so the install check is skipped");
        return Ok(());
    }
    let already = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "softline"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"));
    if already {
        return Err(
            "softline is already installed here: the install check would replace it".into(),
        );
    }
    status(Command::new("dpkg").arg("-i").arg(deb))?;
    let result = (|| -> Result {
        let v = Command::new("/usr/bin/softline")
            .arg("--version")
            .output()
            .map_err(|e| e.to_string())?;
        if !v.status.success() {
            return Err("the installed softline --version failed".into());
        }
        let home = std::env::temp_dir().join(format!("softline-pkg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        let env = |mut c: Command| {
            c.env("HOME", &home)
                .env("XDG_CONFIG_HOME", home.join("config"))
                .env("XDG_DATA_HOME", home.join("data"))
                .env("XDG_STATE_HOME", home.join("state"));
            c
        };
        let mut phone = env(Command::new("/usr/bin/softline"));
        phone.arg("--headless");
        let answered = answers_ctl(phone, Path::new("/usr/bin/softline"), &home, env);
        let _ = std::fs::remove_dir_all(&home);
        answered?;
        eprintln!(
            "xtask package: the installed phone started headless from /etc/softline/softline.toml and answered ctl status"
        );
        Ok(())
    })();
    status(Command::new("dpkg").args(["--purge", "softline"]))?;
    if std::path::Path::new("/usr/bin/softline").exists() {
        return Err("/usr/bin/softline is still there after dpkg --purge".into());
    }
    result
}
