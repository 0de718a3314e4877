//! `auth-server`: serve the API (default), or `auth-server migrate` / `auth-server secret generate [--mfa]`.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm_migration=warn")),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if args.as_slice() == ["secret", "generate"] {
        // The one place the program prints a secret: the operator asked for it.
        #[allow(clippy::print_stdout)]
        {
            println!("{}", auth::random::token(48));
        }
        return ExitCode::SUCCESS;
    }
    if args.as_slice() == ["secret", "generate", "--mfa"] {
        // A value for AUTH_MFA_KEY: a key id (k + days since 1970) and 32 random bytes.
        let id = time_key_id();
        #[allow(clippy::print_stdout)]
        {
            println!("{id}:{}", auth::random::token(32));
        }
        return ExitCode::SUCCESS;
    }
    let settings = match auth_server::Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let db = match auth_server::connect(&settings.database_url).await {
        Ok(db) => db,
        Err(e) => {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "database unavailable");
            return ExitCode::FAILURE;
        }
    };
    match args.as_slice() {
        [] | ["serve"] => {}
        ["migrate"] => {
            tracing::info!("database migrated");
            return ExitCode::SUCCESS;
        }
        other => {
            tracing::error!(
                ?other,
                "unknown command; use: serve | migrate | secret generate"
            );
            return ExitCode::from(2);
        }
    }
    let app = match auth_server::app(&settings, db) {
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
        tracing::info!("shutting down: finishing requests in flight");
    };
    match axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server error");
            ExitCode::FAILURE
        }
    }
}

/// `k` and the days since 1970 for new key ids, so rotated keys sort by age.
fn time_key_id() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    format!("k{days}")
}
