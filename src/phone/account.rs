//! One account: resolution of its first hop, its registration, its status.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::AccountConfig;
use crate::sip::auth::Credentials;
use crate::sip::headers::TypedHeaders;
use crate::sip::message::{Request, Response};
use crate::sip::register::{RegFailure, RegOutput, RegState, Registration, RegistrationConfig};
use crate::sip::transport::{Peer, TransportError, TransportKind};
use crate::sip::uri::{Host, Uri};

use super::types::{AccountStatus, LocalAddrs, Resolved, transport_cause};

/// What an account asks of the phone.
pub enum AccountOutput {
    Send(Peer, Box<Request>),
    Resolve {
        host: String,
        port: Option<u16>,
        transport: TransportKind,
    },
    StatusChanged,
}

/// DNS state of the first hop.
enum Lookup {
    Idle,
    Pending,
    /// Failed; retry at the instant.
    Failed {
        error: TransportError,
        retry_at: Instant,
        attempts: u32,
    },
}

pub struct Account {
    pub config: AccountConfig,
    reg: Option<Registration>,
    targets: Vec<Resolved>,
    target_idx: usize,
    lookup: Lookup,
    /// The user wants the account registered.
    wanted: bool,
    /// The address the registrar saw us at (Via received/rport).
    public_addr: Option<(IpAddr, u16)>,
    seed: u64,
    outputs: Vec<AccountOutput>,
    /// Voicemail counts the server last reported (MWI).
    pub voicemail: Option<super::types::Voicemail>,
}

impl Account {
    pub fn new(config: AccountConfig, seed: u64) -> Account {
        Account {
            config,
            reg: None,
            targets: Vec::new(),
            target_idx: 0,
            lookup: Lookup::Idle,
            wanted: false,
            public_addr: None,
            seed,
            outputs: Vec::new(),
            voicemail: None,
        }
    }

    pub fn credentials(&self) -> Credentials {
        Credentials {
            username: self.config.auth_username().to_string(),
            password: self.config.password.clone(),
            realm: None,
        }
    }

    /// The target requests go to now.
    pub fn current_target(&self) -> Option<Resolved> {
        self.targets.get(self.target_idx).copied()
    }

    /// Where the registrar saw us (Via received/rport over UDP), when that
    /// differs from our local address: the address behind a NAT.
    pub fn public_addr(&self) -> Option<(IpAddr, u16)> {
        self.public_addr
    }

    /// True when `ip` is one of this account's servers (registrar or
    /// outbound proxy, as resolved): requests from there may carry
    /// auto-answer headers we honour.
    pub fn is_our_server(&self, ip: std::net::IpAddr) -> bool {
        self.targets.iter().any(|t| t.peer.addr.ip() == ip)
    }

    pub fn current_peer(&self) -> Option<Peer> {
        self.current_target().map(|t| t.peer)
    }

    pub fn is_registered(&self) -> bool {
        matches!(
            self.reg.as_ref().map(Registration::state),
            Some(RegState::Registered { .. })
        )
    }

    /// Nothing in flight (for shutdown).
    pub fn is_idle(&self) -> bool {
        match self.reg.as_ref().map(Registration::state) {
            None => true,
            Some(RegState::Unregistered) | Some(RegState::Failed(_)) => true,
            Some(_) => false,
        }
    }

    fn lookup_request(&self) -> AccountOutput {
        let hop = self.config.first_hop();
        AccountOutput::Resolve {
            host: hop.host,
            port: hop.port,
            transport: self.config.transport,
        }
    }

    /// Start registering. Returns a resolve request when the first hop is
    /// not known yet.
    pub fn register(&mut self, now: Instant) -> Option<(String, Option<u16>, TransportKind)> {
        self.wanted = true;
        if self.reg.is_some() && !self.targets.is_empty() {
            if let Some(reg) = self.reg.as_mut() {
                reg.start(now);
            }
            self.changed();
            return None;
        }
        if matches!(self.lookup, Lookup::Pending) {
            return None;
        }
        self.lookup = Lookup::Pending;
        self.changed();
        let hop = self.config.first_hop();
        Some((hop.host, hop.port, self.config.transport))
    }

    pub fn unregister(&mut self, now: Instant) {
        self.wanted = false;
        if let Some(reg) = self.reg.as_mut() {
            reg.stop(now);
        }
        if let Lookup::Failed { .. } = self.lookup {
            self.lookup = Lookup::Idle;
        }
        self.changed();
    }

    /// The resolver answered.
    pub fn resolved(
        &mut self,
        now: Instant,
        result: Result<Vec<Resolved>, TransportError>,
        local: LocalAddrs,
        user_agent: &str,
        seed: u64,
    ) {
        match result {
            Ok(targets) if !targets.is_empty() => {
                self.targets = targets;
                self.target_idx = 0;
                self.lookup = Lookup::Idle;
                let contact = self.contact_uri(local, None);
                match self.reg.as_mut() {
                    Some(reg) => reg.set_contact(now, contact),
                    None => {
                        self.reg = Some(Registration::new(
                            self.reg_config(contact, user_agent),
                            seed,
                        ));
                    }
                }
                if self.wanted
                    && let Some(reg) = self.reg.as_mut()
                {
                    reg.start(now);
                }
            }
            Ok(_) => self.lookup_failed(now, TransportError::Dns("no address records".into())),
            Err(e) => self.lookup_failed(now, e),
        }
        self.changed();
    }

    fn lookup_failed(&mut self, now: Instant, error: TransportError) {
        let attempts = match &self.lookup {
            Lookup::Failed { attempts, .. } => attempts + 1,
            _ => 1,
        };
        // 5 s, 10 s, 20 s ... capped at 120 s.
        let delay = Duration::from_secs((5u64 << attempts.min(5).saturating_sub(1)).min(120));
        self.lookup = Lookup::Failed {
            error,
            retry_at: now + delay,
            attempts,
        };
    }

    fn reg_config(&self, contact: Uri, user_agent: &str) -> RegistrationConfig {
        let domain = self.config.domain();
        let domain_host = host_of(&domain.host);
        let mut aor = Uri::sip(Some(&self.config.username), domain_host.clone());
        aor.port = domain.port;
        let mut registrar = Uri::sip(None, domain_host);
        registrar.port = domain.port;
        RegistrationConfig {
            aor,
            registrar,
            contact,
            expires: self.config.expires,
            credentials: self.credentials(),
            display_name: self.config.display_name.clone(),
            user_agent: user_agent.to_string(),
            call_id: format!("{:016x}@softline", self.seed),
            instance_id: None,
        }
    }

    /// Our Contact for registration: the local address facing the
    /// registrar, or the public one the registrar reported.
    fn contact_uri(&self, local: LocalAddrs, public: Option<(IpAddr, u16)>) -> Uri {
        let transport = self.config.transport;
        let (ip, port) = match public {
            Some(p) => p,
            None => (
                self.current_target()
                    .map(|t| t.local_ip)
                    .unwrap_or(IpAddr::from([127, 0, 0, 1])),
                local.port(transport),
            ),
        };
        let mut uri = Uri::sip(Some(&self.config.username), ip_host(ip));
        uri.port = Some(port);
        match transport {
            TransportKind::Udp => {}
            TransportKind::Tcp => uri.set_param("transport", Some("tcp")),
            TransportKind::Tls => uri.set_param("transport", Some("tls")),
        }
        uri
    }

    pub fn handle_response(&mut self, now: Instant, response: &Response) {
        // Learn the NAT address from Via received/rport of a 2xx over UDP,
        // and move the Contact there (once per new address).
        if response.code / 100 == 2
            && self.config.transport == TransportKind::Udp
            && let Ok(via) = response.headers.top_via()
        {
            let ip = via.received().and_then(|r| r.parse::<IpAddr>().ok());
            let port = via.rport().flatten();
            if let (Some(ip), Some(port)) = (ip, port) {
                let local = self.current_target().map(|t| t.local_ip);
                if Some(ip) != local && self.public_addr != Some((ip, port)) {
                    self.public_addr = Some((ip, port));
                    let contact = self.contact_uri(LocalAddrs::default(), Some((ip, port)));
                    if let Some(reg) = self.reg.as_mut() {
                        reg.handle_response(now, response);
                        reg.set_contact(now, contact);
                    }
                    self.changed();
                    return;
                }
            }
        }
        if let Some(reg) = self.reg.as_mut() {
            reg.handle_response(now, response);
        }
    }

    /// Timer F fired for a REGISTER: fail over to the next target.
    pub fn no_response(&mut self, now: Instant) {
        self.next_target();
        if let Some(reg) = self.reg.as_mut() {
            reg.handle_failure(now, RegFailure::NoResponse);
        }
    }

    pub fn transport_failure(&mut self, now: Instant, error: TransportError) {
        self.next_target();
        if let Some(reg) = self.reg.as_mut() {
            reg.handle_failure(now, RegFailure::Transport(error));
        }
    }

    /// The stream connection to the registrar broke while registered.
    pub fn connection_lost(&mut self, now: Instant, error: TransportError) {
        if self.is_registered()
            && let Some(reg) = self.reg.as_mut()
        {
            reg.handle_failure(now, RegFailure::Transport(error));
        }
    }

    fn next_target(&mut self) {
        if !self.targets.is_empty() {
            self.target_idx = (self.target_idx + 1) % self.targets.len();
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Lookup::Failed { retry_at, .. } = &self.lookup
            && *retry_at <= now
            && self.wanted
        {
            let out = self.lookup_request();
            self.lookup = Lookup::Pending;
            self.outputs.push(out);
        }
        if let Some(reg) = self.reg.as_mut()
            && reg.poll_timeout().is_some_and(|t| t <= now)
        {
            reg.handle_timeout(now);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let lookup = match &self.lookup {
            Lookup::Failed { retry_at, .. } if self.wanted => Some(*retry_at),
            _ => None,
        };
        let reg = self.reg.as_ref().and_then(Registration::poll_timeout);
        match (lookup, reg) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Next output: pending resolves, then the registration's requests and
    /// state changes.
    pub fn poll_output(&mut self) -> Option<AccountOutput> {
        if !self.outputs.is_empty() {
            return Some(self.outputs.remove(0));
        }
        let peer = self.current_peer();
        let reg = self.reg.as_mut()?;
        match reg.poll_output()? {
            RegOutput::Send(req) => match peer {
                Some(peer) => Some(AccountOutput::Send(peer, Box::new(req))),
                None => Some(AccountOutput::StatusChanged),
            },
            RegOutput::StateChanged(_) => Some(AccountOutput::StatusChanged),
        }
    }

    fn changed(&mut self) {
        self.outputs.push(AccountOutput::StatusChanged);
    }

    pub fn status(&self) -> AccountStatus {
        let (state, reason, cause, expires) =
            match (&self.lookup, self.reg.as_ref().map(Registration::state)) {
                (Lookup::Pending, _) => (
                    "registering",
                    "looking up the server".to_string(),
                    None,
                    None,
                ),
                (Lookup::Failed { error, .. }, _) => (
                    "failed",
                    format!(
                        "Cannot find the server {}: {error}",
                        self.config.first_hop()
                    ),
                    Some(transport_cause(error).to_string()),
                    None,
                ),
                (Lookup::Idle, None) => ("unregistered", "not registered".to_string(), None, None),
                (Lookup::Idle, Some(s)) => match s {
                    RegState::Unregistered => {
                        ("unregistered", "not registered".to_string(), None, None)
                    }
                    RegState::Registering => ("registering", "registering".to_string(), None, None),
                    RegState::Unregistering => (
                        "unregistering",
                        "removing the registration".to_string(),
                        None,
                        None,
                    ),
                    RegState::Registered { expires } => {
                        ("registered", String::new(), None, Some(*expires))
                    }
                    RegState::Failed(f) => (
                        "failed",
                        f.describe(),
                        Some(failure_cause(f).to_string()),
                        None,
                    ),
                },
            };
        let domain = self.config.domain();
        AccountStatus {
            id: self.config.id.clone(),
            aor: format!("sip:{}@{}", self.config.username, domain),
            state,
            reason,
            cause,
            expires,
            transport: self.config.transport,
            server: self.current_peer().map(|p| p.addr),
            voicemail: self.voicemail,
        }
    }
}

fn failure_cause(f: &RegFailure) -> &'static str {
    match f {
        RegFailure::Transport(e) => transport_cause(e),
        RegFailure::NoResponse => "timeout",
        RegFailure::CredentialsRejected { .. } => "credentials",
        RegFailure::Forbidden => "forbidden",
        RegFailure::NotFound => "not_found",
        RegFailure::IntervalTooBrief { .. } => "interval_too_brief",
        RegFailure::Status { .. } => "status",
    }
}

fn ip_host(ip: IpAddr) -> Host {
    match ip {
        IpAddr::V4(a) => Host::V4(a),
        IpAddr::V6(a) => Host::V6(a),
    }
}

/// A host string from the config as a URI host.
pub fn host_of(s: &str) -> Host {
    match s.parse::<IpAddr>() {
        Ok(ip) => ip_host(ip),
        Err(_) => Host::Name(s.to_string()),
    }
}
