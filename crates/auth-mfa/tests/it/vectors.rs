use auth_mfa::{TotpAlgorithm, TotpCode, TotpSettings};

fn settings(algorithm: TotpAlgorithm, digits: u8) -> TotpSettings {
    TotpSettings {
        algorithm,
        digits,
        ..TotpSettings::default()
    }
}

/// RFC 6238 Appendix B: every row of the table (8 digits, 30 s steps, T0 = 0).
#[test]
fn rfc6238_appendix_b() {
    let seeds = [
        (TotpAlgorithm::Sha1, b"12345678901234567890".to_vec()),
        (
            TotpAlgorithm::Sha256,
            b"12345678901234567890123456789012".to_vec(),
        ),
        (
            TotpAlgorithm::Sha512,
            b"1234567890123456789012345678901234567890123456789012345678901234".to_vec(),
        ),
    ];
    let table: [(u64, [&str; 3]); 6] = [
        (59, ["94287082", "46119246", "90693936"]),
        (1_111_111_109, ["07081804", "68084774", "25091201"]),
        (1_111_111_111, ["14050471", "67062674", "99943326"]),
        (1_234_567_890, ["89005924", "91819424", "93441116"]),
        (2_000_000_000, ["69279037", "90698825", "38618901"]),
        (20_000_000_000, ["65353130", "77737706", "47863826"]),
    ];
    let mut checked = 0;
    for (i, (algorithm, seed)) in seeds.iter().enumerate() {
        let totp = TotpCode::new(seed, settings(*algorithm, 8)).unwrap();
        for (time, codes) in &table {
            assert_eq!(totp.generate(*time), codes[i], "{algorithm:?} at {time}");
            assert_eq!(totp.matching_step(codes[i], *time), Some(time / 30));
            checked += 1;
        }
    }
    assert_eq!(checked, 18);
    println!("RFC 6238 Appendix B: {checked}/18 vectors reproduced and verified");
}

/// Codes computed by pyotp (tests/vectors/generate.py): 3 secrets x 4 algorithm/digit
/// combinations x 8 instants.
#[test]
fn pyotp_vectors() {
    let data: serde_json::Value =
        serde_json::from_str(include_str!("../vectors/pyotp.json")).unwrap();
    let vectors = data["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 96);
    for v in vectors {
        let algorithm = TotpAlgorithm::parse(v["algorithm"].as_str().unwrap()).unwrap();
        let digits = u8::try_from(v["digits"].as_u64().unwrap()).unwrap();
        let totp =
            TotpCode::from_base32(v["secret"].as_str().unwrap(), settings(algorithm, digits))
                .unwrap();
        let time = v["time"].as_u64().unwrap();
        let code = v["code"].as_str().unwrap();
        assert_eq!(totp.generate(time), code, "{v}");
        assert!(totp.matching_step(code, time).is_some());
    }
    println!(
        "pyotp {}: {} vectors reproduced",
        data["pyotp"],
        vectors.len()
    );
}

#[test]
fn skew_accepts_one_step_either_side_by_default() {
    let totp = TotpCode::new(b"12345678901234567890", TotpSettings::default()).unwrap();
    let now = 1_800_000_000u64;
    let step = now / 30;
    assert_eq!(
        totp.matching_step(&totp.generate(now - 30), now),
        Some(step - 1)
    );
    assert_eq!(
        totp.matching_step(&totp.generate(now + 30), now),
        Some(step + 1)
    );
    assert_eq!(totp.matching_step(&totp.generate(now - 60), now), None);
    assert_eq!(totp.matching_step(&totp.generate(now + 60), now), None);

    let strict = TotpSettings {
        skew: 0,
        ..TotpSettings::default()
    };
    let strict = TotpCode::new(b"12345678901234567890", strict).unwrap();
    assert_eq!(strict.matching_step(&strict.generate(now - 30), now), None);
    // Formatting is forgiven; wrong lengths and non-digits are not.
    let code = totp.generate(now);
    assert!(
        totp.matching_step(&format!("{} {}", &code[..3], &code[3..]), now)
            .is_some()
    );
    assert!(totp.matching_step(&code[..5], now).is_none());
    assert!(totp.matching_step("abcdef", now).is_none());
}

#[test]
fn short_secrets_and_bad_settings_are_refused() {
    assert!(TotpCode::new(&[1u8; 10], TotpSettings::default()).is_err());
    let s = TotpSettings {
        digits: 9,
        ..TotpSettings::default()
    };
    assert!(TotpCode::new(&[1u8; 20], s).is_err());
    let s = TotpSettings {
        step_secs: 0,
        ..TotpSettings::default()
    };
    assert!(s.validate().is_err());
}
