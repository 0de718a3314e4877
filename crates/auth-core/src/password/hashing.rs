use std::fmt;
use std::sync::Arc;

use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::{DEFAULT_MAX_PASSWORD_LENGTH, PasswordHasher, is_password_usable};
use crate::error::{Error, Result};

/// The outcome of [`PasswordHashing::verify`].
///
/// ```
/// use auth_core::Verified;
/// let v = Verified::default();
/// assert!(!v.valid && !v.needs_update);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The password matched.
    pub valid: bool,
    /// It matched and the hash should be replaced with a fresh one from the primary hasher.
    pub needs_update: bool,
}

/// Password hashing for async code: the one place where a [`PasswordHasher`] is called.
///
/// - Work runs on tokio's blocking threads, never on runtime workers.
/// - At most `concurrency` hashes run at once (default: the number of cores); further callers
///   wait, so a login flood queues instead of exhausting memory.
/// - Passwords over the maximum length (default 4,096 bytes) are refused before any hashing.
/// - [`verify`](Self::verify) runs a dummy verification with the hasher's own parameters when
///   there is nothing real to check (missing user, unusable password, over-long password, unknown
///   format), so every failure costs the same time as a wrong password.
///
/// Construction hashes the dummy password once (one hash's time), so build it at startup.
///
/// ```
/// use auth_core::PasswordHashing;
/// use auth_testkit::TestHasher;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let hashing = PasswordHashing::new(TestHasher::fast())?;
/// let hash = hashing.hash("correct horse").await?;
/// assert!(hashing.verify("correct horse", Some(&hash)).await?.valid);
/// assert!(!hashing.verify("wrong", Some(&hash)).await?.valid);
/// assert!(!hashing.verify("anything", None).await?.valid);
/// # Ok::<(), auth_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct PasswordHashing {
    hasher: Arc<dyn PasswordHasher>,
    permits: Arc<Semaphore>,
    concurrency: usize,
    max_len: usize,
    dummy_hash: Arc<str>,
}

impl PasswordHashing {
    /// Wraps a hasher with the default bound (number of cores) and maximum length.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the hasher cannot hash the dummy password.
    ///
    /// ```
    /// # use auth_core::PasswordHashing;
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
    /// # use auth_core::{PasswordHasher, PasswordHashing};
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
        })
    }

    /// Sets how many hashes may run at once (at least 1).
    ///
    /// ```
    /// # use auth_core::PasswordHashing;
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
    /// # use auth_core::PasswordHashing;
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
    /// # use auth_core::PasswordHashing;
    /// assert!(PasswordHashing::new(auth_testkit::TestHasher::fast()).unwrap().concurrency() > 0);
    /// ```
    #[must_use]
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The maximum password length in bytes.
    ///
    /// ```
    /// # use auth_core::PasswordHashing;
    /// assert_eq!(PasswordHashing::new(auth_testkit::TestHasher::fast()).unwrap().max_password_length(), 4096);
    /// ```
    #[must_use]
    pub fn max_password_length(&self) -> usize {
        self.max_len
    }

    /// The primary hasher's algorithm name.
    ///
    /// ```
    /// # use auth_core::PasswordHashing;
    /// assert!(!PasswordHashing::new(auth_testkit::TestHasher::fast()).unwrap().algorithm().is_empty());
    /// ```
    #[must_use]
    pub fn algorithm(&self) -> &'static str {
        self.hasher.algorithm()
    }

    /// The wrapped hasher.
    ///
    /// ```
    /// # use auth_core::PasswordHashing;
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
    /// # use auth_core::PasswordHashing;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let h = PasswordHashing::new(auth_testkit::TestHasher::fast())?.with_max_password_length(8);
    /// assert!(h.hash("123456789").await.is_err());
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
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
    /// # use auth_core::PasswordHashing;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let h = PasswordHashing::new(auth_testkit::TestHasher::fast())?;
    /// assert!(!h.verify("pw", Some("!unusable")).await?.valid);
    /// assert!(!h.verify("pw", Some("garbage")).await?.valid);
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn verify(&self, password: &str, encoded: Option<&str>) -> Result<Verified> {
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
            .run(move || {
                match hasher.verify(&password, &target) {
                    Ok(valid) if real => Ok(Verified {
                        valid,
                        needs_update: valid && hasher.needs_update(&target),
                    }),
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
    /// # use auth_core::PasswordHashing;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// PasswordHashing::new(auth_testkit::TestHasher::fast())?.dummy_verify("pw").await?;
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn dummy_verify(&self, password: &str) -> Result<()> {
        self.verify(password, None).await.map(|_| ())
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| Error::backend("password hashing queue", e))?;
        // The permit moves into the blocking task, so the bound holds even when the caller is
        // cancelled while the hash runs.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
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
