//! The linking rules of provider sign-in (`AuthService::sign_in_with_provider`): a linked
//! subject signs in; a new subject links only when the provider verified the address (and
//! on an account nobody had proven, that proof removes what was set up before); anything else
//! is refused (account pre-hijacking); a new verified address creates an account without a
//! usable password, an unverified one nothing; the second factor still applies; unlinking keeps the last way in; concurrent
//! first sign-ins create one account.

use auth_service::{
    AuthConfig, AuthService, Challenge, Error, LoginOptions, LoginOutcome, MemoryIdentityStore,
    MemoryTokenBackend, MemoryUserStore, ProviderIdentity, Result, SecondFactorGate, SecretString,
    UserId, async_trait, is_password_usable,
};

fn service() -> AuthService {
    AuthService::new(
        AuthConfig::default(),
        MemoryUserStore::new(),
        auth_testkit::TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap()
    .with_identities(MemoryIdentityStore::new())
}

fn session(
    outcome: Result<LoginOutcome<auth_service::User>>,
) -> auth_service::AuthResult<auth_service::User> {
    match outcome {
        Ok(LoginOutcome::Session(s)) => s,
        other => panic!("expected a session, got {other:?}"),
    }
}

#[tokio::test]
async fn linking_needs_a_proven_address_on_both_sides() {
    let auth = service();
    // A local account whose address is not proven yet (anyone could have registered it), with
    // a session of whoever did.
    let local = auth
        .register("ana@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    let squatter = auth
        .login("ana@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    // A provider that does not vouch for the address links nothing.
    let unverified = ProviderIdentity::new("gitlab", "l-0").with_email("ANA@example.com", false);
    assert!(matches!(
        auth.sign_in_with_provider(unverified, LoginOptions::new())
            .await,
        Err(Error::EmailTaken)
    ));
    assert!(
        auth.list_identities(&local.id).await.unwrap().is_empty(),
        "nothing linked silently"
    );
    // One that vouches is the owner's proof: the account becomes the provider identity's,
    // and the password and session set up before it are gone.
    let google = ProviderIdentity::new("google", "g-1").with_email("ana@example.com", true);
    let s = session(
        auth.sign_in_with_provider(google.clone(), LoginOptions::new())
            .await,
    );
    assert_eq!(s.user.id, local.id);
    assert!(s.user.is_verified && !is_password_usable(s.user.password_hash.as_deref()));
    assert!(auth.authenticate(squatter.access_token()).await.is_err());
    assert!(matches!(
        auth.login("ana@example.com", "violet-otter-sings-42").await,
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(auth.list_identities(&local.id).await.unwrap().len(), 1);
    // Proven now, but another provider that does not vouch: still refused.
    let unverified = ProviderIdentity::new("gitlab", "l-1").with_email("ANA@example.com", false);
    assert!(matches!(
        auth.sign_in_with_provider(unverified, LoginOptions::new())
            .await,
        Err(Error::EmailTaken)
    ));
    // The link now decides, whatever the email says later.
    let renamed = ProviderIdentity::new("google", "g-1").with_email("other@example.com", true);
    assert_eq!(
        session(
            auth.sign_in_with_provider(renamed, LoginOptions::new())
                .await
        )
        .user
        .id,
        local.id
    );
    // The owner links a provider explicitly.
    let gitlab = ProviderIdentity::new("gitlab", "l-1").with_email("ana@example.com", false);
    auth.link_identity(&local.id, gitlab.clone()).await.unwrap();
    assert_eq!(
        session(
            auth.sign_in_with_provider(gitlab, LoginOptions::new())
                .await
        )
        .user
        .id,
        local.id
    );
}

#[tokio::test]
async fn new_addresses_create_accounts_without_a_password() {
    let auth = service();
    // An address the provider did not verify creates nothing: it could be anyone's.
    assert!(matches!(
        auth.sign_in_with_provider(
            ProviderIdentity::new("github", "41").with_email("new@example.com", false),
            LoginOptions::new(),
        )
        .await,
        Err(Error::Validation(_))
    ));
    assert!(
        auth.find_user_by_email("new@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let s = session(
        auth.sign_in_with_provider(
            ProviderIdentity::new("github", "42").with_email("new@example.com", true),
            LoginOptions::new(),
        )
        .await,
    );
    assert!(s.user.is_verified, "the provider verified it");
    assert!(!is_password_usable(s.user.password_hash.as_deref()));
    assert!(matches!(
        auth.login("new@example.com", "").await,
        Err(Error::InvalidCredentials)
    ));
    // No email at all: nothing to create an account with.
    assert!(matches!(
        auth.sign_in_with_provider(ProviderIdentity::new("github", "43"), LoginOptions::new())
            .await,
        Err(Error::Validation(_))
    ));
    // Its only way in stays; with a password set it may go.
    let link = auth.list_identities(&s.user.id).await.unwrap().remove(0);
    assert!(matches!(
        auth.unlink_identity(&s.user.id, &link.id).await,
        Err(Error::Validation(_))
    ));
    auth.set_password(&s.user.id, "amber-heron-dances-7")
        .await
        .unwrap();
    assert!(auth.unlink_identity(&s.user.id, &link.id).await.unwrap());
    assert!(!auth.unlink_identity(&s.user.id, &link.id).await.unwrap());
}

#[tokio::test]
async fn inactive_accounts_and_second_factors() {
    struct Everyone;
    #[async_trait]
    impl SecondFactorGate for Everyone {
        async fn is_required(&self, _: &UserId) -> Result<bool> {
            Ok(true)
        }
        async fn open_challenge(&self, _: &UserId) -> Result<Challenge> {
            Ok(Challenge::new(
                SecretString::from("c"),
                std::time::Duration::from_secs(60),
            ))
        }
    }
    let auth = service().with_second_factor(Everyone);
    let id = ProviderIdentity::new("google", "g-2").with_email("mfa@example.com", true);
    assert!(matches!(
        auth.sign_in_with_provider(id.clone(), LoginOptions::new())
            .await,
        Ok(LoginOutcome::Challenge(_))
    ));
    let user = auth
        .parts()
        .users
        .find_by_email("mfa@example.com")
        .await
        .unwrap()
        .unwrap();
    auth.set_active(&user.id, false).await.unwrap();
    assert!(matches!(
        auth.sign_in_with_provider(id, LoginOptions::new()).await,
        Err(Error::InvalidCredentials)
    ));
    assert!(auth.delete_user(&user.id).await.unwrap());
    assert!(auth.list_identities(&user.id).await.unwrap().is_empty());
}

/// A device trusted at the second factor skips it at the next provider sign-in, as at a
/// password or code sign-in; another account's device, a forged one and a forgotten one do not.
#[tokio::test]
async fn a_trusted_device_skips_the_factor_on_provider_sign_ins() {
    let auth = service()
        .with_second_factor(crate::common::CodeGate)
        .with_trusted_devices(
            auth_service::MemoryTrustedDevices::new(),
            std::time::Duration::from_secs(86_400),
        );
    let trust = |id: ProviderIdentity| {
        let auth = auth.clone();
        async move {
            let Ok(LoginOutcome::Challenge(c)) =
                auth.sign_in_with_provider(id, LoginOptions::new()).await
            else {
                panic!("the factor is asked");
            };
            let done = auth
                .complete_sign_in(
                    c.token.expose_secret(),
                    "123456",
                    LoginOptions::new().trusting_this_device(),
                )
                .await
                .unwrap();
            (
                done.user.id.clone(),
                done.trusted_device
                    .expect("a device credential")
                    .expose_secret()
                    .to_owned(),
            )
        }
    };
    let alice = ProviderIdentity::new("google", "g-a").with_email("a@example.com", true);
    let bob = ProviderIdentity::new("google", "g-b").with_email("b@example.com", true);
    let (alice_id, device) = trust(alice.clone()).await;
    let (_, bobs_device) = trust(bob).await;
    let with = |device: Option<String>| {
        let (auth, alice) = (auth.clone(), alice.clone());
        async move {
            auth.sign_in_with_provider(alice, LoginOptions::new().with_device(device))
                .await
                .unwrap()
        }
    };

    assert!(matches!(
        with(Some(device.clone())).await,
        LoginOutcome::Session(_)
    ));
    assert!(matches!(with(None).await, LoginOutcome::Challenge(_)));
    assert!(matches!(
        with(Some(bobs_device)).await,
        LoginOutcome::Challenge(_)
    ));
    let mut forged = device.clone();
    forged.push('x');
    assert!(matches!(
        with(Some(forged)).await,
        LoginOutcome::Challenge(_)
    ));

    let devices = auth.trusted_devices(&alice_id).await.unwrap();
    assert_eq!(devices.len(), 1);
    assert!(
        auth.forget_trusted_device(&alice_id, &devices[0].id)
            .await
            .unwrap()
    );
    assert!(matches!(
        with(Some(device)).await,
        LoginOutcome::Challenge(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_first_sign_ins_make_one_account() {
    auth_testkit::conformance::first_provider_sign_ins(
        &service(),
        "google",
        "race",
        "race@example.com",
    )
    .await;
}
