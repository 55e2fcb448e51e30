//! An upstream compiled for the request path: target authorities and `Host` values parsed once
//! per revision, and the round robin that picks among them.

use std::str::FromStr;

use gateway_config::Upstream;
use http::HeaderValue;
use http::uri::Authority;

use crate::balance::RoundRobin;

#[derive(Debug)]
pub struct CompiledUpstream {
    pub name: Box<str>,
    targets: Box<[CompiledTarget]>,
    balancer: RoundRobin,
}

#[derive(Debug, Clone)]
pub struct CompiledTarget {
    pub authority: Authority,
    /// The target address as a `Host` header, used unless the route preserves the client's host.
    pub host_header: HeaderValue,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UpstreamError {
    #[error("upstream `{upstream}`: targets[{index}].address `{address}` is not a valid authority")]
    BadAddress {
        upstream: String,
        index: usize,
        address: String,
    },
    #[error("upstream `{upstream}`: no target has a weight above 0")]
    NoWeight { upstream: String },
}

impl CompiledUpstream {
    pub fn compile(upstream: &Upstream) -> Result<Self, UpstreamError> {
        let targets = upstream
            .targets
            .iter()
            .enumerate()
            .map(|(index, target)| {
                let bad = || UpstreamError::BadAddress {
                    upstream: upstream.name.clone(),
                    index,
                    address: target.address.clone(),
                };
                let authority = Authority::from_str(&target.address).map_err(|_| bad())?;
                if authority.port_u16().is_none() {
                    return Err(bad());
                }
                let host_header = HeaderValue::from_str(authority.as_str()).map_err(|_| bad())?;
                Ok(CompiledTarget {
                    authority,
                    host_header,
                })
            })
            .collect::<Result<Box<[_]>, _>>()?;
        let weights: Vec<u32> = upstream.targets.iter().map(|t| t.weight).collect();
        let balancer = RoundRobin::new(&weights).ok_or_else(|| UpstreamError::NoWeight {
            upstream: upstream.name.clone(),
        })?;
        Ok(CompiledUpstream {
            name: upstream.name.as_str().into(),
            targets,
            balancer,
        })
    }

    /// The next target in weighted round-robin order.
    pub fn pick(&self) -> &CompiledTarget {
        // The balancer only yields indices of `targets`; fall back to the first defensively.
        let index = self.balancer.next();
        self.targets.get(index).unwrap_or(&self.targets[0])
    }

    pub fn targets(&self) -> &[CompiledTarget] {
        &self.targets
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gateway_config::{Balance, Target};

    use super::*;

    fn upstream(targets: &[(&str, u32)]) -> Upstream {
        Upstream {
            name: "api".into(),
            tags: vec![],
            targets: targets
                .iter()
                .map(|(a, w)| Target {
                    address: (*a).into(),
                    weight: *w,
                })
                .collect(),
            balance: Balance::RoundRobin,
        }
    }

    #[test]
    fn compiles_targets_and_balances() {
        let u =
            CompiledUpstream::compile(&upstream(&[("10.0.0.1:80", 1), ("[::1]:8080", 1)])).unwrap();
        assert_eq!(u.targets().len(), 2);
        assert_eq!(u.targets()[1].host_header, "[::1]:8080");
        let a = u.pick().authority.clone();
        let b = u.pick().authority.clone();
        assert_ne!(a, b);
    }

    #[test]
    fn rejects_what_cannot_be_proxied_to() {
        assert!(matches!(
            CompiledUpstream::compile(&upstream(&[("no port", 1)])),
            Err(UpstreamError::BadAddress { index: 0, .. })
        ));
        assert!(matches!(
            CompiledUpstream::compile(&upstream(&[("h:1", 0)])),
            Err(UpstreamError::NoWeight { .. })
        ));
    }
}
