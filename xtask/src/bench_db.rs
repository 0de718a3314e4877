//! Database token operations against the same work done with raw sea-orm statements.

use std::hint::black_box;
use std::time::{Duration, Instant};

use auth_service::{AuthConfig, AuthService, IssueRequest, RotateRequest, TokenBackend, UserId};
use auth_tokens_db::DbTokenBackend;
use auth_tokens_db::entity::{family, token};
use auth_users_db::DbUserStore;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectOptions, Database, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use sea_orm_migration::MigrationTrait;

/// Where the bench runs.
struct Env {
    name: String,
    url: String,
}

fn raw_err(e: sea_orm::DbErr) -> auth_service::Error {
    auth_service::Error::backend("raw sea-orm", e)
}

fn raw_token(
    kind: &str,
    family_id: &str,
    user_id: i64,
    now: time::OffsetDateTime,
) -> token::ActiveModel {
    token::ActiveModel {
        token_hash: Set(auth_service::random::sha256_hex(
            &auth_service::random::token(32),
        )),
        kind: Set(kind.into()),
        jti: Set(auth_service::random::token(16)),
        family_id: Set(family_id.to_owned()),
        user_id: Set(user_id),
        created_at: Set(now),
        expires_at: Set(now),
        revoked_at: Set(None),
        consumed_at: Set(None),
        paired_access_hash: Set(None),
    }
}

fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    let mut all = auth_users_db::migrations();
    all.extend(auth_tokens_db::migrations());
    all.extend(auth_apikeys::migrations());
    all
}

/// API key verification through `AuthService` (a service account's key: checksum, SHA-256,
/// one indexed lookup) against SHA-256 plus the raw indexed lookup of the secret, and
/// against verifying a JWT.
async fn api_key_rows(
    db: &DatabaseConnection,
    store: impl auth_service::ApiKeyStore,
    label: &str,
) -> auth_service::Result<()> {
    use auth_service::{ApiKeyOwner, NewApiKey};
    use sea_orm::ConnectionTrait;
    let auth = AuthService::new(
        AuthConfig::default(),
        DbUserStore::new(db.clone()),
        auth_hash::MultiHasher::default(),
        auth_service::MemoryTokenBackend::new(),
    )?
    .with_api_keys(store);
    let name = format!(
        "bench-{}",
        auth_service::random::token(6)
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    auth.create_service_account(&name).await?;
    let issued = auth
        .create_api_key(&ApiKeyOwner::Service(name), NewApiKey::new("bench"))
        .await?;
    let key = issued.key.expose_secret().to_owned();
    let n = 2_000u32;
    auth.authenticate_api_key(&key, None).await?;
    let t = Instant::now();
    for _ in 0..n {
        black_box(auth.authenticate_api_key(&key, None).await?);
    }
    let verify = per(t.elapsed(), n);
    let backend = db.get_database_backend();
    let t = Instant::now();
    for _ in 0..n {
        let hash = auth_service::random::sha256_hex(black_box(&key));
        black_box(
            db.query_one_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                match backend {
                    sea_orm::DatabaseBackend::Postgres => {
                        "SELECT key_id, expires_at FROM auth_api_key_secrets WHERE hash = $1"
                    }
                    _ => "SELECT key_id, expires_at FROM auth_api_key_secrets WHERE hash = ?",
                },
                [hash.into()],
            ))
            .await
            .map_err(raw_err)?,
        );
    }
    let floor = per(t.elapsed(), n);
    row(
        &format!("API key verify ({label})"),
        verify,
        "raw: SHA-256 + one indexed SELECT",
        floor,
    );
    Ok(())
}

/// API key verification on the memory store, against a JWT verification (HS256, no
/// revocation in memory) in the same process.
async fn api_key_memory_rows() -> auth_service::Result<()> {
    use auth_service::{ApiKeyOwner, NewApiKey, TokenKind};
    let auth = AuthService::new(
        AuthConfig::default(),
        auth_service::MemoryUserStore::new(),
        auth_hash::MultiHasher::default(),
        auth_service::MemoryTokenBackend::new(),
    )?
    .with_api_keys(auth_service::MemoryApiKeyStore::new());
    auth.create_service_account("bench").await?;
    let issued = auth
        .create_api_key(
            &ApiKeyOwner::Service("bench".into()),
            NewApiKey::new("bench"),
        )
        .await?;
    let key = issued.key.expose_secret().to_owned();
    let n = 20_000u32;
    auth.authenticate_api_key(&key, None).await?;
    let t = Instant::now();
    for _ in 0..n {
        black_box(auth.authenticate_api_key(&key, None).await?);
    }
    let verify = per(t.elapsed(), n);
    let jwt = auth_tokens_jwt::JwtBackend::try_hmac(
        auth_tokens_jwt::Algorithm::HS256,
        "bench-secret-0123456789abcdef0123456789abcdef",
    )
    .map_err(|e| auth_service::Error::backend("jwt", e))?;
    let pair = jwt.issue(&IssueRequest::new(UserId::new("1"))).await?;
    let token = pair.access_token.expose_secret().to_owned();
    let t = Instant::now();
    for _ in 0..n {
        black_box(jwt.verify(&token, TokenKind::Access).await?);
    }
    let jwt_verify = per(t.elapsed(), n);
    let t = Instant::now();
    for _ in 0..n {
        black_box(auth_service::random::sha256_hex(black_box(&key)));
    }
    let sha = per(t.elapsed(), n);
    row("API key verify (memory)", verify, "SHA-256 of the key", sha);
    row(
        "API key verify (memory)",
        verify,
        "JWT verify (HS256 + memory revocation)",
        jwt_verify,
    );
    Ok(())
}

async fn connect(url: &str, connections: u32) -> auth_service::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(connections).sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .map_err(|e| auth_service::Error::backend("connecting", e))?;
    let manager = sea_orm_migration::SchemaManager::new(&db);
    for m in migrations() {
        m.up(&manager)
            .await
            .map_err(|e| auth_service::Error::backend("migrating", e))?;
    }
    Ok(db)
}

fn per(d: Duration, n: u32) -> Duration {
    d / n
}

fn row(name: &str, op: Duration, raw_name: &str, raw: Duration) {
    println!(
        "  {name:<30} {op:>10.2?} ({:>7.0}/s)   {raw_name:<34} {raw:>10.2?}   ratio {:>6.3}",
        1.0 / op.as_secs_f64(),
        op.as_secs_f64() / raw.as_secs_f64()
    );
}

/// Database tokens and API keys on one database, each beside the raw statements it wraps.
async fn env_rows(env: &Env) -> auth_service::Result<()> {
    println!(
        "database tokens on {} (per operation, sequential)",
        env.name
    );
    let db = connect(&env.url, if env.name.starts_with("SQLite") { 1 } else { 8 }).await?;
    let backend = DbTokenBackend::new(db.clone());
    let auth = AuthService::new(
        AuthConfig::default(),
        DbUserStore::new(db.clone()),
        auth_hash::MultiHasher::default(),
        backend.clone(),
    )?
    .with_token_user_lookup(backend.clone());
    let user = auth
        .register(
            &format!("bench-{}@example.com", auth_service::random::token(6)),
            "violet-otter-sings-42",
        )
        .await?;
    let uid: i64 = user.id.as_str().parse().unwrap_or_default();
    let n = 500u32;

    // Issue a pair vs a raw transaction doing the same inserts.
    let t = Instant::now();
    let mut pairs = Vec::new();
    for _ in 0..n {
        pairs.push(backend.issue(&IssueRequest::new(UserId::from(uid))).await?);
    }
    let issue = per(t.elapsed(), n);
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (raw_issue, families) = raw_issues(&db, uid, n, now).await?;
    row(
        "issue (tokens + session)",
        issue,
        "raw tx: 1 family + 2 token inserts",
        raw_issue,
    );

    // Authenticate (one joined query + checks) vs one indexed lookup.
    let access: Vec<String> = pairs
        .iter()
        .map(|p| p.access_token.expose_secret().to_owned())
        .collect();
    let t = Instant::now();
    for a in &access {
        black_box(auth.authenticate(a).await?);
    }
    let authenticate = per(t.elapsed(), n);
    let hashes: Vec<String> = access
        .iter()
        .map(|a| auth_service::random::sha256_hex(a))
        .collect();
    let t = Instant::now();
    for h in &hashes {
        black_box(
            token::Entity::find_by_id(h.clone())
                .one(&db)
                .await
                .map_err(raw_err)?,
        );
    }
    let raw_lookup = per(t.elapsed(), n);
    row(
        "authenticate (token+user)",
        authenticate,
        "raw: one indexed SELECT",
        raw_lookup,
    );

    // Refresh vs the raw conditional update + inserts in a transaction.
    let t = Instant::now();
    for p in &pairs {
        black_box(
            backend
                .rotate(
                    p.refresh_token.expose_secret(),
                    &RotateRequest::new(),
                    &auth_service::AllowAll,
                )
                .await?,
        );
    }
    let refresh = per(t.elapsed(), n);
    let raw_refresh = raw_refreshes(&db, &hashes, &families, uid, now).await?;
    row(
        "refresh (rotate)",
        refresh,
        "raw tx: conditional UPDATE + 2 inserts",
        raw_refresh,
    );
    api_key_rows(&db, auth_apikeys::DbApiKeyStore::new(db.clone()), "SQL").await?;
    println!();
    Ok(())
}

/// What issuing does, as raw statements: a transaction inserting a family and two tokens.
async fn raw_issues(
    db: &DatabaseConnection,
    uid: i64,
    n: u32,
    now: time::OffsetDateTime,
) -> auth_service::Result<(Duration, Vec<String>)> {
    let t = Instant::now();
    let mut families = Vec::new();
    for i in 0..n {
        let txn = db.begin().await.map_err(raw_err)?;
        let fid = format!("raw-{}-{i}", auth_service::random::token(6));
        family::Entity::insert(family::ActiveModel {
            id: Set(fid.clone()),
            user_id: Set(uid),
            created_at: Set(now),
            absolute_expires_at: Set(now),
            refresh_expires_at: Set(now),
            last_used_at: Set(None),
            ip: Set(None),
            user_agent: Set(None),
            extra: Set(None),
            revoked_at: Set(None),
        })
        .exec(&txn)
        .await
        .map_err(raw_err)?;
        token::Entity::insert_many([
            raw_token("access", &fid, uid, now),
            raw_token("refresh", &fid, uid, now),
        ])
        .exec(&txn)
        .await
        .map_err(raw_err)?;
        txn.commit().await.map_err(raw_err)?;
        families.push(fid);
    }
    Ok((per(t.elapsed(), n), families))
}

/// What a rotation does, as raw statements: a conditional update and two inserts.
async fn raw_refreshes(
    db: &DatabaseConnection,
    hashes: &[String],
    families: &[String],
    uid: i64,
    now: time::OffsetDateTime,
) -> auth_service::Result<Duration> {
    let t = Instant::now();
    for (h, fid) in hashes.iter().zip(families) {
        let txn = db.begin().await.map_err(raw_err)?;
        token::Entity::update_many()
            .col_expr(token::Column::ConsumedAt, Expr::value(Some(now)))
            .filter(token::Column::TokenHash.eq(h.clone()))
            .filter(token::Column::ConsumedAt.is_null())
            .exec(&txn)
            .await
            .map_err(raw_err)?;
        token::Entity::insert_many([
            raw_token("access", fid, uid, now),
            raw_token("refresh", fid, uid, now),
        ])
        .exec(&txn)
        .await
        .map_err(raw_err)?;
        txn.commit().await.map_err(raw_err)?;
    }
    Ok(per(
        t.elapsed(),
        u32::try_from(hashes.len()).unwrap_or(u32::MAX),
    ))
}

pub(crate) async fn run() -> auth_service::Result<()> {
    let sqlite_file = std::env::temp_dir().join(format!("auth-bench-{}.db", std::process::id()));
    let mut envs = vec![Env {
        name: "SQLite file".into(),
        url: format!("sqlite://{}?mode=rwc", sqlite_file.display()),
    }];
    match std::env::var("AUTH_BENCH_POSTGRES_URL") {
        Ok(url) => envs.push(Env {
            name: "PostgreSQL".into(),
            url,
        }),
        Err(_) => {
            println!("(PostgreSQL skipped: set AUTH_BENCH_POSTGRES_URL to an empty database)")
        }
    }
    for env in envs {
        env_rows(&env).await?;
    }
    println!("API keys in memory (per operation, sequential)");
    api_key_memory_rows().await?;
    let _ = std::fs::remove_file(&sqlite_file);
    Ok(())
}
