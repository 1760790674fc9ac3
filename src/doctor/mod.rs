//! `softline doctor`: the "phone won't register" checklist, automated.
//!
//! The checks run in order — config, DNS, reachability, TLS, OPTIONS,
//! REGISTER, NAT — and stop explaining at the first failure: every later
//! check is reported as skipped. Each result carries its evidence and the one
//! action to take. The doctor only reads the config; it leaves no
//! registration behind (the REGISTER check un-registers with `Expires: 0`).
//!
//! This is runtime code (like `src/runtime`): it opens sockets and reads the
//! clock. The SIP part drives the real sans-IO [`crate::phone::Phone`] core
//! (see `sip.rs`).

#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::config::{AccountConfig, Config};
use crate::sip::transport::{Peer, TransportKind};

pub mod bundle;
mod config_check;
mod dns;
mod media;
mod mic;
mod reach;
mod sip;
mod tls;
pub mod x509;

/// What to check.
#[derive(Debug, Clone)]
pub struct Options {
    pub config_path: PathBuf,
    /// The account to check (default: the first one).
    pub account: Option<String>,
}

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// `config`, `dns`, `reachability`, `tls`, `options`, `register`, `nat`.
    pub check: &'static str,
    pub status: Status,
    /// What was seen (lines separated by `\n`).
    pub evidence: String,
    /// The one action to take (empty when there is nothing to do).
    pub advice: String,
}

impl CheckResult {
    fn passed(check: &'static str, evidence: impl Into<String>) -> CheckResult {
        CheckResult {
            check,
            status: Status::Passed,
            evidence: evidence.into(),
            advice: String::new(),
        }
    }
    fn failed(
        check: &'static str,
        evidence: impl Into<String>,
        advice: impl Into<String>,
    ) -> CheckResult {
        CheckResult {
            check,
            status: Status::Failed,
            evidence: evidence.into(),
            advice: advice.into(),
        }
    }
    fn skipped(check: &'static str, why: impl Into<String>) -> CheckResult {
        CheckResult {
            check,
            status: Status::Skipped,
            evidence: why.into(),
            advice: String::new(),
        }
    }
    fn with_advice(mut self, advice: impl Into<String>) -> CheckResult {
        self.advice = advice.into();
        self
    }
}

/// Every check, in the order they run.
pub const CHECKS: [&str; 9] = [
    "config",
    "dns",
    "reachability",
    "tls",
    "options",
    "register",
    "nat",
    "microphone",
    "media",
];

/// The doctor's findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// True only when every check passed. Checks are skipped only after a
    /// failure, or when they do not apply (TLS for a UDP account).
    pub fn passed(&self) -> bool {
        !self.checks.iter().any(|c| c.status == Status::Failed)
    }

    /// The first failed check.
    pub fn first_failure(&self) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.status == Status::Failed)
    }

    /// JSON: an array of `{check, status, evidence, advice}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.checks).unwrap_or(serde_json::Value::Null)
    }

    /// One line per check (`[ok]`, `[FAIL]`, `[skip]`), further evidence
    /// lines indented, the advice after `->`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let mark = match c.status {
                Status::Passed => "[ok]  ",
                Status::Failed => "[FAIL]",
                Status::Skipped => "[skip]",
            };
            let mut lines = c.evidence.lines();
            out.push_str(&format!(
                "{mark} {:<13}{}\n",
                c.check,
                lines.next().unwrap_or("")
            ));
            for line in lines {
                out.push_str(&format!("{:20}{line}\n", ""));
            }
            if !c.advice.is_empty() {
                out.push_str(&format!("{:20}-> {}\n", "", c.advice));
            }
        }
        out.push_str(if self.passed() {
            "All checks passed.\n"
        } else {
            "Not every check passed.\n"
        });
        out
    }
}

/// What the checks learn and hand on to the next ones.
struct Context {
    config: Config,
    account: AccountConfig,
    /// RFC 3263 targets, in order, with their TLS server names.
    targets: Vec<(Peer, String)>,
    /// The target that answered (reachability).
    chosen: Option<(Peer, String)>,
    /// The server's view of our address (Via received/rport of the
    /// REGISTER's final response) and our own.
    nat: Option<sip::NatView>,
}

/// Time limits of the steps (the doctor never hangs).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub dns: Duration,
    pub connect: Duration,
    pub udp_probe: Duration,
    pub options: Duration,
    pub register: Duration,
    /// How long the microphone check listens.
    pub microphone: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            dns: Duration::from_secs(10),
            connect: Duration::from_secs(5),
            udp_probe: Duration::from_secs(3),
            options: Duration::from_secs(4),
            register: Duration::from_secs(10),
            microphone: Duration::from_secs(3),
        }
    }
}

/// Run every check and return the report.
pub fn run(opts: &Options) -> Report {
    run_with(opts, &mut |_| {})
}

/// [`run`], telling `on_check` each check's result as it finishes (the
/// GUI's check-up page shows the steps as they go).
pub fn run_with(opts: &Options, on_check: &mut dyn FnMut(&CheckResult)) -> Report {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return Report {
                checks: vec![CheckResult::failed(
                    "config",
                    format!("cannot start the network runtime: {e}"),
                    "This is a problem of this computer (out of resources?): try again.",
                )],
            };
        }
    };
    rt.block_on(run_checks(opts, Limits::default(), on_check))
}

async fn run_checks(
    opts: &Options,
    limits: Limits,
    on_check: &mut dyn FnMut(&CheckResult),
) -> Report {
    let mut checks: Vec<CheckResult> = Vec::new();
    let mut ctx = match config_check::check(&opts.config_path, opts.account.as_deref()) {
        Ok((result, config, account)) => {
            on_check(&result);
            checks.push(result);
            Context {
                config,
                account,
                targets: Vec::new(),
                chosen: None,
                nat: None,
            }
        }
        Err(result) => {
            on_check(&result);
            checks.push(result);
            return finish(checks);
        }
    };
    for &name in CHECKS.iter().skip(1) {
        let result = match name {
            "dns" => dns::check(&mut ctx, limits).await,
            "reachability" => reach::check(&mut ctx, limits).await,
            "tls" => tls::check(&ctx, limits).await,
            "options" => sip::options_check(&ctx, limits).await,
            "register" => sip::register_check(&mut ctx, limits).await,
            "nat" => sip::nat_check(&ctx),
            "microphone" => mic::check(&ctx.config.audio, limits.microphone),
            _ => media::check(&ctx).await,
        };
        let failed = result.status == Status::Failed;
        on_check(&result);
        checks.push(result);
        if failed {
            break;
        }
    }
    finish(checks)
}

/// Mark the checks that did not run as skipped.
fn finish(mut checks: Vec<CheckResult>) -> Report {
    for &name in CHECKS.iter().skip(checks.len()) {
        checks.push(CheckResult::skipped(
            name,
            "not run: an earlier check failed",
        ));
    }
    Report { checks }
}

/// The config file used when none is given: softline.toml in the user's
/// config dir (as the phone itself does).
pub fn default_config_path() -> PathBuf {
    directories::ProjectDirs::from("", "", "softline")
        .map(|d| d.config_dir().join("softline.toml"))
        .unwrap_or_else(|| PathBuf::from("softline.toml"))
}

/// `softline doctor`: run, print (text or JSON), write the bundle when
/// asked. Returns whether every check passed.
pub fn main(opts: &Options, json: bool, bundle_path: Option<&Path>) -> bool {
    let report = run(opts);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
        );
    } else {
        print!("{}", report.to_text());
    }
    if let Some(path) = bundle_path {
        match bundle::write(path, &opts.config_path, &report) {
            Ok(()) => eprintln!("support bundle written to {}", path.display()),
            Err(e) => {
                eprintln!("softline doctor: cannot write the bundle: {e}");
                return false;
            }
        }
    }
    report.passed()
}

/// `udp`, `tcp`, `tls`.
fn transport_name(t: TransportKind) -> &'static str {
    match t {
        TransportKind::Udp => "udp",
        TransportKind::Tcp => "tcp",
        TransportKind::Tls => "tls",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_after_first_failure_and_text_marks() {
        let report = finish(vec![
            CheckResult::passed("config", "ok\nsecond line"),
            CheckResult::failed("dns", "no such host", "check the domain"),
        ]);
        assert_eq!(report.checks.len(), CHECKS.len());
        assert!(!report.passed());
        assert_eq!(report.first_failure().map(|c| c.check), Some("dns"));
        assert!(
            report.checks[2..]
                .iter()
                .all(|c| c.status == Status::Skipped)
        );
        let text = report.to_text();
        assert!(text.contains("[ok]   config       ok\n"), "{text}");
        assert!(text.contains("                    second line\n"), "{text}");
        assert!(
            text.contains("[FAIL] dns          no such host\n"),
            "{text}"
        );
        assert!(text.contains("-> check the domain"), "{text}");
        assert!(text.contains("[skip] nat"), "{text}");
        let json = report.to_json();
        assert_eq!(json[1]["status"], "failed");
        assert_eq!(json[1]["advice"], "check the domain");
        assert_eq!(json[6]["check"], "nat");
    }

    #[test]
    fn tls_skipped_for_other_transports_still_passes() {
        let mut checks: Vec<CheckResult> = CHECKS
            .iter()
            .map(|&c| CheckResult::passed(c, "fine"))
            .collect();
        checks[3] = CheckResult::skipped("tls", "the account uses udp");
        assert!(Report { checks }.passed());
    }
}
