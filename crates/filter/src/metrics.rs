//! Envoy custom metrics: defined on first use, ids cached per VM.

use hashbrown::HashMap;
use model_router_core::metrics::{Kind, Sample};

use crate::host::Host;

#[derive(Default)]
pub struct MetricSink {
    ids: HashMap<String, u32>,
}

impl MetricSink {
    pub fn record(&mut self, host: &impl Host, samples: &[Sample]) {
        for sample in samples {
            let id = match self.ids.get(sample.name.as_str()) {
                Some(id) => *id,
                None => {
                    let Some(id) = host.define_metric(sample.kind, &sample.name) else {
                        continue;
                    };
                    self.ids.insert(sample.name.clone(), id);
                    id
                }
            };
            // Envoy refuses a counter increment of 0 (BadArgument): the
            // counter is defined (it shows 0) and the call is saved.
            if sample.kind == Kind::Counter && sample.value == 0 {
                continue;
            }
            host.update_metric(sample.kind, id, sample.value);
        }
    }
}
