//! Blocking work (files, standard output, DNS through `std`) off the async runtime.
//!
//! A sink's `deliver` runs on tokio's runtime, shared with the other pipes and the pulls, so a
//! call that may block goes to tokio's blocking pool. [`run_blocking`] does that, and turns the
//! rare failure of the task itself (the closure panicked, or the runtime is shutting down) into a
//! retryable [`SinkError`] with nothing delivered, so the batch stays in the spool.

use std::fmt;

use broker_core::SinkError;

/// Runs `work` on tokio's blocking pool and returns what it returned. If the task fails instead
/// (a panic, a cancellation at shutdown), the error is retryable with nothing delivered and
/// reads `{what} failed: {why}`, so `what` names the task: `writing task`, or
/// `cannot write /var/log/a.jsonl: writing task`.
///
/// ```no_run
/// # async fn example() -> Result<(), broker_core::SinkError> {
/// use broker_sinks::util::blocking::run_blocking;
/// let written = run_blocking("writing task", || std::fs::write("/tmp/out", b"x")).await?;
/// # Ok(()) }
/// ```
pub async fn run_blocking<T, F>(what: impl fmt::Display, work: F) -> Result<T, SinkError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SinkError::retry(0, format!("{what} failed: {e}")))
}

#[cfg(test)]
mod tests {
    use broker_core::SinkErrorKind;

    use super::run_blocking;

    #[tokio::test]
    async fn returns_what_the_work_returned() {
        let answer = run_blocking("adding task", || 40 + 2).await.unwrap();
        assert_eq!(answer, 42);
    }

    #[tokio::test]
    async fn a_panic_is_a_retryable_error_naming_the_task() {
        let error = run_blocking("cannot write /x: writing task", || -> u8 {
            panic!("disk on fire")
        })
        .await
        .unwrap_err();
        assert_eq!(error.kind, SinkErrorKind::Retry);
        assert_eq!(error.delivered, 0);
        assert!(
            error
                .message
                .starts_with("cannot write /x: writing task failed: task "),
            "{}",
            error.message
        );
        assert!(error.message.contains("panicked"), "{}", error.message);
    }
}
