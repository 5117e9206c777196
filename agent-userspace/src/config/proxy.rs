//! `[proxy]` in cordon.toml: how many cores serve agent connections
//! (docs/architecture.md, "Thread per core").
use serde::Deserialize;

/// More proxy threads than this is a typo, not a machine: each one holds
/// its own listeners, upstream pools and leaf cache.
pub const MAX_CORES: u64 = 256;

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    /// Proxy threads, each with its own listeners; absent: one per CPU
    /// this process may run on.
    pub cores: Option<u64>,
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
    fn unknown_keys_in_the_section_are_refused() {
        assert!(toml::from_str::<ProxySection>("core = 2\n").is_err());
    }
}
