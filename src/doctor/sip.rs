//! (e) SIP: OPTIONS to the server, then REGISTER with the account and
//! un-REGISTER; (f) NAT: the address the server saw (Via `received` /
//! `rport` of the REGISTER's response) against ours.
//!
//! The REGISTER step runs the real [`Phone`] core with only the checked
//! account (MWI off), pumped by a small loop over the runtime's
//! [`Network`]: the same REGISTER, digest, transaction and failure-cause
//! code the phone uses, so the doctor cannot disagree with the phone. The
//! loop only watches the wire for the status codes and the Via.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::{CheckResult, Context, Limits, transport_name};
use crate::config::{AccountConfig, Config};
use crate::phone::{AccountStatus, Command, Event, LocalAddrs, Output, Phone, Resolved};
use crate::runtime::driver::{local_ip_towards, net_config};
use crate::runtime::net::{NetEvent, Network};
use crate::sip::headers::TypedHeaders;
use crate::sip::message::{Message, Method};
use crate::sip::transport::{Peer, TransportError, TransportKind};

/// An OPTIONS request ready to send.
pub(super) struct OptionsRequest {
    pub text: String,
    pub call_id: String,
}

/// OPTIONS to the server itself (no user part: a keep-alive ping most
/// servers answer 200), from the account's address of record.
pub(super) fn options_request(
    account: &AccountConfig,
    peer: Peer,
    local: SocketAddr,
) -> OptionsRequest {
    let host = match peer.addr.ip() {
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    let via_host = match local.ip() {
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    let transport_param = match peer.transport {
        TransportKind::Udp => "",
        TransportKind::Tcp => ";transport=tcp",
        TransportKind::Tls => ";transport=tls",
    };
    let call_id = format!("{:016x}@softline-doctor", rand::random::<u64>());
    let text = format!(
        "OPTIONS sip:{host}:{port}{transport_param} SIP/2.0\r\n\
         Via: SIP/2.0/{via} {via_host}:{lport};branch=z9hG4bK{branch:016x};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{domain}>;tag={tag:08x}\r\n\
         To: <sip:{host}:{port}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Accept: application/sdp\r\n\
         User-Agent: Softline/{version} (doctor)\r\n\
         Content-Length: 0\r\n\r\n",
        port = peer.addr.port(),
        via = peer.transport.via_token(),
        lport = local.port(),
        branch = rand::random::<u64>(),
        user = account.username,
        domain = account.domain(),
        tag = rand::random::<u32>(),
        version = env!("CARGO_PKG_VERSION"),
    );
    OptionsRequest { text, call_id }
}

/// The runtime's network for `config`, with an ephemeral UDP port (a
/// running phone may hold the configured one), no TCP listener, no
/// keep-alives, and the checked account's certificate policy.
pub(super) async fn network(config: &Config, account: &AccountConfig) -> Result<Network, String> {
    let mut cfg = net_config(config);
    let ip = cfg
        .listen_udp
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    cfg.listen_udp = Some(SocketAddr::new(ip, 0));
    cfg.listen_tcp = None;
    cfg.udp_keepalive = None;
    cfg.tls = super::tls::tls_config(account);
    Network::bind(cfg)
        .await
        .map_err(|e| format!("cannot open a local socket: {e}"))
}

/// Our Via sent-by for `peer`: the local IP facing it, the UDP port (or the
/// TCP default for streams, whose responses come back on the connection).
fn local_for(net: &Network, peer: Peer) -> SocketAddr {
    let ip = local_ip_towards(peer.addr);
    let port = match peer.transport {
        TransportKind::Udp => net
            .local_addr(TransportKind::Udp)
            .map_or(5060, |a| a.port()),
        t => t.default_port(),
    };
    SocketAddr::new(ip, port)
}

pub(super) async fn options_check(ctx: &Context, limits: Limits) -> CheckResult {
    let Some((peer, name)) = ctx.chosen.clone() else {
        return CheckResult::skipped("options", "not run: no reachable server");
    };
    let mut net = match network(&ctx.config, &ctx.account).await {
        Ok(n) => n,
        Err(e) => {
            return CheckResult::failed("options", e, "Close what holds the port, then try again.");
        }
    };
    let request = options_request(&ctx.account, peer, local_for(&net, peer));
    let started = Instant::now();
    let deadline = started + limits.options;
    let mut interval = Duration::from_millis(500);
    let what = format!(
        "OPTIONS to {} {}",
        transport_name(peer.transport),
        peer.addr
    );
    loop {
        net.send(peer, Some(&name), request.text.clone().into_bytes());
        let resend_at = if peer.transport == TransportKind::Udp {
            (Instant::now() + interval).min(deadline)
        } else {
            deadline
        };
        interval = (interval * 2).min(Duration::from_secs(4));
        loop {
            let wait = resend_at.saturating_duration_since(Instant::now());
            let event = match tokio::time::timeout(wait, net.next_event()).await {
                Err(_) => break,
                Ok(e) => e,
            };
            match event {
                NetEvent::Received { data, .. } => {
                    let Ok(Message::Response(r)) = Message::parse(&data) else {
                        continue;
                    };
                    if r.headers.call_id().ok() != Some(request.call_id.as_str()) {
                        continue;
                    }
                    if r.code < 200 {
                        continue;
                    }
                    let evidence = format!(
                        "{what}: {} {} in {} ms",
                        r.code,
                        r.reason,
                        started.elapsed().as_millis()
                    );
                    // Any answer proves a SIP server listens; a refusal of
                    // OPTIONS is worth a note, not a failure.
                    let result = CheckResult::passed("options", evidence);
                    return if r.code >= 300 {
                        result.with_advice(format!(
                            "The server answers but refuses OPTIONS ({} {}); that is fine for \
                             registering.",
                            r.code, r.reason
                        ))
                    } else {
                        result
                    };
                }
                NetEvent::Failed { error, .. } => {
                    return CheckResult::failed(
                        "options",
                        format!("{what}: {error}"),
                        transport_advice(&error),
                    );
                }
                NetEvent::Closed { .. } => {
                    return CheckResult::failed(
                        "options",
                        format!("{what}: the server closed the connection"),
                        "The server drops our connection: ask your admin whether it accepts \
                         SIP over this transport.",
                    );
                }
            }
        }
        if Instant::now() >= deadline {
            return CheckResult::failed(
                "options",
                format!(
                    "{what}: no SIP response within {} s",
                    limits.options.as_secs()
                ),
                "Something answers on the port but it does not speak SIP back: check the \
                 server address and port with your admin (a SIP ALG in the router can also \
                 eat the replies: switch it off or use TCP/TLS).",
            );
        }
    }
}

fn transport_advice(error: &TransportError) -> String {
    match error {
        TransportError::Refused => "Nothing listens there: check the port and transport.".into(),
        TransportError::Timeout => "No answer: a firewall seems to drop the traffic.".into(),
        TransportError::TlsCertificate(p) => {
            format!("The server certificate {p}: see the TLS check.")
        }
        other => format!("Check the network connection ({other})."),
    }
}

/// Where the server saw us, against where we are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NatView {
    pub transport: TransportKind,
    pub local: SocketAddr,
    /// Via `received` (or our own host when absent) and `rport`.
    pub received: Option<String>,
    pub rport: Option<u16>,
}

/// What went over the wire during the REGISTER check.
#[derive(Default)]
struct WireLog {
    lines: Vec<String>,
    /// (code, reason) of every REGISTER response, in order.
    responses: Vec<(u16, String)>,
    nat: Option<(Option<String>, Option<u16>)>,
}

/// Pump the phone until `done` says so on an account status, or the
/// deadline. Returns the last status seen.
async fn pump(
    phone: &mut Phone,
    net: &mut Network,
    targets: &[Resolved],
    wire: &mut WireLog,
    deadline: Instant,
    done: impl Fn(&AccountStatus) -> bool,
    last: &mut Option<AccountStatus>,
) -> bool {
    loop {
        while let Some(out) = phone.poll_output() {
            match out {
                Output::Transmit {
                    peer,
                    server_name,
                    data,
                } => {
                    if let Ok(Message::Request(r)) = Message::parse(&data)
                        && r.method == Method::Register
                    {
                        let expires = r.headers.expires().ok().flatten();
                        wire.lines.push(format!(
                            "-> REGISTER{}{}",
                            if r.headers.contains("Authorization") {
                                " with credentials"
                            } else {
                                ""
                            },
                            if expires == Some(0) {
                                " (Expires: 0, removing the binding)"
                            } else {
                                ""
                            }
                        ));
                    }
                    net.send(peer, server_name.as_deref(), data);
                }
                Output::Resolve { token, .. } => {
                    phone.handle_resolved(Instant::now(), token, Ok(targets.to_vec()));
                }
                Output::Event(Event::Account(status)) => {
                    let finished = done(&status);
                    *last = Some(status);
                    if finished {
                        return true;
                    }
                }
                _ => {}
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let wake = phone.poll_timeout().map_or(deadline, |t| t.min(deadline));
        tokio::select! {
            event = net.next_event() => {
                let now = Instant::now();
                match event {
                    NetEvent::Received { peer, local, data } => {
                        if let Ok(Message::Response(r)) = Message::parse(&data)
                            && r.headers.cseq().is_ok_and(|c| c.method == Method::Register)
                        {
                            wire.lines.push(format!("<- {} {}", r.code, r.reason));
                            wire.responses.push((r.code, r.reason.clone()));
                            if let Ok(via) = r.headers.top_via() {
                                wire.nat = Some((
                                    via.received().map(str::to_string),
                                    via.rport().flatten(),
                                ));
                            }
                        }
                        phone.handle_received(now, peer, local, &data);
                    }
                    NetEvent::Failed { peer, error } => {
                        wire.lines.push(format!("!! {error}"));
                        phone.handle_transport_error(now, peer, error);
                    }
                    NetEvent::Closed { peer } => {
                        phone.handle_transport_error(now, peer, TransportError::Closed);
                    }
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => phone.handle_timeout(Instant::now()),
        }
    }
}

pub(super) async fn register_check(ctx: &mut Context, limits: Limits) -> CheckResult {
    let Some((peer, _name)) = ctx.chosen.clone() else {
        return CheckResult::skipped("register", "not run: no reachable server");
    };
    let mut account = ctx.account.clone();
    account.register = true;
    account.mwi = false;
    let mut config = ctx.config.clone();
    config.accounts = vec![account.clone()];
    let mut net = match network(&config, &account).await {
        Ok(n) => n,
        Err(e) => {
            return CheckResult::failed(
                "register",
                e,
                "Close what holds the port, then try again.",
            );
        }
    };
    let local_addrs = LocalAddrs {
        udp: net.local_addr(TransportKind::Udp),
        tcp: None,
    };
    let mut phone = Phone::new(&config, local_addrs, rand::random());
    phone.set_key_seed(rand::random());
    let local_ip = local_ip_towards(peer.addr);
    let targets = [Resolved { peer, local_ip }];
    let mut wire = WireLog::default();
    let mut last = None;
    phone.start(Instant::now());
    let finished = pump(
        &mut phone,
        &mut net,
        &targets,
        &mut wire,
        Instant::now() + limits.register,
        |s| matches!(s.state, "registered" | "failed"),
        &mut last,
    )
    .await;
    let who = format!(
        "sip:{}@{} (auth user {})",
        account.username,
        account.domain(),
        account.auth_username()
    );
    let registered = finished && last.as_ref().is_some_and(|s| s.state == "registered");
    if !registered {
        let mut evidence = vec![format!("REGISTER {who} at {}", peer.addr)];
        evidence.extend(wire.lines.iter().cloned());
        let advice = match last.as_ref().filter(|_| finished) {
            Some(s) => {
                evidence.push(format!("result: {}", s.reason));
                register_advice(s.cause.as_deref(), &account, &wire.responses)
            }
            None => {
                evidence.push(format!(
                    "result: no final answer within {} s",
                    limits.register.as_secs()
                ));
                "The server does not answer REGISTER: ask your admin whether this server is \
                 your registrar (domain/registrar), or try another transport."
                    .to_string()
            }
        };
        return CheckResult::failed("register", evidence.join("\n"), advice);
    }
    let granted = last.as_ref().and_then(|s| s.expires);
    ctx.nat = Some(NatView {
        transport: peer.transport,
        local: SocketAddr::new(
            local_ip,
            match peer.transport {
                TransportKind::Udp => local_addrs.udp.map_or(0, |a| a.port()),
                _ => 0,
            },
        ),
        received: wire.nat.as_ref().and_then(|(r, _)| r.clone()),
        rport: wire.nat.as_ref().and_then(|(_, p)| *p),
    });
    // Leave nothing behind: un-REGISTER (Expires: 0) and wait for it.
    let _ = phone.handle_command(
        Instant::now(),
        Command::Unregister {
            account: Some(account.id.clone()),
        },
    );
    let removed = pump(
        &mut phone,
        &mut net,
        &targets,
        &mut wire,
        Instant::now() + limits.options,
        |s| matches!(s.state, "unregistered" | "failed"),
        &mut last,
    )
    .await;
    let mut evidence = vec![format!(
        "REGISTER {who} at {}: registered{}",
        peer.addr,
        granted.map(|e| format!(" for {e} s")).unwrap_or_default()
    )];
    evidence.extend(wire.lines.iter().cloned());
    evidence.push(
        if removed && last.as_ref().is_some_and(|s| s.state == "unregistered") {
            "binding removed again (the doctor leaves no registration behind)".to_string()
        } else {
            "the un-REGISTER was not confirmed: the test binding expires on its own".to_string()
        },
    );
    CheckResult::passed("register", evidence.join("\n"))
}

/// The one action for a failed registration, by the core's failure cause.
fn register_advice(
    cause: Option<&str>,
    account: &AccountConfig,
    responses: &[(u16, String)],
) -> String {
    let last = responses
        .last()
        .map(|(c, r)| format!("{c} {r}"))
        .unwrap_or_default();
    match cause {
        Some("credentials") => format!(
            "Password rejected: the server answered the REGISTER with credentials with {last} \
             again. Re-enter the SIP password (secret) of auth user `{}` exactly as your admin \
             gave it{}.",
            account.auth_username(),
            if account.auth_username.is_none() {
                "; if your admin gave a separate auth/user ID, set auth_username"
            } else {
                ""
            }
        ),
        Some("forbidden") => format!(
            "The server refuses this account ({last}): the extension `{}` or auth user `{}` is \
             wrong, disabled, or not allowed from your network; check username and \
             auth_username with your admin.",
            account.username,
            account.auth_username()
        ),
        Some("not_found") => format!(
            "The server does not know extension `{}` at {} ({last}): check username and domain \
             with your admin.",
            account.username,
            account.domain()
        ),
        Some("interval_too_brief") => {
            "The server wants a longer registration: raise `expires` in the account.".to_string()
        }
        Some("timeout") => "The server stopped answering: try again, or another transport.".into(),
        Some("refused" | "closed" | "dns" | "io") => {
            "The server could not be reached for REGISTER: see the reachability check.".into()
        }
        Some("tls_certificate" | "tls") => "The TLS connection failed: see the TLS check.".into(),
        _ => format!(
            "The server refused the registration ({last}): ask your admin what it means for your account."
        ),
    }
}

pub(super) fn nat_check(ctx: &Context) -> CheckResult {
    let Some(nat) = &ctx.nat else {
        return CheckResult::skipped("nat", "not run: no registration");
    };
    let local_ip = nat.local.ip().to_string();
    let seen_ip = nat.received.clone().unwrap_or_else(|| local_ip.clone());
    let seen_port = nat.rport;
    let seen = match seen_port {
        Some(p) => format!("{seen_ip} port {p}"),
        None => seen_ip.clone(),
    };
    let ours = match nat.transport {
        TransportKind::Udp => format!("{} port {}", local_ip, nat.local.port()),
        _ => local_ip.clone(),
    };
    let port_changed =
        nat.transport == TransportKind::Udp && seen_port.is_some_and(|p| p != nat.local.port());
    let behind_nat = seen_ip.trim_matches(['[', ']']) != local_ip || port_changed;
    let via_note = if nat.received.is_none() && nat.rport.is_none() {
        " (the server reported neither received nor rport)"
    } else {
        ""
    };
    let evidence = format!("the server saw us at {seen}; we are {ours}{via_note}");
    if !behind_nat {
        return CheckResult::passed(
            "nat",
            format!("{evidence}\nno NAT between us and the server: keep-alives not needed"),
        );
    }
    let keepalive = ctx.config.sip.udp_keepalive_secs;
    match nat.transport {
        TransportKind::Udp if keepalive == 0 => CheckResult::failed(
            "nat",
            format!("{evidence}\nbehind NAT, and UDP keep-alives are off (udp_keepalive_secs = 0)"),
            "Set udp_keepalive_secs = 25 in [sip]: without keep-alives the router forgets the \
             mapping and incoming calls stop arriving after a minute or so.",
        ),
        TransportKind::Udp if keepalive > 30 => CheckResult::failed(
            "nat",
            format!("{evidence}\nbehind NAT; UDP keep-alive every {keepalive} s"),
            "Lower udp_keepalive_secs to 25 in [sip]: many routers forget UDP mappings after 30 s.",
        ),
        TransportKind::Udp => CheckResult::passed(
            "nat",
            format!("{evidence}\nbehind NAT: keep-alives needed, and on (every {keepalive} s)"),
        ),
        _ => CheckResult::passed(
            "nat",
            format!(
                "{evidence}\nbehind NAT: the {} connection carries the calls; its keep-alive is every {} s",
                transport_name(nat.transport),
                ctx.config.sip.stream_keepalive_secs
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountConfig {
        let cfg = Config::parse(
            "[[account]]\nid = \"a\"\nusername = \"1001\"\npassword = \"pw\"\ndomain = \"pbx.example.com\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        cfg.accounts[0].clone()
    }

    #[test]
    fn options_request_parses_and_names_the_server() {
        let peer = Peer {
            transport: TransportKind::Tls,
            addr: "192.0.2.1:5061".parse().unwrap(),
        };
        let req = options_request(&account(), peer, "10.0.0.2:5060".parse().unwrap());
        let Ok(Message::Request(r)) = Message::parse(req.text.as_bytes()) else {
            panic!("unparsable: {}", req.text);
        };
        assert_eq!(r.method, Method::Options);
        assert!(
            req.text
                .starts_with("OPTIONS sip:192.0.2.1:5061;transport=tls SIP/2.0\r\n")
        );
        assert_eq!(r.headers.call_id().unwrap(), req.call_id);
        let via = r.headers.top_via().unwrap();
        assert_eq!(via.transport, "TLS");
        assert_eq!(via.rport(), Some(None));
    }

    #[test]
    fn advice_by_cause() {
        let a = account();
        let r = [(401, "Unauthorized".to_string())];
        let creds = register_advice(Some("credentials"), &a, &r);
        assert!(creds.starts_with("Password rejected"), "{creds}");
        assert!(creds.contains("401 Unauthorized"), "{creds}");
        assert!(!creds.contains("pw"), "no secret in advice: {creds}");
        let r = [(404, "Not Found".to_string())];
        let nf = register_advice(Some("not_found"), &a, &r);
        assert!(nf.contains("does not know extension `1001`"), "{nf}");
        let r = [(403, "Forbidden".to_string())];
        assert!(
            register_advice(Some("forbidden"), &a, &r)
                .contains("refuses this account (403 Forbidden)")
        );
    }
}
