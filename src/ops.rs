//! Operators: their names, password hashes (argon2id, the `argon2` crate's
//! PHC strings) and session tokens. Storage is `store::ops`; the HTTP side
//! (cookie, guard, routes) is `api::ops`.
//!
//! A session token is 32 random bytes (base64url) held only by the
//! operator's browser; Postgres keeps its SHA-256, so a database read
//! never yields a usable session. Neither a password nor a token is ever
//! logged: [`Password`] and [`Token`] print as `***`.

use std::fmt;
use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Longest password accepted (argon2 takes any length; a bound keeps a
/// sign-in from being a hashing denial of service).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Shortest password `operator add` accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// An operator name: 1–64 of letters, digits, `.`, `_`, `@`, `-`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
}

/// A password in memory; never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The argon2id parameters of every hash made: m = 19 MiB (19,456 KiB),
/// t = 2 passes, p = 1 lane, a 32-byte output: OWASP's first recommended
/// set for argon2id (and the `argon2` crate's defaults, so hashes made
/// before these were stated verify unchanged). A check costs one core for
/// some tens of milliseconds (release build) and 19 MiB.
///
/// Chosen for a `serve` pod of 512 MiB and 2 cores: checks are bounded
/// ([`PasswordChecks`], `SIGN_IN_CONCURRENCY`, one per core by default), so
/// password checks hold at most 2 × 19 MiB = 38 MiB, allocated once per
/// slot and reused, never freed and allocated again under load; a flood
/// of sign-ins is answered 503 beyond it instead of growing memory (60 at
/// once unbounded would be 60 × 19 MiB ≈ 1.1 GiB, before the allocator's
/// fragmentation). Even 8 slots (152 MiB) leave the pod most of its
/// memory. Raising `m` raises every slot: keep slots × m well under the
/// pod's limit.
pub const PARAMS_M_KIB: u32 = Params::DEFAULT_M_COST;
pub const PARAMS_T: u32 = Params::DEFAULT_T_COST;
pub const PARAMS_P: u32 = Params::DEFAULT_P_COST;

fn params() -> Params {
    Params::new(
        PARAMS_M_KIB,
        PARAMS_T,
        PARAMS_P,
        Some(Params::DEFAULT_OUTPUT_LEN),
    )
    .expect("the stated argon2 parameters are valid")
}

/// The argon2id hash of a password (PHC string, salt and parameters in it).
pub fn hash_password(password: &Password) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` is the one `hash` was made from (its memory
/// allocated for this check alone: the CLI, tests; `serve` checks through
/// [`PasswordChecks`]).
pub fn verify_password(password: &Password, hash: &str) -> bool {
    verify_with(password, hash, &mut Vec::new())
}

/// Whether `password` is the one `hash` was made from, computed in
/// `memory` (grown to the hash's `m` if it is smaller).
fn verify_with(password: &Password, hash: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    if password.expose().len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    // A slot's memory grows to the stated `m` at most; a hash made with a
    // larger one (none is, unless made elsewhere) is checked in memory of
    // its own, freed after.
    let need = params.block_count();
    if memory.len() < need && need <= self::params().block_count() {
        memory.resize(need, Block::default());
    }
    let mut own = Vec::new();
    let blocks = match memory.get_mut(..need) {
        Some(blocks) => blocks,
        None => {
            own.resize(need, Block::default());
            &mut own[..]
        }
    };
    let argon2 = Argon2::new(algorithm, version, params);
    let computed = Output::init_with(expected.len(), |out| {
        argon2
            .hash_password_into_with_memory(password.expose().as_bytes(), salt, out, &mut *blocks)
            .map_err(|_| argon2::password_hash::Error::Password)
    });
    // `Output`'s equality is constant-time.
    computed.is_ok_and(|computed| &computed == expected)
}

/// The password checks one `serve` runs at once: a fixed set of threads
/// of their own, each with its memory (19 MiB, allocated on its first
/// check and reused by every later one). A check takes a free slot or is
/// refused at once (no queue: a flood of sign-ins waits for nothing and
/// holds nothing). The threads run at a lower priority (nice
/// [`CHECK_NICENESS`]) than the API's: under a flood the checks take the
/// cores only while the customers' requests leave them idle. See
/// [`PARAMS_M_KIB`] for the memory arithmetic.
#[derive(Clone)]
pub struct PasswordChecks {
    slots: Arc<Semaphore>,
    jobs: std::sync::mpsc::Sender<Job>,
}

/// How much lower the checking threads' priority is (Linux nice value;
/// raising it needs no privilege).
pub const CHECK_NICENESS: i32 = 10;

/// One check for a checking thread: the slot it holds until done. No
/// hash: the name is unknown, the decoy is checked (made on a checking
/// thread the first time, never on one of the API's).
struct Job {
    password: Password,
    hash: Option<String>,
    slot: OwnedSemaphorePermit,
    answer: tokio::sync::oneshot::Sender<bool>,
}

/// A slot taken for one password check.
pub struct CheckSlot {
    permit: OwnedSemaphorePermit,
    jobs: std::sync::mpsc::Sender<Job>,
}

impl PasswordChecks {
    /// `slots` checks at once (at least one), on as many threads.
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..slots {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-check-{n}"))
                .spawn(move || check_thread(&queue));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "a password check thread could not start");
            }
        }
        Self {
            slots: Arc::new(Semaphore::new(slots)),
            jobs,
        }
    }

    /// A slot for one check, if one is free now.
    pub fn try_slot(&self) -> Option<CheckSlot> {
        let permit = self.slots.clone().try_acquire_owned().ok()?;
        Some(CheckSlot {
            permit,
            jobs: self.jobs.clone(),
        })
    }

    /// Slots free now.
    pub fn free(&self) -> usize {
        self.slots.available_permits()
    }
}

/// A checking thread: lowers its own priority, then checks what it is
/// given in the memory it keeps, until `serve` ends.
fn check_thread(queue: &Mutex<std::sync::mpsc::Receiver<Job>>) {
    lower_priority();
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let hash = job.hash.as_deref().unwrap_or_else(|| decoy_hash());
        let verified = verify_with(&job.password, hash, &mut memory);
        drop(job.slot);
        let _ = job.answer.send(verified);
    }
}

/// This thread's nice value raised by [`CHECK_NICENESS`] (Linux: nice is
/// per thread). Best effort: a failure leaves it as it was.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on this thread's own id, no memory passed.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, CHECK_NICENESS);
    }
}

impl CheckSlot {
    /// Whether `password` is the one `hash` was made from (none: checked
    /// against the decoy, never true), computed on a checking thread. The
    /// slot is held until the computation ends, even should the request be
    /// dropped meanwhile.
    pub async fn verify(self, password: Password, hash: Option<String>) -> bool {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = Job {
            password,
            hash,
            slot: self.permit,
            answer,
        };
        if self.jobs.send(job).is_err() {
            return false;
        }
        answered.await.unwrap_or(false)
    }
}

/// A hash no password matches, verified against when the name is unknown,
/// so a sign-in takes as long whether or not the operator exists.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        hash_password(&Password::new(hex(&bytes))).unwrap_or_default()
    })
}

/// A session token: the cookie's value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A new random token.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A token as a cookie brought it, if it can be one.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 43
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(text.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What Postgres stores: the token's SHA-256, hex.
    pub fn digest(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_argon2id_hash_only() {
        let password = Password::new("correct horse battery staple");
        let hash = hash_password(&password).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password(&password, &hash));
        assert!(!verify_password(&Password::new("wrong"), &hash));
        assert!(!verify_password(&password, "not a hash"));
        assert!(!verify_password(&password, decoy_hash()));
        assert!(hash.contains("$m=19456,t=2,p=1$"), "{hash}");
    }

    #[tokio::test]
    async fn checks_beyond_the_slots_are_refused_at_once() {
        let password = Password::new("correct horse battery staple");
        let hash = hash_password(&password).unwrap();
        let checks = PasswordChecks::new(1);
        let slot = checks.try_slot().expect("a free slot");
        assert!(checks.try_slot().is_none(), "no second slot, no queue");
        assert!(slot.verify(password.clone(), Some(hash.clone())).await);
        assert_eq!(checks.free(), 1, "the slot is back");
        let slot = checks.try_slot().unwrap();
        assert!(
            !slot
                .verify(Password::new("wrong"), Some(hash.clone()))
                .await
        );
        let slot = checks.try_slot().unwrap();
        assert!(!slot.verify(password.clone(), None).await, "the decoy");
        assert_eq!(checks.free(), 1);
    }

    #[test]
    fn hashes_made_with_other_parameters_still_verify() {
        let password = Password::new("correct horse battery staple");
        let small = Params::new(8 * 1024, 1, 1, None).unwrap();
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, small)
            .hash_password(password.expose().as_bytes(), &salt)
            .unwrap()
            .to_string();
        assert!(verify_password(&password, &hash));
        assert!(!verify_password(&Password::new("nope"), &hash));
    }

    #[test]
    fn tokens_are_random_parse_back_and_never_print() {
        let (a, b) = (Token::generate(), Token::generate());
        assert_ne!(a, b);
        assert_eq!(Token::parse(a.expose()), Some(a.clone()));
        assert_eq!(Token::parse("short"), None);
        assert_eq!(a.digest().len(), 64);
        assert_eq!(format!("{a:?}"), "Token(***)");
        assert_eq!(format!("{:?}", Password::new("secret")), "Password(***)");
    }

    #[test]
    fn operator_names_are_short_and_plain() {
        for ok in ["ada", "ops.lead", "a_b-c@example"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
