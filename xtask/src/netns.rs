//! Network namespaces for the audio benchmark: each call's sender and
//! receiver run in a namespace of their own, joined to the root namespace
//! by a veth pair, so that the impairment relay (in the root namespace, on
//! the two veth addresses) is the only way between them. A phone sees a
//! real interface with its own address and a default route to the relay's
//! side; the two namespaces cannot reach each other (the root namespace
//! does not forward between them unless the host was set up to).
//!
//! Needs root (`ip netns`, `ip link`); [`available`] says whether this
//! host can. Names carry the xtask's process id, so that namespaces a
//! crashed run left behind are recognised ([`clean_stale`]).

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// One phone's namespace: its name, the phone's address in it and the
/// root side's (the relay's) address on the same /30.
#[derive(Debug, Clone)]
pub struct Side {
    pub ns: String,
    pub ip: Ipv4Addr,
    pub gw: Ipv4Addr,
}

/// The two namespaces of one call; removed when dropped.
#[derive(Debug)]
pub struct CallNet {
    pub tx: Side,
    pub rx: Side,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn prefix() -> String {
    format!("slb{}-", std::process::id())
}

/// Whether namespaces and veth pairs can be made here (tries one).
pub fn available() -> bool {
    let ns = format!("{}probe", prefix());
    let ok = ip(&["netns", "add", &ns]).is_ok();
    if ok {
        let _ = ip(&["netns", "del", &ns]);
    }
    ok
}

/// Remove the namespaces of earlier runs that did not clean up (their
/// veth pairs go with them).
pub fn clean_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    let mine = prefix();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if name.starts_with("slb") && !name.starts_with(&mine) {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

impl CallNet {
    /// The namespaces of call `slot` (unique among the calls running at
    /// once): sender on 10.77.x.y/30, receiver on 10.78.x.y/30.
    pub fn create(slot: u16) -> Result<CallNet, String> {
        let tx = make_side(slot, "tx", 77)?;
        let rx = match make_side(slot, "rx", 78) {
            Ok(rx) => rx,
            Err(e) => {
                let _ = ip(&["netns", "del", &tx.ns]);
                return Err(e);
            }
        };
        Ok(CallNet { tx, rx })
    }
}

fn make_side(slot: u16, role: &str, net: u8) -> Result<Side, String> {
    let ns = format!("{}{slot}-{role}", prefix());
    // /30 number `slot` inside 10.net.0.0/16.
    let base = u32::from(Ipv4Addr::new(10, net, 0, 0)) + u32::from(slot) * 4;
    let (gw, addr) = (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2));
    let outer = format!("sl{role}{slot}");
    let inner = format!("sl{role}{slot}n");
    let made = (|| {
        ip(&["netns", "add", &ns])?;
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &ns,
        ])?;
        ip(&["addr", "add", &format!("{gw}/30"), "dev", &outer])?;
        ip(&["link", "set", &outer, "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/30"),
            "dev",
            &inner,
        ])?;
        ip(&["-n", &ns, "link", "set", &inner, "up"])?;
        ip(&["-n", &ns, "route", "add", "default", "via", &gw.to_string()])
    })();
    match made {
        Ok(()) => Ok(Side { ns, ip: addr, gw }),
        Err(e) => {
            let _ = ip(&["netns", "del", &ns]);
            let _ = ip(&["link", "del", &outer]);
            Err(e)
        }
    }
}

impl Drop for CallNet {
    fn drop(&mut self) {
        for side in [&self.tx, &self.rx] {
            // The veth pair goes with the namespace.
            let _ = ip(&["netns", "del", &side.ns]);
        }
    }
}

/// `program` run inside namespace `ns` (`ip netns exec` execs it: the
/// child's pid is the program's), or directly without one.
pub fn command(ns: Option<&str>, program: impl AsRef<OsStr>) -> Command {
    match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
        None => Command::new(program),
    }
}
