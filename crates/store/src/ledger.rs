//! The store as a broker's ledger ([`herald_broker::Ledger`]): RabbitMQ's
//! publish dedupe, `seq` and subscription definitions, in tables every
//! herald process sharing the store reads, so they outlive any stop of the
//! broker server, clean or not. The backends do rows; what a batch's
//! repeats are is decided here, once.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::Utc;
use herald_broker::{Claim, Claimed, Confirmed, Ledger};

use crate::{Error, Store};

pub struct BrokerLedger(pub Arc<dyn Store>);

fn broker_error(e: Error) -> herald_broker::Error {
    herald_broker::Error::Storage(e.to_string())
}

/// For each claim, the index of an earlier one of the same source and id
/// in the batch (fresh claims have none, and are none's).
fn repeats(claims: &[Claim]) -> Vec<Option<usize>> {
    let mut first: HashMap<(&str, &str), usize> = HashMap::new();
    claims
        .iter()
        .enumerate()
        .map(|(i, c)| match c.fresh {
            true => None,
            false => match first.get(&(c.source.as_str(), c.id.as_str())) {
                Some(&j) => Some(j),
                None => {
                    first.insert((&c.source, &c.id), i);
                    None
                }
            },
        })
        .collect()
}

/// What a backend answers claims with: each `seq` it found a duplicate,
/// the others new, in order, the last of them `last`.
pub(crate) fn answered(found: Vec<Option<i64>>, last: i64) -> Vec<Claimed> {
    let new = found.iter().filter(|f| f.is_none()).count() as i64;
    let mut next = last - new;
    found
        .into_iter()
        .map(|f| match f {
            Some(seq) => Claimed::Duplicate(seq as u64),
            None => {
                next += 1;
                Claimed::New(next as u64)
            }
        })
        .collect()
}

#[async_trait]
impl Ledger for BrokerLedger {
    /// A batch's second copy of an event is a duplicate of its first, as
    /// on the store's own topics; only first copies reach the store.
    async fn claim(&self, scope: &str, topic: &str, claims: &[Claim]) -> herald_broker::Result<Vec<Claimed>> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let repeats = repeats(claims);
        let firsts: Vec<Claim> =
            claims.iter().zip(&repeats).filter(|(_, r)| r.is_none()).map(|(c, _)| c.clone()).collect();
        let got = self.0.claim_seqs(scope, topic, &firsts, Utc::now()).await.map_err(broker_error)?;
        if got.len() != firsts.len() {
            return Err(herald_broker::Error::Storage("the store answered another number of claims".into()));
        }
        let mut got = got.into_iter();
        let mut out: Vec<Claimed> = Vec::with_capacity(claims.len());
        for r in repeats {
            out.push(match r {
                Some(j) => match out[j] {
                    Claimed::New(seq) | Claimed::Duplicate(seq) => Claimed::Duplicate(seq),
                },
                None => got.next().expect("counted"),
            });
        }
        Ok(out)
    }

    async fn confirm(
        &self,
        scope: &str,
        topic: &str,
        published: &[Confirmed],
        window: Duration,
    ) -> herald_broker::Result<()> {
        let mut seen = std::collections::HashSet::new();
        let once: Vec<Confirmed> =
            published.iter().filter(|p| seen.insert((p.source.as_str(), p.id.as_str()))).cloned().collect();
        if once.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let expires = now + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        self.0.confirm_publishes(scope, topic, &once, now..expires).await.map_err(broker_error)
    }

    async fn forget(&self, scope: &str) -> herald_broker::Result<u64> {
        self.0.forget_publishes(scope, Utc::now()).await.map_err(broker_error)
    }

    async fn put_definition(&self, scope: &str, name: &str, spec: &str) -> herald_broker::Result<()> {
        self.0.put_definition(scope, name, spec).await.map_err(broker_error)
    }

    async fn delete_definition(&self, scope: &str, name: &str) -> herald_broker::Result<bool> {
        self.0.delete_definition(scope, name).await.map_err(broker_error)
    }

    async fn definition(&self, scope: &str, name: &str) -> herald_broker::Result<Option<String>> {
        self.0.definition(scope, name).await.map_err(broker_error)
    }

    async fn definitions(&self, scope: &str) -> herald_broker::Result<Vec<(String, String)>> {
        let all = self.0.definitions(scope).await.map_err(broker_error)?;
        Ok(all.into_iter().filter_map(|(name, spec)| Some((name, spec?))).collect())
    }

    async fn names(&self, scope: &str) -> herald_broker::Result<Vec<String>> {
        let all = self.0.definitions(scope).await.map_err(broker_error)?;
        Ok(all.into_iter().map(|(name, _)| name).collect())
    }

    async fn drop_scope(&self, scope: &str) -> herald_broker::Result<()> {
        self.0.drop_ledger(scope).await.map_err(broker_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(id: &str, fresh: bool) -> Claim {
        Claim { source: "/s".into(), id: id.into(), fresh }
    }

    #[test]
    fn new_claims_take_the_seqs_up_to_the_last_in_order() {
        let got = answered(vec![None, Some(3), None], 11);
        assert_eq!(got, [Claimed::New(10), Claimed::Duplicate(3), Claimed::New(11)]);
    }

    #[test]
    fn a_batch_repeat_points_at_its_first_copy_and_fresh_claims_repeat_nothing() {
        let claims = [claim("a", false), claim("b", false), claim("a", false), claim("a", true), claim("b", false)];
        assert_eq!(repeats(&claims), [None, None, Some(0), None, Some(1)]);
    }
}
