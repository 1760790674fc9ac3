//! (d) TLS: the server's certificate as a person needs to see it (subject,
//! names, issuer, validity dates, SHA-256 fingerprint to pin) and the
//! verdict of the same verifier a TLS connect uses
//! ([`crate::runtime::net::verify_server_certificate`]), with the exact
//! reason it is not trusted.

use super::{CheckResult, Context, Limits, x509};
use crate::runtime::net::{self, TlsClientConfig};
use crate::sip::transport::{TlsCertProblem, TransportError, TransportKind};

pub(super) async fn check(ctx: &Context, limits: Limits) -> CheckResult {
    let Some((peer, name)) = ctx.chosen.clone() else {
        return CheckResult::skipped("tls", "not run: no reachable server");
    };
    if peer.transport != TransportKind::Tls {
        return CheckResult::skipped(
            "tls",
            format!(
                "the account uses {}: no TLS",
                super::transport_name(peer.transport)
            ),
        );
    }
    let (chain, _) = match net::fetch_server_certificates(peer.addr, &name, limits.connect).await {
        Ok(c) => c,
        Err(e) => {
            return CheckResult::failed(
                "tls",
                format!("TLS handshake with {} ({name}): {e}", peer.addr),
                "The server does not complete a TLS handshake on this port: check that the port \
                 is its TLS port (usually 5061) with your admin.",
            );
        }
    };
    let Some(end_entity) = chain.first() else {
        return CheckResult::failed(
            "tls",
            "the server sent no certificate",
            "Ask your admin to install a certificate on the SIP server's TLS port.",
        );
    };
    let fingerprint = x509::fingerprint(end_entity.as_ref());
    let info = x509::parse(end_entity.as_ref());
    let mut evidence = vec![format!(
        "{} ({name}): {} certificate(s) sent",
        peer.addr,
        chain.len()
    )];
    if let Some(info) = &info {
        evidence.push(format!("subject: {}", info.subject));
        let mut names: Vec<String> = info.dns_names.clone();
        names.extend(info.ip_addresses.iter().map(|ip| format!("IP {ip}")));
        evidence.push(format!(
            "names: {}",
            if names.is_empty() {
                "(no subjectAltName)".to_string()
            } else {
                names.join(", ")
            }
        ));
        evidence.push(format!(
            "issuer: {}{}",
            info.issuer,
            if info.self_issued {
                " (self-signed)"
            } else {
                ""
            }
        ));
        evidence.push(format!(
            "valid: {} to {}",
            x509::format_time(info.not_before),
            x509::format_time(info.not_after)
        ));
    } else {
        evidence.push("certificate: not readable as X.509".into());
    }
    evidence.push(format!("fingerprint: {fingerprint}"));
    let tls = tls_config(&ctx.account);
    let host_names = info
        .as_ref()
        .map(|i| {
            let mut n = i.dns_names.clone();
            n.extend(i.ip_addresses.iter().map(|ip| ip.to_string()));
            n.join(", ")
        })
        .unwrap_or_default();
    match net::verify_server_certificate(&tls, &chain, &name) {
        Ok(()) => {
            evidence.push(format!(
                "verification: trusted for {name}{}",
                if tls.pinned_sha256.is_some() {
                    " (pinned fingerprint matches)"
                } else {
                    ""
                }
            ));
            CheckResult::passed("tls", evidence.join("\n"))
        }
        Err(e) => {
            evidence.push(format!("verification: {e}"));
            let issuer = info.as_ref().map(|i| i.issuer.clone()).unwrap_or_default();
            let advice = match &e {
                TransportError::TlsCertificate(TlsCertProblem::UntrustedIssuer) => format!(
                    "Not trusted: issued by `{issuer}`, a CA this computer does not trust. Ask your \
                     admin for the CA file and set tls_ca_file, or pin the certificate: \
                     tls_pin_sha256 = \"{fingerprint}\""
                ),
                TransportError::TlsCertificate(TlsCertProblem::WrongHost) => format!(
                    "Wrong host: the certificate is for {host_names}, not {name}: use a server \
                     name the certificate names in domain/registrar, or ask your admin for a \
                     certificate for {name}; or pin it: tls_pin_sha256 = \"{fingerprint}\""
                ),
                TransportError::TlsCertificate(TlsCertProblem::Expired) => format!(
                    "Expired: the certificate expired on {}: the server's admin must renew it \
                     (check this computer's date too).",
                    info.as_ref()
                        .map(|i| x509::format_time(i.not_after))
                        .unwrap_or_default()
                ),
                TransportError::TlsCertificate(TlsCertProblem::NotYetValid) => format!(
                    "Not valid yet: the certificate is valid only from {}: check this \
                     computer's date and time.",
                    info.as_ref()
                        .map(|i| x509::format_time(i.not_before))
                        .unwrap_or_default()
                ),
                TransportError::TlsCertificate(TlsCertProblem::PinMismatch) => format!(
                    "The server's certificate changed: it is now {fingerprint}. Confirm with your \
                     admin that this is theirs, then set tls_pin_sha256 = \"{fingerprint}\""
                ),
                TransportError::TlsCertificate(TlsCertProblem::Revoked) => {
                    "The certificate is revoked: the server's admin must replace it.".to_string()
                }
                other => format!(
                    "Not accepted ({other}): ask your admin for a valid certificate, or pin it: \
                     tls_pin_sha256 = \"{fingerprint}\""
                ),
            };
            CheckResult::failed("tls", evidence.join("\n"), advice)
        }
    }
}

/// The account's certificate policy, as the runtime builds it.
pub(super) fn tls_config(account: &crate::config::AccountConfig) -> TlsClientConfig {
    TlsClientConfig {
        extra_ca_file: account.tls_ca_file.clone(),
        extra_ca_pem: account.tls_ca_pem.clone(),
        pinned_sha256: account
            .tls_pin_sha256
            .as_ref()
            .and_then(|p| crate::config::parse_fingerprint(p.get_ref())),
        verify: true,
    }
}
