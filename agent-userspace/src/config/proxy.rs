//! `[proxy]` in cordon.toml: how many cores serve agent connections
//! (docs/architecture.md, "Thread per core"), and the scheduler slice the
//! daemon's threads ask for (`daemon/sched.rs`).
use serde::Deserialize;

/// More proxy threads than this is a typo, not a machine: each one holds
/// its own listeners, upstream pools and leaf cache.
pub const MAX_CORES: u64 = 256;

/// The slice the daemon's threads ask for when `slice_us` is absent.
pub const DEFAULT_SLICE_US: u64 = 100;
/// The kernel's bounds on a requested slice (`sched_setattr`, EEVDF).
pub const SLICE_US_RANGE: std::ops::RangeInclusive<u64> = 100..=100_000;

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    /// Proxy threads, each with its own listeners; absent: one per CPU
    /// this process may run on.
    pub cores: Option<u64>,
    /// The scheduler time slice, in microseconds, the daemon's threads ask
    /// for; 0 leaves the kernel's default.
    pub slice_us: Option<u64>,
}

impl ProxySection {
    /// The number of proxy threads, given how many CPUs the process may
    /// use (`std::thread::available_parallelism`).
    pub fn resolve(&self, available: usize) -> Result<usize, String> {
        match self.cores {
            None => Ok(available.clamp(1, MAX_CORES as usize)),
            Some(0) => Err("[proxy] cores must be at least 1".into()),
            Some(n) if n > MAX_CORES => Err(format!(
                "[proxy] cores = {n} is more than {MAX_CORES} (one proxy thread per CPU is enough)"
            )),
            Some(n) => Ok(n as usize),
        }
    }
}

impl ProxySection {
    /// The slice to ask for, or `None` to leave the kernel's default.
    pub fn slice(&self) -> Result<Option<std::time::Duration>, String> {
        match self.slice_us.unwrap_or(DEFAULT_SLICE_US) {
            0 => Ok(None),
            us if SLICE_US_RANGE.contains(&us) => Ok(Some(std::time::Duration::from_micros(us))),
            us => Err(format!(
                "[proxy] slice_us = {us} is outside {}..={} (0 keeps the kernel's default)",
                SLICE_US_RANGE.start(),
                SLICE_US_RANGE.end()
            )),
        }
    }
}

/// The CPUs this process may run on (its affinity mask and cgroup quota),
/// or one when the system cannot say.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> ProxySection {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn absent_cores_means_one_per_available_cpu() {
        assert_eq!(section("").resolve(6), Ok(6));
        assert_eq!(section("").resolve(0), Ok(1));
        assert_eq!(section("").resolve(10_000), Ok(MAX_CORES as usize));
    }

    #[test]
    fn a_set_core_count_wins_over_the_cpus() {
        assert_eq!(section("cores = 2\n").resolve(8), Ok(2));
        // More threads than CPUs is allowed: the operator may know better.
        assert_eq!(section("cores = 4\n").resolve(2), Ok(4));
    }

    #[test]
    fn zero_or_absurd_core_counts_are_refused_naming_the_field() {
        let zero = section("cores = 0\n").resolve(2).unwrap_err();
        assert!(zero.contains("[proxy] cores"), "{zero}");
        let huge = section("cores = 100000\n").resolve(2).unwrap_err();
        assert!(huge.contains("[proxy] cores = 100000"), "{huge}");
    }

    #[test]
    fn the_slice_defaults_to_a_short_one_and_zero_keeps_the_kernels() {
        let us = |d: Option<std::time::Duration>| d.map(|d| d.as_micros());
        assert_eq!(section("").slice().map(us), Ok(Some(100)));
        assert_eq!(section("slice_us = 0\n").slice().map(us), Ok(None));
        assert_eq!(section("slice_us = 750\n").slice().map(us), Ok(Some(750)));
    }

    #[test]
    fn a_slice_the_kernel_would_refuse_is_refused_naming_the_field() {
        for bad in ["slice_us = 50\n", "slice_us = 100001\n"] {
            let e = section(bad).slice().unwrap_err();
            assert!(e.contains("[proxy] slice_us"), "{e}");
        }
    }

    #[test]
    fn unknown_keys_in_the_section_are_refused() {
        assert!(toml::from_str::<ProxySection>("core = 2\n").is_err());
    }
}
