//! Dyno names on both Heroku generations: `web.1` on Cedar, and on Fir the
//! Kubernetes-style `web-12a34b56d-e78f9` (type, pod-template hash, suffix).
//! It sits here, low in the tree, because the boot warmer names its dyno too.

/// The process type a dyno name stands for: `web.1` → `web`,
/// `web-12a34b56d-e78f9` → `web`, `worker-high-5d8f7c6b9-x2k4q` → `worker-high`.
pub(crate) fn process_type(name: &str) -> &str {
    if let Some(kind) = fir_process_type(name) {
        return kind;
    }
    name.split_once('.').map_or(name, |(kind, _)| kind)
}

/// Whether `name` looks like a Fir dyno name (`<type>-<hash>-<suffix>`).
pub(crate) fn is_fir_name(name: &str) -> bool {
    fir_process_type(name).is_some()
}

fn fir_process_type(name: &str) -> Option<&str> {
    let (rest, suffix) = name.rsplit_once('-')?;
    let (kind, hash) = rest.rsplit_once('-')?;
    let token = |part: &str, sizes: std::ops::RangeInclusive<usize>| {
        sizes.contains(&part.len())
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    let kind_ok = !kind.is_empty()
        && kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (kind_ok && token(hash, 6..=10) && token(suffix, 5..=5)).then_some(kind)
}

/// This dyno's name, for log lines: `DYNO` (Cedar, or Fir with dyno
/// metadata), else `HOSTNAME` when it is a Fir dyno name, else `web`.
pub(crate) fn this_dyno() -> String {
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    var("DYNO")
        .or_else(|| var("HOSTNAME").filter(|host| is_fir_name(host)))
        .unwrap_or_else(|| "web".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cedar_and_fir_names() {
        assert_eq!(process_type("web.1"), "web");
        assert_eq!(process_type("worker.12"), "worker");
        assert_eq!(process_type("run.1001"), "run");
        assert_eq!(process_type("web-12a34b56d-e78f9"), "web");
        assert_eq!(process_type("worker-high-5d8f7c6b9-x2k4q"), "worker-high");
        assert_eq!(process_type("web"), "web");
        assert!(is_fir_name("web-12a34b56d-e78f9"));
        assert!(!is_fir_name("web.1"));
        // A container's hostname that is not a dyno name.
        assert!(!is_fir_name("3f2a9c1b7d4e"));
        assert!(!is_fir_name("my-laptop"));
        assert!(!is_fir_name("web-12A34B56D-e78f9"));
        assert!(!is_fir_name("-12a34b56d-e78f9"));
    }
}
