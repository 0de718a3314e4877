use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::RequestScope;
use crate::{
    DEFAULT_MAX_PASSWORD_LENGTH, Error, PasswordHasher, Result, Verified, is_password_usable,
};

/// Password hashing for async code: the one place where a [`PasswordHasher`] is called.
///
/// - Work runs on tokio's blocking threads, never on runtime workers.
/// - At most `concurrency` hashes run at once (default: the number of cores); further callers
///   wait, so a login flood queues instead of exhausting memory.
/// - With [`with_queue`](Self::with_queue) (auth-server turns it on), the wait is bounded: at
///   most so many callers wait, each for at most so long, and each client address (from the
///   request's [`crate::RequestContext`]) holds at most a fair share of the hasher, waiting or
///   running, so one client cannot occupy it whatever its passwords. Past any bound the call
///   fails at once with [`Error::Overloaded`] (HTTP 503 + `Retry-After`) instead of queueing.
/// - Passwords over the maximum length (default 4,096 bytes) are refused before any hashing.
/// - [`verify`](Self::verify) runs a dummy verification with the hasher's own parameters when
///   there is nothing real to check (missing user, unusable password, over-long password, unknown
///   format), so every failure costs the same time as a wrong password.
///
/// Construction hashes the dummy password once (one hash's time), so build it at startup.
///
/// ```
/// use auth_service::PasswordHashing;
/// use auth_testkit::TestHasher;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let hashing = PasswordHashing::new(TestHasher::fast())?;
/// let hash = hashing.hash("correct horse").await?;
/// assert!(hashing.verify("correct horse", Some(&hash)).await?.valid);
/// assert!(!hashing.verify("wrong", Some(&hash)).await?.valid);
/// assert!(!hashing.verify("anything", None).await?.valid);
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct PasswordHashing {
    hasher: Arc<dyn PasswordHasher>,
    permits: Arc<Semaphore>,
    concurrency: usize,
    max_len: usize,
    dummy_hash: Arc<str>,
    admission: Arc<Admission>,
}

/// Who may wait for the hasher: a bounded queue, a fair share per client, a bounded wait.
#[derive(Debug)]
struct Admission {
    max_waiting: usize,
    per_client: usize,
    max_wait: Option<Duration>,
    state: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    waiting: usize,
    by_client: HashMap<String, usize>,
    /// Places (waiting or running) held by callers in [`HashLane::Suspect`].
    suspects: usize,
    /// Clients with a recent outcome: failed or signed in.
    seen: Outcomes,
}

/// How long an outcome sets its client's lane.
const REMEMBER_FOR: Duration = Duration::from_secs(15 * 60);
/// Clients remembered per generation; memory stays bounded whatever the number of addresses.
const CLIENTS_KEPT: usize = 65_536;

/// Clients' recent outcomes (`true`: failed), in two generations: lookups see both, inserts
/// go to the current one, which becomes the previous one when it is full or older than the
/// window. The oldest generation is dropped whole, so memory is bounded and nothing needs
/// sweeping.
#[derive(Debug, Default)]
struct Outcomes {
    current: HashMap<String, (Instant, bool)>,
    previous: HashMap<String, (Instant, bool)>,
    since: Option<Instant>,
}

impl Outcomes {
    fn note(&mut self, client: &str, failed: bool, now: Instant) {
        let stale = self
            .since
            .is_none_or(|since| now.saturating_duration_since(since) >= REMEMBER_FOR);
        if stale || self.current.len() >= CLIENTS_KEPT {
            self.previous = std::mem::take(&mut self.current);
            self.since = Some(now);
        }
        self.previous.remove(client);
        self.current.insert(client.to_owned(), (now, failed));
    }

    fn lane(&self, client: Option<&str>, now: Instant) -> HashLane {
        let recent = client.and_then(|c| {
            [&self.current, &self.previous]
                .iter()
                .find_map(|g| g.get(c))
                .filter(|(at, _)| now.saturating_duration_since(*at) < REMEMBER_FOR)
        });
        match recent {
            Some((_, true)) => HashLane::Suspect,
            Some((_, false)) => HashLane::Trusted,
            None => HashLane::Standard,
        }
    }
}

/// Where a client stands in the hasher's queue ([`PasswordHashing::lane`]).
///
/// With a bounded queue ([`PasswordHashing::with_queue`]), a client's last outcome in the
/// past 15 minutes sets its lane (`AuthService` records every login's:
/// [`PasswordHashing::note_failure`], [`PasswordHashing::note_success`]):
/// - clients that failed share a narrow lane: together they hold at most one place fewer,
///   waiting or running, than hashes run at once (or than one client may hold, where that is
///   larger), and at least one. They can keep most of the hasher busy when nobody else needs
///   it, but with two hashers or more one is always free for the others, and they never stand
///   in line ahead of others;
/// - one waiting place (of two or more) is kept for clients that signed in, so a flood from
///   addresses never seen before cannot shed a returning user;
/// - past its lane a caller is shed (HTTP 503 + `Retry-After`) in memory, before any throttle
///   write or database read.
///
/// The record is per process and bounded (two generations of at most 65,536 clients).
///
/// ```
/// use auth_service::HashLane;
/// assert_eq!(HashLane::default(), HashLane::Standard);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashLane {
    /// A client with no recent outcome: every waiting place but the one kept for
    /// [`Trusted`](Self::Trusted) clients.
    #[default]
    Standard,
    /// A client whose last outcome was a success: the whole queue.
    Trusted,
    /// A client whose last outcome was a failure: the narrow lane.
    Suspect,
}

impl Admission {
    /// No bound but the permits: every caller waits its turn.
    fn unbounded() -> Self {
        Self {
            max_waiting: usize::MAX,
            per_client: usize::MAX,
            max_wait: None,
            state: Mutex::new(Queue::default()),
        }
    }

    fn bounded(max_waiting: usize, per_client: usize, max_wait: Duration) -> Self {
        Self {
            max_waiting,
            per_client: per_client.max(1),
            max_wait: Some(max_wait),
            state: Mutex::new(Queue::default()),
        }
    }

    /// Places (waiting or running) the suspects' lane holds: one fewer than the hashes that run
    /// at once (or than the per-client share, where that is larger: a queue opened wide sheds no
    /// one), and at least one. With two hashers or more, one is always left to everybody else, so
    /// a returning user never waits behind a flood of failures.
    fn suspect_places(&self, concurrency: usize) -> usize {
        concurrency.max(self.per_client).saturating_sub(1).max(1)
    }

    /// How many may be waiting when a caller in `lane` arrives: one place of two or more is
    /// kept for trusted clients (only when the queue is bounded).
    fn waiting_for(&self, lane: HashLane) -> usize {
        if lane == HashLane::Trusted || self.max_wait.is_none() || self.max_waiting < 2 {
            self.max_waiting
        } else {
            self.max_waiting - 1
        }
    }

    /// Whether `client` would find a place now (no place is taken): for callers that do other
    /// work (throttle writes) before they hash, so a shed caller costs nothing.
    fn has_room(&self, client: Option<&str>, concurrency: usize) -> bool {
        let Ok(q) = self.state.lock() else {
            return false;
        };
        let lane = q.seen.lane(client, Instant::now());
        q.waiting < self.waiting_for(lane)
            && !(lane == HashLane::Suspect && q.suspects >= self.suspect_places(concurrency))
            && (self.per_client == usize::MAX
                || client
                    .is_none_or(|c| q.by_client.get(c).copied().unwrap_or(0) < self.per_client))
    }

    /// A place in the queue for `client`, or `Overloaded`. Suspects together hold at most
    /// `concurrency` places (only when the queue is bounded).
    fn enter(self: &Arc<Self>, client: Option<String>, concurrency: usize) -> Result<Ticket> {
        let client = client.filter(|_| self.per_client != usize::MAX);
        let mut q = self
            .state
            .lock()
            .map_err(|_| Error::backend("password hashing queue", Poisoned))?;
        let lane = q.seen.lane(client.as_deref(), Instant::now());
        let suspect = lane == HashLane::Suspect && self.max_wait.is_some();
        if q.waiting >= self.waiting_for(lane)
            || (suspect && q.suspects >= self.suspect_places(concurrency))
        {
            return Err(overloaded());
        }
        if let Some(c) = &client {
            let held = q.by_client.entry(c.clone()).or_insert(0);
            if *held >= self.per_client {
                return Err(overloaded());
            }
            *held += 1;
        }
        q.waiting += 1;
        if suspect {
            q.suspects += 1;
        }
        Ok(Ticket {
            admission: Arc::clone(self),
            client,
            waiting: true,
            suspect,
        })
    }
}

/// A place in the hasher's queue, taken ahead of the hash ([`PasswordHashing::take_place`]);
/// dropping it gives the place back.
pub(crate) struct HashPlace(Ticket);

/// A caller's place: waiting, then running; dropped when its hash is done (it moves into the
/// blocking task with the permit, so a cancelled caller keeps its share until then).
struct Ticket {
    admission: Arc<Admission>,
    client: Option<String>,
    waiting: bool,
    suspect: bool,
}

impl Ticket {
    fn started(&mut self) {
        if self.waiting {
            self.waiting = false;
            if let Ok(mut q) = self.admission.state.lock() {
                q.waiting = q.waiting.saturating_sub(1);
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Ok(mut q) = self.admission.state.lock() else {
            return;
        };
        if self.waiting {
            q.waiting = q.waiting.saturating_sub(1);
        }
        if self.suspect {
            q.suspects = q.suspects.saturating_sub(1);
        }
        if let Some(c) = &self.client
            && let Some(held) = q.by_client.get_mut(c)
        {
            *held = held.saturating_sub(1);
            if *held == 0 {
                q.by_client.remove(c);
            }
        }
    }
}

#[derive(Debug)]
struct Poisoned;

impl fmt::Display for Poisoned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("lock poisoned")
    }
}

impl std::error::Error for Poisoned {}

fn overloaded() -> Error {
    Error::Overloaded {
        retry_after: Duration::from_secs(1),
    }
}

impl PasswordHashing {
    /// Wraps a hasher with the default bound (number of cores) and maximum length.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the hasher cannot hash the dummy password.
    ///
    /// ```
    /// # use auth_service::PasswordHashing;
    /// let hashing = PasswordHashing::new(auth_testkit::TestHasher::fast()).unwrap();
    /// assert!(hashing.concurrency() >= 1);
    /// ```
    pub fn new(hasher: impl PasswordHasher) -> Result<Self> {
        Self::from_arc(Arc::new(hasher))
    }

    /// Like [`new`](Self::new), for a hasher already shared.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the hasher cannot hash the dummy password.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use auth_service::{PasswordHasher, PasswordHashing};
    /// let hasher: Arc<dyn PasswordHasher> = Arc::new(auth_testkit::TestHasher::fast());
    /// let hashing = PasswordHashing::from_arc(hasher).unwrap();
    /// assert_eq!(hashing.algorithm(), "test-pbkdf2-sha256");
    /// ```
    pub fn from_arc(hasher: Arc<dyn PasswordHasher>) -> Result<Self> {
        // Timing equality needs the dummy hash to cost what a real one costs, so it comes from
        // the primary hasher with its configured parameters, computed now rather than on the
        // first failed login (which would make that one login slower: a tortoise-auth defect).
        let dummy_hash: Arc<str> = hasher.hash("dummy password for timing equality")?.into();
        let concurrency = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(Self {
            hasher,
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            max_len: DEFAULT_MAX_PASSWORD_LENGTH,
            dummy_hash,
            admission: Arc::new(Admission::unbounded()),
        })
    }

    /// Sets the queue in front of the hasher: at most `max_waiting` callers wait for a permit
    /// (0: none, a call either runs at once or is shed), one client address holds at most
    /// `per_client` places waiting or running (at least 1), and nobody waits longer than
    /// `max_wait`. Beyond any of these a call fails with [`Error::Overloaded`] at once. The
    /// wait is timed by tokio: the runtime needs its timers (`#[tokio::main]` has them; a
    /// hand-built runtime needs `enable_time`).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// // A hasher that takes 200 ms a hash.
    /// let slow = auth_testkit::CountingHasher::new(auth_testkit::TestHasher::fast(), Duration::from_millis(200));
    /// let h = PasswordHashing::new(slow)?
    ///     .with_concurrency(1)
    ///     .with_queue(8, 1, Duration::from_secs(2));
    /// // One client, two hashes at once: the second is shed (503), not queued.
    /// let client = RequestContext::new(SessionMeta::new().with_ip("203.0.113.7".parse().unwrap()));
    /// let (a, b) = tokio::join!(client.clone().scope(h.hash("one")), client.scope(h.hash("two")));
    /// assert!(a.is_ok());
    /// assert!(matches!(b, Err(Error::Overloaded { .. })));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn with_queue(mut self, max_waiting: usize, per_client: usize, max_wait: Duration) -> Self {
        self.admission = Arc::new(Admission::bounded(max_waiting, per_client, max_wait));
        self
    }

    /// Sets how many hashes may run at once (at least 1).
    ///
    /// ```
    /// # use auth_service::PasswordHashing;
    /// let h = PasswordHashing::new(auth_testkit::TestHasher::fast()).unwrap().with_concurrency(3);
    /// assert_eq!(h.concurrency(), 3);
    /// ```
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        self.permits = Arc::new(Semaphore::new(concurrency));
        self.concurrency = concurrency;
        self
    }

    /// Sets the maximum password length in bytes (at least 1).
    ///
    /// ```
    /// # use auth_service::PasswordHashing;
    /// let h = PasswordHashing::new(auth_testkit::TestHasher::fast()).unwrap().with_max_password_length(64);
    /// assert_eq!(h.max_password_length(), 64);
    /// ```
    #[must_use]
    pub fn with_max_password_length(mut self, max: usize) -> Self {
        self.max_len = max.max(1);
        self
    }

    /// The concurrency bound.
    ///
    /// ```
    /// # use auth_service::PasswordHashing;
    /// assert!(PasswordHashing::new(auth_testkit::TestHasher::fast()).unwrap().concurrency() > 0);
    /// ```
    #[must_use]
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The maximum password length in bytes.
    ///
    /// ```
    /// # use auth_service::PasswordHashing;
    /// assert_eq!(PasswordHashing::new(auth_testkit::TestHasher::fast()).unwrap().max_password_length(), 4096);
    /// ```
    #[must_use]
    pub fn max_password_length(&self) -> usize {
        self.max_len
    }

    /// The primary hasher's algorithm name.
    ///
    /// ```
    /// # use auth_service::PasswordHashing;
    /// assert!(!PasswordHashing::new(auth_testkit::TestHasher::fast()).unwrap().algorithm().is_empty());
    /// ```
    #[must_use]
    pub fn algorithm(&self) -> &'static str {
        self.hasher.algorithm()
    }

    /// The wrapped hasher.
    ///
    /// ```
    /// # use auth_service::PasswordHashing;
    /// let h = PasswordHashing::new(auth_testkit::TestHasher::fast()).unwrap();
    /// assert!(h.hasher().identifies(&h.hasher().hash("x").unwrap()));
    /// ```
    #[must_use]
    pub fn hasher(&self) -> &Arc<dyn PasswordHasher> {
        &self.hasher
    }

    /// Hashes a new password off the runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (field `password`, code `password_too_long`) over the maximum length;
    /// [`Error::Backend`] when hashing fails.
    ///
    /// ```
    /// # use auth_service::PasswordHashing;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let h = PasswordHashing::new(auth_testkit::TestHasher::fast())?.with_max_password_length(8);
    /// assert!(h.hash("123456789").await.is_err());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn hash(&self, password: &str) -> Result<String> {
        if password.len() > self.max_len {
            return Err(too_long(self.max_len));
        }
        let password = Zeroizing::new(password.to_owned());
        let hasher = Arc::clone(&self.hasher);
        self.run(move || hasher.hash(&password))
            .await?
            .map_err(Error::from)
    }

    /// Checks a password against a user's stored hash, in constant time across every failure
    /// kind. `None` means there is no user (or no hash) to check: a dummy verification runs.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] only when the blocking task itself fails; an unknown or malformed hash
    /// is `valid: false`, logged at warn level.
    ///
    /// ```
    /// # use auth_service::PasswordHashing;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let h = PasswordHashing::new(auth_testkit::TestHasher::fast())?;
    /// assert!(!h.verify("pw", Some("!unusable")).await?.valid);
    /// assert!(!h.verify("pw", Some("garbage")).await?.valid);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn verify(&self, password: &str, encoded: Option<&str>) -> Result<Verified> {
        let place = self.take_place()?;
        self.verify_placed(place, password, encoded).await
    }

    /// Records a failed attempt by the current request's client (from its
    /// [`crate::RequestContext`]): for 15 minutes, or until its next success, its hashes wait
    /// in the narrow lane of a bounded queue ([`HashLane::Suspect`]).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let slow = auth_testkit::CountingHasher::new(auth_testkit::TestHasher::fast(), Duration::from_millis(200));
    /// let hash = slow.hash("pw")?;
    /// let h = PasswordHashing::new(slow)?.with_concurrency(1).with_queue(8, 1, Duration::from_secs(2));
    /// let client = |ip: &str| RequestContext::new(SessionMeta::new().with_ip(ip.parse().unwrap()));
    /// for ip in ["198.18.0.1", "198.18.0.2"] {
    ///     client(ip).scope(async { h.note_failure() }).await;
    /// }
    /// assert_eq!(client("198.18.0.1").scope(async { h.lane() }).await, HashLane::Suspect);
    /// // Two suspects at once: their lane holds one place (one hash runs at a time), so the
    /// // second is shed; a client in good standing still gets its place.
    /// let (a, b, c) = tokio::join!(
    ///     client("198.18.0.1").scope(h.verify("x", Some(&hash))),
    ///     client("198.18.0.2").scope(h.verify("x", Some(&hash))),
    ///     client("203.0.113.7").scope(h.verify("pw", Some(&hash))),
    /// );
    /// assert!(a.is_ok());
    /// assert!(matches!(b, Err(Error::Overloaded { .. })));
    /// assert!(c?.valid);
    /// client("198.18.0.2").scope(async { h.note_success() }).await;
    /// assert_eq!(client("198.18.0.2").scope(async { h.lane() }).await, HashLane::Trusted);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub fn note_failure(&self) {
        if let Some(client) = current_client()
            && let Ok(mut q) = self.admission.state.lock()
        {
            q.seen.note(&client, true, Instant::now());
        }
    }

    /// Records a success by the current request's client: for 15 minutes, or until its next
    /// failure, it may take the waiting place kept for [`HashLane::Trusted`] clients.
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let h = PasswordHashing::new(auth_testkit::TestHasher::fast()).unwrap();
    /// let client = RequestContext::new(SessionMeta::new().with_ip("203.0.113.7".parse().unwrap()));
    /// let lane = |h: &PasswordHashing| { let h = h.clone(); client.clone().scope(async move { h.lane() }) };
    /// assert_eq!(lane(&h).await, HashLane::Standard);
    /// client.clone().scope(async { h.note_success() }).await;
    /// assert_eq!(lane(&h).await, HashLane::Trusted);
    /// # });
    /// ```
    pub fn note_success(&self) {
        if let Some(client) = current_client()
            && let Ok(mut q) = self.admission.state.lock()
        {
            q.seen.note(&client, false, Instant::now());
        }
    }

    /// The lane the current request's client waits in.
    ///
    /// ```
    /// # use auth_service::*;
    /// let h = PasswordHashing::new(auth_testkit::TestHasher::fast()).unwrap();
    /// assert_eq!(h.lane(), HashLane::Standard);
    /// ```
    #[must_use]
    pub fn lane(&self) -> HashLane {
        let client = current_client();
        self.admission.state.lock().map_or(HashLane::Standard, |q| {
            q.seen.lane(client.as_deref(), Instant::now())
        })
    }

    /// A place in the queue for the current request's client, taken before a flow's other
    /// work (its database reads) so a caller that would be shed is shed before any I/O.
    pub(crate) fn take_place(&self) -> Result<HashPlace> {
        self.admission
            .enter(current_client(), self.concurrency)
            .map(HashPlace)
    }

    /// [`verify`](Self::verify) on a place already taken.
    pub(crate) async fn verify_placed(
        &self,
        place: HashPlace,
        password: &str,
        encoded: Option<&str>,
    ) -> Result<Verified> {
        let checkable = password.len() <= self.max_len && is_password_usable(encoded);
        let (password, target, real) = match encoded {
            Some(hash) if checkable => (Zeroizing::new(password.to_owned()), hash.to_owned(), true),
            // Over-long passwords are truncated for the dummy run: its cost must not grow with
            // attacker-chosen input, and nothing real is being checked.
            _ => (
                Zeroizing::new(truncate(password, self.max_len).to_owned()),
                self.dummy_hash.to_string(),
                false,
            ),
        };
        let hasher = Arc::clone(&self.hasher);
        let dummy = Arc::clone(&self.dummy_hash);
        let outcome = self
            .run_placed(place, move || {
                match hasher.verify(&password, &target) {
                    Ok(valid) if real => {
                        Ok(Verified::new(valid, valid && hasher.needs_update(&target)))
                    }
                    Ok(_) => Ok(Verified::default()),
                    Err(err) => {
                        // Spend the time a real check would have spent.
                        let _ = hasher.verify(&password, &dummy);
                        Err(err)
                    }
                }
            })
            .await?;
        match outcome {
            Ok(verified) => Ok(verified),
            Err(err) => {
                tracing::warn!(error = %err, "stored password hash could not be checked");
                Ok(Verified::default())
            }
        }
    }

    /// Runs one verification against the dummy hash and returns nothing: for flows that must
    /// spend a password check's time without having anything to check.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the blocking task fails.
    ///
    /// ```
    /// # use auth_service::PasswordHashing;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// PasswordHashing::new(auth_testkit::TestHasher::fast())?.dummy_verify("pw").await?;
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn dummy_verify(&self, password: &str) -> Result<()> {
        self.verify(password, None).await.map(|_| ())
    }

    /// Fails with [`Error::Overloaded`] when the current request's client (from its
    /// [`crate::RequestContext`]) would be shed by the hasher's queue now: a cheap check before
    /// a flow's other work, so a flood of shed requests costs no throttle writes. The place is
    /// not reserved; the hash itself may still be shed.
    ///
    /// # Errors
    ///
    /// [`Error::Overloaded`].
    ///
    /// ```
    /// # use auth_service::PasswordHashing;
    /// let h = PasswordHashing::new(auth_testkit::TestHasher::fast()).unwrap();
    /// assert!(h.check_room().is_ok());
    /// ```
    pub fn check_room(&self) -> Result<()> {
        let client = current_client();
        if self.admission.has_room(client.as_deref(), self.concurrency) {
            Ok(())
        } else {
            Err(overloaded())
        }
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let place = self.take_place()?;
        self.run_placed(place, work).await
    }

    async fn run_placed<T: Send + 'static>(
        &self,
        HashPlace(mut ticket): HashPlace,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let acquire = Arc::clone(&self.permits).acquire_owned();
        let permit = match self.admission.max_wait {
            None => acquire.await,
            Some(max_wait) => match tokio::time::timeout(max_wait, acquire).await {
                Ok(permit) => permit,
                Err(_) => {
                    tracing::warn!(
                        max_wait_ms = max_wait.as_millis(),
                        "password hashing waited too long: shed"
                    );
                    return Err(overloaded());
                }
            },
        }
        .map_err(|e| Error::backend("password hashing queue", e))?;
        ticket.started();
        // The permit and the ticket move into the blocking task, so the bounds hold even when
        // the caller is cancelled while the hash runs.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _ticket = ticket;
            work()
        })
        .await
        .map_err(|e| Error::backend("password hashing task", e))
    }
}

impl fmt::Debug for PasswordHashing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHashing")
            .field("hasher", &self.hasher)
            .field("concurrency", &self.concurrency)
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

/// The current request's client bucket, from its [`crate::RequestContext`].
fn current_client() -> Option<String> {
    crate::RequestContext::current()
        .and_then(|c| c.meta.ip)
        .map(crate::client_bucket)
}

fn too_long(max: usize) -> Error {
    Error::invalid(
        "password",
        "password_too_long",
        format!("This password is too long. It must contain at most {max} bytes."),
    )
}

/// The longest prefix of `s` that is at most `max` bytes and ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
