//! `auth-server`: serve the API (default), or run a management command in the manner of
//! Django's manage.py. `auth-server help` lists them.

use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;

use auth::{Error, RequestScope};
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: auth-server [COMMAND]

  serve                          serve the API (the default)
  migrate                        create or update the database tables
  user create EMAIL [--password-stdin]
                                 create a user (asks for the password without echo,
                                 or reads one line from stdin)
  user set-password EMAIL [--password-stdin]
                                 set a user's password; their sessions end
  user deactivate EMAIL          deactivate a user; their sessions end
  user reactivate EMAIL          reactivate a deactivated user
  user show EMAIL                the account: state, second factor, sessions, recent audit
  user unlock EMAIL              lift every lockout of the account (login, second factor)
  user reset-mfa EMAIL           remove the account's second factor (a lost phone)
  user secure EMAIL              secure the account for its owner: every session ends, every
                                 API key is revoked, passkeys and connected accounts removed
                                 (refused when the account would have no password left)
  user delete EMAIL --yes        delete the account: sessions end, keys and factors go
  admin grant EMAIL [--owner]    grant the `admin` role (or `owner`: may act on other
                                 administrators) to an account whose address is proven
  admin revoke EMAIL [--owner]   revoke it (never from the last holder)
  admin list                     the accounts holding `admin` or `owner`
  tokens cleanup                 delete expired tokens, revocations, challenges, ceremonies and API keys,
                                 and audit entries past AUTH_AUDIT_RETENTION_DAYS
  service-account create NAME    register a service account (an owner of API keys that
                                 belongs to no person)
  apikey create --service-account NAME [--scope SCOPE]... [--name NAME] [--expires-in SECONDS]
                                 create an API key for a service account; prints the key once
  apikey create --user EMAIL [--scope SCOPE]... [--name NAME] [--expires-in SECONDS]
                                 create an API key acting for a user
  apikey list (--service-account NAME | --user EMAIL)
                                 list keys (never their secrets)
  apikey revoke ID               delete a key
  jwt keys                       list the signing keys (AUTH_JWT_ALGORITHM other than HS256)
  jwt rotate                     next key signs, current retires, a new next is made;
                                 retired keys past every token's lifetime are removed;
                                 running servers pick it up at once (keys in the
                                 database) or within 2 s (AUTH_JWT_KEYS_DIR)
  jwt import FILE [--next]       add a PEM private key as the current (or next) key
  secret generate [--mfa]        print a new AUTH_SIGNING_SECRET (or AUTH_MFA_KEY)
  help                           this text

Configuration comes from the environment (DATABASE_URL, AUTH_*): see the README.";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        // Logs on stderr; stdout carries the commands' output.
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm_migration=warn")),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["help" | "--help" | "-h"] => {
            say(USAGE);
            return ExitCode::SUCCESS;
        }
        ["secret", "generate"] => {
            // The one place the program prints a secret: the operator asked for it.
            say(&auth::random::token(48));
            return ExitCode::SUCCESS;
        }
        ["secret", "generate", "--mfa"] => {
            // A value for AUTH_MFA_KEY: a key id (k + days since 1970) and 32 random bytes.
            say(&format!("{}:{}", key_id(), auth::random::token(32)));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    // An unknown command is said plainly, before any configuration or database work.
    let known = matches!(
        args.as_slice(),
        [] | ["serve" | "migrate"]
            | ["user", "create" | "set-password", _, ..]
            | [
                "user",
                "deactivate" | "reactivate" | "show" | "unlock" | "reset-mfa" | "secure",
                _
            ]
            | ["user", "delete", _, ..]
            | ["tokens", "cleanup"]
            | ["admin", "grant" | "revoke", _]
            | ["admin", "grant" | "revoke", _, "--owner"]
            | ["admin", "list"]
            | ["service-account", "create", _]
            | ["apikey", ..]
            | ["jwt", ..]
    );
    if !known {
        tracing::error!(
            "unknown command `{}`: `auth-server help` lists the commands",
            args.join(" ")
        );
        say(USAGE);
        return ExitCode::from(2);
    }
    let settings = match auth_server::Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    if let ["jwt", rest @ ..] = args.as_slice()
        && settings.jwt_keys_dir.is_some()
    {
        return match jwt_command(&settings, rest) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    // `migrate` migrates whatever AUTH_MIGRATE says; everything else follows it.
    let connected = if args.as_slice() == ["migrate"] {
        auth_server::connect_with(&settings.database_url, settings.sqlite_durability).await
    } else if matches!(args.as_slice(), [] | ["serve"]) {
        auth_server::connect_from(&settings).await
    } else {
        // Maintenance (cleanup over a large backlog, say) may run statements longer than a
        // request's: the statement timeout is for serving.
        let mut tools = settings.clone();
        tools.db_statement_timeout = std::time::Duration::ZERO;
        auth_server::connect_from(&tools).await
    };
    let db = match connected {
        Ok(db) => db,
        Err(e) => {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "database unavailable");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match args.as_slice() {
        [] | ["serve"] => return serve(&settings, db).await,
        ["migrate"] => {
            tracing::info!("database migrated");
            Ok(())
        }
        ["user", "create", email, rest @ ..] => user_create(&settings, db, email, rest).await,
        ["user", "set-password", email, rest @ ..] => {
            user_set_password(&settings, db, email, rest).await
        }
        ["user", "deactivate", email] => user_deactivate(&settings, db, email).await,
        [
            "user",
            verb @ ("reactivate" | "show" | "unlock" | "reset-mfa" | "secure"),
            email,
        ] => user_admin(&settings, db, verb, email).await,
        ["user", "delete", email, rest @ ..] => user_delete(&settings, db, email, rest).await,
        ["tokens", "cleanup"] => tokens_cleanup(&settings, db).await,
        ["admin", "list"] => admin_list(&settings, db).await,
        ["admin", verb @ ("grant" | "revoke"), email, rest @ ..] => {
            admin_role(&settings, db, verb, email, rest.contains(&"--owner")).await
        }
        ["service-account", "create", name] => service_account_create(&settings, db, name).await,
        ["apikey", rest @ ..] => apikey_command(&settings, db, rest).await,
        ["jwt", rest @ ..] => jwt_database_command(&settings, db, rest).await,
        _ => {
            say(USAGE);
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints to stdout (the command's output, not a log line).
fn say(text: &str) {
    #[allow(clippy::print_stdout)]
    {
        println!("{text}");
    }
}

/// `k` and the days since 1970, so rotated keys sort by age.
fn key_id() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    format!("k{days}")
}

/// A password from stdin (`--password-stdin`, or when stdin is not a terminal), else asked
/// for on the terminal without echo, twice.
fn read_password(flags: &[&str]) -> Result<String, Error> {
    let unknown: Vec<&&str> = flags.iter().filter(|f| **f != "--password-stdin").collect();
    if !unknown.is_empty() {
        return Err(Error::invalid(
            "arguments",
            "unknown_flag",
            format!("unknown flags {unknown:?}; use --password-stdin"),
        ));
    }
    let io = |e: std::io::Error| Error::backend("reading the password", e);
    if flags.contains(&"--password-stdin") || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(io)?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            return Err(Error::invalid(
                "password",
                "missing",
                "no password was given: pipe one line to the command (echo \"$PASSWORD\" | auth-server user create EMAIL --password-stdin) or run it in a terminal to be asked",
            ));
        }
        return Ok(password);
    }
    let first = rpassword::prompt_password("Password: ").map_err(io)?;
    let second = rpassword::prompt_password("Password (again): ").map_err(io)?;
    if first != second {
        return Err(Error::invalid(
            "password",
            "mismatch",
            "the passwords do not match",
        ));
    }
    Ok(first)
}

async fn user_create(
    settings: &auth_server::Settings,
    db: sea_orm::DatabaseConnection,
    email: &str,
    flags: &[&str],
) -> Result<(), Error> {
    let stack = auth_server::command_stack(settings, db)?;
    let password = read_password(flags)?;
    let user = stack.auth.register(email, &password).await?;
    say(&format!("created user {} <{}>", user.id, user.email));
    Ok(())
}

async fn find(stack: &auth_server::Stack, email: &str) -> Result<auth::User, Error> {
    stack
        .auth
        .find_user_by_email(email)
        .await?
        .ok_or(Error::UserNotFound)
}

async fn user_set_password(
    settings: &auth_server::Settings,
    db: sea_orm::DatabaseConnection,
    email: &str,
    flags: &[&str],
) -> Result<(), Error> {
    let stack = auth_server::command_stack(settings, db)?;
    let user = find(&stack, email).await?;
    let password = read_password(flags)?;
    stack.auth.set_password(&user.id, &password).await?;
    say(&format!(
        "password set for {} <{}>; their sessions ended",
        user.id, user.email
    ));
    Ok(())
}

async fn user_deactivate(
    settings: &auth_server::Settings,
    db: sea_orm::DatabaseConnection,
    email: &str,
) -> Result<(), Error> {
    let stack = auth_server::command_stack(settings, db)?;
    let user = find(&stack, email).await?;
    auth::RequestContext::default()
        .with_actor("cli")
        .scope(stack.auth.set_active(&user.id, false))
        .await?;
    say(&format!("deactivated {} <{}>", user.id, user.email));
    Ok(())
}

/// `user reactivate|show|unlock|reset-mfa EMAIL`: what the admin API does, from a shell, each
/// through the service (events, revocation) and recorded in the audit log as done by `cli`.
/// `admin grant|revoke EMAIL [--owner]`: the operator's grant (audited with actor `cli`).
async fn admin_role(
    settings: &auth_server::Settings,
    db: sea_orm::DatabaseConnection,
    verb: &str,
    email: &str,
    owner: bool,
) -> Result<(), Error> {
    let stack = auth_server::command_stack(settings, db)?;
    let user = find(&stack, email).await?;
    let role = if owner {
        auth::Role::Owner
    } else {
        auth::Role::Admin
    };
    let cli = auth::RequestContext::default().with_actor("cli");
    if verb == "grant" {
        let added = cli
            .scope(stack.auth.grant_role(&user.id, role, "operator"))
            .await?;
        say(&format!(
            "{} {} <{}> `{role}`",
            if added { "granted" } else { "already held:" },
            user.id,
            user.email
        ));
    } else {
        let removed = cli.scope(stack.auth.revoke_role(&user.id, role)).await?;
        say(&format!(
            "{} `{role}` {} {} <{}>",
            if removed { "revoked" } else { "not held:" },
            if removed { "from" } else { "by" },
            user.id,
            user.email
        ));
    }
    Ok(())
}

/// `admin list`: who holds `admin` or `owner`.
async fn admin_list(
    settings: &auth_server::Settings,
    db: sea_orm::DatabaseConnection,
) -> Result<(), Error> {
    let stack = auth_server::command_stack(settings, db)?;
    let mut ids = std::collections::BTreeSet::new();
    for role in auth::Role::ALL {
        ids.extend(stack.auth.role_holders(role).await?);
    }
    for id in ids {
        let Some(user) = stack.auth.find_user(&id).await? else {
            continue;
        };
        let roles: Vec<&str> = stack
            .auth
            .roles(&id)
            .await?
            .iter()
            .map(|g| g.role.as_str())
            .collect();
        say(&format!("{} <{}> {}", user.id, user.email, roles.join(",")));
    }
    Ok(())
}

async fn user_admin(
    settings: &auth_server::Settings,
    db: sea_orm::DatabaseConnection,
    verb: &str,
    email: &str,
) -> Result<(), Error> {
    let stack = auth_server::command_stack(settings, db)?;
    let user = find(&stack, email).await?;
    let cli = auth::RequestContext::default().with_actor("cli");
    match verb {
        "reactivate" => {
            cli.scope(stack.auth.set_active(&user.id, true)).await?;
            say(&format!("reactivated {} <{}>", user.id, user.email));
        }
        "unlock" => {
            // Lockouts by client address are known from the audit log.
            let now = auth::Clock::now(&auth::SystemClock);
            let clients: Vec<String> = stack
                .audit
                .list(
                    &auth::AuditQuery::for_user(user.id.clone())
                        .with_email(&user.email)
                        .kinds([auth::AuthEventKind::AccountLocked])
                        .limit(100),
                )
                .await?
                .into_iter()
                .filter(|e| {
                    let secs = e.detail["retry_after_secs"].as_i64().unwrap_or(0);
                    e.at + time::Duration::seconds(secs) > now
                })
                .filter_map(|e| e.detail.get("client")?.as_str().map(str::to_owned))
                .collect();
            cli.scope(stack.auth.unlock(&user.id, &clients)).await?;
            say(&format!("unlocked {} <{}>", user.id, user.email));
        }
        "secure" => {
            // Everything but the password and the second factor: the owner keeps nothing else.
            let report = cli
                .scope(stack.auth.secure_account(&user.id, None, &[], &[]))
                .await?;
            say(&format!(
                "secured {} <{}>: {} sessions ended, {} API keys revoked, {} passkeys and {} connected accounts removed",
                user.id,
                user.email,
                report.sessions,
                report.api_keys,
                report.passkeys,
                report.identities
            ));
        }
        "reset-mfa" => {
            cli.scope(stack.auth.reset_second_factor(&user.id)).await?;
            say(&format!(
                "second factor removed for {} <{}>",
                user.id, user.email
            ));
        }
        _ => {
            let status = stack.auth.account_status(&user.id).await?;
            let audit = stack
                .audit
                .list(
                    &auth::AuditQuery::for_user(user.id.clone())
                        .with_email(&user.email)
                        .limit(20),
                )
                .await?;
            let show = |t: Option<time::OffsetDateTime>| {
                t.and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| "-".into())
            };
            let mut out = vec![
                format!("user {} <{}>", user.id, user.email),
                format!("  active: {}", user.is_active),
                format!("  verified: {}", user.is_verified),
                format!("  usable password: {}", status.usable_password),
                format!("  second factor: {}", status.second_factor),
                format!("  last login: {}", show(user.last_login)),
                match &status.sessions {
                    Some(list) => format!("  sessions: {}", list.len()),
                    None => "  sessions: (not listed by this token backend)".into(),
                },
                "  recent activity:".into(),
            ];
            for e in audit {
                out.push(format!(
                    "    {} {} ip={} {}",
                    show(Some(e.at)),
                    e.kind,
                    e.ip.as_deref().unwrap_or("-"),
                    e.actor.map(|a| format!("by {a}")).unwrap_or_default()
                ));
            }
            say(&out.join("\n"));
        }
    }
    Ok(())
}

/// `user delete EMAIL --yes`.
async fn user_delete(
    settings: &auth_server::Settings,
    db: sea_orm::DatabaseConnection,
    email: &str,
    flags: &[&str],
) -> Result<(), Error> {
    if flags != ["--yes"] {
        return Err(Error::invalid(
            "--yes",
            "required",
            "deleting an account cannot be undone: repeat the command with --yes",
        ));
    }
    let stack = auth_server::command_stack(settings, db)?;
    let user = find(&stack, email).await?;
    auth::RequestContext::default()
        .with_actor("cli")
        .scope(stack.auth.delete_user(&user.id))
        .await?;
    say(&format!("deleted {} <{}>", user.id, user.email));
    Ok(())
}

async fn tokens_cleanup(
    settings: &auth_server::Settings,
    db: sea_orm::DatabaseConnection,
) -> Result<(), Error> {
    let stack = auth_server::command_stack(settings, db.clone())?;
    tracing::info!("deleting expired tokens");
    // Opaque tokens of both stores (a deployment may have moved from one to the other).
    let mut removed_tokens =
        auth::TokenBackend::cleanup_expired(&auth::tokens_db::DbTokenBackend::new(db.clone()))
            .await?;
    if let Some(redis) = &stack.redis {
        removed_tokens += auth::TokenBackend::cleanup_expired(
            &auth::redis::RedisTokenBackend::new(redis.clone()),
        )
        .await?;
    }
    let removed_challenges = stack.mfa.cleanup_expired().await?
        + auth::TrustedDeviceStore::cleanup_expired(
            &auth::mfa::DbTrustedDevices::new(db.clone()),
            auth::Clock::now(&auth::SystemClock),
        )
        .await?;
    let removed_keys = auth::ApiKeyStore::cleanup_expired(
        &auth::apikeys::DbApiKeyStore::new(db.clone()),
        auth::Clock::now(&auth::SystemClock),
    )
    .await?;
    let removed_onboarding = stack.onboarding.cleanup_expired().await?;
    let now = auth::Clock::now(&auth::SystemClock);
    let removed_ceremonies = match &stack.redis {
        Some(redis) => {
            auth::ephemeral::CeremonyStore::cleanup_expired(
                &auth::redis::RedisCeremonyStore::new(redis.clone()),
                now,
            )
            .await?
        }
        None => {
            auth::ephemeral::CeremonyStore::cleanup_expired(
                &auth::passkeys::db::DbCeremonyStore::new(db.clone()),
                now,
            )
            .await?
        }
    };
    let removed_audit = match settings.audit_retention {
        Some(keep) => {
            let cutoff = auth::Clock::now(&auth::SystemClock) - keep;
            stack.audit.delete_before(cutoff).await?
        }
        None => 0,
    };
    // Revocations and limits live in Redis with AUTH_REDIS_URL (which also forgets them by
    // itself), else in the database.
    let (removed_revocations, removed_limits) = match &stack.redis {
        Some(redis) => {
            let revocations = auth::redis::RedisRevocationStore::new(redis.clone());
            let limiter =
                auth::redis::RedisRateLimiter::new(redis.clone(), settings.config.rate_limit());
            (
                auth::RevocationStore::cleanup_expired(&revocations).await?,
                auth::RateLimiter::cleanup_expired(&limiter).await?,
            )
        }
        None => {
            let revocations = auth::tokens_db::DbRevocationStore::new(db.clone());
            let limiter = auth::users_db::DbRateLimiter::new(db, settings.config.rate_limit());
            (
                auth::RevocationStore::cleanup_expired(&revocations).await?,
                auth::RateLimiter::cleanup_expired(&limiter).await?,
            )
        }
    };
    say(&format!(
        "deleted {removed_tokens} tokens, {removed_revocations} revocations, \
         {removed_challenges} MFA challenges, {removed_onboarding} onboarding sessions, \
         {removed_keys} API key records, {removed_limits} rate-limit entries, \
         {removed_audit} audit entries, {removed_ceremonies} passkey ceremonies"
    ));
    Ok(())
}

async fn service_account_create(
    settings: &auth_server::Settings,
    db: sea_orm::DatabaseConnection,
    name: &str,
) -> Result<(), Error> {
    let stack = auth_server::command_stack(settings, db)?;
    if stack.auth.create_service_account(name).await? {
        say(&format!("created service account {name}"));
    } else {
        say(&format!("service account {name} exists"));
    }
    Ok(())
}

/// `apikey create | list | revoke`.
async fn apikey_command(
    settings: &auth_server::Settings,
    db: sea_orm::DatabaseConnection,
    args: &[&str],
) -> Result<(), Error> {
    let stack = auth_server::command_stack(settings, db)?;
    let usage = || {
        Error::Configuration(auth::ConfigError::invalid(
            "apikey",
            "usage: apikey create (--service-account NAME | --user EMAIL) [--scope S]... [--name N] [--expires-in SECONDS] | apikey list (--service-account NAME | --user EMAIL) | apikey revoke ID",
        ))
    };
    let (verb, rest) = args.split_first().ok_or_else(usage)?;
    let mut owner = None;
    let mut scopes = Vec::new();
    let mut name = None;
    let mut expires = None;
    let mut it = rest.iter();
    let mut positional = Vec::new();
    while let Some(arg) = it.next() {
        match *arg {
            "--service-account" => {
                owner = Some(auth::ApiKeyOwner::Service(
                    (*it.next().ok_or_else(usage)?).to_owned(),
                ));
            }
            "--user" => {
                let user = find(&stack, it.next().ok_or_else(usage)?).await?;
                owner = Some(auth::ApiKeyOwner::User(user.id));
            }
            "--scope" => scopes.push((*it.next().ok_or_else(usage)?).to_owned()),
            "--name" => name = Some((*it.next().ok_or_else(usage)?).to_owned()),
            "--expires-in" => {
                let secs: u64 = it.next().and_then(|s| s.parse().ok()).ok_or_else(usage)?;
                expires = Some(std::time::Duration::from_secs(secs));
            }
            other => positional.push(other),
        }
    }
    match (*verb, owner, positional.as_slice()) {
        ("create", Some(owner), []) => {
            let mut new =
                auth::NewApiKey::new(name.unwrap_or_else(|| "cli".into())).with_scopes(scopes);
            if let Some(d) = expires {
                new = new.expires_in(d);
            }
            let issued = stack.auth.create_api_key(&owner, new).await?;
            tracing::info!(id = %issued.record.id, owner = %owner, "API key created");
            // The one time the key is shown: the operator asked for it.
            say(issued.key.expose_secret());
            Ok(())
        }
        ("list", Some(owner), []) => {
            for k in stack.auth.list_api_keys(&owner).await? {
                say(&format!(
                    "{}  {}  {}  scopes={}  expires={}",
                    k.id,
                    k.start,
                    k.name,
                    k.scopes.join(","),
                    k.expires_at
                        .map_or_else(|| "never".into(), |t| t.to_string())
                ));
            }
            Ok(())
        }
        ("revoke", None, [id]) => {
            let Some(record) =
                auth::ApiKeyStore::get(&auth::apikeys::DbApiKeyStore::new(stack.db.clone()), id)
                    .await?
            else {
                return Err(Error::UserNotFound);
            };
            stack.auth.revoke_api_key(&record.owner, id).await?;
            say(&format!("revoked API key {id}"));
            Ok(())
        }
        _ => Err(usage()),
    }
}

/// `jwt keys | rotate | import FILE [--next]`: the asymmetric signing keys in
/// `AUTH_JWT_KEYS_DIR`.
/// Prints the signing keys, a line each (and the stored version for keys in the database).
fn list_keys(keys: &auth::jwt::JwtKeySet, version: Option<i64>) {
    for k in keys.keys() {
        say(&format!(
            "{}  {:?}{}",
            k.kid(),
            k.state(),
            k.retired_at()
                .map(|at| format!(" since {at}"))
                .unwrap_or_default()
        ));
    }
    if let Some(version) = version {
        say(&format!("(in the database, version {version})"));
    }
}

/// The state `jwt import FILE [--next]` gives the imported key.
fn import_state(rest: &[&str]) -> Result<auth::jwt::KeyState, Error> {
    match rest {
        [] => Ok(auth::jwt::KeyState::Current),
        ["--next"] => Ok(auth::jwt::KeyState::Next),
        _ => Err(Error::invalid(
            "arguments",
            "unknown_flag",
            "usage: jwt import FILE [--next]",
        )),
    }
}

fn jwt_command(settings: &auth_server::Settings, args: &[&str]) -> Result<(), Error> {
    use auth::jwt::JwtKeySet;
    let dir = match (&settings.jwt_keys_dir, settings.jwt_algorithm.is_hmac()) {
        (Some(dir), false) => dir.clone(),
        _ => {
            return Err(Error::Configuration(auth::ConfigError::invalid(
                "AUTH_JWT_ALGORITHM",
                "is HS256 (a shared secret, no keys to manage): set EdDSA, ES256, ES384 or RS256",
            )));
        }
    };
    let now = auth::Clock::now(&auth::SystemClock);
    let config = |e: auth::jwt::JwtError| {
        Error::Configuration(auth::ConfigError::invalid(
            "AUTH_JWT_KEYS_DIR",
            e.to_string(),
        ))
    };
    let list = |keys: &JwtKeySet| list_keys(keys, None);
    match args {
        ["keys"] => {
            let keys = auth_server::keys::load_or_create(&dir, settings.jwt_algorithm)?;
            list(&keys);
        }
        ["rotate"] => {
            let mut keys = auth_server::keys::load_or_create(&dir, settings.jwt_algorithm)?;
            keys.rotate(now).map_err(config)?;
            let lifetimes = settings.config.lifetimes();
            let pruned = keys.prune(now, lifetimes.refresh().max(lifetimes.absolute()));
            keys.save(&dir).map_err(config)?;
            list(&keys);
            if !pruned.is_empty() {
                say(&format!(
                    "removed (every token they signed has expired): {}",
                    pruned.join(", ")
                ));
            }
        }
        ["import", file, rest @ ..] => {
            let state = import_state(rest)?;
            let pem = std::fs::read_to_string(file)
                .map_err(|e| Error::backend("reading the key file", e))?;
            let mut keys = if JwtKeySet::manifest_path(&dir).exists() {
                JwtKeySet::load(&dir).map_err(config)?
            } else {
                JwtKeySet::empty(settings.jwt_algorithm).map_err(config)?
            };
            let kid = format!(
                "{}-imported-{}",
                settings.jwt_algorithm.name().to_lowercase(),
                now.unix_timestamp()
            );
            keys.add_pem(&kid, &pem, state, now).map_err(config)?;
            keys.save(&dir).map_err(config)?;
            list(&keys);
        }
        _ => {
            say(USAGE);
            return Err(Error::invalid("arguments", "usage", "see the usage above"));
        }
    }
    Ok(())
}

/// `jwt keys|rotate|import` on the keys kept in the database: each change is a
/// compare-and-swap on the stored version (two rotations at once both take effect), and is
/// published on the change feed so that running servers load it at once.
async fn jwt_database_command(
    settings: &auth_server::Settings,
    db: sea_orm::DatabaseConnection,
    args: &[&str],
) -> Result<(), Error> {
    use auth::jwt::JwtKeySet;
    if settings.jwt_algorithm.is_hmac() {
        return Err(Error::Configuration(auth::ConfigError::invalid(
            "AUTH_JWT_ALGORITHM",
            "is HS256 (a shared secret, no keys to manage): set EdDSA, ES256, ES384 or RS256",
        )));
    }
    let vault = auth_server::key_vault(settings, &db);
    let now = auth::Clock::now(&auth::SystemClock);
    let list = |version: i64, keys: &JwtKeySet| list_keys(keys, Some(version));
    let changed = match args {
        ["keys"] => {
            let (version, keys) = vault.load_or_create().await?;
            list(version, &keys);
            false
        }
        ["rotate"] => {
            let lifetimes = settings.config.lifetimes();
            let retention = lifetimes.refresh().max(lifetimes.absolute());
            let pruned = std::sync::Mutex::new(Vec::new());
            vault.load_or_create().await?;
            let (version, keys) = vault
                .update(|keys| {
                    keys.rotate(now).map_err(Error::from)?;
                    *pruned
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) =
                        keys.prune(now, retention);
                    Ok(())
                })
                .await?;
            list(version, &keys);
            let pruned = pruned
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !pruned.is_empty() {
                say(&format!(
                    "removed (every token they signed has expired): {}",
                    pruned.join(", ")
                ));
            }
            true
        }
        ["import", file, rest @ ..] => {
            let state = import_state(rest)?;
            let pem = zeroize::Zeroizing::new(
                std::fs::read_to_string(file)
                    .map_err(|e| Error::backend("reading the key file", e))?,
            );
            let kid = format!(
                "{}-imported-{}",
                settings.jwt_algorithm.name().to_lowercase(),
                now.unix_timestamp()
            );
            let (version, keys) = vault
                .update(|keys| keys.add_pem(&kid, &pem, state, now).map_err(Error::from))
                .await?;
            list(version, &keys);
            true
        }
        _ => {
            say(USAGE);
            return Err(Error::invalid("arguments", "usage", "see the usage above"));
        }
    };
    if changed {
        let feed = auth_server::publisher_feed(settings, &db)?;
        if let Err(e) = feed
            .publish(&[auth::Change::SigningKeysChanged {
                name: auth_server::keys::JWT_KEY_SET.to_owned(),
            }])
            .await
        {
            tracing::warn!(error = %e, "the change is stored; running servers load it within 30 s");
        }
    }
    Ok(())
}

async fn serve(settings: &auth_server::Settings, db: sea_orm::DatabaseConnection) -> ExitCode {
    // Signing keys in the database: loaded (or made) before listening, so that a secret that
    // cannot open them stops the start, naming it.
    if matches!(settings.token_backend, auth_server::TokenBackendKind::Jwt)
        && !settings.jwt_algorithm.is_hmac()
        && settings.jwt_keys_dir.is_none()
        && let Err(e) = auth_server::key_vault(settings, &db).load_or_create().await
    {
        tracing::error!("{e}");
        return ExitCode::from(2);
    }
    let app = match auth_server::app(settings, db) {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(settings.addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, addr = %settings.addr, "cannot listen (set AUTH_SERVER_ADDR)");
            return ExitCode::FAILURE;
        }
    };
    let open_files = auth_server::raise_open_file_limit();
    let limits = settings.connection_limits(open_files);
    tracing::info!(
        open_file_limit = open_files,
        max_connections = limits.max_connections,
        max_connections_per_client = limits.max_per_client,
        header_timeout_s = limits.header_timeout.as_secs(),
        "connection limits"
    );
    tracing::info!(addr = %settings.addr, backend = ?settings.token_backend, "auth-server listening");
    let shutdown = async {
        // Ctrl-C, or SIGTERM from a process manager.
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async {
                    match term.as_mut() {
                        Some(t) => { t.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    };
    match auth_server::listen::serve(listener, app, limits, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server error");
            ExitCode::FAILURE
        }
    }
}
