//! Redaction of secrets in SIP text before it reaches a trace or a log:
//! digest `response=` values (and `cnonce`, which with the response would
//! allow offline guessing), SRTP keys in SDP `a=crypto:` lines.

/// Text of a SIP message with secrets replaced by `<redacted>`. Works on
/// raw bytes (also malformed ones), never fails.
pub fn redact_sip(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let name = line.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("Authorization")
            || name.eq_ignore_ascii_case("Proxy-Authorization")
        {
            out.push_str(&redact_params(line, &["response", "cnonce"]));
        } else if line.starts_with("a=crypto:") {
            out.push_str(&redact_crypto(line));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Replace the values of the given `name=value` / `name="value"` params.
fn redact_params(line: &str, names: &[&str]) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        // Find the earliest occurrence of any name followed by '='.
        let found = names
            .iter()
            .filter_map(|n| find_param(rest, n).map(|pos| (pos, n.len())))
            .min();
        let Some((pos, nlen)) = found else {
            out.push_str(rest);
            break;
        };
        let value_start = pos + nlen + 1; // after '='
        out.push_str(rest.get(..value_start).unwrap_or(rest));
        let after = rest.get(value_start..).unwrap_or("");
        let after_trim = after.trim_start();
        let skipped = after.len() - after_trim.len();
        let value_len = if let Some(q) = after_trim.strip_prefix('"') {
            q.find('"').map(|e| e + 2).unwrap_or(after_trim.len())
        } else {
            after_trim
                .find([',', ' ', '\r', ';'])
                .unwrap_or(after_trim.len())
        };
        out.push_str("\"<redacted>\"");
        rest = after.get(skipped + value_len..).unwrap_or("");
    }
    out
}

/// Byte offset of `name` as a parameter name (preceded by a separator and
/// followed by optional spaces and '=').
fn find_param(s: &str, name: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(rel) = lower.get(from..)?.find(name) {
        let pos = from + rel;
        let before_ok = pos == 0
            || matches!(
                lower.as_bytes().get(pos - 1),
                Some(b' ' | b',' | b'\t' | b';')
            );
        let after = lower.get(pos + name.len()..).unwrap_or("");
        if before_ok && after.starts_with('=') {
            return Some(pos);
        }
        from = pos + name.len();
    }
    None
}

/// `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY|...` → key hidden.
fn redact_crypto(line: &str) -> String {
    match line.find("inline:") {
        Some(pos) => {
            let head = line.get(..pos + "inline:".len()).unwrap_or(line);
            let tail = line.get(pos + "inline:".len()..).unwrap_or("");
            let end = tail.find([' ', '\r']).unwrap_or(tail.len());
            format!("{head}<redacted>{}", tail.get(end..).unwrap_or(""))
        }
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_response_and_cnonce_hidden() {
        let msg = b"REGISTER sip:pbx SIP/2.0\r\nAuthorization: Digest username=\"1001\", realm=\"pbx\", nonce=\"abc\", uri=\"sip:pbx\", response=\"0123456789abcdef0123456789abcdef\", cnonce=\"c0ffee\", qop=auth, nc=00000001\r\nProxy-Authorization: Digest username=\"1001\",response=deadbeef\r\n\r\n";
        let r = redact_sip(msg);
        assert!(!r.contains("0123456789abcdef"), "{r}");
        assert!(!r.contains("c0ffee"), "{r}");
        assert!(!r.contains("deadbeef"), "{r}");
        assert!(r.contains("username=\"1001\""), "{r}");
        assert!(r.contains("nonce=\"abc\""), "{r}");
        assert!(r.contains("qop=auth, nc=00000001"), "{r}");
    }

    #[test]
    fn srtp_key_hidden_other_lines_kept() {
        let msg = b"v=0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\na=rtpmap:0 PCMU/8000\r\n";
        let r = redact_sip(msg);
        assert!(!r.contains("PS1uQCVee"), "{r}");
        assert!(r.contains("a=rtpmap:0 PCMU/8000"));
    }

    #[test]
    fn garbage_does_not_panic() {
        let _ = redact_sip(&[0xff, 0xfe, b'\n', b'A', b'u', b't', b'h']);
        let _ = redact_sip(b"Authorization: response=");
        let _ = redact_sip(b"Authorization: response=\"unterminated");
    }
}
