//! The revocation mirror and the user cache: answers from memory, exact through the feed,
//! closed (the store answers) while the feed is down, bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use auth_service::{
    AuthConfig, AuthService, Change, ChangeFeed, Error, FixedClock, LocalFeed,
    MemoryRevocationStore, MemoryTokenBackend, MemoryUserStore, NewUser, RevocationMirror,
    RevocationQuery, RevocationStore, User, UserCache, UserId, UserStore, async_trait,
};
use auth_testkit::{TestHasher, conformance};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::common::{PASSWORD, START};

const READY: Duration = Duration::from_secs(5);

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

fn access(jti: &str, user: &str) -> RevocationQuery {
    RevocationQuery::new(jti, UserId::new(user), START).with_consumable(false)
}

/// A store that counts the checks it answers, to prove which ones a mirror answered itself.
#[derive(Clone)]
struct Counting {
    inner: MemoryRevocationStore,
    checks: Arc<AtomicU64>,
    listable: bool,
}

impl Counting {
    fn new(clock: &FixedClock) -> Self {
        Self {
            inner: MemoryRevocationStore::new().with_clock(clock.clone()),
            checks: Arc::default(),
            listable: true,
        }
    }

    fn checks(&self) -> u64 {
        self.checks.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl RevocationStore for Counting {
    async fn revoke(&self, jti: &str, exp: OffsetDateTime) -> auth_service::Result<()> {
        self.inner.revoke(jti, exp).await
    }
    async fn consume(&self, jti: &str, exp: OffsetDateTime) -> auth_service::Result<bool> {
        self.inner.consume(jti, exp).await
    }
    async fn revoke_family(&self, family: &str, exp: OffsetDateTime) -> auth_service::Result<()> {
        self.inner.revoke_family(family, exp).await
    }
    async fn revoke_user(
        &self,
        user: &UserId,
        nb: OffsetDateTime,
        keep: Option<&str>,
    ) -> auth_service::Result<()> {
        self.inner.revoke_user(user, nb, keep).await
    }
    async fn is_revoked(&self, q: &RevocationQuery) -> auth_service::Result<bool> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        self.inner.is_revoked(q).await
    }
    async fn cleanup_expired(&self) -> auth_service::Result<u64> {
        self.inner.cleanup_expired().await
    }
    async fn live_revocations(&self) -> auth_service::Result<Option<Vec<Change>>> {
        if self.listable {
            self.inner.live_revocations().await
        } else {
            Ok(None)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_mirror_passes_the_revocation_suite() {
    conformance::revocation_store(|clock| async move {
        let store = MemoryRevocationStore::new().with_clock(clock.clone());
        let mirror = RevocationMirror::new(store, LocalFeed::new()).with_clock(clock);
        assert!(mirror.wait_ready(READY).await);
        mirror
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_checks_cost_no_store_round_trip() {
    let clock = FixedClock::from_unix(START);
    let store = Counting::new(&clock);
    let mirror = RevocationMirror::new(store.clone(), LocalFeed::new()).with_clock(clock.clone());
    assert!(mirror.wait_ready(READY).await);
    mirror.revoke("gone", at(START + 900)).await.unwrap();
    mirror
        .revoke_family("fam-out", at(START + 900))
        .await
        .unwrap();
    mirror
        .revoke_user(&UserId::new("7"), at(START + 10), None)
        .await
        .unwrap();
    for _ in 0..100 {
        assert!(mirror.is_revoked(&access("gone", "1")).await.unwrap());
        assert!(!mirror.is_revoked(&access("alive", "1")).await.unwrap());
        assert!(
            mirror
                .is_revoked(&access("x", "1").with_family("fam-out"))
                .await
                .unwrap()
        );
        assert!(
            mirror.is_revoked(&access("y", "7")).await.unwrap(),
            "cut-off"
        );
    }
    assert_eq!(store.checks(), 0, "400 checks, none asked the store");

    // A consumed id is only in the store: a consumable query not held in memory asks it.
    assert!(mirror.consume("refresh-1", at(START + 900)).await.unwrap());
    let refresh = RevocationQuery::new("refresh-1", UserId::new("1"), START);
    assert!(mirror.is_revoked(&refresh).await.unwrap());
    assert_eq!(store.checks(), 1);
    assert_eq!(mirror.status().store_checks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_instance_is_refused_by_another() {
    let clock = FixedClock::from_unix(START);
    let shared = Counting::new(&clock);
    let feed = LocalFeed::new();
    let a = RevocationMirror::new(shared.clone(), feed.clone()).with_clock(clock.clone());
    let b = RevocationMirror::new(shared.clone(), feed.clone()).with_clock(clock.clone());
    assert!(a.wait_ready(READY).await && b.wait_ready(READY).await);

    a.revoke("t1", at(START + 900)).await.unwrap();
    a.revoke_family("f1", at(START + 900)).await.unwrap();
    a.consume_with("r1", at(START + 900), Some(("paired", at(START + 900))))
        .await
        .unwrap();
    assert!(b.is_revoked(&access("t1", "1")).await.unwrap());
    assert!(
        b.is_revoked(&access("z", "1").with_family("f1"))
            .await
            .unwrap()
    );
    assert!(b.is_revoked(&access("paired", "1")).await.unwrap());
    assert_eq!(shared.checks(), 0, "b knew from the feed");
    assert_eq!(b.status().entries, 3);

    // The feed goes down: b may have missed changes, so it asks the store (fail closed).
    feed.hub().down("simulated outage");
    assert!(!b.status().ready);
    // A revocation b's feed never delivers (written straight to the store).
    shared.revoke("missed", at(START + 900)).await.unwrap();
    assert!(
        b.is_revoked(&access("missed", "1")).await.unwrap(),
        "the store answers"
    );
    assert!(!b.is_revoked(&access("fine", "1")).await.unwrap());
    assert_eq!(shared.checks(), 2);

    // Back up: b reloads from the store and answers from memory again, missed entry included.
    feed.hub().up();
    assert!(b.wait_ready(READY).await);
    let before = shared.checks();
    assert!(b.is_revoked(&access("missed", "1")).await.unwrap());
    assert_eq!(shared.checks(), before, "loaded into memory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_list_is_always_asked() {
    let clock = FixedClock::from_unix(START);
    let mut store = Counting::new(&clock);
    store.listable = false;
    let mirror = RevocationMirror::new(store.clone(), LocalFeed::new());
    assert!(!mirror.wait_ready(Duration::from_millis(200)).await);
    mirror.revoke("t", at(START + 900)).await.unwrap();
    assert!(mirror.is_revoked(&access("t", "1")).await.unwrap());
    assert!(!mirror.is_revoked(&access("u", "1")).await.unwrap());
    assert_eq!(store.checks(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_is_bounded_and_expired_entries_leave() {
    let clock = FixedClock::from_unix(START);
    let store = Counting::new(&clock);
    let feed = LocalFeed::new();
    let mirror = RevocationMirror::new(store.clone(), feed.clone())
        .with_clock(clock.clone())
        .with_max_entries(10);
    assert!(mirror.wait_ready(READY).await);
    for i in 0..8 {
        mirror
            .revoke(&format!("t{i}"), at(START + 60))
            .await
            .unwrap();
    }
    assert_eq!(mirror.status().entries, 8);
    // Past capacity: it holds nothing (memory stays bounded however many arrive) and every
    // check is one lookup in the store, never a collapse; the feed stays live.
    for i in 8..1_000 {
        mirror
            .revoke(&format!("t{i}"), at(START + 60))
            .await
            .unwrap();
    }
    let status = mirror.status();
    assert_eq!(status.entries, 0, "over capacity it holds nothing");
    assert!(!status.ready, "over capacity: the store answers");
    assert!(status.feed.live, "the feed is unaffected");
    for (i, jti) in ["t3", "t999", "t99x"].iter().enumerate() {
        let revoked = mirror.is_revoked(&access(jti, "1")).await.unwrap();
        assert_eq!(revoked, *jti != "t99x");
        assert_eq!(store.checks(), i as u64 + 1, "one store lookup per check");
    }
    // Another instance's revocation still counts while over capacity.
    feed.publish(&[Change::TokenRevoked {
        jti: "elsewhere".into(),
        until: at(START + 60),
    }])
    .await
    .unwrap();
    store.revoke("elsewhere", at(START + 60)).await.unwrap();
    assert!(mirror.is_revoked(&access("elsewhere", "1")).await.unwrap());

    // What they revoked expires; cleaning up is the moment to load again.
    clock.advance(Duration::from_secs(61));
    mirror.revoke("late", at(START + 200)).await.unwrap();
    assert!(mirror.cleanup_expired().await.unwrap() > 0);
    assert!(
        mirror.wait_ready(READY).await,
        "back under capacity: memory again"
    );
    let status = mirror.status();
    assert_eq!(status.entries, 1, "only what is still live");
    let checks = store.checks();
    assert!(mirror.is_revoked(&access("late", "1")).await.unwrap());
    assert!(!mirror.is_revoked(&access("t3", "1")).await.unwrap());
    assert_eq!(store.checks(), checks, "answered from memory again");
}

/// A store that lists its revocations in pages of three, to prove a mirror loads page by page
/// and stops a load that would not fit.
#[derive(Clone)]
struct Paged(Counting, Arc<AtomicU64>);

#[async_trait]
impl RevocationStore for Paged {
    async fn revoke(&self, jti: &str, exp: OffsetDateTime) -> auth_service::Result<()> {
        self.0.revoke(jti, exp).await
    }
    async fn consume(&self, jti: &str, exp: OffsetDateTime) -> auth_service::Result<bool> {
        self.0.consume(jti, exp).await
    }
    async fn revoke_family(&self, family: &str, exp: OffsetDateTime) -> auth_service::Result<()> {
        self.0.revoke_family(family, exp).await
    }
    async fn revoke_user(
        &self,
        user: &UserId,
        nb: OffsetDateTime,
        keep: Option<&str>,
    ) -> auth_service::Result<()> {
        self.0.revoke_user(user, nb, keep).await
    }
    async fn is_revoked(&self, q: &RevocationQuery) -> auth_service::Result<bool> {
        self.0.is_revoked(q).await
    }
    async fn cleanup_expired(&self) -> auth_service::Result<u64> {
        self.0.cleanup_expired().await
    }
    async fn scan_revocations(
        &self,
        each: &mut (dyn for<'c> FnMut(&'c [Change]) -> bool + Send),
    ) -> auth_service::Result<bool> {
        let all = self.0.inner.live_revocations().await?.unwrap_or_default();
        for page in all.chunks(3) {
            self.1.fetch_add(1, Ordering::SeqCst);
            if !each(page) {
                break;
            }
        }
        Ok(true)
    }
}

// One thread: no load begins before the chain of options is built, so the pages counted are
// exactly those of the mirror in use (an option stops the load of the mirror it replaces).
#[tokio::test]
async fn a_load_goes_page_by_page_and_stops_when_it_cannot_fit() {
    let clock = FixedClock::from_unix(START);
    let inner = Counting::new(&clock);
    for i in 0..30 {
        inner
            .revoke(&format!("t{i}"), at(START + 60))
            .await
            .unwrap();
    }
    let pages = Arc::new(AtomicU64::new(0));
    let store = Paged(inner.clone(), Arc::clone(&pages));
    let roomy = RevocationMirror::new(store.clone(), LocalFeed::new()).with_clock(clock.clone());
    assert!(roomy.wait_ready(READY).await);
    assert_eq!(roomy.status().entries, 30);
    assert_eq!(
        pages.load(Ordering::SeqCst),
        10,
        "ten pages of three, read once"
    );
    assert!(roomy.is_revoked(&access("t29", "1")).await.unwrap());

    pages.store(0, Ordering::SeqCst);
    let small = RevocationMirror::new(store, LocalFeed::new())
        .with_clock(clock)
        .with_max_entries(10);
    assert!(!small.wait_ready(Duration::from_millis(300)).await);
    assert_eq!(
        small.status().entries,
        0,
        "a load that cannot fit keeps nothing"
    );
    // It stopped at its fourth page (12 entries > 10), not the tenth.
    assert_eq!(
        pages.load(Ordering::SeqCst),
        4,
        "it stopped reading once over capacity"
    );
    assert!(small.is_revoked(&access("t29", "1")).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_change_never_grants_an_exemption() {
    let clock = FixedClock::from_unix(START);
    let feed = LocalFeed::new();
    let mirror =
        RevocationMirror::new(MemoryRevocationStore::new(), feed.clone()).with_clock(clock.clone());
    assert!(mirror.wait_ready(READY).await);
    let user = UserId::new("9");
    let cutoff = |nb: i64, keep: Option<&str>| Change::UserCutoff {
        user: user.clone(),
        not_before_us: nb * 1_000_000,
        keep: keep.map(str::to_owned),
        until: at(START + 86_400),
    };
    let kept = access("k", "9").with_family("kept");
    // Newer cut-off keeping a session, then an older one arriving late without it.
    feed.publish(&[cutoff(START + 20, Some("kept"))])
        .await
        .unwrap();
    assert!(!mirror.is_revoked(&kept).await.unwrap());
    feed.publish(&[cutoff(START + 10, None)]).await.unwrap();
    assert!(
        mirror.is_revoked(&kept).await.unwrap(),
        "the late change ends it"
    );
    // An older change naming a session cannot exempt it.
    feed.publish(&[cutoff(START + 5, Some("kept"))])
        .await
        .unwrap();
    assert!(mirror.is_revoked(&kept).await.unwrap());
}

/// A user store that counts loads by id and can hold one load back until told.
#[derive(Clone)]
struct Gated {
    inner: MemoryUserStore,
    loads: Arc<AtomicU64>,
    hold: Arc<std::sync::atomic::AtomicBool>,
    loaded: Arc<Notify>,
    release: Arc<Notify>,
}

impl Gated {
    fn new() -> Self {
        Self {
            inner: MemoryUserStore::new(),
            loads: Arc::default(),
            hold: Arc::default(),
            loaded: Arc::default(),
            release: Arc::default(),
        }
    }
}

#[async_trait]
impl UserStore for Gated {
    type User = User;
    async fn find_by_email(&self, email: &str) -> auth_service::Result<Option<User>> {
        self.inner.find_by_email(email).await
    }
    async fn find_by_id(&self, id: &UserId) -> auth_service::Result<Option<User>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let user = self.inner.find_by_id(id).await?;
        if self.hold.swap(false, Ordering::SeqCst) {
            self.loaded.notify_one();
            self.release.notified().await;
        }
        Ok(user)
    }
    async fn create(&self, user: NewUser) -> auth_service::Result<User> {
        self.inner.create(user).await
    }
    async fn set_password_hash(&self, id: &UserId, hash: &str) -> auth_service::Result<()> {
        self.inner.set_password_hash(id, hash).await
    }
    async fn replace_password_hash(
        &self,
        id: &UserId,
        expected: Option<&str>,
        new_hash: &str,
    ) -> auth_service::Result<bool> {
        self.inner
            .replace_password_hash(id, expected, new_hash)
            .await
    }
    async fn record_login(&self, id: &UserId, at: OffsetDateTime) -> auth_service::Result<()> {
        self.inner.record_login(id, at).await
    }
    async fn set_active(&self, id: &UserId, active: bool) -> auth_service::Result<()> {
        self.inner.set_active(id, active).await
    }
    async fn set_verified(&self, id: &UserId, verified: bool) -> auth_service::Result<()> {
        self.inner.set_verified(id, verified).await
    }
}

fn service(users: Gated, tokens: MemoryTokenBackend, cache: UserCache<User>) -> AuthService {
    AuthService::new(AuthConfig::default(), users, TestHasher::fast(), tokens)
        .unwrap()
        .with_user_cache(cache)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticate_loads_a_user_once_and_every_instance_sees_changes() {
    let (users, tokens, feed) = (Gated::new(), MemoryTokenBackend::new(), LocalFeed::new());
    // Two instances over the same stores and feed.
    let a = service(users.clone(), tokens.clone(), UserCache::new(feed.clone()));
    let b = service(users.clone(), tokens.clone(), UserCache::new(feed.clone()));
    let user = a.register("kim@example.com", PASSWORD).await.unwrap();
    let login = a.login("kim@example.com", PASSWORD).await.unwrap();
    let loads = || users.loads.load(Ordering::SeqCst);
    let start = loads();
    for _ in 0..50 {
        a.authenticate(login.access_token()).await.unwrap();
        b.authenticate(login.access_token()).await.unwrap();
    }
    assert_eq!(loads() - start, 2, "one load per instance for 100 requests");
    assert_eq!(a.user_cache().unwrap().status().hits, 49);

    // Deactivated through a's store (no token revocation: only the cache can refuse it):
    // refused at once by both.
    a.parts().users.set_active(&user.id, false).await.unwrap();
    assert!(matches!(
        b.authenticate(login.access_token()).await,
        Err(Error::InactiveUser)
    ));
    assert!(matches!(
        a.authenticate(login.access_token()).await,
        Err(Error::InactiveUser)
    ));
    // Refresh checks the user through the cache too.
    assert!(b.refresh(login.refresh_token()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_feed_is_down_every_load_asks_the_store() {
    let (users, tokens, feed) = (Gated::new(), MemoryTokenBackend::new(), LocalFeed::new());
    let auth = service(users.clone(), tokens, UserCache::new(feed.clone()));
    let user = auth.register("lu@example.com", PASSWORD).await.unwrap();
    let login = auth.login("lu@example.com", PASSWORD).await.unwrap();
    auth.authenticate(login.access_token()).await.unwrap();
    feed.hub().down("simulated outage");
    // A change the feed never carries (straight into the store).
    users.inner.set_active(&user.id, false).await.unwrap();
    assert!(matches!(
        auth.authenticate(login.access_token()).await,
        Err(Error::InactiveUser)
    ));
    users.inner.set_active(&user.id, true).await.unwrap();
    feed.hub().up();
    let before = users.loads.load(Ordering::SeqCst);
    auth.authenticate(login.access_token()).await.unwrap();
    auth.authenticate(login.access_token()).await.unwrap();
    assert_eq!(
        users.loads.load(Ordering::SeqCst) - before,
        1,
        "cached again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_user_reads_the_store_not_the_cache() {
    let (users, tokens, feed) = (Gated::new(), MemoryTokenBackend::new(), LocalFeed::new());
    let auth = service(users.clone(), tokens, UserCache::new(feed));
    let user = auth.register("oz@example.com", PASSWORD).await.unwrap();
    let login = auth.login("oz@example.com", PASSWORD).await.unwrap();
    assert!(
        !auth
            .authenticate(login.access_token())
            .await
            .unwrap()
            .is_verified
    );
    // Confirmed on another instance whose invalidation has not arrived yet (here: straight
    // into the store, which the feed never carries).
    users.inner.set_verified(&user.id, true).await.unwrap();
    assert!(
        !auth
            .authenticate(login.access_token())
            .await
            .unwrap()
            .is_verified,
        "the hot path answers from the cached copy"
    );
    assert!(auth.find_user(&user.id).await.unwrap().unwrap().is_verified);
    assert!(
        auth.find_user_by_email("oz@example.com")
            .await
            .unwrap()
            .unwrap()
            .is_verified
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_expire_after_max_age() {
    let clock = FixedClock::from_unix(START);
    let (users, tokens) = (
        Gated::new(),
        MemoryTokenBackend::new().with_clock(clock.clone()),
    );
    let cache = UserCache::new(LocalFeed::new())
        .with_clock(clock.clone())
        .with_max_age(Duration::from_secs(60));
    let auth = service(users.clone(), tokens, cache).with_clock(clock.clone());
    auth.register("mo@example.com", PASSWORD).await.unwrap();
    let login = auth.login("mo@example.com", PASSWORD).await.unwrap();
    let loads = || users.loads.load(Ordering::SeqCst);
    auth.authenticate(login.access_token()).await.unwrap();
    let start = loads();
    auth.authenticate(login.access_token()).await.unwrap();
    assert_eq!(loads(), start);
    clock.advance(Duration::from_secs(61));
    auth.authenticate(login.access_token()).await.unwrap();
    assert_eq!(loads(), start + 1, "a stale entry is loaded again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_that_raced_a_change_is_not_cached() {
    let (users, tokens, feed) = (Gated::new(), MemoryTokenBackend::new(), LocalFeed::new());
    let auth = service(users.clone(), tokens, UserCache::new(feed));
    let user = auth.register("ned@example.com", PASSWORD).await.unwrap();
    let login = auth.login("ned@example.com", PASSWORD).await.unwrap();
    let token = login.access_token().to_owned();
    // A request reads the (active) user, then stalls before caching it...
    users.hold.store(true, Ordering::SeqCst);
    let loaded = users.loaded.notified();
    let stalled = tokio::spawn({
        let auth = auth.clone();
        let token = token.clone();
        async move { auth.authenticate(&token).await }
    });
    loaded.await;
    // ...while the user is deactivated (through the service's store: no token revocation, so
    // only the cache decides).
    auth.parts()
        .users
        .set_active(&user.id, false)
        .await
        .unwrap();
    users.release.notify_one();
    assert!(
        stalled.await.unwrap().is_ok(),
        "it read the user before the change"
    );
    // The stale copy was not kept.
    assert!(matches!(
        auth.authenticate(&token).await,
        Err(Error::InactiveUser)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_is_bounded() {
    let (users, tokens) = (Gated::new(), MemoryTokenBackend::new());
    let cache = UserCache::new(LocalFeed::new()).with_capacity(3);
    let auth = service(users, tokens, cache);
    for i in 0..6 {
        let email = format!("u{i}@example.com");
        auth.register(&email, PASSWORD).await.unwrap();
        let login = auth.login(&email, PASSWORD).await.unwrap();
        auth.authenticate(login.access_token()).await.unwrap();
    }
    assert_eq!(auth.user_cache().unwrap().status().entries, 3);
}

#[test]
fn changes_survive_encoding() {
    let until = at(START + 900) + time::Duration::microseconds(123_456);
    for c in [
        Change::TokenRevoked {
            jti: "abc-_9".into(),
            until,
        },
        Change::FamilyRevoked {
            family: "f %\n".into(),
            until,
        },
        Change::UserCutoff {
            user: UserId::new("user with spaces"),
            not_before_us: 1_700_000_000_123_456,
            keep: None,
            until,
        },
        Change::UserChanged {
            user: UserId::new("42"),
        },
    ] {
        let line = c.encode();
        assert!(!line.contains('\n'));
        assert_eq!(Change::decode(&line), Some(c));
    }
    for bad in ["", "t", "t x y", "t 1 a b", "u 1 2 keep 3", "c a%ZZ", "z 1"] {
        assert_eq!(Change::decode(bad), None, "{bad:?}");
    }
}

/// With an outage grace, a feed that goes down does not stop checks answered from memory: the
/// mirror and the user cache vouch for what they hold until the grace is over (a change the
/// feed could not deliver is honoured that late), then the store answers (fail closed). A feed
/// back within the grace reloads as always.
#[tokio::test(start_paused = true)]
async fn memory_vouches_for_the_outage_grace_then_fails_closed() {
    let clock = FixedClock::from_unix(START);
    let store = Counting::new(&clock);
    let feed = LocalFeed::new();
    let grace = Duration::from_secs(30);
    let mirror = RevocationMirror::new(store.clone(), feed.clone())
        .with_clock(clock.clone())
        .with_outage_grace(grace);
    let users = UserCache::<User>::new(feed.clone()).with_outage_grace(grace);
    assert!(mirror.wait_ready(READY).await);
    mirror.revoke("t1", at(START + 900)).await.unwrap();

    feed.hub().down("database unreachable");
    assert!(mirror.status().ready && mirror.status().in_outage_grace);
    assert!(users.status().live, "the user cache vouches too");
    // Written behind the feed's back: memory cannot know of it during the grace.
    store.revoke("missed", at(START + 900)).await.unwrap();
    assert!(mirror.is_revoked(&access("t1", "1")).await.unwrap());
    assert!(!mirror.is_revoked(&access("fine", "1")).await.unwrap());
    assert!(!mirror.is_revoked(&access("missed", "1")).await.unwrap());
    assert_eq!(store.checks(), 0, "answered from memory");
    // The feed says so again and again: the grace is not extended.
    tokio::time::sleep(grace / 2).await;
    feed.hub().down("still unreachable");
    assert!(mirror.status().ready);

    tokio::time::sleep(grace / 2 + Duration::from_millis(10)).await;
    assert!(!mirror.status().ready && !mirror.status().in_outage_grace);
    assert!(!users.status().live);
    assert!(
        mirror.is_revoked(&access("missed", "1")).await.unwrap(),
        "past the grace the store answers"
    );
    assert_eq!(store.checks(), 1);

    // Back: reload, memory again; a later outage has a grace of its own.
    feed.hub().up();
    assert!(mirror.wait_ready(READY).await);
    assert!(users.status().live);
    assert!(mirror.is_revoked(&access("missed", "1")).await.unwrap());
    assert_eq!(store.checks(), 1, "loaded into memory");
    feed.hub().down("again");
    assert!(mirror.status().in_outage_grace);
    tokio::time::sleep(Duration::from_secs(1)).await;
    feed.hub().up();
    assert!(mirror.wait_ready(READY).await);
    assert!(!mirror.status().in_outage_grace);
    tokio::time::sleep(grace).await;
    assert!(
        mirror.status().ready,
        "the ended outage's timer suspends nothing"
    );
}
