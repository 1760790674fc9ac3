//! Message waiting indication: the `message-summary` event package
//! (RFC 3842) over SUBSCRIBE/NOTIFY (RFC 6665), sans-IO.
//!
//! While an account is registered (and its `mwi` setting is on) the phone
//! keeps one subscription to its own address of record at the account's
//! server: SUBSCRIBE with `Expires: 3600`, digest retry, refreshed a minute
//! before it runs out, resubscribed after a backoff when the server ends
//! it, given up on 404/489 (and the other "never" answers), removed with
//! `Expires: 0` when the account unregisters. NOTIFYs in that dialog, and
//! unsolicited out-of-dialog NOTIFYs from the account's server (Asterisk
//! sends those), update the account's voicemail counts.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::sip::auth::Authenticator;
use crate::sip::dialog::{self, Dialog, Role};
use crate::sip::headers::TypedHeaders;
use crate::sip::message::{Headers, Method, Request, Response, reason_phrase};
use crate::sip::transport::Peer;
use crate::sip::txn::TxnId;
use crate::sip::uri::Uri;

use super::call;
use super::messaging::media_type;
use super::types::Voicemail;
use super::{Owner, Phone};

/// The event package and its body type.
pub const EVENT: &str = "message-summary";
pub const CONTENT_TYPE: &str = "application/simple-message-summary";
/// What we ask for.
pub const EXPIRES: u32 = 3600;
/// First resubscribe delay after a failure or a termination; doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(1800);

/// Parse a `application/simple-message-summary` body (RFC 3842 §5.2):
/// `Messages-Waiting: yes|no` (required), and optionally
/// `Voice-Message: new/old (urgent_new/urgent_old)`. Other message classes,
/// `Message-Account` and extension lines are ignored; the optional message
/// headers after the first empty line are not read. Never panics.
pub fn parse_message_summary(body: &[u8]) -> Result<Voicemail, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    let mut waiting = None;
    let mut vm = Voicemail::default();
    let mut seen_content = false;
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if seen_content {
                break;
            }
            continue;
        }
        seen_content = true;
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("not a `name: value` line: {}", clip(line)));
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        match name.as_str() {
            "messages-waiting" => {
                waiting = Some(match value.to_ascii_lowercase().as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => {
                        return Err(format!(
                            "Messages-Waiting must be yes or no, not {}",
                            clip(value)
                        ));
                    }
                })
            }
            "voice-message" => {
                let (new, old, urgent) = parse_counts(value)?;
                vm.new = new;
                vm.old = old;
                if let Some((un, uo)) = urgent {
                    vm.urgent_new = un;
                    vm.urgent_old = uo;
                }
            }
            _ => {}
        }
    }
    vm.waiting = waiting.ok_or("no Messages-Waiting line")?;
    Ok(vm)
}

/// New and old counts.
type Pair = (u32, u32);

/// `2/8 (0/2)` → (2, 8, Some((0, 2))); the urgent part is optional.
fn parse_counts(value: &str) -> Result<(u32, u32, Option<Pair>), String> {
    let bad = || format!("Voice-Message counts unreadable: {}", clip(value));
    let (main, urgent) = match value.split_once('(') {
        Some((m, rest)) => {
            let inner = rest.trim().strip_suffix(')').ok_or_else(bad)?;
            (m, Some(inner))
        }
        None => (value, None),
    };
    let pair = |s: &str| -> Result<Pair, String> {
        let (a, b) = s.split_once('/').ok_or_else(bad)?;
        let a = a.trim().parse::<u32>().map_err(|_| bad())?;
        let b = b.trim().parse::<u32>().map_err(|_| bad())?;
        Ok((a, b))
    };
    let (new, old) = pair(main)?;
    let urgent = match urgent {
        Some(u) => Some(pair(u)?),
        None => None,
    };
    Ok((new, old, urgent))
}

/// At most 60 characters of untrusted text, without control characters.
fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(60).collect()
}

/// When to refresh a subscription the server granted for `granted` s: a
/// minute before it runs out, or half-way for short ones.
pub fn refresh_delay(granted: u32) -> Duration {
    if granted >= 120 {
        Duration::from_secs(u64::from(granted) - 60)
    } else {
        Duration::from_millis(u64::from(granted.max(2)) * 500)
    }
}

/// The subscription-state header: state, `expires`, `retry-after`, `reason`.
struct SubState {
    state: String,
    expires: Option<u32>,
    retry_after: Option<u32>,
    reason: Option<String>,
}

fn parse_sub_state(value: &str) -> SubState {
    let mut parts = value.split(';');
    let state = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let mut s = SubState {
        state,
        expires: None,
        retry_after: None,
        reason: None,
    };
    for p in parts {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        let v = v.trim().trim_matches('"');
        match k.trim().to_ascii_lowercase().as_str() {
            "expires" => s.expires = v.parse().ok(),
            "retry-after" => s.retry_after = v.parse().ok(),
            "reason" => s.reason = Some(v.to_ascii_lowercase()),
            _ => {}
        }
    }
    s
}

/// One account's MWI state.
#[derive(Default)]
pub(super) struct Slot {
    sub: Option<Subscription>,
    /// Subscribe again at this instant (after a failure or termination).
    retry_at: Option<Instant>,
    failures: u32,
    /// The server said never (404, 489, ...): no more attempts.
    stopped: bool,
}

/// A subscription in progress or established.
struct Subscription {
    call_id: String,
    local_tag: String,
    /// CSeq of the last SUBSCRIBE sent before the dialog exists.
    cseq: u32,
    dialog: Option<Dialog>,
    /// The last SUBSCRIBE (to build the dialog from its 2xx).
    last: Option<Request>,
    peer: Peer,
    local_ip: IpAddr,
    auth: Option<Authenticator>,
    in_flight: Option<TxnId>,
    refresh_at: Option<Instant>,
}

impl Slot {
    fn backoff(&mut self, now: Instant, retry_after: Option<u32>) {
        self.sub = None;
        self.failures = self.failures.saturating_add(1);
        let delay = match retry_after {
            Some(s) => Duration::from_secs(u64::from(s)),
            None => {
                (FIRST_BACKOFF * 2u32.saturating_pow(self.failures.min(7) - 1)).min(MAX_BACKOFF)
            }
        };
        self.retry_at = Some(now + delay);
    }
}

impl Phone {
    /// Start or remove subscriptions as accounts register and unregister.
    /// Returns true when it sent something.
    pub(super) fn mwi_update(&mut self, now: Instant) -> bool {
        let mut progress = false;
        for i in 0..self.accounts.len() {
            let acc = &self.accounts[i];
            let want = acc.config.mwi && acc.is_registered() && !self.shutting_down;
            let target = acc.current_target();
            let slot = self.msg.mwi.entry(i).or_default();
            if want {
                if slot.sub.is_none()
                    && slot.retry_at.is_none()
                    && !slot.stopped
                    && let Some(t) = target
                {
                    let call_id = format!("{:016x}@softline", self.rng.next_u64());
                    let local_tag = self.rng.tag();
                    if let Some(slot) = self.msg.mwi.get_mut(&i) {
                        slot.sub = Some(Subscription {
                            call_id,
                            local_tag,
                            cseq: 0,
                            dialog: None,
                            last: None,
                            peer: t.peer,
                            local_ip: t.local_ip,
                            auth: None,
                            in_flight: None,
                            refresh_at: None,
                        });
                    }
                    self.send_subscribe(now, i, EXPIRES);
                    progress = true;
                }
            } else {
                slot.retry_at = None;
                slot.failures = 0;
                if slot.sub.as_ref().is_some_and(|s| s.dialog.is_some()) {
                    // Remove it at the server (RFC 6665 §4.1.2.3).
                    self.send_subscribe(now, i, 0);
                    progress = true;
                }
                if let Some(slot) = self.msg.mwi.get_mut(&i) {
                    slot.sub = None;
                }
            }
        }
        progress
    }

    /// Send a SUBSCRIBE for account `i`'s subscription: the initial one
    /// (or its authenticated retry) before the dialog exists, a refresh or
    /// removal (`expires` 0) inside it.
    fn send_subscribe(&mut self, now: Instant, i: usize, expires: u32) {
        let Some(acc) = self.accounts.get(i) else {
            return;
        };
        let aor = format!("sip:{}@{}", acc.config.username, acc.config.domain());
        let ua = self.user_agent.clone();
        let seed = self.rng.next_u64();
        let Some(sub) = self.msg.mwi.get(&i).and_then(|s| s.sub.as_ref()) else {
            return;
        };
        let (peer, ip, tag) = (sub.peer, sub.local_ip, sub.local_tag.clone());
        let contact = self.contact_value(Some(i), ip, peer.transport);
        let (via, _) = self.via_value(peer.transport, ip);
        let from = self.our_from(Some(i), ip, &tag);
        let Some(sub) = self.msg.mwi.get_mut(&i).and_then(|s| s.sub.as_mut()) else {
            return;
        };
        let (mut req, to_peer) = match sub.dialog.as_mut() {
            Some(d) => {
                let req = d.request(Method::Subscribe, &contact, None);
                let to = call::dialog_peer(d, Some(sub.peer)).unwrap_or(sub.peer);
                (req, to)
            }
            None => {
                let Ok(uri) = Uri::parse(&aor) else {
                    tracing::warn!(account = i, "MWI: cannot make a URI of {aor}");
                    return;
                };
                sub.cseq += 1;
                let mut headers = Headers::new();
                headers.push("Max-Forwards", "70");
                headers.push("From", from);
                headers.push("To", format!("<{aor}>"));
                headers.push("Call-ID", sub.call_id.clone());
                headers.push("CSeq", format!("{} SUBSCRIBE", sub.cseq));
                headers.push("Contact", contact);
                headers.push("Content-Length", "0");
                (
                    Request {
                        method: Method::Subscribe,
                        uri,
                        headers,
                        body: Vec::new(),
                    },
                    sub.peer,
                )
            }
        };
        req.headers.push_front("Via", via);
        req.headers.push("Event", EVENT);
        req.headers.push("Accept", CONTENT_TYPE);
        req.headers.push("Expires", expires.to_string());
        req.headers.push("User-Agent", ua);
        if let Some(auth) = sub.auth.as_mut().filter(|a| a.has_challenge()) {
            auth.authorize(&mut req, seed);
        }
        sub.last = Some(req.clone());
        sub.refresh_at = None;
        let t = self.txn.send_request(now, req, to_peer);
        if expires > 0 {
            sub.in_flight = Some(t);
        }
        self.owners.insert(t, Owner::Subscribe(i));
    }

    pub(super) fn on_subscribe_response(
        &mut self,
        now: Instant,
        txn: TxnId,
        i: usize,
        response: Response,
    ) {
        let code = response.code;
        if code < 200 {
            return;
        }
        let Some(slot) = self.msg.mwi.get_mut(&i) else {
            return;
        };
        // Answers to removals, or to a subscription given up since.
        let Some(sub) = slot.sub.as_mut().filter(|s| s.in_flight == Some(txn)) else {
            return;
        };
        sub.in_flight = None;
        match code {
            200..=299 => {
                if let Some(a) = sub.auth.as_mut() {
                    a.on_success();
                }
                if sub.dialog.is_none()
                    && let Some(last) = &sub.last
                {
                    match Dialog::uac(last, &response) {
                        Ok(d) => sub.dialog = Some(d),
                        Err(e) => tracing::info!("MWI: unusable 2xx to SUBSCRIBE: {e}"),
                    }
                }
                let granted = response.headers.expires().ok().flatten().unwrap_or(EXPIRES);
                slot.failures = 0;
                if granted == 0 {
                    slot.backoff(now, None);
                } else {
                    sub.refresh_at = Some(now + refresh_delay(granted));
                }
            }
            401 | 407 => {
                let creds = self.accounts.get(i).map(|a| a.credentials());
                let Some(creds) = creds else {
                    return;
                };
                let auth = sub.auth.get_or_insert_with(|| Authenticator::new(creds));
                match auth.on_challenge(&response) {
                    Ok(()) => self.send_subscribe(now, i, EXPIRES),
                    Err(e) => {
                        tracing::warn!(account = i, "MWI: SUBSCRIBE not authorised ({code}): {e}");
                        slot.backoff(now, None);
                    }
                }
            }
            404 | 403 | 405 | 489 | 501 | 603 => {
                tracing::warn!(
                    account = i,
                    "MWI: the server refused the voicemail subscription ({code} {}): not trying again",
                    response.reason
                );
                slot.sub = None;
                slot.stopped = true;
            }
            481 => {
                // The server lost the subscription: start a new one now.
                slot.sub = None;
            }
            _ => {
                let retry = response
                    .headers
                    .get("Retry-After")
                    .and_then(|v| v.split(';').next())
                    .and_then(|v| v.trim().parse().ok());
                tracing::info!(
                    account = i,
                    "MWI: SUBSCRIBE failed ({code} {})",
                    response.reason
                );
                slot.backoff(now, retry);
            }
        }
    }

    pub(super) fn on_subscribe_failure(&mut self, now: Instant, txn: TxnId, i: usize) {
        if let Some(slot) = self.msg.mwi.get_mut(&i)
            && slot.sub.as_ref().is_some_and(|s| s.in_flight == Some(txn))
        {
            tracing::info!(account = i, "MWI: no answer to SUBSCRIBE");
            slot.backoff(now, None);
        }
    }

    pub(super) fn mwi_timeout(&mut self, now: Instant) {
        let mut refresh = Vec::new();
        for (i, slot) in self.msg.mwi.iter_mut() {
            if slot.retry_at.is_some_and(|t| t <= now) {
                slot.retry_at = None;
            }
            if let Some(sub) = slot.sub.as_mut()
                && sub.in_flight.is_none()
                && sub.refresh_at.is_some_and(|t| t <= now)
            {
                sub.refresh_at = None;
                refresh.push(*i);
            }
        }
        for i in refresh {
            self.send_subscribe(now, i, EXPIRES);
        }
    }

    pub(super) fn mwi_poll_timeout(&self) -> Option<Instant> {
        self.msg
            .mwi
            .values()
            .flat_map(|s| {
                let refresh = s
                    .sub
                    .as_ref()
                    .filter(|sub| sub.in_flight.is_none())
                    .and_then(|sub| sub.refresh_at);
                [s.retry_at, refresh]
            })
            .flatten()
            .min()
    }

    /// A NOTIFY: `message-summary` in our subscription's dialog, or
    /// unsolicited from an account's server. `refer` NOTIFYs never come
    /// here (the core hands them to the transfer part first); other
    /// packages get 489 with the two we take in Allow-Events.
    pub(super) fn on_notify(&mut self, now: Instant, id: TxnId, request: Request, source: Peer) {
        let event = request.headers.get("Event").map(|e| {
            e.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        if event.as_deref() != Some(EVENT) {
            self.respond(
                now,
                id,
                &request,
                489,
                &[("Allow-Events", format!("{EVENT}, refer"))],
            );
            return;
        }
        let to_tag = request
            .headers
            .to_addr()
            .ok()
            .and_then(|a| a.tag().map(str::to_string));
        let call_id = request.headers.call_id().unwrap_or_default().to_string();
        let account = match to_tag {
            Some(tag) => {
                let found = self.msg.mwi.iter().find_map(|(i, s)| {
                    s.sub
                        .as_ref()
                        .filter(|sub| sub.call_id == call_id && sub.local_tag == tag)
                        .map(|_| *i)
                });
                match found {
                    Some(i) => i,
                    None => {
                        self.respond(now, id, &request, 481, &[]);
                        return;
                    }
                }
            }
            None => {
                // Unsolicited (RFC 3842 §3 leaves it to policy): honoured
                // only from an account's own server.
                let ip = source.addr.ip();
                let user = request.uri.user.as_deref();
                let ours: Vec<usize> = (0..self.accounts.len())
                    .filter(|&i| self.accounts[i].is_our_server(ip))
                    .collect();
                let pick = ours
                    .iter()
                    .copied()
                    .find(|&i| Some(self.accounts[i].config.username.as_str()) == user)
                    .or(ours.first().copied());
                match pick {
                    Some(i) => i,
                    None => {
                        tracing::info!(peer = %source.addr, "unsolicited message-summary NOTIFY from a stranger refused");
                        self.respond(now, id, &request, 481, &[]);
                        return;
                    }
                }
            }
        };
        let summary = if request.body.is_empty() {
            None
        } else {
            let ctype = media_type(&request.headers);
            if ctype.as_deref().is_some_and(|t| t != CONTENT_TYPE) {
                self.respond(
                    now,
                    id,
                    &request,
                    415,
                    &[("Accept", CONTENT_TYPE.to_string())],
                );
                return;
            }
            match parse_message_summary(&request.body) {
                Ok(v) => Some(v),
                Err(why) => {
                    tracing::info!(account, "bad message-summary body: {why}");
                    let mut resp = dialog::response_to(&request, 400, None);
                    resp.reason =
                        format!("{} (message-summary: {})", reason_phrase(400), clip(&why));
                    self.txn.send_response(now, id, resp);
                    return;
                }
            }
        };
        self.respond(now, id, &request, 200, &[]);
        if to_tag_present(&request) {
            self.notify_in_dialog(now, account, &request);
        }
        if let Some(v) = summary
            && let Some(acc) = self.accounts.get_mut(account)
        {
            tracing::info!(
                account = %acc.config.id,
                waiting = v.waiting,
                new = v.new,
                old = v.old,
                "voicemail summary"
            );
            acc.voicemail = Some(v);
            self.emit_account(account);
        }
    }

    /// Subscription-State and dialog of a NOTIFY in our subscription.
    fn notify_in_dialog(&mut self, now: Instant, i: usize, request: &Request) {
        let state = request
            .headers
            .get("Subscription-State")
            .map(parse_sub_state);
        let Some(slot) = self.msg.mwi.get_mut(&i) else {
            return;
        };
        let Some(sub) = slot.sub.as_mut() else {
            return;
        };
        // A NOTIFY may come before the 2xx: it creates the dialog then
        // (RFC 6665 §4.1.2.4).
        if sub.dialog.is_none()
            && let Some(last) = &sub.last
            && let (Ok(from), Ok(contacts), Ok(mut rr)) = (
                request.headers.from_addr(),
                request.headers.contacts(),
                request.headers.record_routes(),
            )
            && let Some(contact) = contacts.into_iter().next()
        {
            rr.reverse();
            sub.dialog = Some(Dialog {
                role: Role::Uac,
                call_id: sub.call_id.clone(),
                local_tag: sub.local_tag.clone(),
                remote_tag: from.tag().map(str::to_string),
                local_header: last.headers.get("From").unwrap_or_default().to_string(),
                remote_header: request.headers.get("From").unwrap_or_default().to_string(),
                local_seq: sub.cseq,
                remote_seq: request.headers.cseq().ok().map(|c| c.seq),
                remote_target: contact.uri,
                route_set: rr,
            });
        }
        let Some(state) = state else {
            return;
        };
        match state.state.as_str() {
            "terminated" => {
                let never = matches!(state.reason.as_deref(), Some("rejected" | "noresource"));
                if never {
                    tracing::warn!(
                        account = i,
                        "MWI: the server ended the subscription for good ({:?})",
                        state.reason
                    );
                    slot.sub = None;
                    slot.stopped = true;
                } else {
                    tracing::info!(
                        account = i,
                        "MWI: the server ended the subscription ({:?}); subscribing again later",
                        state.reason
                    );
                    slot.backoff(now, state.retry_after);
                }
            }
            _ => {
                if let Some(e) = state.expires
                    && sub.in_flight.is_none()
                {
                    sub.refresh_at = Some(now + refresh_delay(e.max(1)));
                }
            }
        }
    }
}

fn to_tag_present(request: &Request) -> bool {
    request
        .headers
        .to_addr()
        .map(|a| a.tag().is_some())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(waiting: bool, new: u32, old: u32, un: u32, uo: u32) -> Voicemail {
        Voicemail {
            waiting,
            new,
            old,
            urgent_new: un,
            urgent_old: uo,
        }
    }

    #[test]
    fn parses_the_rfc3842_example_and_asterisk_bodies() {
        let rfc = b"Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\nVoice-Message: 4/8 (1/2)\r\n";
        assert_eq!(parse_message_summary(rfc), Ok(vm(true, 4, 8, 1, 2)));
        let asterisk = b"Messages-Waiting: no\r\nMessage-Account: sip:*97@10.0.0.5\r\nVoice-Message: 0/3 (0/0)\r\n";
        assert_eq!(parse_message_summary(asterisk), Ok(vm(false, 0, 3, 0, 0)));
        // No urgent part, odd case and spacing, bare LF, other classes.
        let loose = b"messages-waiting:YES\nvoice-message:  2 / 8\nFax-Message: 1/1\n";
        assert_eq!(parse_message_summary(loose), Ok(vm(true, 2, 8, 0, 0)));
        // Only the mandatory line.
        assert_eq!(
            parse_message_summary(b"Messages-Waiting: yes\r\n"),
            Ok(vm(true, 0, 0, 0, 0))
        );
        // Message headers after the empty line are not read.
        let with_headers =
            b"Messages-Waiting: yes\r\nVoice-Message: 1/0\r\n\r\nTo: <sip:a@b>\r\nnot a header\r\n";
        assert_eq!(
            parse_message_summary(with_headers),
            Ok(vm(true, 1, 0, 0, 0))
        );
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"Voice-Message: 1/2\r\n",
            b"Messages-Waiting: maybe\r\n",
            b"Messages-Waiting: yes\r\nVoice-Message: 1\r\n",
            b"Messages-Waiting: yes\r\nVoice-Message: a/b\r\n",
            b"Messages-Waiting: yes\r\nVoice-Message: 1/2 (3/4\r\n",
            b"Messages-Waiting: yes\r\nVoice-Message: 99999999999/1\r\n",
            b"Messages-Waiting: yes\r\nVoice-Message: -1/1\r\n",
            b"Messages-Waiting: yes\r\ngarbage\r\n",
            b"\xff\xfe\x00",
            b"Messages-Waiting: yes\r\nVoice-Message: /\r\n",
            b"Messages-Waiting: yes\r\nVoice-Message: 1/2 ()\r\n",
        ] {
            assert!(
                parse_message_summary(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn refresh_comes_a_minute_early_or_half_way() {
        assert_eq!(refresh_delay(3600), Duration::from_secs(3540));
        assert_eq!(refresh_delay(120), Duration::from_secs(60));
        assert_eq!(refresh_delay(60), Duration::from_secs(30));
        assert_eq!(refresh_delay(0), Duration::from_secs(1));
    }

    #[test]
    fn subscription_state_parameters() {
        let s = parse_sub_state("terminated;reason=timeout;retry-after=90");
        assert_eq!(s.state, "terminated");
        assert_eq!(s.reason.as_deref(), Some("timeout"));
        assert_eq!(s.retry_after, Some(90));
        let s = parse_sub_state("Active ; expires=3599");
        assert_eq!((s.state.as_str(), s.expires), ("active", Some(3599)));
        let s = parse_sub_state(";;=;expires=x");
        assert_eq!((s.state.as_str(), s.expires), ("", None));
    }
}
