//! Process statistics: CPU time and peak memory of a child (from `wait4`'s rusage) and of this
//! process (from `getrusage` and `/proc/self`).

use std::time::{Duration, Instant};

/// CPU seconds (user + system) this process has used so far, all threads.
pub fn self_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// How a child process ended and what it used.
#[derive(Clone, Copy, Debug)]
pub struct ChildUsage {
    /// User CPU seconds.
    pub user: f64,
    /// System CPU seconds.
    pub system: f64,
    /// `ru_maxrss` from `wait4`, in KiB. Linux counts in it the resident set of the process
    /// that spawned the child as it was at the spawn (the child starts as its copy before
    /// `exec`), so for a child of a big process this is the parent's size, not the child's.
    pub max_rss_kib: u64,
    /// The child's own peak resident set size (`VmHWM` of its program after `exec`), in KiB:
    /// the highest value read from `/proc/PID/status` by [`watch_peak_rss`] and [`terminate`].
    pub peak_rss_kib: Option<u64>,
    /// The exit code, or `None` when a signal ended it.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// From SIGTERM to its end.
    pub stop_time: Duration,
    /// Whether it had to be killed (it did not end within the grace period after SIGTERM).
    pub killed: bool,
}

impl ChildUsage {
    /// User plus system CPU seconds.
    pub fn cpu(&self) -> f64 {
        self.user + self.system
    }
}

/// Whether child `pid` has ended, without reaping it (so [`terminate`] can still collect its
/// rusage).
pub fn has_exited(pid: u32) -> bool {
    // SAFETY: waitid only writes the siginfo it is given; WNOWAIT leaves the child waitable.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        r == 0 && info.si_pid() != 0
    }
}

/// The peak resident set size (`VmHWM`) of process `pid` now, in KiB, if it can be read; folded
/// into `peak`, the highest value seen so far.
pub fn watch_peak_rss(pid: u32, peak: &mut Option<u64>) {
    let seen = read_kib(&format!("/proc/{pid}/status"), "VmHWM:");
    *peak = (*peak).max(seen);
}

/// Sends SIGTERM to child `pid`, waits up to `grace` for it to end (then SIGKILL), and reaps it
/// with `wait4`, returning its rusage. `peak_rss` is the highest `VmHWM` seen so far (see
/// [`watch_peak_rss`]); it is read again until the child ends.
pub fn terminate(pid: u32, grace: Duration, mut peak_rss: Option<u64>) -> ChildUsage {
    let start = Instant::now();
    watch_peak_rss(pid, &mut peak_rss);
    // SAFETY: plain syscalls on our own child.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let mut killed = false;
    while !has_exited(pid) {
        watch_peak_rss(pid, &mut peak_rss);
        if start.elapsed() > grace {
            // SAFETY: as above.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (status, usage) = reap(pid);
    ChildUsage {
        user: seconds(usage.ru_utime),
        system: seconds(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss.max(0) as u64,
        peak_rss_kib: peak_rss,
        exit_code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        stop_time: start.elapsed(),
        killed,
    }
}

/// Waits for child `pid` and returns its wait status and rusage.
fn reap(pid: u32) -> (libc::c_int, libc::rusage) {
    // SAFETY: wait4 only writes the status and rusage it is given.
    unsafe {
        let mut status = 0;
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage);
        (status, usage)
    }
}

/// Gives memory that the allocator holds free back to the operating system (glibc's
/// `malloc_trim`), so that memory a later phase allocates shows in its resident set size
/// instead of reusing pages an earlier phase left resident.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Resets this process's peak resident set size (`VmHWM`) to its current one, where Linux allows
/// it (`/proc/self/clear_refs`); returns whether it did.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// This process's resident set size now (`VmRSS`), in KiB, if known.
pub fn rss_kib() -> Option<u64> {
    status_kib("VmRSS:")
}

/// This process's peak resident set size (`VmHWM`), in KiB, if known.
pub fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

fn status_kib(field: &str) -> Option<u64> {
    read_kib("/proc/self/status", field)
}

fn read_kib(path: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
