//! A service instance's registration: compared with the stored one (new,
//! a heartbeat, or a change of URL or metadata) and written over it.

use crate::{Registered, RegisteredInstance, Result, tx::Tx};

/// Stores `instance`; what it was against the one stored before. A
/// heartbeat keeps the registration's first `registered_at`.
pub async fn put_instance<T: Tx>(tx: &mut T, instance: &RegisteredInstance) -> Result<Registered> {
    let old = tx.instance(&instance.service, &instance.id).await?;
    let registered = instance.against(old.as_ref());
    match old {
        Some(old) if registered == Registered::Renewed => {
            tx.upsert_instance(&RegisteredInstance { registered_at: old.registered_at, ..instance.clone() }).await?
        }
        _ => tx.upsert_instance(instance).await?,
    }
    Ok(registered)
}
