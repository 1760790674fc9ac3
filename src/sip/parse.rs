//! SIP parser (RFC 3261 §7, §19, §20, §25; RFC 4475 torture cases).
//!
//! Never panics on input: every byte is read through `get()`/iterators and
//! every rejection says precisely what was wrong ([`ParseError`]), which
//! maps to the status code of the answer in one place
//! ([`ParseError::status_code`]).
//!
//! `Message::parse` validates the headers a transaction needs (Via, From,
//! To, Call-ID, CSeq) and the numeric ones (Content-Length, Max-Forwards,
//! Expires), so a message that passes is safe for every layer above; other
//! headers are kept raw and read on demand by the typed readers in
//! [`crate::sip::headers`].

use crate::sip::headers::{AuthParams, CSeq, NameAddr, Params, Via};
use crate::sip::message::{Header, Headers, Message, Method, Request, Response, canonical_name};
use crate::sip::uri::{Host, Scheme, Uri};

/// Largest message accepted (datagram or stream frame), in bytes.
pub const MAX_MESSAGE_SIZE: usize = 65_535;

/// Most header lines accepted in one message.
pub const MAX_HEADERS: usize = 256;

/// Why a message (or one of its parts) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("invalid {header} header: {why}")]
    InvalidHeader { header: String, why: String },
    #[error("invalid start line: {0}")]
    InvalidStartLine(String),
    #[error("unsupported SIP version {0}")]
    VersionNotSupported(String),
    #[error("invalid URI: {0}")]
    InvalidUri(String),
    #[error("unsupported URI scheme {0:?}")]
    UnsupportedScheme(String),
    #[error("message too large ({0} bytes)")]
    TooLarge(usize),
    #[error("incomplete message: {0}")]
    Incomplete(String),
}

impl ParseError {
    /// The status code a UAS answers a request that failed this way with.
    pub fn status_code(&self) -> u16 {
        match self {
            ParseError::TooLarge(_) => 513,
            ParseError::VersionNotSupported(_) => 505,
            ParseError::UnsupportedScheme(_) => 416,
            _ => 400,
        }
    }

    fn header(header: &str, why: impl Into<String>) -> ParseError {
        ParseError::InvalidHeader {
            header: header.to_string(),
            why: why.into(),
        }
    }
}

impl Message {
    /// Parse one complete message (a datagram, or a frame cut by the stream
    /// framer). Octets after `Content-Length` are discarded (RFC 3261 §18.3);
    /// a body shorter than `Content-Length` is an error.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        parse_message(bytes)
    }
}

// ---------------------------------------------------------------------------
// character classes (RFC 3261 §25.1)

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c)
}

/// Characters allowed unescaped in the user part.
pub(crate) fn is_user_char(c: char) -> bool {
    is_unreserved(c) || "&=+$,;?/".contains(c)
}

/// Characters allowed unescaped in the password.
pub(crate) fn is_password_char(c: char) -> bool {
    is_unreserved(c) || "&=+$,".contains(c)
}

/// Characters allowed unescaped in URI parameter names and values.
pub(crate) fn is_param_char(c: char) -> bool {
    is_unreserved(c) || "[]/:&+$".contains(c)
}

/// Characters allowed unescaped in URI header names and values.
pub(crate) fn is_hnv_char(c: char) -> bool {
    is_unreserved(c) || "[]/?:+$".contains(c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

// ---------------------------------------------------------------------------
// message

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_message(bytes: &[u8]) -> Result<Message, ParseError> {
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(ParseError::TooLarge(bytes.len()));
    }
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or_else(|| ParseError::Incomplete("empty message".into()))?;
    let bytes = bytes.get(start..).unwrap_or_default();
    // The head ends at the first empty line (CRLF CRLF; bare LF tolerated).
    let (head, body) = match (find(bytes, b"\r\n\r\n"), find(bytes, b"\n\n")) {
        (Some(i), Some(j)) if j + 1 < i => (&bytes[..j + 1], &bytes[j + 2..]),
        (Some(i), _) => (&bytes[..i + 2], &bytes[i + 4..]),
        (None, Some(j)) => (&bytes[..j + 1], &bytes[j + 2..]),
        (None, None) => (bytes, &[][..]),
    };
    let head = std::str::from_utf8(head).map_err(|e| {
        ParseError::header(
            "(message head)",
            format!("not UTF-8 at byte {}", e.valid_up_to()),
        )
    })?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().unwrap_or_default();

    let mut headers = Headers::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // Folded continuation (RFC 3261 §7.3.1): one space replaces the fold.
            let Some(last) = headers.0.last_mut() else {
                return Err(ParseError::header(
                    "(first header)",
                    "continuation line without a header",
                ));
            };
            let more = line.trim_matches(is_ws);
            if !more.is_empty() {
                if !last.value.is_empty() {
                    last.value.push(' ');
                }
                last.value.push_str(more);
            }
            continue;
        }
        let Some(colon) = line.find(':') else {
            return Err(ParseError::header(
                truncate(line, 40),
                "no colon after the header name",
            ));
        };
        let name = line[..colon].trim_end_matches(is_ws);
        if !is_token(name) {
            return Err(ParseError::header(
                truncate(name, 40),
                "header name is not a token",
            ));
        }
        if headers.len() >= MAX_HEADERS {
            return Err(ParseError::TooLarge(bytes.len()));
        }
        headers.0.push(Header {
            name: name.to_string(),
            value: line[colon + 1..].trim_matches(is_ws).to_string(),
        });
    }

    let body = match read_number::<u32>(&headers, "Content-Length")? {
        Some(len) => {
            let len = len as usize;
            if len > body.len() {
                return Err(ParseError::Incomplete(format!(
                    "Content-Length is {len} but the body has {} bytes",
                    body.len()
                )));
            }
            body[..len].to_vec()
        }
        None => body.to_vec(),
    };

    let message = if start_line.starts_with("SIP/") || start_line.starts_with("sip/") {
        let (code, reason) = parse_status_line(start_line)?;
        Message::Response(Response {
            code,
            reason,
            headers,
            body,
        })
    } else {
        let (method, uri) = parse_request_line(start_line)?;
        Message::Request(Request {
            method,
            uri,
            headers,
            body,
        })
    };
    validate(&message)?;
    Ok(message)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn check_version(v: &str) -> Result<(), ParseError> {
    if v.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    match v.split_once('/') {
        Some((p, ver))
            if p.eq_ignore_ascii_case("SIP")
                && !ver.is_empty()
                && ver.chars().all(|c| c.is_ascii_digit() || c == '.') =>
        {
            Err(ParseError::VersionNotSupported(v.to_string()))
        }
        _ => Err(ParseError::InvalidStartLine(format!(
            "bad SIP version {:?}",
            truncate(v, 20)
        ))),
    }
}

fn parse_request_line(line: &str) -> Result<(Method, Uri), ParseError> {
    // Exactly `Method SP Request-URI SP SIP-Version` (RFC 3261 §7.1).
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts.as_slice() else {
        return Err(ParseError::InvalidStartLine(format!(
            "expected `METHOD URI SIP/2.0` separated by single spaces, got {} parts",
            parts.len()
        )));
    };
    if !is_token(method) {
        return Err(ParseError::InvalidStartLine(format!(
            "method {:?} is not a token",
            truncate(method, 20)
        )));
    }
    check_version(version)?;
    let uri = parse_uri(uri)?;
    if !uri.headers.is_empty() {
        return Err(ParseError::InvalidUri(
            "a Request-URI cannot carry headers".into(),
        ));
    }
    Ok((Method::from_token(method), uri))
}

fn parse_status_line(line: &str) -> Result<(u16, String), ParseError> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    check_version(version)?;
    let code = parts.next().unwrap_or_default();
    if code.len() != 3 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Err(ParseError::InvalidStartLine(format!(
            "status code {:?} is not three digits",
            truncate(code, 20)
        )));
    }
    let code: u16 = code.parse().unwrap_or(0);
    if !(100..=699).contains(&code) {
        return Err(ParseError::InvalidStartLine(format!(
            "status code {code} out of range"
        )));
    }
    Ok((code, parts.next().unwrap_or_default().to_string()))
}

/// Eager checks on the headers every layer relies on.
fn validate(message: &Message) -> Result<(), ParseError> {
    let h = message.headers();
    for name in [
        "Call-ID",
        "CSeq",
        "From",
        "To",
        "Max-Forwards",
        "Content-Length",
    ] {
        let n = h.get_all(name).count();
        if n > 1 {
            return Err(ParseError::header(name, format!("appears {n} times")));
        }
    }
    let vias = read_vias(h)?;
    if vias.is_empty() {
        return Err(ParseError::MissingHeader("Via"));
    }
    let from = h.get("From").ok_or(ParseError::MissingHeader("From"))?;
    parse_name_addr(from).map_err(|e| rename(e, "From"))?;
    let to = h.get("To").ok_or(ParseError::MissingHeader("To"))?;
    parse_name_addr(to).map_err(|e| rename(e, "To"))?;
    let call_id = h
        .get("Call-ID")
        .ok_or(ParseError::MissingHeader("Call-ID"))?;
    if call_id.is_empty() || call_id.chars().any(char::is_whitespace) {
        return Err(ParseError::header(
            "Call-ID",
            "empty or contains whitespace",
        ));
    }
    let cseq = parse_cseq(h.get("CSeq").ok_or(ParseError::MissingHeader("CSeq"))?)?;
    if let Message::Request(r) = message
        && cseq.method != r.method
    {
        return Err(ParseError::header(
            "CSeq",
            format!(
                "method {} does not match the request method {}",
                cseq.method, r.method
            ),
        ));
    }
    if let Some(mf) = read_number::<u32>(h, "Max-Forwards")?
        && mf > 255
    {
        return Err(ParseError::header(
            "Max-Forwards",
            format!("{mf} is above 255"),
        ));
    }
    read_number::<u32>(h, "Expires")?;
    read_number::<u32>(h, "Min-Expires")?;
    for name in ["Contact", "Route", "Record-Route"] {
        for c in read_name_addr_list(h, name)? {
            if let Some(e) = c.params.value("expires")
                && e.parse::<u32>().is_err()
            {
                return Err(ParseError::header(
                    name,
                    format!("expires={} is not a 32-bit number", truncate(e, 30)),
                ));
            }
        }
    }
    if let Some(date) = h.get("Date") {
        check_date(date)?;
    }
    for w in h.get_all("Warning") {
        for one in split_list(w, "Warning")? {
            let code = one.split(' ').next().unwrap_or_default();
            if code.len() != 3 || !code.chars().all(|c| c.is_ascii_digit()) {
                return Err(ParseError::header(
                    "Warning",
                    format!("warn-code {:?} is not three digits", truncate(code, 20)),
                ));
            }
        }
    }
    Ok(())
}

fn rename(e: ParseError, header: &str) -> ParseError {
    match e {
        ParseError::InvalidHeader { why, .. } => ParseError::header(header, why),
        ParseError::InvalidUri(why) => ParseError::header(header, format!("bad URI: {why}")),
        ParseError::UnsupportedScheme(s) => {
            ParseError::header(header, format!("unsupported URI scheme {s:?}"))
        }
        other => other,
    }
}

/// RFC 1123 date in GMT (RFC 3261 §20.17): `Sat, 13 Nov 2010 23:29:00 GMT`.
fn check_date(v: &str) -> Result<(), ParseError> {
    let bad = |why: &str| ParseError::header("Date", why);
    let (wkday, rest) = v
        .split_once(", ")
        .ok_or_else(|| bad("expected `Wkd, DD Mon YYYY HH:MM:SS GMT`"))?;
    if !["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&wkday) {
        return Err(bad("unknown weekday"));
    }
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, zone] = parts.as_slice() else {
        return Err(bad("expected `Wkd, DD Mon YYYY HH:MM:SS GMT`"));
    };
    let digits = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_digit());
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    if !digits(day, 2) || !months.contains(month) || !digits(year, 4) {
        return Err(bad("bad day, month or year"));
    }
    let t: Vec<&str> = time.split(':').collect();
    if t.len() != 3 || !t.iter().all(|p| digits(p, 2)) {
        return Err(bad("bad time of day"));
    }
    if *zone != "GMT" {
        return Err(bad("time zone must be GMT"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// a small cursor over header values

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }
    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or_default()
    }
    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn skip_ws(&mut self) {
        while self
            .peek()
            .is_some_and(|c| is_ws(c) || c == '\r' || c == '\n')
        {
            self.pos += 1;
        }
    }
    /// Consume `c` (after optional whitespace); whitespace after it too.
    fn eat(&mut self, c: char) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            self.skip_ws();
            true
        } else {
            self.pos = save;
            false
        }
    }
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let end = rest.find(|c: char| !f(c)).unwrap_or(rest.len());
        self.pos += end;
        &rest[..end]
    }
    fn token(&mut self) -> &'a str {
        self.take_while(is_token_char)
    }
    /// A quoted string, unescaped (the cursor is on the opening quote).
    fn quoted(&mut self, header: &str) -> Result<String, ParseError> {
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        if !matches!(chars.next(), Some((_, '"'))) {
            return Err(ParseError::header(header, "expected a quoted string"));
        }
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, e)) => out.push(e),
                    None => break,
                },
                other => out.push(other),
            }
        }
        Err(ParseError::header(header, "unterminated quoted string"))
    }
    /// The raw text of a quoted string including its quotes.
    fn quoted_raw(&mut self, header: &str) -> Result<&'a str, ParseError> {
        let start = self.pos;
        self.quoted(header)?;
        Ok(&self.s[start..self.pos])
    }
}

/// Split a header value at top-level commas (outside quotes and `<>`).
/// Empty elements are an error.
pub(crate) fn split_list<'a>(value: &'a str, header: &str) -> Result<Vec<&'a str>, ParseError> {
    let mut out = Vec::new();
    let mut depth_angle = false;
    let mut in_quote = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if in_quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quote = false;
            }
            continue;
        }
        match c {
            '"' => in_quote = true,
            '<' => depth_angle = true,
            '>' => depth_angle = false,
            ',' if !depth_angle => {
                out.push(value[start..i].trim_matches(is_ws));
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_quote {
        return Err(ParseError::header(header, "unterminated quoted string"));
    }
    out.push(value[start..].trim_matches(is_ws));
    if out.iter().any(|e| e.is_empty()) {
        return Err(ParseError::header(
            header,
            "empty element in a comma-separated list",
        ));
    }
    Ok(out)
}

/// `*( SEMI generic-param )` with whitespace around `;` and `=`. Values are
/// kept as written (a quoted string keeps its quotes).
fn parse_params(c: &mut Cursor<'_>, header: &str) -> Result<Params, ParseError> {
    let mut params = Params::default();
    loop {
        c.skip_ws();
        if c.at_end() {
            return Ok(params);
        }
        if !c.eat(';') {
            return Err(ParseError::header(
                header,
                format!("unexpected text {:?}", truncate(c.rest(), 20)),
            ));
        }
        let name = c.token();
        if name.is_empty() {
            return Err(ParseError::header(header, "empty parameter name"));
        }
        let value = if c.eat('=') {
            if c.peek() == Some('"') {
                Some(c.quoted_raw(header)?.to_string())
            } else {
                let v = c.take_while(|ch| is_token_char(ch) || ch == ':' || ch == '[' || ch == ']');
                if v.is_empty() {
                    return Err(ParseError::header(
                        header,
                        format!("parameter {name} has an empty value"),
                    ));
                }
                Some(v.to_string())
            }
        } else {
            None
        };
        params.0.push((name.to_string(), value));
    }
}

// ---------------------------------------------------------------------------
// URI

fn unescape(s: &str, allowed: fn(char) -> bool, what: &str) -> Result<String, ParseError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ParseError::InvalidUri(format!("bad escape in the {what}")))?;
            out.push(hex);
            i += 3;
        } else {
            if !(b as char).is_ascii() || !allowed(b as char) {
                return Err(ParseError::InvalidUri(format!(
                    "character {:?} not allowed in the {what}",
                    s[i..].chars().next().unwrap_or('?')
                )));
            }
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| ParseError::InvalidUri(format!("escaped {what} is not UTF-8")))
}

fn parse_host(s: &str) -> Result<(Host, Option<u16>), ParseError> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| ParseError::InvalidUri("unterminated IPv6 reference".into()))?;
        let ip: std::net::Ipv6Addr = addr.parse().map_err(|_| {
            ParseError::InvalidUri(format!("bad IPv6 address {:?}", truncate(addr, 45)))
        })?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| ParseError::InvalidUri("text after IPv6 reference".into()))?,
            ),
        };
        (Host::V6(ip), port)
    } else {
        let (h, p) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        if h.is_empty() {
            return Err(ParseError::InvalidUri("empty host".into()));
        }
        let host = if let Ok(ip) = h.parse::<std::net::Ipv4Addr>() {
            Host::V4(ip)
        } else if h
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
            && !h.starts_with(['.', '-'])
        {
            Host::Name(h.to_string())
        } else {
            return Err(ParseError::InvalidUri(format!(
                "bad host {:?}",
                truncate(h, 40)
            )));
        };
        (host, p)
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|_| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                .ok_or_else(|| ParseError::InvalidUri(format!("bad port {:?}", truncate(p, 10))))?,
        ),
    };
    Ok((host, port))
}

/// Parse a SIP, SIPS or TEL URI (addr-spec, no surrounding whitespace).
pub fn parse_uri(s: &str) -> Result<Uri, ParseError> {
    let (scheme, rest) = s
        .split_once(':')
        .ok_or_else(|| ParseError::InvalidUri(format!("no scheme in {:?}", truncate(s, 40))))?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err(ParseError::InvalidUri(format!(
            "bad scheme {:?}",
            truncate(scheme, 20)
        )));
    }
    let scheme = if scheme.eq_ignore_ascii_case("sip") {
        Scheme::Sip
    } else if scheme.eq_ignore_ascii_case("sips") {
        Scheme::Sips
    } else if scheme.eq_ignore_ascii_case("tel") {
        Scheme::Tel
    } else {
        return Err(ParseError::UnsupportedScheme(scheme.to_string()));
    };
    if rest.is_empty() {
        return Err(ParseError::InvalidUri("nothing after the scheme".into()));
    }
    if let Some(c) = rest
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "<>\"".contains(*c))
    {
        return Err(ParseError::InvalidUri(format!(
            "character {c:?} not allowed in a URI"
        )));
    }
    if scheme == Scheme::Tel {
        let (number, params) = rest.split_once(';').unwrap_or((rest, ""));
        if number.is_empty()
            || !number
                .chars()
                .all(|c| c.is_ascii_hexdigit() || "+-.()*#".contains(c))
        {
            return Err(ParseError::InvalidUri(format!(
                "bad telephone number {:?}",
                truncate(number, 30)
            )));
        }
        return Ok(Uri {
            scheme,
            user: Some(number.to_string()),
            password: None,
            host: Host::Name(String::new()),
            port: None,
            params: parse_uri_params(params)?,
            headers: Vec::new(),
        });
    }
    let (userinfo, hostpart) = match rest.find('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(ui) => {
            let (u, p) = match ui.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (ui, None),
            };
            if u.is_empty() {
                return Err(ParseError::InvalidUri("empty user before @".into()));
            }
            let user = unescape(u, is_user_char, "user part")?;
            let password = p
                .map(|p| unescape(p, is_password_char, "password"))
                .transpose()?;
            (Some(user), password)
        }
    };
    let hp_end = hostpart.find([';', '?']).unwrap_or(hostpart.len());
    let (host, port) = parse_host(&hostpart[..hp_end])?;
    let after = &hostpart[hp_end..];
    let (params, headers) = match after.find('?') {
        Some(q) => (&after[..q], Some(&after[q + 1..])),
        None => (after, None),
    };
    let params = parse_uri_params(params)?;
    let mut hdrs = Vec::new();
    if let Some(h) = headers {
        for pair in h.split('&') {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            if n.is_empty() {
                return Err(ParseError::InvalidUri("empty URI header name".into()));
            }
            hdrs.push((
                unescape(n, is_hnv_char, "URI header")?,
                unescape(v, is_hnv_char, "URI header")?,
            ));
        }
    }
    Ok(Uri {
        scheme,
        user,
        password,
        host,
        port,
        params,
        headers: hdrs,
    })
}

fn parse_uri_params(s: &str) -> Result<Vec<(String, Option<String>)>, ParseError> {
    let mut out = Vec::new();
    if s.is_empty() {
        return Ok(out);
    }
    let s = s.strip_prefix(';').unwrap_or(s);
    for p in s.split(';') {
        let (n, v) = match p.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (p, None),
        };
        if n.is_empty() {
            return Err(ParseError::InvalidUri("empty URI parameter".into()));
        }
        out.push((
            unescape(n, is_param_char, "URI parameter")?,
            v.map(|v| unescape(v, is_param_char, "URI parameter"))
                .transpose()?,
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// typed header values

/// A single name-addr or addr-spec with header parameters (From, To, one
/// Contact/Route element).
pub fn parse_name_addr(s: &str) -> Result<NameAddr, ParseError> {
    parse_name_addr_in(s, "address")
}

fn parse_name_addr_in(s: &str, header: &str) -> Result<NameAddr, ParseError> {
    let mut c = Cursor::new(s.trim_matches(is_ws));
    c.skip_ws();
    let mut display = None;
    let uri;
    if c.peek() == Some('"') {
        display = Some(c.quoted(header)?);
        c.skip_ws();
        if c.peek() != Some('<') {
            return Err(ParseError::header(
                header,
                "a quoted display name must be followed by <URI>",
            ));
        }
    }
    let rest = c.rest();
    // name-addr when a `<` comes before any header parameter; the text before
    // it is an unquoted display name (tokens separated by whitespace).
    let semi = rest.find(';').unwrap_or(rest.len());
    let lt = rest.find('<').filter(|&lt| lt < semi || display.is_some());
    if let Some(lt) = lt {
        if display.is_none() && lt > 0 {
            let name = rest[..lt].trim_matches(is_ws);
            let words: Vec<&str> = name.split(is_ws).filter(|t| !t.is_empty()).collect();
            if !words.iter().all(|w| is_token(w)) {
                return Err(ParseError::header(
                    header,
                    format!("display name {:?} must be quoted", truncate(name, 40)),
                ));
            }
            if !words.is_empty() {
                display = Some(words.join(" "));
            }
        }
        c.pos += lt + 1;
        let inner = c.rest();
        let gt = inner
            .find('>')
            .ok_or_else(|| ParseError::header(header, "missing > after <URI"))?;
        uri = parse_uri(&inner[..gt]).map_err(|e| rename(e, header))?;
        c.pos += gt + 1;
    } else {
        let end = rest.find([';', ' ', '\t']).unwrap_or(rest.len());
        let spec = &rest[..end];
        if spec.contains('?') {
            return Err(ParseError::header(
                header,
                "a URI with headers must be enclosed in <>",
            ));
        }
        uri = parse_uri(spec).map_err(|e| rename(e, header))?;
        c.pos += end;
    }
    let params = parse_params(&mut c, header)?;
    Ok(NameAddr {
        display,
        uri,
        params,
    })
}

/// `CSeq: 4711 INVITE`.
pub fn parse_cseq(s: &str) -> Result<CSeq, ParseError> {
    let mut c = Cursor::new(s);
    c.skip_ws();
    let num = c.take_while(|ch| ch.is_ascii_digit());
    if num.is_empty() {
        return Err(ParseError::header("CSeq", "missing sequence number"));
    }
    let seq: u32 = num.parse().ok().filter(|n| *n < 1 << 31).ok_or_else(|| {
        ParseError::header(
            "CSeq",
            format!("sequence number {} is not below 2^31", truncate(num, 30)),
        )
    })?;
    c.skip_ws();
    let method = c.token();
    c.skip_ws();
    if method.is_empty() || !c.at_end() {
        return Err(ParseError::header("CSeq", "expected `NUMBER METHOD`"));
    }
    Ok(CSeq {
        seq,
        method: Method::from_token(method),
    })
}

/// `Digest realm="x", nonce="y", ...` (challenge or credentials); values unquoted.
pub fn parse_auth_params(s: &str) -> Result<AuthParams, ParseError> {
    let header = "authentication";
    let mut c = Cursor::new(s);
    c.skip_ws();
    let scheme = c.token();
    if scheme.is_empty() {
        return Err(ParseError::header(header, "missing scheme"));
    }
    let mut params = Vec::new();
    loop {
        c.skip_ws();
        if c.at_end() {
            break;
        }
        let name = c.token();
        if name.is_empty() {
            return Err(ParseError::header(
                header,
                format!("unexpected {:?}", truncate(c.rest(), 20)),
            ));
        }
        if !c.eat('=') {
            return Err(ParseError::header(
                header,
                format!("parameter {name} has no value"),
            ));
        }
        let value = if c.peek() == Some('"') {
            c.quoted(header)?
        } else {
            c.take_while(|ch| !ch.is_whitespace() && ch != ',')
                .to_string()
        };
        params.push((name.to_string(), value));
        c.skip_ws();
        if !c.at_end() && !c.eat(',') {
            return Err(ParseError::header(
                header,
                "expected a comma between parameters",
            ));
        }
    }
    Ok(AuthParams {
        scheme: scheme.to_string(),
        params,
    })
}

fn parse_via(s: &str) -> Result<Via, ParseError> {
    let h = "Via";
    let mut c = Cursor::new(s);
    c.skip_ws();
    let proto = c.token();
    if !proto.eq_ignore_ascii_case("SIP") {
        return Err(ParseError::header(
            h,
            format!("protocol {:?} is not SIP", truncate(proto, 20)),
        ));
    }
    if !c.eat('/') {
        return Err(ParseError::header(h, "expected SIP/2.0/TRANSPORT"));
    }
    let version = c.token();
    if version != "2.0" {
        return Err(ParseError::header(
            h,
            format!("version {:?} is not 2.0", truncate(version, 20)),
        ));
    }
    if !c.eat('/') {
        return Err(ParseError::header(h, "expected SIP/2.0/TRANSPORT"));
    }
    let transport = c.token();
    if transport.is_empty() {
        return Err(ParseError::header(h, "missing transport"));
    }
    c.skip_ws();
    let hostport = c.take_while(|ch| !is_ws(ch) && ch != ';');
    let (host, port) = parse_host(hostport).map_err(|e| rename(e, h))?;
    let params = parse_params(&mut c, h)?;
    if let Some(Some(rport)) = params.get("rport")
        && rport.parse::<u16>().is_err()
    {
        return Err(ParseError::header(h, "rport is not a port number"));
    }
    Ok(Via {
        transport: transport.to_ascii_uppercase(),
        host,
        port,
        params,
    })
}

/// Every Via value, top first (comma lists and repeated lines).
pub fn read_vias(h: &Headers) -> Result<Vec<Via>, ParseError> {
    let mut out = Vec::new();
    for value in h.get_all("Via") {
        for one in split_list(value, "Via")? {
            out.push(parse_via(one)?);
        }
    }
    Ok(out)
}

/// Every element of a name-addr list header (Contact, Route, ...). A
/// `Contact: *` gives an empty list (see [`is_contact_star`]).
pub fn read_name_addr_list(h: &Headers, name: &str) -> Result<Vec<NameAddr>, ParseError> {
    let mut out = Vec::new();
    let header = canonical_name(name);
    for value in h.get_all(name) {
        if header.eq_ignore_ascii_case("Contact") && value.trim() == "*" {
            continue;
        }
        for one in split_list(value, header)? {
            out.push(parse_name_addr_in(one, header)?);
        }
    }
    Ok(out)
}

/// True for `Contact: *` (REGISTER removing every binding).
pub fn is_contact_star(h: &Headers) -> bool {
    h.get("Contact").is_some_and(|v| v.trim() == "*")
}

/// A header holding one unsigned decimal number (leading zeros allowed).
pub fn read_number<T: std::str::FromStr>(h: &Headers, name: &str) -> Result<Option<T>, ParseError> {
    let Some(v) = h.get(name) else {
        return Ok(None);
    };
    let v = v.trim();
    if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit()) {
        return Err(ParseError::header(
            canonical_name(name),
            format!("{:?} is not an unsigned number", truncate(v, 30)),
        ));
    }
    v.parse::<T>().map(Some).map_err(|_| {
        ParseError::header(
            canonical_name(name),
            format!("{} is too large", truncate(v, 30)),
        )
    })
}

/// The properties the fuzz target (`fuzz/fuzz_targets/parse.rs`) and the
/// corpus test (`tests/sip_fuzz_corpus.rs`) check on any input: parsing and
/// framing never panic (a panic is the failure), and a message that parses
/// serializes to bytes that parse to an equal message.
#[doc(hidden)]
pub fn check_invariants(data: &[u8]) -> Result<(), String> {
    use crate::sip::framing::{Frame, StreamFramer};
    let check = |bytes: &[u8]| -> Result<(), String> {
        if let Ok(m) = Message::parse(bytes) {
            match Message::parse(&m.to_bytes()) {
                Ok(again) if again == m => {}
                Ok(_) => return Err("re-parsed message differs".into()),
                Err(e) => return Err(format!("serialized message does not parse: {e}")),
            }
        }
        Ok(())
    };
    check(data)?;
    let mut framer = StreamFramer::new();
    for chunk in data.chunks(97) {
        framer.push(chunk);
        while let Ok(Some(frame)) = framer.next_frame() {
            if let Frame::Message(bytes) = frame {
                check(&bytes)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::headers::TypedHeaders;

    fn req(s: &str) -> Result<Message, ParseError> {
        Message::parse(s.replace('\n', "\r\n").as_bytes())
    }

    const BASE: &str = "OPTIONS sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport\nFrom: \"Alice\" <sip:alice@example.com>;tag=1\nTo: <sip:bob@example.com>\nCall-ID: abc@192.0.2.1\nCSeq: 1 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n";

    #[test]
    fn parses_a_plain_request() {
        let Message::Request(r) = req(BASE).unwrap() else {
            panic!("not a request")
        };
        assert_eq!(r.method, Method::Options);
        assert_eq!(r.uri.user.as_deref(), Some("bob"));
        let via = r.headers.top_via().unwrap();
        assert_eq!(via.branch(), Some("z9hG4bKabc"));
        assert_eq!(via.rport(), Some(None));
        assert_eq!(via.port, Some(5060));
        let from = r.headers.from_addr().unwrap();
        assert_eq!(from.display.as_deref(), Some("Alice"));
        assert_eq!(from.tag(), Some("1"));
        assert_eq!(r.headers.cseq().unwrap().seq, 1);
    }

    #[test]
    fn folding_compact_forms_and_whitespace() {
        let m = "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\nTO :\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\nfrom   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\n  ;\n  tag = 98asjd8\nMaX-fOrWaRdS: 0068\nCall-ID: wsinv.ndaksdj@192.0.2.1\nContent-Length   : 0\ncseq: 0009\n  INVITE\nVia  : SIP  /   2.0\n /UDP\n    192.0.2.2;branch=390skdjuw\ns :\nv:  SIP  / 2.0  / TCP     spindle.example.com   ;\n  branch  =   z9hG4bK9ikj8  ,\n SIP  /    2.0   / UDP  192.168.255.111   ; branch=\n z9hG4bK30239\nm:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\n      newvalue ;\n  secondparam ; q = 0.33\n\n";
        let msg = req(m).unwrap();
        let h = msg.headers();
        assert_eq!(h.to_addr().unwrap().tag(), Some("1918181833n"));
        let from = h.from_addr().unwrap();
        assert_eq!(from.display.as_deref(), Some("J Rosenberg \\\""));
        assert_eq!(from.tag(), Some("98asjd8"));
        assert_eq!(h.max_forwards().unwrap(), Some(68));
        assert_eq!(
            h.cseq().unwrap(),
            CSeq {
                seq: 9,
                method: Method::Invite
            }
        );
        let vias = h.vias().unwrap();
        assert_eq!(vias.len(), 3);
        assert_eq!(vias[1].transport, "TCP");
        assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
        let c = &h.contacts().unwrap()[0];
        assert_eq!(c.display.as_deref(), Some("Quoted string \"\""));
        assert_eq!(c.params.value("q"), Some("0.33"));
        assert_eq!(c.params.get("secondparam"), Some(None));
        assert_eq!(h.get("Subject"), Some(""));
    }

    #[test]
    fn escaped_uri_parts_and_ipv6() {
        let u = parse_uri("sip:sips%3Auser%40example.com@example.net").unwrap();
        assert_eq!(u.user.as_deref(), Some("sips:user@example.com"));
        let u = parse_uri("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("user;par=u@example.net"));
        let u = parse_uri("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31").unwrap();
        assert_eq!(u.user.as_deref(), Some("caller"));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.param("name"), Some(Some("value%41")));
        let u = parse_uri("sips:[2001:db8::10]:5061;transport=tcp").unwrap();
        assert_eq!(u.host, Host::V6("2001:db8::10".parse().unwrap()));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.to_string(), "sips:[2001:db8::10]:5061;transport=tcp");
        assert!(matches!(
            parse_uri("sip:[2001:db8::10"),
            Err(ParseError::InvalidUri(_))
        ));
        assert!(matches!(
            parse_uri("sip:a@b:99999"),
            Err(ParseError::InvalidUri(_))
        ));
        assert!(matches!(
            parse_uri("http://x"),
            Err(ParseError::UnsupportedScheme(_))
        ));
        let u = parse_uri("tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(
            u.to_string(),
            "tel:+1-201-555-0123;phone-context=example.com"
        );
    }

    #[test]
    fn precise_rejections() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "OPTIONS sip:bob@example.com SIP/2.0\n",
                "OPTIONS  sip:bob@example.com SIP/2.0\n",
                "InvalidStartLine",
            ),
            (
                "OPTIONS sip:bob@example.com SIP/2.0\n",
                "OPTIONS sip:bob@example.com SIP/2.0 \n",
                "InvalidStartLine",
            ),
            (
                "OPTIONS sip:bob@example.com SIP/2.0\n",
                "OPTIONS <sip:bob@example.com> SIP/2.0\n",
                "InvalidUri",
            ),
            (
                "OPTIONS sip:bob@example.com SIP/2.0\n",
                "OPTIONS sip:bob@example.com SIP/7.0\n",
                "VersionNotSupported",
            ),
            ("CSeq: 1 OPTIONS", "CSeq: 1 INVITE", "InvalidHeader"),
            (
                "CSeq: 1 OPTIONS",
                "CSeq: 36893488147419103232 OPTIONS",
                "InvalidHeader",
            ),
            ("Max-Forwards: 70", "Max-Forwards: 300", "InvalidHeader"),
            ("Content-Length: 0", "Content-Length: -999", "InvalidHeader"),
            ("Content-Length: 0", "Content-Length: 9999", "Incomplete"),
            (
                "From: \"Alice\" <sip:alice@example.com>;tag=1",
                "From: \"Alice <sip:alice@example.com>;tag=1",
                "InvalidHeader",
            ),
            (
                "From: \"Alice\" <sip:alice@example.com>;tag=1",
                "From: Bell, Alexander <sip:alice@example.com>;tag=1",
                "InvalidHeader",
            ),
            (
                "To: <sip:bob@example.com>",
                "To: < sip:bob@example.com >",
                "InvalidHeader",
            ),
            ("Call-ID: abc@192.0.2.1\n", "", "MissingHeader"),
            (
                "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport",
                "Via: SIP/2.0/UDP 192.0.2.1;;,;,,",
                "InvalidHeader",
            ),
            (
                "Max-Forwards: 70",
                "Max-Forwards: 70\nDate: Fri, 01 Jan 2010 16:00:00 EST",
                "InvalidHeader",
            ),
            (
                "Max-Forwards: 70",
                "Max-Forwards: 70\nContact: sip:user@example.com?Route=%3Csip:sip.example.com%3E",
                "InvalidHeader",
            ),
        ];
        for (from, to, kind) in cases {
            let text = BASE.replacen(from, to, 1);
            assert_ne!(text, BASE, "substitution {from:?} did nothing");
            let err = req(&text).expect_err(to);
            assert!(
                format!("{err:?}").starts_with(kind),
                "{to:?} gave {err:?}, expected {kind}"
            );
        }
    }

    #[test]
    fn responses_and_status_codes() {
        let base = "SIP/2.0 200 OK\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nFrom: <sip:a@b>;tag=1\nTo: <sip:a@b>\nCall-ID: x\nCSeq: 1 REGISTER\nContent-Length: 0\n\n";
        let Message::Response(r) = req(base).unwrap() else {
            panic!()
        };
        assert_eq!((r.code, r.reason.as_str()), (200, "OK"));
        let Message::Response(r) = req(&base.replace("200 OK", "100 ")).unwrap() else {
            panic!()
        };
        assert_eq!((r.code, r.reason.as_str()), (100, ""));
        assert!(req(&base.replace("200 OK", "4294967301 better not break the receiver")).is_err());
        assert!(req(&base.replace("200 OK", "099 Low")).is_err());
    }

    #[test]
    fn body_is_cut_at_content_length() {
        let m = BASE.replace("Content-Length: 0", "Content-Length: 4") + "abcdEXTRA";
        assert_eq!(req(&m).unwrap().body(), b"abcd");
    }

    #[test]
    fn auth_params() {
        let a = parse_auth_params("Digest realm=\"asterisk\", nonce=\"1a2b\",algorithm=MD5, qop=\"auth,auth-int\", stale=true").unwrap();
        assert_eq!(a.scheme, "Digest");
        assert_eq!(a.get("realm"), Some("asterisk"));
        assert_eq!(a.get("qop"), Some("auth,auth-int"));
        assert_eq!(a.get("STALE"), Some("true"));
        assert!(parse_auth_params("Digest realm=\"x").is_err());
    }

    #[test]
    fn status_code_mapping() {
        assert_eq!(ParseError::TooLarge(1).status_code(), 513);
        assert_eq!(
            ParseError::VersionNotSupported("SIP/3.0".into()).status_code(),
            505
        );
        assert_eq!(ParseError::UnsupportedScheme("x".into()).status_code(), 416);
        assert_eq!(ParseError::MissingHeader("Via").status_code(), 400);
    }

    #[test]
    fn garbage_never_panics() {
        for input in [
            &b""[..],
            b"\r\n",
            b"SIP/2.0",
            b"INVITE",
            b"\xff\xfe\x00",
            b"A B C\r\n\r\n",
            b"SIP/2.0 200\r\n\r\n",
        ] {
            assert!(Message::parse(input).is_err());
        }
        assert!(matches!(
            Message::parse(&vec![b'a'; MAX_MESSAGE_SIZE + 1]),
            Err(ParseError::TooLarge(_))
        ));
    }
}
