//! Just enough X.509 (RFC 5280) DER reading to tell a person what a server
//! certificate says: subject, issuer, validity dates, subject alternative
//! names. Verification is rustls's job; this only describes. Input comes
//! from the network: every read is bounds-checked, nothing panics.

use std::net::IpAddr;

/// What the doctor shows of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// `CN=..., O=...`
    pub subject: String,
    pub issuer: String,
    /// Issuer and subject are the same name.
    pub self_issued: bool,
    /// Seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// DNS names and IP addresses of the subjectAltName extension.
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
}

/// One DER element: tag, content, and the rest after it.
fn element(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *data.first()?;
    let first = *data.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*data.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, data.get(header..end)?, data.get(end..)?))
}

/// The elements of a constructed value, in order.
fn children(mut data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let Some((tag, content, rest)) = element(data) {
        out.push((tag, content));
        data = rest;
    }
    out
}

const SEQUENCE: u8 = 0x30;

/// Read a DER certificate.
pub fn parse(der: &[u8]) -> Option<CertInfo> {
    let (tag, cert, _) = element(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = element(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut fields = children(tbs).into_iter().peekable();
    // [0] EXPLICIT version, optional.
    fields.next_if(|(tag, _)| *tag == 0xa0);
    let _serial = fields.next()?;
    let _signature = fields.next()?;
    let (_, issuer) = fields.next()?;
    let (_, validity) = fields.next()?;
    let (_, subject) = fields.next()?;
    let times = children(validity);
    let not_before = times.first().and_then(|(t, v)| time(*t, v))?;
    let not_after = times.get(1).and_then(|(t, v)| time(*t, v))?;
    let mut info = CertInfo {
        subject: name(subject),
        issuer: name(issuer),
        self_issued: issuer == subject,
        not_before,
        not_after,
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
    };
    for (tag, content) in fields {
        if tag == 0xa3 {
            read_extensions(content, &mut info);
        }
    }
    Some(info)
}

fn read_extensions(content: &[u8], info: &mut CertInfo) {
    const SAN: &[u8] = &[0x55, 0x1d, 0x11];
    let Some((_, list, _)) = element(content) else {
        return;
    };
    for (_, ext) in children(list) {
        let parts = children(ext);
        let is_san = parts
            .first()
            .is_some_and(|(t, oid)| *t == 0x06 && *oid == SAN);
        // The value is the last part (an OCTET STRING), after the optional
        // critical flag.
        let value = parts.last().filter(|(t, _)| *t == 0x04);
        if let (true, Some((_, value))) = (is_san, value)
            && let Some((_, names, _)) = element(value)
        {
            for (tag, v) in children(names) {
                match tag {
                    0x82 => info.dns_names.push(String::from_utf8_lossy(v).into_owned()),
                    0x87 => {
                        if let Ok(b) = <[u8; 4]>::try_from(v) {
                            info.ip_addresses.push(IpAddr::from(b));
                        } else if let Ok(b) = <[u8; 16]>::try_from(v) {
                            info.ip_addresses.push(IpAddr::from(b));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// A Name as `CN=..., O=...` (the attributes people know; others skipped).
fn name(data: &[u8]) -> String {
    let mut parts = Vec::new();
    for (_, set) in children(data) {
        for (_, pair) in children(set) {
            let kv = children(pair);
            let (Some((0x06, oid)), Some((_, value))) = (kv.first(), kv.get(1)) else {
                continue;
            };
            let label = match *oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x07] => "L",
                [0x55, 0x04, 0x08] => "ST",
                _ => continue,
            };
            parts.push(format!("{label}={}", String::from_utf8_lossy(value)));
        }
    }
    if parts.is_empty() {
        "(no name)".to_string()
    } else {
        parts.join(", ")
    }
}

/// UTCTime (0x17, `YYMMDDHHMMSSZ`) or GeneralizedTime (0x18,
/// `YYYYMMDDHHMMSSZ`) as Unix seconds.
fn time(tag: u8, v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = s.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let num = |r: std::ops::Range<usize>| -> Option<i64> { rest.get(r)?.parse().ok() };
    let (month, day) = (num(0..2)?, num(2..4)?);
    let (hour, minute, second) = (num(4..6)?, num(6..8)?, num(8..10)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `SHA256:AB:CD:...` of a DER certificate, as `tls_pin_sha256` accepts it.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hex: Vec<String> = Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    format!("SHA256:{}", hex.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(time(0x17, b"000229000000Z"), Some(951_782_400));
        assert_eq!(time(0x18, b"20000229000000Z"), Some(951_782_400));
        assert_eq!(time(0x17, b"991231235959Z"), Some(946_684_799));
        assert_eq!(time(0x17, b"001399000000Z"), None);
        assert_eq!(time(0x17, b"0002"), None);
    }

    #[test]
    fn garbage_never_panics() {
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[0x30]), None);
        assert_eq!(parse(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(parse(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
        for n in 0..64u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0x30).collect();
            let _ = parse(&data);
        }
    }

    #[test]
    fn fingerprint_format() {
        let fp = fingerprint(b"abc");
        assert!(fp.starts_with("SHA256:BA:78:16:BF:"), "{fp}");
        assert_eq!(fp.len(), "SHA256:".len() + 32 * 3 - 1);
        assert!(crate::config::parse_fingerprint(&fp).is_some());
    }
}
