//! `cargo xtask package`: the Debian package, built with cargo-deb from the
//! `[package.metadata.deb]` in Cargo.toml, then checked: the files a desktop
//! needs are inside and the binary in it runs.
//!
//! The AppImage, Windows and macOS recipes live in `packaging/` and are built
//! by the release workflow (`.github/workflows/release.yml`): their tools
//! (appimagetool, WiX, a Mac) are not on this build machine.

use std::path::PathBuf;
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
    deps(&[BUILD_PACKAGES, &["dpkg-dev"]].concat())?;
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
    Ok(())
}
