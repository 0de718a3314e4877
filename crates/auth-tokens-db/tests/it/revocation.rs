//! The SQL revocation store passes the shared suite, alone and under the JWT backend.

use auth_testkit::conformance;
use auth_testkit::db::{Target, fresh};
use auth_tokens_db::DbRevocationStore;
use auth_tokens_jwt::{Algorithm, JwtBackend};

const SECRET: &str = "jwt-secret-0123456789abcdef0123456789abcdef";

fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
    // The token tables reference the users table, so it comes first.
    let mut all = auth_users_db::migrations();
    all.extend(auth_tokens_db::migrations());
    all
}

async fn suite(target: Target) {
    if fresh(target, migrations).await.is_none() {
        return;
    }
    conformance::revocation_store(|clock| async move {
        DbRevocationStore::new(fresh(target, migrations).await.unwrap()).with_clock(clock)
    })
    .await;
    conformance::token_backend(|clock| async move {
        let store = DbRevocationStore::new(fresh(target, migrations).await.unwrap())
            .with_clock(clock.clone());
        JwtBackend::try_hmac(Algorithm::HS256, SECRET)
            .unwrap()
            .with_revocation_store(store)
            .with_clock(clock)
    })
    .await;
    conformance::refresh_reuse_window(|clock| async move {
        let store = DbRevocationStore::new(fresh(target, migrations).await.unwrap())
            .with_clock(clock.clone());
        JwtBackend::try_hmac(Algorithm::HS256, SECRET)
            .unwrap()
            .with_revocation_store(store)
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

/// A mirror loads the SQL store page by page (10,000 rows each, by primary key): 25,003 live
/// revocations arrive whole, consumed and expired ids stay out, and a reader that stops is
/// not read to the end.
async fn scan_in_pages(target: Target) {
    use auth_service::{Change, RevocationStore};
    use sea_orm::ConnectionTrait;
    let Some(db) = fresh(target, migrations).await else {
        return;
    };
    let store = DbRevocationStore::new(db.clone());
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let earlier = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    for chunk in 0..25 {
        let mut insert = sea_orm::sea_query::Query::insert()
            .into_table(sea_orm::sea_query::Alias::new("auth_revoked_tokens"))
            .columns([
                sea_orm::sea_query::Alias::new("jti"),
                sea_orm::sea_query::Alias::new("expires_at"),
            ])
            .to_owned();
        for i in 0..1_000 {
            insert.values_panic([format!("j{chunk:02}-{i:04}").into(), later.into()]);
        }
        db.execute(&insert).await.unwrap();
    }
    store.revoke("one-more", later).await.unwrap();
    store.revoke_family("fam", later).await.unwrap();
    store
        .revoke_user(
            &auth_service::UserId::new("u"),
            time::OffsetDateTime::now_utc(),
            None,
        )
        .await
        .unwrap();
    assert!(store.consume("consumed", later).await.unwrap());
    store.revoke("expired", earlier).await.unwrap();

    let mut batches = 0;
    let mut ids = std::collections::HashSet::new();
    let mut others = 0;
    assert!(
        store
            .scan_revocations(&mut |batch: &[Change]| {
                batches += 1;
                for c in batch {
                    match c {
                        Change::TokenRevoked { jti, .. } => assert!(ids.insert(jti.clone())),
                        _ => others += 1,
                    }
                }
                true
            })
            .await
            .unwrap()
    );
    assert_eq!(ids.len(), 25_001, "every live revoked id once");
    assert!(!ids.contains("consumed") && !ids.contains("expired"));
    assert_eq!(others, 2, "the family and the cut-off");
    assert!(
        batches >= 4,
        "three pages of ids, then families and cut-offs: {batches}"
    );

    let mut read = 0;
    store
        .scan_revocations(&mut |batch: &[Change]| {
            read += batch.len();
            false
        })
        .await
        .unwrap();
    assert_eq!(
        read, 10_000,
        "a reader that stops after one page gets one page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_in_pages_sqlite() {
    scan_in_pages(Target::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_in_pages_postgres() {
    scan_in_pages(Target::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_in_pages_mysql() {
    scan_in_pages(Target::MySql).await;
}
