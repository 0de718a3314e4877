//! Sign-in by email: a link and a 6-digit code, either of which logs in once, within minutes,
//! and only for the browser or client that asked for it.
//!
//! A request answers with a **flow id** (kept by the requester: an HttpOnly cookie in a browser,
//! the answer's body for an API client) and mails the link and the code. One record per address
//! (the next request for the address replaces it) holds the SHA-256 of the code and of the flow
//! id, and how many guesses are left. The link and the code both reach it, and both must come
//! with the flow id: a link forwarded to another browser (login CSRF), or a code typed where it
//! was not asked for, signs nobody in. Three wrong codes of the right flow end the record;
//! wrong guesses are throttled per address and per client across addresses; requests are
//! throttled per address and client, and per client across addresses (the mail limiter). The
//! second factor still applies: an account that has one gets a challenge, not a session.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::links::{b64, unb64};
use super::throttle::client_bucket;
use super::{AuthService, LoginOptions, LoginOutcome};
use crate::RequestContext;
use crate::RequestScope;
use crate::SessionMeta;
use crate::ephemeral::{CeremonyRecord, CeremonyStore};
use crate::random::sha256_hex;
use crate::{AuthEvent, LoginFailureReason};
use crate::{AuthUser, normalize_email};
use crate::{Error, Result};
use crate::{SecretString, constant_time_eq};

const PURPOSE: &str = "magic-link";

/// How long a sign-in link and code work.
pub const MAGIC_LINK_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Wrong codes a flow may try before its record ends.
pub const MAGIC_CODE_GUESSES: u32 = 3;

/// The record of an address's live sign-in: hashes only.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    user: String,
    code: String,
    flow: String,
    left: u32,
}

impl<U: AuthUser> AuthService<U> {
    fn magic_store(&self) -> Result<&std::sync::Arc<dyn CeremonyStore>> {
        self.ceremonies.as_ref().ok_or(Error::Unsupported(
            "sign-in links need a ceremony store (AuthService::with_ceremony_store)".into(),
        ))
    }

    /// Asks for a sign-in link and code for `email`; answers the **flow id** the requester
    /// must present with the code or link ([`sign_in_with_code`](Self::sign_in_with_code),
    /// [`sign_in_with_magic_link`](Self::sign_in_with_magic_link)). The answer is the same
    /// whether an account has the address or not, and takes the same time: for an existing,
    /// active account the record is written (replacing the address's previous one, whose code
    /// and link stop working) and `MagicLinkRequested` (the link's token and the code) emitted
    /// in the background. Requests are throttled per address and client with the login
    /// limiter (`magic:` keys) and per client across addresses with the mail limiter.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for input that is not an address; [`Error::RateLimited`];
    /// [`Error::Unsupported`] without a ceremony store; [`Error::Configuration`] without a
    /// signing secret; [`Error::Backend`].
    ///
    /// ```
    /// use auth_service::*;
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef-signing").build()?;
    /// let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
    ///     .with_ceremony_store(ephemeral::MemoryCeremonyStore::new());
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// auth.events().on_fn(AuthEventKind::MagicLinkRequested, move |e| {
    ///     let tx = tx.clone();
    ///     async move { if let AuthEvent::MagicLinkRequested { token, code, .. } = e { tx.send((token, code)).ok(); } Ok(()) }
    /// });
    /// auth.register("mo@example.com", "violet-otter-sings-42").await?;
    /// let flow = auth.request_magic_link("mo@example.com", &SessionMeta::new()).await?;
    /// auth.request_magic_link("nobody@example.com", &SessionMeta::new()).await?; // the same answer
    /// let (_token, code) = rx.recv().await.unwrap();
    /// // Another browser's flow (or none) signs nobody in with this code.
    /// let elsewhere = auth.request_magic_link("nobody@example.com", &SessionMeta::new()).await?;
    /// assert!(auth.sign_in_with_code("mo@example.com", code.expose_secret(), elsewhere.expose_secret(), LoginOptions::new()).await.is_err());
    /// let LoginOutcome::Session(session) = auth
    ///     .sign_in_with_code("mo@example.com", code.expose_secret(), flow.expose_secret(), LoginOptions::new())
    ///     .await?
    /// else { unreachable!() };
    /// assert_eq!(session.user.email, "mo@example.com");
    /// // Once: the code (and the link) are spent.
    /// assert!(auth.sign_in_with_code("mo@example.com", code.expose_secret(), flow.expose_secret(), LoginOptions::new()).await.is_err());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn request_magic_link(
        &self,
        email: &str,
        meta: &SessionMeta,
    ) -> Result<SecretString> {
        let store = std::sync::Arc::clone(self.magic_store()?);
        let email = normalize_email(email)?;
        let client = meta.ip.map(client_bucket);
        let key = format!("magic:{}|{email}", client.as_deref().unwrap_or("*"));
        self.reserve(self.limiter.as_ref(), &key).await?;
        self.throttle_mail(meta.ip).await?;
        let flow = crate::random::token(24);
        let code = six_digits();
        let expires = self.clock.now() + MAGIC_LINK_LIFETIME;
        let exp = expires.unix_timestamp().to_string();
        // The same work for every address: the MACs, one lookup.
        let mac = self.link_mac(PURPOSE, &[&email, &code, &exp])?;
        let record = self.record_key(PURPOSE, &[&email])?;
        let user = match self.users.find_by_email(&email).await? {
            Some(u) if u.is_active() => u,
            _ => return Ok(SecretString::new(flow)),
        };
        let pending = Pending {
            user: user.id().to_string(),
            code: sha256_hex(&code),
            flow: sha256_hex(&flow),
            left: MAGIC_CODE_GUESSES,
        };
        let state = serde_json::to_string(&pending)
            .map_err(|e| Error::backend("storing a sign-in link", e))?;
        let token = [b64(&email), code.clone(), exp, mac].join(".");
        let events = self.events.clone();
        let ctx = RequestContext::current().unwrap_or_default();
        // Written and mailed after the answer, so neither the write nor a slow mailer tells
        // which addresses have accounts.
        tokio::spawn(ctx.scope(async move {
            let stored = store
                .put(&CeremonyRecord::new(
                    record,
                    Some(user.id().clone()),
                    state,
                    expires,
                ))
                .await;
            if let Err(e) = stored {
                tracing::error!(error = %e, "storing a sign-in link failed: nothing mailed");
                return;
            }
            events
                .emit(AuthEvent::MagicLinkRequested {
                    user_id: user.id().clone(),
                    email: user.email().to_owned(),
                    token: SecretString::new(token),
                    code: SecretString::new(code),
                })
                .await;
        }));
        Ok(SecretString::new(flow))
    }

    /// Signs in with a sign-in link's token, presented with the flow id of the request that
    /// asked for it: a session, or the second factor's challenge. On an account whose address
    /// nobody had proven, this is the owner's proof ([`prove_address`](Self::prove_address)'s
    /// rule: what was set up before is removed).
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] for a forged, used or superseded link, or one presented without
    /// its flow; [`Error::TokenExpired`]; [`Error::RateLimited`]; [`Error::Backend`].
    pub async fn sign_in_with_magic_link(
        &self,
        token: &str,
        flow: &str,
        options: LoginOptions,
    ) -> Result<LoginOutcome<U>> {
        let parts: Vec<&str> = token.split('.').collect();
        let [email, code, exp, mac] = parts.as_slice() else {
            return Err(Error::TokenInvalid);
        };
        let email = unb64(email)?;
        if !self.link_mac_ok(mac, PURPOSE, &[&email, code, exp])? {
            return Err(Error::TokenInvalid);
        }
        self.check_expiry(exp)?;
        let guess = self.throttle_guess(&options.meta).await?;
        match self
            .spend_magic(&email, code, flow, options, "sign_in_link")
            .await?
        {
            Some(outcome) => {
                self.give_back(guess).await;
                Ok(outcome)
            }
            None => Err(Error::TokenInvalid),
        }
    }

    /// Signs in with the address, the 6-digit code of a sign-in mail, and the flow id of the
    /// request that asked for it. Three wrong codes end the request; wrong codes are also
    /// throttled per address (the login limiter's policy, `magic-code:` keys) and per client
    /// across addresses (`magic-guess:` keys, the per-address limiter when one is set).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCredentials`] for a wrong, used, superseded or expired code, or one
    /// presented without its flow (or an unknown address: the same answer);
    /// [`Error::RateLimited`]; [`Error::Backend`].
    pub async fn sign_in_with_code(
        &self,
        email: &str,
        code: &str,
        flow: &str,
        options: LoginOptions,
    ) -> Result<LoginOutcome<U>> {
        let Ok(email) = normalize_email(email) else {
            return Err(Error::InvalidCredentials);
        };
        let key = format!("magic-code:{email}");
        let grant = self.reserve(self.limiter.as_ref(), &key).await?;
        let guess = self.throttle_guess(&options.meta).await?;
        let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
        let outcome = if well_formed {
            self.spend_magic(&email, code, flow, options, "sign_in_code")
                .await?
        } else {
            None
        };
        match outcome {
            Some(outcome) => {
                self.limiter.reset(&key).await?;
                self.give_back(guess).await;
                Ok(outcome)
            }
            None => {
                self.events
                    .emit(AuthEvent::UserLoginFailed {
                        identifier: email,
                        reason: LoginFailureReason::BadPassword,
                    })
                    .await;
                if grant.last {
                    self.locked(self.limiter.as_ref(), &key).await;
                }
                Err(Error::InvalidCredentials)
            }
        }
    }

    /// One guess by a client, across addresses: reserved before the check (the per-address
    /// limiter when one is set, else the login limiter); its key, to give back on a success.
    async fn throttle_guess(&self, meta: &SessionMeta) -> Result<Option<String>> {
        let Some(ip) = meta.ip else {
            return Ok(None);
        };
        let limiter = self.ip_limiter.as_ref().unwrap_or(&self.limiter);
        let key = format!("magic-guess:{}", client_bucket(ip));
        let grant = self.reserve(limiter.as_ref(), &key).await?;
        if grant.last {
            self.locked(limiter.as_ref(), &key).await;
        }
        Ok(Some(key))
    }

    /// A guess that signed in is not held against its client.
    async fn give_back(&self, key: Option<String>) {
        if let Some(key) = key {
            let limiter = self.ip_limiter.as_ref().unwrap_or(&self.limiter);
            if let Err(e) = limiter.release(&key).await {
                tracing::warn!(error = %e, "giving a sign-in guess back failed");
            }
        }
    }

    /// Takes the address's record once and checks the flow and the code against it; a wrong
    /// code of the right flow uses one of its guesses (the record goes back while any are
    /// left), a wrong flow uses none. Signs the user in on a match; `None` otherwise.
    async fn spend_magic(
        &self,
        email: &str,
        code: &str,
        flow: &str,
        options: LoginOptions,
        route: &'static str,
    ) -> Result<Option<LoginOutcome<U>>> {
        let store = self.magic_store()?;
        let key = self.record_key(PURPOSE, &[email])?;
        let Some(record) = store.take(&key, self.clock.now()).await? else {
            return Ok(None);
        };
        let Ok(mut pending) = serde_json::from_str::<Pending>(&record.state) else {
            return Ok(None);
        };
        let flow_ok = !flow.is_empty()
            && constant_time_eq(sha256_hex(flow).as_bytes(), pending.flow.as_bytes());
        let code_ok = constant_time_eq(sha256_hex(code).as_bytes(), pending.code.as_bytes());
        if !(flow_ok && code_ok) {
            if flow_ok {
                pending.left = pending.left.saturating_sub(1);
            }
            if pending.left > 0 {
                let state = serde_json::to_string(&pending)
                    .map_err(|e| Error::backend("storing a sign-in link", e))?;
                store
                    .put(&CeremonyRecord::new(
                        key,
                        record.user_id.clone(),
                        state,
                        record.expires_at,
                    ))
                    .await?;
            }
            return Ok(None);
        }
        let user_id = crate::UserId::new(pending.user);
        let mut user = match self.users.find_by_id(&user_id).await? {
            Some(u) if u.is_active() && u.email() == email => u,
            _ => return Ok(None),
        };
        if !user.is_verified() {
            // The mailbox's owner signs in to an account nobody had proven: it becomes theirs,
            // and nothing set up before stays.
            self.claim(&user, route, false).await?;
            user = match self.users.find_by_id(&user_id).await? {
                Some(u) => u,
                None => return Ok(None),
            };
        }
        self.session_or_challenge(user, options).await.map(Some)
    }
}

/// A uniformly drawn 6-digit code.
fn six_digits() -> String {
    let bytes = crate::random::bytes(8);
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes);
    // 2^64 is so much larger than 10^6 that the modulo bias is below 10^-13.
    format!("{:06}", u64::from_le_bytes(n) % 1_000_000)
}
