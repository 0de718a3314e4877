use std::time::Duration;

use auth_mfa::{FactorUsed, LoginOutcome, MemoryMfaStore, MfaConfig, MfaStore, SecretCipher};
use auth_service::{AuthEventKind, Error, LoginOptions};

use crate::common::{PASSWORD, Stack, T0, cipher, stack, stack_with};

async fn enrolled(s: &Stack, email: &str) -> (auth_service::User, Vec<String>) {
    let user = s.verified_user(email).await;
    s.mfa.begin_enrollment(&user).await.unwrap();
    let app = s.mfa.authenticator(&user.id).await.unwrap();
    let codes = s
        .mfa
        .confirm_enrollment(&user.id, &app.generate(s.now()))
        .await
        .unwrap();
    (user, codes.expose())
}

async fn challenge(s: &Stack, email: &str) -> String {
    match s
        .mfa
        .login(&s.auth, email, PASSWORD, LoginOptions::new())
        .await
        .unwrap()
    {
        LoginOutcome::Challenge(c) => c.token.expose_secret().to_owned(),
        LoginOutcome::Session(_) => panic!("expected a challenge"),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn login_with_a_second_factor_and_replay() {
    let s = stack();
    let (user, _) = enrolled(&s, "ana@example.com").await;
    assert!(s.kinds().contains(&AuthEventKind::MfaEnabled));

    // The plain login refuses to issue tokens on the password alone.
    assert!(matches!(
        s.auth.login("ana@example.com", PASSWORD).await,
        Err(Error::MfaRequired)
    ));

    // The confirmation's code (same step) cannot be used to log in.
    let app = s.mfa.authenticator(&user.id).await.unwrap();
    let token = challenge(&s, "ana@example.com").await;
    let same_step = app.generate(s.now());
    assert!(matches!(
        s.mfa
            .complete_login(&s.auth, &token, &same_step, LoginOptions::new())
            .await,
        Err(Error::InvalidCredentials)
    ));

    s.advance(30);
    let code = app.generate(s.now());
    let session = s
        .mfa
        .complete_login(&s.auth, &token, &code, LoginOptions::new())
        .await
        .unwrap();
    assert_eq!(
        s.auth
            .authenticate(session.access_token())
            .await
            .unwrap()
            .id,
        user.id
    );
    // The challenge is spent.
    assert!(matches!(
        s.mfa
            .complete_login(&s.auth, &token, &code, LoginOptions::new())
            .await,
        Err(Error::TokenInvalid)
    ));
    // The same code on a new challenge is a replay, and so is the previous step's code.
    let again = challenge(&s, "ana@example.com").await;
    for old in [code.clone(), app.generate(s.now() - 30)] {
        assert!(matches!(
            s.mfa
                .complete_login(&s.auth, &again, &old, LoginOptions::new())
                .await,
            Err(Error::InvalidCredentials)
        ));
    }
    println!("replayed TOTP code refused with InvalidCredentials (401 over HTTP)");
    // The next step's code works.
    s.advance(30);
    let next = app.generate(s.now());
    assert!(
        s.mfa
            .complete_login(&s.auth, &again, &next, LoginOptions::new())
            .await
            .is_ok()
    );
    assert!(s.kinds().contains(&AuthEventKind::MfaFailed));
}

#[tokio::test]
async fn users_without_a_factor_log_in_directly() {
    let s = stack();
    s.auth.register("bo@example.com", PASSWORD).await.unwrap();
    let outcome = s
        .mfa
        .login(&s.auth, "bo@example.com", PASSWORD, LoginOptions::new())
        .await
        .unwrap();
    assert!(matches!(outcome, LoginOutcome::Session(_)));
    assert!(s.auth.login("bo@example.com", PASSWORD).await.is_ok());
    // A wrong password is the usual failure, never a challenge.
    assert!(matches!(
        s.mfa
            .login(&s.auth, "bo@example.com", "wrong", LoginOptions::new())
            .await,
        Err(Error::InvalidCredentials)
    ));
}

#[tokio::test]
async fn enrolment_is_pending_until_confirmed() {
    let s = stack();
    let user = s.verified_user("cy@example.com").await;
    let enrollment = s.mfa.begin_enrollment(&user).await.unwrap();
    assert_eq!(enrollment.secret_base32().expose_secret().len(), 32); // 160 bits
    assert!(!format!("{enrollment:?}").contains(enrollment.secret_base32().expose_secret()));
    let status = s.mfa.status(&user.id).await.unwrap();
    assert!(status.pending && !status.enabled);
    // Pending is not a factor: login still works on the password.
    assert!(s.auth.login("cy@example.com", PASSWORD).await.is_ok());
    assert!(matches!(
        s.mfa.confirm_enrollment(&user.id, "000000").await,
        Err(Error::InvalidCredentials)
    ));
    // Restarting replaces the pending secret: the first one's codes stop working.
    let first = s.mfa.authenticator(&user.id).await.unwrap();
    s.mfa.begin_enrollment(&user).await.unwrap();
    let second = s.mfa.authenticator(&user.id).await.unwrap();
    assert_ne!(first.generate(s.now()), second.generate(s.now()));
    s.mfa
        .confirm_enrollment(&user.id, &second.generate(s.now()))
        .await
        .unwrap();
    let status = s.mfa.status(&user.id).await.unwrap();
    assert!(status.enabled && !status.pending);
    assert_eq!(status.recovery_codes_left, 10);
    // Enrolling again while on is refused.
    assert!(matches!(
        s.mfa.begin_enrollment(&user).await,
        Err(Error::Validation(_))
    ));
}

#[tokio::test]
async fn enrolment_needs_a_verified_email() {
    let s = stack();
    let user = s.auth.register("eli@example.com", PASSWORD).await.unwrap();
    let err = s.mfa.begin_enrollment(&user).await.unwrap_err();
    let Error::Validation(errors) = err else {
        panic!("expected a validation error, got {err:?}")
    };
    assert_eq!(errors.errors()[0].code, "email_not_verified");
    assert!(!s.mfa.status(&user.id).await.unwrap().pending);
    // Once the address is proven, enrolment works.
    s.auth
        .prove_address(&user.id, auth_service::AddressProof::InSession)
        .await
        .unwrap();
    let user = s.auth.find_user(&user.id).await.unwrap().unwrap();
    assert!(s.mfa.begin_enrollment(&user).await.is_ok());
}

#[tokio::test]
async fn otpauth_uri_and_qr_codes() {
    let s = stack();
    let user = s.verified_user("alice+mfa@example.com").await;
    let enrollment = s.mfa.begin_enrollment(&user).await.unwrap();
    let uri = enrollment.otpauth_uri().expose_secret();
    // The label and issuer are escaped exactly as pyotp escapes them.
    let data: serde_json::Value =
        serde_json::from_str(include_str!("../vectors/pyotp.json")).unwrap();
    let pyotp = data["uri_example"].as_str().unwrap();
    let label = |u: &str| u.split('?').next().unwrap().to_owned();
    assert_eq!(label(uri), label(pyotp));
    assert!(uri.contains("issuer=Acme%20%26%20Co"));
    assert!(uri.contains(&format!(
        "secret={}",
        enrollment.secret_base32().expose_secret()
    )));

    let svg = enrollment.qr_svg().unwrap();
    assert!(svg.starts_with("<?xml") && svg.contains("<svg") && svg.contains("<path"));
    let png = enrollment.qr_png().unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    assert_eq!(info.width, info.height);
    assert!(info.width >= 200, "{}", info.width);
}

#[tokio::test]
async fn recovery_codes_are_single_use_and_regenerate() {
    let s = stack();
    let (user, codes) = enrolled(&s, "dee@example.com").await;
    assert_eq!(codes.len(), 10);
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 19 && c.matches('-').count() == 3)
    );

    let token = challenge(&s, "dee@example.com").await;
    // Case and dashes do not matter.
    let typed = codes[0].to_lowercase().replace('-', " ");
    s.mfa
        .complete_login(&s.auth, &token, &typed, LoginOptions::new())
        .await
        .unwrap();
    assert!(s.events.events().iter().any(|e| matches!(
        e,
        auth_service::AuthEvent::RecoveryCodeUsed { remaining: 9, .. }
    )));
    assert!(matches!(
        s.mfa.verify(&user.id, &codes[0]).await,
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(
        s.mfa.verify(&user.id, &codes[1]).await.unwrap(),
        FactorUsed::RecoveryCode
    );

    let fresh = s
        .mfa
        .regenerate_recovery_codes(&user.id, &codes[2])
        .await
        .unwrap()
        .expose();
    assert!(s.kinds().contains(&AuthEventKind::RecoveryCodesRegenerated));
    assert!(s.mfa.verify(&user.id, &codes[3]).await.is_err());
    assert_eq!(
        s.mfa.status(&user.id).await.unwrap().recovery_codes_left,
        10
    );

    // Disabling needs a code; a recovery code is enough, and the codes go too.
    assert!(s.mfa.disable(&user.id, "123456").await.is_err());
    s.mfa.disable(&user.id, &fresh[0]).await.unwrap();
    assert!(s.kinds().contains(&AuthEventKind::MfaDisabled));
    let status = s.mfa.status(&user.id).await.unwrap();
    assert!(!status.enabled && status.recovery_codes_left == 0);
    assert!(s.auth.login("dee@example.com", PASSWORD).await.is_ok());
}

#[tokio::test]
async fn challenges_expire_and_allow_few_attempts() {
    let s = stack();
    let (user, _) = enrolled(&s, "eli@example.com").await;
    let app = s.mfa.authenticator(&user.id).await.unwrap();
    s.advance(30);

    let token = challenge(&s, "eli@example.com").await;
    s.advance(301);
    let code = app.generate(s.now());
    assert!(matches!(
        s.mfa
            .complete_login(&s.auth, &token, &code, LoginOptions::new())
            .await,
        Err(Error::TokenInvalid)
    ));
    assert_eq!(s.mfa.cleanup_expired().await.unwrap(), 1);

    let token = challenge(&s, "eli@example.com").await;
    for _ in 0..5 {
        assert!(matches!(
            s.mfa
                .complete_login(&s.auth, &token, "000000", LoginOptions::new())
                .await,
            Err(Error::InvalidCredentials)
        ));
    }
    // Exhausted: even the right code is refused now.
    assert!(matches!(
        s.mfa
            .complete_login(&s.auth, &token, &code, LoginOptions::new())
            .await,
        Err(Error::TokenInvalid)
    ));
    assert!(matches!(
        s.mfa
            .complete_login(&s.auth, "forged", &code, LoginOptions::new())
            .await,
        Err(Error::TokenInvalid)
    ));
    assert!(matches!(
        s.mfa
            .complete_login(&s.auth, &"x".repeat(10_000), &code, LoginOptions::new())
            .await,
        Err(Error::TokenInvalid)
    ));
}

#[tokio::test]
async fn repeated_failures_lock_the_factor_then_unlock() {
    let s = stack();
    let (user, _) = enrolled(&s, "fin@example.com").await;
    let app = s.mfa.authenticator(&user.id).await.unwrap();
    // New challenges do not reset the count: 10 failures over 2 challenges lock.
    for _ in 0..2 {
        let token = challenge(&s, "fin@example.com").await;
        for _ in 0..5 {
            let _ = s
                .mfa
                .complete_login(&s.auth, &token, "000000", LoginOptions::new())
                .await;
        }
    }
    assert!(s.kinds().contains(&AuthEventKind::AccountLocked));
    s.advance(30);
    let right = app.generate(s.now());
    let locked = s.mfa.verify(&user.id, &right).await;
    let Err(Error::RateLimited { retry_after }) = locked else {
        panic!("{locked:?}")
    };
    assert!(retry_after <= Duration::from_secs(900) && retry_after > Duration::from_secs(800));
    // The refusal is the service's throttle's: the same event every other throttle emits, so
    // it reaches the audit log.
    assert!(s.kinds().contains(&AuthEventKind::RateLimitExceeded));
    // The lockout also stops new challenges.
    assert!(matches!(
        s.mfa
            .login(&s.auth, "fin@example.com", PASSWORD, LoginOptions::new())
            .await,
        Err(Error::RateLimited { .. })
    ));
    s.advance(901);
    let code = app.generate(s.now());
    assert_eq!(
        s.mfa.verify(&user.id, &code).await.unwrap(),
        FactorUsed::Totp
    );
}

#[tokio::test]
async fn secrets_are_sealed_and_keys_rotate() {
    let store = MemoryMfaStore::new();
    let s = stack_with(store.clone(), cipher(), MfaConfig::new("Acme"));
    let user = s.verified_user("gil@example.com").await;
    let enrollment = s.mfa.begin_enrollment(&user).await.unwrap();
    let raw = totp_secret_bytes(enrollment.secret_base32().expose_secret());
    let record = store.totp(&user.id).await.unwrap().unwrap();
    assert_eq!(record.secret.key_id, "k1");
    assert!(
        !record
            .secret
            .ciphertext
            .windows(raw.len())
            .any(|w| w == raw.as_slice())
    );
    let app = s.mfa.authenticator(&user.id).await.unwrap();
    s.mfa
        .confirm_enrollment(&user.id, &app.generate(s.now()))
        .await
        .unwrap();

    // A new current key with the old one as fallback: codes still verify, and the secret
    // is re-sealed under the new key on the next success.
    let rotated = SecretCipher::new("k2", &[7u8; 32])
        .unwrap()
        .with_fallback("k1", &[42u8; 32])
        .unwrap();
    let s2 = stack_with(store.clone(), rotated, MfaConfig::new("Acme"));
    s2.advance(30);
    s2.mfa
        .verify(&user.id, &app.generate(s2.now()))
        .await
        .unwrap();
    assert_eq!(
        store.totp(&user.id).await.unwrap().unwrap().secret.key_id,
        "k2"
    );

    // Without the right key nothing opens.
    let wrong = stack_with(
        store,
        SecretCipher::new("k2", &[8u8; 32]).unwrap(),
        MfaConfig::new("Acme"),
    );
    wrong.advance(60);
    assert!(
        wrong
            .mfa
            .verify(&user.id, &app.generate(wrong.now()))
            .await
            .is_err()
    );
}

fn totp_secret_bytes(base32: &str) -> Vec<u8> {
    // RFC 4648 base32 without padding.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in base32.bytes() {
        let v = alphabet.iter().position(|&a| a == c).unwrap() as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

#[tokio::test]
async fn inactive_users_get_no_tokens_after_the_second_step() {
    let s = stack();
    let (user, codes) = enrolled(&s, "hal@example.com").await;
    let token = challenge(&s, "hal@example.com").await;
    s.auth.set_active(&user.id, false).await.unwrap();
    assert!(
        s.mfa
            .complete_login(&s.auth, &token, &codes[0], LoginOptions::new())
            .await
            .is_err()
    );
    let _ = T0;
}
