//! What the shop sells: its catalogue, and the basket checks every shop
//! step shares (the inventory reserves baskets, the payment prices them).

use std::collections::BTreeMap;

use herald_sdk::step::StepReply;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::words::Lang;

/// (sku, price in cents, starting stock).
pub const CATALOG: [(&str, u64, u32); 3] = [("tea", 450, 100), ("mug", 1200, 50), ("kettle", 3900, 10)];

#[derive(Debug, Deserialize)]
pub struct Item {
    pub sku: String,
    pub qty: u32,
}

/// Quantity per sku, refusing (in `lang`) an empty basket, zero
/// quantities and skus we do not sell.
pub fn totals(items: &[Item], lang: Lang) -> Result<BTreeMap<String, u32>, StepReply> {
    if items.is_empty() {
        return Err(StepReply::failed(lang.basket_empty()));
    }
    let mut wanted = BTreeMap::new();
    for Item { sku, qty } in items {
        if !CATALOG.iter().any(|(s, _, _)| s == sku) {
            return Err(StepReply::failed(lang.not_sold(sku)));
        }
        if *qty == 0 {
            return Err(StepReply::failed(lang.at_least_one(sku)));
        }
        let total: &mut u32 = wanted.entry(sku.clone()).or_default();
        *total = total.saturating_add(*qty);
    }
    Ok(wanted)
}

/// Total price in cents; every sku was checked by [`totals`].
pub fn price(wanted: &BTreeMap<String, u32>) -> u64 {
    wanted
        .iter()
        .map(|(sku, qty)| CATALOG.iter().find(|(s, _, _)| s == sku).map_or(0, |(_, cents, _)| cents * u64::from(*qty)))
        .sum()
}

pub fn as_items(wanted: &BTreeMap<String, u32>) -> Vec<Value> {
    wanted.iter().map(|(sku, qty)| json!({ "sku": sku, "qty": qty })).collect()
}
