//! The subject's inbox: one notification per operation, rewritten (unread
//! again) in the transaction that made the news, and marked read on request.
//! Every change takes the subject's next version, which live streams resume
//! from.

use chrono::Utc;
use herald_core::{
    Operation,
    notify::{Channel, InboxChange, Notice, Notification},
};

use crate::{Error, Result, tx::Tx};

/// Rewrites the operation's notification when the transition's notice goes
/// to the inbox; the change, for the subject's live streams.
pub(super) async fn rewrite<T: Tx>(
    tx: &mut T,
    op: &Operation,
    notice: Option<Notice>,
) -> Result<Option<Box<(String, InboxChange)>>> {
    let (Some(notice), Some(subject)) = (notice, op.subject.as_deref()) else { return Ok(None) };
    if !notice.channels.contains(&Channel::Inbox) {
        return Ok(None);
    }
    let version = tx.next_version(subject).await?;
    let notification = Notification {
        id: Notification::id_for(&op.id),
        operation_id: op.id.clone(),
        notice,
        read: false,
        version,
        created_at: op.created_at,
        updated_at: Utc::now(),
    };
    tx.upsert_notification(subject, &notification).await?;
    let unread = tx.unread(subject).await?;
    Ok(Some(Box::new((subject.to_string(), InboxChange { notification, unread }))))
}

/// Marks unread notifications of `subject` read (one, or all with `None`);
/// each change, with the unread count after them all. An unknown or
/// already read id changes nothing.
pub async fn mark_read<T: Tx>(tx: &mut T, subject: &str, id: Option<&str>) -> Result<Vec<InboxChange>> {
    let ids = tx.unread_ids(subject, id).await?;
    let mut changed = Vec::with_capacity(ids.len());
    for nid in ids {
        let version = tx.next_version(subject).await?;
        let n = tx
            .mark_notification_read(&nid, version)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("notification {nid} vanished")))?;
        changed.push(n);
    }
    let unread = tx.unread(subject).await?;
    Ok(changed.into_iter().map(|notification| InboxChange { notification, unread }).collect())
}
