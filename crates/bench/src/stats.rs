//! Percentiles and the report: a table on stderr, JSON on stdout.

use hdrhistogram::Histogram;
use serde::Serialize;

#[derive(Serialize, Clone, Copy, Default)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub fn histogram(values_us: impl Iterator<Item = u64>) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
    for v in values_us {
        h.saturating_record(v.max(1));
    }
    h
}

pub fn latency(h: &Histogram<u64>) -> Latency {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Latency { p50_ms: ms(0.5), p90_ms: ms(0.9), p99_ms: ms(0.99), max_ms: h.max() as f64 / 1000.0 }
}

/// (percentile, ms) points for a chart, from p0 to p99.9.
pub fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let qs = [0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9];
    qs.iter().map(|q| (*q, h.value_at_quantile(q / 100.0) as f64 / 1000.0)).collect()
}

#[derive(Serialize, Default)]
pub struct Report {
    pub workload: String,
    pub n: usize,
    pub c: usize,
    pub wall_s: f64,
    pub completed_per_s: f64,
    pub accept: Latency,
    pub e2e: Option<Latency>,
    pub herald_peak_rss_mb: Option<f64>,
    pub herald_cpu_s: Option<f64>,
    pub watchers: Option<Watchers>,
    /// W3: `accept` is each publish request, `e2e` each event's delivery lag.
    pub events: Option<Events>,
    /// The gateway workload, target by target.
    pub gateway: Option<Vec<crate::gateway::TargetReport>>,
    /// `w1-shed`: the figures above are the shedding run's; these, the
    /// clean run's beside them, and what the worker saw.
    pub shed: Option<Shed>,
    /// W0, W1, accept: the store, the nodes, where the CPU went during the
    /// measured run, and each event's lag.
    pub run: Option<RunFigures>,
}

#[derive(Serialize, Default)]
pub struct RunFigures {
    /// `sqlite`, or `postgres` (a schema of the run's own).
    pub store: String,
    pub nodes: usize,
    /// Each node's CPU seconds during the measured run.
    pub herald_cpu_s: Vec<f64>,
    pub worker_cpu_s: f64,
    /// This process: the client.
    pub client_cpu_s: f64,
    pub postgres: Option<crate::pg::PgUsage>,
    /// Events seen on the operations' streams.
    pub events: usize,
    /// Arrival on the watcher's stream minus the event's `at`, every event
    /// seen; with several nodes, each crossed from one node to another.
    pub lag: Option<Latency>,
    /// The events committed after the watcher asked for the stream.
    pub live_events: usize,
    pub live_lag: Option<Latency>,
    /// With several nodes: events of the paired operations seen live on
    /// both the starting node and another, and how much later the other
    /// had each (what crossing nodes adds to commit-to-receipt).
    pub cross_events: usize,
    pub cross_lag: Option<Latency>,
}

#[derive(Serialize, Default)]
pub struct Shed {
    /// Share of first attempts answered 503, in percent.
    pub percent: u32,
    pub clean_per_s: f64,
    pub clean_e2e: Latency,
    pub clean_peak_in_flight: u64,
    /// Step calls the shedding worker had in flight at most.
    pub peak_in_flight: u64,
    pub calls: u64,
    pub shed: u64,
}

#[derive(Serialize, Default)]
pub struct Events {
    /// Events per publish request.
    pub batch: usize,
    /// Push: events per delivery request.
    pub push_batch: Option<usize>,
    /// Push: events out to the consumer at once.
    pub push_in_flight: Option<usize>,
    /// The paced rate, if any (events/s).
    pub rate: Option<f64>,
    /// Events delivered more than once.
    pub duplicates: usize,
    /// `nats` when topics were on NATS JetStream (or, for `w3-raw-nats`,
    /// the events went straight there); none when in herald's store.
    pub broker: Option<String>,
}

#[derive(Serialize, Default)]
pub struct Watchers {
    pub count: usize,
    pub events_received: usize,
    pub lag: Latency,
    pub herald_kib_per_watcher: f64,
}

impl Report {
    pub fn table(&self) -> String {
        if let Some(g) = &self.gateway {
            return gateway_table(g);
        }
        let (accept, e2e) = if self.events.is_some() { ("publish ", "delivery") } else { ("accept  ", "e2e     ") };
        let mut t = format!(
            "workload {}  N={} C={}\n  completed        {:>9.1} /s   ({:.2} s)\n  {accept} p50/p99 {:>8.2} / {:.2} ms\n",
            self.workload, self.n, self.c, self.completed_per_s, self.wall_s, self.accept.p50_ms, self.accept.p99_ms
        );
        if let Some(e) = &self.e2e {
            t.push_str(&format!("  {e2e} p50/p99 {:>8.2} / {:.2} ms\n", e.p50_ms, e.p99_ms));
        }
        if let Some(ev) = &self.events {
            let rate = ev.rate.map_or("as fast as it goes".to_string(), |r| format!("paced at {r:.0}/s"));
            let pushed = match (ev.push_batch, ev.push_in_flight) {
                (Some(b), Some(n)) => format!(", pushed {b} a request, {n} out at once"),
                (Some(b), None) => format!(", pushed {b} a request"),
                _ => String::new(),
            };
            let on = ev.broker.as_deref().map_or(String::new(), |b| format!(", on {b}"));
            t.push_str(&format!(
                "  events   published {} a request{pushed}, {rate}, {} delivered twice{on}\n",
                ev.batch, ev.duplicates
            ));
        }
        if let (Some(rss), Some(cpu)) = (self.herald_peak_rss_mb, self.herald_cpu_s) {
            t.push_str(&format!("  herald   peak RSS {rss:.1} MB, CPU {cpu:.2} s\n"));
        }
        if let Some(r) = &self.run {
            let cpu: Vec<String> = r.herald_cpu_s.iter().map(|c| format!("{c:.2}")).collect();
            t.push_str(&format!(
                "  store    {}, {} node(s); CPU s in the run: herald {} worker {:.2} client {:.2}",
                r.store,
                r.nodes,
                cpu.join(" + "),
                r.worker_cpu_s,
                r.client_cpu_s
            ));
            if let Some(p) = &r.postgres {
                t.push_str(&format!(
                    " postgres {:.2}\n  postgres {} commits, {:.1} an operation; an operation's scans/inserts/updates/deletes:",
                    p.cpu_s, p.commits, p.commits_per_op
                ));
                for (name, u) in p.per_op.iter().filter(|(_, u)| u.scans + u.inserted + u.updated + u.deleted >= 0.05) {
                    t.push_str(&format!(" {name} {:.1}/{:.1}/{:.1}/{:.1}", u.scans, u.inserted, u.updated, u.deleted));
                }
            }
            t.push('\n');
            if let (Some(all), Some(live)) = (&r.lag, &r.live_lag) {
                t.push_str(&format!(
                    "  lag      {} events p50/p99/max {:.2} / {:.2} / {:.2} ms; {} live {:.2} / {:.2} / {:.2} ms\n",
                    r.events, all.p50_ms, all.p99_ms, all.max_ms, r.live_events, live.p50_ms, live.p99_ms, live.max_ms
                ));
            }
            if let Some(x) = &r.cross_lag {
                t.push_str(&format!(
                    "  across   {} events seen on two nodes: the other node later by p50/p99/max {:.2} / {:.2} / {:.2} ms\n",
                    r.cross_events, x.p50_ms, x.p99_ms, x.max_ms
                ));
            }
        }
        if let Some(s) = &self.shed {
            t.push_str(&format!(
                "  clean    {:>9.1} /s   e2e p50/p99 {:.2} / {:.2} ms   worker in flight at most {}\n  shedding {}% of first attempts: {} of {} calls shed, worker in flight at most {}\n",
                s.clean_per_s, s.clean_e2e.p50_ms, s.clean_e2e.p99_ms, s.clean_peak_in_flight, s.percent, s.shed, s.calls, s.peak_in_flight
            ));
        }
        if let Some(w) = &self.watchers {
            t.push_str(&format!(
                "  watchers {}  events {}  lag p50/p99 {:.2} / {:.2} ms  memory {:.2} KiB each\n",
                w.count, w.events_received, w.lag.p50_ms, w.lag.p99_ms, w.herald_kib_per_watcher
            ));
        }
        t
    }
}

/// Each target's figures side by side, with what herald and nginx add to a
/// direct call.
fn gateway_table(targets: &[crate::gateway::TargetReport]) -> String {
    let mut t = String::from("workload gateway (load: herald bench's own, HTTP/1.1, paced)\n");
    t.push_str(&format!("  {:<22}", ""));
    for r in targets {
        t.push_str(&format!("{:>20}", r.name));
    }
    t.push('\n');
    let direct = targets.first();
    for (i, p) in targets.first().map(|d| d.paced.iter().enumerate().collect::<Vec<_>>()).unwrap_or_default() {
        t.push_str(&format!("  {:<22}", format!("{}/s p50/p99 ms", p.rate)));
        for r in targets {
            let l = r.paced.get(i).map(|p| p.latency).unwrap_or_default();
            t.push_str(&format!("{:>20}", format!("{:.2} / {:.2}", l.p50_ms, l.p99_ms)));
        }
        t.push_str(&format!("\n  {:<22}", "  added p50/p99 ms"));
        for r in targets {
            let (l, d) = (
                r.paced.get(i).map(|p| p.latency).unwrap_or_default(),
                direct.and_then(|d| d.paced.get(i)).map(|p| p.latency).unwrap_or_default(),
            );
            t.push_str(&format!("{:>20}", format!("{:+.2} / {:+.2}", l.p50_ms - d.p50_ms, l.p99_ms - d.p99_ms)));
        }
        t.push_str(&format!("\n  {:<22}", "  errors / late sends"));
        for r in targets {
            let (e, l) = r.paced.get(i).map_or((0, 0), |p| (p.errors, p.late));
            t.push_str(&format!("{:>20}", format!("{e} / {l}")));
        }
        t.push('\n');
    }
    t.push_str(&format!("  {:<22}", "max req/s"));
    for r in targets {
        t.push_str(&format!("{:>20.0}", r.max_per_s));
    }
    t.push_str(&format!("\n  {:<22}", "held conns: errors"));
    for r in targets {
        t.push_str(&format!("{:>20}", format!("{}: {}", r.held_connections, r.held_errors)));
    }
    t.push('\n');
    t
}
