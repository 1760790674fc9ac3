//! Torture messages for the phone's UDP listener: the RFC 4475 §3.1.2
//! invalid messages, reproduced from the defects the RFC describes (the
//! exact bytes are ours), the §3.1.1 valid ones turned into requests with no
//! side effects, and our own truncated, garbage and oversized datagrams.
//!
//! Messages are written with `\n` line ends and turned into CRLF. `$VIA` is
//! replaced by the test socket's `host:port` (so an answer comes back to the
//! test), `$CL` by the body length. Each message has its own Via branch:
//! a repeated branch would rightly be answered as a retransmission.

/// What the phone may do with a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Malformed: a 400 (or one of `also`) or nothing at all.
    Reject { also: &'static [u16] },
    /// Valid: an answer that is not 400. Only answers carrying the case's
    /// Call-ID count, so a trailing second message must stay unanswered.
    NotBadRequest,
    /// A response (never answered) or a keep-alive: silence.
    Silence,
    /// RFC 4475 allows accepting or rejecting: any answer, or none.
    Tolerate,
}

pub struct Case {
    pub name: &'static str,
    pub source: &'static str,
    pub bytes: Vec<u8>,
    pub expect: Expect,
    /// The Call-ID answers to this case carry (None: not parseable).
    pub call_id: Option<String>,
}

const REJECT: Expect = Expect::Reject { also: &[] };

fn sdp() -> Vec<u8> {
    "v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.3\ns=-\nc=IN IP4 192.0.2.4\nt=0 0\nm=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n"
        .replace('\n', "\r\n")
        .into_bytes()
}

/// Head (`\n` lines, no blank line) + blank line + body, with `$VIA`/`$CL`.
fn msg(head: &str, body: &[u8], via: &str) -> Vec<u8> {
    let head = head
        .trim_end_matches('\n')
        .replace("$VIA", via)
        .replace("$CL", &body.len().to_string())
        .replace('\n', "\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    out
}

fn call_id_of(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i"))
            .then(|| value.trim().to_owned())
    })
}

fn case(name: &'static str, source: &'static str, bytes: Vec<u8>, expect: Expect) -> Case {
    let call_id = call_id_of(&bytes);
    Case {
        name,
        source,
        bytes,
        expect,
        call_id,
    }
}

/// A plain valid OPTIONS (the canary), Call-ID `call_id`.
pub fn options(via: &str, call_id: &str, cseq: u32) -> Vec<u8> {
    msg(
        &format!(
            "OPTIONS sip:softline@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP $VIA;branch=z9hG4bK{call_id}x{cseq};rport\n\
             Max-Forwards: 70\nFrom: <sip:tester@127.0.0.1>;tag=t{cseq}\nTo: <sip:softline@127.0.0.1>\n\
             Call-ID: {call_id}\nCSeq: {cseq} OPTIONS\nAccept: application/sdp\nContent-Length: 0"
        ),
        b"",
        via,
    )
}

/// RFC 4475 §3.1.2: invalid messages.
pub fn invalid(via: &str) -> Vec<Case> {
    let sdp = sdp();
    vec![
        case(
            "badinv01",
            "RFC 4475 3.1.2.1 extraneous header field separators",
            msg(
                "INVITE sip:user@example.com SIP/2.0\nTo: sip:j.user@example.com\n\
                 From: sip:caller@example.net;tag=134161461246\nMax-Forwards: 7\n\
                 Call-ID: badinv01.0ha0isndaksdjasdf3234nas\nCSeq: 8 INVITE\n\
                 Via: SIP/2.0/UDP $VIA;;,;,,\nContact: \"Joe\" <sip:joe@example.org>;;;;\n\
                 Content-Length: $CL\nContent-Type: application/sdp",
                &sdp,
                via,
            ),
            REJECT,
        ),
        case(
            "clerr",
            "RFC 4475 3.1.2.2 Content-Length larger than the message",
            msg(
                "INVITE sip:user@example.com SIP/2.0\nMax-Forwards: 80\nTo: sip:j.user@example.com\n\
                 From: sip:caller@example.net;tag=93942939o2\nContact: <sip:caller@hungry.example.net>\n\
                 Call-ID: clerr.0ha0isndaksdjweiafasdk3\nCSeq: 8 INVITE\n\
                 Via: SIP/2.0/UDP $VIA;branch=z9hG4bK-39234-23523\n\
                 Content-Type: application/sdp\nContent-Length: 9999",
                &sdp,
                via,
            ),
            REJECT,
        ),
        case(
            "ncl",
            "RFC 4475 3.1.2.3 negative Content-Length",
            msg(
                "INVITE sip:user@example.com SIP/2.0\nMax-Forwards: 254\nTo: sip:j.user@example.com\n\
                 From: sip:caller@example.net;tag=32394234\nCall-ID: ncl.0ha0isndaksdj2193423r542w35\n\
                 CSeq: 0 INVITE\nVia: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u1\n\
                 Contact: <sip:caller@example53.example.net>\nContent-Type: application/sdp\n\
                 Content-Length: -999",
                &sdp,
                via,
            ),
            REJECT,
        ),
        case(
            "scalar02",
            "RFC 4475 3.1.2.4 request scalar fields with overlarge values",
            msg(
                "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP $VIA;branch=z9hG4bKsxcv\n\
                 Max-Forwards: 300\nFrom: sip:two@example.com;tag=b97\nTo: sip:two@example.com\n\
                 Call-ID: scalar02.1209ajsdfij7d\nCSeq: 36893488147419103232 REGISTER\n\
                 Contact: <sip:two@example.net>;expires=280297596632815\n\
                 Expires: 10000000000000000000\nContent-Length: 0",
                b"",
                via,
            ),
            REJECT,
        ),
        case(
            "scalarlg",
            "RFC 4475 3.1.2.5 response scalar fields with overlarge values",
            msg(
                "SIP/2.0 503 Service Unavailable\nVia: SIP/2.0/UDP $VIA;branch=z9hG4bK-scalarlg\n\
                 To: <sip:user@example.com>;tag=2398ndsf\nFrom: <sip:other@example.net>;tag=3485920\n\
                 Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r\n\
                 CSeq: 1 INVITE\nRetry-After: 949302838503028349304023988\n\
                 Warning: 1812 overture \"In Progress\"\nContent-Length: 0",
                b"",
                via,
            ),
            Expect::Silence,
        ),
        case(
            "quotbal",
            "RFC 4475 3.1.2.6 unterminated quoted string in display name",
            msg(
                "INVITE sip:user@example.com SIP/2.0\nTo: \"Mr. J. User <sip:j.user@example.com>\n\
                 From: sip:caller@example.net;tag=93334\nMax-Forwards: 10\n\
                 Call-ID: quotbal.aksdj\nContact: <sip:caller@host59.example.net>\nCSeq: 8 INVITE\n\
                 Via: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u2\nContent-Type: application/sdp\n\
                 Content-Length: $CL",
                &sdp,
                via,
            ),
            REJECT,
        ),
        case(
            "ltgtruri",
            "RFC 4475 3.1.2.7 <> enclosing the Request-URI",
            msg(
                "INVITE <sip:user@example.com> SIP/2.0\nTo: sip:user@example.com\n\
                 From: sip:caller@example.net;tag=39291\nMax-Forwards: 23\nCall-ID: ltgtruri.1@192.0.2.5\n\
                 CSeq: 1 INVITE\nVia: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u3\n\
                 Contact: <sip:caller@host5.example.net>\nContent-Type: application/sdp\n\
                 Content-Length: $CL",
                &sdp,
                via,
            ),
            REJECT,
        ),
        case(
            "lwsruri",
            "RFC 4475 3.1.2.8 embedded LWS in the Request-URI",
            msg(
                "INVITE sip:user@example.com; lr SIP/2.0\nTo: sip:user@example.com;tag=3xfe-9921883-z9f\n\
                 From: sip:caller@example.net;tag=231413434\nMax-Forwards: 5\n\
                 Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423\nCSeq: 2130706432 INVITE\n\
                 Via: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw2395-u4\n\
                 Contact: <sip:caller@host1.example.net>\nContent-Type: application/sdp\n\
                 Content-Length: $CL",
                &sdp,
                via,
            ),
            REJECT,
        ),
        case(
            "lwsstart",
            "RFC 4475 3.1.2.9 multiple SP separating Request-Line elements",
            msg(
                "INVITE  sip:user@example.com  SIP/2.0\nMax-Forwards: 8\nTo: sip:user@example.com\n\
                 From: sip:caller@example.net;tag=8814\nCall-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com\n\
                 CSeq: 1893884 INVITE\nVia: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw3923-u5\n\
                 Contact: <sip:caller@host1.example.net>\nContent-Type: application/sdp\n\
                 Content-Length: $CL",
                &sdp,
                via,
            ),
            REJECT,
        ),
        case(
            "trws",
            "RFC 4475 3.1.2.10 SP characters at the end of the Request-Line",
            msg(
                "OPTIONS sip:remote-target@example.com SIP/2.0  \nVia: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u6\n\
                 Max-Forwards: 70\nTo: <sip:remote-target@example.com>\n\
                 From: <sip:local-resource@example.com>;tag=329429089\nCall-ID: trws.oicu34958239neffasdhr2345r\n\
                 Accept: application/sdp\nCSeq: 238923 OPTIONS\nContent-Length: 0",
                b"",
                via,
            ),
            REJECT,
        ),
        case(
            "escruri",
            "RFC 4475 3.1.2.11 escaped headers in the Request-URI (sent as OPTIONS)",
            msg(
                "OPTIONS sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0\n\
                 To: sip:user@example.com\nFrom: sip:caller@example.net;tag=341518\nMax-Forwards: 7\n\
                 Contact: <sip:caller@host39923.example.net>\nCall-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5\n\
                 CSeq: 149209342 OPTIONS\nVia: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u7\nContent-Length: 0",
                b"",
                via,
            ),
            Expect::Tolerate,
        ),
        case(
            "baddate",
            "RFC 4475 3.1.2.12 invalid time zone in Date (sent as OPTIONS)",
            msg(
                "OPTIONS sip:user@example.com SIP/2.0\nTo: sip:user@example.com\n\
                 From: sip:caller@example.net;tag=2234923\nMax-Forwards: 70\n\
                 Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234\nCSeq: 1392934 OPTIONS\n\
                 Via: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u8\nDate: Fri, 01 Jan 2010 16:00:00 EST\n\
                 Contact: <sip:caller@host5.example.net>\nContent-Length: 0",
                b"",
                via,
            ),
            Expect::Tolerate,
        ),
        case(
            "regbadct",
            "RFC 4475 3.1.2.13 name-addr URI with parameters not enclosed in <>",
            msg(
                "REGISTER sip:example.com SIP/2.0\nTo: sip:user@example.com\n\
                 From: sip:user@example.com;tag=998332\nMax-Forwards: 70\n\
                 Call-ID: regbadct.k345asrl3fdbv@10.0.0.1\nCSeq: 1 REGISTER\n\
                 Via: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u9\n\
                 Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E\nl: 0",
                b"",
                via,
            ),
            // A phone is no registrar: refusing the method is fine too.
            Expect::Reject { also: &[405, 501] },
        ),
        case(
            "badaspec",
            "RFC 4475 3.1.2.14 spaces within addr-spec",
            msg(
                "OPTIONS sip:user@example.org SIP/2.0\nVia: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u10\n\
                 Max-Forwards: 70\nFrom: \"Bell, Alexander\" <sip:a.g.bell@example.com>;tag=433423\n\
                 To: \"Watson, Thomas\" < sip:t.watson@example.org >\nCall-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3\n\
                 Accept: application/sdp\nCSeq: 3923239 OPTIONS\nl: 0",
                b"",
                via,
            ),
            REJECT,
        ),
        case(
            "baddn",
            "RFC 4475 3.1.2.15 non-token characters in an unquoted display name",
            msg(
                "OPTIONS sip:t.watson@example.org SIP/2.0\nVia: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u11\n\
                 Max-Forwards: 70\nFrom: Bell, Alexander <sip:a.g.bell@example.com>;tag=43\n\
                 To: Watson, Thomas <sip:t.watson@example.org>\nCall-ID: baddn.31415@c.example.com\n\
                 Accept: application/sdp\nCSeq: 3923239 OPTIONS\nl: 0",
                b"",
                via,
            ),
            REJECT,
        ),
        case(
            "badvers",
            "RFC 4475 3.1.2.16 unknown protocol version",
            msg(
                "OPTIONS sip:t.watson@example.org SIP/7.0\nVia: SIP/7.0/UDP $VIA;branch=z9hG4bKkdjuw-u12\n\
                 Max-Forwards: 70\nFrom: A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe\n\
                 To: T. Watson <sip:t.watson@example.org>\nCall-ID: badvers.31417@c.example.com\n\
                 CSeq: 1 OPTIONS\nl: 0",
                b"",
                via,
            ),
            Expect::Reject { also: &[505] },
        ),
        case(
            "mismatch01",
            "RFC 4475 3.1.2.17 start line and CSeq method mismatch",
            msg(
                "OPTIONS sip:user@example.com SIP/2.0\nTo: sip:j.user@example.com\n\
                 From: sip:caller@example.net;tag=34525\nMax-Forwards: 6\n\
                 Call-ID: mismatch01.dj0234sxdfl3\nCSeq: 8 INVITE\n\
                 Via: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u13\nl: 0",
                b"",
                via,
            ),
            REJECT,
        ),
        case(
            "mismatch02",
            "RFC 4475 3.1.2.18 unknown method with CSeq method mismatch",
            msg(
                "NEWMETHOD sip:user@example.com SIP/2.0\nTo: sip:j.user@example.com\n\
                 From: sip:caller@example.net;tag=34525\nMax-Forwards: 6\n\
                 Call-ID: mismatch02.dj0234sxdfl3\nCSeq: 8 INVITE\nContact: <sip:caller@host.example.net>\n\
                 Via: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u14\nContent-Type: application/sdp\nl: $CL",
                &sdp,
                via,
            ),
            REJECT,
        ),
        case(
            "bigcode",
            "RFC 4475 3.1.2.19 overlarge response code",
            msg(
                "SIP/2.0 4294967301 better not break the receiver\n\
                 Via: SIP/2.0/UDP $VIA;branch=z9hG4bK-bigcode\nCall-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i\n\
                 CSeq: 353494 INVITE\nFrom: <sip:user@example.com>;tag=39ansfi3\n\
                 To: <sip:user@example.edu>;tag=902jndnke3\nContent-Length: 0\nContact: <sip:user@host105.example.com>",
                b"",
                via,
            ),
            Expect::Silence,
        ),
    ]
}

/// RFC 4475 §3.1.1: valid messages, with INVITE/REGISTER turned into
/// OPTIONS (no call or binding as a side effect); unknown methods kept.
pub fn valid(via: &str) -> Vec<Case> {
    let sdp = sdp();
    let long = "very".repeat(100);
    let mut longreq_head = format!(
        "OPTIONS sip:user@example.com SIP/2.0\n\
         To: \"I have a user name of {long} long name\" <sip:user@example.com>;tag=1{long}\n\
         From: sip:amazinglylongcallername{long}@example.net;tag=12982{long}\n\
         Call-ID: longreq.one{long}\nCSeq: 3882340 OPTIONS\nMax-Forwards: 70\n\
         Via: SIP/2.0/UDP $VIA;branch=z9hG4bK{long}longbranch\n"
    );
    for i in 0..30 {
        longreq_head.push_str(&format!(
            "Via: SIP/2.0/TCP sip{i}.{long}.example.com;branch=z9hG4bK{i}{long}\n"
        ));
    }
    longreq_head.push_str(&format!(
        "Contact: <sip:amazinglylongcallername{long}@host5.example.net>\n\
         x-{long}-header: {long} value\nContent-Type: application/sdp\nl: $CL"
    ));
    let mut mpart_body = b"--7a9cbec.3a4f5\r\nContent-Type: application/sdp\r\n\r\n".to_vec();
    mpart_body.extend_from_slice(&sdp);
    mpart_body.extend_from_slice(
        b"\r\n--7a9cbec.3a4f5\r\nContent-Type: application/octet-stream\r\n\r\n",
    );
    mpart_body.extend((0u8..=255).chain((0u8..=255).rev()));
    mpart_body.extend_from_slice(b"\r\n--7a9cbec.3a4f5--\r\n");
    let mut dblreq = msg(
        "OPTIONS sip:user@example.com SIP/2.0\nTo: sip:j.user@example.com\n\
         From: sip:j.user@example.com;tag=43251j3j324\nMax-Forwards: 8\nI: dblreq.0ha0isndaksdj99sdfafnl3lk233412\n\
         Contact: sip:j.user@host.example.com\nCSeq: 8 OPTIONS\n\
         Via: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw23492-u15\nContent-Length: 0",
        b"",
        via,
    );
    dblreq.extend(msg(
        "INVITE sip:joe@example.com SIP/2.0\nt: sip:joe@example.com\nFrom: sip:caller@example.net;tag=141334\n\
         Max-Forwards: 8\nCall-ID: dblreq.0ha0isnda977644900765@192.0.2.15\nCSeq: 8 INVITE\n\
         Via: SIP/2.0/UDP $VIA;branch=z9hG4bKkdere2\nContent-Type: application/sdp\nContent-Length: $CL",
        &sdp,
        via,
    ));
    vec![
        case(
            "wsinv",
            "RFC 4475 3.1.1.1 short tortuous message (sent as OPTIONS)",
            msg(
                "OPTIONS sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\nTO :\n \
                 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\n\
                 from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\n  ;\n  tag = 98asjd8\n\
                 MaX-fOrWaRdS: 0068\nCall-ID: wsinv.ndaksdj@192.0.2.1\nContent-Length   : $CL\n\
                 cseq: 0009\n  OPTIONS\nVia  : SIP  /   2.0\n /UDP\n    $VIA;branch=390skdjuw\n\
                 s :\nNewFangledHeader:   newfangled value\n continued newfangled value\n\
                 UnknownHeaderWithUnusualValue: ;;,,;;,;\nContent-Type: application/sdp\n\
                 Route:\n <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\n\
                 v:  SIP  / 2.0  / TCP     spindle.example.com   ;\n  branch  =   z9hG4bK9ikj8  ,\n \
                 SIP  /    2.0   / UDP  192.168.255.111   ; branch=\n z9hG4bK30239\n\
                 m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\n      newvalue ;\n  \
                 secondparam ; q = 0.33",
                &sdp,
                via,
            ),
            Expect::NotBadRequest,
        ),
        case(
            "intmeth",
            "RFC 4475 3.1.1.2 wide range of valid characters (unknown method)",
            msg(
                "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\n\
                 Via: SIP/2.0/UDP $VIA;branch=z9hG4bK-.!%66*_+`'~\n\
                 To: \"BEL:\\\u{7} NUL:\\\0 DEL:\\\u{7f}\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>\n\
                 From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=%D1%80%D0%B0%D0%B1%D0%BE%D1%82%D0%B0%D1%8E%D1%89%D0%B8%D0%B9;tag=_token~1'+`*%!-.\n\
                 Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\n\
                 CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\nMax-Forwards: 255\n\
                 extensionHeader-!.%*+_`'~:\u{feff}\u{5927}\u{505c}\u{96fb}\nContent-Length: 0",
                b"",
                via,
            ),
            Expect::NotBadRequest,
        ),
        case(
            "esc01",
            "RFC 4475 3.1.1.3 valid use of % escaping (sent as OPTIONS)",
            msg(
                "OPTIONS sip:sips%3Auser%40example.com@example.net SIP/2.0\nTo: sip:%75se%72@example.com\n\
                 From: <sip:I%20have%20spaces@example.net>;tag=938\nMax-Forwards: 87\n\
                 i: esc01.239409asdfakjkn23onasd0-3234\nCSeq: 234234 OPTIONS\n\
                 Via: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u16\nC: application/sdp\n\
                 Contact:\n  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\nContent-Length: $CL",
                &sdp,
                via,
            ),
            Expect::NotBadRequest,
        ),
        case(
            "escnull",
            "RFC 4475 3.1.1.4 escaped nulls in URIs (sent as OPTIONS)",
            msg(
                "OPTIONS sip:null-%00-null@example.com SIP/2.0\nTo: sip:null-%00-null@example.com\n\
                 From: sip:null-%00-null@example.com;tag=839923423\nMax-Forwards: 70\n\
                 Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd\nCSeq: 14398234 OPTIONS\n\
                 Via: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u17\nContact: <sip:%00@host5.example.com>\n\
                 Contact: <sip:%00%00@host5.example.com>\nL: 0",
                b"",
                via,
            ),
            Expect::NotBadRequest,
        ),
        case(
            "esc02",
            "RFC 4475 3.1.1.5 % that is not an escape (unknown method)",
            msg(
                "RE%47IST%45R sip:registrar.example.com SIP/2.0\nTo: \"%Z%45\" <sip:resource@example.com>\n\
                 From: \"%Z%45\" <sip:resource@example.com>;tag=f232jadfj23\n\
                 Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf\nVia: SIP/2.0/UDP $VIA;branch=z9hG4bKasdfjnq\n\
                 CSeq: 29344 RE%47IST%45R\nMax-Forwards: 70\nContact: <sip:alias1@host1.example.com>\n\
                 C%6Fntact: <sip:alias2@host2.example.com>\nContact: <sip:alias3@host3.example.com>\nl: 0",
                b"",
                via,
            ),
            Expect::NotBadRequest,
        ),
        case(
            "lwsdisp",
            "RFC 4475 3.1.1.6 no LWS between display name and <",
            msg(
                "OPTIONS sip:user@example.com SIP/2.0\nTo: sip:user@example.com\n\
                 From: caller<sip:caller@example.com>;tag=323\nMax-Forwards: 70\n\
                 Call-ID: lwsdisp.1234abcd@funky.example.com\nCSeq: 60 OPTIONS\n\
                 Via: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u18\nl: 0",
                b"",
                via,
            ),
            Expect::NotBadRequest,
        ),
        case(
            "longreq",
            "RFC 4475 3.1.1.7 long values in header fields (sent as OPTIONS)",
            msg(&longreq_head, &sdp, via),
            Expect::NotBadRequest,
        ),
        case(
            "dblreq",
            "RFC 4475 3.1.1.8 extra trailing octets in a UDP datagram (sent as OPTIONS)",
            dblreq,
            Expect::NotBadRequest,
        ),
        case(
            "semiuri",
            "RFC 4475 3.1.1.9 semicolon-separated parameters in the user part (sent as OPTIONS)",
            msg(
                "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0\nTo: sip:j_user@example.com\n\
                 From: sip:caller@example.org;tag=33242\nMax-Forwards: 3\n\
                 Call-ID: semiuri.0ha0isndaksdj\nCSeq: 8 OPTIONS\nAccept: application/sdp, application/pkcs7-mime,\n \
                 multipart/mixed, multipart/signed,\n message/sip, message/sipfrag\n\
                 Via: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u19\nl: 0",
                b"",
                via,
            ),
            Expect::NotBadRequest,
        ),
        case(
            "transports",
            "RFC 4475 3.1.1.10 varied and unknown transport types",
            msg(
                "OPTIONS sip:user@example.com SIP/2.0\nTo: sip:user@example.com\n\
                 From: <sip:caller@example.com>;tag=323\nMax-Forwards: 70\n\
                 Call-ID: transports.kijh4akdnaqjkwendsasfdj\nAccept: application/sdp\nCSeq: 60 OPTIONS\n\
                 Via: SIP/2.0/UDP $VIA;branch=z9hG4bKkdjuw-u20\n\
                 Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf\n\
                 Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj\n\
                 Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en\n\
                 Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee\nl: 0",
                b"",
                via,
            ),
            Expect::NotBadRequest,
        ),
        case(
            "mpart01",
            "RFC 4475 3.1.1.11 multipart MIME body with binary part (sent as OPTIONS)",
            msg(
                "OPTIONS sip:j_user@pcna.example.com SIP/2.0\nTo: sip:j_user@example.com\n\
                 From: sip:caller@example.com;tag=1419352\nMax-Forwards: 70\n\
                 Call-ID: mpart01.9843f84ihd\nCSeq: 8 OPTIONS\nVia: SIP/2.0/UDP $VIA;branch=z9hG4bKmp01\n\
                 MIME-Version: 1.0\nContent-Type: multipart/mixed;boundary=7a9cbec.3a4f5\nContent-Length: $CL",
                &mpart_body,
                via,
            ),
            Expect::NotBadRequest,
        ),
        case(
            "unreason",
            "RFC 4475 3.1.1.12 unusual reason phrase (a stray response)",
            msg(
                "SIP/2.0 200 = 2**3 * 5**2 \u{43d}\u{43e} \u{441}\u{442}\u{43e} \u{434}\u{435}\u{432}\u{44f}\u{43d}\u{43e}\u{441}\u{442}\u{43e} \u{434}\u{435}\u{432}\u{44f}\u{442}\u{44c} - \u{43f}\u{440}\u{43e}\u{441}\u{442}\u{43e}\u{435}\n\
                 Via: SIP/2.0/UDP $VIA;branch=z9hG4bK-unreason\nCall-ID: unreason.1234ksdfak3j2erwedfsASdf\n\
                 CSeq: 35 INVITE\nFrom: sip:user@example.com;tag=11141343\nTo: sip:user@example.edu;tag=2229\n\
                 Content-Type: application/sdp\nContent-Length: $CL\nContact: <sip:user@host198.example.com>",
                &sdp,
                via,
            ),
            Expect::Silence,
        ),
        case(
            "noreason",
            "RFC 4475 3.1.1.13 empty reason phrase (a stray response)",
            msg(
                "SIP/2.0 100 \nVia: SIP/2.0/UDP $VIA;branch=z9hG4bK-noreason\n\
                 Call-ID: noreason.asndj203insdf99223ndf\nCSeq: 35 INVITE\n\
                 From: <sip:user@example.com>;tag=39ansfi3\nTo: <sip:user@example.edu>;tag=902jndnke3\n\
                 Content-Length: 0\nContact: <sip:user@host105.example.com>",
                b"",
                via,
            ),
            Expect::Silence,
        ),
    ]
}

/// A small deterministic generator for garbage bytes.
fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Truncated, garbage and oversized datagrams of our own.
pub fn garbage(via: &str) -> Vec<Case> {
    let full = options(via, "trunc.1", 1);
    let text = String::from_utf8_lossy(&full).into_owned();
    let cut_in_header = text.find("From:").unwrap_or(40) + 9;
    let cut_before_blank = full.len() - 2;
    let mut seed = 0x5eed_cafe_f00d_u64;
    let random: Vec<u8> = (0..1400)
        .map(|_| (xorshift(&mut seed) & 0xff) as u8)
        .collect();
    let mut random_after_line = b"OPTIONS sip:softline@127.0.0.1 SIP/2.0\r\n".to_vec();
    random_after_line.extend((0..1000).map(|_| (xorshift(&mut seed) & 0xff) as u8));
    let huge_header = {
        let head = format!(
            "OPTIONS sip:softline@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP $VIA;branch=z9hG4bKhuge;rport\n\
             Max-Forwards: 70\nFrom: <sip:tester@127.0.0.1>;tag=h1\nTo: <sip:softline@127.0.0.1>\n\
             Call-ID: huge.header\nCSeq: 1 OPTIONS\nX-Huge: {}\nContent-Length: 0",
            "x".repeat(60_000)
        );
        msg(&head, b"", via)
    };
    let many_headers = {
        let mut head = "OPTIONS sip:softline@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP $VIA;branch=z9hG4bKmany;rport\n\
                        Max-Forwards: 70\nFrom: <sip:tester@127.0.0.1>;tag=m1\nTo: <sip:softline@127.0.0.1>\n\
                        Call-ID: many.headers\nCSeq: 1 OPTIONS\n"
            .to_owned();
        for i in 0..5000 {
            head.push_str(&format!("X-{i}: a\n"));
        }
        head.push_str("Content-Length: 0");
        msg(&head, b"", via)
    };
    let many_folds = {
        let mut head = "OPTIONS sip:softline@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP $VIA;branch=z9hG4bKfold;rport\n\
                        Max-Forwards: 70\nFrom: <sip:tester@127.0.0.1>;tag=f1\nTo: <sip:softline@127.0.0.1>\n\
                        Call-ID: many.folds\nCSeq: 1 OPTIONS\nSubject: start"
            .to_owned();
        for _ in 0..3000 {
            head.push_str("\n  more");
        }
        head.push_str("\nContent-Length: 0");
        msg(&head, b"", via)
    };
    let with_fields = |call_id: &str, replace: (&str, &str)| {
        let text = String::from_utf8_lossy(&options(via, call_id, 1)).replace(replace.0, replace.1);
        text.into_bytes()
    };
    vec![
        case(
            "keepalive",
            "RFC 5626 CRLFCRLF keep-alive",
            b"\r\n\r\n".to_vec(),
            Expect::Silence,
        ),
        case(
            "empty-ish",
            "a single CRLF",
            b"\r\n".to_vec(),
            Expect::Silence,
        ),
        case(
            "truncated-start-line",
            "truncated datagram",
            full.get(..20).unwrap_or_default().to_vec(),
            REJECT,
        ),
        case(
            "truncated-in-header",
            "truncated datagram",
            full.get(..cut_in_header).unwrap_or_default().to_vec(),
            REJECT,
        ),
        case(
            "truncated-no-blank-line",
            "truncated datagram",
            full.get(..cut_before_blank).unwrap_or_default().to_vec(),
            // Everything needed to answer is there; accepting it is lenient but not wrong.
            Expect::Reject { also: &[200] },
        ),
        case(
            "start-line-only",
            "no mandatory headers",
            b"OPTIONS sip:softline@127.0.0.1 SIP/2.0\r\n\r\n".to_vec(),
            REJECT,
        ),
        case(
            "missing-call-id",
            "no Call-ID",
            String::from_utf8_lossy(&options(via, "gone", 1))
                .replace("Call-ID: gone\r\n", "")
                .into_bytes(),
            REJECT,
        ),
        case(
            "missing-version",
            "request line without SIP version",
            with_fields("noversion", (" SIP/2.0\r\nVia", "\r\nVia")),
            REJECT,
        ),
        case(
            "header-without-colon",
            "header line without a colon",
            with_fields("nocolon", ("Max-Forwards: 70", "Max-Forwards 70")),
            REJECT,
        ),
        case(
            "cseq-not-a-number",
            "CSeq without a number",
            with_fields("cseqnan", ("CSeq: 1 OPTIONS", "CSeq: one OPTIONS")),
            REJECT,
        ),
        case(
            "content-length-overflow",
            "Content-Length beyond u64",
            with_fields(
                "cloverflow",
                (
                    "Content-Length: 0",
                    "Content-Length: 99999999999999999999999999",
                ),
            ),
            REJECT,
        ),
        case(
            "via-port-out-of-range",
            "Via port 99999",
            String::from_utf8_lossy(&options("127.0.0.1:99999", "viaport", 1))
                .into_owned()
                .into_bytes(),
            REJECT,
        ),
        case(
            "nul-in-start-line",
            "NUL byte in the request line",
            with_fields("nul", ("OPTIONS sip:softline", "OPTIONS sip:soft\0line")),
            REJECT,
        ),
        case(
            "invalid-utf8-header",
            "non-UTF-8 bytes in a header value",
            {
                let mut b = options(via, "badutf8", 1);
                let at = b.len() - 2;
                b.splice(at..at, b"X-Bytes: \xff\xfe\xc0\x80\r\n".iter().copied());
                b
            },
            Expect::Tolerate,
        ),
        case("random-1400", "random bytes", random, REJECT),
        case(
            "random-after-start-line",
            "random bytes",
            random_after_line,
            REJECT,
        ),
        case("zeros", "512 NUL bytes", vec![0u8; 512], REJECT),
        case(
            "all-A-65507",
            "largest UDP datagram of 'A'",
            vec![b'A'; 65_507],
            REJECT,
        ),
        case(
            "huge-header",
            "60 kB header value",
            huge_header,
            Expect::Reject {
                also: &[200, 413, 513],
            },
        ),
        case(
            "many-headers",
            "5000 header lines",
            many_headers,
            Expect::Tolerate,
        ),
        case(
            "many-folds",
            "3000 folded continuation lines",
            many_folds,
            Expect::Tolerate,
        ),
    ]
}
