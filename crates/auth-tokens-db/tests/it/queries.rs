//! Query counts per operation: `authenticate` is one statement (token joined with session and
//! user), on every database.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use auth_service::{AuthConfig, AuthService, TokenBackend, TokenKind};
use auth_testkit::TestHasher;
use auth_testkit::db::{Target, fresh};
use auth_tokens_db::DbTokenBackend;
use auth_users_db::DbUserStore;

fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
    let mut all = auth_users_db::migrations();
    all.extend(auth_tokens_db::migrations());
    all
}

async fn counts(target: Target) {
    let Some(mut db) = fresh(target, migrations).await else {
        return;
    };
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&statements);
    db.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let tokens = DbTokenBackend::new(db.clone());
    let auth = AuthService::new(
        AuthConfig::default(),
        DbUserStore::new(db),
        TestHasher::fast(),
        tokens.clone(),
    )
    .unwrap()
    .with_token_user_lookup(tokens.clone());
    auth.register("alice@example.com", "violet-otter-sings-42")
        .await
        .unwrap();

    let measure = |name: &'static str| {
        let statements = Arc::clone(&statements);
        let before = statements.load(Ordering::SeqCst);
        move || {
            let n = statements.load(Ordering::SeqCst) - before;
            println!("{target:?} {name}: {n} statements");
            n
        }
    };
    let done = measure("login");
    let login = auth
        .login("alice@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    done();
    let done = measure("authenticate");
    let me = auth.authenticate(login.access_token()).await.unwrap();
    assert_eq!(done(), 1, "{target:?}: authenticate is one query");
    assert_eq!(me.email, "alice@example.com");
    let done = measure("verify_access");
    auth.verify_access(login.access_token()).await.unwrap();
    assert_eq!(done(), 1, "{target:?}: verify is one query");
    let done = measure("verify (backend)");
    tokens
        .verify(login.access_token(), TokenKind::Access)
        .await
        .unwrap();
    assert_eq!(done(), 1);
    let done = measure("refresh");
    let next = auth.refresh(login.refresh_token()).await.unwrap();
    done();
    let done = measure("logout");
    auth.logout(next.access_token.expose_secret())
        .await
        .unwrap();
    done();
    // Failures through the joined path look the same as through the two-step path.
    assert!(matches!(
        auth.authenticate(next.access_token.expose_secret()).await,
        Err(auth_service::Error::TokenRevoked)
    ));
    assert!(matches!(
        auth.authenticate(login.refresh_token()).await,
        Err(auth_service::Error::TokenInvalid)
    ));
    assert!(matches!(
        auth.authenticate("nope").await,
        Err(auth_service::Error::TokenInvalid)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_memory() {
    counts(Target::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    counts(Target::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql() {
    counts(Target::MySql).await;
}
