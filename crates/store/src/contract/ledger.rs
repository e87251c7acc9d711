//! A broker's ledger ([`crate::BrokerLedger`] over the store): seqs that
//! grow in claim order, dedupe only of confirmed publishes and only within
//! their window, a batch's repeats, redrives never duplicates, definitions
//! with every name ever put, scopes apart, and a scope dropped.

use std::{sync::Arc, time::Duration};

use herald_broker::{Claim, Claimed, Confirmed, Ledger};

use super::Harness;
use crate::BrokerLedger;

const WINDOW: Duration = Duration::from_secs(60);

fn ledger(h: &impl Harness) -> BrokerLedger {
    BrokerLedger(h.store())
}

pub fn claim(id: &str) -> Claim {
    Claim { source: "/s".into(), id: id.into(), fresh: false }
}

fn seq(c: Claimed) -> u64 {
    match c {
        Claimed::New(s) | Claimed::Duplicate(s) => s,
    }
}

/// Claims and confirms `ids` on `topic`, as a publish that went out.
pub async fn published(l: &dyn Ledger, scope: &str, topic: &str, ids: &[&str], window: Duration) -> Vec<Claimed> {
    let claims: Vec<Claim> = ids.iter().map(|id| claim(id)).collect();
    let got = l.claim(scope, topic, &claims).await.unwrap();
    let done: Vec<Confirmed> = claims
        .iter()
        .zip(&got)
        .filter_map(|(c, g)| match g {
            Claimed::New(seq) => Some(Confirmed { source: c.source.clone(), id: c.id.clone(), seq: *seq }),
            Claimed::Duplicate(_) => None,
        })
        .collect();
    l.confirm(scope, topic, &done, window).await.unwrap();
    got
}

pub async fn claims_take_seqs_that_grow_in_claim_order_and_only_a_confirmed_publish_makes_a_duplicate(
    h: &impl Harness,
) {
    let l = ledger(h);
    let first = l.claim("p", "t", &[claim("e1"), claim("e2")]).await.unwrap();
    let unconfirmed = l.claim("p", "t", &[claim("e1")]).await.unwrap();
    let sent = published(&l, "p", "t", &["e1"], WINDOW).await;
    let again = l.claim("p", "t", &[claim("e1"), claim("e3")]).await.unwrap();
    let other_topic = l.claim("p", "u", &[claim("e1")]).await.unwrap();
    let other_source = l.claim("p", "t", &[Claim { source: "/o".into(), ..claim("e1") }]).await.unwrap();

    assert!(matches!(first[..], [Claimed::New(a), Claimed::New(b)] if a >= 1 && b == a + 1), "{first:?}");
    assert!(matches!(unconfirmed[0], Claimed::New(_)), "a claim never confirmed swallows no republish");
    let Claimed::New(kept) = sent[0] else { panic!("{sent:?}") };
    assert!(seq(unconfirmed[0]) > seq(first[1]) && kept > seq(unconfirmed[0]), "seqs grow in claim order");
    assert_eq!(again[0], Claimed::Duplicate(kept), "the confirmed copy's seq");
    assert!(matches!(again[1], Claimed::New(s) if s > kept));
    assert!(matches!(other_topic[0], Claimed::New(_)), "dedupe is per topic");
    assert!(matches!(other_source[0], Claimed::New(_)), "and per source");
}

pub async fn a_batchs_second_copy_is_a_duplicate_and_a_redrive_never_is(h: &impl Harness) {
    let l = ledger(h);
    let got = l.claim("p", "t", &[claim("e1"), claim("e2"), claim("e1")]).await.unwrap();
    let sent = published(&l, "p", "t", &["e2"], WINDOW).await;
    let redrive =
        l.claim("p", "t", &[Claim { fresh: true, ..claim("e2") }, Claim { fresh: true, ..claim("e2") }]).await;

    assert_eq!(got[2], Claimed::Duplicate(seq(got[0])), "the batch's first copy");
    assert!(matches!(got[0], Claimed::New(_)) && matches!(got[1], Claimed::New(_)));
    let redrive = redrive.unwrap();
    assert!(matches!(redrive[..], [Claimed::New(a), Claimed::New(b)] if a > seq(sent[0]) && b == a + 1), "{redrive:?}");
}

pub async fn the_first_confirmed_copy_stays_and_is_forgotten_after_its_window(h: &impl Harness) {
    let l = ledger(h);
    let short = Duration::from_millis(300);
    let first = published(&l, "p", "t", &["e1"], short).await;
    // A republish racing the first: both went out, the first stays.
    let racing = l.claim("p", "t", &[claim("racing")]).await.unwrap();
    let late = Confirmed { source: "/s".into(), id: "e1".into(), seq: seq(racing[0]) };
    l.confirm("p", "t", &[late], short).await.unwrap();
    let within = l.claim("p", "t", &[claim("e1")]).await.unwrap();
    tokio::time::sleep(short + Duration::from_millis(50)).await;
    let after = l.claim("p", "t", &[claim("e1")]).await.unwrap();
    let forgotten = l.forget("p").await.unwrap();

    assert_eq!(within[0], Claimed::Duplicate(seq(first[0])));
    assert!(matches!(after[0], Claimed::New(_)), "the window has passed");
    assert_eq!(forgotten, 1);
    let again = published(&l, "p", "t", &["e1"], WINDOW).await;
    assert_eq!(l.claim("p", "t", &[claim("e1")]).await.unwrap()[0], Claimed::Duplicate(seq(again[0])));
}

/// A claimer on each ledger at once, each making `rounds` claims of two
/// new events; every claimer's seqs must grow. All the seqs, sorted.
pub async fn claimed_at_once(ledgers: Vec<Arc<dyn Ledger>>, rounds: usize) -> Vec<u64> {
    let claimers = ledgers.into_iter().enumerate().map(|(n, l)| {
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..rounds {
                let got = l.claim("p", "t", &[claim(&format!("{n}-{i}")), claim(&format!("{n}-{i}b"))]).await.unwrap();
                assert!(got.iter().all(|c| matches!(c, Claimed::New(_))), "{got:?}");
                seqs.extend(got.into_iter().map(seq));
            }
            seqs
        })
    });
    let mut all = Vec::new();
    for c in claimers {
        let seqs = c.await.unwrap();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "one claimer's seqs grow: {seqs:?}");
        all.extend(seqs);
    }
    all.sort_unstable();
    all
}

pub async fn claims_at_once_never_share_a_seq(h: &impl Harness) {
    let l: Arc<dyn Ledger> = Arc::new(ledger(h));
    let all = claimed_at_once(vec![l; 8], 10).await;
    assert_eq!(all, (1..=160).collect::<Vec<u64>>(), "every seq once, none skipped");
}

pub async fn definitions_are_put_read_listed_deleted_and_their_names_kept(h: &impl Harness) {
    let l = ledger(h);
    l.put_definition("p", "b", r#"{"topic":"t"}"#).await.unwrap();
    l.put_definition("p", "a", r#"{"topic":"t"}"#).await.unwrap();
    l.put_definition("p", "a", r#"{"topic":"u"}"#).await.unwrap();
    l.put_definition("q", "c", r#"{"topic":"t"}"#).await.unwrap();

    assert_eq!(l.definition("p", "a").await.unwrap().as_deref(), Some(r#"{"topic":"u"}"#), "the last put");
    assert_eq!(l.definition("p", "c").await.unwrap(), None, "scopes keep apart");
    let names = |v: Vec<(String, String)>| v.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert_eq!(names(l.definitions("p").await.unwrap()), ["a", "b"]);

    assert!(l.delete_definition("p", "b").await.unwrap());
    assert!(!l.delete_definition("p", "b").await.unwrap(), "gone already");
    assert!(!l.delete_definition("p", "never").await.unwrap());
    assert_eq!(l.definition("p", "b").await.unwrap(), None);
    assert_eq!(names(l.definitions("p").await.unwrap()), ["a"]);
    assert_eq!(l.names("p").await.unwrap(), ["a", "b"], "every name ever put");

    l.put_definition("p", "b", r#"{"topic":"t"}"#).await.unwrap();
    assert_eq!(names(l.definitions("p").await.unwrap()), ["a", "b"], "put again");
}

pub async fn a_dropped_scope_keeps_nothing_and_others_keep_theirs(h: &impl Harness) {
    let l = ledger(h);
    l.put_definition("p", "a", r#"{"topic":"t"}"#).await.unwrap();
    l.put_definition("q", "a", r#"{"topic":"t"}"#).await.unwrap();
    published(&l, "p", "t", &["e1"], WINDOW).await;
    let q = published(&l, "q", "t", &["e1"], WINDOW).await;

    l.drop_scope("p").await.unwrap();

    assert!(l.names("p").await.unwrap().is_empty());
    assert!(matches!(l.claim("p", "t", &[claim("e1")]).await.unwrap()[0], Claimed::New(1)), "seqs start again");
    assert_eq!(l.names("q").await.unwrap(), ["a"]);
    assert_eq!(l.claim("q", "t", &[claim("e1")]).await.unwrap()[0], Claimed::Duplicate(seq(q[0])));
}
