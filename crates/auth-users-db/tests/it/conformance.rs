//! The shared UserStore suite, and AuthService over the table, on every database.

use auth_service::{AuthConfig, AuthService, Error, MemoryTokenBackend, UserStore};
use auth_testkit::{TestHasher, conformance};
use auth_users_db::DbUserStore;

use auth_testkit::db::{Target, fresh};
use sea_orm::DatabaseConnection;

async fn database(target: Target) -> Option<DatabaseConnection> {
    fresh(target, auth_users_db::migrations).await
}

async fn suite(target: Target) {
    if database(target).await.is_none() {
        return;
    }
    conformance::user_store(|| async move { DbUserStore::new(database(target).await.unwrap()) })
        .await;
    flows(target).await;
    profiles(target).await;
    conformance::audit_store(|| async move {
        auth_users_db::DbAuditStore::new(database(target).await.unwrap())
    })
    .await;
}

/// `update_profile` merges keys (20 concurrent merges of different keys lose none) and knows
/// unknown users.
async fn profiles(target: Target) {
    let store = DbUserStore::new(database(target).await.unwrap());
    let user = store
        .create(auth_service::NewUser::new("profile@example.com"))
        .await
        .unwrap();
    let mut first = serde_json::Map::new();
    first.insert("first_name".into(), "Ann".into());
    store.update_profile(&user.id, first).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (store, id) = (store.clone(), user.id.clone());
        tasks.push(tokio::spawn(async move {
            let mut m = serde_json::Map::new();
            m.insert(format!("k{i}"), i.into());
            store.update_profile(&id, m).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let stored = store.find_by_id(&user.id).await.unwrap().unwrap();
    assert_eq!(stored.profile["first_name"], "Ann");
    assert_eq!(stored.profile.len(), 21, "{:?}", stored.profile);
    assert!(matches!(
        store
            .update_profile(&auth_service::UserId::new("999999"), serde_json::Map::new())
            .await,
        Err(Error::UserNotFound)
    ));
}

/// Registration, login with upgrade, profile and a 20-way registration race through AuthService.
async fn flows(target: Target) {
    let db = database(target).await.unwrap();
    let store = DbUserStore::new(db);
    let auth = AuthService::new(
        AuthConfig::default(),
        store.clone(),
        TestHasher::with_iterations(2),
        MemoryTokenBackend::new(),
    )
    .unwrap();
    let user = auth
        .register("Alice@Example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    assert_eq!(user.email, "alice@example.com");
    assert!(user.joined_at.is_some());
    let login = auth
        .login("ALICE@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    let me = auth.authenticate(login.access_token()).await.unwrap();
    assert!(me.last_login.is_some(), "record_login persisted");
    assert!(me.profile.is_empty());

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            auth.register("race@example.com", "violet-otter-sings-42")
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::EmailTaken) => {}
            Err(other) => panic!("{target:?}: {other:?}"),
        }
    }
    assert_eq!(
        ok, 1,
        "{target:?}: 20 concurrent registrations of one email make one user"
    );
    assert!(
        store
            .find_by_email("race@example.com")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_memory() {
    suite(Target::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file() {
    suite(Target::SqliteFile).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    suite(Target::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql() {
    suite(Target::MySql).await;
}

mod rate_limiter {
    use auth_testkit::conformance;
    use auth_testkit::db::{Target, fresh};
    use auth_users_db::DbRateLimiter;

    async fn suite(target: Target) {
        if fresh(target, auth_users_db::migrations).await.is_none() {
            return;
        }
        conformance::rate_limiter(|clock, policy| async move {
            DbRateLimiter::new(
                fresh(target, auth_users_db::migrations).await.unwrap(),
                policy,
            )
            .with_clock(clock)
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_memory() {
        suite(Target::SqliteMemory).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        suite(Target::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn mysql() {
        suite(Target::MySql).await;
    }
}
