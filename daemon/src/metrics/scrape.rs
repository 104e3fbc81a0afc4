//! One scrape: the daemon's counters and histograms, and gauges read now from the store (stamp
//! requests by state, seal and certificate expiry, the usage log's head) and the devices
//! (modules, tokens present and logged in, PIN flags).

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::runtime::Runtime;
use crate::store::model::Seal;
use crate::store::StoreError;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State {
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Serial {
    serial: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Module {
    module: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SealLabel {
    seal: String,
    device: String,
}

type Gauges<L> = Family<L, Gauge>;
type FloatGauges<L> = Family<L, Gauge<f64, AtomicU64>>;

/// What the store says now, read in one snapshot.
struct Stored {
    requests: Vec<(String, u64)>,
    seals: Vec<Seal>,
    head: i64,
}

/// The whole exposition (Prometheus text format, ending in `# EOF`). `event_streams`: the
/// API's open event streams. Fails only if the store cannot be read.
pub fn render(runtime: &Runtime, event_streams: usize) -> Result<String, StoreError> {
    let stored = runtime.services.store.read(|tx| {
        Ok::<_, StoreError>(Stored {
            requests: tx.request_counts()?,
            seals: tx.seals()?,
            head: tx.audit_last()?.map(|(seq, _)| seq).unwrap_or(0),
        })
    })?;
    let mut registry = Registry::default();
    runtime.metrics.register(&mut registry);
    register_store(&mut registry, runtime, &stored);
    register_devices(&mut registry, runtime, &stored.seals);
    registry.register(
        "seald_event_streams",
        "Event streams (GET /v1/events, the console) open now",
        ConstGauge::new(event_streams as i64),
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .map_err(|e| StoreError::Failed(format!("cannot encode the metrics: {e}")))?;
    Ok(text)
}

fn register_store(registry: &mut Registry, runtime: &Runtime, stored: &Stored) {
    let requests = Gauges::<State>::default();
    for (state, count) in &stored.requests {
        requests
            .get_or_create(&State {
                state: state.clone(),
            })
            .set(*count as i64);
    }
    registry.register(
        "seald_stamp_requests",
        "Stamp requests in the store, by state",
        requests,
    );
    let seals = Gauges::<State>::default();
    let seal_days = FloatGauges::<SealLabel>::default();
    let cert_days = FloatGauges::<SealLabel>::default();
    let now = runtime.clock.timestamp();
    let days = |until: i64| (until - now) as f64 / 86_400.0;
    for seal in &stored.seals {
        seals
            .get_or_create(&State {
                state: seal.state.as_str().into(),
            })
            .inc();
        // Revoked, lost and expired seals never stamp again: nothing to watch.
        if !seal.state.is_live() {
            continue;
        }
        let labels = SealLabel {
            seal: seal.id.to_string(),
            device: seal.device_serial.clone(),
        };
        seal_days.get_or_create(&labels).set(days(seal.valid_to));
        cert_days
            .get_or_create(&labels)
            .set(days(seal.cert.not_after));
    }
    registry.register("seald_seals", "Seals in the registry, by state", seals);
    registry.register(
        "seald_seal_expiry_days",
        "Days until each active or suspended seal's validity ends (negative: ended)",
        seal_days,
    );
    registry.register(
        "seald_certificate_expiry_days",
        "Days until the certificate of each active or suspended seal expires (negative: expired)",
        cert_days,
    );
    registry.register(
        "seald_usage_log_head_seq",
        "Sequence number of the usage log's last record",
        ConstGauge::new(stored.head),
    );
    let store = &runtime.services.store;
    let stats = store.stats();
    registry.register(
        "seald_store_write_queue",
        "Store writes waiting for their commit now",
        ConstGauge::new(stats.queued as i64),
    );
    registry.register(
        "seald_store_commits",
        "Write transactions committed by this process (group commit: several writes each)",
        ConstCounter::new(stats.commits),
    );
    registry.register(
        "seald_store_write_seconds",
        "Time from a store write's submission to its durable commit; every usage-log record is appended by such a write",
        store.write_latency(),
    );
}

fn register_devices(registry: &mut Registry, runtime: &Runtime, seals: &[Seal]) {
    let modules = Gauges::<Module>::default();
    let present = Gauges::<Serial>::default();
    let logged_in = Gauges::<Serial>::default();
    let tries_left = Gauges::<Serial>::default();
    let count_low = Gauges::<Serial>::default();
    let mut seen = BTreeSet::new();
    for module in runtime.devices.scan() {
        let up = module.error.is_none();
        modules
            .get_or_create(&Module {
                module: module.name.clone(),
            })
            .set(up as i64);
        for token in module.tokens {
            let serial = Serial {
                serial: token.serial.clone(),
            };
            present.get_or_create(&serial).set(1);
            let logged = runtime.devices.is_logged_in(&token.serial);
            logged_in.get_or_create(&serial).set(logged as i64);
            // PKCS#11 reports flags, not numbers: exact only when locked or at the final try.
            if token.pin.locked {
                tries_left.get_or_create(&serial).set(0);
            } else if token.pin.final_try {
                tries_left.get_or_create(&serial).set(1);
            }
            count_low
                .get_or_create(&serial)
                .set((token.pin.count_low || token.pin.final_try || token.pin.locked) as i64);
            seen.insert(token.serial);
        }
    }
    // The tokens seals live on and that are not there: present 0, so removal can be alerted on.
    for seal in seals.iter().filter(|s| s.state.is_live()) {
        if !seen.contains(&seal.device_serial) {
            let serial = Serial {
                serial: seal.device_serial.clone(),
            };
            present.get_or_create(&serial).set(0);
            logged_in.get_or_create(&serial).set(0);
        }
    }
    registry.register(
        "seald_module_up",
        "1 if the PKCS#11/SKF/SDF module loaded and answers, 0 if not",
        modules,
    );
    registry.register(
        "seald_device_present",
        "1 if the token is present; 0 for a token a seal is on that is not",
        present,
    );
    registry.register(
        "seald_device_logged_in",
        "1 if the token is logged in (its PIN entered)",
        logged_in,
    );
    registry.register(
        "seald_pin_tries_left",
        "User PIN tries left where the token says exactly: 0 locked, 1 final try (otherwise absent; see seald_pin_count_low)",
        tries_left,
    );
    registry.register(
        "seald_pin_count_low",
        "1 if the token reports a wrong user PIN entered (tries left below the maximum), final try or locked",
        count_low,
    );
}
