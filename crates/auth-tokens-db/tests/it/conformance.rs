//! The shared TokenBackend suite and AuthService flows on every database.

use auth_service::{
    AuthConfig, AuthService, Error, LoginOptions, SessionMeta, TokenBackend, TokenKind, UserStore,
};
use auth_testkit::TestHasher;
use auth_testkit::conformance;
use auth_testkit::db::{Target, fresh};
use auth_tokens_db::DbTokenBackend;
use auth_users_db::DbUserStore;
use auth_users_db::entity::user;
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, Set};
use sea_orm_migration::MigrationTrait;

fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    let mut all = auth_users_db::migrations();
    all.extend(auth_tokens_db::migrations());
    all
}

/// The users the conformance suite issues tokens for (rows must satisfy the foreign keys).
async fn seed_users(db: &DatabaseConnection) {
    for id in [7_i64, 8, 9] {
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap();
        user::ActiveModel {
            id: Set(id),
            email: Set(format!("user{id}@example.com")),
            password_hash: Set(None),
            is_active: Set(true),
            is_verified: Set(false),
            last_login: Set(None),
            joined_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            profile: Set(None),
        }
        .insert(db)
        .await
        .unwrap();
    }
}

async fn suite(target: Target) {
    let Some(probe) = fresh(target, migrations).await else {
        return;
    };
    drop(probe);
    conformance::token_backend(|clock| async move {
        let db = fresh(target, migrations).await.unwrap();
        seed_users(&db).await;
        DbTokenBackend::new(db).with_clock(clock)
    })
    .await;
    conformance::refresh_reuse_window(|clock| async move {
        let db = fresh(target, migrations).await.unwrap();
        seed_users(&db).await;
        DbTokenBackend::new(db)
            .with_successor_key(b"a-server-secret-of-at-least-32-bytes!!")
            .with_clock(clock)
    })
    .await;
    flows(target).await;
}

async fn flows(target: Target) {
    let db = fresh(target, migrations).await.unwrap();
    let users = DbUserStore::new(db.clone());
    let tokens = DbTokenBackend::new(db.clone());
    let config = AuthConfig::builder()
        .rate_limit_max_attempts(1000)
        .build()
        .unwrap();
    let auth = AuthService::new(config, users.clone(), TestHasher::fast(), tokens.clone()).unwrap();
    let alice = auth
        .register("alice@example.com", "violet-otter-sings-42")
        .await
        .unwrap();

    // 100 concurrent logins of one user: 100 sessions, all valid.
    let mut tasks = Vec::new();
    for i in 0..100 {
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            let meta = SessionMeta::new().with_user_agent(format!("device-{i}"));
            auth.login_with(
                "alice@example.com",
                "violet-otter-sings-42",
                LoginOptions::new().with_meta(meta),
            )
            .await
        }));
    }
    let mut logins = Vec::new();
    for t in tasks {
        logins.push(
            t.await
                .unwrap()
                .unwrap_or_else(|e| panic!("{target:?}: {e}")),
        );
    }
    assert_eq!(
        auth.sessions(&alice.id).await.unwrap().len(),
        100,
        "{target:?}"
    );
    for l in logins.iter().step_by(17) {
        assert!(auth.authenticate(l.access_token()).await.is_ok());
    }

    // Logout everywhere but one; then the user row goes and its tokens go with it (cascade).
    let keep = auth
        .verify_access(logins[0].access_token())
        .await
        .unwrap()
        .family;
    assert_eq!(
        tokens.revoke_all(&alice.id, keep.as_deref()).await.unwrap(),
        99
    );
    assert!(auth.authenticate(logins[0].access_token()).await.is_ok());
    assert!(matches!(
        auth.authenticate(logins[1].access_token()).await,
        Err(Error::TokenRevoked)
    ));
    user::Entity::delete_by_id(alice.id.as_str().parse::<i64>().unwrap())
        .exec(&db)
        .await
        .unwrap();
    assert!(
        matches!(
            tokens
                .verify(logins[0].access_token(), TokenKind::Access)
                .await,
            Err(Error::TokenInvalid)
        ),
        "{target:?}: deleting a user deletes its tokens"
    );
    assert!(
        users
            .find_by_email("alice@example.com")
            .await
            .unwrap()
            .is_none()
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
