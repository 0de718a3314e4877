//! Argon2id, the primary hasher.

use std::cell::RefCell;

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, PasswordHash, Version};
use auth_core::{HashError, PasswordHasher, constant_time_eq};

use crate::error::{ParamsError, check_range};

/// Argon2 cost parameters, validated. The default is OWASP's minimum for Argon2id
/// (m = 19,456 KiB, t = 2, p = 1).
///
/// ```
/// use auth_hash::Argon2Params;
/// assert_eq!(Argon2Params::DEFAULT.memory_kib(), 19_456);
/// assert_eq!(Argon2Params::TORTOISE_AUTH, Argon2Params::new(65_536, 3, 4).unwrap());
/// assert!(Argon2Params::new(1, 1, 1).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

impl Argon2Params {
    /// OWASP's recommended minimum for Argon2id: m = 19,456 KiB, t = 2, p = 1.
    pub const DEFAULT: Self = Self {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };
    /// tortoise-auth's and argon2-cffi's defaults (RFC 9106's second recommendation):
    /// m = 65,536 KiB, t = 3, p = 4.
    pub const TORTOISE_AUTH: Self = Self {
        memory_kib: 65_536,
        iterations: 3,
        parallelism: 4,
    };
    /// Smallest memory accepted for new hashes, in KiB.
    pub const MIN_MEMORY_KIB: u32 = 8 * 1024;
    /// Largest memory accepted, in KiB (also the limit for verifying stored hashes): 1 GiB.
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    /// Largest iteration count accepted (also for verifying stored hashes).
    pub const MAX_ITERATIONS: u32 = 64;
    /// Largest parallelism accepted (also for verifying stored hashes).
    pub const MAX_PARALLELISM: u32 = 64;

    /// Validated parameters for new hashes.
    ///
    /// # Errors
    ///
    /// [`ParamsError::OutOfRange`] when memory is under 8 MiB or over 1 GiB, iterations are 0
    /// or over 64, or parallelism is 0 or over 64.
    ///
    /// ```
    /// let p = auth_hash::Argon2Params::new(65_536, 3, 4)?;
    /// assert_eq!(p.iterations(), 3);
    /// # Ok::<(), auth_hash::ParamsError>(())
    /// ```
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, ParamsError> {
        check_range(
            "argon2 memory (KiB)",
            memory_kib.into(),
            Self::MIN_MEMORY_KIB.into(),
            Self::MAX_MEMORY_KIB.into(),
        )?;
        check_range(
            "argon2 iterations",
            iterations.into(),
            1,
            Self::MAX_ITERATIONS.into(),
        )?;
        check_range(
            "argon2 parallelism",
            parallelism.into(),
            1,
            Self::MAX_PARALLELISM.into(),
        )?;
        Ok(Self {
            memory_kib,
            iterations,
            parallelism,
        })
    }

    /// Parameters known to be in range (for constants).
    pub(crate) const fn trusted(memory_kib: u32, iterations: u32, parallelism: u32) -> Self {
        Self {
            memory_kib,
            iterations,
            parallelism,
        }
    }

    /// Memory in KiB (`m`).
    ///
    /// ```
    /// assert_eq!(auth_hash::Argon2Params::TORTOISE_AUTH.memory_kib(), 65_536);
    /// ```
    #[must_use]
    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Iterations (`t`).
    ///
    /// ```
    /// assert_eq!(auth_hash::Argon2Params::DEFAULT.iterations(), 2);
    /// ```
    #[must_use]
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Lanes (`p`).
    ///
    /// ```
    /// assert_eq!(auth_hash::Argon2Params::DEFAULT.parallelism(), 1);
    /// ```
    #[must_use]
    pub fn parallelism(&self) -> u32 {
        self.parallelism
    }
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Argon2id in PHC string format (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
///
/// It verifies argon2id, argon2i and argon2d PHC strings of any parameters within the
/// verification limits (memory ≤ 1 GiB, t ≤ 64, p ≤ 64: a stored hash cannot make a login
/// allocate without bound), and says `needs_update` when a hash is not argon2id v19 with exactly
/// the configured parameters.
///
/// ```
/// use auth_core::PasswordHasher;
/// use auth_hash::Argon2Hasher;
///
/// let hasher = Argon2Hasher::default();
/// let hash = hasher.hash("correct horse battery staple").unwrap();
/// assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
/// assert!(hasher.verify("correct horse battery staple", &hash).unwrap());
/// assert!(!hasher.verify("Tr0ub4dor&3", &hash).unwrap());
/// assert!(!hasher.needs_update(&hash));
/// ```
#[derive(Clone)]
pub struct Argon2Hasher {
    params: Argon2Params,
    argon2: Argon2<'static>,
}

impl Argon2Hasher {
    /// A hasher with these parameters.
    ///
    /// ```
    /// use auth_hash::{Argon2Hasher, Argon2Params};
    /// let h = Argon2Hasher::new(Argon2Params::TORTOISE_AUTH);
    /// assert_eq!(h.params(), Argon2Params::TORTOISE_AUTH);
    /// ```
    #[must_use]
    pub fn new(params: Argon2Params) -> Self {
        Self {
            params,
            argon2: argon2_for(Algorithm::Argon2id, params),
        }
    }

    /// The configured parameters.
    ///
    /// ```
    /// assert_eq!(auth_hash::Argon2Hasher::default().params(), auth_hash::Argon2Params::DEFAULT);
    /// ```
    #[must_use]
    pub fn params(&self) -> Argon2Params {
        self.params
    }
}

fn argon2_for(algorithm: Algorithm, params: Argon2Params) -> Argon2<'static> {
    // The range check in `Argon2Params::new` keeps every value valid for argon2's own checks;
    // fall back to argon2's defaults rather than panic if that ever changes.
    let p = argon2::Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .unwrap_or_default();
    Argon2::new(algorithm, Version::V0x13, p)
}

impl Default for Argon2Hasher {
    fn default() -> Self {
        Self::new(Argon2Params::DEFAULT)
    }
}

impl std::fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("params", &self.params)
            .finish()
    }
}

/// A parsed PHC argon2 string: `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`.
///
/// Parsed here rather than with the `password-hash` crate, whose output type refuses hashes
/// shorter than 10 bytes: argon2-cffi (and so Django) accepts any `hash_len` from 4, and such
/// hashes must verify.
pub(crate) struct Phc {
    pub(crate) algorithm: Algorithm,
    pub(crate) version: Version,
    pub(crate) params: argon2::Params,
    pub(crate) salt: Vec<u8>,
    pub(crate) hash: Vec<u8>,
}

/// Salt bytes (argon2 needs 8; PHC allows up to 48 encoded) and hash bytes we accept.
const SALT_BYTES: std::ops::RangeInclusive<usize> = 8..=64;
const HASH_BYTES: std::ops::RangeInclusive<usize> = 4..=64;

/// Parses a PHC argon2 string and checks its parameters against the verification limits.
pub(crate) fn parse_phc(encoded: &str) -> Result<Phc, HashError> {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD_NO_PAD;

    let mut fields = encoded.split('$');
    if fields.next() != Some("") {
        return Err(HashError::Malformed);
    }
    let algorithm = Algorithm::try_from(fields.next().ok_or(HashError::Malformed)?)
        .map_err(|_| HashError::UnknownFormat)?;
    let mut field = fields.next().ok_or(HashError::Malformed)?;
    // Without `v=` the hash predates version 1.3 (libargon2 reads it as 0x10).
    let version = match field.strip_prefix("v=") {
        Some(v) => {
            let v: u32 = v.parse().map_err(|_| HashError::Malformed)?;
            field = fields.next().ok_or(HashError::Malformed)?;
            Version::try_from(v).map_err(|_| HashError::Malformed)?
        }
        None => Version::V0x10,
    };
    // Exactly `m=…,t=…,p=…` in that order, as libargon2 writes them and argon2-cffi and
    // Django read them: `t=1,m=1024,p=1` is malformed, not a reordering to accept.
    let mut pairs = field.split(',');
    let mut next = |name: &str| -> Result<u32, HashError> {
        pairs
            .next()
            .and_then(|pair| pair.strip_prefix(name))
            .and_then(|rest| rest.strip_prefix('='))
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse().ok())
            .ok_or(HashError::Malformed)
    };
    let (m, t, p) = (next("m")?, next("t")?, next("p")?);
    if pairs.next().is_some() {
        return Err(HashError::Malformed);
    }
    if m > Argon2Params::MAX_MEMORY_KIB
        || t > Argon2Params::MAX_ITERATIONS
        || p > Argon2Params::MAX_PARALLELISM
    {
        return Err(HashError::Unsupported(
            "argon2 parameters beyond the verification limits",
        ));
    }
    let salt = STANDARD_NO_PAD
        .decode(fields.next().ok_or(HashError::Malformed)?)
        .map_err(|_| HashError::Malformed)?;
    let hash = STANDARD_NO_PAD
        .decode(fields.next().ok_or(HashError::Malformed)?)
        .map_err(|_| HashError::Malformed)?;
    if fields.next().is_some()
        || !SALT_BYTES.contains(&salt.len())
        || !HASH_BYTES.contains(&hash.len())
    {
        return Err(HashError::Malformed);
    }
    let params =
        argon2::Params::new(m, t, p, Some(hash.len())).map_err(|_| HashError::Malformed)?;
    Ok(Phc {
        algorithm,
        version,
        params,
        salt,
        hash,
    })
}

/// The largest block buffer (1 KiB blocks) a thread keeps between hashes: 64 MiB, enough for
/// our default (19 MiB) and tortoise-auth's parameters (64 MiB). Larger hashes allocate and free.
const MAX_RETAINED_BLOCKS: usize = 64 * 1024;

thread_local! {
    /// Argon2's working memory, reused by every hash on this thread. Allocating and faulting in
    /// 19 MiB per call costs up to several times the hash itself on a fresh blocking-pool thread
    /// (measured in `cargo xtask bench`). Every block is overwritten in the first pass, so what a
    /// previous hash left behind never influences a result; like argon2's own allocating path,
    /// the memory is not wiped between uses.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs Argon2 into `out`, on this thread's reusable memory.
fn compute(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), HashError> {
    let n = argon2.params().block_count();
    let mut run = |blocks: &mut [Block]| {
        argon2
            .hash_password_into_with_memory(password, salt, out, blocks)
            .map_err(|e| HashError::Failed(e.to_string()))
    };
    if n > MAX_RETAINED_BLOCKS {
        return run(&mut vec![Block::default(); n]);
    }
    BLOCKS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut blocks) => {
            if blocks.len() < n {
                blocks.resize(n, Block::default());
            }
            run(&mut blocks[..n])
        }
        // Re-entered on this thread (not expected): use private memory.
        Err(_) => run(&mut vec![Block::default(); n]),
    })
}

/// Verifies a password against a parsed PHC argon2 hash (any variant, version, parameters
/// and output length from 4 bytes).
pub(crate) fn verify_phc(password: &str, phc: &Phc) -> Result<bool, HashError> {
    let mut actual = vec![0u8; phc.hash.len()];
    compute(
        &Argon2::new(phc.algorithm, phc.version, phc.params.clone()),
        password.as_bytes(),
        &phc.salt,
        &mut actual,
    )?;
    Ok(constant_time_eq(&actual, &phc.hash))
}

pub(crate) fn is_argon2_phc(encoded: &str) -> bool {
    ["$argon2id$", "$argon2i$", "$argon2d$"]
        .iter()
        .any(|p| encoded.starts_with(p))
}

impl PasswordHasher for Argon2Hasher {
    fn algorithm(&self) -> &'static str {
        "argon2id"
    }

    fn hash(&self, password: &str) -> Result<String, HashError> {
        let salt = auth_core::random::bytes(16);
        let mut out = [0u8; 32];
        compute(&self.argon2, password.as_bytes(), &salt, &mut out)?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(self.argon2.params())
                .map_err(|e| HashError::Failed(e.to_string()))?,
            salt: Some(Salt::new(&salt).map_err(|e| HashError::Failed(e.to_string()))?),
            hash: Some(Output::new(&out).map_err(|e| HashError::Failed(e.to_string()))?),
        };
        Ok(phc.to_string())
    }

    fn verify(&self, password: &str, encoded: &str) -> Result<bool, HashError> {
        if !is_argon2_phc(encoded) {
            return Err(HashError::UnknownFormat);
        }
        verify_phc(password, &parse_phc(encoded)?)
    }

    fn identifies(&self, encoded: &str) -> bool {
        is_argon2_phc(encoded)
    }

    fn needs_update(&self, encoded: &str) -> bool {
        let Ok(phc) = parse_phc(encoded) else {
            return true;
        };
        phc.algorithm != Algorithm::Argon2id
            || phc.version != Version::V0x13
            || phc.params.m_cost() != self.params.memory_kib
            || phc.params.t_cost() != self.params.iterations
            || phc.params.p_cost() != self.params.parallelism
            || phc.hash.len() != 32
    }
}
