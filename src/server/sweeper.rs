//! The periodic clean-up: expired and long-revoked sessions (with their
//! refresh tokens), audit events past retention, stale throttle counters.
//! Runs in-process on a timer; every instance may run it, as the deletes are
//! idempotent.

use std::time::Duration;

use super::{
    config::MaintenanceSettings,
    config::ThrottleSettings,
    db::{Store, StoreResult, SweepReport},
    time::Timestamp,
};

pub async fn sweep_once(
    store: &Store,
    maintenance: &MaintenanceSettings,
    throttle: &ThrottleSettings,
) -> StoreResult<SweepReport> {
    let now = Timestamp::now();
    let day = Duration::from_secs(24 * 3600);
    // Delivered webhooks are kept a day, dead ones as long as revoked
    // sessions; nothing outlives two days plus that (a day of retries).
    store
        .prune_session_events(
            now.minus(day),
            now.minus(maintenance.revoked_retention),
            now.minus(maintenance.revoked_retention + 2 * day),
        )
        .await?;
    store
        .sweep(
            now,
            now.minus(maintenance.revoked_retention),
            now.minus(maintenance.audit_retention),
            now.minus(throttle.failure_window.max(throttle.max_delay)),
        )
        .await
}

pub fn spawn(
    store: Store,
    maintenance: MaintenanceSettings,
    throttle: ThrottleSettings,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(maintenance.sweep_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick fires at once; give startup (migrations) a moment.
        ticks.tick().await;
        tokio::time::sleep(Duration::from_secs(5).min(maintenance.sweep_interval)).await;
        loop {
            match sweep_once(&store, &maintenance, &throttle).await {
                Ok(report) if report != SweepReport::default() => tracing::info!(
                    sessions = report.sessions,
                    events = report.events,
                    throttles = report.throttles,
                    links = report.links,
                    pending_second_factors = report.challenges,
                    "swept expired records"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(error = ?error, "sweep failed; will retry"),
            }
            ticks.tick().await;
        }
    })
}
