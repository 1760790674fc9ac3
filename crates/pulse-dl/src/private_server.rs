//! The command line of a private PulseAudio server, for the tests and the
//! benchmark that need one (its own socket, no user session, null sinks
//! instead of sound cards). Nothing here runs in the phone.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The server's native socket under `dir`.
pub fn socket(dir: &Path) -> PathBuf {
    dir.join("native")
}

/// Its address, the value of `PULSE_SERVER` for clients.
pub fn address(dir: &Path) -> String {
    format!("unix:{}", socket(dir).display())
}

/// `pulseaudio` in the foreground with no default configuration, never
/// exiting when idle, no pid file, its [`socket`] open to anyone (anonymous
/// authentication), its home, runtime and state (`dir/state`, which must
/// exist) under `dir`, and one null sink per `sinks` entry (the arguments
/// of `module-null-sink`, e.g. `sink_name=out rate=8000 channels=1`).
/// Standard input and output are the caller's to set.
pub fn command(dir: &Path, sinks: &[&str]) -> Command {
    let mut cmd = Command::new("pulseaudio");
    cmd.args([
        "-n",
        "--daemonize=no",
        "--exit-idle-time=-1",
        "--use-pid-file=no",
    ])
    .arg("-L")
    .arg(format!(
        "module-native-protocol-unix auth-anonymous=1 socket={}",
        socket(dir).display()
    ));
    for sink in sinks {
        cmd.arg("-L").arg(format!("module-null-sink {sink}"));
    }
    cmd.env("HOME", dir)
        .env("PULSE_RUNTIME_PATH", dir)
        .env("PULSE_STATE_PATH", dir.join("state"));
    cmd
}
