//! Database token operations against the same work done with raw sea-orm statements.

use std::hint::black_box;
use std::time::{Duration, Instant};

use auth_core::{AuthConfig, AuthService, IssueRequest, RotateRequest, TokenBackend, UserId};
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

fn raw_err(e: sea_orm::DbErr) -> auth_core::Error {
    auth_core::Error::backend("raw sea-orm", e)
}

fn raw_token(
    kind: &str,
    family_id: &str,
    user_id: i64,
    now: time::OffsetDateTime,
) -> token::ActiveModel {
    token::ActiveModel {
        token_hash: Set(auth_core::random::sha256_hex(&auth_core::random::token(32))),
        kind: Set(kind.into()),
        jti: Set(auth_core::random::token(16)),
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
    all
}

async fn connect(url: &str, connections: u32) -> auth_core::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(connections).sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .map_err(|e| auth_core::Error::backend("connecting", e))?;
    let manager = sea_orm_migration::SchemaManager::new(&db);
    for m in migrations() {
        m.up(&manager)
            .await
            .map_err(|e| auth_core::Error::backend("migrating", e))?;
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

pub(crate) async fn run() -> auth_core::Result<()> {
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
                &format!("bench-{}@example.com", auth_core::random::token(6)),
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
        let t = Instant::now();
        let mut families = Vec::new();
        for i in 0..n {
            let txn = db.begin().await.map_err(raw_err)?;
            let fid = format!("raw-{}-{i}", auth_core::random::token(6));
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
        let raw_issue = per(t.elapsed(), n);
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
            .map(|a| auth_core::random::sha256_hex(a))
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
                        &auth_core::AllowAll,
                    )
                    .await?,
            );
        }
        let refresh = per(t.elapsed(), n);
        let t = Instant::now();
        for (h, fid) in hashes.iter().zip(&families) {
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
        let raw_refresh = per(t.elapsed(), n);
        row(
            "refresh (rotate)",
            refresh,
            "raw tx: conditional UPDATE + 2 inserts",
            raw_refresh,
        );
        println!();
    }
    let _ = std::fs::remove_file(&sqlite_file);
    Ok(())
}
