//! REGISTER client (RFC 3261 §10), sans-IO: it emits requests and state
//! changes, and takes responses, transaction failures and timer expiries
//! with the current time.
//!
//! Policy:
//! - one Call-ID and From tag for the life of a [`Registration`], CSeq + 1
//!   per request, a fresh Via branch per request (placeholder sent-by that
//!   the phone rewrites);
//! - 401/407 are answered once per challenge ([`Authenticator`]); a second
//!   non-stale challenge is `Failed(CredentialsRejected)`. Stored nonces are
//!   reused pre-emptively on refreshes (next `nc`);
//! - 2xx: the granted interval is the `expires` of our binding in the 2xx,
//!   else its Expires header, else what we asked for. The refresh is sent
//!   at half the granted interval (at least 1 s after the 2xx), so with any
//!   interval of 10 s or more it leaves at least 5 s before expiry;
//! - 423: the interval is raised to Min-Expires (kept for later refreshes)
//!   and the request retried once; a second 423 in the same attempt fails;
//! - server failures (5xx, 408, ...) retry after 30 s, 60 s, 120 s, 240 s,
//!   then every 300 s; transport failures (refused, connection closed, no
//!   answer) after 1 s, then every 2 s for the first half minute of an
//!   outage (a phone is back within 2 s of its registrar's restart), then
//!   4 s, 8 s ... capped at 60 s; each delay is cut by up to
//!   10 % jitter so a fleet of phones does not retry in step. A connection
//!   lost while registered is re-registered at once (servers close idle
//!   TCP/TLS connections);
//!   Rejected credentials, 403 and 404 are retried every 300 s only: a
//!   wrong password never loops and does not trip the server's lockout.
//!   `Retry-After` (e.g. on 503) replaces the delay (capped at one hour);
//! - a request with no final answer after 40 s is treated as timed out,
//!   in case the transaction layer never reports;
//! - one REGISTER in flight at a time (RFC 3261 §10.2): `stop`, `start`
//!   and `set_contact` during a request wait for its final answer (or its
//!   failure / the 40 s guard), then act. A stop during a first REGISTER
//!   sends `Expires: 0` only when a binding may exist.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::sip::auth::{AuthError, Authenticator, Credentials};
use crate::sip::dialog::{ALLOW, branch};
use crate::sip::headers::TypedHeaders;
use crate::sip::message::{Headers, Method, Request, Response};
use crate::sip::rng::splitmix64;
use crate::sip::serialize::quoted as quote;
use crate::sip::transport::{TlsCertProblem, TransportError};
use crate::sip::uri::{Host, Scheme, Uri};

/// First retry delay after a failure.
const RETRY_FIRST: Duration = Duration::from_secs(30);
/// Retry delays after transport failures: 1 s, then [`TRANSPORT_PROBE`]
/// until [`TRANSPORT_PROBES`] failures in a row, then doubling up to
/// [`TRANSPORT_RETRY_MAX`].
const TRANSPORT_PROBE: Duration = Duration::from_secs(2);
const TRANSPORT_PROBES: u32 = 15;
const TRANSPORT_RETRY_MAX: Duration = Duration::from_secs(60);
/// Longest retry delay (and the delay after rejected credentials).
const RETRY_MAX: Duration = Duration::from_secs(300);
/// Longest `Retry-After` honoured.
const RETRY_AFTER_MAX: u64 = 3600;
/// A request without a final answer after this long counts as timed out
/// (Timer F is 32 s).
const NO_ANSWER_GUARD: Duration = Duration::from_secs(40);

/// What the registration is for.
#[derive(Debug, Clone)]
pub struct RegistrationConfig {
    /// Address of record: To and From.
    pub aor: Uri,
    /// Request-URI (the registrar's domain).
    pub registrar: Uri,
    /// Where we are reached.
    pub contact: Uri,
    /// Requested interval in seconds.
    pub expires: u32,
    pub credentials: Credentials,
    pub display_name: Option<String>,
    pub user_agent: String,
    pub call_id: String,
    /// RFC 5626 instance id (`urn:uuid:...` or a bare UUID) for
    /// `+sip.instance`.
    pub instance_id: Option<String>,
}

/// Where the registration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegState {
    Unregistered,
    /// First REGISTER (or a retry after a failure) in flight. Refreshes keep
    /// the state `Registered`.
    Registering,
    /// Bound for `expires` seconds (as granted by the registrar).
    Registered {
        expires: u32,
    },
    /// `Expires: 0` in flight.
    Unregistering,
    /// Failed; a retry is scheduled ([`Registration::poll_timeout`]).
    Failed(RegFailure),
}

/// Why registering failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegFailure {
    Transport(TransportError),
    NoResponse,
    CredentialsRejected { code: u16 },
    Forbidden,
    NotFound,
    IntervalTooBrief { min: u32 },
    Status { code: u16, reason: String },
}

impl RegFailure {
    /// The failure in words an agent or an admin can act on.
    pub fn describe(&self) -> String {
        match self {
            RegFailure::Transport(TransportError::TlsCertificate(p)) => {
                let what = match p {
                    TlsCertProblem::Expired => "certificate expired".to_string(),
                    TlsCertProblem::NotYetValid => "certificate not valid yet".to_string(),
                    TlsCertProblem::WrongHost => {
                        "certificate does not match the server name".to_string()
                    }
                    TlsCertProblem::UntrustedIssuer => {
                        "certificate is self-signed or from an untrusted CA".to_string()
                    }
                    TlsCertProblem::PinMismatch => {
                        "certificate does not match the pinned fingerprint".to_string()
                    }
                    TlsCertProblem::Revoked => "certificate revoked".to_string(),
                    TlsCertProblem::Other(why) => format!("certificate not accepted: {why}"),
                };
                format!("TLS: {what}")
            }
            RegFailure::Transport(e @ TransportError::Dns(_)) => {
                format!("cannot find the server: {e}")
            }
            RegFailure::Transport(e) => format!("cannot reach the server: {e}"),
            RegFailure::NoResponse => "server did not answer (timeout)".to_string(),
            RegFailure::CredentialsRejected { code } => format!(
                "wrong password or username: the server rejected the credentials ({code})"
            ),
            RegFailure::Forbidden => {
                "the server refused the registration (403 Forbidden): account blocked or not allowed"
                    .to_string()
            }
            RegFailure::NotFound => {
                "the server does not know this account (404 Not Found): check username and domain"
                    .to_string()
            }
            RegFailure::IntervalTooBrief { min } => format!(
                "the server wants a registration interval of at least {min} s (423 Interval Too Brief)"
            ),
            RegFailure::Status { code, reason } => format!("the server answered {code} {reason}"),
        }
    }

    /// Failures that retrying soon cannot fix.
    fn is_permanent(&self) -> bool {
        matches!(
            self,
            RegFailure::CredentialsRejected { .. } | RegFailure::Forbidden | RegFailure::NotFound
        )
    }

    /// The server could not be reached (not: it answered with an error, or
    /// its certificate or name is wrong, which retrying soon will not fix).
    fn is_transport(&self) -> bool {
        match self {
            RegFailure::NoResponse => true,
            RegFailure::Transport(e) => !matches!(
                e,
                TransportError::TlsCertificate(_) | TransportError::Dns(_)
            ),
            _ => false,
        }
    }
}

impl std::fmt::Display for RegFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What the registration asks of its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegOutput {
    /// Send through a new non-INVITE client transaction (after rewriting the
    /// Via sent-by and transport).
    Send(Request),
    StateChanged(RegState),
}

/// What to do once the request in flight has its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queued {
    /// Register (again): after an unregister, or with a new Contact.
    Register,
    Unregister,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKind {
    Refresh,
    Retry,
    /// The request in flight got no final answer.
    Guard,
}

/// The request in flight.
#[derive(Debug, Clone)]
struct Pending {
    cseq: u32,
    unregister: bool,
    /// 423 already answered in this attempt.
    raised_interval: bool,
    /// A binding to remove (`expires=0`) in the same request.
    old_contact: Option<Uri>,
}

/// One REGISTER client. See the module documentation for the policy.
#[derive(Debug)]
pub struct Registration {
    config: RegistrationConfig,
    auth: Authenticator,
    rng: u64,
    from_tag: String,
    cseq: u32,
    /// Interval we ask for (raised by 423).
    expires: u32,
    state: RegState,
    outputs: VecDeque<RegOutput>,
    pending: Option<Pending>,
    queued: Option<Queued>,
    timer: Option<(Instant, TimerKind)>,
    /// Failures in a row, for the backoff.
    failures: u32,
    /// The registrar may hold a binding of ours.
    maybe_bound: bool,
    /// An older Contact that may still be bound (after `set_contact`).
    stale_contact: Option<Uri>,
}

impl Registration {
    pub fn new(config: RegistrationConfig, seed: u64) -> Self {
        let mut rng = seed;
        let from_tag = format!("{:016x}", splitmix64(&mut rng));
        Registration {
            auth: Authenticator::new(config.credentials.clone()),
            expires: config.expires,
            config,
            rng,
            from_tag,
            cseq: 0,
            state: RegState::Unregistered,
            outputs: VecDeque::new(),
            pending: None,
            queued: None,
            timer: None,
            failures: 0,
            maybe_bound: false,
            stale_contact: None,
        }
    }

    /// Register (or refresh at once when registered). While a REGISTER is
    /// in flight it only cancels a pending stop; after an unregister in
    /// flight it registers again.
    pub fn start(&mut self, now: Instant) {
        match &self.pending {
            Some(p) if !p.unregister => {
                if self.queued == Some(Queued::Unregister) {
                    self.queued = None;
                    self.set_state(RegState::Registering);
                }
                return;
            }
            Some(_) => {
                self.queued = Some(Queued::Register);
                return;
            }
            None => {}
        }
        if matches!(self.state, RegState::Failed(_)) {
            self.auth.reset();
        }
        self.send(now, false, false);
        if !matches!(self.state, RegState::Registered { .. }) {
            self.set_state(RegState::Registering);
        }
    }

    /// Unregister: `Expires: 0` when a binding may exist, else straight to
    /// `Unregistered`. Cancels refresh and retry timers. With a REGISTER in
    /// flight the state becomes `Unregistering` at once and `Expires: 0`
    /// follows its answer.
    pub fn stop(&mut self, now: Instant) {
        match &self.pending {
            Some(p) if p.unregister => {
                self.queued = None;
                return;
            }
            Some(_) => {
                self.queued = Some(Queued::Unregister);
                self.set_state(RegState::Unregistering);
                return;
            }
            None => {}
        }
        self.queued = None;
        self.timer = None;
        if matches!(self.state, RegState::Registered { .. }) || self.maybe_bound {
            if matches!(self.state, RegState::Failed(_)) {
                self.auth.reset();
            }
            self.send(now, true, false);
            self.set_state(RegState::Unregistering);
        } else {
            self.set_state(RegState::Unregistered);
        }
    }

    /// A response from the network. Only final responses to our latest
    /// REGISTER (same Call-ID and CSeq) are looked at.
    pub fn handle_response(&mut self, now: Instant, response: &Response) {
        if response.code < 200 || !self.is_ours(response) {
            return;
        }
        let Some(pending) = self.pending.take() else {
            return;
        };
        self.timer = None;
        let code = response.code;
        if pending.unregister {
            if (code == 401 || code == 407) && self.auth.on_challenge(response).is_ok() {
                self.resend(now, pending);
                return;
            }
            if code / 100 == 2 {
                self.auth.on_success();
                self.maybe_bound = false;
                self.stale_contact = None;
            }
            self.failures = 0;
            self.unregistered(now);
            return;
        }
        if self.queued == Some(Queued::Unregister) {
            // Stopped while this REGISTER was in flight.
            self.queued = None;
            if code / 100 == 2 {
                self.auth.on_success();
                self.maybe_bound = true;
            }
            if self.maybe_bound {
                self.send(now, true, false);
            } else {
                self.set_state(RegState::Unregistered);
            }
            return;
        }
        if code / 100 != 2 && !self.maybe_bound {
            // Nothing of ours is bound, not even the Contact this carried.
            self.stale_contact = None;
        }
        match code {
            200..=299 => self.registered(now, response, &pending),
            401 | 407 => match self.auth.on_challenge(response) {
                Ok(()) => self.resend(now, pending),
                Err(AuthError::Rejected) => {
                    self.fail(now, RegFailure::CredentialsRejected { code }, None)
                }
                Err(e) => self.fail(
                    now,
                    RegFailure::Status {
                        code,
                        reason: format!("{} ({e})", response.reason),
                    },
                    None,
                ),
            },
            423 => {
                self.auth.on_success();
                let min = header_number(&response.headers, "Min-Expires");
                match min {
                    Some(min) if !pending.raised_interval && min > self.expires => {
                        self.expires = min;
                        let mut again = pending;
                        again.raised_interval = true;
                        self.resend(now, again);
                    }
                    _ => {
                        let min = min.unwrap_or(self.expires);
                        self.fail(now, RegFailure::IntervalTooBrief { min }, None)
                    }
                }
            }
            _ => {
                self.auth.on_success();
                let failure = match code {
                    403 => RegFailure::Forbidden,
                    404 => RegFailure::NotFound,
                    _ => RegFailure::Status {
                        code,
                        reason: response.reason.clone(),
                    },
                };
                let retry_after = header_number(&response.headers, "Retry-After")
                    .filter(|s| *s > 0)
                    .map(|s| Duration::from_secs(u64::from(s).min(RETRY_AFTER_MAX)));
                self.fail(now, failure, retry_after);
            }
        }
        // Contact changed while this REGISTER was in flight: register the
        // new one now (a re-sent request already carries it).
        if self.queued.take() == Some(Queued::Register)
            && self.pending.is_none()
            && matches!(self.state, RegState::Registered { .. })
        {
            self.send(now, false, false);
        }
    }

    /// The transaction of our REGISTER timed out or the transport failed
    /// (also: the connection to the registrar broke while registered).
    pub fn handle_failure(&mut self, now: Instant, failure: RegFailure) {
        match self.pending.take() {
            Some(p) if p.unregister => {
                self.timer = None;
                self.unregistered(now);
            }
            Some(_) if self.queued == Some(Queued::Unregister) => {
                self.queued = None;
                self.timer = None;
                if self.maybe_bound {
                    self.auth.reset();
                    self.send(now, true, false);
                } else {
                    self.set_state(RegState::Unregistered);
                }
            }
            Some(_) => {
                // A queued contact change is picked up by the retry.
                self.queued = None;
                self.fail(now, failure, None)
            }
            None if matches!(self.state, RegState::Registered { .. }) => {
                if failure.is_transport() {
                    // Reconnect and re-register now; failures from here on
                    // take the transport ladder.
                    self.timer = None;
                    self.send(now, false, false);
                    self.set_state(RegState::Registering);
                } else {
                    self.fail(now, failure, None)
                }
            }
            None => {}
        }
    }

    /// A timer from [`Registration::poll_timeout`] is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some((at, kind)) = self.timer else { return };
        if at > now {
            return;
        }
        self.timer = None;
        match kind {
            TimerKind::Refresh => self.send(now, false, false),
            TimerKind::Retry => {
                self.auth.reset();
                self.send(now, false, false);
                self.set_state(RegState::Registering);
            }
            TimerKind::Guard => self.handle_failure(now, RegFailure::NoResponse),
        }
    }

    /// Our reachable address changed (NAT address learnt, new local IP).
    /// When registered, a REGISTER for the new Contact goes out at once and
    /// removes the old binding (`expires=0`) in the same request; with a
    /// REGISTER in flight it follows that one's answer; otherwise the next
    /// attempt uses it.
    pub fn set_contact(&mut self, now: Instant, contact: Uri) {
        if contact == self.config.contact {
            return;
        }
        let old = std::mem::replace(&mut self.config.contact, contact);
        let registering = self.pending.as_ref().is_some_and(|p| !p.unregister);
        if self.maybe_bound || registering {
            self.stale_contact = Some(old);
        }
        match &self.pending {
            Some(p) if !p.unregister => {
                if self.queued.is_none() {
                    self.queued = Some(Queued::Register);
                }
            }
            Some(_) => {}
            None => {
                if matches!(self.state, RegState::Registered { .. }) {
                    self.timer = None;
                    self.send(now, false, false);
                }
            }
        }
    }

    pub fn poll_output(&mut self) -> Option<RegOutput> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer.map(|(at, _)| at)
    }

    pub fn state(&self) -> &RegState {
        &self.state
    }

    /// The un-REGISTER is over; register again if asked meanwhile.
    fn unregistered(&mut self, now: Instant) {
        self.set_state(RegState::Unregistered);
        if self.queued.take() == Some(Queued::Register) {
            self.start(now);
        }
    }

    fn is_ours(&self, response: &Response) -> bool {
        let h = &response.headers;
        let (Ok(call_id), Ok(cseq)) = (h.call_id(), h.cseq()) else {
            return false;
        };
        call_id == self.config.call_id
            && cseq.method == Method::Register
            && self.pending.as_ref().is_some_and(|p| p.cseq == cseq.seq)
    }

    fn registered(&mut self, now: Instant, response: &Response, pending: &Pending) {
        self.auth.on_success();
        let ours = response.headers.contacts().ok().and_then(|list| {
            list.into_iter()
                .find(|c| same_binding(&c.uri, &self.config.contact))
        });
        let granted = ours
            .and_then(|c| {
                c.params
                    .value("expires")
                    .and_then(|v| v.trim().parse().ok())
            })
            .or_else(|| response.headers.expires().ok().flatten())
            .unwrap_or(self.expires);
        if pending.old_contact.is_some() && pending.old_contact == self.stale_contact {
            self.stale_contact = None;
        }
        if granted == 0 {
            self.maybe_bound = false;
            self.fail(
                now,
                RegFailure::Status {
                    code: response.code,
                    reason: "OK, but the registrar kept no binding (expires=0)".to_string(),
                },
                None,
            );
            return;
        }
        self.failures = 0;
        self.maybe_bound = true;
        let refresh = Duration::from_secs(u64::from(granted / 2).max(1));
        self.timer = Some((now + refresh, TimerKind::Refresh));
        self.set_state(RegState::Registered { expires: granted });
    }

    fn fail(&mut self, now: Instant, failure: RegFailure, retry_after: Option<Duration>) {
        self.pending = None;
        self.failures = self.failures.saturating_add(1);
        let delay = match retry_after {
            Some(d) => d,
            None if failure.is_permanent() => self.jitter(RETRY_MAX),
            None if failure.is_transport() => {
                let base = match self.failures {
                    0 | 1 => TRANSPORT_PROBE / 2,
                    n if n <= TRANSPORT_PROBES => TRANSPORT_PROBE,
                    n => (TRANSPORT_PROBE * (1u32 << (n - TRANSPORT_PROBES).min(6)))
                        .min(TRANSPORT_RETRY_MAX),
                };
                self.jitter(base)
            }
            None => {
                let shift = self.failures.saturating_sub(1).min(4);
                self.jitter((RETRY_FIRST * (1u32 << shift)).min(RETRY_MAX))
            }
        };
        self.timer = Some((now + delay, TimerKind::Retry));
        self.set_state(RegState::Failed(failure));
    }

    /// `base` minus up to 10 %.
    fn jitter(&mut self, base: Duration) -> Duration {
        let tenth = base.as_millis() / 10;
        let cut = u128::from(splitmix64(&mut self.rng)) % (tenth + 1);
        base - Duration::from_millis(u64::try_from(cut).unwrap_or(0))
    }

    /// Send the request of `pending` again (after a challenge or a 423).
    fn resend(&mut self, now: Instant, pending: Pending) {
        self.send(now, pending.unregister, pending.raised_interval);
    }

    fn send(&mut self, now: Instant, unregister: bool, raised_interval: bool) {
        self.cseq = self.cseq.wrapping_add(1).max(1);
        let old_contact = self.stale_contact.clone();
        let mut req = self.build(unregister, old_contact.as_ref());
        if self.auth.has_challenge() {
            let seed = splitmix64(&mut self.rng);
            self.auth.authorize(&mut req, seed);
            // Content-Length last, after the credentials.
            req.headers.remove("Content-Length");
            req.headers.push("Content-Length", "0");
        }
        self.pending = Some(Pending {
            cseq: self.cseq,
            unregister,
            raised_interval,
            old_contact,
        });
        self.timer = Some((now + NO_ANSWER_GUARD, TimerKind::Guard));
        self.outputs.push_back(RegOutput::Send(req));
    }

    fn build(&mut self, unregister: bool, old_contact: Option<&Uri>) -> Request {
        let c = &self.config;
        let expires = if unregister { 0 } else { self.expires };
        let via_branch = branch(splitmix64(&mut self.rng));
        let aor = match &c.display_name {
            Some(name) => format!("{} <{}>", quote(name), c.aor),
            None => format!("<{}>", c.aor),
        };
        let mut contact = format!("<{}>", c.contact);
        if let Some(id) = &c.instance_id {
            contact.push_str(&format!(";+sip.instance=\"{}\"", instance_urn(id)));
        }
        let mut h = Headers::new();
        h.push(
            "Via",
            format!("SIP/2.0/UDP 0.0.0.0;branch={via_branch};rport"),
        );
        h.push("Max-Forwards", "70");
        h.push("From", format!("{aor};tag={}", self.from_tag));
        h.push("To", aor);
        h.push("Call-ID", c.call_id.clone());
        h.push("CSeq", format!("{} REGISTER", self.cseq));
        h.push("Contact", contact);
        if let Some(old) = old_contact {
            h.push("Contact", format!("<{old}>;expires=0"));
        }
        h.push("Expires", expires.to_string());
        h.push("Allow", ALLOW);
        h.push("User-Agent", c.user_agent.clone());
        h.push("Content-Length", "0");
        Request {
            method: Method::Register,
            uri: c.registrar.clone(),
            headers: h,
            body: Vec::new(),
        }
    }

    fn set_state(&mut self, state: RegState) {
        if self.state != state {
            self.state = state.clone();
            self.outputs.push_back(RegOutput::StateChanged(state));
        }
    }
}

/// Whether a Contact in a 2xx is our binding: same scheme, user, host,
/// port (defaults filled in) and transport (RFC 3261 §19.1.4, simplified;
/// registrars may add or reorder other parameters).
fn same_binding(a: &Uri, b: &Uri) -> bool {
    let port = |u: &Uri| {
        u.port
            .unwrap_or(if u.scheme == Scheme::Sips { 5061 } else { 5060 })
    };
    let transport = |u: &Uri| {
        u.param("transport")
            .flatten()
            .unwrap_or("udp")
            .to_ascii_lowercase()
    };
    let host_eq = match (&a.host, &b.host) {
        (Host::Name(x), Host::Name(y)) => x.eq_ignore_ascii_case(y),
        (x, y) => x == y,
    };
    a.scheme == b.scheme
        && a.user == b.user
        && host_eq
        && port(a) == port(b)
        && transport(a) == transport(b)
}

/// Leading decimal number of a header value (`Retry-After: 120 (x);d=5`).
fn header_number(h: &Headers, name: &str) -> Option<u32> {
    let v = h.get(name)?.trim();
    let end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    v.get(..end)?.parse().ok()
}

/// `<urn:uuid:...>` from an instance id given with or without brackets or
/// the `urn:uuid:` prefix.
fn instance_urn(id: &str) -> String {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    if id.to_ascii_lowercase().starts_with("urn:") {
        format!("<{id}>")
    } else {
        format!("<urn:uuid:{id}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::dialog::response_to;
    use crate::sip::headers::AuthParams;

    use crate::runtime::test_epoch as base;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn uri(s: &str) -> Uri {
        Uri::parse(s).expect("test URI parses")
    }

    fn config() -> RegistrationConfig {
        RegistrationConfig {
            aor: uri("sip:alice@example.com"),
            registrar: uri("sip:example.com"),
            contact: uri("sip:alice@192.0.2.10:5060"),
            expires: 600,
            credentials: Credentials {
                username: "alice".into(),
                password: "secret".into(),
                realm: None,
            },
            display_name: Some("Alice A".into()),
            user_agent: "Softline/test".into(),
            call_id: "reg-call-1@softline".into(),
            instance_id: Some("0f8fad5b-d9cb-469f-a165-70867728950e".into()),
        }
    }

    /// Drain outputs: requests sent and states announced.
    fn drain(reg: &mut Registration) -> (Vec<Request>, Vec<RegState>) {
        let (mut sent, mut states) = (Vec::new(), Vec::new());
        while let Some(out) = reg.poll_output() {
            match out {
                RegOutput::Send(r) => sent.push(r),
                RegOutput::StateChanged(s) => states.push(s),
            }
        }
        (sent, states)
    }

    /// The one request sent since the last drain.
    fn one(reg: &mut Registration) -> Request {
        let (mut sent, _) = drain(reg);
        assert_eq!(sent.len(), 1, "exactly one request: {sent:?}");
        sent.remove(0)
    }

    fn reply(req: &Request, code: u16) -> Response {
        response_to(req, code, Some("registrar-tag"))
    }

    fn ok(req: &Request, contact_expires: Option<u32>) -> Response {
        let mut r = reply(req, 200);
        let contact = uri("sip:alice@192.0.2.10:5060");
        match contact_expires {
            Some(e) => r
                .headers
                .push("Contact", format!("<{contact}>;expires={e}")),
            None => r.headers.push("Contact", format!("<{contact}>")),
        }
        r
    }

    fn unauthorized(req: &Request, nonce: &str) -> Response {
        let mut r = reply(req, 401);
        r.headers.push(
            "WWW-Authenticate",
            format!("Digest realm=\"example.com\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5"),
        );
        r
    }

    fn auth_of(req: &Request) -> Option<AuthParams> {
        req.headers
            .get("Authorization")
            .map(|v| crate::sip::parse::parse_auth_params(v).expect("parses"))
    }

    fn cseq(req: &Request) -> u32 {
        req.headers.cseq().unwrap().seq
    }

    fn branch_of(req: &Request) -> String {
        req.headers.top_via().unwrap().branch().unwrap().to_string()
    }

    /// Registered with a 200 granting `granted` s (no challenge).
    fn registered(t0: Instant, granted: u32) -> Registration {
        let mut reg = Registration::new(config(), 42);
        reg.start(t0);
        let req = one(&mut reg);
        reg.handle_response(t0, &ok(&req, Some(granted)));
        assert_eq!(reg.state(), &RegState::Registered { expires: granted });
        drain(&mut reg);
        reg
    }

    #[test]
    fn register_request_is_complete() {
        let t0 = base();
        let mut reg = Registration::new(config(), 1);
        assert_eq!(reg.state(), &RegState::Unregistered);
        reg.start(t0);
        let (sent, states) = drain(&mut reg);
        assert_eq!(states, vec![RegState::Registering]);
        assert_eq!(sent.len(), 1);
        let r = &sent[0];
        let h = &r.headers;
        assert_eq!(r.method, Method::Register);
        assert_eq!(r.uri.to_string(), "sip:example.com");
        let via = h.get("Via").unwrap();
        assert!(
            via.starts_with("SIP/2.0/UDP 0.0.0.0;branch=z9hG4bK"),
            "{via}"
        );
        assert!(via.ends_with(";rport"), "{via}");
        assert_eq!(h.get("Max-Forwards"), Some("70"));
        let from = h.from_addr().unwrap();
        assert_eq!(from.display.as_deref(), Some("Alice A"));
        assert_eq!(from.uri.to_string(), "sip:alice@example.com");
        assert!(from.tag().is_some_and(|t| !t.is_empty()));
        let to = h.to_addr().unwrap();
        assert_eq!(to.uri, from.uri);
        assert_eq!(to.tag(), None);
        assert_eq!(h.get("Call-ID"), Some("reg-call-1@softline"));
        assert_eq!(h.get("CSeq"), Some("1 REGISTER"));
        let contacts = h.contacts().unwrap();
        assert_eq!(contacts.len(), 1);
        assert_eq!(contacts[0].uri.to_string(), "sip:alice@192.0.2.10:5060");
        assert_eq!(
            contacts[0].params.value("+sip.instance"),
            Some("\"<urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e>\"")
        );
        assert_eq!(h.get("Expires"), Some("600"));
        assert_eq!(h.get("Allow"), Some(ALLOW));
        assert_eq!(h.get("User-Agent"), Some("Softline/test"));
        assert_eq!(h.get("Content-Length"), Some("0"));
        assert!(h.get("Authorization").is_none());
        assert!(r.body.is_empty());
        // It survives the wire.
        let bytes = crate::sip::message::Message::Request(r.clone()).to_bytes();
        match crate::sip::message::Message::parse(&bytes) {
            Ok(crate::sip::message::Message::Request(back)) => assert_eq!(&back, r),
            other => panic!("does not parse back: {other:?}"),
        }
        // No answer yet: the guard timer.
        assert_eq!(reg.poll_timeout(), Some(t0 + NO_ANSWER_GUARD));
    }

    #[test]
    fn challenge_is_answered_then_registered_and_refreshed_at_half() {
        let t0 = base();
        let mut reg = Registration::new(config(), 7);
        reg.start(t0);
        let first = one(&mut reg);
        reg.handle_response(t0, &unauthorized(&first, "n1"));
        let second = one(&mut reg);
        assert_eq!(reg.state(), &RegState::Registering);
        assert_eq!(cseq(&second), 2);
        assert_ne!(branch_of(&first), branch_of(&second));
        assert_eq!(second.headers.get("Call-ID"), first.headers.get("Call-ID"));
        assert_eq!(second.headers.get("From"), first.headers.get("From"));
        let a = auth_of(&second).expect("Authorization");
        assert_eq!(a.get("nonce"), Some("n1"));
        assert_eq!(a.get("uri"), Some("sip:example.com"));
        assert_eq!(a.get("nc"), Some("00000001"));

        let t1 = t0 + secs(1);
        reg.handle_response(t1, &ok(&second, Some(300)));
        let (sent, states) = drain(&mut reg);
        assert!(sent.is_empty());
        assert_eq!(states, vec![RegState::Registered { expires: 300 }]);
        assert_eq!(reg.poll_timeout(), Some(t1 + secs(150)));

        // Not due yet: nothing.
        reg.handle_timeout(t1 + secs(149));
        assert_eq!(reg.poll_output(), None);
        // Due: a refresh, state stays Registered, credentials reused.
        reg.handle_timeout(t1 + secs(150));
        let (sent, states) = drain(&mut reg);
        assert!(states.is_empty(), "refresh announces nothing: {states:?}");
        assert_eq!(sent.len(), 1);
        assert_eq!(cseq(&sent[0]), 3);
        let a = auth_of(&sent[0]).expect("pre-emptive Authorization");
        assert_eq!(a.get("nonce"), Some("n1"));
        assert_eq!(a.get("nc"), Some("00000002"));
        // Nonce expired on the server: one new challenge is answered.
        reg.handle_response(t1 + secs(150), &unauthorized(&sent[0], "n2"));
        let again = one(&mut reg);
        assert_eq!(auth_of(&again).unwrap().get("nonce"), Some("n2"));
        assert_eq!(reg.state(), &RegState::Registered { expires: 300 });
    }

    #[test]
    fn wrong_password_gets_exactly_one_authorized_retry() {
        let t0 = base();
        let mut reg = Registration::new(config(), 3);
        reg.start(t0);
        let first = one(&mut reg);
        reg.handle_response(t0, &unauthorized(&first, "n1"));
        let second = one(&mut reg);
        assert!(auth_of(&second).is_some());
        reg.handle_response(t0, &unauthorized(&second, "n2"));
        let (sent, states) = drain(&mut reg);
        assert!(sent.is_empty(), "no second authorized retry: {sent:?}");
        let failed = RegState::Failed(RegFailure::CredentialsRejected { code: 401 });
        assert_eq!(states, vec![failed.clone()]);
        assert_eq!(reg.state(), &failed);
        // Retry only after ~300 s (minus jitter), never at once.
        let at = reg.poll_timeout().unwrap();
        assert!(
            at >= t0 + secs(270) && at <= t0 + secs(300),
            "{:?}",
            at - t0
        );
        reg.handle_timeout(t0 + secs(200));
        assert_eq!(reg.poll_output(), None);
        reg.handle_timeout(at);
        let (sent, states) = drain(&mut reg);
        assert_eq!(states, vec![RegState::Registering]);
        assert_eq!(sent.len(), 1);
        // A fresh attempt: no stale credentials, so the next challenge is
        // answered once more.
        assert!(auth_of(&sent[0]).is_none());
        reg.handle_response(at, &unauthorized(&sent[0], "n3"));
        assert!(auth_of(&one(&mut reg)).is_some());
    }

    #[test]
    fn retransmitted_challenge_for_old_cseq_is_ignored() {
        let t0 = base();
        let mut reg = Registration::new(config(), 3);
        reg.start(t0);
        let first = one(&mut reg);
        let challenge = unauthorized(&first, "n1");
        reg.handle_response(t0, &challenge);
        let second = one(&mut reg);
        reg.handle_response(t0, &challenge);
        assert_eq!(reg.poll_output(), None);
        assert_eq!(reg.state(), &RegState::Registering);
        reg.handle_response(t0, &ok(&second, None));
        assert!(matches!(reg.state(), RegState::Registered { .. }));
    }

    #[test]
    fn ignores_provisional_and_foreign_responses() {
        let t0 = base();
        let mut reg = Registration::new(config(), 3);
        reg.start(t0);
        let req = one(&mut reg);
        reg.handle_response(t0, &reply(&req, 100));
        let mut other = ok(&req, None);
        other.headers.set("Call-ID", "someone-else");
        reg.handle_response(t0, &other);
        let mut other_method = ok(&req, None);
        other_method.headers.set("CSeq", "1 INVITE");
        reg.handle_response(t0, &other_method);
        assert_eq!(reg.state(), &RegState::Registering);
        assert_eq!(reg.poll_output(), None);
        reg.handle_response(t0, &ok(&req, None));
        assert_eq!(reg.state(), &RegState::Registered { expires: 600 });
    }

    #[test]
    fn granted_interval_sources() {
        let t0 = base();
        // Our binding's expires param wins over other bindings and Expires.
        let mut reg = Registration::new(config(), 5);
        reg.start(t0);
        let req = one(&mut reg);
        let mut r = reply(&req, 200);
        r.headers
            .push("Contact", "<sip:alice@198.51.100.7:5060>;expires=50");
        r.headers
            .push("Contact", "<sip:alice@192.0.2.10>;expires=200");
        r.headers.push("Expires", "900");
        reg.handle_response(t0, &r);
        assert_eq!(reg.state(), &RegState::Registered { expires: 200 });
        assert_eq!(reg.poll_timeout(), Some(t0 + secs(100)));
        // No binding of ours: the Expires header.
        let mut reg = Registration::new(config(), 5);
        reg.start(t0);
        let req = one(&mut reg);
        let mut r = reply(&req, 200);
        r.headers.push("Expires", "120");
        reg.handle_response(t0, &r);
        assert_eq!(reg.state(), &RegState::Registered { expires: 120 });
        assert_eq!(reg.poll_timeout(), Some(t0 + secs(60)));
        // Nothing: what we asked for.
        let mut reg = Registration::new(config(), 5);
        reg.start(t0);
        let req = one(&mut reg);
        reg.handle_response(t0, &reply(&req, 200));
        assert_eq!(reg.state(), &RegState::Registered { expires: 600 });
        assert_eq!(reg.poll_timeout(), Some(t0 + secs(300)));
        // A tiny grant never gives a zero-delay loop.
        let reg = registered(t0, 1);
        assert_eq!(reg.poll_timeout(), Some(t0 + secs(1)));
    }

    #[test]
    fn stop_sends_expires_zero_then_unregistered() {
        let t0 = base();
        let mut reg = registered(t0, 300);
        let t1 = t0 + secs(10);
        reg.stop(t1);
        let (sent, states) = drain(&mut reg);
        assert_eq!(states, vec![RegState::Unregistering]);
        assert_eq!(sent.len(), 1);
        let r = &sent[0];
        assert_eq!(r.headers.get("Expires"), Some("0"));
        assert_eq!(
            r.headers.contacts().unwrap()[0].uri.to_string(),
            "sip:alice@192.0.2.10:5060"
        );
        assert_eq!(cseq(r), 2);
        // A challenge to the un-REGISTER is answered once.
        reg.handle_response(t1, &unauthorized(r, "u1"));
        let authed = one(&mut reg);
        assert_eq!(authed.headers.get("Expires"), Some("0"));
        assert!(auth_of(&authed).is_some());
        reg.handle_response(t1, &ok(&authed, Some(0)));
        let (sent, states) = drain(&mut reg);
        assert!(sent.is_empty());
        assert_eq!(states, vec![RegState::Unregistered]);
        assert_eq!(reg.poll_timeout(), None);
    }

    #[test]
    fn stop_without_binding_sends_nothing() {
        let t0 = base();
        let mut reg = Registration::new(config(), 9);
        reg.stop(t0);
        assert_eq!(reg.poll_output(), None);
        reg.start(t0);
        let req = one(&mut reg);
        reg.handle_response(t0, &reply(&req, 403));
        drain(&mut reg);
        reg.stop(t0);
        let (sent, states) = drain(&mut reg);
        assert!(sent.is_empty());
        assert_eq!(states, vec![RegState::Unregistered]);
        assert_eq!(reg.poll_timeout(), None);
    }

    #[test]
    fn unregister_failure_ends_unregistered() {
        let t0 = base();
        let mut reg = registered(t0, 300);
        reg.stop(t0);
        drain(&mut reg);
        reg.handle_failure(t0, RegFailure::NoResponse);
        assert_eq!(reg.state(), &RegState::Unregistered);
        assert_eq!(reg.poll_timeout(), None);
        assert_eq!(drain(&mut reg).0.len(), 0);
    }

    #[test]
    fn interval_too_brief_raises_to_min_expires_once() {
        let t0 = base();
        let mut reg = Registration::new(config(), 11);
        reg.start(t0);
        let first = one(&mut reg);
        let mut r = reply(&first, 423);
        r.headers.push("Min-Expires", "1800");
        reg.handle_response(t0, &r);
        let second = one(&mut reg);
        assert_eq!(second.headers.get("Expires"), Some("1800"));
        assert_eq!(cseq(&second), 2);
        // Asked again (server wants even more): give up for now.
        let mut r = reply(&second, 423);
        r.headers.push("Min-Expires", "3600");
        reg.handle_response(t0, &r);
        assert_eq!(
            reg.state(),
            &RegState::Failed(RegFailure::IntervalTooBrief { min: 3600 })
        );
        assert!(drain(&mut reg).0.is_empty());
        // The raised interval is kept for the next attempt.
        let at = reg.poll_timeout().unwrap();
        reg.handle_timeout(at);
        let third = one(&mut reg);
        assert_eq!(third.headers.get("Expires"), Some("1800"));
        let mut r = reply(&third, 423);
        r.headers.push("Min-Expires", "3600");
        reg.handle_response(at, &r);
        let fourth = one(&mut reg);
        assert_eq!(fourth.headers.get("Expires"), Some("3600"));
        reg.handle_response(at, &ok(&fourth, None));
        assert_eq!(reg.state(), &RegState::Registered { expires: 3600 });
        reg.handle_timeout(at + secs(1800));
        assert_eq!(one(&mut reg).headers.get("Expires"), Some("3600"));
    }

    #[test]
    fn transport_failures_probe_every_2s_then_back_off_to_60_and_recover() {
        let t0 = base();
        let mut reg = Registration::new(config(), 13);
        reg.start(t0);
        drain(&mut reg);
        let mut now = t0;
        let ladder = [
            1u64, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 4, 8, 16, 32, 60, 60,
        ];
        for (i, expected) in ladder.into_iter().enumerate() {
            reg.handle_failure(now, RegFailure::NoResponse);
            let (sent, states) = drain(&mut reg);
            assert!(sent.is_empty());
            if i == 0 {
                assert_eq!(states, vec![RegState::Failed(RegFailure::NoResponse)]);
            }
            let at = reg.poll_timeout().unwrap();
            let delay = at - now;
            assert!(
                delay <= secs(expected) && delay >= secs(expected) * 9 / 10,
                "failure {i}: {delay:?}, expected ~{expected}s"
            );
            now = at;
            reg.handle_timeout(now);
            let (sent, states) = drain(&mut reg);
            assert_eq!(sent.len(), 1);
            assert_eq!(states, vec![RegState::Registering]);
        }
        // Success resets the ladder.
        let req = reg_last_request(&mut reg, now);
        reg.handle_response(now, &ok(&req, Some(600)));
        drain(&mut reg);
        let refused = RegFailure::Transport(TransportError::Refused);
        reg.handle_failure(now, refused.clone());
        let (sent, _) = drain(&mut reg);
        assert_eq!(sent.len(), 1, "a lost registrar is re-registered at once");
        reg.handle_failure(now, refused.clone());
        assert_eq!(reg.state(), &RegState::Failed(refused));
        let delay = reg.poll_timeout().unwrap() - now;
        assert!(delay <= secs(1) && delay >= secs(1) * 9 / 10, "{delay:?}");
    }

    #[test]
    fn server_errors_back_off_30_60_120_240_300() {
        let t0 = base();
        let mut reg = Registration::new(config(), 14);
        reg.start(t0);
        let mut req = one(&mut reg);
        let mut now = t0;
        for (i, expected) in [30u64, 60, 120, 240, 300, 300].into_iter().enumerate() {
            reg.handle_response(now, &reply(&req, 500));
            let at = reg.poll_timeout().unwrap();
            let delay = at - now;
            assert!(
                delay <= secs(expected) && delay >= secs(expected) * 9 / 10,
                "failure {i}: {delay:?}, expected ~{expected}s"
            );
            now = at;
            reg.handle_timeout(now);
            req = one(&mut reg);
        }
    }

    /// Restart to get hold of the request in flight (test helper).
    fn reg_last_request(reg: &mut Registration, now: Instant) -> Request {
        reg.handle_failure(now, RegFailure::NoResponse);
        let at = reg.poll_timeout().unwrap();
        reg.handle_timeout(at);
        one(reg)
    }

    #[test]
    fn error_statuses_map_to_failures_and_retry_after_is_honoured() {
        let t0 = base();
        let cases: [(u16, RegFailure); 3] = [
            (403, RegFailure::Forbidden),
            (404, RegFailure::NotFound),
            (
                500,
                RegFailure::Status {
                    code: 500,
                    reason: "Server Internal Error".into(),
                },
            ),
        ];
        for (code, failure) in cases {
            let mut reg = Registration::new(config(), 17);
            reg.start(t0);
            let req = one(&mut reg);
            reg.handle_response(t0, &reply(&req, code));
            assert_eq!(reg.state(), &RegState::Failed(failure.clone()));
            let delay = reg.poll_timeout().unwrap() - t0;
            let max = if failure.is_permanent() { 300 } else { 30 };
            assert!(
                delay <= secs(max) && delay >= secs(max) * 9 / 10,
                "{code}: {delay:?}"
            );
        }
        let mut reg = Registration::new(config(), 17);
        reg.start(t0);
        let req = one(&mut reg);
        let mut r = reply(&req, 503);
        r.headers.push("Retry-After", "17 (maintenance)");
        reg.handle_response(t0, &r);
        assert!(matches!(
            reg.state(),
            RegState::Failed(RegFailure::Status { code: 503, .. })
        ));
        assert_eq!(reg.poll_timeout(), Some(t0 + secs(17)));
    }

    #[test]
    fn no_answer_at_all_times_out() {
        let t0 = base();
        let mut reg = Registration::new(config(), 19);
        reg.start(t0);
        drain(&mut reg);
        reg.handle_timeout(t0 + NO_ANSWER_GUARD);
        assert_eq!(reg.state(), &RegState::Failed(RegFailure::NoResponse));
        assert!(reg.poll_timeout().unwrap() > t0 + NO_ANSWER_GUARD);
    }

    #[test]
    fn new_contact_re_registers_and_removes_old_binding() {
        let t0 = base();
        let mut reg = registered(t0, 300);
        // Same contact: nothing.
        reg.set_contact(t0, uri("sip:alice@192.0.2.10:5060"));
        assert_eq!(reg.poll_output(), None);
        reg.set_contact(t0, uri("sip:alice@203.0.113.5:40000"));
        let req = one(&mut reg);
        let contacts = req.headers.contacts().unwrap();
        assert_eq!(contacts.len(), 2);
        assert_eq!(contacts[0].uri.to_string(), "sip:alice@203.0.113.5:40000");
        assert_eq!(contacts[0].params.value("expires"), None);
        assert_eq!(contacts[1].uri.to_string(), "sip:alice@192.0.2.10:5060");
        assert_eq!(contacts[1].params.value("expires"), Some("0"));
        assert_eq!(req.headers.get("Expires"), Some("600"));
        let mut r = reply(&req, 200);
        r.headers
            .push("Contact", "<sip:alice@203.0.113.5:40000>;expires=240");
        reg.handle_response(t0, &r);
        assert_eq!(reg.state(), &RegState::Registered { expires: 240 });
        // The old binding is gone: the refresh carries only the new one.
        reg.handle_timeout(t0 + secs(120));
        let refresh = one(&mut reg);
        assert_eq!(refresh.headers.contacts().unwrap().len(), 1);
    }

    #[test]
    fn contact_change_while_unregistered_waits_for_start() {
        let t0 = base();
        let mut reg = Registration::new(config(), 23);
        reg.set_contact(t0, uri("sip:alice@203.0.113.5:40000"));
        assert_eq!(reg.poll_output(), None);
        reg.start(t0);
        let req = one(&mut reg);
        let contacts = req.headers.contacts().unwrap();
        assert_eq!(contacts.len(), 1, "no old binding to remove");
        assert_eq!(contacts[0].uri.to_string(), "sip:alice@203.0.113.5:40000");
    }

    #[test]
    fn proxy_challenge_is_answered_with_proxy_authorization() {
        let t0 = base();
        let mut reg = Registration::new(config(), 29);
        reg.start(t0);
        let req = one(&mut reg);
        let mut r = reply(&req, 407);
        r.headers.push(
            "Proxy-Authenticate",
            "Digest realm=\"proxy.example.com\", nonce=\"p1\", qop=\"auth\"",
        );
        reg.handle_response(t0, &r);
        let again = one(&mut reg);
        assert!(again.headers.get("Proxy-Authorization").is_some());
        assert!(again.headers.get("Authorization").is_none());
        let mut r = reply(&again, 407);
        r.headers.push(
            "Proxy-Authenticate",
            "Digest realm=\"proxy.example.com\", nonce=\"p2\", qop=\"auth\"",
        );
        reg.handle_response(t0, &r);
        assert_eq!(
            reg.state(),
            &RegState::Failed(RegFailure::CredentialsRejected { code: 407 })
        );
    }

    #[test]
    fn describe_speaks_plainly() {
        assert_eq!(
            RegFailure::CredentialsRejected { code: 401 }.describe(),
            "wrong password or username: the server rejected the credentials (401)"
        );
        assert_eq!(
            RegFailure::NoResponse.describe(),
            "server did not answer (timeout)"
        );
        assert_eq!(
            RegFailure::Transport(TransportError::TlsCertificate(TlsCertProblem::Expired))
                .describe(),
            "TLS: certificate expired"
        );
        assert!(
            RegFailure::Transport(TransportError::Dns("NXDOMAIN".into()))
                .describe()
                .contains("NXDOMAIN")
        );
        assert!(
            RegFailure::IntervalTooBrief { min: 3600 }
                .describe()
                .contains("3600")
        );
        assert_eq!(
            RegFailure::Status {
                code: 480,
                reason: "Temporarily Unavailable".into()
            }
            .to_string(),
            "the server answered 480 Temporarily Unavailable"
        );
    }

    #[test]
    fn binding_comparison_fills_default_port_and_transport() {
        let a = uri("sip:alice@192.0.2.10");
        assert!(same_binding(
            &a,
            &uri("sip:alice@192.0.2.10:5060;transport=UDP")
        ));
        assert!(!same_binding(&a, &uri("sip:alice@192.0.2.10:5062")));
        assert!(!same_binding(
            &a,
            &uri("sip:alice@192.0.2.10;transport=tcp")
        ));
        assert!(!same_binding(&a, &uri("sip:bob@192.0.2.10")));
        assert_eq!(instance_urn("urn:uuid:x"), "<urn:uuid:x>");
        assert_eq!(instance_urn("<urn:uuid:x>"), "<urn:uuid:x>");
        assert_eq!(instance_urn("x"), "<urn:uuid:x>");
    }

    #[test]
    fn stop_during_first_register_waits_for_its_answer() {
        let t0 = base();
        let mut reg = Registration::new(config(), 31);
        reg.start(t0);
        let first = one(&mut reg);
        reg.stop(t0);
        let (sent, states) = drain(&mut reg);
        assert!(sent.is_empty(), "one REGISTER at a time: {sent:?}");
        assert_eq!(states, vec![RegState::Unregistering]);
        // The REGISTER succeeded after all: the binding is removed.
        reg.handle_response(t0, &ok(&first, Some(600)));
        let (sent, states) = drain(&mut reg);
        assert!(states.is_empty(), "{states:?}");
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].headers.get("Expires"), Some("0"));
        assert_eq!(cseq(&sent[0]), 2);
        reg.handle_response(t0, &ok(&sent[0], None));
        assert_eq!(reg.state(), &RegState::Unregistered);
        assert_eq!(reg.poll_timeout(), None);

        // Stopped while the first REGISTER fails: nothing to remove.
        let mut reg = Registration::new(config(), 31);
        reg.start(t0);
        let first = one(&mut reg);
        reg.stop(t0);
        reg.handle_response(t0, &reply(&first, 404));
        let (sent, states) = drain(&mut reg);
        assert!(sent.is_empty());
        assert_eq!(
            states,
            vec![RegState::Unregistering, RegState::Unregistered]
        );
        assert_eq!(reg.poll_timeout(), None);
    }

    #[test]
    fn start_during_unregister_registers_after_it() {
        let t0 = base();
        let mut reg = registered(t0, 300);
        reg.stop(t0);
        let unreg = one(&mut reg);
        reg.start(t0);
        assert_eq!(reg.poll_output(), None);
        reg.handle_response(t0, &ok(&unreg, None));
        let (sent, states) = drain(&mut reg);
        assert_eq!(states, vec![RegState::Unregistered, RegState::Registering]);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].headers.get("Expires"), Some("600"));
        assert_eq!(cseq(&sent[0]), cseq(&unreg) + 1);
    }

    #[test]
    fn contact_change_during_register_follows_its_answer() {
        let t0 = base();
        let mut reg = Registration::new(config(), 37);
        reg.start(t0);
        let first = one(&mut reg);
        reg.set_contact(t0, uri("sip:alice@203.0.113.5:40000"));
        assert_eq!(reg.poll_output(), None);
        let mut r = reply(&first, 200);
        r.headers
            .push("Contact", "<sip:alice@192.0.2.10:5060>;expires=600");
        reg.handle_response(t0, &r);
        let (sent, states) = drain(&mut reg);
        assert_eq!(states, vec![RegState::Registered { expires: 600 }]);
        assert_eq!(sent.len(), 1);
        let contacts = sent[0].headers.contacts().unwrap();
        assert_eq!(contacts[0].uri.to_string(), "sip:alice@203.0.113.5:40000");
        assert_eq!(contacts[1].uri.to_string(), "sip:alice@192.0.2.10:5060");
        assert_eq!(contacts[1].params.value("expires"), Some("0"));

        // Changed during a challenged REGISTER: the authorized one carries
        // the new Contact, and nothing more is sent after its 200.
        let mut reg = Registration::new(config(), 37);
        reg.start(t0);
        let first = one(&mut reg);
        reg.set_contact(t0, uri("sip:alice@203.0.113.5:40000"));
        reg.handle_response(t0, &unauthorized(&first, "n"));
        let second = one(&mut reg);
        let contacts = second.headers.contacts().unwrap();
        assert_eq!(contacts.len(), 1, "never bound: nothing to remove");
        assert_eq!(contacts[0].uri.to_string(), "sip:alice@203.0.113.5:40000");
        let mut r = reply(&second, 200);
        r.headers
            .push("Contact", "<sip:alice@203.0.113.5:40000>;expires=100");
        reg.handle_response(t0, &r);
        let (sent, states) = drain(&mut reg);
        assert!(sent.is_empty(), "{sent:?}");
        assert_eq!(states, vec![RegState::Registered { expires: 100 }]);
    }

    #[test]
    fn lost_connection_while_registered_reregisters_then_backs_off() {
        let t0 = base();
        let mut reg = registered(t0, 300);
        let lost = RegFailure::Transport(TransportError::Closed);
        reg.handle_failure(t0, lost.clone());
        assert_eq!(reg.state(), &RegState::Registering);
        let _again = one(&mut reg);
        reg.handle_failure(t0, lost.clone());
        assert_eq!(reg.state(), &RegState::Failed(lost));
        let at = reg.poll_timeout().unwrap();
        assert!(at > t0 && at <= t0 + secs(1));
        // Stop while failed but maybe still bound: Expires: 0 is sent.
        reg.stop(t0);
        let req = one(&mut reg);
        assert_eq!(req.headers.get("Expires"), Some("0"));
        assert_eq!(reg.state(), &RegState::Unregistering);
    }
}
