//! The runtime built by cargo, made into a small AppImage with Debian's
//! mksquashfs (as `cargo xtask package` does) and run: the environment and
//! arguments AppRun gets, the extracted files, the cache reused and repaired,
//! `--appimage-offset`, `--appimage-extract [PATTERN]` and refused options.

#![allow(clippy::disallowed_methods)] // a test: it waits out a busy executable

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const APPRUN: &str = r#"#!/bin/sh
echo "APPIMAGE=$APPIMAGE"
echo "APPDIR=$APPDIR"
echo "ARGV0=$ARGV0"
echo "OWD=$OWD"
for a in "$@"; do echo "ARG=$a"; done
"#;

struct Fixture {
    dir: PathBuf,
    appimage: PathBuf,
    runtime_len: usize,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("appimage-runtime-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let appdir = dir.join("Demo.AppDir");
    write(&appdir.join("AppRun"), APPRUN, 0o755);
    write(
        &appdir.join("demo.desktop"),
        "[Desktop Entry]\nType=Application\nName=Demo\nExec=demo\nIcon=demo\n",
        0o644,
    );
    write(
        &appdir.join("data/file.txt"),
        "hello from the image\n",
        0o644,
    );
    write(&appdir.join("bin/tool"), "#!/bin/sh\n", 0o750);
    symlink("data/file.txt", appdir.join("link")).unwrap();
    let image = dir.join("demo.squashfs");
    let st = Command::new("mksquashfs")
        .arg(&appdir)
        .arg(&image)
        .args(["-comp", "gzip", "-all-root", "-no-xattrs", "-noappend"])
        .args(["-quiet", "-no-progress"])
        .status()
        .expect("mksquashfs (Debian squashfs-tools; cargo xtask deps installs it)");
    assert!(st.success());
    let mut bytes = fs::read(env!("CARGO_BIN_EXE_appimage-runtime")).unwrap();
    let runtime_len = bytes.len();
    bytes[8..11].copy_from_slice(b"AI\x02");
    bytes.extend(fs::read(&image).unwrap());
    let appimage = dir.join("Demo-x86_64.AppImage");
    fs::write(&appimage, bytes).unwrap();
    fs::set_permissions(&appimage, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(dir.join("work")).unwrap();
    Fixture {
        dir,
        appimage,
        runtime_len,
    }
}

impl Fixture {
    fn run(&self, args: &[&str]) -> Output {
        // The tests run in parallel threads: a child another test forks
        // while this fixture's image is still open for writing inherits
        // that descriptor until its exec, and exec of the image then fails
        // with ETXTBSY ("Text file busy"). Try again shortly.
        let mut tries = 0;
        loop {
            match Command::new(&self.appimage)
                .args(args)
                .current_dir(self.dir.join("work"))
                .env("XDG_CACHE_HOME", self.dir.join("cache"))
                .output()
            {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => return r.unwrap(),
            }
        }
    }

    fn stdout(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn cached(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = fs::read_dir(self.dir.join("cache/appimage"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        dirs
    }
}

#[test]
fn runs_apprun_from_the_cache_with_the_appimage_environment() {
    let f = fixture("run");
    let out = f.stdout(&["a b", "--x"]);
    let cached = f.cached();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let appdir = &cached[0];
    let name = appdir.file_name().unwrap().to_str().unwrap();
    let hash = name.strip_prefix("demo-").expect(name);
    assert_eq!(hash.len(), 16);
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
    let expected = format!(
        "APPIMAGE={}\nAPPDIR={}\nARGV0={}\nOWD={}\nARG=a b\nARG=--x\n",
        fs::canonicalize(&f.appimage).unwrap().display(),
        appdir.display(),
        f.appimage.display(),
        fs::canonicalize(f.dir.join("work")).unwrap().display(),
    );
    assert_eq!(out, expected);
    // The files, their modes and the symlink.
    assert_eq!(
        fs::read_to_string(appdir.join("data/file.txt")).unwrap(),
        "hello from the image\n"
    );
    assert_eq!(
        fs::read_link(appdir.join("link")).unwrap(),
        Path::new("data/file.txt")
    );
    let mode = |p: &str| fs::metadata(appdir.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("bin/tool"), 0o750);
    assert_eq!(mode("AppRun"), 0o755);
    assert_eq!(mode("demo.desktop"), 0o644);
    // No temporary folders are left beside it.
    assert_eq!(f.cached(), cached);
}

#[test]
fn the_cache_is_reused_and_a_damaged_one_extracted_again() {
    let f = fixture("cache");
    f.stdout(&[]);
    let appdir = f.cached().remove(0);
    // The half-written folder of a start killed during extraction (a pid
    // that cannot be running) goes; one of a running start stays.
    let prefix = format!(
        ".{}.partial-",
        appdir.file_name().unwrap().to_str().unwrap()
    );
    let dead = f
        .dir
        .join("cache/appimage")
        .join(format!("{prefix}4294967295"));
    let live = f
        .dir
        .join("cache/appimage")
        .join(format!("{prefix}{}", std::process::id()));
    fs::create_dir_all(dead.join("usr")).unwrap();
    fs::create_dir_all(&live).unwrap();
    fs::remove_file(appdir.join("AppRun")).unwrap();
    f.stdout(&[]);
    assert!(!dead.exists(), "an abandoned extraction was left");
    assert!(live.exists(), "a running extraction was removed");
    fs::remove_dir_all(&live).unwrap();
    let marker = appdir.join("marker");
    fs::write(&marker, "").unwrap();
    f.stdout(&[]);
    assert!(marker.exists(), "a complete cache was extracted again");
    assert_eq!(f.cached(), vec![appdir.clone()]);
    // Without AppRun the copy is incomplete: replaced by a fresh one.
    fs::remove_file(appdir.join("AppRun")).unwrap();
    assert!(f.stdout(&["again"]).ends_with("ARG=again\n"));
    assert!(!marker.exists());
    assert!(appdir.join("AppRun").exists());
    assert_eq!(f.cached(), vec![appdir]);
}

#[test]
fn offset_is_the_end_of_the_runtime_elf() {
    let f = fixture("offset");
    assert_eq!(
        f.stdout(&["--appimage-offset"]),
        format!("{}\n", f.runtime_len)
    );
    // Nothing was extracted for that.
    assert!(!f.dir.join("cache").exists());
}

#[test]
fn extract_writes_squashfs_root_in_the_current_folder() {
    let f = fixture("extract");
    let listing = f.stdout(&["--appimage-extract"]);
    let root = f.dir.join("work/squashfs-root");
    for p in [
        "AppRun",
        "demo.desktop",
        "data/file.txt",
        "bin/tool",
        "link",
    ] {
        assert!(
            listing.lines().any(|l| l == format!("squashfs-root/{p}")),
            "{p} not listed in {listing}"
        );
        assert!(root.join(p).symlink_metadata().is_ok(), "{p} not extracted");
    }
    assert_eq!(
        fs::read_to_string(root.join("link")).unwrap(),
        "hello from the image\n"
    );
    assert!(!f.dir.join("cache").exists());

    fs::remove_dir_all(&root).unwrap();
    let listing = f.stdout(&["--appimage-extract", "data/*"]);
    assert_eq!(listing, "squashfs-root/data/file.txt\n");
    assert!(root.join("data/file.txt").is_file());
    assert!(!root.join("AppRun").exists());
}

#[test]
fn unknown_appimage_options_are_refused() {
    let f = fixture("refuse");
    let out = f.run(&["--appimage-mount"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--appimage-mount is not supported by this runtime"),
        "{err}"
    );
    assert!(!f.dir.join("cache").exists());
}
