//! Envoy custom metrics: defined on first use, ids cached per VM.

use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::metrics::{Kind, Sample};

#[derive(Default)]
pub struct MetricSink {
    ids: HashMap<String, u32>,
}

impl MetricSink {
    pub fn record(&mut self, samples: &[Sample]) {
        for sample in samples {
            let Some(id) = self.id(sample) else { continue };
            let result = match sample.kind {
                Kind::Counter => {
                    hostcalls::increment_metric(id, i64::try_from(sample.value).unwrap_or(i64::MAX))
                }
                Kind::Histogram | Kind::Gauge => hostcalls::record_metric(id, sample.value),
            };
            if let Err(status) = result {
                log::warn!(
                    "model-router: cannot update metric {}: {status:?}",
                    sample.name
                );
            }
        }
    }

    fn id(&mut self, sample: &Sample) -> Option<u32> {
        if let Some(id) = self.ids.get(&sample.name) {
            return Some(*id);
        }
        let kind = match sample.kind {
            Kind::Counter => MetricType::Counter,
            Kind::Histogram => MetricType::Histogram,
            Kind::Gauge => MetricType::Gauge,
        };
        match hostcalls::define_metric(kind, &sample.name) {
            Ok(id) => {
                self.ids.insert(sample.name.clone(), id);
                Some(id)
            }
            Err(status) => {
                log::warn!(
                    "model-router: cannot define metric {}: {status:?}",
                    sample.name
                );
                None
            }
        }
    }
}
