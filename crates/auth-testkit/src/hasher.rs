use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use auth_service::{HashError, PasswordHasher, constant_time_eq};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;

const PREFIX: &str = "test-pbkdf2-sha256";

/// PBKDF2-HMAC-SHA256 (ring) with a configurable iteration count, in the format
/// `test-pbkdf2-sha256$<iterations>$<salt>$<hash>`.
///
/// **Not for production**: [`TestHasher::fast`] uses one iteration so suites run quickly. With
/// many iterations it stands in for a real hasher's cost in timing tests.
///
/// ```
/// use auth_service::PasswordHasher;
/// use auth_testkit::TestHasher;
/// let h = TestHasher::fast();
/// let encoded = h.hash("pw").unwrap();
/// assert!(encoded.starts_with("test-pbkdf2-sha256$1$"));
/// assert!(h.verify("pw", &encoded).unwrap());
/// assert!(TestHasher::with_iterations(2).needs_update(&encoded));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TestHasher {
    iterations: NonZeroU32,
}

impl TestHasher {
    /// One iteration: fast and insecure.
    ///
    /// ```
    /// let _ = auth_testkit::TestHasher::fast();
    /// ```
    #[must_use]
    pub fn fast() -> Self {
        Self::with_iterations(1)
    }

    /// A chosen iteration count (0 is taken as 1).
    ///
    /// ```
    /// let _ = auth_testkit::TestHasher::with_iterations(10_000);
    /// ```
    #[must_use]
    pub fn with_iterations(iterations: u32) -> Self {
        Self {
            iterations: NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN),
        }
    }

    fn derive(iterations: NonZeroU32, salt: &[u8], password: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            salt,
            password.as_bytes(),
            &mut out,
        );
        out
    }

    fn parse(encoded: &str) -> Result<(NonZeroU32, Vec<u8>, Vec<u8>), HashError> {
        let mut parts = encoded.split('$');
        if parts.next() != Some(PREFIX) {
            return Err(HashError::UnknownFormat);
        }
        let (Some(iter), Some(salt), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(HashError::Malformed);
        };
        let iter = iter
            .parse::<u32>()
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or(HashError::Malformed)?;
        let salt = B64.decode(salt).map_err(|_| HashError::Malformed)?;
        let hash = B64.decode(hash).map_err(|_| HashError::Malformed)?;
        if hash.len() != 32 {
            return Err(HashError::Malformed);
        }
        Ok((iter, salt, hash))
    }
}

impl PasswordHasher for TestHasher {
    fn algorithm(&self) -> &'static str {
        PREFIX
    }

    fn hash(&self, password: &str) -> Result<String, HashError> {
        let salt = auth_service::random::bytes(16);
        let hash = Self::derive(self.iterations, &salt, password);
        Ok(format!(
            "{PREFIX}${}${}${}",
            self.iterations,
            B64.encode(&salt),
            B64.encode(hash)
        ))
    }

    fn verify(&self, password: &str, encoded: &str) -> Result<bool, HashError> {
        let (iter, salt, expected) = Self::parse(encoded)?;
        let actual = Self::derive(iter, &salt, password);
        Ok(constant_time_eq(&actual, &expected))
    }

    fn identifies(&self, encoded: &str) -> bool {
        encoded.starts_with(PREFIX)
    }

    fn needs_update(&self, encoded: &str) -> bool {
        Self::parse(encoded).map_or(true, |(iter, _, _)| iter != self.iterations)
    }
}

/// What a [`CountingHasher`] saw.
#[derive(Debug, Default)]
pub struct HashStats {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    calls: AtomicUsize,
    threads: Mutex<HashSet<ThreadId>>,
}

impl HashStats {
    /// The most hashes that ran at the same time.
    ///
    /// ```
    /// assert_eq!(auth_testkit::HashStats::default().max_in_flight(), 0);
    /// ```
    #[must_use]
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// How many hash or verify calls ran.
    ///
    /// ```
    /// assert_eq!(auth_testkit::HashStats::default().calls(), 0);
    /// ```
    #[must_use]
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The threads the calls ran on.
    ///
    /// ```
    /// assert!(auth_testkit::HashStats::default().threads().is_empty());
    /// ```
    #[must_use]
    pub fn threads(&self) -> HashSet<ThreadId> {
        self.threads.lock().map(|t| t.clone()).unwrap_or_default()
    }

    fn enter(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if let Ok(mut t) = self.threads.lock() {
            t.insert(std::thread::current().id());
        }
    }

    fn exit(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Wraps a hasher; every call sleeps `delay` (standing in for CPU cost) and is counted.
///
/// ```
/// use auth_service::PasswordHasher;
/// use auth_testkit::{CountingHasher, TestHasher};
/// let h = CountingHasher::new(TestHasher::fast(), std::time::Duration::ZERO);
/// let stats = h.stats();
/// h.hash("x").unwrap();
/// assert_eq!(stats.calls(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct CountingHasher<H> {
    inner: H,
    delay: Duration,
    stats: Arc<HashStats>,
}

impl<H: PasswordHasher> CountingHasher<H> {
    /// Wraps `inner`, sleeping `delay` in every call.
    ///
    /// ```
    /// # use auth_testkit::{CountingHasher, TestHasher};
    /// let _ = CountingHasher::new(TestHasher::fast(), std::time::Duration::from_millis(1));
    /// ```
    #[must_use]
    pub fn new(inner: H, delay: Duration) -> Self {
        Self {
            inner,
            delay,
            stats: Arc::default(),
        }
    }

    /// The shared statistics.
    ///
    /// ```
    /// # use auth_testkit::{CountingHasher, TestHasher};
    /// let h = CountingHasher::new(TestHasher::fast(), std::time::Duration::ZERO);
    /// assert_eq!(h.stats().calls(), 0);
    /// ```
    #[must_use]
    pub fn stats(&self) -> Arc<HashStats> {
        Arc::clone(&self.stats)
    }

    fn counted<T>(&self, f: impl FnOnce() -> T) -> T {
        self.stats.enter();
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let out = f();
        self.stats.exit();
        out
    }
}

impl<H: PasswordHasher> PasswordHasher for CountingHasher<H> {
    fn algorithm(&self) -> &'static str {
        self.inner.algorithm()
    }
    fn hash(&self, password: &str) -> Result<String, HashError> {
        self.counted(|| self.inner.hash(password))
    }
    fn verify(&self, password: &str, encoded: &str) -> Result<bool, HashError> {
        self.counted(|| self.inner.verify(password, encoded))
    }
    fn identifies(&self, encoded: &str) -> bool {
        self.inner.identifies(encoded)
    }
    fn needs_update(&self, encoded: &str) -> bool {
        self.inner.needs_update(encoded)
    }
}
