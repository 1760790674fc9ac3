//! Loopback tests of `runtime::net`: real sockets on 127.0.0.1, a TLS server
//! with certificates made by the `openssl` CLI at test time.
#![cfg(unix)]
#![allow(clippy::disallowed_methods)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use softline::runtime::net::{NetConfig, NetEvent, Network, SipTarget, TlsClientConfig, resolve};
use softline::sip::transport::{Peer, TlsCertProblem, TransportError, TransportKind};
use support::{TestDir, openssl};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const WAIT: Duration = Duration::from_secs(5);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn config(udp: bool, tcp: bool) -> NetConfig {
    NetConfig {
        listen_udp: udp.then(loopback),
        listen_tcp: tcp.then(loopback),
        tls: TlsClientConfig::default(),
        connect_timeout: Duration::from_secs(3),
        udp_keepalive: None,
        stream_keepalive: Duration::ZERO,
    }
}

fn message(n: u32, body: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK{n}\r\n\
         Call-ID: c{n}\r\nCSeq: {n} OPTIONS\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn next(net: &mut Network) -> NetEvent {
    tokio::time::timeout(WAIT, net.next_event())
        .await
        .expect("no network event in time")
}

fn peer(transport: TransportKind, addr: SocketAddr) -> Peer {
    Peer { transport, addr }
}

#[tokio::test]
async fn udp_send_receive_and_keepalive_datagrams_ignored() {
    let mut a = Network::bind(config(true, false)).await.unwrap();
    let mut b = Network::bind(config(true, false)).await.unwrap();
    let a_addr = a.local_addr(TransportKind::Udp).unwrap();
    let b_addr = b.local_addr(TransportKind::Udp).unwrap();
    assert_eq!(a.local_addr(TransportKind::Tcp), None);
    assert_eq!(a.local_addr(TransportKind::Tls), None);

    a.send(peer(TransportKind::Udp, b_addr), None, b"\r\n\r\n".to_vec());
    a.send(peer(TransportKind::Udp, b_addr), None, b"\r\n".to_vec());
    let msg = message(1, "hello");
    a.send(peer(TransportKind::Udp, b_addr), None, msg.clone());
    // The CRLF datagrams are not reported: the first event is the message.
    assert_eq!(
        next(&mut b).await,
        NetEvent::Received {
            peer: peer(TransportKind::Udp, a_addr),
            local: b_addr,
            data: msg
        }
    );

    // And back.
    let reply = message(2, "");
    b.send(peer(TransportKind::Udp, a_addr), None, reply.clone());
    match next(&mut a).await {
        NetEvent::Received { peer: p, data, .. } => {
            assert_eq!(p, peer(TransportKind::Udp, b_addr));
            assert_eq!(data, reply);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn udp_disabled_reports_failure() {
    let mut a = Network::bind(config(false, false)).await.unwrap();
    let target = peer(TransportKind::Udp, "127.0.0.1:9".parse().unwrap());
    a.send(target, None, message(1, ""));
    match next(&mut a).await {
        NetEvent::Failed {
            peer: p,
            error: TransportError::Io(_),
        } => assert_eq!(p, target),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn udp_keepalive_sent_to_configured_peers() {
    let mut cfg = config(true, false);
    cfg.udp_keepalive = Some(Duration::from_millis(50));
    let mut a = Network::bind(cfg).await.unwrap();
    let server = UdpSocket::bind(loopback()).await.unwrap();
    let other = UdpSocket::bind(loopback()).await.unwrap();
    a.set_udp_keepalive_peers(vec![
        peer(TransportKind::Udp, server.local_addr().unwrap()),
        // Stream peers get no datagram keep-alive.
        peer(TransportKind::Tcp, other.local_addr().unwrap()),
    ]);
    let mut buf = [0u8; 64];
    for _ in 0..2 {
        let (n, from) = tokio::time::timeout(WAIT, server.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"\r\n\r\n");
        assert_eq!(from, a.local_addr(TransportKind::Udp).unwrap());
    }
    let none = tokio::time::timeout(Duration::from_millis(200), other.recv_from(&mut buf)).await;
    assert!(none.is_err(), "a TCP peer got a UDP keep-alive");

    // An empty list stops them.
    a.set_udp_keepalive_peers(Vec::new());
    tokio::time::sleep(Duration::from_millis(80)).await;
    while tokio::time::timeout(Duration::from_millis(1), server.recv_from(&mut buf))
        .await
        .is_ok()
    {}
    let none = tokio::time::timeout(Duration::from_millis(200), server.recv_from(&mut buf)).await;
    assert!(none.is_err(), "keep-alive sent after the list was cleared");
}

/// Read exactly `len` bytes.
async fn read_n(stream: &mut (impl AsyncReadExt + Unpin), len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    tokio::time::timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("read timed out")
        .expect("read failed");
    buf
}

#[tokio::test]
async fn tcp_connection_reused_and_back_to_back_messages_framed() {
    let mut a = Network::bind(config(false, false)).await.unwrap();
    let server = TcpListener::bind(loopback()).await.unwrap();
    let server_addr = server.local_addr().unwrap();
    let target = peer(TransportKind::Tcp, server_addr);

    let m1 = message(1, "first");
    let m2 = message(2, "second body");
    a.send(target, None, m1.clone());
    a.send(target, None, m2.clone());
    let (mut conn, _) = tokio::time::timeout(WAIT, server.accept())
        .await
        .unwrap()
        .unwrap();
    let got = read_n(&mut conn, m1.len() + m2.len()).await;
    assert_eq!(got, [m1.clone(), m2.clone()].concat());

    // A third send after the connection is up uses it too.
    let m3 = message(3, "third");
    a.send(target, None, m3.clone());
    assert_eq!(read_n(&mut conn, m3.len()).await, m3);
    let second = tokio::time::timeout(Duration::from_millis(300), server.accept()).await;
    assert!(second.is_err(), "a second connection was opened");
    assert_eq!(a.stream_count(), 1);

    // Two responses in one segment come out as two messages.
    let r1 = message(11, "resp-one");
    let r2 = message(12, "");
    conn.write_all(&[r1.clone(), r2.clone()].concat())
        .await
        .unwrap();
    let local = conn.peer_addr().unwrap();
    for want in [r1, r2] {
        assert_eq!(
            next(&mut a).await,
            NetEvent::Received {
                peer: target,
                local,
                data: want
            }
        );
    }

    // The server closing is reported, and the connection is forgotten.
    drop(conn);
    assert_eq!(next(&mut a).await, NetEvent::Closed { peer: target });
    assert_eq!(a.stream_count(), 0);
}

#[tokio::test]
async fn accepted_tcp_connection_carries_the_response() {
    let mut b = Network::bind(config(false, true)).await.unwrap();
    let b_addr = b.local_addr(TransportKind::Tcp).unwrap();
    let mut client = TcpStream::connect(b_addr).await.unwrap();
    let client_addr = client.local_addr().unwrap();
    let req = message(1, "");
    client.write_all(&req).await.unwrap();
    let from = match next(&mut b).await {
        NetEvent::Received {
            peer: p,
            local,
            data,
        } => {
            assert_eq!(data, req);
            assert_eq!(local, b_addr);
            p
        }
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(from, peer(TransportKind::Tcp, client_addr));
    let resp = message(2, "ok");
    b.send(from, None, resp.clone());
    assert_eq!(read_n(&mut client, resp.len()).await, resp);
    assert_eq!(b.stream_count(), 1);
}

#[tokio::test]
async fn crlf_ping_answered_with_pong_and_not_reported() {
    let mut b = Network::bind(config(false, true)).await.unwrap();
    let b_addr = b.local_addr(TransportKind::Tcp).unwrap();
    let mut client = TcpStream::connect(b_addr).await.unwrap();
    client.write_all(b"\r\n\r\n").await.unwrap();
    assert_eq!(read_n(&mut client, 2).await, b"\r\n");
    // A message after the ping is the first event.
    let req = message(5, "x");
    client.write_all(&req).await.unwrap();
    match next(&mut b).await {
        NetEvent::Received { data, .. } => assert_eq!(data, req),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn idle_stream_gets_crlf_ping() {
    let mut cfg = config(false, false);
    cfg.stream_keepalive = Duration::from_millis(100);
    let mut a = Network::bind(cfg).await.unwrap();
    let server = TcpListener::bind(loopback()).await.unwrap();
    let m = message(1, "");
    a.send(
        peer(TransportKind::Tcp, server.local_addr().unwrap()),
        None,
        m.clone(),
    );
    let (mut conn, _) = server.accept().await.unwrap();
    assert_eq!(read_n(&mut conn, m.len()).await, m);
    let started = std::time::Instant::now();
    assert_eq!(read_n(&mut conn, 4).await, b"\r\n\r\n");
    assert!(started.elapsed() >= Duration::from_millis(50));
    // Answering with a pong is not reported as a message.
    conn.write_all(b"\r\n").await.unwrap();
    assert_eq!(read_n(&mut conn, 4).await, b"\r\n\r\n");
    let none = tokio::time::timeout(Duration::from_millis(100), a.next_event()).await;
    assert!(none.is_err(), "a pong was reported: {none:?}");
}

#[tokio::test]
async fn oversized_stream_closes_the_connection() {
    let mut b = Network::bind(config(false, true)).await.unwrap();
    let b_addr = b.local_addr(TransportKind::Tcp).unwrap();
    let mut client = TcpStream::connect(b_addr).await.unwrap();
    let client_addr = client.local_addr().unwrap();
    // 70 kB of header with no end: more than any SIP message may be.
    let junk = vec![b'a'; 70_000];
    let _ = client.write_all(&junk).await;
    assert_eq!(
        next(&mut b).await,
        NetEvent::Closed {
            peer: peer(TransportKind::Tcp, client_addr)
        }
    );
    // The client sees the connection end.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, client.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "connection still open: {n:?}");
}

#[tokio::test]
async fn refused_tcp_port_reports_refused() {
    let listener = std::net::TcpListener::bind(loopback()).unwrap();
    let dead = listener.local_addr().unwrap();
    drop(listener);
    let mut a = Network::bind(config(false, false)).await.unwrap();
    for transport in [TransportKind::Tcp, TransportKind::Tls] {
        let target = peer(transport, dead);
        a.send(target, Some("localhost"), message(1, ""));
        assert_eq!(
            next(&mut a).await,
            NetEvent::Failed {
                peer: target,
                error: TransportError::Refused
            }
        );
    }
    assert_eq!(a.stream_count(), 0);
}

// ------------------------------------------------------------------ TLS ---

/// The shared test CA and server certificate for localhost/127.0.0.1
/// (`ca.pem`, `server.pem`, `server.key`: `support::make_tls_files`), plus
/// `expired.pem` and `future.pem` for the same key, signed by the same CA.
fn make_pki() -> TestDir {
    let dir = TestDir::new("net-tls");
    let d = dir.path.as_path();
    support::make_tls_files(d);
    // `openssl ca` can set arbitrary validity dates.
    std::fs::write(
        d.join("ca.cnf"),
        "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\n\
         default_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n",
    )
    .unwrap();
    std::fs::write(d.join("index.txt"), "").unwrap();
    std::fs::write(d.join("serial"), "1000\n").unwrap();
    for (out, start, end) in [
        ("expired.pem", "20200101000000Z", "20200102000000Z"),
        ("future.pem", "20900101000000Z", "20900102000000Z"),
    ] {
        openssl(
            d,
            &[
                "ca",
                "-batch",
                "-config",
                "ca.cnf",
                "-cert",
                "ca.pem",
                "-keyfile",
                "ca.key",
                "-in",
                "server.csr",
                "-out",
                out,
                "-startdate",
                start,
                "-enddate",
                end,
                "-extfile",
                "server-ext.cnf",
                "-notext",
            ],
        );
    }
    dir
}

fn cert(dir: &TestDir, name: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(dir.path.join(name)).unwrap()
}

/// A TLS server on 127.0.0.1 presenting `cert_file`; it echoes what it
/// reads on each connection.
async fn tls_echo_server(dir: &TestDir, cert_file: &str) -> SocketAddr {
    let chain = vec![cert(dir, cert_file)];
    let key = PrivateKeyDer::from_pem_file(dir.path.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 || tls.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Send one message over TLS with `tls` settings; the echo or the failure.
async fn tls_roundtrip(
    tls: TlsClientConfig,
    server: SocketAddr,
    server_name: Option<&str>,
) -> Result<Vec<u8>, TransportError> {
    let mut cfg = config(false, false);
    cfg.tls = tls;
    let mut a = Network::bind(cfg).await.unwrap();
    let target = peer(TransportKind::Tls, server);
    let m = message(7, "over tls");
    a.send(target, server_name, m.clone());
    match next(&mut a).await {
        NetEvent::Received { peer: p, data, .. } => {
            assert_eq!(p, target);
            assert_eq!(data, m, "echo differs");
            Ok(data)
        }
        NetEvent::Failed { peer: p, error } => {
            assert_eq!(p, target);
            Err(error)
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn with_ca(dir: &TestDir) -> TlsClientConfig {
    TlsClientConfig {
        extra_ca_file: Some(dir.path.join("ca.pem")),
        extra_ca_pem: None,
        pinned_sha256: None,
        verify: true,
    }
}

fn cert_problem(problem: TlsCertProblem) -> Result<Vec<u8>, TransportError> {
    Err(TransportError::TlsCertificate(problem))
}

#[tokio::test]
async fn tls_certificate_checks() {
    let pki = make_pki();
    let server = tls_echo_server(&pki, "server.pem").await;

    // Trusted through the extra CA file, by name and by IP.
    assert!(
        tls_roundtrip(with_ca(&pki), server, Some("localhost"))
            .await
            .is_ok()
    );
    assert!(tls_roundtrip(with_ca(&pki), server, None).await.is_ok());
    assert!(
        tls_roundtrip(with_ca(&pki), server, Some("127.0.0.1"))
            .await
            .is_ok()
    );
    // Trusted through inline PEM (`tls_ca_pem`, as a profile ships it).
    let inline = TlsClientConfig {
        extra_ca_pem: Some(std::fs::read_to_string(pki.path.join("ca.pem")).unwrap()),
        ..TlsClientConfig::default()
    };
    assert!(
        tls_roundtrip(inline.clone(), server, Some("localhost"))
            .await
            .is_ok()
    );
    assert_eq!(
        tls_roundtrip(inline, server, Some("sip.example.com")).await,
        cert_problem(TlsCertProblem::WrongHost)
    );
    // Platform roots only: the test CA is unknown.
    assert_eq!(
        tls_roundtrip(TlsClientConfig::default(), server, Some("localhost")).await,
        cert_problem(TlsCertProblem::UntrustedIssuer)
    );
    // Trusted issuer, other name.
    assert_eq!(
        tls_roundtrip(with_ca(&pki), server, Some("sip.example.com")).await,
        cert_problem(TlsCertProblem::WrongHost)
    );
    // Pin: the server certificate's SHA-256 is accepted even without the CA or the name.
    let pin: [u8; 32] = Sha256::digest(cert(&pki, "server.pem").as_ref()).into();
    let pinned = |pin| TlsClientConfig {
        extra_ca_file: None,
        extra_ca_pem: None,
        pinned_sha256: Some(pin),
        verify: true,
    };
    assert!(
        tls_roundtrip(pinned(pin), server, Some("other.example"))
            .await
            .is_ok()
    );
    let mut wrong = pin;
    wrong[0] ^= 1;
    assert_eq!(
        tls_roundtrip(pinned(wrong), server, Some("localhost")).await,
        cert_problem(TlsCertProblem::PinMismatch)
    );
    // verify = false accepts anything.
    let insecure = TlsClientConfig {
        extra_ca_file: None,
        extra_ca_pem: None,
        pinned_sha256: None,
        verify: false,
    };
    assert!(
        tls_roundtrip(insecure, server, Some("nobody.example"))
            .await
            .is_ok()
    );
    // An unreadable CA file fails TLS connects with a reason (UDP/TCP unaffected).
    let missing = TlsClientConfig {
        extra_ca_file: Some(pki.path.join("missing.pem")),
        extra_ca_pem: None,
        pinned_sha256: None,
        verify: true,
    };
    match tls_roundtrip(missing, server, Some("localhost")).await {
        Err(TransportError::Tls(why)) => assert!(why.contains("missing.pem"), "{why}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn tls_validity_dates() {
    let pki = make_pki();
    let expired = tls_echo_server(&pki, "expired.pem").await;
    assert_eq!(
        tls_roundtrip(with_ca(&pki), expired, Some("localhost")).await,
        cert_problem(TlsCertProblem::Expired)
    );
    let future = tls_echo_server(&pki, "future.pem").await;
    assert_eq!(
        tls_roundtrip(with_ca(&pki), future, Some("localhost")).await,
        cert_problem(TlsCertProblem::NotYetValid)
    );
}

#[tokio::test]
async fn tls_connection_reused() {
    let pki = make_pki();
    let server = tls_echo_server(&pki, "server.pem").await;
    let mut cfg = config(false, false);
    cfg.tls = with_ca(&pki);
    let mut a = Network::bind(cfg).await.unwrap();
    let target = peer(TransportKind::Tls, server);
    let m1 = message(1, "one");
    let m2 = message(2, "two");
    a.send(target, Some("localhost"), m1.clone());
    a.send(target, Some("localhost"), m2.clone());
    let mut got = Vec::new();
    for _ in 0..2 {
        match next(&mut a).await {
            NetEvent::Received { data, .. } => got.push(data),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, vec![m1, m2]);
    assert_eq!(a.stream_count(), 1);
}

// ------------------------------------------------------------- resolve ---

fn target(host: &str, port: Option<u16>, transport: Option<TransportKind>) -> SipTarget {
    SipTarget {
        host: host.to_string(),
        port,
        transport,
        sips: false,
    }
}

#[tokio::test]
async fn resolve_ip_literals() {
    let got = resolve(&target("127.0.0.1", None, None)).await.unwrap();
    assert_eq!(
        got,
        vec![(
            peer(TransportKind::Udp, "127.0.0.1:5060".parse().unwrap()),
            "127.0.0.1".into()
        )]
    );
    let got = resolve(&target("127.0.0.1", None, Some(TransportKind::Tls)))
        .await
        .unwrap();
    assert_eq!(
        got[0].0,
        peer(TransportKind::Tls, "127.0.0.1:5061".parse().unwrap())
    );
    let got = resolve(&target("[::1]", Some(5070), Some(TransportKind::Tcp)))
        .await
        .unwrap();
    assert_eq!(
        got[0].0,
        peer(TransportKind::Tcp, "[::1]:5070".parse().unwrap())
    );
    let mut sips = target("127.0.0.1", None, None);
    sips.sips = true;
    let got = resolve(&sips).await.unwrap();
    assert_eq!(
        got[0].0,
        peer(TransportKind::Tls, "127.0.0.1:5061".parse().unwrap())
    );
    assert!(matches!(
        resolve(&target(" ", None, None)).await,
        Err(TransportError::Dns(_))
    ));
}

#[tokio::test]
async fn invalid_names_fail_at_once_without_dns() {
    for name in ["pbx.invalid", "PBX.Example.INVALID."] {
        let got = tokio::time::timeout(WAIT, resolve(&target(name, None, None)))
            .await
            .expect(".invalid must not wait for DNS");
        assert!(
            matches!(got, Err(TransportError::Dns(_))),
            "{name}: {got:?}"
        );
    }
}

#[tokio::test]
async fn resolve_localhost() {
    let got = tokio::time::timeout(
        WAIT,
        resolve(&target("localhost", None, Some(TransportKind::Tcp))),
    )
    .await
    .expect("localhost must not wait for DNS")
    .unwrap();
    assert!(!got.is_empty());
    assert!(got.iter().all(|(p, name)| p.transport == TransportKind::Tcp
        && p.addr.ip().is_loopback()
        && p.addr.port() == 5060
        && name == "localhost"));
    assert_eq!(got[0].0.addr, "127.0.0.1:5060".parse().unwrap());

    let got = resolve(&target("LocalHost.", Some(5099), None))
        .await
        .unwrap();
    assert_eq!(
        got[0].0,
        peer(TransportKind::Udp, "127.0.0.1:5099".parse().unwrap())
    );
}
