//! The bounded hashing pool: every argon2 computation of the process runs
//! here, and nowhere else.
//!
//! A login storm must not be able to take the server down. Each argon2id
//! computation needs 19 MiB and ~15 ms of a core, so running one per request
//! on tokio's blocking pool (which grows to hundreds of threads) multiplies
//! memory by the number of concurrent requests and makes the threads fight
//! over the cores. Instead:
//!
//! - a fixed set of `concurrency` worker threads sharing at most
//!   `concurrency` argon2 memories, which are kept between jobs: resident
//!   memory is at most `concurrency × 19 MiB` whatever the load, and no
//!   computation in a busy spell page-faults fresh memory. Once no job has
//!   come for `idle_release`, the memories are freed and handed back to the
//!   system (glibc keeps freed blocks of this size in its arenas otherwise),
//!   so an instance returns to its idle footprint after a storm;
//! - a bounded queue in front of them. A job is refused at once when the
//!   queue is full or when the wait it would face exceeds the budget, and a
//!   job that has waited longer than the budget by the time a worker is free
//!   is dropped unrun. Either way the caller gets [`PoolError::Busy`] with a
//!   retry hint, quickly, instead of waiting without bound;
//! - a caller that gave up (its request was dropped) costs nothing: its job
//!   is skipped.

use argon2::Block;
use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
        mpsc::{self, RecvTimeoutError},
    },
    time::{Duration, Instant},
};
use tokio::sync::oneshot;

use super::config::HashingSettings;

/// Why a job did not run.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Shed under load: nothing was computed. `retry_after` is the wait the
    /// queue suggests.
    #[error("the hashing pool is saturated")]
    Busy { retry_after: Duration },
    /// The job panicked; the worker survives it.
    #[error("a hashing job failed unexpectedly")]
    Crashed,
}

/// An argon2 memory, kept between jobs and grown only when a stored hash
/// asks for more than any before it.
#[derive(Default)]
pub struct Memory(Vec<Block>);

impl Memory {
    pub fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.0.len() < count {
            self.0.resize(count, Block::default());
        }
        &mut self.0[..count]
    }
}

/// Counters, for tests, logs and the benchmark.
#[derive(Debug, Default)]
pub struct PoolStats {
    running: AtomicUsize,
    most_running: AtomicUsize,
    queued: AtomicUsize,
    completed: AtomicU64,
    shed_full: AtomicU64,
    shed_late: AtomicU64,
    skipped_abandoned: AtomicU64,
    /// Memories freed after an idle spell.
    released: AtomicU64,
    /// Exponentially weighted mean of a job's run time, in microseconds.
    mean_run_micros: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// The largest number of jobs ever running at once.
    pub most_running: usize,
    pub completed: u64,
    /// Refused at submission: queue full, or the expected wait over budget.
    pub shed_full: u64,
    /// Dropped unrun after waiting longer than the budget.
    pub shed_late: u64,
    /// Skipped because the caller had already given up.
    pub skipped_abandoned: u64,
    /// Argon2 memories freed after an idle spell.
    pub released: u64,
}

enum Slot<'a> {
    Run(&'a mut Memory),
    Shed,
}

/// Runs or sheds the job; returns whether it did any work.
type Task = Box<dyn for<'a> FnOnce(Slot<'a>) -> bool + Send>;

struct Job {
    task: Task,
    enqueued: Instant,
}

pub struct HashPool {
    sender: mpsc::SyncSender<Job>,
    settings: HashingSettings,
    stats: Arc<PoolStats>,
}

impl HashPool {
    /// Starts `settings.concurrency` worker threads. They stop when the pool
    /// is dropped.
    pub fn new(settings: HashingSettings) -> std::io::Result<HashPool> {
        let (sender, receiver) = mpsc::sync_channel::<Job>(settings.queue_capacity);
        let shared = Arc::new(Shared {
            receiver: Mutex::new(receiver),
            spares: Mutex::new(Vec::with_capacity(settings.concurrency)),
        });
        let stats = Arc::new(PoolStats::default());
        for index in 0..settings.concurrency {
            let shared = shared.clone();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || work(&shared, &stats, &settings))?;
        }
        Ok(HashPool {
            sender,
            settings,
            stats,
        })
    }

    /// Runs `f` on a worker with that worker's memory, or refuses at once
    /// when the pool is saturated.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let queued = self.stats.queued.load(Ordering::Relaxed);
        let expected = expected_wait(queued, self.settings.concurrency, self.mean_run_time());
        if expected > self.settings.queue_timeout {
            self.stats.shed_full.fetch_add(1, Ordering::Relaxed);
            return Err(PoolError::Busy {
                retry_after: self.retry_hint(expected),
            });
        }
        let (reply, answer) = oneshot::channel::<Result<T, PoolError>>();
        let task: Task = Box::new(move |slot: Slot<'_>| match slot {
            // Nobody is waiting for the answer any more.
            Slot::Run(_) if reply.is_closed() => false,
            Slot::Run(memory) => {
                let _ = reply.send(Ok(f(memory)));
                true
            }
            Slot::Shed => {
                let _ = reply.send(Err(PoolError::Busy {
                    retry_after: Duration::ZERO,
                }));
                false
            }
        });
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            task,
            enqueued: Instant::now(),
        };
        if self.sender.try_send(job).is_err() {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            self.stats.shed_full.fetch_add(1, Ordering::Relaxed);
            return Err(PoolError::Busy {
                retry_after: self.retry_hint(self.settings.queue_timeout),
            });
        }
        match answer.await {
            Ok(Err(PoolError::Busy { .. })) => Err(PoolError::Busy {
                retry_after: self.retry_hint(self.settings.queue_timeout),
            }),
            Ok(result) => result,
            // The job panicked and dropped its reply.
            Err(_) => Err(PoolError::Crashed),
        }
    }

    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.stats;
        StatsSnapshot {
            most_running: s.most_running.load(Ordering::Relaxed),
            completed: s.completed.load(Ordering::Relaxed),
            shed_full: s.shed_full.load(Ordering::Relaxed),
            shed_late: s.shed_late.load(Ordering::Relaxed),
            skipped_abandoned: s.skipped_abandoned.load(Ordering::Relaxed),
            released: s.released.load(Ordering::Relaxed),
        }
    }

    fn mean_run_time(&self) -> Duration {
        Duration::from_micros(self.stats.mean_run_micros.load(Ordering::Relaxed))
    }

    /// At least a second (Retry-After has whole seconds), at most the budget
    /// plus a second.
    fn retry_hint(&self, wait: Duration) -> Duration {
        wait.clamp(
            Duration::from_secs(1),
            self.settings.queue_timeout + Duration::from_secs(1),
        )
    }
}

/// How long a job submitted now would wait before a worker starts it, with
/// `queued` jobs ahead of it on `workers` workers that take `mean_run` each.
/// Zero while no run time has been measured yet.
pub fn expected_wait(queued: usize, workers: usize, mean_run: Duration) -> Duration {
    let rounds = queued / workers.max(1);
    mean_run.saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX))
}

/// What the workers share: the queue, and the memories no job is using.
struct Shared {
    receiver: Mutex<mpsc::Receiver<Job>>,
    spares: Mutex<Vec<Memory>>,
}

fn work(shared: &Shared, stats: &PoolStats, settings: &HashingSettings) {
    loop {
        // One idle worker waits on the channel, the others on the lock; so
        // the one on the channel times out only when no job at all has come
        // for `idle_release`.
        let job = match shared.receiver.lock() {
            Ok(receiver) => receiver.recv_timeout(settings.idle_release),
            Err(_) => return,
        };
        let job = match job {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                release_spares(&shared.spares, stats);
                continue;
            }
            // The pool was dropped.
            Err(RecvTimeoutError::Disconnected) => return,
        };
        stats.queued.fetch_sub(1, Ordering::Relaxed);
        if job.enqueued.elapsed() > settings.queue_timeout {
            stats.shed_late.fetch_add(1, Ordering::Relaxed);
            let _ = (job.task)(Slot::Shed);
            continue;
        }
        // At most `concurrency` jobs run, so at most that many memories
        // ever exist.
        let mut memory = lock(&shared.spares).pop().unwrap_or_default();
        let running = stats.running.fetch_add(1, Ordering::SeqCst) + 1;
        stats.most_running.fetch_max(running, Ordering::SeqCst);
        let started = Instant::now();
        // A panic drops the job's reply (its caller sees `Crashed`) and
        // leaves the worker and its memory in service.
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| (job.task)(Slot::Run(&mut memory))));
        stats.running.fetch_sub(1, Ordering::SeqCst);
        lock(&shared.spares).push(memory);
        match outcome {
            Ok(true) => {
                stats.completed.fetch_add(1, Ordering::Relaxed);
                record_run_time(stats, started.elapsed());
            }
            Ok(false) => {
                stats.skipped_abandoned.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {}
        }
    }
}

/// The spare memories, whatever a panicking job left behind: they are plain
/// blocks that every job overwrites.
fn lock(spares: &Mutex<Vec<Memory>>) -> std::sync::MutexGuard<'_, Vec<Memory>> {
    spares
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Frees the memories no job is using and asks the allocator to return the
/// pages: glibc serves blocks this size from its arenas once the first one
/// was freed (its mmap threshold adapts), and keeps them mapped after `free`.
fn release_spares(spares: &Mutex<Vec<Memory>>, stats: &PoolStats) {
    let freed = std::mem::take(&mut *lock(spares));
    if freed.is_empty() {
        return;
    }
    let count = freed.len() as u64;
    drop(freed);
    return_free_memory_to_the_system();
    stats.released.fetch_add(count, Ordering::Relaxed);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_free_memory_to_the_system() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it is
    // thread-safe and touches no memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_free_memory_to_the_system() {}

/// Updates the mean run time, weighting the newest run by 1/8.
fn record_run_time(stats: &PoolStats, took: Duration) {
    let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
    let _ = stats
        .mean_run_micros
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |mean| {
            Some(if mean == 0 {
                micros
            } else {
                mean - mean / 8 + micros / 8
            })
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Barrier, atomic::AtomicBool};

    fn settings(concurrency: usize, queue_capacity: usize, timeout: Duration) -> HashingSettings {
        HashingSettings {
            concurrency,
            queue_capacity,
            queue_timeout: timeout,
            idle_release: Duration::from_secs(3600),
        }
    }

    /// Starts a job that holds the pool's only worker until the returned
    /// gate is passed, and waits until it runs.
    async fn hold_the_only_worker(
        pool: &Arc<HashPool>,
    ) -> (Arc<Barrier>, tokio::task::JoinHandle<Result<(), PoolError>>) {
        let gate = Arc::new(Barrier::new(2));
        let started = Arc::new(AtomicBool::new(false));
        let blocker = {
            let (pool, gate, started) = (pool.clone(), gate.clone(), started.clone());
            tokio::spawn(async move {
                pool.run(move |_| {
                    started.store(true, Ordering::SeqCst);
                    gate.wait();
                })
                .await
            })
        };
        while !started.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        (gate, blocker)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn never_runs_more_jobs_at_once_than_its_concurrency() {
        let pool = Arc::new(HashPool::new(settings(2, 64, Duration::from_secs(60))).unwrap());
        let now_running = Arc::new(AtomicUsize::new(0));
        let overlap_seen = Arc::new(AtomicUsize::new(0));
        // Jobs pass this two at a time: it proves that two do run at once,
        // while the counters prove that a third never joins them.
        let pair = Arc::new(Barrier::new(2));
        let jobs = (0..40).map(|_| {
            let pool = pool.clone();
            let now_running = now_running.clone();
            let overlap_seen = overlap_seen.clone();
            let pair = pair.clone();
            tokio::spawn(async move {
                pool.run(move |memory| {
                    let n = now_running.fetch_add(1, Ordering::SeqCst) + 1;
                    overlap_seen.fetch_max(n, Ordering::SeqCst);
                    memory.blocks(1024)[0] = Block::default();
                    pair.wait();
                    now_running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            })
        });
        for job in jobs.collect::<Vec<_>>() {
            job.await.unwrap().expect("every job runs");
        }
        assert_eq!(overlap_seen.load(Ordering::SeqCst), 2);
        assert_eq!(pool.stats().most_running, 2);
        // A worker counts a job once its answer is sent: the last few counts
        // may land just after their callers woke up.
        for _ in 0..100 {
            if pool.stats().completed == 40 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.stats().completed, 40);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_and_runs_nothing_of_what_it_refused() {
        let pool = Arc::new(HashPool::new(settings(1, 2, Duration::from_secs(60))).unwrap());
        let (gate, blocker) = hold_the_only_worker(&pool).await;
        let ran = Arc::new(AtomicUsize::new(0));
        // Two fit in the queue...
        let queued: Vec<_> = (0..2)
            .map(|_| {
                let (pool, ran) = (pool.clone(), ran.clone());
                tokio::spawn(async move {
                    pool.run(move |_| {
                        ran.fetch_add(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        while pool.stats.queued.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        // ...the third does not, and is answered without waiting for the gate.
        let ran_by_refused = ran.clone();
        let refused = pool
            .run(move |_| {
                ran_by_refused.fetch_add(100, Ordering::SeqCst);
            })
            .await;
        assert!(
            matches!(refused, Err(PoolError::Busy { retry_after }) if retry_after >= Duration::from_secs(1))
        );
        assert_eq!(pool.stats().shed_full, 1);
        gate.wait();
        blocker.await.unwrap().unwrap();
        for job in queued {
            job.await.unwrap().expect("queued jobs run");
        }
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_waited_past_the_budget_is_dropped_unrun() {
        let budget = Duration::from_millis(200);
        let pool = Arc::new(HashPool::new(settings(1, 8, budget)).unwrap());
        let (gate, blocker) = hold_the_only_worker(&pool).await;
        let ran = Arc::new(AtomicBool::new(false));
        let late = {
            let (pool, ran) = (pool.clone(), ran.clone());
            tokio::spawn(async move { pool.run(move |_| ran.store(true, Ordering::SeqCst)).await })
        };
        while pool.stats.queued.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        // The worker is held past the budget.
        std::thread::sleep(budget + Duration::from_millis(100));
        gate.wait();
        blocker.await.unwrap().unwrap();
        assert!(matches!(late.await.unwrap(), Err(PoolError::Busy { .. })));
        assert!(!ran.load(Ordering::SeqCst));
        assert_eq!(pool.stats().shed_late, 1);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_worker_carries_on() {
        let pool = HashPool::new(settings(1, 8, Duration::from_secs(60))).unwrap();
        let crashed = pool.run(|_| -> u8 { panic!("boom") }).await;
        assert!(matches!(crashed, Err(PoolError::Crashed)));
        assert_eq!(pool.run(|_| 7).await.unwrap(), 7);
    }

    #[test]
    fn the_expected_wait_counts_whole_rounds_of_the_queue() {
        let run = Duration::from_millis(15);
        assert_eq!(expected_wait(0, 2, run), Duration::ZERO);
        assert_eq!(expected_wait(1, 2, run), Duration::ZERO);
        assert_eq!(expected_wait(2, 2, run), run);
        assert_eq!(expected_wait(9, 2, run), run * 4);
        assert_eq!(expected_wait(9, 0, run), run * 9);
        assert_eq!(expected_wait(100, 1, Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_is_shared_while_busy_and_freed_after_an_idle_spell() {
        let idle = Duration::from_millis(50);
        let pool = HashPool::new(HashingSettings {
            idle_release: idle,
            ..settings(1, 8, Duration::from_secs(60))
        })
        .unwrap();
        // Jobs one after another reuse the memory: the second finds the
        // first one's blocks already there.
        let first = pool
            .run(|memory| memory.blocks(64).as_ptr() as usize)
            .await
            .unwrap();
        let sizes = pool.run(|memory| memory.0.len()).await.unwrap();
        assert_eq!(sizes, 64);
        let again = pool
            .run(|memory| memory.blocks(64).as_ptr() as usize)
            .await
            .unwrap();
        assert_eq!(again, first);
        assert_eq!(pool.stats().released, 0, "nothing is freed between jobs");
        // With no job coming, the memory is freed...
        for _ in 0..500 {
            if pool.stats().released > 0 {
                break;
            }
            tokio::time::sleep(idle).await;
        }
        assert_eq!(pool.stats().released, 1, "one memory was ever made");
        // ...and the next job starts from fresh memory, and still runs.
        assert_eq!(pool.run(|memory| memory.0.len()).await.unwrap(), 0);
    }

    #[test]
    fn memory_is_kept_and_only_grows() {
        let mut memory = Memory::default();
        assert_eq!(memory.blocks(8).len(), 8);
        let first = memory.blocks(8).as_ptr();
        assert_eq!(memory.blocks(4).len(), 4);
        assert_eq!(memory.blocks(8).as_ptr(), first);
        assert_eq!(memory.blocks(16).len(), 16);
    }
}
