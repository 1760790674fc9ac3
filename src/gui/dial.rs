//! What the agent types or pastes into the dial field, made dialable:
//! `+1 (555) 010-2030`, `tel:+15550102030`, `callto:600` and `sip:`/`sips:`
//! URIs all work; anything that cannot be dialled gets a reason.

/// Normalise a dial string: a SIP URI is kept (trimmed), a `tel:`/`callto:`
/// number or a typed number loses its spaces, dashes, dots and brackets.
pub fn normalize(input: &str) -> Result<String, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("Enter a number or a SIP address".into());
    }
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        let rest = s.split_once(':').map(|(_, r)| r).unwrap_or("");
        if rest.trim().is_empty() || rest.chars().any(char::is_whitespace) {
            return Err("A SIP address cannot be empty or contain spaces".into());
        }
        return Ok(s.to_string());
    }
    let number = ["tel:", "callto:", "callto://"]
        .iter()
        .rev()
        .find(|p| lower.starts_with(*p))
        .map(|p| &s[p.len()..])
        .unwrap_or(s);
    // A tel: URI may carry parameters (`;phone-context=...`): the number is
    // what comes before them.
    let number = if lower.starts_with("tel:") {
        number.split(';').next().unwrap_or("")
    } else {
        number
    };
    if number.contains('@') {
        // `600@pbx.example.com`: a SIP address without its scheme.
        if number.chars().any(char::is_whitespace) {
            return Err("A SIP address cannot contain spaces".into());
        }
        return Ok(format!("sip:{number}"));
    }
    let mut out = String::with_capacity(number.len());
    for (i, c) in number.chars().enumerate() {
        match c {
            '0'..='9' | '*' | '#' => out.push(c),
            '+' if i == 0 || out.is_empty() => out.push(c),
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            c => return Err(format!("`{c}` cannot be dialled")),
        }
    }
    if out.is_empty() || out == "+" {
        return Err("Enter a number or a SIP address".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn pasted_numbers_lose_their_punctuation() {
        assert_eq!(normalize(" +1 (555) 010-2030 ").unwrap(), "+15550102030");
        assert_eq!(normalize("0049.30.1234").unwrap(), "0049301234");
        assert_eq!(normalize("tel:+1-555-0100").unwrap(), "+15550100");
        assert_eq!(
            normalize("tel:7042;phone-context=example.com").unwrap(),
            "7042"
        );
        assert_eq!(normalize("callto:600").unwrap(), "600");
        assert_eq!(normalize("*97").unwrap(), "*97");
        assert_eq!(normalize("alice").unwrap(), "alice");
    }

    #[test]
    fn sip_addresses_are_kept() {
        assert_eq!(
            normalize("sip:600@pbx.example.com").unwrap(),
            "sip:600@pbx.example.com"
        );
        assert_eq!(
            normalize("600@10.0.0.5:5080").unwrap(),
            "sip:600@10.0.0.5:5080"
        );
    }

    #[test]
    fn undiallable_input_says_why() {
        assert_eq!(
            normalize("   ").unwrap_err(),
            "Enter a number or a SIP address"
        );
        assert_eq!(normalize("12;3").unwrap_err(), "`;` cannot be dialled");
        assert_eq!(normalize("5+5").unwrap_err(), "`+` cannot be dialled");
        assert!(normalize("sip:").is_err());
        assert!(normalize("sip:a b@x").is_err());
        assert_eq!(
            normalize("tel:").unwrap_err(),
            "Enter a number or a SIP address"
        );
    }
}
