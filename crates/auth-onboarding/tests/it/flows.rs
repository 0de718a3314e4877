use std::time::Duration;

use auth_mfa::{TotpCode, TotpSettings};
use auth_onboarding::{
    ClientHint, MemorySessionStore, Onboarding, OnboardingError, OnboardingStatus, OnboardingStep,
    RegisterStep, SessionStore, SetupTotpStep, StepContext, StepOutcome, VerifyEmailStep,
};
use auth_service::{AuthEventKind, AuthUser, Error, User, async_trait};
use serde_json::{Map, Value, json};

use crate::common::{PASSWORD, data, kit, register_data};

fn errors_of(r: &auth_onboarding::OnboardingResult<User>) -> Vec<String> {
    r.errors.iter().map(|(f, _)| f.clone()).collect()
}

#[tokio::test]
async fn the_full_pipeline_ends_logged_in() {
    let k = kit();
    let flow = k.full();
    assert_eq!(
        flow.pipeline(),
        ["register", "verify_email", "setup_totp", "profile"]
    );
    let started = flow.start("Ann@Example.com").await.unwrap();
    let token = started.session_token.clone().unwrap();
    let token = token.expose_secret();
    assert_eq!(started.status, OnboardingStatus::InProgress);
    assert_eq!(started.current_step.as_deref(), Some("register"));
    let hint = started.client_hint.unwrap();
    let names: Vec<&str> = hint.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["email", "password", "password_confirm"]);

    // Register: confirmation, policy, then success.
    let r = flow
        .advance(token, data(json!({"email": "ann@example.com", "password": PASSWORD, "password_confirm": "other"})), false)
        .await
        .unwrap();
    assert_eq!(errors_of(&r), ["password_confirm"]);
    let r = flow
        .advance(
            token,
            data(json!({"email": "ann@example.com", "password": "123", "password_confirm": "123"})),
            false,
        )
        .await
        .unwrap();
    assert!(errors_of(&r).iter().all(|f| f == "password") && !r.errors.is_empty());
    let r = flow
        .advance(token, register_data("ann@example.com"), false)
        .await
        .unwrap();
    assert_eq!(r.current_step.as_deref(), Some("verify_email"));
    let user = k
        .auth
        .find_user_by_email("ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(!user.is_verified);

    // Verify email: a code was sent; wrong code, early resend, resend, old code dead.
    let first = k.code("ann@example.com");
    let r = flow
        .advance(token, data(json!({"code": "000000x"})), false)
        .await
        .unwrap();
    assert_eq!(errors_of(&r), ["code"]);
    let r = flow
        .advance(token, data(json!({"resend": true})), false)
        .await
        .unwrap();
    assert_eq!(errors_of(&r), ["resend"]);
    k.clock.advance(Duration::from_secs(61));
    let r = flow
        .advance(token, data(json!({"resend": true})), false)
        .await
        .unwrap();
    assert!(r.errors.is_empty());
    assert_eq!(r.client_hint.unwrap().extra["resend_available_in"], 60);
    let second = k.code("ann@example.com");
    if first != second {
        let r = flow
            .advance(token, data(json!({"code": first})), false)
            .await
            .unwrap();
        assert_eq!(errors_of(&r), ["code"]);
    }
    let r = flow
        .advance(token, data(json!({"code": second})), false)
        .await
        .unwrap();
    assert_eq!(r.current_step.as_deref(), Some("setup_totp"));
    assert!(
        k.auth
            .find_user(&user.id)
            .await
            .unwrap()
            .unwrap()
            .is_verified
    );

    // TOTP: required, so no skipping; the hint has the URI and QR code.
    let hint = r.client_hint.unwrap();
    assert!(!hint.skippable);
    assert!(
        hint.extra["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Acme:ann%40example.com?")
    );
    assert!(hint.extra["qr_svg"].as_str().unwrap().contains("<svg"));
    let r = flow.advance(token, Map::new(), true).await.unwrap();
    assert_eq!(
        (errors_of(&r), r.current_step.as_deref()),
        (vec!["skip".to_owned()], Some("setup_totp"))
    );
    // Resume shows the same secret (the app scanned it already).
    let again = flow.resume(token).await.unwrap().client_hint.unwrap();
    assert_eq!(again.extra["secret"], hint.extra["secret"]);
    let app = TotpCode::from_base32(
        hint.extra["secret"].as_str().unwrap(),
        TotpSettings::default(),
    )
    .unwrap();
    let r = flow
        .advance(token, data(json!({"code": app.generate(k.now())})), false)
        .await
        .unwrap();
    assert_eq!(r.current_step.as_deref(), Some("profile"));
    assert_eq!(r.output["recovery_codes"].as_array().unwrap().len(), 10);

    // Profile: required fields; undeclared ones are not written.
    let r = flow
        .advance(token, data(json!({"first_name": "Ann"})), false)
        .await
        .unwrap();
    assert_eq!(errors_of(&r), ["last_name"]);
    let r = flow
        .advance(
            token,
            data(json!({"first_name": "Ann", "last_name": "Lee", "is_admin": true, "bio": "hi"})),
            false,
        )
        .await
        .unwrap();
    assert_eq!(r.status, OnboardingStatus::Completed);
    assert!(r.current_step.is_none() && r.client_hint.is_none());
    let login = r.auth.unwrap();
    assert_eq!(
        k.auth.authenticate(login.access_token()).await.unwrap().id,
        user.id
    );
    let stored = k.auth.find_user(&user.id).await.unwrap().unwrap();
    assert_eq!(stored.profile["first_name"], "Ann");
    assert_eq!(stored.profile["bio"], "hi");
    assert!(!stored.profile.contains_key("is_admin"));
    assert!(stored.last_login.is_some());
    // Two-factor is on: a plain login now asks for it.
    assert!(matches!(
        k.auth.login("ann@example.com", PASSWORD).await,
        Err(Error::MfaRequired)
    ));

    let kinds = k.kinds();
    for kind in [
        AuthEventKind::OnboardingStarted,
        AuthEventKind::OnboardingStepCompleted,
        AuthEventKind::OnboardingStepFailed,
        AuthEventKind::OnboardingCompleted,
        AuthEventKind::VerificationCodeGenerated,
        AuthEventKind::UserLogin,
        AuthEventKind::MfaEnabled,
    ] {
        assert!(kinds.contains(&kind), "{kind:?}");
    }
    assert!(matches!(
        flow.resume(token).await,
        Err(OnboardingError::Completed)
    ));
}

#[tokio::test]
async fn optional_and_inapplicable_steps_are_skipped() {
    struct Never;
    #[async_trait]
    impl OnboardingStep<User> for Never {
        fn name(&self) -> &str {
            "never"
        }
        async fn is_required(&self, _: &mut StepContext<'_, User>) -> auth_service::Result<bool> {
            Ok(false)
        }
        async fn hint(&self, _: &mut StepContext<'_, User>) -> auth_service::Result<ClientHint> {
            unreachable!("never shown")
        }
        async fn submit(
            &self,
            _: &mut StepContext<'_, User>,
            _: &Map<String, Value>,
        ) -> auth_service::Result<StepOutcome> {
            unreachable!("never submitted")
        }
    }
    let k = kit();
    let flow = k
        .builder(MemorySessionStore::new())
        .step(RegisterStep)
        .step(Never)
        .step(SetupTotpStep::optional(k.mfa.clone()))
        .build()
        .unwrap();
    let s = flow.start("bo@example.com").await.unwrap();
    let token = s.session_token.unwrap();
    let r = flow
        .advance(
            token.expose_secret(),
            register_data("bo@example.com"),
            false,
        )
        .await
        .unwrap();
    assert_eq!(r.current_step.as_deref(), Some("setup_totp"));
    assert!(r.client_hint.unwrap().skippable);
    let r = flow
        .advance(token.expose_secret(), Map::new(), true)
        .await
        .unwrap();
    assert_eq!(r.status, OnboardingStatus::Completed);
    assert!(r.auth.is_some());
    assert!(
        k.kinds()
            .iter()
            .filter(|k| **k == AuthEventKind::OnboardingStepSkipped)
            .count()
            >= 2
    );
}

#[tokio::test]
async fn invalid_expired_restarted_and_completed_sessions() {
    let k = kit();
    let flow = k.full();
    assert!(matches!(
        flow.resume("nope").await,
        Err(OnboardingError::Invalid)
    ));
    assert!(matches!(
        flow.advance(&"x".repeat(1000), Map::new(), false).await,
        Err(OnboardingError::Invalid)
    ));
    let first = flow
        .start("cy@example.com")
        .await
        .unwrap()
        .session_token
        .unwrap();
    let second = flow
        .start("cy@example.com")
        .await
        .unwrap()
        .session_token
        .unwrap();
    assert!(matches!(
        flow.resume(first.expose_secret()).await,
        Err(OnboardingError::Invalid)
    ));
    assert!(flow.resume(second.expose_secret()).await.is_ok());
    k.clock.advance(Duration::from_secs(3_601));
    assert!(matches!(
        flow.resume(second.expose_secret()).await,
        Err(OnboardingError::Expired)
    ));
    assert!(k.kinds().contains(&AuthEventKind::OnboardingSessionExpired));
    assert!(flow.cleanup_expired().await.unwrap() >= 2);
}

#[tokio::test]
async fn codes_are_hashed_and_attempts_survive_resend() {
    let k = kit();
    let store = MemorySessionStore::new();
    let flow = k.full_on(store.clone());
    let token = flow
        .start("dee@example.com")
        .await
        .unwrap()
        .session_token
        .unwrap();
    let token = token.expose_secret();
    flow.advance(token, register_data("dee@example.com"), false)
        .await
        .unwrap();
    let code = k.code("dee@example.com");
    let record = store
        .find(&auth_service::random::sha256_hex(token))
        .await
        .unwrap()
        .unwrap();
    let stored = serde_json::to_string(&record.data).unwrap();
    assert!(
        !stored.contains(&code),
        "the code is stored only hashed: {stored}"
    );
    for _ in 0..4 {
        flow.advance(token, data(json!({"code": "111111"})), false)
            .await
            .unwrap();
    }
    k.clock.advance(Duration::from_secs(61));
    flow.advance(token, data(json!({"resend": true})), false)
        .await
        .unwrap();
    let fresh = k.code("dee@example.com");
    // One attempt left after the resend: the right code works...
    let r = flow
        .advance(token, data(json!({"code": fresh})), false)
        .await
        .unwrap();
    assert_eq!(r.current_step.as_deref(), Some("setup_totp"));

    // ...and on another session, five wrong codes exhaust it even for the right one.
    let token = flow
        .start("eve@example.com")
        .await
        .unwrap()
        .session_token
        .unwrap();
    let token = token.expose_secret();
    flow.advance(token, register_data("eve@example.com"), false)
        .await
        .unwrap();
    let right = k.code("eve@example.com");
    for _ in 0..5 {
        flow.advance(token, data(json!({"code": "111111"})), false)
            .await
            .unwrap();
    }
    let r = flow
        .advance(token, data(json!({"code": right})), false)
        .await
        .unwrap();
    assert_eq!(r.current_step.as_deref(), Some("verify_email"));
    assert!(r.errors[0].1.contains("too many"));

    // Codes expire after 10 minutes.
    let token = flow
        .start("fay@example.com")
        .await
        .unwrap()
        .session_token
        .unwrap();
    let token = token.expose_secret();
    flow.advance(token, register_data("fay@example.com"), false)
        .await
        .unwrap();
    let code = k.code("fay@example.com");
    k.clock.advance(Duration::from_secs(601));
    let r = flow
        .advance(token, data(json!({"code": code})), false)
        .await
        .unwrap();
    assert!(r.errors[0].1.contains("expired"));
}

#[tokio::test]
async fn an_existing_email_does_not_reveal_itself() {
    let k = kit();
    k.auth
        .register("gil@example.com", "original-otter-pass-77")
        .await
        .unwrap();
    let flow = k.full();
    let fresh = flow
        .start("new@example.com")
        .await
        .unwrap()
        .session_token
        .unwrap();
    let taken = flow
        .start("gil@example.com")
        .await
        .unwrap()
        .session_token
        .unwrap();
    let a = flow
        .advance(
            fresh.expose_secret(),
            register_data("new@example.com"),
            false,
        )
        .await
        .unwrap();
    let b = flow
        .advance(
            taken.expose_secret(),
            register_data("gil@example.com"),
            false,
        )
        .await
        .unwrap();
    // The same answer, the same next step.
    assert_eq!(a.current_step, b.current_step);
    assert_eq!(a.errors, b.errors);
    assert_eq!(a.client_hint.unwrap().fields, b.client_hint.unwrap().fields);
    // Only the mailbox's owner learns it, from the code step.
    let code = k.code("gil@example.com");
    let r = flow
        .advance(taken.expose_secret(), data(json!({"code": code})), false)
        .await
        .unwrap();
    assert!(r.errors[0].1.contains("already has an account"));
    // The account is untouched.
    assert!(
        k.auth
            .login("gil@example.com", "original-otter-pass-77")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_code_step_needs_a_listener() {
    let auth = auth_service::AuthService::new(
        auth_service::AuthConfig::default(),
        auth_service::MemoryUserStore::new(),
        auth_testkit::TestHasher::fast(),
        auth_service::MemoryTokenBackend::new(),
    )
    .unwrap();
    let flow = Onboarding::builder(auth, MemorySessionStore::new())
        .step(RegisterStep)
        .step(VerifyEmailStep::new())
        .build()
        .unwrap();
    let err = flow.start("hal@example.com").await.unwrap_err();
    assert!(
        err.to_string().contains("VerificationCodeGenerated"),
        "{err}"
    );
}

/// The cookbook's custom step, translated.
#[tokio::test]
async fn custom_accept_terms_step() {
    struct AcceptTermsStep;
    #[async_trait]
    impl OnboardingStep<User> for AcceptTermsStep {
        fn name(&self) -> &str {
            "accept_terms"
        }
        async fn hint(&self, _: &mut StepContext<'_, User>) -> auth_service::Result<ClientHint> {
            Ok(ClientHint::new(
                "accept_terms",
                "Terms of Service",
                "Please accept our terms to continue.",
            )
            .field(
                "accepted",
                "checkbox",
                true,
                "I accept the Terms of Service",
            ))
        }
        async fn submit(
            &self,
            ctx: &mut StepContext<'_, User>,
            data: &Map<String, Value>,
        ) -> auth_service::Result<StepOutcome> {
            if data.get("accepted").and_then(Value::as_bool) != Some(true) {
                return Ok(StepOutcome::invalid(
                    "accepted",
                    "You must accept the terms",
                ));
            }
            let user = ctx.session.user_id.clone().ok_or(Error::UserNotFound)?;
            let mut values = Map::new();
            values.insert(
                "terms_accepted_at".into(),
                Value::from(ctx.now().unix_timestamp()),
            );
            ctx.auth.update_profile(&user, values).await?;
            Ok(StepOutcome::Complete)
        }
    }
    let k = kit();
    let flow = k
        .builder(MemorySessionStore::new())
        .step(RegisterStep)
        .step(AcceptTermsStep)
        .build()
        .unwrap();
    let token = flow
        .start("ivy@example.com")
        .await
        .unwrap()
        .session_token
        .unwrap();
    let token = token.expose_secret();
    flow.advance(token, register_data("ivy@example.com"), false)
        .await
        .unwrap();
    let r = flow
        .advance(token, data(json!({"accepted": false})), false)
        .await
        .unwrap();
    assert_eq!(r.errors[0].0, "accepted");
    let r = flow
        .advance(token, data(json!({"accepted": true})), false)
        .await
        .unwrap();
    assert_eq!(r.status, OnboardingStatus::Completed);
    let user = r.auth.unwrap().user;
    let stored = k.auth.find_user(user.id()).await.unwrap().unwrap();
    assert_eq!(stored.profile["terms_accepted_at"], crate::common::T0);
}

#[tokio::test]
async fn debug_output_shows_no_secret() {
    let k = kit();
    let flow = k.full();
    let started = flow.start("jo@example.com").await.unwrap();
    let token = started.session_token.clone().unwrap();
    let mut debug = format!("{started:?}");
    let r = flow
        .advance(
            token.expose_secret(),
            register_data("jo@example.com"),
            false,
        )
        .await
        .unwrap();
    debug += &format!("{r:?}");
    let code = k.code("jo@example.com");
    let totp = flow
        .advance(token.expose_secret(), data(json!({"code": code})), false)
        .await
        .unwrap();
    debug += &format!("{totp:?}");
    let hint = totp.client_hint.clone().unwrap();
    let secret = hint.extra["secret"].as_str().unwrap().to_owned();
    let app = TotpCode::from_base32(&secret, TotpSettings::default()).unwrap();
    let profile = flow
        .advance(
            token.expose_secret(),
            data(json!({"code": app.generate(k.now())})),
            false,
        )
        .await
        .unwrap();
    debug += &format!("{profile:?}{flow:?}");
    for s in [
        token.expose_secret().to_owned(),
        code,
        secret,
        PASSWORD.to_owned(),
    ] {
        assert!(!debug.contains(&s), "{s} leaked");
    }
    for c in profile.output["recovery_codes"].as_array().unwrap() {
        assert!(!debug.contains(c.as_str().unwrap()));
    }
}
