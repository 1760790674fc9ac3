//! The runtime at the front of Softline's AppImage (AppImage type 2 layout).
//!
//! An AppImage is this ELF program followed by a squashfs image of the AppDir.
//! The image starts where the ELF file ends, that is at the end of its section
//! header table (`e_shoff + e_shnum * e_shentsize`), as the AppImage
//! specification says; `cargo xtask package` writes the type-2 magic (`AI`,
//! 0x02) into ELF header bytes 8..10 (EI_ABIVERSION and padding, unused by the
//! loader).
//!
//! Unlike the official runtime this one does not mount the image with FUSE
//! (often missing in containers and locked-down desktops): it extracts it once
//! to `$XDG_CACHE_HOME/appimage/<name>-<hash of the image>/` (reused while it is
//! complete; a new build gets a new folder) and execs `AppRun` there with the
//! arguments, with `APPIMAGE`, `APPDIR`, `ARGV0` and `OWD` set like the
//! official runtime. `--appimage-extract [PATTERN]` writes `squashfs-root/` in
//! the current folder, `--appimage-offset` prints where the image starts.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitCode};

use backhand::{FilesystemReader, InnerNode};

const HELP: &str = "AppImage options (this runtime extracts the image instead of mounting it):
  --appimage-extract [PATTERN]  extract the contents (or the paths matching PATTERN, * and ?
                                wildcards) to ./squashfs-root and exit
  --appimage-extract-and-run    run the application (what a plain start does here too)
  --appimage-offset             print the byte offset of the embedded squashfs image and exit
  --appimage-version            print the runtime's version and exit
  --appimage-help               print this help and exit
Other arguments are passed to the application. The image is extracted once to
$XDG_CACHE_HOME/appimage/NAME-HASH (default ~/.cache) and reused while complete.";

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let rest: Vec<OsString> = args.collect();
    match run(argv0, rest) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("AppImage runtime: {e}");
            ExitCode::from(127)
        }
    }
}

fn run(argv0: OsString, args: Vec<OsString>) -> Result<()> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let me = fs::canonicalize(&me).unwrap_or(me);
    let offset = image_offset(&me)?;
    let first = args.first().and_then(|a| a.to_str()).unwrap_or("");
    let mut app_args = args.as_slice();
    match first {
        "--appimage-offset" => {
            println!("{offset}");
            return Ok(());
        }
        "--appimage-help" => {
            println!("{HELP}");
            return Ok(());
        }
        "--appimage-version" => {
            println!(
                "Softline AppImage runtime {} (type 2, extracts instead of mounting)",
                env!("CARGO_PKG_VERSION")
            );
            return Ok(());
        }
        "--appimage-extract" => {
            let pattern = args.get(1).map(|p| p.to_string_lossy().into_owned());
            let fs = open_image(&me, offset)?;
            let dest = PathBuf::from("squashfs-root");
            extract(&fs, &dest, pattern.as_deref(), true)?;
            return Ok(());
        }
        "--appimage-extract-and-run" => app_args = &args[1..],
        other if other.starts_with("--appimage-") => {
            return Err(format!(
                "{other} is not supported by this runtime (it extracts instead of mounting); see --appimage-help"
            ));
        }
        _ => {}
    }
    let appdir = cached_appdir(&me, offset)?;
    let owd = std::env::current_dir().unwrap_or_default();
    let err = Command::new(appdir.join("AppRun"))
        .args(app_args)
        .env("APPIMAGE", &me)
        .env("APPDIR", &appdir)
        .env("ARGV0", &argv0)
        .env("OWD", owd)
        .exec();
    Err(format!(
        "cannot run {}: {err}",
        appdir.join("AppRun").display()
    ))
}

/// Where the squashfs image starts: the end of this ELF file's section header
/// table (64-bit little-endian ELF, as built for x86_64 and aarch64).
fn image_offset(me: &Path) -> Result<u64> {
    let mut head = [0u8; 64];
    File::open(me)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(|e| format!("cannot read {}: {e}", me.display()))?;
    elf_end(&head).ok_or_else(|| format!("{} is not a 64-bit little-endian ELF", me.display()))
}

/// The end of the section header table of a 64-bit little-endian ELF header.
fn elf_end(head: &[u8; 64]) -> Option<u64> {
    if head[..4] != *b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return None;
    }
    let shoff = u64::from_le_bytes(head[0x28..0x30].try_into().ok()?);
    let shentsize = u16::from_le_bytes([head[0x3a], head[0x3b]]);
    let shnum = u16::from_le_bytes([head[0x3c], head[0x3d]]);
    shoff.checked_add(u64::from(shentsize) * u64::from(shnum))
}

fn open_image(me: &Path, offset: u64) -> Result<FilesystemReader<'static>> {
    let file = File::open(me).map_err(|e| format!("cannot open {}: {e}", me.display()))?;
    FilesystemReader::from_reader_with_offset(BufReader::new(file), offset).map_err(|e| {
        format!(
            "no squashfs image at offset {offset} of {}: {e}",
            me.display()
        )
    })
}

/// The extracted AppDir in the cache, extracted now unless a complete copy of
/// this very image is there. Extraction goes to a temporary sibling that is
/// renamed into place, so the folder exists only when complete, and two
/// starts racing each other both end up on one finished copy.
fn cached_appdir(me: &Path, offset: u64) -> Result<PathBuf> {
    let root = cache_root()?;
    let hash = image_hash(me, offset)?;
    let fs = open_image(me, offset)?;
    let name = app_name(&fs);
    let dir = root.join(format!("{name}-{hash:016x}"));
    if dir.join("AppRun").exists() {
        return Ok(dir);
    }
    // A folder without AppRun is a damaged copy: start again.
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let partial = format!(".{name}-{hash:016x}.partial-");
    remove_abandoned(&root, &partial);
    let tmp = root.join(format!("{partial}{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    if let Err(e) = extract(&fs, &tmp, None, false) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if let Err(e) = fs::rename(&tmp, &dir) {
        let _ = fs::remove_dir_all(&tmp);
        if !dir.join("AppRun").exists() {
            return Err(format!("cannot move the image to {}: {e}", dir.display()));
        }
    }
    Ok(dir)
}

/// Remove the temporary folders `<prefix><pid>` of extractions whose process
/// is gone (killed half-way).
fn remove_abandoned(root: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix(prefix));
        if let Some(pid) = pid.filter(|p| p.parse::<u32>().is_ok())
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn cache_root() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".cache"))
        })
        .ok_or("neither XDG_CACHE_HOME nor HOME is set to an absolute path")?;
    Ok(base.join("appimage"))
}

/// xxh64 of the image bytes: the cache folder's version key.
fn image_hash(me: &Path, offset: u64) -> Result<u64> {
    let mut file = File::open(me).map_err(|e| format!("cannot open {}: {e}", me.display()))?;
    io::Seek::seek(&mut file, io::SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let mut hasher = xxhash_rust::xxh64::Xxh64::new(0);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.digest())
}

/// The application's name for the cache folder: the top-level .desktop file's
/// stem (an AppDir has exactly one), else "app".
fn app_name(fs: &FilesystemReader) -> String {
    fs.files()
        .filter(|n| n.fullpath.parent() == Some(Path::new("/")))
        .filter_map(|n| n.fullpath.file_name()?.to_str())
        .find_map(|f| f.strip_suffix(".desktop"))
        .filter(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
        .unwrap_or("app")
        .to_owned()
}

/// Write the image's files (all, or those whose path matches `pattern`) under
/// `dest`, keeping modes and symlinks.
fn extract(fs: &FilesystemReader, dest: &Path, pattern: Option<&str>, verbose: bool) -> Result<()> {
    fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let mut dirs = Vec::new();
    for node in fs.files() {
        let rel = node.fullpath.strip_prefix("/").unwrap_or(&node.fullpath);
        if rel.as_os_str().is_empty() {
            continue;
        }
        // Never write outside `dest`, whatever the image says.
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(format!("refusing the path {} in the image", rel.display()));
        }
        if let Some(p) = pattern
            && !glob(p.as_bytes(), rel.as_os_str().as_encoded_bytes())
        {
            continue;
        }
        let path = dest.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        let mode = u32::from(node.header.permissions) & 0o777;
        match &node.inner {
            InnerNode::Dir(_) => {
                fs::create_dir_all(&path).map_err(|e| io_err(&path, e))?;
                dirs.push((path.clone(), mode));
            }
            InnerNode::File(f) => {
                let _ = fs::remove_file(&path);
                let mut out = File::create(&path).map_err(|e| io_err(&path, e))?;
                io::copy(&mut fs.file(f).reader(), &mut out).map_err(|e| io_err(&path, e))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                    .map_err(|e| io_err(&path, e))?;
            }
            InnerNode::Symlink(l) => {
                let _ = fs::remove_file(&path);
                symlink(&l.link, &path).map_err(|e| io_err(&path, e))?;
            }
            // Devices, pipes and sockets have no place in an AppDir.
            _ => continue,
        }
        if verbose {
            println!("{}", Path::new("squashfs-root").join(rel).display());
        }
    }
    // Modes of folders last (a read-only folder would stop its own filling),
    // deepest first; always keep them writable by the owner so the cache can
    // be removed.
    for (dir, mode) in dirs.iter().rev() {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700))
            .map_err(|e| io_err(dir, e))?;
    }
    Ok(())
}

fn io_err(path: &Path, e: io::Error) -> String {
    format!("{}: {e}", path.display())
}

/// fnmatch-style match without FNM_PATHNAME: `*` matches any run of bytes
/// (slashes too), `?` one byte, everything else itself.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_table_end_is_the_image_offset() {
        let mut head = [0u8; 64];
        head[..6].copy_from_slice(b"\x7fELF\x02\x01");
        head[8..11].copy_from_slice(b"AI\x02");
        head[0x28..0x30].copy_from_slice(&1000u64.to_le_bytes());
        head[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        head[0x3c..0x3e].copy_from_slice(&30u16.to_le_bytes());
        assert_eq!(elf_end(&head), Some(1000 + 64 * 30));
        head[4] = 1; // 32-bit
        assert_eq!(elf_end(&head), None);
        assert_eq!(elf_end(&[0u8; 64]), None);
    }

    #[test]
    fn patterns_match_like_fnmatch() {
        assert!(glob(b"*.desktop", b"softline.desktop"));
        assert!(glob(b"usr/*", b"usr/bin/softline"));
        assert!(glob(b"AppRun", b"AppRun"));
        assert!(glob(b"s?ftline.png", b"softline.png"));
        assert!(!glob(b"usr/*", b"AppRun"));
        assert!(!glob(b"AppRun", b"AppRun2"));
        assert!(!glob(b"", b"x"));
    }
}
