//! Active health checks: each service with `health` configured has every
//! instance asked `GET <path>` every `interval`; 2xx within `timeout` is a
//! success. An instance goes down after `unhealthy` failures in a row and
//! up again after `healthy` successes; down, it is not chosen.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use super::Registry;

/// Runs the checks until `stop`; services added later are checked too.
pub async fn run(registry: Arc<Registry>, stop: CancellationToken) {
    // A tick as short as the shortest interval; each service keeps its own pace.
    let mut last: std::collections::HashMap<String, tokio::time::Instant> = Default::default();
    loop {
        let now = tokio::time::Instant::now();
        let mut next = Duration::from_secs(1);
        for svc in registry.all() {
            let Some(h) = svc.settings.health.clone() else { continue };
            next = next.min(h.interval.0);
            if last.get(&svc.name).is_some_and(|t| now.duration_since(*t) < h.interval.0) {
                continue;
            }
            last.insert(svc.name.clone(), now);
            for instance in svc.instances() {
                let (client, url) = (svc.client().clone(), format!("{}{}", instance.base, h.path));
                let h = h.clone();
                tokio::spawn(async move {
                    let up = client.get(url).timeout(h.timeout.0).send().await.is_ok_and(|r| r.status().is_success());
                    instance.checked(up, h.healthy, h.unhealthy);
                });
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(next) => {}
            _ = stop.cancelled() => return,
        }
    }
}
