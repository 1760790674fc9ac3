//! Digest authentication for SIP requests (RFC 3261 §22, RFC 7616,
//! RFC 8760): MD5, SHA-256 and SHA-512/256, their `-sess` variants,
//! `qop=auth` (and the legacy no-qop form), `nc` counting per nonce,
//! `stale=true`, `opaque`, `userhash`, 401 (`WWW-Authenticate` →
//! `Authorization`) and 407 (`Proxy-Authenticate` → `Proxy-Authorization`).
//!
//! [`Authenticator`] never loops on a wrong password: once a challenge has
//! been answered, a new challenge for the same realm that is not
//! `stale=true` is [`AuthError::Rejected`] until [`Authenticator::on_success`]
//! says a request went through.

use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

use crate::sip::headers::AuthParams;
use crate::sip::message::{Request, Response};
use crate::sip::rng::splitmix64;
use crate::sip::serialize::quoted as quote;

/// How many `stale=true` challenges in a row (without a success in between)
/// are answered before giving up: a server that calls every fresh nonce
/// stale would otherwise make us loop.
const MAX_STALE_RETRIES: u32 = 3;

/// What we authenticate with. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// When set, only challenges for this realm are answered (compared
    /// ignoring ASCII case); others give [`AuthError::WrongRealm`].
    pub realm: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("realm", &self.realm)
            .finish()
    }
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Digest` challenge with an algorithm and qop we implement.
    #[error("the server offers no supported digest challenge")]
    NoSupportedChallenge,
    /// The account is configured for another realm than the server asks for.
    #[error("the server asks for realm \"{realm}\", which is not the configured realm")]
    WrongRealm { realm: String },
    /// We answered a challenge and were challenged again (not stale): the
    /// username or password is wrong.
    #[error("the server rejected the username or password")]
    Rejected,
    /// The challenge could not be read (or the server keeps calling our
    /// nonces stale).
    #[error("unusable challenge: {0}")]
    Malformed(String),
}

/// Digest algorithms (RFC 7616 §3.3, RFC 8760 for SIP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl Algorithm {
    /// Algorithm from its token, ignoring ASCII case; `None` if unknown.
    pub fn from_token(token: &str) -> Option<Algorithm> {
        const ALL: [Algorithm; 6] = [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
            Algorithm::Sha512_256,
            Algorithm::Sha512_256Sess,
        ];
        ALL.into_iter()
            .find(|a| a.token().eq_ignore_ascii_case(token.trim()))
    }

    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    pub fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Preference when a server offers several challenges for one realm.
    fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 1,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 3,
        }
    }

    /// Lower-case hex digest of `data`.
    pub fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data.as_bytes())),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => {
                hex(&Sha512_256::digest(data.as_bytes()))
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Everything the `response` value depends on. `Debug` hides the password.
#[derive(Clone, Copy)]
pub struct DigestInput<'a> {
    pub algorithm: Algorithm,
    pub username: &'a str,
    pub password: &'a str,
    pub realm: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    pub nonce: &'a str,
    pub cnonce: &'a str,
    /// 8 hex digits, e.g. `00000001`.
    pub nc: &'a str,
    /// `Some("auth")`, or `None` for the RFC 2069 form.
    pub qop: Option<&'a str>,
}

impl fmt::Debug for DigestInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestInput")
            .field("algorithm", &self.algorithm)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("realm", &self.realm)
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("nonce", &self.nonce)
            .field("nc", &self.nc)
            .field("qop", &self.qop)
            .finish_non_exhaustive()
    }
}

/// The digest `response` (RFC 7616 §3.4.1; RFC 2617 §3.2.2 for no qop).
pub fn digest_response(i: &DigestInput<'_>) -> String {
    let h = |s: &str| i.algorithm.hash(s);
    let mut ha1 = h(&format!("{}:{}:{}", i.username, i.realm, i.password));
    if i.algorithm.is_sess() {
        ha1 = h(&format!("{ha1}:{}:{}", i.nonce, i.cnonce));
    }
    let ha2 = h(&format!("{}:{}", i.method, i.uri));
    match i.qop {
        Some(qop) => h(&format!(
            "{ha1}:{}:{}:{}:{qop}:{ha2}",
            i.nonce, i.nc, i.cnonce
        )),
        None => h(&format!("{ha1}:{}:{ha2}", i.nonce)),
    }
}

/// One challenge we are answering.
#[derive(Debug, Clone)]
struct Challenge {
    /// 407 / Proxy-Authorization rather than 401 / Authorization.
    proxy: bool,
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: Algorithm,
    /// `qop=auth` offered (else the RFC 2069 form).
    qop_auth: bool,
    userhash: bool,
    /// Requests sent with this nonce so far.
    nc: u32,
    /// Fixed client nonce of a `-sess` algorithm (HA1 depends on it).
    sess_cnonce: Option<String>,
    /// Received and not answered yet.
    fresh: bool,
    /// Answered since the last success: a new non-stale challenge for this
    /// realm means the credentials are wrong.
    answered: bool,
    stale_retries: u32,
}

/// A candidate read from one challenge header.
struct Offer {
    proxy: bool,
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: Algorithm,
    qop_auth: bool,
    userhash: bool,
    stale: bool,
}

/// Answers digest challenges for one request series (a registration, a
/// call). See the module documentation.
#[derive(Debug, Clone)]
pub struct Authenticator {
    credentials: Credentials,
    challenges: Vec<Challenge>,
}

impl Authenticator {
    pub fn new(credentials: Credentials) -> Self {
        Authenticator {
            credentials,
            challenges: Vec::new(),
        }
    }

    /// Take the challenges of a 401 (`WWW-Authenticate`) or 407
    /// (`Proxy-Authenticate`). Per realm the best supported challenge is
    /// kept: SHA-512/256 over SHA-256 over MD5 (the server's order breaks
    /// ties), `qop=auth` or no qop (`auth-int`-only challenges are skipped).
    /// A challenge for a realm we answered since the last success is
    /// `Rejected` unless `stale=true` (then the new nonce is used with `nc`
    /// restarting at 1). After `Rejected` the stored challenges are
    /// forgotten, so a later attempt starts clean.
    pub fn on_challenge(&mut self, response: &Response) -> Result<(), AuthError> {
        let mut offers: Vec<Offer> = Vec::new();
        let mut problem: Option<String> = None;
        for (header, proxy) in [("WWW-Authenticate", false), ("Proxy-Authenticate", true)] {
            for line in response.headers.get_all(header) {
                match crate::sip::parse::parse_auth_params(line) {
                    Ok(params) => match read_offer(&params, proxy) {
                        Ok(Some(offer)) => offers.push(offer),
                        Ok(None) => {}
                        Err(why) => problem = Some(why),
                    },
                    Err(e) => problem = Some(format!("{header}: {e}")),
                }
            }
        }
        if offers.is_empty() {
            return Err(match problem {
                Some(why) => AuthError::Malformed(why),
                None => AuthError::NoSupportedChallenge,
            });
        }
        if let Some(want) = &self.credentials.realm {
            let first_realm = offers.first().map(|o| o.realm.clone()).unwrap_or_default();
            offers.retain(|o| o.realm.eq_ignore_ascii_case(want));
            if offers.is_empty() {
                return Err(AuthError::WrongRealm { realm: first_realm });
            }
        }
        // Best offer per (proxy, realm), first seen wins ties.
        let mut best: Vec<Offer> = Vec::new();
        for offer in offers {
            match best
                .iter_mut()
                .find(|b| b.proxy == offer.proxy && b.realm == offer.realm)
            {
                Some(b) => {
                    if offer.algorithm.strength() > b.algorithm.strength() {
                        *b = offer;
                    }
                }
                None => best.push(offer),
            }
        }
        // Decide before changing anything.
        for offer in &best {
            if let Some(old) = self.find(offer.proxy, &offer.realm) {
                if old.answered && !offer.stale {
                    self.challenges.clear();
                    return Err(AuthError::Rejected);
                }
                if offer.stale && old.stale_retries >= MAX_STALE_RETRIES {
                    self.challenges.clear();
                    return Err(AuthError::Malformed(format!(
                        "the server called {} nonces in a row stale",
                        MAX_STALE_RETRIES + 1
                    )));
                }
            }
        }
        for offer in best {
            let pos = self
                .challenges
                .iter()
                .position(|c| c.proxy == offer.proxy && c.realm == offer.realm);
            let old = pos.map(|p| self.challenges.remove(p));
            let same_nonce = old.as_ref().is_some_and(|o| o.nonce == offer.nonce);
            let stale_retries = match (&old, offer.stale) {
                (Some(o), true) => o.stale_retries + 1,
                _ => 0,
            };
            let (nc, sess_cnonce) = match old {
                Some(o) if same_nonce && o.algorithm == offer.algorithm => (o.nc, o.sess_cnonce),
                _ => (0, None),
            };
            self.challenges.push(Challenge {
                proxy: offer.proxy,
                realm: offer.realm,
                nonce: offer.nonce,
                opaque: offer.opaque,
                algorithm: offer.algorithm,
                qop_auth: offer.qop_auth,
                userhash: offer.userhash,
                nc,
                sess_cnonce,
                fresh: true,
                answered: false,
                stale_retries,
            });
        }
        Ok(())
    }

    /// Add `Authorization` / `Proxy-Authorization` for every stored
    /// challenge (replacing any already present). `uri` is the Request-URI
    /// as text; the client nonce is derived from `seed` (fixed per nonce for
    /// `-sess` algorithms). Also used pre-emptively on later requests with
    /// the stored nonce and the next `nc`.
    pub fn authorize(&mut self, request: &mut Request, seed: u64) {
        request.headers.remove("Authorization");
        request.headers.remove("Proxy-Authorization");
        let uri = request.uri.to_string();
        let method = request.method.as_str().to_string();
        let creds = &self.credentials;
        for (i, c) in self.challenges.iter_mut().enumerate() {
            c.nc = c.nc.wrapping_add(1).max(1);
            let nc = format!("{:08x}", c.nc);
            let salt = seed ^ (i as u64).wrapping_mul(0xA076_1D64_78BD_642F);
            let cnonce = if c.algorithm.is_sess() {
                c.sess_cnonce
                    .get_or_insert_with(|| make_cnonce(salt))
                    .clone()
            } else {
                make_cnonce(salt)
            };
            let response = digest_response(&DigestInput {
                algorithm: c.algorithm,
                username: &creds.username,
                password: &creds.password,
                realm: &c.realm,
                method: &method,
                uri: &uri,
                nonce: &c.nonce,
                cnonce: &cnonce,
                nc: &nc,
                qop: c.qop_auth.then_some("auth"),
            });
            let username = if c.userhash {
                c.algorithm.hash(&format!("{}:{}", creds.username, c.realm))
            } else {
                creds.username.clone()
            };
            let mut v = format!(
                "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
                quote(&username),
                quote(&c.realm),
                quote(&c.nonce),
                quote(&uri),
                c.algorithm.token()
            );
            if c.qop_auth || c.algorithm.is_sess() {
                v.push_str(&format!(", cnonce=\"{cnonce}\""));
            }
            if let Some(opaque) = &c.opaque {
                v.push_str(&format!(", opaque={}", quote(opaque)));
            }
            if c.qop_auth {
                v.push_str(&format!(", qop=auth, nc={nc}"));
            }
            if c.userhash {
                v.push_str(", userhash=true");
            }
            let name = if c.proxy {
                "Proxy-Authorization"
            } else {
                "Authorization"
            };
            request.headers.push(name, v);
            if c.fresh {
                c.fresh = false;
                c.answered = true;
            }
        }
    }

    /// A final response other than 401/407 arrived: a later challenge
    /// (nonce expiry) is answered again. Stored nonces stay for
    /// pre-emptive use.
    pub fn on_success(&mut self) {
        for c in &mut self.challenges {
            c.answered = false;
            c.fresh = false;
            c.stale_retries = 0;
        }
    }

    /// Forget every stored challenge (a new attempt after a failure).
    pub fn reset(&mut self) {
        self.challenges.clear();
    }

    pub fn has_challenge(&self) -> bool {
        !self.challenges.is_empty()
    }

    fn find(&self, proxy: bool, realm: &str) -> Option<&Challenge> {
        self.challenges
            .iter()
            .find(|c| c.proxy == proxy && c.realm == realm)
    }
}

/// A usable offer from one challenge; `Ok(None)` when it is not Digest or
/// uses something we do not implement.
fn read_offer(p: &AuthParams, proxy: bool) -> Result<Option<Offer>, String> {
    if !p.scheme.eq_ignore_ascii_case("Digest") {
        return Ok(None);
    }
    let algorithm = match p.get("algorithm") {
        None => Algorithm::Md5,
        Some(a) => match Algorithm::from_token(a) {
            Some(a) => a,
            None => return Ok(None),
        },
    };
    let qop_auth = match p.get("qop") {
        None => false,
        Some(list) => {
            if list
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            {
                true
            } else {
                // auth-int only (or unknown): unsupported.
                return Ok(None);
            }
        }
    };
    let realm = p
        .get("realm")
        .ok_or_else(|| "digest challenge without realm".to_string())?;
    let nonce = p
        .get("nonce")
        .ok_or_else(|| "digest challenge without nonce".to_string())?;
    Ok(Some(Offer {
        proxy,
        realm: realm.to_string(),
        nonce: nonce.to_string(),
        opaque: p.get("opaque").map(str::to_string),
        algorithm,
        qop_auth,
        userhash: p
            .get("userhash")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        stale: p
            .get("stale")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
    }))
}

/// 32 hex digits of client nonce from a seed.
fn make_cnonce(seed: u64) -> String {
    let mut s = seed;
    format!("{:016x}{:016x}", splitmix64(&mut s), splitmix64(&mut s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{Headers, Method};
    use crate::sip::uri::{Host, Uri};

    fn creds() -> Credentials {
        Credentials {
            username: "alice".into(),
            password: "secret".into(),
            realm: None,
        }
    }

    fn challenge(code: u16, header: &str, values: &[&str]) -> Response {
        let mut headers = Headers::new();
        for v in values {
            headers.push(header, *v);
        }
        Response {
            code,
            reason: "Unauthorized".into(),
            headers,
            body: Vec::new(),
        }
    }

    fn www(values: &[&str]) -> Response {
        challenge(401, "WWW-Authenticate", values)
    }

    fn register() -> Request {
        let mut headers = Headers::new();
        headers.push("Call-ID", "c1");
        Request {
            method: Method::Register,
            uri: Uri::sip(None, Host::Name("example.com".into())),
            headers,
            body: Vec::new(),
        }
    }

    /// The auth-params of the one header `name` of `req`.
    fn sent(req: &Request, name: &str) -> AuthParams {
        let values: Vec<&str> = req.headers.get_all(name).collect();
        assert_eq!(values.len(), 1, "exactly one {name}: {values:?}");
        crate::sip::parse::parse_auth_params(values[0]).expect("our header parses")
    }

    /// Recompute the response of a sent header with the shared function
    /// (checked against the RFC vectors below).
    fn expected_response(p: &AuthParams, method: &str, password: &str) -> String {
        let algorithm = Algorithm::from_token(p.get("algorithm").unwrap()).unwrap();
        digest_response(&DigestInput {
            algorithm,
            username: p.get("username").unwrap(),
            password,
            realm: p.get("realm").unwrap(),
            method,
            uri: p.get("uri").unwrap(),
            nonce: p.get("nonce").unwrap(),
            cnonce: p.get("cnonce").unwrap_or(""),
            nc: p.get("nc").unwrap_or(""),
            qop: p.get("qop"),
        })
    }

    #[test]
    fn rfc2617_mufasa_vector() {
        let r = digest_response(&DigestInput {
            algorithm: Algorithm::Md5,
            username: "Mufasa",
            password: "Circle Of Life",
            realm: "testrealm@host.com",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            cnonce: "0a4f113b",
            nc: "00000001",
            qop: Some("auth"),
        });
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_md5_and_sha256_vectors() {
        let mut input = DigestInput {
            algorithm: Algorithm::Md5,
            username: "Mufasa",
            password: "Circle of Life",
            realm: "http-auth@example.org",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            nc: "00000001",
            qop: Some("auth"),
        };
        assert_eq!(digest_response(&input), "8ca523f5e9506fed4657c9700eebdbec");
        input.algorithm = Algorithm::Sha256;
        assert_eq!(
            digest_response(&input),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    /// Values computed independently (Python hashlib) for SIP-shaped input.
    #[test]
    fn sip_vectors_no_qop_sess_and_sha512_256() {
        let base = DigestInput {
            algorithm: Algorithm::Md5,
            username: "alice",
            password: "secret",
            realm: "example.com",
            method: "REGISTER",
            uri: "sip:example.com",
            nonce: "abc123",
            cnonce: "",
            nc: "",
            qop: None,
        };
        assert_eq!(digest_response(&base), "d1d211daa2e0d7f43de25792410f5057");
        let sess = DigestInput {
            algorithm: Algorithm::Sha256Sess,
            nonce: "n0nce",
            cnonce: "c0ffee",
            nc: "00000002",
            qop: Some("auth"),
            ..base
        };
        assert_eq!(
            digest_response(&sess),
            "51ff6e9880f2c2867c287013debb1cf7b1901fa08343bfdc65f4e7fcf3139e60"
        );
        let sha512 = DigestInput {
            algorithm: Algorithm::Sha512_256,
            method: "INVITE",
            uri: "sip:bob@example.com",
            nc: "00000001",
            ..sess
        };
        assert_eq!(
            digest_response(&sha512),
            "ea74f37a2bd0073aa959984243826b4c550b788b81acb314a4371e097fac874b"
        );
    }

    #[test]
    fn debug_redacts_password() {
        let text = format!("{:?}", creds());
        assert!(text.contains("alice"));
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn answers_register_challenge_with_all_fields() {
        let mut auth = Authenticator::new(creds());
        assert!(!auth.has_challenge());
        auth.on_challenge(&www(&[
            "Digest realm=\"example.com\", nonce=\"n1\", qop=\"auth\", algorithm=MD5, opaque=\"op\"",
        ]))
        .unwrap();
        assert!(auth.has_challenge());
        let mut req = register();
        auth.authorize(&mut req, 7);
        assert!(req.headers.get("Proxy-Authorization").is_none());
        let p = sent(&req, "Authorization");
        assert!(p.scheme.eq_ignore_ascii_case("Digest"));
        assert_eq!(p.get("username"), Some("alice"));
        assert_eq!(p.get("realm"), Some("example.com"));
        assert_eq!(p.get("nonce"), Some("n1"));
        assert_eq!(p.get("uri"), Some("sip:example.com"));
        assert_eq!(p.get("algorithm"), Some("MD5"));
        assert_eq!(p.get("qop"), Some("auth"));
        assert_eq!(p.get("nc"), Some("00000001"));
        assert_eq!(p.get("opaque"), Some("op"));
        let cnonce = p.get("cnonce").unwrap();
        assert_eq!(cnonce.len(), 32);
        assert_eq!(
            p.get("response").unwrap(),
            expected_response(&p, "REGISTER", "secret")
        );
        assert_ne!(
            p.get("response").unwrap(),
            expected_response(&p, "REGISTER", "wrong")
        );
    }

    #[test]
    fn no_qop_challenge_sends_rfc2069_form() {
        let mut auth = Authenticator::new(creds());
        auth.on_challenge(&www(&["Digest realm=\"example.com\", nonce=\"abc123\""]))
            .unwrap();
        let mut req = register();
        auth.authorize(&mut req, 1);
        let p = sent(&req, "Authorization");
        assert_eq!(p.get("qop"), None);
        assert_eq!(p.get("nc"), None);
        assert_eq!(p.get("cnonce"), None);
        assert_eq!(p.get("response"), Some("d1d211daa2e0d7f43de25792410f5057"));
    }

    #[test]
    fn nc_counts_per_nonce_and_cnonce_follows_seed() {
        let mut auth = Authenticator::new(creds());
        auth.on_challenge(&www(&[
            "Digest realm=\"example.com\", nonce=\"n1\", qop=\"auth\"",
        ]))
        .unwrap();
        let mut first = register();
        auth.authorize(&mut first, 1);
        let mut second = register();
        auth.authorize(&mut second, 2);
        let (p1, p2) = (
            sent(&first, "Authorization"),
            sent(&second, "Authorization"),
        );
        assert_eq!(p1.get("nc"), Some("00000001"));
        assert_eq!(p2.get("nc"), Some("00000002"));
        assert_ne!(p1.get("cnonce"), p2.get("cnonce"));
        assert_eq!(
            p2.get("response").unwrap(),
            expected_response(&p2, "REGISTER", "secret")
        );
        // Same seed, same cnonce: deterministic.
        let mut again = Authenticator::new(creds());
        again
            .on_challenge(&www(&[
                "Digest realm=\"example.com\", nonce=\"n1\", qop=\"auth\"",
            ]))
            .unwrap();
        let mut third = register();
        again.authorize(&mut third, 1);
        assert_eq!(
            sent(&third, "Authorization").get("cnonce"),
            p1.get("cnonce")
        );
        // A new nonce (stale) restarts the count.
        auth.on_challenge(&www(&[
            "Digest realm=\"example.com\", nonce=\"n2\", qop=\"auth\", stale=true",
        ]))
        .unwrap();
        let mut fourth = register();
        auth.authorize(&mut fourth, 3);
        let p4 = sent(&fourth, "Authorization");
        assert_eq!(p4.get("nonce"), Some("n2"));
        assert_eq!(p4.get("nc"), Some("00000001"));
    }

    #[test]
    fn prefers_sha256_over_md5_whatever_the_order() {
        for order in [[0, 1], [1, 0]] {
            let offers = [
                "Digest realm=\"example.com\", nonce=\"m\", qop=\"auth\", algorithm=MD5",
                "Digest realm=\"example.com\", nonce=\"s\", qop=\"auth\", algorithm=SHA-256",
            ];
            let mut auth = Authenticator::new(creds());
            auth.on_challenge(&www(&[offers[order[0]], offers[order[1]]]))
                .unwrap();
            let mut req = register();
            auth.authorize(&mut req, 1);
            let p = sent(&req, "Authorization");
            assert_eq!(p.get("algorithm"), Some("SHA-256"));
            assert_eq!(p.get("nonce"), Some("s"));
            assert_eq!(p.get("response").unwrap().len(), 64);
            assert_eq!(
                p.get("response").unwrap(),
                expected_response(&p, "REGISTER", "secret")
            );
        }
    }

    #[test]
    fn sess_variant_keeps_its_cnonce_per_nonce() {
        let mut auth = Authenticator::new(creds());
        auth.on_challenge(&www(&[
            "Digest realm=\"example.com\", nonce=\"n\", qop=\"auth\", algorithm=SHA-256-sess",
        ]))
        .unwrap();
        let mut a = register();
        auth.authorize(&mut a, 1);
        let mut b = register();
        auth.authorize(&mut b, 99);
        let (pa, pb) = (sent(&a, "Authorization"), sent(&b, "Authorization"));
        assert_eq!(pa.get("algorithm"), Some("SHA-256-sess"));
        assert_eq!(pa.get("cnonce"), pb.get("cnonce"));
        assert_eq!(pb.get("nc"), Some("00000002"));
        assert_eq!(
            pb.get("response").unwrap(),
            expected_response(&pb, "REGISTER", "secret")
        );
    }

    #[test]
    fn auth_int_only_and_unknown_schemes_are_unsupported() {
        let mut auth = Authenticator::new(creds());
        assert_eq!(
            auth.on_challenge(&www(&[
                "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"",
                "Basic realm=\"r\"",
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1",
            ])),
            Err(AuthError::NoSupportedChallenge)
        );
        assert!(!auth.has_challenge());
        // auth-int offered next to auth: auth is used.
        auth.on_challenge(&www(&[
            "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int,auth\"",
        ]))
        .unwrap();
        let mut req = register();
        auth.authorize(&mut req, 1);
        assert_eq!(sent(&req, "Authorization").get("qop"), Some("auth"));
    }

    #[test]
    fn missing_nonce_is_malformed() {
        let mut auth = Authenticator::new(creds());
        assert!(matches!(
            auth.on_challenge(&www(&["Digest realm=\"r\""])),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn second_non_stale_challenge_is_rejected_once_answered() {
        let mut auth = Authenticator::new(creds());
        let ch = www(&["Digest realm=\"example.com\", nonce=\"n1\", qop=\"auth\""]);
        auth.on_challenge(&ch).unwrap();
        // Not answered yet: a repeated challenge is simply taken.
        auth.on_challenge(&ch).unwrap();
        let mut req = register();
        auth.authorize(&mut req, 1);
        // Answered, challenged again with a fresh nonce (as Asterisk does).
        let again = www(&["Digest realm=\"example.com\", nonce=\"n2\", qop=\"auth\""]);
        assert_eq!(auth.on_challenge(&again), Err(AuthError::Rejected));
        // Rejection forgets the state: a later attempt is answered again.
        assert!(!auth.has_challenge());
        auth.on_challenge(&again).unwrap();
        assert!(auth.has_challenge());
    }

    #[test]
    fn stale_challenge_is_answered_but_not_forever() {
        let mut auth = Authenticator::new(creds());
        auth.on_challenge(&www(&[
            "Digest realm=\"example.com\", nonce=\"n0\", qop=\"auth\"",
        ]))
        .unwrap();
        let mut req = register();
        auth.authorize(&mut req, 1);
        for i in 1..=MAX_STALE_RETRIES {
            let stale =
                format!("Digest realm=\"example.com\", nonce=\"s{i}\", qop=\"auth\", stale=TRUE");
            auth.on_challenge(&www(&[&stale])).unwrap();
            auth.authorize(&mut req, u64::from(i));
            assert_eq!(sent(&req, "Authorization").get("nc"), Some("00000001"));
        }
        let stale = "Digest realm=\"example.com\", nonce=\"last\", qop=\"auth\", stale=true";
        assert!(matches!(
            auth.on_challenge(&www(&[stale])),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn success_allows_answering_a_later_challenge() {
        let mut auth = Authenticator::new(creds());
        auth.on_challenge(&www(&[
            "Digest realm=\"example.com\", nonce=\"n1\", qop=\"auth\"",
        ]))
        .unwrap();
        let mut req = register();
        auth.authorize(&mut req, 1);
        auth.on_success();
        // Pre-emptive use of the stored nonce does not count as an answer.
        auth.authorize(&mut req, 2);
        assert_eq!(sent(&req, "Authorization").get("nc"), Some("00000002"));
        let expired = www(&["Digest realm=\"example.com\", nonce=\"n2\", qop=\"auth\""]);
        auth.on_challenge(&expired).unwrap();
        auth.authorize(&mut req, 3);
        assert_eq!(auth.on_challenge(&expired), Err(AuthError::Rejected));
    }

    #[test]
    fn configured_realm_must_match() {
        let mut c = creds();
        c.realm = Some("Example.COM".into());
        let mut auth = Authenticator::new(c.clone());
        assert_eq!(
            auth.on_challenge(&www(&["Digest realm=\"other.net\", nonce=\"n\""])),
            Err(AuthError::WrongRealm {
                realm: "other.net".into()
            })
        );
        let mut auth = Authenticator::new(c);
        auth.on_challenge(&www(&[
            "Digest realm=\"other.net\", nonce=\"x\"",
            "Digest realm=\"example.com\", nonce=\"y\"",
        ]))
        .unwrap();
        let mut req = register();
        auth.authorize(&mut req, 1);
        assert_eq!(
            sent(&req, "Authorization").get("realm"),
            Some("example.com")
        );
    }

    #[test]
    fn proxy_challenge_gets_proxy_authorization() {
        let mut auth = Authenticator::new(creds());
        auth.on_challenge(&challenge(
            407,
            "Proxy-Authenticate",
            &["Digest realm=\"proxy\", nonce=\"p\", qop=\"auth\""],
        ))
        .unwrap();
        let mut req = register();
        req.uri = Uri::sip(Some("bob"), Host::Name("example.com".into()));
        req.method = Method::Invite;
        req.headers.push("Proxy-Authorization", "Digest old");
        auth.authorize(&mut req, 1);
        assert!(req.headers.get("Authorization").is_none());
        let p = sent(&req, "Proxy-Authorization");
        assert_eq!(p.get("realm"), Some("proxy"));
        assert_eq!(p.get("uri"), Some("sip:bob@example.com"));
        assert_eq!(
            p.get("response").unwrap(),
            expected_response(&p, "INVITE", "secret")
        );
        // A 401 from the registrar behind the proxy adds Authorization and
        // keeps the proxy credentials.
        auth.on_challenge(&www(&[
            "Digest realm=\"example.com\", nonce=\"w\", qop=\"auth\"",
        ]))
        .unwrap();
        auth.authorize(&mut req, 2);
        assert_eq!(
            sent(&req, "Proxy-Authorization").get("nc"),
            Some("00000002")
        );
        assert_eq!(
            sent(&req, "Authorization").get("realm"),
            Some("example.com")
        );
    }

    #[test]
    fn userhash_and_quoting() {
        let mut auth = Authenticator::new(creds());
        auth.on_challenge(&www(&[
            "Digest realm=\"example.com\", nonce=\"n\", qop=\"auth\", algorithm=SHA-512-256, userhash=true",
        ]))
        .unwrap();
        let mut req = register();
        auth.authorize(&mut req, 1);
        let p = sent(&req, "Authorization");
        assert_eq!(
            p.get("username"),
            Some("57dfef4a5cc421c244596a418535c430e6f6586304d4df8ef4a9e5e4286c82e5")
        );
        assert_eq!(p.get("userhash"), Some("true"));
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
