//! Telling people what happened: watchers live ([`hub`]), and channels
//! beyond the inbox, a signed webhook or an email ([`deliver`]). The inbox
//! itself is written by the store, in the transition that ends a step.

pub(crate) mod deliver;
pub mod hub;
