//! The quick-start round trip of tortoise-auth's tutorial, in Rust: create a user, set the
//! password, log in, authenticate, refresh, log out.
//!
//! Run it with `cargo run -p auth --example quickstart`.
//!
//! It uses the in-memory stores and Argon2id (OWASP parameters) for the password.

// An example prints to the terminal.
#![allow(clippy::print_stdout)]

use auth::hash::Argon2Hasher;
use auth::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore, NewUser};

/// Shows the start of a token only: enough to see it changed, not enough to use it.
fn preview(token: &str) -> String {
    format!("{}...", token.chars().take(12).collect::<String>())
}

#[tokio::main]
async fn main() -> Result<(), auth::Error> {
    let auth = AuthService::new(
        AuthConfig::default(),
        MemoryUserStore::new(),
        Argon2Hasher::default(),
        MemoryTokenBackend::new(),
    )?;

    // 4. Create a user, then set the password.
    let user = auth.create_user(NewUser::new("alice@example.com")).await?;
    auth.set_password(&user.id, "SecurePass123!").await?;
    println!("Created user: {}", user.email);

    // 5. Log in.
    let result = auth.login("alice@example.com", "SecurePass123!").await?;
    println!("Access token: {}", preview(result.access_token()));
    println!("Refresh token: {}", preview(result.refresh_token()));

    // 6. Authenticate a request.
    let authenticated = auth.authenticate(result.access_token()).await?;
    println!("Authenticated: {}", authenticated.email);

    // 7. Refresh tokens.
    let new_tokens = auth.refresh(result.refresh_token()).await?;
    println!(
        "New access token: {}",
        preview(new_tokens.access_token.expose_secret())
    );
    println!(
        "New refresh token: {}",
        preview(new_tokens.refresh_token.expose_secret())
    );

    // 8. Log out.
    auth.logout(new_tokens.access_token.expose_secret()).await?;
    println!("Logged out successfully.");
    Ok(())
}
