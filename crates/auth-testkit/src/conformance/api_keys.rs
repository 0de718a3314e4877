//! The `ApiKeyStore` suite, run through `AuthService` (the only way keys are used).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use auth_service::{
    ApiKeyOwner, ApiKeyRateLimit, ApiKeyStore, AuthConfig, AuthEvent, AuthService, Error,
    FixedClock, MemoryTokenBackend, NewApiKey, Result, UserStore, async_trait,
};

use super::START;
use crate::{EventLog, TestHasher};

/// A store that counts lookups, to prove a mangled key never reaches the store.
struct Counting<S> {
    inner: S,
    lookups: Arc<AtomicUsize>,
}

#[async_trait]
impl<S: ApiKeyStore> ApiKeyStore for Counting<S> {
    async fn create(&self, r: &auth_service::ApiKeyRecord, h: &str) -> Result<()> {
        self.inner.create(r, h).await
    }
    async fn find_by_secret(&self, h: &str) -> Result<Option<auth_service::FoundApiKey>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.inner.find_by_secret(h).await
    }
    async fn get(&self, id: &str) -> Result<Option<auth_service::ApiKeyRecord>> {
        self.inner.get(id).await
    }
    async fn list(&self, o: &ApiKeyOwner) -> Result<Vec<auth_service::ApiKeyRecord>> {
        self.inner.list(o).await
    }
    async fn roll(&self, id: &str, h: &str, until: time::OffsetDateTime) -> Result<bool> {
        self.inner.roll(id, h, until).await
    }
    async fn delete(&self, id: &str) -> Result<bool> {
        self.inner.delete(id).await
    }
    async fn set_enabled(&self, id: &str, on: bool) -> Result<bool> {
        self.inner.set_enabled(id, on).await
    }
    async fn touch(
        &self,
        id: &str,
        now: time::OffsetDateTime,
        nb: time::OffsetDateTime,
        ip: Option<&str>,
    ) -> Result<bool> {
        self.inner.touch(id, now, nb, ip).await
    }
    async fn reserve(&self, id: &str, start: i64, limit: u32) -> Result<bool> {
        self.inner.reserve(id, start, limit).await
    }
    async fn create_service_account(&self, n: &str, now: time::OffsetDateTime) -> Result<bool> {
        self.inner.create_service_account(n, now).await
    }
    async fn service_account_exists(&self, n: &str) -> Result<bool> {
        self.inner.service_account_exists(n).await
    }
    async fn cleanup_expired(&self, now: time::OffsetDateTime) -> Result<u64> {
        self.inner.cleanup_expired(now).await
    }
}

/// Runs the [`ApiKeyStore`] suite through [`AuthService`]: create and verify; a key with a
/// wrong checksum refused with no store access; expiry by the clock; disabled keys; a
/// deactivated owner refused and reported; roll with a grace window (both keys valid, then only
/// the new one); a per-key rate limit under 30 concurrent requests granting exactly the limit;
/// scopes; revocation; service accounts; the last use written at most once a minute; cleanup.
///
/// `make` gets the suite's clock and returns a fresh store and the user store the keys'
/// owners live in (the SQL key store references SQL users).
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// auth_testkit::conformance::api_key_store(|_clock| async {
///     (auth_service::MemoryApiKeyStore::new(), auth_service::MemoryUserStore::new())
/// }).await;
/// # });
/// ```
///
/// # Panics
///
/// When the store breaks a promise of the trait.
#[allow(clippy::too_many_lines)]
pub async fn api_key_store<S, Us, F, Fut>(make: F)
where
    S: ApiKeyStore,
    Us: UserStore,
    F: FnOnce(FixedClock) -> Fut,
    Fut: Future<Output = (S, Us)>,
{
    let clock = FixedClock::from_unix(START);
    let (store, users) = make(clock.clone()).await;
    let lookups = Arc::new(AtomicUsize::new(0));
    let auth = AuthService::new(
        AuthConfig::default(),
        users,
        TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .expect("service")
    .with_clock(clock.clone())
    .with_api_keys(Counting {
        inner: store,
        lookups: Arc::clone(&lookups),
    });
    let events = EventLog::attach(auth.events());
    let user = auth
        .register("keys@example.com", "violet-otter-sings-42")
        .await
        .expect("register");
    let user_id = auth_service::AuthUser::id(&user).clone();
    // Keys are lasting credentials: only for an account whose address is proven.
    assert!(matches!(
        auth.create_api_key(&ApiKeyOwner::User(user_id.clone()), NewApiKey::new("early"))
            .await,
        Err(auth_service::Error::Validation(_))
    ));
    auth.prove_address(&user_id, auth_service::AddressProof::InSession)
        .await
        .expect("prove the address");
    let owner = ApiKeyOwner::User(user_id.clone());

    // Create, verify, scopes; the key is shown once and listed without its secret.
    let issued = auth
        .create_api_key(
            &owner,
            NewApiKey::new("deploy").with_scopes(["deploy:write"]),
        )
        .await
        .expect("create");
    let key = issued.key.expose_secret().to_owned();
    assert!(key.starts_with("ak_live_") && key.starts_with(&issued.record.start));
    let found = auth
        .authenticate_api_key(&key, None)
        .await
        .expect("a fresh key authenticates");
    assert_eq!(
        found.user.as_ref().map(auth_service::AuthUser::id),
        Some(&user_id)
    );
    assert!(found.key.has_scope("deploy:write") && !found.key.has_scope("admin"));
    let listed = auth.list_api_keys(&owner).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, issued.record.id);
    assert!(
        !format!("{listed:?}").contains(&key[10..]),
        "listings never hold the secret"
    );

    // A mangled key fails its checksum before any lookup.
    let before = lookups.load(Ordering::SeqCst);
    let mut typo = key.clone();
    let c = if &typo[12..13] == "a" { "b" } else { "a" };
    typo.replace_range(12..13, c);
    for bad in [
        typo.as_str(),
        &key[..key.len() - 1],
        "ak_live_",
        "",
        "Bearer x",
    ] {
        assert!(
            matches!(
                auth.authenticate_api_key(bad, None).await,
                Err(Error::TokenInvalid)
            ),
            "{bad:?} is refused"
        );
    }
    assert_eq!(
        lookups.load(Ordering::SeqCst),
        before,
        "a wrong checksum costs no store access"
    );
    // A well-formed key that was never issued: one lookup, refused.
    let (unknown, _) = auth_service::ApiKeyFormat::default().generate();
    assert!(matches!(
        auth.authenticate_api_key(unknown.expose_secret(), None)
            .await,
        Err(Error::TokenInvalid)
    ));

    // The last use is written at most once a minute.
    let used = |events: &EventLog| {
        events
            .events()
            .iter()
            .filter(|e| matches!(e, AuthEvent::ApiKeyUsed { .. }))
            .count()
    };
    let n = used(&events);
    auth.authenticate_api_key(&key, "10.0.0.7".parse().ok())
        .await
        .unwrap();
    assert_eq!(used(&events), n, "within the minute: no write, no event");
    clock.advance(Duration::from_secs(61));
    auth.authenticate_api_key(&key, "10.0.0.7".parse().ok())
        .await
        .unwrap();
    assert_eq!(used(&events), n + 1);
    let listed = auth.list_api_keys(&owner).await.unwrap();
    assert_eq!(listed[0].last_ip.as_deref(), Some("10.0.0.7"));
    assert!(listed[0].last_used_at.is_some());

    // Expiry by the clock.
    let short = auth
        .create_api_key(
            &owner,
            NewApiKey::new("short").expires_in(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    auth.authenticate_api_key(short.key.expose_secret(), None)
        .await
        .expect("valid before expiry");
    clock.advance(Duration::from_secs(61));
    assert!(matches!(
        auth.authenticate_api_key(short.key.expose_secret(), None)
            .await,
        Err(Error::TokenExpired)
    ));

    // Roll with a grace window: both valid, then only the new one.
    let rolled = auth
        .roll_api_key(&owner, &issued.record.id, Duration::from_secs(300))
        .await
        .expect("roll");
    assert_eq!(
        rolled.record.id, issued.record.id,
        "a roll keeps the key's id"
    );
    assert_ne!(rolled.key.expose_secret(), key);
    auth.authenticate_api_key(&key, None)
        .await
        .expect("the old key works during the grace period");
    auth.authenticate_api_key(rolled.key.expose_secret(), None)
        .await
        .expect("the new key works");
    clock.advance(Duration::from_secs(301));
    assert!(
        auth.authenticate_api_key(&key, None).await.is_err(),
        "the old key dies after the grace period"
    );
    auth.authenticate_api_key(rolled.key.expose_secret(), None)
        .await
        .expect("the new key still works");
    let other = ApiKeyOwner::User(auth_service::UserId::new("999999"));
    assert!(
        auth.roll_api_key(&other, &issued.record.id, Duration::ZERO)
            .await
            .is_err(),
        "only the owner rolls a key"
    );

    // Per-key rate limit: 30 concurrent requests, exactly 5 allowed in the window.
    let limited = auth
        .create_api_key(
            &owner,
            NewApiKey::new("limited")
                .with_rate_limit(ApiKeyRateLimit::new(5, Duration::from_secs(3_600)).unwrap()),
        )
        .await
        .unwrap();
    let limited_key = limited.key.expose_secret().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (auth, key) = (auth.clone(), limited_key.clone());
        tasks.push(tokio::spawn(async move {
            auth.authenticate_api_key(&key, None).await
        }));
    }
    let (mut ok, mut limited_out) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => ok += 1,
            Err(Error::RateLimited { .. }) => limited_out += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(
        (ok, limited_out),
        (5, 25),
        "30 concurrent requests on a 5-per-window key"
    );

    // A disabled key is refused like an unknown one, and works again once re-enabled.
    assert!(
        auth.set_api_key_enabled(&owner, &limited.record.id, false)
            .await
            .unwrap()
    );
    assert!(matches!(
        auth.authenticate_api_key(&limited_key, None).await,
        Err(Error::TokenInvalid)
    ));
    assert!(
        auth.set_api_key_enabled(&owner, &limited.record.id, true)
            .await
            .unwrap()
    );
    assert!(
        matches!(
            auth.authenticate_api_key(&limited_key, None).await,
            Err(Error::RateLimited { .. })
        ),
        "re-enabled: back to its (exhausted) window"
    );
    assert!(
        !auth
            .set_api_key_enabled(&other, &limited.record.id, false)
            .await
            .unwrap(),
        "only the owner disables a key"
    );

    // Revoked keys are refused; the owner's deactivation refuses every key and is reported.
    assert!(
        auth.revoke_api_key(&owner, &limited.record.id)
            .await
            .unwrap()
    );
    assert!(matches!(
        auth.authenticate_api_key(&limited_key, None).await,
        Err(Error::TokenInvalid)
    ));
    assert!(
        !auth
            .revoke_api_key(&owner, &limited.record.id)
            .await
            .unwrap()
    );
    auth.set_active(&user_id, false).await.expect("deactivate");
    assert!(matches!(
        auth.authenticate_api_key(rolled.key.expose_secret(), None)
            .await,
        Err(Error::InactiveUser)
    ));
    assert!(
        events
            .events()
            .iter()
            .any(|e| matches!(e, AuthEvent::ApiKeyOwnerInactive { .. })),
        "a deactivated owner's key in use is reported"
    );
    assert!(
        auth.create_api_key(&owner, NewApiKey::new("more"))
            .await
            .is_err(),
        "an inactive user gets no new key"
    );

    // Service accounts.
    assert!(
        auth.create_api_key(&ApiKeyOwner::Service("ci".into()), NewApiKey::new("x"))
            .await
            .is_err(),
        "keys only for registered service accounts"
    );
    assert!(auth.create_service_account("ci").await.unwrap());
    assert!(!auth.create_service_account("ci").await.unwrap());
    let service = ApiKeyOwner::Service("ci".into());
    let ci = auth
        .create_api_key(&service, NewApiKey::new("builds").with_scopes(["*"]))
        .await
        .unwrap();
    let found = auth
        .authenticate_api_key(ci.key.expose_secret(), None)
        .await
        .unwrap();
    assert!(found.user.is_none() && found.key.has_scope("anything"));
    assert_eq!(found.key.owner, service);

    // Validation.
    for bad in [
        NewApiKey::new(""),
        NewApiKey::new("x").with_scopes(["has space"]),
        NewApiKey::new("x").expires_in(Duration::ZERO),
    ] {
        assert!(matches!(
            auth.create_api_key(&service, bad).await,
            Err(Error::Validation(_))
        ));
    }
}

/// Cleanup on `store`: an expired key, a graced-out secret and an old rate-limit window go; a
/// live key stays; a second cleanup finds nothing.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// auth_testkit::conformance::api_key_cleanup(auth_service::MemoryApiKeyStore::new(), "1").await;
/// # });
/// ```
///
/// # Panics
///
/// When cleanup removes too much or too little.
pub async fn api_key_cleanup(store: impl ApiKeyStore, user_id: &str) {
    use auth_service::{ApiKeyRecord, UserId};
    let at = |s: i64| time::OffsetDateTime::from_unix_timestamp(START + s).unwrap();
    let owner = ApiKeyOwner::User(UserId::new(user_id));
    let mut expired = ApiKeyRecord::new("kexp", owner.clone(), "a", vec![], "ak_live_aaaa", at(0));
    expired.expires_at = Some(at(10));
    store.create(&expired, "h-expired").await.unwrap();
    let live = ApiKeyRecord::new("klive", owner.clone(), "b", vec![], "ak_live_bbbb", at(0));
    store.create(&live, "h-old").await.unwrap();
    assert!(store.roll("klive", "h-new", at(20)).await.unwrap());
    assert!(store.reserve("klive", START, 10).await.unwrap());
    let removed = store.cleanup_expired(at(100_000)).await.unwrap();
    assert!(
        removed >= 3,
        "the expired key, the old secret and the old window go ({removed})"
    );
    assert!(store.get("kexp").await.unwrap().is_none());
    assert!(store.find_by_secret("h-old").await.unwrap().is_none());
    assert_eq!(
        store
            .find_by_secret("h-new")
            .await
            .unwrap()
            .map(|f| f.record.id),
        Some("klive".into())
    );
    assert_eq!(store.cleanup_expired(at(100_000)).await.unwrap(), 0);
}
