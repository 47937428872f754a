//! Where a unit is: its SNMP endpoint as the inventory keeps it, either an
//! address (`192.0.2.7:161`, `[2001:db8::7]:161`) or a DNS name with a port
//! (`unit-a.san.example:161`), resolved with hickory at each use so a unit
//! that moves keeps its name. Lookups are bounded in time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::system_conf::read_system_conf;

/// Longest one lookup may take.
const LOOKUP_DEADLINE: Duration = Duration::from_secs(3);

/// A unit's endpoint could not be resolved.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unit endpoint {endpoint:?}: {reason}")]
pub struct ResolveError {
    /// The endpoint text.
    pub endpoint: String,
    /// Why.
    pub reason: String,
}

/// Resolves unit endpoints. The resolver (which reads the system's
/// configuration files) is made off the reactor at the first name that
/// needs it; addresses never need it.
#[derive(Clone, Default)]
pub struct UnitResolver {
    resolver: Arc<tokio::sync::OnceCell<TokioResolver>>,
}

impl std::fmt::Debug for UnitResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnitResolver")
    }
}

/// A resolver over the system's configuration (`/etc/resolv.conf` and
/// `/etc/hosts`); with no usable configuration, over none (names then fail
/// with a clear error).
fn system_resolver() -> TokioResolver {
    let (config, mut options) = read_system_conf().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "no system DNS configuration; unit names will not resolve");
        (ResolverConfig::default(), ResolverOpts::default())
    });
    options.timeout = Duration::from_secs(1);
    options.attempts = 2;
    options.ip_strategy = LookupIpStrategy::Ipv4thenIpv6;
    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(options)
        .build()
        .expect("a resolver from a parsed configuration")
}

impl UnitResolver {
    /// A resolver over the system's configuration, made when first needed.
    pub fn system() -> Self {
        UnitResolver::default()
    }

    /// The address of `endpoint` (`ADDR:PORT` or `NAME:PORT`).
    pub async fn resolve(&self, endpoint: &str) -> Result<SocketAddr, ResolveError> {
        if let Ok(a) = endpoint.parse::<SocketAddr>() {
            return Ok(a);
        }
        let fail = |reason: String| ResolveError {
            endpoint: endpoint.to_string(),
            reason,
        };
        let (host, port) = split_host_port(endpoint)
            .ok_or_else(|| fail("not ADDRESS:PORT or NAME:PORT".into()))?;
        let resolver = self
            .resolver
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(system_resolver)
                    .await
                    .map_err(|e| fail(format!("making the resolver: {e}")))
            })
            .await?;
        let lookup = tokio::time::timeout(LOOKUP_DEADLINE, resolver.lookup_ip(host))
            .await
            .map_err(|_| fail(format!("no DNS answer in {LOOKUP_DEADLINE:?}")))?
            .map_err(|e| fail(e.to_string()))?;
        lookup
            .iter()
            .next()
            .map(|ip| SocketAddr::new(ip, port))
            .ok_or_else(|| fail(format!("{host} has no address")))
    }
}

/// Splits `NAME:PORT`; `None` unless the name is a DNS name and the port a
/// number.
pub fn split_host_port(endpoint: &str) -> Option<(&str, u16)> {
    let (host, port) = endpoint.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    name_ok.then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ports_split() {
        assert_eq!(
            split_host_port("unit-a.san.example:161"),
            Some(("unit-a.san.example", 161))
        );
        assert_eq!(split_host_port("unit-a"), None);
        assert_eq!(split_host_port("bad host:161"), None);
        assert_eq!(split_host_port("unit:99999"), None);
    }

    #[tokio::test]
    async fn addresses_need_no_dns_and_localhost_resolves() {
        let r = UnitResolver::system();
        assert_eq!(
            r.resolve("127.0.0.2:1161").await.unwrap(),
            "127.0.0.2:1161".parse().unwrap()
        );
        let a = r.resolve("localhost:1161").await.unwrap();
        assert!(a.ip().is_loopback() && a.port() == 1161, "{a}");
        assert!(r.resolve("no-such-unit.invalid:161").await.is_err());
    }
}
