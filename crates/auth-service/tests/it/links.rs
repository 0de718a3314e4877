//! Email change and sign-in links on memory stores: expiry on a fixed clock, tampering, a
//! password change spending a pending change, the second factor still asked after a sign-in
//! link, and what is refused without a challenge store or a signing secret.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_service::ephemeral::{MemoryCeremonyStore, MemoryChallengeStore};
use auth_service::*;
use auth_testkit::TestHasher;

const PASSWORD: &str = "violet-otter-sings-42";

type Mail = Arc<Mutex<Vec<AuthEvent>>>;

fn service(clock: &FixedClock) -> (AuthService, Mail) {
    let config = AuthConfig::builder()
        .signing_secret("0123456789abcdef0123456789abcdef-links")
        .build()
        .unwrap();
    let auth = AuthService::new(
        config,
        MemoryUserStore::new().with_clock(clock.clone()),
        TestHasher::fast(),
        MemoryTokenBackend::new().with_clock(clock.clone()),
    )
    .unwrap()
    .with_clock(clock.clone())
    .with_challenge_store(MemoryChallengeStore::new())
    .with_ceremony_store(MemoryCeremonyStore::new());
    let mail: Mail = Arc::default();
    for kind in [
        AuthEventKind::EmailChangeRequested,
        AuthEventKind::MagicLinkRequested,
    ] {
        let mail = Arc::clone(&mail);
        auth.events().on_fn(kind, move |e| {
            let mail = Arc::clone(&mail);
            async move {
                mail.lock().unwrap().push(e);
                Ok(())
            }
        });
    }
    (auth, mail)
}

fn change_tokens(mail: &Mail) -> (String, String) {
    mail.lock()
        .unwrap()
        .iter()
        .rev()
        .find_map(|e| match e {
            AuthEvent::EmailChangeRequested {
                token,
                cancel_token,
                ..
            } => Some((
                token.expose_secret().to_owned(),
                cancel_token.expose_secret().to_owned(),
            )),
            _ => None,
        })
        .expect("a change was mailed")
}

async fn magic(mail: &Mail) -> (String, String) {
    for _ in 0..200 {
        let found = mail.lock().unwrap().iter().rev().find_map(|e| match e {
            AuthEvent::MagicLinkRequested { token, code, .. } => Some((
                token.expose_secret().to_owned(),
                code.expose_secret().to_owned(),
            )),
            _ => None,
        });
        if let Some(f) = found {
            mail.lock().unwrap().clear();
            return f;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no sign-in mail")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_change_tokens_expire_bind_and_refuse_tampering() {
    let clock = FixedClock::from_unix(1_800_000_000);
    let (auth, mail) = service(&clock);
    let user = auth.register("a@example.com", PASSWORD).await.unwrap();

    // Expired after 24 hours.
    auth.request_email_change(&user.id, "b@example.com", PASSWORD)
        .await
        .unwrap();
    let (token, cancel) = change_tokens(&mail);
    clock.advance(Duration::from_secs(24 * 3600));
    assert!(matches!(
        auth.confirm_email_change(&token, None).await,
        Err(Error::TokenExpired)
    ));
    assert!(matches!(
        auth.cancel_email_change(&cancel).await,
        Err(Error::TokenExpired)
    ));

    // Tampered: another new address under the same MAC.
    auth.request_email_change(&user.id, "b@example.com", PASSWORD)
        .await
        .unwrap();
    let (token, _) = change_tokens(&mail);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[2] = base64_url("evil@example.com");
    assert!(matches!(
        auth.confirm_email_change(&parts.join("."), None).await,
        Err(Error::TokenInvalid)
    ));
    for garbage in ["", "a.b", "....."] {
        assert!(auth.confirm_email_change(garbage, None).await.is_err());
        assert!(auth.cancel_email_change(garbage).await.is_err());
    }

    // A password change spends every pending change.
    auth.change_password(&user.id, PASSWORD, "amber-heron-dances-7", None)
        .await
        .unwrap();
    assert!(matches!(
        auth.confirm_email_change(&token, None).await,
        Err(Error::TokenInvalid)
    ));

    // The current address, and a wrong password (throttled like every re-authentication).
    assert!(matches!(
        auth.request_email_change(&user.id, "A@example.com", "amber-heron-dances-7")
            .await,
        Err(Error::Validation(_))
    ));
    let mut refused = Vec::new();
    for _ in 0..6 {
        refused.push(
            auth.request_email_change(&user.id, "c@example.com", "wrong-password-entirely")
                .await,
        );
    }
    assert!(
        refused[..5]
            .iter()
            .all(|r| matches!(r, Err(Error::InvalidCredentials)))
    );
    assert!(matches!(refused[5], Err(Error::RateLimited { .. })));
    assert_eq!(
        auth.find_user(&user.id).await.unwrap().unwrap().email,
        "a@example.com"
    );
}

fn base64_url(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_links_expire_and_keep_the_second_factor() {
    let clock = FixedClock::from_unix(1_800_000_000);
    let (auth, mail) = service(&clock);
    auth.register("m@example.com", PASSWORD).await.unwrap();

    let flow = auth
        .request_magic_link("m@example.com", &SessionMeta::new())
        .await
        .unwrap();
    let flow = flow.expose_secret();
    let (token, code) = magic(&mail).await;
    clock.advance(MAGIC_LINK_LIFETIME);
    assert!(matches!(
        auth.sign_in_with_magic_link(&token, flow, LoginOptions::new())
            .await,
        Err(Error::TokenExpired)
    ));
    assert!(matches!(
        auth.sign_in_with_code("m@example.com", &code, flow, LoginOptions::new())
            .await,
        Err(Error::InvalidCredentials)
    ));

    // An account with a second factor gets a challenge, not a session.
    struct Everyone;
    #[async_trait]
    impl SecondFactorGate for Everyone {
        async fn is_required(&self, _user: &UserId) -> Result<bool> {
            Ok(true)
        }
        async fn open_challenge(&self, _user: &UserId) -> Result<Challenge> {
            Ok(Challenge::new(
                SecretString::from("challenge"),
                Duration::from_secs(300),
            ))
        }
    }
    let guarded = auth.clone().with_second_factor(Everyone);
    let flow = guarded
        .request_magic_link("m@example.com", &SessionMeta::new())
        .await
        .unwrap();
    let (token, _) = magic(&mail).await;
    assert!(matches!(
        guarded
            .sign_in_with_magic_link(&token, flow.expose_secret(), LoginOptions::new())
            .await,
        Ok(LoginOutcome::Challenge(_))
    ));

    // A deactivated account gets nothing mailed, and its live link stops working.
    let flow = auth
        .request_magic_link("m@example.com", &SessionMeta::new())
        .await
        .unwrap();
    let (token, _) = magic(&mail).await;
    let user = auth
        .find_user_by_email("m@example.com")
        .await
        .unwrap()
        .unwrap();
    auth.set_active(&user.id, false).await.unwrap();
    assert!(
        auth.sign_in_with_magic_link(&token, flow.expose_secret(), LoginOptions::new())
            .await
            .is_err()
    );
    auth.request_magic_link("m@example.com", &SessionMeta::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        mail.lock().unwrap().is_empty(),
        "nothing for an inactive account"
    );
}

#[tokio::test]
async fn without_a_store_or_a_secret_the_flows_say_what_is_missing() {
    let plain = AuthService::new(
        AuthConfig::builder()
            .signing_secret("0123456789abcdef0123456789abcdef-links")
            .build()
            .unwrap(),
        MemoryUserStore::new(),
        TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap();
    let user = plain.register("x@example.com", PASSWORD).await.unwrap();
    assert!(matches!(
        plain
            .request_email_change(&user.id, "y@example.com", PASSWORD)
            .await,
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        plain
            .request_magic_link("x@example.com", &SessionMeta::new())
            .await,
        Err(Error::Unsupported(_))
    ));
    let unsigned = AuthService::new(
        AuthConfig::default(),
        MemoryUserStore::new(),
        TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap()
    .with_ceremony_store(MemoryCeremonyStore::new());
    let err = unsigned
        .request_magic_link("x@example.com", &SessionMeta::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AUTH_SIGNING_SECRET"), "{err}");
}

/// A code or link works only with the flow of the request that asked for it; the next request
/// for the address replaces the live one; three wrong codes of the right flow end it, and a
/// wrong flow spends none of them; the owner's first sign-in by code proves the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_bound_to_their_request() {
    let clock = FixedClock::from_unix(1_800_000_000);
    let (auth, mail) = service(&clock);
    auth.register("b@example.com", PASSWORD).await.unwrap();
    let code_of = |flow: &SecretString, code: &str| {
        let auth = auth.clone();
        let (flow, code) = (flow.expose_secret().to_owned(), code.to_owned());
        async move {
            auth.sign_in_with_code("b@example.com", &code, &flow, LoginOptions::new())
                .await
        }
    };
    let wrong = |code: &str| if code == "000000" { "111111" } else { "000000" }.to_owned();

    // A bystander's flow (asked for another address, or this one elsewhere) opens nothing.
    let mine = auth
        .request_magic_link("b@example.com", &SessionMeta::new())
        .await
        .unwrap();
    let (token, code) = magic(&mail).await;
    let other = auth
        .request_magic_link("nobody@example.com", &SessionMeta::new())
        .await
        .unwrap();
    assert!(code_of(&other, &code).await.is_err());
    assert!(
        auth.sign_in_with_magic_link(&token, other.expose_secret(), LoginOptions::new())
            .await
            .is_err()
    );
    assert!(
        auth.sign_in_with_magic_link(&token, "", LoginOptions::new())
            .await
            .is_err()
    );
    // ...and spent none of the guesses: two wrong codes, then the right one.
    for _ in 0..2 {
        assert!(code_of(&mine, &wrong(&code)).await.is_err());
    }
    assert!(matches!(
        code_of(&mine, &code).await,
        Ok(LoginOutcome::Session(_))
    ));

    // Three wrong codes end the request: the right one no longer works.
    let flow = auth
        .request_magic_link("b@example.com", &SessionMeta::new())
        .await
        .unwrap();
    let (_, code) = magic(&mail).await;
    for _ in 0..MAGIC_CODE_GUESSES {
        assert!(code_of(&flow, &wrong(&code)).await.is_err());
    }
    assert!(code_of(&flow, &code).await.is_err(), "dead after three");

    // (The wrong codes so far also count against the address: lift that lockout.)
    let user = auth
        .find_user_by_email("b@example.com")
        .await
        .unwrap()
        .unwrap();
    auth.unlock(&user.id, &[]).await.unwrap();
    // A new request replaces the live one: the older code and link stop working.
    let first = auth
        .request_magic_link("b@example.com", &SessionMeta::new())
        .await
        .unwrap();
    let (first_token, first_code) = magic(&mail).await;
    let second = auth
        .request_magic_link("b@example.com", &SessionMeta::new())
        .await
        .unwrap();
    let (_, second_code) = magic(&mail).await;
    assert!(code_of(&first, &first_code).await.is_err());
    assert!(
        auth.sign_in_with_magic_link(&first_token, first.expose_secret(), LoginOptions::new())
            .await
            .is_err()
    );
    let last = code_of(&second, &second_code).await;
    assert!(matches!(last, Ok(LoginOutcome::Session(_))), "{last:?}");
}

/// A device trusted after the second factor skips it at a sign-in by emailed code or link, as
/// at a password sign-in; without it, or once forgotten, the factor is asked again (issue 29).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_device_skips_the_factor_on_code_and_link_sign_ins() {
    let clock = FixedClock::from_unix(1_800_000_000);
    let (auth, mail) = service(&clock);
    let auth = auth
        .with_second_factor(crate::common::CodeGate)
        .with_trusted_devices(MemoryTrustedDevices::new(), Duration::from_secs(86_400));
    auth.register("t@example.com", PASSWORD).await.unwrap();
    let by_code = |device: Option<String>| {
        let (auth, mail) = (auth.clone(), Arc::clone(&mail));
        async move {
            let flow = auth
                .request_magic_link("t@example.com", &SessionMeta::new())
                .await
                .unwrap();
            let (_, code) = magic(&mail).await;
            auth.sign_in_with_code(
                "t@example.com",
                &code,
                flow.expose_secret(),
                LoginOptions::new().with_device(device),
            )
            .await
            .unwrap()
        }
    };
    let LoginOutcome::Challenge(challenge) = by_code(None).await else {
        panic!("the factor is asked");
    };
    let done = auth
        .complete_sign_in(
            challenge.token.expose_secret(),
            "123456",
            LoginOptions::new().trusting_this_device(),
        )
        .await
        .unwrap();
    let device = done
        .trusted_device
        .expect("a device credential")
        .expose_secret()
        .to_owned();

    assert!(matches!(
        by_code(Some(device.clone())).await,
        LoginOutcome::Session(_)
    ));
    assert!(matches!(by_code(None).await, LoginOutcome::Challenge(_)));
    let flow = auth
        .request_magic_link("t@example.com", &SessionMeta::new())
        .await
        .unwrap();
    let (token, _) = magic(&mail).await;
    assert!(matches!(
        auth.sign_in_with_magic_link(
            &token,
            flow.expose_secret(),
            LoginOptions::new().with_device(Some(device.clone()))
        )
        .await
        .unwrap(),
        LoginOutcome::Session(_)
    ));

    // Past its lifetime, the device is trusted no more.
    clock.advance(Duration::from_secs(86_400));
    assert!(matches!(
        by_code(Some(device)).await,
        LoginOutcome::Challenge(_)
    ));

    // Removing the second factor (its `MfaDisabled` event, from any path) forgets the devices
    // trusted under it.
    let LoginOutcome::Challenge(challenge) = by_code(None).await else {
        panic!("the factor is asked");
    };
    let done = auth
        .complete_sign_in(
            challenge.token.expose_secret(),
            "123456",
            LoginOptions::new().trusting_this_device(),
        )
        .await
        .unwrap();
    let device = done.trusted_device.unwrap().expose_secret().to_owned();
    assert!(matches!(
        by_code(Some(device.clone())).await,
        LoginOutcome::Session(_)
    ));
    auth.events()
        .emit(AuthEvent::MfaDisabled {
            user_id: done.user.id.clone(),
        })
        .await;
    assert!(
        auth.trusted_devices(&done.user.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        by_code(Some(device)).await,
        LoginOutcome::Challenge(_)
    ));
}
