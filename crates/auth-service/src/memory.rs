//! In-memory stores: for tests, examples and single-process use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::SecretString;
use crate::random;
use crate::{BackendError, Error, Result};
use crate::{
    Claims, ExtraClaims, IssueRequest, MAX_TOKEN_LENGTH, RefreshGuard, RotateOutcome,
    RotateRequest, SessionInfo, SessionMeta, TokenBackend, TokenKind, TokenLifetimes, TokenPair,
};
use crate::{NewUser, User, UserId, UserQuery, UserStore};
use crate::{SharedClock, SystemClock, add_saturating as add};

#[derive(Default)]
struct Users {
    by_id: HashMap<UserId, User>,
    by_email: HashMap<String, UserId>,
}

/// A [`UserStore`] in process memory. Ids are consecutive integers as strings ("1", "2", ...).
///
/// ```
/// use auth_service::{MemoryUserStore, NewUser, UserStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryUserStore::new();
/// let u = store.create(NewUser::new("erin@example.com")).await?;
/// assert_eq!(u.id.as_str(), "1");
/// assert!(matches!(store.create(NewUser::new("erin@example.com")).await, Err(auth_service::Error::EmailTaken)));
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryUserStore {
    users: Arc<Mutex<Users>>,
    next_id: Arc<AtomicU64>,
    clock: SharedClock,
}

impl MemoryUserStore {
    /// An empty store on the system clock.
    ///
    /// ```
    /// let _ = auth_service::MemoryUserStore::new();
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self {
            users: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
            clock: Arc::new(SystemClock),
        }
    }

    /// Reads time (for `joined_at`) from `clock`.
    ///
    /// ```
    /// # use auth_service::{FixedClock, MemoryUserStore};
    /// let _ = MemoryUserStore::new().with_clock(FixedClock::from_unix(0));
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl crate::Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How many users are stored.
    ///
    /// ```
    /// assert_eq!(auth_service::MemoryUserStore::new().len(), 0);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().map_or(0, |u| u.by_id.len())
    }

    /// Whether the store is empty.
    ///
    /// ```
    /// assert!(auth_service::MemoryUserStore::new().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> Result<MutexGuard<'_, Users>> {
        self.users
            .lock()
            .map_err(|_| Error::Backend(BackendError::message("user store lock poisoned")))
    }

    fn update(&self, id: &UserId, f: impl FnOnce(&mut User)) -> Result<()> {
        let mut users = self.lock()?;
        let user = users.by_id.get_mut(id).ok_or(Error::UserNotFound)?;
        f(user);
        Ok(())
    }
}

impl Default for MemoryUserStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryUserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryUserStore")
            .field("users", &self.len())
            .finish()
    }
}

#[async_trait]
impl UserStore for MemoryUserStore {
    type User = User;

    async fn find_by_email(&self, email: &str) -> Result<Option<User>> {
        let users = self.lock()?;
        Ok(users
            .by_email
            .get(email)
            .and_then(|id| users.by_id.get(id))
            .cloned())
    }

    async fn find_by_id(&self, id: &UserId) -> Result<Option<User>> {
        Ok(self.lock()?.by_id.get(id).cloned())
    }

    async fn create(&self, new: NewUser) -> Result<User> {
        let mut users = self.lock()?;
        if users.by_email.contains_key(&new.email) {
            return Err(Error::EmailTaken);
        }
        let id = UserId::new(self.next_id.fetch_add(1, Ordering::SeqCst).to_string());
        let mut user = User::new(id.clone(), new.email.clone());
        user.password_hash = new.password_hash;
        user.is_active = new.is_active;
        user.is_verified = new.is_verified;
        user.profile = new.profile;
        user.joined_at = Some(self.clock.now());
        users.by_email.insert(new.email, id.clone());
        users.by_id.insert(id, user.clone());
        Ok(user)
    }

    async fn set_password_hash(&self, id: &UserId, hash: &str) -> Result<()> {
        self.update(id, |u| u.password_hash = Some(hash.to_owned()))
    }

    async fn replace_password_hash(
        &self,
        id: &UserId,
        expected: Option<&str>,
        new_hash: &str,
    ) -> Result<bool> {
        let mut users = self.lock()?;
        let user = users.by_id.get_mut(id).ok_or(Error::UserNotFound)?;
        if user.password_hash.as_deref() != expected {
            return Ok(false);
        }
        user.password_hash = Some(new_hash.to_owned());
        Ok(true)
    }

    async fn record_login(&self, id: &UserId, at: OffsetDateTime) -> Result<()> {
        self.update(id, |u| u.last_login = Some(at))
    }

    async fn set_active(&self, id: &UserId, active: bool) -> Result<()> {
        self.update(id, |u| u.is_active = active)
    }

    async fn set_verified(&self, id: &UserId, verified: bool) -> Result<()> {
        self.update(id, |u| u.is_verified = verified)
    }

    async fn update_profile(
        &self,
        id: &UserId,
        values: serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        self.update(id, |u| u.profile.extend(values))
    }

    async fn list(&self, query: &UserQuery) -> Result<Vec<User>> {
        let users = self.lock()?;
        let mut found: Vec<&User> = users.by_id.values().filter(|u| query.matches(*u)).collect();
        found.sort_by_key(|u| u.id.as_str().parse::<u64>().unwrap_or(u64::MAX));
        Ok(found
            .into_iter()
            .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(query.limit).unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn delete(&self, id: &UserId) -> Result<bool> {
        let mut users = self.lock()?;
        let Some(user) = users.by_id.remove(id) else {
            return Ok(false);
        };
        users.by_email.remove(&user.email);
        Ok(true)
    }

    async fn replace_email(&self, id: &UserId, expected: &str, new_email: &str) -> Result<bool> {
        let mut users = self.lock()?;
        let current = users.by_id.get(id).ok_or(Error::UserNotFound)?;
        if current.email != expected {
            return Ok(false);
        }
        if new_email == expected {
            return Ok(true);
        }
        if users.by_email.contains_key(new_email) {
            return Err(Error::EmailTaken);
        }
        users.by_email.remove(expected);
        users.by_email.insert(new_email.to_owned(), id.clone());
        if let Some(user) = users.by_id.get_mut(id) {
            user.email = new_email.to_owned();
        }
        Ok(true)
    }
}

struct TokenRecord {
    kind: TokenKind,
    jti: String,
    family: String,
    iat: i64,
    expires_at: OffsetDateTime,
    revoked: bool,
    /// Set when a refresh token was rotated: presenting it again is reuse (but for its own
    /// racing client within the reuse window, with a successor key).
    consumed: bool,
    /// When it was consumed.
    consumed_at: Option<OffsetDateTime>,
    /// For a refresh token, the SHA-256 of the access token issued with it.
    paired_access: Option<String>,
}

struct Family {
    user_id: UserId,
    created_at: OffsetDateTime,
    absolute_expires_at: OffsetDateTime,
    refresh_expires_at: OffsetDateTime,
    last_used_at: Option<OffsetDateTime>,
    meta: SessionMeta,
    extra: ExtraClaims,
    revoked: bool,
}

#[derive(Default)]
struct TokenState {
    tokens: HashMap<String, TokenRecord>,
    families: HashMap<String, Family>,
}

/// A [`TokenBackend`] in process memory with opaque tokens: 256 random bits each, stored only
/// as SHA-256, with refresh families and reuse detection.
///
/// ```
/// use auth_service::{IssueRequest, MemoryTokenBackend, TokenBackend, TokenKind, UserId};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let backend = MemoryTokenBackend::new();
/// let pair = backend.issue(&IssueRequest::new(UserId::new("1"))).await?;
/// let claims = backend.verify(pair.access_token.expose_secret(), TokenKind::Access).await?;
/// assert_eq!(claims.sub, "1");
/// // The kinds never mix.
/// assert!(backend.verify(pair.access_token.expose_secret(), TokenKind::Refresh).await.is_err());
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryTokenBackend {
    state: Arc<Mutex<TokenState>>,
    clock: SharedClock,
    successor_key: Option<Arc<[u8]>>,
}

impl MemoryTokenBackend {
    /// Random bytes per token (256 bits).
    pub const TOKEN_BYTES: usize = 32;

    /// An empty backend on the system clock.
    ///
    /// ```
    /// let _ = auth_service::MemoryTokenBackend::new();
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: Arc::default(),
            clock: Arc::new(SystemClock),
            successor_key: None,
        }
    }

    /// Derives each rotation's successor pair from the refresh token it replaces under `key`
    /// (any secret; [`with_random_successor_key`](Self::with_random_successor_key) makes one),
    /// so that the same refresh token presented again within the reuse window
    /// ([`RotateRequest::reuse_window`]) yields the same, working successor, as the SQL and
    /// Redis backends do: two tabs refreshing at once keep their session. Without a key every
    /// second use is reuse. Tokens are still stored only as SHA-256.
    ///
    /// ```
    /// use std::time::Duration;
    /// use auth_service::{AllowAll, IssueRequest, MemoryTokenBackend, RotateOutcome, RotateRequest, TokenBackend, UserId};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let backend = MemoryTokenBackend::new().with_successor_key(b"a secret of this backend");
    /// let pair = backend.issue(&IssueRequest::new(UserId::new("1"))).await?;
    /// let request = RotateRequest::default().with_reuse_window(Duration::from_secs(10));
    /// let refresh = pair.refresh_token.expose_secret();
    /// let RotateOutcome::Rotated { pair: first, .. } = backend.rotate(refresh, &request, &AllowAll).await? else { panic!() };
    /// let RotateOutcome::Rotated { pair: again, .. } = backend.rotate(refresh, &request, &AllowAll).await? else { panic!() };
    /// assert_eq!(first.refresh_token.expose_secret(), again.refresh_token.expose_secret());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn with_successor_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.successor_key = Some(Arc::from(key.as_ref()));
        self
    }

    /// [`with_successor_key`](Self::with_successor_key) with 256 random bits, kept in memory
    /// only (as the tokens are).
    ///
    /// ```
    /// let _ = auth_service::MemoryTokenBackend::new().with_random_successor_key();
    /// ```
    #[must_use]
    pub fn with_random_successor_key(self) -> Self {
        let key = random::token(32);
        self.with_successor_key(key)
    }

    /// The successor pair of the refresh token `presented`: derived under the key, or random.
    fn successors(key: Option<&[u8]>, presented: &str) -> (String, String) {
        match key {
            Some(key) => (
                random::keyed_token(key, &["auth-core memory successor", "access", presented]),
                random::keyed_token(key, &["auth-core memory successor", "refresh", presented]),
            ),
            None => (
                random::token(Self::TOKEN_BYTES),
                random::token(Self::TOKEN_BYTES),
            ),
        }
    }

    /// A consumed refresh token presented again by its own racing client: the successor it
    /// got, when the key derives it, within the window, and the successor is still unused and
    /// the session alive; `None` otherwise (reuse).
    fn same_successor(
        &self,
        state: &TokenState,
        presented: &str,
        hash: &str,
        now: OffsetDateTime,
        window: std::time::Duration,
    ) -> Option<(Claims, TokenPair)> {
        let key = self.successor_key.as_deref()?;
        let record = state.tokens.get(hash)?;
        let consumed = record.consumed_at?;
        let family = state.families.get(&record.family)?;
        let window = time::Duration::try_from(window).unwrap_or(time::Duration::MAX);
        if window.is_zero() || family.revoked || now - consumed > window {
            return None;
        }
        let (access, refresh) = Self::successors(Some(key), presented);
        let next = state.tokens.get(&random::sha256_hex(&refresh))?;
        let next_access = state.tokens.get(&random::sha256_hex(&access))?;
        if next.family != record.family || next.consumed || next.revoked || next_access.revoked {
            return None;
        }
        let pair = TokenPair::new(
            SecretString::new(access),
            next_access.expires_at,
            SecretString::new(refresh),
            next.expires_at,
        );
        Some((Self::claims(record, family), pair))
    }

    /// Reads time from `clock`.
    ///
    /// ```
    /// # use auth_service::{FixedClock, MemoryTokenBackend};
    /// let _ = MemoryTokenBackend::new().with_clock(FixedClock::from_unix(0));
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl crate::Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    fn lock(&self) -> Result<MutexGuard<'_, TokenState>> {
        self.state
            .lock()
            .map_err(|_| Error::Backend(BackendError::message("token store lock poisoned")))
    }

    /// Adds an access/refresh pair to `family` (which must exist) and returns it.
    fn add_pair(
        state: &mut TokenState,
        family_id: &str,
        now: OffsetDateTime,
        lifetimes: &TokenLifetimes,
        tokens: (String, String),
    ) -> Result<TokenPair> {
        let family = state
            .families
            .get_mut(family_id)
            .ok_or(Error::TokenInvalid)?;
        let access_exp = add(now, lifetimes.access()).min(family.absolute_expires_at);
        let refresh_exp = add(now, lifetimes.refresh()).min(family.absolute_expires_at);
        family.refresh_expires_at = refresh_exp;
        family.last_used_at = Some(now);
        let (access, refresh) = tokens;
        let access_hash = random::sha256_hex(&access);
        let record = |kind, expires_at, paired_access| TokenRecord {
            kind,
            jti: random::token(16),
            family: family_id.to_owned(),
            iat: now.unix_timestamp(),
            expires_at,
            revoked: false,
            consumed: false,
            consumed_at: None,
            paired_access,
        };
        state.tokens.insert(
            random::sha256_hex(&refresh),
            record(TokenKind::Refresh, refresh_exp, Some(access_hash.clone())),
        );
        state
            .tokens
            .insert(access_hash, record(TokenKind::Access, access_exp, None));
        Ok(TokenPair::new(
            SecretString::new(access),
            access_exp,
            SecretString::new(refresh),
            refresh_exp,
        ))
    }

    fn claims(record: &TokenRecord, family: &Family) -> Claims {
        let mut claims = Claims::new(
            family.user_id.as_str(),
            record.kind,
            record.jti.clone(),
            record.iat,
            record.expires_at.unix_timestamp(),
        )
        .with_family(record.family.clone());
        if !family.extra.is_empty() {
            claims.extra = Some(family.extra.clone());
        }
        claims
    }

    /// Checks a refresh token for rotation without consuming it: its claims when it may rotate,
    /// `Err(Reused)` (after revoking the family) when it was already consumed, or an error.
    fn check_refresh(
        state: &mut TokenState,
        hash: &str,
        now: OffsetDateTime,
    ) -> Result<Result<Claims, RotateOutcome>> {
        let record = state.tokens.get(hash).ok_or(Error::TokenInvalid)?;
        if record.kind != TokenKind::Refresh {
            return Err(Error::TokenInvalid);
        }
        let family = state
            .families
            .get(&record.family)
            .ok_or(Error::TokenInvalid)?;
        if record.consumed {
            let (user_id, family_id) = (family.user_id.clone(), record.family.clone());
            Self::revoke_family(state, &family_id);
            return Ok(Err(RotateOutcome::Reused {
                user_id,
                family: family_id,
            }));
        }
        if record.revoked || family.revoked {
            return Err(Error::TokenRevoked);
        }
        if record.expires_at <= now || family.absolute_expires_at <= now {
            return Err(Error::TokenExpired);
        }
        Ok(Ok(Self::claims(record, family)))
    }

    fn revoke_family(state: &mut TokenState, family_id: &str) {
        if let Some(f) = state.families.get_mut(family_id) {
            f.revoked = true;
        }
        for record in state.tokens.values_mut() {
            if record.family == family_id {
                record.revoked = true;
            }
        }
    }
}

impl Default for MemoryTokenBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryTokenBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTokenBackend").finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenBackend for MemoryTokenBackend {
    async fn issue(&self, request: &IssueRequest) -> Result<TokenPair> {
        let now = self.clock.now();
        let family_id = random::token(16);
        let mut state = self.lock()?;
        state.families.insert(
            family_id.clone(),
            Family {
                user_id: request.user_id.clone(),
                created_at: now,
                absolute_expires_at: add(now, request.lifetimes.absolute()),
                refresh_expires_at: now,
                last_used_at: None,
                meta: request.meta.clone(),
                extra: request.extra.clone(),
                revoked: false,
            },
        );
        let tokens = Self::successors(None, "");
        Self::add_pair(&mut state, &family_id, now, &request.lifetimes, tokens)
    }

    async fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims> {
        if token.is_empty() || token.len() > MAX_TOKEN_LENGTH {
            return Err(Error::TokenInvalid);
        }
        let now = self.clock.now();
        let hash = random::sha256_hex(token);
        let state = self.lock()?;
        let record = state.tokens.get(&hash).ok_or(Error::TokenInvalid)?;
        if record.kind != kind {
            return Err(Error::TokenInvalid);
        }
        let family = state
            .families
            .get(&record.family)
            .ok_or(Error::TokenInvalid)?;
        if record.revoked || family.revoked {
            return Err(Error::TokenRevoked);
        }
        if record.expires_at <= now {
            return Err(Error::TokenExpired);
        }
        Ok(Self::claims(record, family))
    }

    async fn rotate(
        &self,
        refresh_token: &str,
        request: &RotateRequest,
        guard: &dyn RefreshGuard,
    ) -> Result<RotateOutcome> {
        if refresh_token.is_empty() || refresh_token.len() > MAX_TOKEN_LENGTH {
            return Err(Error::TokenInvalid);
        }
        let now = self.clock.now();
        let hash = random::sha256_hex(refresh_token);
        // Its own racing client, within the reuse window: the same successor.
        let again = {
            let state = self.lock()?;
            self.same_successor(&state, refresh_token, &hash, now, request.reuse_window)
        };
        if let Some((previous, pair)) = again {
            guard.allow(&previous).await?;
            return Ok(RotateOutcome::Rotated { previous, pair });
        }
        // First look (no change), so the guard can run without holding the lock.
        let first_look = Self::check_refresh(&mut *self.lock()?, &hash, now)?;
        let previous = match first_look {
            Ok(claims) => claims,
            Err(reused) => return Ok(reused),
        };
        guard.allow(&previous).await?;
        // Consume and issue in one critical section: of concurrent rotations exactly one finds
        // the token unconsumed here; the others see it consumed and report reuse.
        let mut state = self.lock()?;
        let state = &mut *state;
        // Another rotation of the same token won meanwhile: its own racing client.
        if let Some((previous, pair)) =
            self.same_successor(state, refresh_token, &hash, now, request.reuse_window)
        {
            return Ok(RotateOutcome::Rotated { previous, pair });
        }
        if let Err(reused) = Self::check_refresh(state, &hash, now)? {
            return Ok(reused);
        }
        let record = state.tokens.get_mut(&hash).ok_or(Error::TokenInvalid)?;
        record.consumed = true;
        record.consumed_at = Some(now);
        record.revoked = true;
        let family_id = record.family.clone();
        // The access token issued with this refresh token ends with it.
        if let Some(a) = record
            .paired_access
            .clone()
            .and_then(|access| state.tokens.get_mut(&access))
        {
            a.revoked = true;
        }
        if let Some(f) = state
            .families
            .get_mut(&family_id)
            .filter(|_| request.meta != SessionMeta::default())
        {
            f.meta = request.meta.clone();
        }
        let tokens = Self::successors(self.successor_key.as_deref(), refresh_token);
        let pair = Self::add_pair(state, &family_id, now, &request.lifetimes, tokens)?;
        Ok(RotateOutcome::Rotated { previous, pair })
    }

    async fn revoke(&self, token: &str) -> Result<()> {
        if token.len() > MAX_TOKEN_LENGTH {
            return Ok(());
        }
        let hash = random::sha256_hex(token);
        let mut state = self.lock()?;
        if let Some(family) = state.tokens.get(&hash).map(|r| r.family.clone()) {
            Self::revoke_family(&mut state, &family);
        }
        Ok(())
    }

    async fn revoke_all(&self, user_id: &UserId, keep: Option<&str>) -> Result<u64> {
        let mut state = self.lock()?;
        let targets: Vec<String> = state
            .families
            .iter()
            .filter(|(id, f)| &f.user_id == user_id && !f.revoked && Some(id.as_str()) != keep)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &targets {
            Self::revoke_family(&mut state, id);
        }
        Ok(targets.len() as u64)
    }

    async fn sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>> {
        let now = self.clock.now();
        let state = self.lock()?;
        let mut sessions: Vec<SessionInfo> = state
            .families
            .iter()
            .filter(|(_, f)| &f.user_id == user_id && !f.revoked && f.refresh_expires_at > now)
            .map(|(id, f)| {
                let mut s = SessionInfo::new(id.clone(), f.created_at, f.refresh_expires_at);
                s.last_used_at = f.last_used_at;
                s.meta = f.meta.clone();
                s
            })
            .collect();
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(sessions)
    }

    async fn revoke_session(&self, user_id: &UserId, session_id: &str) -> Result<bool> {
        let mut state = self.lock()?;
        let owned = state
            .families
            .get(session_id)
            .is_some_and(|f| &f.user_id == user_id && !f.revoked);
        if owned {
            Self::revoke_family(&mut state, session_id);
        }
        Ok(owned)
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        let now = self.clock.now();
        let mut state = self.lock()?;
        let before = state.tokens.len() + state.families.len();
        state.tokens.retain(|_, r| r.expires_at > now);
        let TokenState { tokens, families } = &mut *state;
        families.retain(|id, f| {
            (f.refresh_expires_at > now && f.absolute_expires_at > now)
                || tokens.values().any(|r| &r.family == id)
        });
        let after = state.tokens.len() + state.families.len();
        let removed = (before - after) as u64;
        tracing::debug!(removed, "expired in-memory tokens removed");
        Ok(removed)
    }
}
