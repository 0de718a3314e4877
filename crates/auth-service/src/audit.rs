use async_trait::async_trait;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

use crate::RequestScope;
use crate::*;

/// An [`AuditStore`] in process memory, bounded: past `capacity` entries the oldest go.
///
/// ```
/// let store = auth_service::MemoryAuditStore::new().with_capacity(1000);
/// # let _ = store;
/// ```
#[derive(Clone)]
pub struct MemoryAuditStore {
    entries: Arc<Mutex<VecDeque<AuditEntry>>>,
    capacity: usize,
}

impl Default for MemoryAuditStore {
    fn default() -> Self {
        Self {
            entries: Arc::default(),
            capacity: 100_000,
        }
    }
}

impl fmt::Debug for MemoryAuditStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryAuditStore")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl MemoryAuditStore {
    /// An empty store keeping at most 100,000 entries.
    ///
    /// ```
    /// let _ = auth_service::MemoryAuditStore::new();
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps at most `capacity` entries (at least 1).
    ///
    /// ```
    /// let _ = auth_service::MemoryAuditStore::new().with_capacity(10);
    /// ```
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Every entry, oldest first (for tests and exports).
    ///
    /// ```
    /// assert!(auth_service::MemoryAuditStore::new().entries().unwrap().is_empty());
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the lock is poisoned.
    pub fn entries(&self) -> Result<Vec<AuditEntry>> {
        Ok(self.lock()?.iter().cloned().collect())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, VecDeque<AuditEntry>>> {
        self.entries
            .lock()
            .map_err(|_| Error::Backend(BackendError::message("audit store lock poisoned")))
    }
}

#[async_trait]
impl AuditStore for MemoryAuditStore {
    async fn append(&self, entry: &AuditEntry) -> Result<()> {
        let mut entries = self.lock()?;
        if entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back(entry.clone());
        Ok(())
    }

    async fn list(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let entries = self.lock()?;
        let mut found: Vec<AuditEntry> = entries
            .iter()
            .filter(|e| query.matches(e))
            .cloned()
            .collect();
        // Appended in order; a stable sort keeps that order among equal instants.
        found.sort_by_key(|e| std::cmp::Reverse(e.at));
        found.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        Ok(found)
    }

    async fn delete_before(&self, cutoff: OffsetDateTime) -> Result<u64> {
        let mut entries = self.lock()?;
        let before = entries.len();
        entries.retain(|e| e.at >= cutoff);
        Ok((before - entries.len()) as u64)
    }
}

/// The event handler writing every event (but those [`skip`](Self::skip)ped) to an
/// [`AuditStore`]. By default it skips the two that come with ordinary traffic,
/// `token_refreshed` and `api_key_used`.
///
/// An entry the store refuses (a full disk, a database away) is not dropped: it waits in
/// memory, in order, and a task writes it again after 0.5 s, doubling to 30 s, until the store
/// takes it; entries that come meanwhile wait behind it, keeping the instant of their event.
/// At most 100,000 wait (beyond that the oldest is dropped, logged at ERROR); a process that
/// ends while entries wait loses them. [`pending`](Self::pending) says how many wait.
///
/// ```
/// use auth_service::*;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryAuditStore::new();
/// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
/// AuditLog::new(store.clone()).install(auth.events());
///
/// let user = auth.register("ann@example.com", "violet-otter-sings-42").await?;
/// let _ = auth.login("ann@example.com", "wrong-password-entirely").await;
/// RequestContext::new(SessionMeta::new().with_user_agent("curl/8"))
///     .scope(auth.login("ann@example.com", "violet-otter-sings-42")).await?;
///
/// let entries = store.list(&AuditQuery::for_user(user.id.clone()).with_email("ann@example.com")).await?;
/// let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
/// assert_eq!(kinds, ["user_login", "user_login_failed", "user_registered"]);
/// assert_eq!(entries[0].user_agent.as_deref(), Some("curl/8"));
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct AuditLog {
    store: Arc<dyn AuditStore>,
    clock: SharedClock,
    skip: Vec<AuthEventKind>,
    retry: Arc<Retry>,
}

/// Entries the store refused, kept in order to be written again.
#[derive(Debug, Default)]
struct Retry {
    state: Mutex<RetryState>,
}

#[derive(Debug, Default)]
struct RetryState {
    pending: VecDeque<AuditEntry>,
    /// A task is writing `pending`.
    running: bool,
    /// Entries dropped because more than `MAX_PENDING` waited.
    dropped: u64,
}

/// Most entries kept for a retry (the oldest are dropped beyond it, counted and logged).
const MAX_PENDING: usize = 100_000;
/// The first wait before a retry; it doubles up to `RETRY_MAX`.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(500);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("skip", &self.skip)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// A log writing to `store`.
    ///
    /// ```
    /// let _ = auth_service::AuditLog::new(auth_service::MemoryAuditStore::new());
    /// ```
    pub fn new(store: impl AuditStore) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// A log writing to a shared store.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// let store: Arc<dyn auth_service::AuditStore> = Arc::new(auth_service::MemoryAuditStore::new());
    /// let _ = auth_service::AuditLog::from_arc(store);
    /// ```
    #[must_use]
    pub fn from_arc(store: Arc<dyn AuditStore>) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock),
            skip: vec![AuthEventKind::TokenRefreshed, AuthEventKind::ApiKeyUsed],
            retry: Arc::default(),
        }
    }

    /// Entries waiting to be written again because the store refused them.
    ///
    /// ```
    /// assert_eq!(auth_service::AuditLog::new(auth_service::MemoryAuditStore::new()).pending(), 0);
    /// ```
    #[must_use]
    pub fn pending(&self) -> usize {
        self.retry.state.lock().map_or(0, |s| s.pending.len())
    }

    /// Keeps `entry` for a retry (after any already waiting) and makes sure a task writes
    /// them. Without a Tokio runtime there is nobody to retry: the entry is dropped, logged.
    fn keep(&self, entry: AuditEntry) {
        let Ok(mut state) = self.retry.state.lock() else {
            return;
        };
        if state.pending.len() >= MAX_PENDING {
            state.pending.pop_front();
            state.dropped += 1;
            tracing::error!(
                dropped = state.dropped,
                max = MAX_PENDING,
                "audit store unavailable for long: the oldest entry waiting for a retry was dropped"
            );
        }
        state.pending.push_back(entry);
        if state.running {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::error!(
                "audit entry could not be written and no runtime can retry it: dropped"
            );
            state.pending.clear();
            return;
        };
        state.running = true;
        let log = self.clone();
        handle.spawn(async move { log.write_pending().await });
    }

    /// Writes the waiting entries in order, waiting longer after each refusal.
    async fn write_pending(self) {
        let mut wait = RETRY_FIRST;
        loop {
            tokio::time::sleep(wait).await;
            loop {
                let next = self
                    .retry
                    .state
                    .lock()
                    .ok()
                    .and_then(|s| s.pending.front().cloned());
                let Some(entry) = next else {
                    if let Ok(mut state) = self.retry.state.lock() {
                        // Checked under the lock: an entry kept meanwhile finds `running`.
                        if state.pending.is_empty() {
                            state.running = false;
                            tracing::info!("audit entries kept for a retry are written");
                            return;
                        }
                    }
                    continue;
                };
                match self.store.append(&entry).await {
                    Ok(()) => {
                        if let Ok(mut state) = self.retry.state.lock() {
                            state.pending.pop_front();
                        }
                        wait = RETRY_FIRST;
                    }
                    Err(e) => {
                        let waiting = self.pending();
                        tracing::warn!(error = %e, waiting, retry_in_ms = wait.as_millis(), "audit store still refuses entries");
                        wait = (wait * 2).min(RETRY_MAX);
                        break;
                    }
                }
            }
        }
    }

    /// Reads time from `clock`.
    ///
    /// ```
    /// let _ = auth_service::AuditLog::new(auth_service::MemoryAuditStore::new())
    ///     .with_clock(auth_service::FixedClock::from_unix(0));
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl crate::Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Records only the kinds not in `kinds` (replacing the default skip list).
    ///
    /// ```
    /// use auth_service::{AuditLog, AuthEventKind, MemoryAuditStore};
    /// let every = AuditLog::new(MemoryAuditStore::new()).skip([]);
    /// let quieter = AuditLog::new(MemoryAuditStore::new()).skip([AuthEventKind::TokenRefreshed, AuthEventKind::ApiKeyUsed, AuthEventKind::S2sAuthSuccess]);
    /// # let _ = (every, quieter);
    /// ```
    #[must_use]
    pub fn skip(mut self, kinds: impl IntoIterator<Item = AuthEventKind>) -> Self {
        self.skip = kinds.into_iter().collect();
        self
    }

    /// Registers this log for every kind it records on `bus`.
    ///
    /// ```
    /// let bus = auth_service::EventBus::new();
    /// auth_service::AuditLog::new(auth_service::MemoryAuditStore::new()).install(&bus);
    /// assert!(bus.has_handler(auth_service::AuthEventKind::UserLogin));
    /// assert!(!bus.has_handler(auth_service::AuthEventKind::TokenRefreshed));
    /// ```
    pub fn install(self, bus: &EventBus) {
        for kind in AuthEventKind::ALL {
            if !self.skip.contains(&kind) {
                bus.on(kind, self.clone());
            }
        }
    }
}

#[async_trait]
impl EventHandler for AuditLog {
    async fn handle(&self, event: &AuthEvent) -> std::result::Result<(), HandlerError> {
        let ctx = RequestContext::current();
        let at = crate::truncate_to_micros(self.clock.now());
        let entry = AuditEntry::from_event(event, ctx.as_ref(), at);
        // Behind entries already waiting, so the log keeps its order.
        if self.pending() > 0 {
            self.keep(entry);
            return Ok(());
        }
        if let Err(e) = self.store.append(&entry).await {
            tracing::warn!(error = %e, kind = %entry.kind, "audit entry not written: kept for a retry");
            self.keep(entry);
        }
        Ok(())
    }
}
