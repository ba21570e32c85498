//! Compiles the policy's traffic sections: `cooldown` (for the filter) and
//! `clusters` (endpoints and outlier detection, for the Envoy config).

use super::compile::{is_header_value, positive};
use super::ordered::OrderedMap;
use super::raw::{RawCluster, RawCooldown, RawOutlierDetection};
use super::{ClusterSpec, Model, OutlierDetection, PolicyError};
use crate::cooldown::CooldownSettings;

/// Envoy's bound on an endpoint's load-balancing weight.
const MAX_ENDPOINT_WEIGHT: u64 = 128;

pub(super) fn cooldown(raw: Option<&RawCooldown>) -> Result<CooldownSettings, PolicyError> {
    let mut settings = CooldownSettings::default();
    let Some(raw) = raw else {
        return Ok(settings);
    };
    settings.enabled = raw.enabled.unwrap_or(true);
    if let Some(ms) = positive(raw.default_ms, "cooldown.default_ms")? {
        settings.default_ms = ms;
    }
    if let Some(ms) = positive(raw.max_ms, "cooldown.max_ms")? {
        settings.max_ms = ms;
    }
    if settings.max_ms < settings.default_ms {
        return Err(PolicyError::new(
            "cooldown.max_ms",
            "must not be less than default_ms",
        ));
    }
    if let Some(ms) = positive(raw.failure_window_ms, "cooldown.failure_window_ms")? {
        settings.failure_window_ms = ms;
    }
    settings.failure_threshold = raw.failure_threshold.unwrap_or(0);
    if let Some(codes) = &raw.statuses {
        if let Some(i) = codes.iter().position(|c| !(400..=599).contains(c)) {
            return Err(PolicyError::new(
                format!("cooldown.statuses[{i}]"),
                "must be an HTTP error status (400-599)",
            ));
        }
        settings.statuses = codes.clone();
    }
    Ok(settings)
}

pub(super) fn clusters(
    raw: Option<&OrderedMap<RawCluster>>,
    models: &[Model],
) -> Result<Vec<ClusterSpec>, PolicyError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(raw.0.len());
    for (name, cluster) in &raw.0 {
        let path = format!("clusters.{name}");
        if !models.iter().any(|m| &m.cluster == name) {
            return Err(PolicyError::new(
                path,
                format!("no model uses cluster {name:?}"),
            ));
        }
        let mut endpoints = Vec::with_capacity(cluster.endpoints.len());
        for (i, e) in cluster.endpoints.iter().enumerate() {
            let at = format!("{path}.endpoints[{i}]");
            let (host, port) = host_port(&e.address).ok_or_else(|| {
                PolicyError::new(
                    format!("{at}.address"),
                    format!("{:?} is not HOST:PORT", e.address),
                )
            })?;
            let weight = match &e.weight {
                None => 1,
                Some(w) => w
                    .as_u64()
                    .filter(|w| (1..=MAX_ENDPOINT_WEIGHT).contains(w))
                    .and_then(|w| u32::try_from(w).ok())
                    .ok_or_else(|| {
                        PolicyError::new(
                            format!("{at}.weight"),
                            format!("must be an integer from 1 to {MAX_ENDPOINT_WEIGHT}, got {w}"),
                        )
                    })?,
            };
            endpoints.push((host, port, weight));
        }
        out.push(ClusterSpec {
            name: name.clone(),
            endpoints,
            outlier_detection: match &cluster.outlier_detection {
                None => None,
                Some(o) => Some(outlier(o, &format!("{path}.outlier_detection"))?),
            },
        });
    }
    Ok(out)
}

fn host_port(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || !is_header_value(host) {
        return None;
    }
    Some((
        host.to_string(),
        port.parse::<u16>().ok().filter(|p| *p > 0)?,
    ))
}

fn outlier(raw: &RawOutlierDetection, path: &str) -> Result<OutlierDetection, PolicyError> {
    let d = OutlierDetection::default();
    let count = |v: Option<u32>, name: &str, default: u32| -> Result<u32, PolicyError> {
        match v {
            Some(0) => Err(PolicyError::new(
                format!("{path}.{name}"),
                "must be greater than 0",
            )),
            Some(n) => Ok(n),
            None => Ok(default),
        }
    };
    let ms = |v: Option<u64>, name: &str, default: u64| -> Result<u64, PolicyError> {
        Ok(positive(v, &format!("{path}.{name}"))?.unwrap_or(default))
    };
    let max_ejection_percent = raw.max_ejection_percent.unwrap_or(d.max_ejection_percent);
    if max_ejection_percent > 100 {
        return Err(PolicyError::new(
            format!("{path}.max_ejection_percent"),
            "must be at most 100",
        ));
    }
    Ok(OutlierDetection {
        consecutive_5xx: count(raw.consecutive_5xx, "consecutive_5xx", d.consecutive_5xx)?,
        consecutive_gateway_failure: count(
            raw.consecutive_gateway_failure,
            "consecutive_gateway_failure",
            d.consecutive_gateway_failure,
        )?,
        consecutive_local_origin_failure: count(
            raw.consecutive_local_origin_failure,
            "consecutive_local_origin_failure",
            d.consecutive_local_origin_failure,
        )?,
        interval_ms: ms(raw.interval_ms, "interval_ms", d.interval_ms)?,
        base_ejection_time_ms: ms(
            raw.base_ejection_time_ms,
            "base_ejection_time_ms",
            d.base_ejection_time_ms,
        )?,
        max_ejection_percent,
    })
}
