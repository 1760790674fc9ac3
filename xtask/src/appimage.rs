//! `cargo xtask package`, second part: `softline-VERSION-ARCH.AppImage`, built
//! here from Debian tools and our own runtime, then tested.
//!
//! The official appimagetool and type-2 runtime are downloads from GitHub (not
//! in Debian, PyPI or npm), so the AppImage is assembled by hand, as the
//! AppImage specification lays it out: our runtime (`packaging/appimage-runtime`,
//! an ELF carrying the type-2 magic `AI\x02` at header bytes 8..10) followed by
//! a squashfs of the AppDir made by Debian's `mksquashfs` (gzip, which the
//! runtime reads). The runtime extracts the image to a cache folder instead of
//! mounting it with FUSE.

// A build tool, not the Sans-IO core: it waits for processes and times them.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{BUILD_PACKAGES, Result, cargo, deps, package::answers_ctl, status};

/// Icon sizes shipped in assets/icons/softline-SIZE.png.
const ICON_SIZES: &[u32] = &[16, 24, 32, 48, 64, 128, 256, 512];

/// The AppImage's entry point. The runtime sets APPDIR (and APPIMAGE, ARGV0,
/// OWD); started by hand from an extracted tree it finds itself.
const APPRUN: &str = r#"#!/bin/sh
# Softline AppImage entry point.
HERE=${APPDIR:-$(dirname "$(readlink -f "$0")")}
export XDG_DATA_DIRS="$HERE/usr/share:${XDG_DATA_DIRS:-/usr/local/share:/usr/share}"
exec "$HERE/usr/bin/softline" "$@"
"#;

pub fn appimage() -> Result {
    deps(&[BUILD_PACKAGES, &["squashfs-tools", "desktop-file-utils"]].concat())?;
    let started = Instant::now();
    let target = target_dir();
    status(cargo().args(["build", "--release", "--bin", "softline"]))?;
    status(cargo().args(["build", "--release", "-p", "appimage-runtime"]))?;
    let version = version()?;
    let out = target.join("appimage");
    let appdir = out.join("Softline.AppDir");
    make_appdir(&target.join("release/softline"), &appdir)?;
    // Symbols are a third of the binary; the .deb drops them too.
    status(Command::new("strip").arg(appdir.join("usr/bin/softline")))?;
    let image = out.join("softline.squashfs");
    let _ = fs::remove_file(&image);
    status(
        Command::new("mksquashfs")
            .arg(&appdir)
            .arg(&image)
            .args(["-comp", "gzip", "-all-root", "-no-xattrs", "-noappend"])
            .args(["-quiet", "-no-progress"]),
    )?;
    let runtime = fs::read(target.join("release/appimage-runtime"))
        .map_err(|e| format!("the AppImage runtime: {e}"))?;
    let runtime = with_magic(runtime)?;
    let squashfs = fs::read(&image).map_err(|e| e.to_string())?;
    let file = out.join(format!(
        "softline-{version}-{}.AppImage",
        std::env::consts::ARCH
    ));
    fs::write(&file, [runtime.as_slice(), squashfs.as_slice()].concat())
        .map_err(|e| format!("{}: {e}", file.display()))?;
    fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    let _ = fs::remove_file(&image);
    eprintln!(
        "xtask package: {} ({} KiB: runtime {} KiB + squashfs {} KiB)",
        file.display(),
        (runtime.len() + squashfs.len()) / 1024,
        runtime.len() / 1024,
        squashfs.len() / 1024
    );
    check(&file, &version, runtime.len() as u64)?;
    eprintln!(
        "xtask package: AppImage built and checked in {:.0?}",
        started.elapsed()
    );
    println!("{}", file.display());
    Ok(())
}

fn target_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    std::path::absolute(&dir).unwrap_or(dir)
}

/// The phone's version from the workspace's Cargo.toml (`[package] version`).
fn version() -> std::result::Result<String, String> {
    let toml = fs::read_to_string("Cargo.toml").map_err(|e| format!("Cargo.toml: {e}"))?;
    toml.split("[package]")
        .nth(1)
        .and_then(|pkg| {
            pkg.lines()
                .find_map(|l| l.trim().strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
        })
        .map(str::to_owned)
        .ok_or_else(|| "no [package] version in Cargo.toml".into())
}

/// The AppDir: the binary, desktop file and icons where a desktop looks for
/// them, plus the AppImage's own top-level desktop file, icon, .DirIcon and
/// AppRun.
fn make_appdir(bin: &Path, appdir: &Path) -> Result {
    let _ = fs::remove_dir_all(appdir);
    let copy = |from: &str, to: &str, mode: u32| -> Result {
        let dest = appdir.join(to);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        fs::copy(from, &dest).map_err(|e| format!("{from} -> {}: {e}", dest.display()))?;
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode)).map_err(|e| e.to_string())
    };
    let bin = bin
        .to_str()
        .ok_or("the target folder's path is not UTF-8")?;
    copy(bin, "usr/bin/softline", 0o755)?;
    let desktop = "packaging/linux/softline.desktop";
    copy(desktop, "usr/share/applications/softline.desktop", 0o644)?;
    copy(desktop, "softline.desktop", 0o644)?;
    copy(
        "assets/softline.svg",
        "usr/share/icons/hicolor/scalable/apps/softline.svg",
        0o644,
    )?;
    for size in ICON_SIZES {
        copy(
            &format!("assets/icons/softline-{size}.png"),
            &format!("usr/share/icons/hicolor/{size}x{size}/apps/softline.png"),
            0o644,
        )?;
    }
    copy("assets/icons/softline-256.png", "softline.png", 0o644)?;
    symlink("softline.png", appdir.join(".DirIcon")).map_err(|e| e.to_string())?;
    let apprun = appdir.join("AppRun");
    fs::write(&apprun, APPRUN).map_err(|e| e.to_string())?;
    fs::set_permissions(&apprun, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())
}

/// The runtime with the AppImage type-2 magic in ELF header bytes 8..10,
/// checked to end at its section header table (where the runtime looks for
/// the image).
fn with_magic(mut elf: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
    let head = elf.get(..64).ok_or("the runtime is not an ELF file")?;
    if head[..6] != *b"\x7fELF\x02\x01" {
        return Err("the runtime is not a 64-bit little-endian ELF".into());
    }
    let shoff = u64::from_le_bytes(head[0x28..0x30].try_into().map_err(|_| "ELF header")?);
    let shentsize = u64::from(u16::from_le_bytes([head[0x3a], head[0x3b]]));
    let shnum = u64::from(u16::from_le_bytes([head[0x3c], head[0x3d]]));
    if shoff + shentsize * shnum != elf.len() as u64 {
        return Err(format!(
            "the runtime's section header table ends at {} but the file at {}: the image would not be found",
            shoff + shentsize * shnum,
            elf.len()
        ));
    }
    elf[8..11].copy_from_slice(b"AI\x02");
    Ok(elf)
}

/// Run the AppImage as a user would, with a fresh home: the magic, the image
/// offset (also read by Debian's unsquashfs), `--version`, the cache (extracted once, then reused), a headless
/// start with `--config` answering `ctl status`, `--appimage-extract` and the
/// embedded desktop file.
fn check(file: &Path, version: &str, runtime_len: u64) -> Result {
    let head = fs::read(file).map_err(|e| e.to_string())?;
    if head.get(8..11) != Some(b"AI\x02".as_slice()) {
        return Err("the AppImage lacks the type-2 magic".into());
    }
    let home = std::env::temp_dir().join(format!("softline-appimage-{}", std::process::id()));
    let _ = fs::remove_dir_all(&home);
    fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let result = check_in(file, version, runtime_len, &home);
    let _ = fs::remove_dir_all(&home);
    result
}

fn check_in(file: &Path, version: &str, runtime_len: u64, home: &Path) -> Result {
    let run = |args: &[&str], cwd: &Path| -> std::result::Result<String, String> {
        let out = with_home(Command::new(file), home)
            .args(args)
            .current_dir(cwd)
            .output()
            .map_err(|e| format!("{}: {e}", file.display()))?;
        if !out.status.success() {
            return Err(format!(
                "the AppImage {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let offset = run(&["--appimage-offset"], home)?;
    if offset.trim() != runtime_len.to_string() {
        return Err(format!(
            "--appimage-offset says {} but the image starts at {runtime_len}",
            offset.trim()
        ));
    }
    // The image is where the AppImage format says, for tools other than ours.
    let listing = Command::new("unsquashfs")
        .args(["-o", &runtime_len.to_string(), "-l"])
        .arg(file)
        .output()
        .map_err(|e| format!("unsquashfs: {e}"))?;
    if !String::from_utf8_lossy(&listing.stdout).contains("squashfs-root/usr/bin/softline") {
        return Err("unsquashfs finds no usr/bin/softline after the runtime".into());
    }
    let first = Instant::now();
    let v = run(&["--version"], home)?;
    let first = first.elapsed();
    if !v.contains(version) {
        return Err(format!(
            "the AppImage's --version says {v:?}, not {version}"
        ));
    }
    print!("{v}");
    let cache = home.join("cache/appimage");
    let cached: Vec<PathBuf> = fs::read_dir(&cache)
        .map_err(|e| format!("no cache folder {}: {e}", cache.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    match cached.as_slice() {
        [dir] if dir.join("usr/bin/softline").is_file() => {}
        _ => {
            return Err(format!(
                "the cache should hold one extracted AppDir: {cached:?}"
            ));
        }
    }
    let second = Instant::now();
    run(&["--version"], home)?;
    eprintln!(
        "xtask package: AppImage --version {version}: first start (extracting) {first:.0?}, second (cached) {:.0?}",
        second.elapsed()
    );
    // A headless start with a config file, talked to through the AppImage too.
    let config = home.join("softline.toml");
    fs::write(
        &config,
        "[sip]\nlisten_udp = \"127.0.0.1:0\"\n\n[audio]\ninput = \"null\"\noutput = \"null\"\n",
    )
    .map_err(|e| e.to_string())?;
    let mut phone = with_home(Command::new(file), home);
    phone.arg("--headless").arg("--config").arg(&config);
    answers_ctl(phone, file, home, |c| with_home(c, home))?;
    eprintln!("xtask package: the AppImage started headless with --config and answered ctl status");
    // --appimage-extract gives the AppDir.
    let listing = run(&["--appimage-extract"], home)?;
    let root = home.join("squashfs-root");
    for f in [
        "AppRun",
        "softline.desktop",
        "softline.png",
        ".DirIcon",
        "usr/bin/softline",
        "usr/share/applications/softline.desktop",
        "usr/share/icons/hicolor/scalable/apps/softline.svg",
        "usr/share/icons/hicolor/256x256/apps/softline.png",
    ] {
        if !root.join(f).exists() || !listing.contains(&format!("squashfs-root/{f}")) {
            return Err(format!("--appimage-extract did not give {f}"));
        }
    }
    let apprun = fs::metadata(root.join("AppRun")).map_err(|e| e.to_string())?;
    if apprun.permissions().mode() & 0o111 == 0 {
        return Err("the extracted AppRun is not executable".into());
    }
    status(Command::new("desktop-file-validate").arg(root.join("softline.desktop")))?;
    let v = with_home(Command::new(root.join("AppRun")), home)
        .arg("--version")
        .output()
        .map_err(|e| e.to_string())?;
    if !String::from_utf8_lossy(&v.stdout).contains(version) {
        return Err("the extracted AppRun --version does not run".into());
    }
    eprintln!(
        "xtask package: --appimage-extract gave the AppDir, its desktop file is valid and its AppRun runs"
    );
    Ok(())
}

/// A command in a fresh home: caches, config, data and state all under it.
fn with_home(mut cmd: Command, home: &Path) -> Command {
    cmd.env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_STATE_HOME", home.join("state"));
    cmd
}
