use herald_core::signature::{self, VerifyError};
use herald_server::config::ServiceConfig;
use serde_json::json;

use crate::helpers::*;

const SECRET: &str = "payments-secret-0123456789";

/// Charges with PUT (and a query), refunds with POST; `ship` fails for
/// good, so the charge is undone.
const PAY: &str = r#"
name = "pay"
[[steps]]
name = "charge"
call = { service = "svc", method = "PUT", path = "/payment/charge?currency=eur" }
compensate = { service = "svc", method = "POST", path = "/payment/refund" }
[[steps]]
name = "ship"
call = { service = "svc", path = "/ship" }
"#;

#[tokio::test]
async fn step_calls_and_compensations_are_signed_for_their_method_path_and_query() {
    let svc = StepService::start().await;
    svc.on("/ship", Reply::Status(422, "no address"));
    let app = spawn_app_with(tempfile::tempdir().unwrap(), &[PAY], &svc, |c| {
        let mut payments = ServiceConfig::new(vec![svc.url.clone()]);
        payments.secret = Some(SECRET.into());
        c.services.insert("svc".into(), payments);
    })
    .await;
    let id = app.start_id("pay", json!({})).await;
    assert_eq!(app.wait_final(&id).await["status"], "failed");

    let now = chrono::Utc::now().timestamp();
    let verify = |call: &Call, method: &str, target: &str| {
        signature::verify(SECRET.as_bytes(), &call.signature, method, target, &call.raw, now)
    };
    let charge = &svc.calls("/payment/charge")[0];
    let refund = &svc.calls("/payment/refund")[0];
    assert_eq!((charge.method.as_str(), charge.target.as_str()), ("PUT", "/payment/charge?currency=eur"));
    assert_eq!(verify(charge, "PUT", "/payment/charge?currency=eur"), Ok(()));
    assert_eq!(verify(refund, "POST", "/payment/refund"), Ok(()));
    assert!(charge.signature.contains("v2=") && !charge.signature.contains("v1="), "{}", charge.signature);

    assert_eq!(verify(charge, "PUT", "/payment/refund"), Err(VerifyError::Mismatch), "not at another endpoint");
    assert_eq!(verify(charge, "POST", "/payment/charge?currency=eur"), Err(VerifyError::Mismatch));
    assert_eq!(verify(charge, "PUT", "/payment/charge?currency=usd"), Err(VerifyError::Mismatch));
}
