//! Raw argon2id verification throughput of this machine, with the crate and
//! the parameters Portcullis uses: the ceiling `scripts/bench` compares
//! Portcullis's logins per second against.
//!
//! `argon2_raw [THREADS] [SECONDS]` verifies one password on THREADS threads
//! (default: all cores) for SECONDS (default 10) with the crate's ordinary
//! `verify_password`, and prints `verifies_per_second=N threads=T`.

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};
use portcullis::server::passwords::{ITERATIONS, MEMORY_KIB, PARALLELISM};
use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);

    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid parameters");
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let password = b"violet kettle anthem 42";
    let hash = argon2
        .hash_password(password, &SaltString::generate(&mut OsRng))
        .expect("hashing works")
        .to_string();

    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let parsed = PasswordHash::new(&hash).expect("our own hash parses");
                while !stop.load(Ordering::Relaxed) {
                    assert!(argon2.verify_password(password, &parsed).is_ok());
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "verifies_per_second={:.1} threads={threads}",
        done.load(Ordering::Relaxed) as f64 / elapsed
    );
}
