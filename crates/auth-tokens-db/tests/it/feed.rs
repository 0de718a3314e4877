//! Two instances over one database, each with a revocation mirror and a user cache kept by
//! `DbChangeFeed`: what one instance revokes or changes, the other refuses once the feed
//! delivered; while the other's feed is down (its network path cut), the database answers;
//! when it is back, memory answers again. The hot path costs no statement.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auth_service::{
    AuthConfig, AuthService, ChangeFeed, Error, RevocationMirror, RevocationStore as _, UserCache,
};
use auth_testkit::db::{Target, fresh_url};
use auth_testkit::{CutProxy, TestHasher};
use auth_tokens_db::{DbChangeFeed, DbFeedOptions, DbRevocationStore};
use auth_tokens_jwt::{Algorithm, JwtBackend};
use auth_users_db::DbUserStore;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

const SECRET: &str = "jwt-secret-0123456789abcdef0123456789abcdef";
const PASSWORD: &str = "violet-otter-sings-42";
const WAIT: Duration = Duration::from_secs(10);

fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
    let mut all = auth_users_db::migrations();
    all.extend(auth_tokens_db::migrations());
    all
}

async fn connect(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .max_connections(8)
        .connect_timeout(Duration::from_secs(1))
        .acquire_timeout(Duration::from_secs(2));
    Database::connect(options).await.expect("connect")
}

struct Instance {
    auth: AuthService,
    mirror: RevocationMirror,
    feed: DbChangeFeed,
}

fn instance(db: &DatabaseConnection, feed: DbChangeFeed) -> Instance {
    let mirror = RevocationMirror::new(DbRevocationStore::new(db.clone()), feed.clone());
    let jwt = JwtBackend::try_hmac(Algorithm::HS256, SECRET)
        .unwrap()
        .with_revocation_store(mirror.clone());
    let auth = AuthService::new(
        AuthConfig::default(),
        DbUserStore::new(db.clone()),
        TestHasher::fast(),
        jwt,
    )
    .unwrap()
    .with_user_cache(UserCache::new(feed.clone()));
    Instance { auth, mirror, feed }
}

/// Waits until `check` holds, at most [`WAIT`]; how long it took.
async fn within<F, Fut>(what: &str, check: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < WAIT, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

fn refused(r: &auth_service::Result<auth_service::User>) -> bool {
    matches!(r, Err(Error::TokenRevoked | Error::InactiveUser))
}

/// The same URL with its host and port replaced by `addr`.
fn through(url: &str, addr: std::net::SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth, rest) = rest.split_once('@').unwrap();
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    format!("{scheme}://{auth}@{addr}/{path}")
}

fn upstream(url: &str) -> std::net::SocketAddr {
    let rest = url.split_once('@').unwrap().1;
    rest.split('/').next().unwrap().parse().unwrap()
}

/// Counts the statements `db` runs.
fn counter(db: &mut DatabaseConnection) -> Arc<AtomicUsize> {
    let n = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&n);
    db.set_metric_callback(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    n
}

async fn two_servers(target: Target) {
    let Some(url) = fresh_url(target).await else {
        return;
    };
    let setup = connect(&url).await;
    let manager = sea_orm_migration::SchemaManager::new(&setup);
    for m in migrations() {
        m.up(&manager).await.unwrap();
    }
    let (mut db_a, db_b) = (connect(&url).await, connect(&url).await);
    let statements = counter(&mut db_a);
    // B's feed reaches the database through a proxy the test can cut; its stores do not.
    let proxy = CutProxy::start(upstream(&url)).await;
    let feed_db = connect(&through(&url, proxy.addr())).await;
    let options = DbFeedOptions::default()
        .with_poll_interval(Duration::from_millis(50))
        .with_heartbeat(Duration::from_millis(200));
    // A's feed has a connection of its own, so its polls and heartbeats are not counted.
    let a_feed_db = connect(&url).await;
    let a = instance(&db_a, DbChangeFeed::start_with(a_feed_db, options.clone()));
    let b = instance(&db_b, DbChangeFeed::start_with(feed_db, options));
    assert!(a.mirror.wait_ready(WAIT).await && b.mirror.wait_ready(WAIT).await);

    a.auth.register("ann@example.com", PASSWORD).await.unwrap();
    let login = a.auth.login("ann@example.com", PASSWORD).await.unwrap();
    let token = login.access_token().to_owned();
    b.auth.authenticate(&token).await.unwrap();

    // The hot path: authenticate costs no statement once the user is cached; a rotation is
    // one write (and its publication).
    a.auth.authenticate(&token).await.unwrap();
    let before = statements.load(Ordering::SeqCst);
    for _ in 0..20 {
        a.auth.authenticate(&token).await.unwrap();
    }
    assert_eq!(
        statements.load(Ordering::SeqCst) - before,
        0,
        "{target:?}: authenticate"
    );
    let before = statements.load(Ordering::SeqCst);
    let pair = a.auth.refresh(login.refresh_token()).await.unwrap();
    let rotation = statements.load(Ordering::SeqCst) - before;
    // The publication (NOTIFY, or a log row) runs on the feed's own connection.
    assert_eq!(rotation, 1, "{target:?}: a rotation is one write");
    println!("{target:?}: authenticate 0 statements, rotation {rotation} (+ its publication)");
    // The rotated-away access token is refused on B too.
    within("the paired access token ends on B", || async {
        refused(&b.auth.authenticate(&token).await)
    })
    .await;

    // A logout on A is refused on B, from memory, once the feed delivered.
    let token = pair.access_token.expose_secret().to_owned();
    b.auth.authenticate(&token).await.unwrap();
    let checks = b.mirror.status().store_checks;
    a.auth.logout(&token).await.unwrap();
    let took = within("a logout on A refused on B", || async {
        refused(&b.auth.authenticate(&token).await)
    })
    .await;
    assert_eq!(
        b.mirror.status().store_checks,
        checks,
        "B answered from memory"
    );
    println!("{target:?}: logout on A refused on B after {took:?}");

    // A user deactivated through A's store is refused on B (the user cache learns of it).
    let login = a.auth.login("ann@example.com", PASSWORD).await.unwrap();
    let token = login.access_token().to_owned();
    b.auth.authenticate(&token).await.unwrap();
    b.auth.authenticate(&token).await.unwrap();
    let user = login.user.id.clone();
    a.auth.parts().users.set_active(&user, false).await.unwrap();
    let took = within("a deactivation on A refused on B", || async {
        matches!(b.auth.authenticate(&token).await, Err(Error::InactiveUser))
    })
    .await;
    println!("{target:?}: deactivation on A refused on B after {took:?}");
    a.auth.parts().users.set_active(&user, true).await.unwrap();
    within("reactivated", || async {
        b.auth.authenticate(&token).await.is_ok()
    })
    .await;

    // B's feed goes down: B answers from the database, so what A revokes now is refused at
    // once, though B's feed will never deliver it.
    proxy.cut();
    within("B's feed notices the outage", || async {
        !b.feed.status().live
    })
    .await;
    assert!(!b.mirror.status().ready);
    let checks = b.mirror.status().store_checks;
    b.auth.authenticate(&token).await.unwrap();
    a.auth.logout(&token).await.unwrap();
    assert!(
        refused(&b.auth.authenticate(&token).await),
        "{target:?}: refused by the fallback on the first try"
    );
    assert!(b.mirror.status().store_checks > checks);
    println!(
        "{target:?}: feed down ({}): the database answered",
        b.feed.status().detail.unwrap_or_default()
    );

    // Back: B reloads, then answers from memory again, the revocation it missed included.
    proxy.restore();
    assert!(
        b.mirror.wait_ready(WAIT).await,
        "{target:?}: B's mirror reloads"
    );
    let checks = b.mirror.status().store_checks;
    assert!(refused(&b.auth.authenticate(&token).await));
    assert_eq!(b.mirror.status().store_checks, checks, "from memory");
}

/// SQLite: one serving process per file; a management command (another process) publishes
/// through the log, which the server polls.
async fn server_and_command() {
    let url = fresh_url(Target::SqliteFile).await.unwrap();
    let setup = connect(&url).await;
    let manager = sea_orm_migration::SchemaManager::new(&setup);
    for m in migrations() {
        m.up(&manager).await.unwrap();
    }
    let (server_db, command_db) = (connect(&url).await, connect(&url).await);
    let options = DbFeedOptions::default().with_poll_interval(Duration::from_millis(50));
    let server = instance(
        &server_db,
        DbChangeFeed::start_with(server_db.clone(), options),
    );
    let command = instance(&command_db, DbChangeFeed::publisher(command_db.clone()));
    assert!(server.mirror.wait_ready(WAIT).await);
    assert_eq!(server.feed.status().channel, "in-process+log-poll");

    server
        .auth
        .register("bo@example.com", PASSWORD)
        .await
        .unwrap();
    let login = server.auth.login("bo@example.com", PASSWORD).await.unwrap();
    let token = login.access_token().to_owned();
    server.auth.authenticate(&token).await.unwrap();
    // `auth-server user deactivate`: the command's change reaches the serving process.
    command
        .auth
        .set_active(&login.user.id, false)
        .await
        .unwrap();
    let took = within("a command's deactivation refused by the server", || async {
        refused(&server.auth.authenticate(&token).await)
    })
    .await;
    println!("SqliteFile: a command's deactivation refused by the server after {took:?}");

    // The log cannot be read: the server answers from the database.
    command.auth.set_active(&login.user.id, true).await.unwrap();
    let login = server.auth.login("bo@example.com", PASSWORD).await.unwrap();
    let token = login.access_token().to_owned();
    setup
        .execute_unprepared("ALTER TABLE auth_change_log RENAME TO auth_change_log_away")
        .await
        .unwrap();
    within("the server's feed notices", || async {
        !server.feed.status().live
    })
    .await;
    DbRevocationStore::new(command_db.clone())
        .revoke_user(&login.user.id, time::OffsetDateTime::now_utc(), None)
        .await
        .unwrap();
    assert!(refused(&server.auth.authenticate(&token).await), "fallback");
    setup
        .execute_unprepared("ALTER TABLE auth_change_log_away RENAME TO auth_change_log")
        .await
        .unwrap();
    assert!(server.mirror.wait_ready(WAIT).await);
    let checks = server.mirror.status().store_checks;
    assert!(refused(&server.auth.authenticate(&token).await));
    assert_eq!(
        server.mirror.status().store_checks,
        checks,
        "reloaded into memory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    two_servers(Target::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql() {
    two_servers(Target::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file() {
    server_and_command().await;
}
