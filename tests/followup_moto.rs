//! Follow-up frequency caps are enforced atomically on the real DynamoDB protocol.

use std::sync::Arc;

use chrono::Duration;
use feedloop_aws::followups::{Claim, ClaimRequest};
use feedloop_aws::DynamoStore;
use feedloop_tests::harness::Stack;
use feedloop_tests::test_now;

fn request<'a>(feedback: &'a str, playbook: &'a str, days_later: i64) -> ClaimRequest<'a> {
    ClaimRequest {
        customer_id: "cust-1",
        feedback_id: feedback,
        playbook,
        now: test_now() + Duration::days(days_later),
        global_window: Duration::days(7),
        playbook_window: Duration::days(30),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_intents_for_one_customer_send_exactly_one() {
    let stack = Stack::start("caps").await;
    let store = Arc::new(DynamoStore::new(stack.ddb(), &stack.names.table, 365));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let feedback = format!("fb-{i}");
            store
                .claim_followup(&request(&feedback, "detractor_recovery", 0))
                .await
                .unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(
        outcomes.iter().filter(|c| **c == Claim::Granted).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(outcomes.iter().filter(|c| **c == Claim::Capped).count(), 19);

    // The same (feedback, playbook) never goes out twice, whatever the caps say.
    let mut again = Vec::new();
    for f in (0..20).map(|i| format!("fb-{i}")) {
        again.push(
            store
                .claim_followup(&request(&f, "detractor_recovery", 40))
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        again
            .iter()
            .filter(|c| **c == Claim::AlreadyClaimed)
            .count(),
        1,
        "{again:?}"
    );

    // After the global window another playbook may go out; the same playbook waits 30 days.
    let fresh = Stack::start("caps2").await;
    let other = DynamoStore::new(fresh.ddb(), &fresh.names.table, 365);
    assert_eq!(
        other
            .claim_followup(&request("a", "detractor_recovery", 0))
            .await
            .unwrap(),
        Claim::Granted
    );
    assert_eq!(
        other
            .claim_followup(&request("b", "promoter_review_ask", 3))
            .await
            .unwrap(),
        Claim::Capped
    );
    assert_eq!(
        other
            .claim_followup(&request("c", "promoter_review_ask", 8))
            .await
            .unwrap(),
        Claim::Granted
    );
    assert_eq!(
        other
            .claim_followup(&request("d", "detractor_recovery", 20))
            .await
            .unwrap(),
        Claim::Capped
    );
    assert_eq!(
        other
            .claim_followup(&request("e", "detractor_recovery", 31))
            .await
            .unwrap(),
        Claim::Granted
    );
}
