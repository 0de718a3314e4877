//! What the service makes of a passkey backend's verdicts: a passkey without user
//! verification still meets the second factor; clones and refusals are the same 401 and are
//! throttled per client; deletion and an address-proving reset remove passkeys. The backend
//! here is a stand-in that returns the verdict a test sets (the real one, auth-webauthn, is
//! tested with a software authenticator in its own crate).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Barrier;

use auth_service::{
    AddressProof, AuthConfig, AuthEventKind, AuthService, Challenge, Error, IdentityStore,
    LinkedIdentity, LoginOptions, LoginOutcome, MemoryIdentityStore, MemoryTokenBackend,
    MemoryUserStore, PasskeyAssertion, PasskeyBackend, PasskeyInfo, PasskeyOptions, PasskeyTarget,
    PasskeyVerdict, ProviderIdentity, Result, SecondFactorGate, SecretString, SessionMeta,
    TakenPasskey, UserId, async_trait,
};
use serde_json::{Value, json};

#[derive(Default, Clone)]
struct Verdicts {
    next: Arc<Mutex<Option<PasskeyVerdict>>>,
    keys: Arc<Mutex<Vec<(UserId, PasskeyInfo)>>>,
    targets: Arc<Mutex<Vec<PasskeyTarget>>>,
    /// When set, removals wait here (after the service's checks) until all have arrived.
    barrier: Arc<Mutex<Option<Arc<Barrier>>>>,
}

async fn meet(barrier: &Mutex<Option<Arc<Barrier>>>) {
    let barrier = barrier.lock().unwrap().clone();
    if let Some(barrier) = barrier {
        barrier.wait().await;
    }
}

/// Memory identities whose deletions wait at the same barrier as the passkeys'.
#[derive(Clone, Default)]
struct Identities {
    inner: MemoryIdentityStore,
    barrier: Arc<Mutex<Option<Arc<Barrier>>>>,
}

#[async_trait]
impl IdentityStore for Identities {
    async fn find(&self, provider: &str, subject: &str) -> Result<Option<LinkedIdentity>> {
        self.inner.find(provider, subject).await
    }
    async fn insert(&self, identity: &LinkedIdentity) -> Result<bool> {
        self.inner.insert(identity).await
    }
    async fn by_user(&self, user: &UserId) -> Result<Vec<LinkedIdentity>> {
        self.inner.by_user(user).await
    }
    async fn touch(&self, id: &str, at: time::OffsetDateTime) -> Result<()> {
        self.inner.touch(id, at).await
    }
    async fn delete(&self, user: &UserId, id: &str) -> Result<bool> {
        meet(&self.barrier).await;
        self.inner.delete(user, id).await
    }
    async fn delete_user(&self, user: &UserId) -> Result<u64> {
        self.inner.delete_user(user).await
    }
}

#[async_trait]
impl PasskeyBackend for Verdicts {
    async fn start_registration(&self, _: &UserId, _: &str) -> Result<PasskeyOptions> {
        Ok(PasskeyOptions::new(String::new(), json!({})))
    }
    async fn finish_registration(
        &self,
        user: &UserId,
        _: &Value,
        name: &str,
    ) -> Result<PasskeyInfo> {
        let info = PasskeyInfo::new(
            format!("pk_{}", self.keys.lock().unwrap().len()),
            name.into(),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        self.keys.lock().unwrap().push((user.clone(), info.clone()));
        Ok(info)
    }
    async fn start_authentication(&self, target: &PasskeyTarget) -> Result<PasskeyOptions> {
        self.targets.lock().unwrap().push(target.clone());
        Ok(PasskeyOptions::new("c".into(), json!({})))
    }
    async fn finish_authentication(&self, _: &str, _: &Value) -> Result<PasskeyVerdict> {
        Ok(self
            .next
            .lock()
            .unwrap()
            .take()
            .unwrap_or(PasskeyVerdict::Refused))
    }
    async fn list(&self, user: &UserId) -> Result<Vec<PasskeyInfo>> {
        Ok(self
            .keys
            .lock()
            .unwrap()
            .iter()
            .filter(|(u, _)| u == user)
            .map(|(_, i)| i.clone())
            .collect())
    }
    async fn rename(&self, _: &UserId, _: &str, _: &str) -> Result<bool> {
        Ok(true)
    }
    async fn remove(&self, user: &UserId, id: &str) -> Result<bool> {
        let mut keys = self.keys.lock().unwrap();
        let before = keys.len();
        keys.retain(|(u, i)| !(u == user && i.id == id));
        Ok(keys.len() < before)
    }
    async fn take(&self, user: &UserId, id: &str) -> Result<Option<TakenPasskey>> {
        meet(&self.barrier).await;
        let mut keys = self.keys.lock().unwrap();
        let at = keys.iter().position(|(u, i)| u == user && i.id == id);
        Ok(at.map(|at| {
            let (_, info) = keys.remove(at);
            TakenPasskey::new(info.clone(), info)
        }))
    }
    async fn restore(&self, user: &UserId, passkey: TakenPasskey) -> Result<()> {
        let info = passkey.into_record::<PasskeyInfo>().unwrap();
        self.keys.lock().unwrap().push((user.clone(), info));
        Ok(())
    }
    async fn remove_all(&self, user: &UserId) -> Result<u64> {
        let mut keys = self.keys.lock().unwrap();
        let before = keys.len();
        keys.retain(|(u, _)| u != user);
        Ok((before - keys.len()) as u64)
    }
}

/// A gate that asks everyone for a second factor and opens a fixed challenge.
struct Everyone;

#[async_trait]
impl SecondFactorGate for Everyone {
    async fn is_required(&self, _: &UserId) -> Result<bool> {
        Ok(true)
    }
    async fn open_challenge(&self, _: &UserId) -> Result<Challenge> {
        Ok(Challenge::new(
            SecretString::from("challenge"),
            std::time::Duration::from_secs(60),
        ))
    }
}

fn service(backend: Verdicts) -> AuthService {
    let config = AuthConfig::builder()
        .signing_secret("a-signing-secret-of-32-bytes-or-more!")
        .build()
        .unwrap();
    AuthService::new(
        config,
        MemoryUserStore::new(),
        auth_testkit::TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap()
    .with_second_factor(Everyone)
    .with_passkeys(backend)
}

fn verified(user: &UserId, uv: bool) -> PasskeyVerdict {
    PasskeyVerdict::Verified(PasskeyAssertion::new(user.clone(), "pk_0".into(), uv))
}

#[tokio::test]
async fn user_verification_decides_whether_the_second_factor_is_still_asked() {
    let backend = Verdicts::default();
    let auth = service(backend.clone());
    let user = auth
        .register("uv@example.com", "violet-otter-sings-42")
        .await
        .unwrap();

    *backend.next.lock().unwrap() = Some(verified(&user.id, true));
    let outcome = auth
        .sign_in_with_passkey("c", &json!({}), LoginOptions::new())
        .await
        .unwrap();
    assert!(
        matches!(outcome, LoginOutcome::Session(_)),
        "UV: two factors in one"
    );

    *backend.next.lock().unwrap() = Some(verified(&user.id, false));
    let outcome = auth
        .sign_in_with_passkey("c", &json!({}), LoginOptions::new())
        .await
        .unwrap();
    assert!(
        matches!(outcome, LoginOutcome::Challenge(_)),
        "presence only: the second factor is still asked"
    );
}

#[tokio::test]
async fn refusals_clones_and_inactive_accounts_look_the_same_and_are_throttled() {
    let backend = Verdicts::default();
    let auth = service(backend.clone());
    let clones = Arc::new(Mutex::new(0));
    let seen = Arc::clone(&clones);
    auth.events()
        .on_fn(AuthEventKind::PasskeyCloneDetected, move |_| {
            let seen = Arc::clone(&seen);
            async move {
                *seen.lock().unwrap() += 1;
                Ok(())
            }
        });
    let user = auth
        .register("cl@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    let ip: IpAddr = "203.0.113.9".parse().unwrap();
    let from = || LoginOptions::new().with_meta(SessionMeta::new().with_ip(ip));

    *backend.next.lock().unwrap() = Some(PasskeyVerdict::Cloned {
        user_id: user.id.clone(),
        passkey_id: "pk_0".into(),
    });
    assert!(matches!(
        auth.sign_in_with_passkey("c", &json!({}), from()).await,
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(*clones.lock().unwrap(), 1);

    auth.set_active(&user.id, false).await.unwrap();
    *backend.next.lock().unwrap() = Some(verified(&user.id, true));
    assert!(matches!(
        auth.sign_in_with_passkey("c", &json!({}), from()).await,
        Err(Error::InvalidCredentials)
    ));

    // The login policy's 5 attempts per client: 2 used, 3 more refusals, then 429.
    for _ in 0..3 {
        assert!(matches!(
            auth.sign_in_with_passkey("c", &json!({}), from()).await,
            Err(Error::InvalidCredentials)
        ));
    }
    auth.set_active(&user.id, true).await.unwrap();
    *backend.next.lock().unwrap() = Some(verified(&user.id, true));
    assert!(matches!(
        auth.sign_in_with_passkey("c", &json!({}), from()).await,
        Err(Error::RateLimited { .. })
    ));
    // Another client is not affected.
    let other =
        LoginOptions::new().with_meta(SessionMeta::new().with_ip("198.51.100.4".parse().unwrap()));
    assert!(matches!(
        auth.sign_in_with_passkey("c", &json!({}), other).await,
        Ok(LoginOutcome::Session(_))
    ));
}

#[tokio::test]
async fn options_by_address_never_tell_whether_the_account_exists() {
    let backend = Verdicts::default();
    let auth = service(backend.clone());
    let user = auth
        .register("opt@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    auth.prove_address(&user.id, AddressProof::InSession)
        .await
        .unwrap();
    auth.register_passkey(&user.id, &json!({}), Some("Key"))
        .await
        .unwrap();
    auth.register("nokey@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    auth.passkey_login_options(Some("OPT@example.com"))
        .await
        .unwrap();
    auth.passkey_login_options(Some("nokey@example.com"))
        .await
        .unwrap();
    auth.passkey_login_options(Some("nobody@example.com"))
        .await
        .unwrap();
    auth.passkey_login_options(None).await.unwrap();
    assert!(matches!(
        auth.passkey_login_options(Some("not an address")).await,
        Err(Error::Validation(_))
    ));
    let targets = backend.targets.lock().unwrap().clone();
    assert_eq!(targets[0], PasskeyTarget::User(user.id.clone()));
    let (PasskeyTarget::Decoy(a), PasskeyTarget::Decoy(b)) = (&targets[1], &targets[2]) else {
        panic!("decoys expected, got {targets:?}");
    };
    assert_ne!(a, b, "each address its own decoy");
    assert_eq!(targets[3], PasskeyTarget::Discoverable);
}

#[tokio::test]
async fn a_reset_that_proves_the_address_removes_earlier_passkeys() {
    let backend = Verdicts::default();
    let auth = service(backend.clone());
    let user = auth
        .register("squat@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    // No passkey on an account whose address nobody has proven.
    assert!(matches!(
        auth.passkey_registration_options(&user.id).await,
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        auth.register_passkey(&user.id, &json!({}), Some("Squatter's"))
            .await,
        Err(Error::Validation(_))
    ));
    // One left from before that rule (proven, added, then the address unproven again, as an
    // older version could leave it) goes with the owner's reset.
    auth.prove_address(&user.id, AddressProof::InSession)
        .await
        .unwrap();
    auth.register_passkey(&user.id, &json!({}), Some("Squatter's"))
        .await
        .unwrap();
    auth.parts()
        .users
        .set_verified(&user.id, false)
        .await
        .unwrap();
    let user = auth.find_user(&user.id).await.unwrap().unwrap();
    auth.reset_password(&user, "amber-heron-dances-7")
        .await
        .unwrap();
    assert!(auth.list_passkeys(&user.id).await.unwrap().is_empty());
}

/// A passwordless account (made by a provider sign-in) with passkeys and linked identities,
/// all removed at once: 30 concurrent removals that have all passed their checks before any
/// removes (the worst interleaving, forced by a barrier). The last to finish puts its way back
/// and is refused, so a way in remains; every other removal counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_removals_never_leave_an_account_without_a_way_in() {
    for round in 0..3 {
        let (backend, links) = (Verdicts::default(), Identities::default());
        let auth = service(backend.clone()).with_identities(links.clone());
        let email = format!("way{round}@example.com");
        let first = ProviderIdentity::new("google", "g-0").with_email(&email, true);
        auth.sign_in_with_provider(first, LoginOptions::new())
            .await
            .unwrap();
        let user = auth.find_user_by_email(&email).await.unwrap().unwrap().id;
        for n in 1..15 {
            let other = ProviderIdentity::new("gitlab", format!("s-{n}"));
            auth.link_identity(&user, other).await.unwrap();
        }
        for n in 0..15 {
            auth.register_passkey(&user, &json!({}), Some(&format!("Key {n}")))
                .await
                .unwrap();
        }
        let passkeys = auth.list_passkeys(&user).await.unwrap();
        let identities = auth.list_identities(&user).await.unwrap();
        assert_eq!((passkeys.len(), identities.len()), (15, 15));

        let barrier = Some(Arc::new(Barrier::new(30)));
        backend.barrier.lock().unwrap().clone_from(&barrier);
        links.barrier.lock().unwrap().clone_from(&barrier);
        let removals = passkeys
            .iter()
            .map(|p| {
                let (auth, user, id) = (auth.clone(), user.clone(), p.id.clone());
                tokio::spawn(async move { auth.delete_passkey(&user, &id).await })
            })
            .chain(identities.iter().map(|l| {
                let (auth, user, id) = (auth.clone(), user.clone(), l.id.clone());
                tokio::spawn(async move { auth.unlink_identity(&user, &id).await })
            }))
            .collect::<Vec<_>>();
        let mut removed = 0;
        for removal in removals {
            match removal.await.unwrap() {
                Ok(true) => removed += 1,
                Err(Error::Validation(v)) => {
                    assert_eq!(v.errors()[0].code, "last_sign_in_method");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let left = auth.list_passkeys(&user).await.unwrap().len()
            + auth.list_identities(&user).await.unwrap().len();
        assert!(left >= 1, "round {round}: no way in left");
        assert_eq!(
            removed + left,
            30,
            "round {round}: each way removed or kept"
        );
    }
}

/// A passwordless account with a passkey and a linked identity may remove either (not both).
#[tokio::test]
async fn a_passkey_goes_when_a_linked_identity_remains() {
    let backend = Verdicts::default();
    let auth = service(backend.clone()).with_identities(MemoryIdentityStore::new());
    let google = ProviderIdentity::new("google", "g-1").with_email("pk@example.com", true);
    auth.sign_in_with_provider(google, LoginOptions::new())
        .await
        .unwrap();
    let user = auth
        .find_user_by_email("pk@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    let passkey = auth
        .register_passkey(&user, &json!({}), None)
        .await
        .unwrap();
    assert!(auth.delete_passkey(&user, &passkey.id).await.unwrap());
    let link = auth.list_identities(&user).await.unwrap().remove(0);
    assert!(matches!(
        auth.unlink_identity(&user, &link.id).await,
        Err(Error::Validation(_))
    ));
}
