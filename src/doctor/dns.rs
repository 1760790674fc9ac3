//! (b) DNS: where the account's requests go, located with the runtime's own
//! RFC 3263 resolver ([`crate::runtime::net::resolve`]: NAPTR → SRV →
//! A/AAAA, or A/AAAA only when a port is given).

use super::{CheckResult, Context, Limits, transport_name};
use crate::runtime::net::{self, SipTarget};

pub(super) async fn check(ctx: &mut Context, limits: Limits) -> CheckResult {
    let hop = ctx.account.first_hop();
    let target = SipTarget {
        host: hop.host.clone(),
        port: hop.port,
        transport: Some(ctx.account.transport),
        sips: false,
    };
    let how = if hop.host.parse::<std::net::IpAddr>().is_ok()
        || hop
            .host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok()
    {
        "an IP address: no DNS needed".to_string()
    } else if hop.port.is_some() {
        "port given: A/AAAA records only (no SRV)".to_string()
    } else {
        format!(
            "no port given: SRV {} then A/AAAA (RFC 3263)",
            match ctx.account.transport {
                crate::sip::transport::TransportKind::Udp => "_sip._udp",
                crate::sip::transport::TransportKind::Tcp => "_sip._tcp",
                crate::sip::transport::TransportKind::Tls => "_sips._tcp",
            }
        )
    };
    let result = tokio::time::timeout(limits.dns, net::resolve(&target)).await;
    match result {
        Ok(Ok(targets)) if !targets.is_empty() => {
            let mut evidence = format!("{hop} ({how}):");
            for (i, (peer, name)) in targets.iter().enumerate() {
                let tls_name = if peer.transport == crate::sip::transport::TransportKind::Tls {
                    format!(" (TLS name {name})")
                } else {
                    String::new()
                };
                evidence.push_str(&format!(
                    "\n{}. {} {}{tls_name}{}",
                    i + 1,
                    transport_name(peer.transport),
                    peer.addr,
                    if i == 0 { " <- will be used" } else { "" }
                ));
            }
            ctx.targets = targets;
            CheckResult::passed("dns", evidence)
        }
        Ok(Ok(_)) => {
            CheckResult::failed("dns", format!("{hop}: no address"), dns_advice(&hop.host))
        }
        // The resolver gave up before our limit (resolv.conf `timeout`/
        // `attempts`, or the DNS server cannot be reached): not a wrong name.
        Ok(Err(e)) if e.to_string().contains(net::DNS_NO_ANSWER) => {
            CheckResult::failed("dns", format!("{hop}: {e}"), NO_ANSWER_ADVICE)
        }
        Ok(Err(e)) => CheckResult::failed("dns", format!("{hop}: {e}"), dns_advice(&hop.host)),
        Err(_) => CheckResult::failed(
            "dns",
            format!("{hop}: no DNS answer within {} s", limits.dns.as_secs()),
            NO_ANSWER_ADVICE,
        ),
    }
}

const NO_ANSWER_ADVICE: &str =
    "Your DNS server does not answer: check the network connection or VPN, then try again.";

fn dns_advice(host: &str) -> String {
    format!(
        "The server name `{host}` does not resolve: check its spelling in domain/registrar/outbound_proxy \
         with your admin (or use the server's IP address); if it is an internal name, connect the VPN first."
    )
}
