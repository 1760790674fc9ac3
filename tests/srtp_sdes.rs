//! SDES (RFC 4568) through offer/answer: the three policies against each
//! other, crypto-line selection, answer checking, and packets flowing both
//! ways with the negotiated keys.

use softline::rtp::srtp::{SrtpKey, SrtpSession, SrtpSuite};
use softline::sdp::{
    AnswerError, LocalMedia, NegotiatedMedia, SessionDescription, SrtpPolicy, answer_offer,
    apply_answer, create_offer,
};

fn sdp(text: &str) -> SessionDescription {
    SessionDescription::parse(text.replace('\n', "\r\n").as_bytes()).unwrap()
}

fn keys(seed: u64, suites: &[SrtpSuite]) -> Vec<SrtpKey> {
    let mut n = seed;
    let mut rng = move || {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        n
    };
    suites
        .iter()
        .map(|s| SrtpKey::generate(*s, &mut rng))
        .collect()
}

fn local(ip: &str, port: u16, srtp: SrtpPolicy, seed: u64) -> LocalMedia {
    LocalMedia {
        srtp,
        srtp_keys: keys(seed, &SrtpSuite::ALL),
        ..LocalMedia::g711(ip.parse().unwrap(), port)
    }
}

/// Offer from A with `a`, answer from B with `b`, applied at A.
fn negotiate(
    a: SrtpPolicy,
    b: SrtpPolicy,
) -> Result<(String, String, NegotiatedMedia, NegotiatedMedia), AnswerError> {
    let la = local("192.0.2.1", 4000, a, 1);
    let lb = local("192.0.2.2", 5000, b, 2);
    let offer = create_offer(&la, 1, 1);
    let (answer, nb) = answer_offer(&offer, &lb, 2, 1)?;
    let na = apply_answer(&offer, &answer)?;
    Ok((offer.to_string(), answer.to_string(), na, nb))
}

/// The answer's profile and whether SRTP is on, or the error.
type Expected = Result<(&'static str, bool), AnswerError>;

#[test]
fn policy_table() {
    use SrtpPolicy::*;
    // (offerer, answerer) → Ok(answer profile, secured) or the error.
    let table: [(SrtpPolicy, SrtpPolicy, Expected); 9] = [
        (Off, Off, Ok(("RTP/AVP", false))),
        (Off, Optional, Ok(("RTP/AVP", false))),
        (Off, Mandatory, Err(AnswerError::NoAcceptableCrypto)),
        (Optional, Off, Ok(("RTP/AVP", false))),
        (Optional, Optional, Ok(("RTP/AVP", true))),
        (Optional, Mandatory, Ok(("RTP/AVP", true))),
        (
            Mandatory,
            Off,
            Err(AnswerError::UnsupportedProfile("RTP/SAVP".into())),
        ),
        (Mandatory, Optional, Ok(("RTP/SAVP", true))),
        (Mandatory, Mandatory, Ok(("RTP/SAVP", true))),
    ];
    for (a, b, expected) in table {
        let got = negotiate(a, b);
        match expected {
            Err(e) => assert_eq!(got.unwrap_err(), e, "{a:?} × {b:?}"),
            Ok((profile, secured)) => {
                let (offer, answer, na, nb) = got.unwrap();
                assert!(
                    answer.contains(&format!("m=audio 5000 {profile} 0 101\r\n")),
                    "{a:?} × {b:?}: {answer}"
                );
                let crypto_lines = answer.matches("a=crypto:").count();
                assert_eq!(crypto_lines, usize::from(secured), "{a:?} × {b:?}");
                assert_eq!(na.srtp.is_some(), secured, "{a:?} × {b:?}");
                assert_eq!(nb.srtp.is_some(), secured, "{a:?} × {b:?}");
                if a == Off {
                    assert!(!offer.contains("a=crypto"));
                }
                if let (Some(a_keys), Some(b_keys)) = (&na.srtp, &nb.srtp) {
                    let ((a_ours, a_theirs), (b_ours, b_theirs)) = (&**a_keys, &**b_keys);
                    // The first offered suite, each side's own key.
                    assert_eq!(a_ours.suite, SrtpSuite::AesCm128HmacSha1_80);
                    assert_eq!(a_ours, b_theirs);
                    assert_eq!(b_ours, a_theirs);
                    assert_ne!(a_ours.key_salt, b_ours.key_salt);
                    assert!(answer.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
                }
            }
        }
    }
}

#[test]
fn mandatory_offer_text_lists_suites_in_preference_order() {
    let mut l = local("192.0.2.1", 4002, SrtpPolicy::Mandatory, 7);
    l.srtp_keys.reverse(); // order of the caller's list does not matter
    let text = create_offer(&l, 9, 9).to_string();
    assert!(text.contains("m=audio 4002 RTP/SAVP 0 8 101\r\n"), "{text}");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("a=crypto:"))
        .map(|l| l.split(" inline:").next().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80",
            "a=crypto:2 AES_CM_128_HMAC_SHA1_32",
            "a=crypto:3 AEAD_AES_128_GCM",
            "a=crypto:4 AEAD_AES_256_GCM",
        ]
    );
    // Keys are 30, 30, 28 and 44 bytes: 40, 40, 40 and 60 base64 characters.
    let lens: Vec<usize> = text
        .lines()
        .filter_map(|l| l.split("inline:").nth(1))
        .map(str::len)
        .collect();
    assert_eq!(lens, [40, 40, 40, 60]);
    // Traces hide them.
    let red = softline::sip::redact::redact_sip(text.as_bytes());
    assert_eq!(red.matches("inline:<redacted>").count(), 4, "{red}");
    // Optional: same crypto, plain profile.
    l.srtp = SrtpPolicy::Optional;
    let text = create_offer(&l, 9, 9).to_string();
    assert!(text.contains("m=audio 4002 RTP/AVP 0 8 101\r\n"));
    assert_eq!(text.matches("a=crypto:").count(), 4);
}

const HEAD: &str = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n";
const K30: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

#[test]
fn answerer_takes_first_usable_line_with_its_tag() {
    let offer = sdp(&format!(
        "{HEAD}m=audio 4000 RTP/SAVP 0\n\
         a=crypto:5 F8_128_HMAC_SHA1_80 inline:{K30}\n\
         a=crypto:6 AES_CM_128_HMAC_SHA1_80 inline:AAAA\n\
         a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{K30} UNENCRYPTED_SRTP\n\
         a=crypto:8 AES_CM_128_HMAC_SHA1_32 inline:{K30}|2^20|1:1 WSH=128\n\
         a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:{K30}\n"
    ));
    let me = local("192.0.2.2", 5000, SrtpPolicy::Optional, 3);
    let (answer, n) = answer_offer(&offer, &me, 1, 1).unwrap();
    let text = answer.to_string();
    let ours = &me.srtp_keys[1]; // AES_CM_128_HMAC_SHA1_32
    assert!(
        text.contains(&format!(
            "a=crypto:8 AES_CM_128_HMAC_SHA1_32 inline:{}\r\n",
            ours.inline()
        )),
        "{text}"
    );
    let (mine, theirs) = *n.srtp.unwrap();
    assert_eq!(&mine, ours);
    assert_eq!(theirs.suite, SrtpSuite::AesCm128HmacSha1_32);
    assert_eq!(theirs.key_salt, (0u8..30).collect::<Vec<_>>());
    assert_eq!(theirs.mki.map(|m| (m.value, m.len)), Some((1, 1)));

    // Without a key for _32 the answerer falls through to tag 9.
    let mut only80 = me.clone();
    only80
        .srtp_keys
        .retain(|k| k.suite == SrtpSuite::AesCm128HmacSha1_80);
    let (answer, _) = answer_offer(&offer, &only80, 1, 1).unwrap();
    assert!(
        answer
            .to_string()
            .contains("a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:")
    );

    // Nothing usable on SAVP → refused; Off refuses SAVP outright.
    let only_bad = sdp(&format!(
        "{HEAD}m=audio 4000 RTP/SAVP 0\na=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{K30} KDR=3\n"
    ));
    assert_eq!(
        answer_offer(&only_bad, &me, 1, 1).unwrap_err(),
        AnswerError::NoAcceptableCrypto
    );
    let off = local("192.0.2.2", 5000, SrtpPolicy::Off, 3);
    assert_eq!(
        answer_offer(&offer, &off, 1, 1).unwrap_err(),
        AnswerError::UnsupportedProfile("RTP/SAVP".into())
    );
    // Best-effort SDES on AVP we cannot use → plain RTP with Optional.
    let avp = sdp(&format!(
        "{HEAD}m=audio 4000 RTP/AVP 0\na=crypto:1 F8_128_HMAC_SHA1_80 inline:{K30}\n"
    ));
    let (answer, n) = answer_offer(&avp, &me, 1, 1).unwrap();
    assert!(!answer.to_string().contains("a=crypto"));
    assert_eq!(n.srtp, None);
}

#[test]
fn answers_that_do_not_fit_the_offer_are_refused() {
    let la = local("192.0.2.1", 4000, SrtpPolicy::Mandatory, 1);
    let offer = create_offer(&la, 1, 1);
    let ans = |crypto: &str| sdp(&format!("{HEAD}m=audio 5000 RTP/SAVP 0\n{crypto}"));
    let bad = |crypto: &str| apply_answer(&offer, &ans(crypto)).unwrap_err();
    assert_eq!(
        bad(&format!(
            "a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{K30}\n"
        ))
        .to_string(),
        "unusable a=crypto in the answer: tag 7 was not offered"
    );
    assert_eq!(
        bad(&format!(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{K30}\n"
        ))
        .to_string(),
        "unusable a=crypto in the answer: tag 1 is AES_CM_128_HMAC_SHA1_32 in the answer but AES_CM_128_HMAC_SHA1_80 in the offer"
    );
    assert_eq!(
        bad(&format!(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K30}\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{K30}\n"
        ))
        .to_string(),
        "unusable a=crypto in the answer: 2 a=crypto lines, one expected"
    );
    assert_eq!(
        bad("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\n").to_string(),
        "unusable a=crypto in the answer: `1 AES_CM_128_HMAC_SHA1_80` cannot be parsed"
    );
    assert_eq!(bad(""), AnswerError::NoAcceptableCrypto);
    let good = apply_answer(
        &offer,
        &ans(&format!(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K30}|2^31\n"
        )),
    )
    .unwrap();
    let (ours, theirs) = *good.srtp.unwrap();
    assert_eq!(ours, la.srtp_keys[0]);
    assert_eq!(theirs.key_salt, (0u8..30).collect::<Vec<_>>());
    // An answer with crypto to an offer without it.
    let plain = create_offer(&local("192.0.2.1", 4000, SrtpPolicy::Off, 1), 1, 1);
    let a = sdp(&format!(
        "{HEAD}m=audio 5000 RTP/AVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{K30}\n"
    ));
    assert_eq!(
        apply_answer(&plain, &a).unwrap_err().to_string(),
        "unusable a=crypto in the answer: we offered no a=crypto"
    );
}

#[test]
fn negotiated_keys_carry_media_both_ways() {
    for (a, b) in [
        (SrtpPolicy::Mandatory, SrtpPolicy::Mandatory),
        (SrtpPolicy::Optional, SrtpPolicy::Optional),
    ] {
        let (_, _, na, nb) = negotiate(a, b).unwrap();
        let (ao, at) = *na.srtp.unwrap();
        let (bo, bt) = *nb.srtp.unwrap();
        let mut sa = SrtpSession::new(&ao, &at).unwrap();
        let mut sb = SrtpSession::new(&bo, &bt).unwrap();
        let mut rtp = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 42];
        rtp.extend(std::iter::repeat_n(0xd5u8, 160)); // PCMA silence
        let (mut wire, mut back) = (Vec::new(), Vec::new());
        sa.protect_rtp(&rtp, &mut wire).unwrap();
        assert_eq!(wire.len(), 172 + 10);
        sb.unprotect_rtp(&wire, &mut back).unwrap();
        assert_eq!(back, rtp);
        sb.protect_rtp(&rtp, &mut wire).unwrap();
        sa.unprotect_rtp(&wire, &mut back).unwrap();
        assert_eq!(back, rtp);
        // A's own packet looped back is not accepted as B's.
        sa.protect_rtp(&rtp, &mut wire).unwrap();
        assert!(sa.unprotect_rtp(&wire, &mut back).is_err());
    }
}
