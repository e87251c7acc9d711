use proptest::prelude::*;

use super::*;

fn cfg() -> CircuitConfig {
    CircuitConfig { min_requests: 10, ..CircuitConfig::default() }
}

fn fail(b: &mut Circuit, now: Instant, c: &CircuitConfig) {
    let t = b.admit(now, c).unwrap();
    b.record(t, true, now, c);
}

fn succeed(b: &mut Circuit, now: Instant, c: &CircuitConfig) {
    let t = b.admit(now, c).unwrap();
    b.record(t, false, now, c);
}

#[test]
fn consecutive_failures_open_it_and_its_probes_close_it_again() {
    let (c, t0) = (cfg(), Instant::now());
    let mut b = Circuit::new(t0);
    for _ in 0..4 {
        fail(&mut b, t0, &c);
    }
    assert_eq!(b.name(t0), "closed", "four are not five");
    fail(&mut b, t0, &c);
    assert_eq!(b.admit(t0, &c), Err(Refused::Open { retry_after: Duration::from_secs(5) }));
    assert_eq!(b.reason(), Some("5 calls in a row failed"));

    let later = t0 + Duration::from_secs(5);
    let probes: Vec<Ticket> = (0..3).map(|_| b.admit(later, &c).expect("three probes go")).collect();
    assert_eq!(b.admit(later, &c), Err(Refused::Probing), "only three at a time");
    b.record(probes[0], false, later, &c);
    b.record(probes[1], false, later, &c);
    assert_eq!(b.name(later), "half_open", "it waits for every probe");
    b.record(probes[2], false, later, &c);
    assert_eq!(b.name(later), "closed");
    assert_eq!(b.reason(), None);
}

#[test]
fn failed_probes_open_it_for_twice_as_long_up_to_the_cap() {
    let (c, t0) = (cfg(), Instant::now());
    let mut b = Circuit::new(t0);
    for _ in 0..5 {
        fail(&mut b, t0, &c);
    }
    let mut now = t0;
    for expected in [10, 20, 30, 30] {
        now += b.retry_after(now).unwrap();
        let probes: Vec<Ticket> = (0..3).map(|_| b.admit(now, &c).unwrap()).collect();
        b.record(probes[0], true, now, &c);
        assert_eq!(b.name(now), "half_open", "one failed probe of three is under the rate");
        b.record(probes[1], true, now, &c);
        assert_eq!(b.retry_after(now), Some(Duration::from_secs(expected)));
        assert_eq!(b.reason(), Some("2 of 2 probes failed"));
        b.record(probes[2], false, now, &c); // an answer from before it reopened
        assert_eq!(b.name(now), "open");
    }
}

#[test]
fn a_high_failure_rate_over_the_window_opens_it_without_a_run_of_failures() {
    let (c, t0) = (cfg(), Instant::now());
    let mut b = Circuit::new(t0);
    for i in 0..10 {
        if i % 2 == 1 { fail(&mut b, t0, &c) } else { succeed(&mut b, t0, &c) }
    }
    assert_eq!(b.name(t0), "open");
    assert_eq!(b.reason(), Some("5 of the last 10 calls failed"));
}

#[test]
fn answers_slide_out_of_the_window() {
    let (c, t0) = (cfg(), Instant::now());
    let mut b = Circuit::new(t0);
    for i in 0..9 {
        if i % 2 == 0 { fail(&mut b, t0, &c) } else { succeed(&mut b, t0, &c) }
    }
    let later = t0 + Duration::from_secs(11);
    fail(&mut b, later, &c);
    assert_eq!(b.name(later), "closed", "old answers no longer count");
}

#[test]
fn a_probe_that_never_answered_frees_its_slot() {
    let (c, t0) = (CircuitConfig { half_open_probes: 1, ..cfg() }, Instant::now());
    let mut b = Circuit::new(t0);
    for _ in 0..5 {
        fail(&mut b, t0, &c);
    }
    let later = t0 + Duration::from_secs(5);
    let probe = b.admit(later, &c).unwrap();
    assert_eq!(b.admit(later, &c), Err(Refused::Probing));
    b.release(probe);
    assert!(b.admit(later, &c).is_ok(), "its slot went to the next caller");
}

#[derive(Debug, Clone)]
enum Act {
    Admit,
    Answer(usize, bool),
    Release(usize),
    Wait(u64),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => Just(Act::Admit),
        4 => (any::<usize>(), prop::bool::weighted(0.4)).prop_map(|(i, f)| Act::Answer(i, f)),
        1 => any::<usize>().prop_map(Act::Release),
        2 => (0u64..40_000).prop_map(Act::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_breaker_keeps_its_promises_under_any_history(
        probes in 1u32..6,
        acts in prop::collection::vec(act(), 0..300),
    ) {
        let c = CircuitConfig { half_open_probes: probes, ..cfg() };
        let t0 = Instant::now();
        let (mut now, mut b) = (t0, Circuit::new(t0));
        let mut out: Vec<Ticket> = Vec::new();
        for a in acts {
            match a {
                Act::Admit => match b.admit(now, &c) {
                    Ok(t) => out.push(t),
                    Err(Refused::Open { retry_after }) => {
                        prop_assert!(retry_after > Duration::ZERO && retry_after <= c.max_open_for.0);
                        prop_assert_eq!(b.name(now), "open");
                    }
                    Err(Refused::Probing) => {
                        // Every probe of this half-open spell has been let through.
                        let State::HalfOpen { admitted, .. } = b.state() else { panic!("probing while {:?}", b.state()) };
                        prop_assert_eq!(admitted, probes, "refused with a probe slot free");
                    }
                },
                Act::Answer(i, failed) if !out.is_empty() => {
                    let t = out.remove(i % out.len());
                    b.record(t, failed, now, &c);
                }
                Act::Release(i) if !out.is_empty() => {
                    let t = out.remove(i % out.len());
                    b.release(t);
                }
                Act::Wait(ms) => now += Duration::from_millis(ms),
                _ => {}
            }
            if let State::HalfOpen { admitted, succeeded, failed } = b.state() {
                prop_assert!(admitted <= probes, "more probes out than allowed");
                prop_assert!(succeeded + failed <= admitted);
            }
            prop_assert_eq!(b.reason().is_some(), b.state() != State::Closed);
        }
        // Whatever happened, a healthy service closes it again: wait out
        // the open time and let every probe succeed.
        for t in out.drain(..) { b.release(t); }
        for _ in 0..3 {
            if let Some(wait) = b.retry_after(now) { now += wait; }
            let taken: Vec<Ticket> = std::iter::from_fn(|| b.admit(now, &c).ok()).take(probes as usize).collect();
            for t in taken { b.record(t, false, now, &c); }
        }
        prop_assert_eq!(b.name(now), "closed");
    }
}
