//! `samplesam.yaml` agrees with the schema module the code, the local stack and the
//! tests use; and it keeps the promises of the ingest design (DLQ after 5 receives,
//! visibility >= 6x timeout, partial batch failures, least privilege).

use std::path::PathBuf;

use feedloop_aws::schema;
use feedloop_ingest::config::IngestConfig;
use serde_yaml::Value;

fn template() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samplesam.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(&path).expect("template exists"))
        .expect("template is YAML")
}

/// The resource a `!Ref` names.
fn ref_to(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        _ => None,
    }
}

fn res<'a>(t: &'a Value, name: &str) -> &'a Value {
    &t["Resources"][name]["Properties"]
}

/// The function's environment names exactly the variables its config reads (every
/// one it requires, no other); the variables, for checking their values.
fn assert_env_is<'a>(function: &'a Value, config_vars: &[&str]) -> &'a serde_yaml::Mapping {
    let vars = function["Properties"]["Environment"]["Variables"]
        .as_mapping()
        .unwrap();
    let mut names: Vec<&str> = vars.keys().map(|k| k.as_str().unwrap()).collect();
    names.sort_unstable();
    let mut want = config_vars.to_vec();
    want.sort_unstable();
    assert_eq!(
        names, want,
        "every variable the config requires, and no other"
    );
    vars
}

/// A function's HTTP events as sorted "METHOD /path" lines.
fn routes_of(function: &Value) -> Vec<String> {
    let events = function["Properties"]["Events"].as_mapping().unwrap();
    let mut routes: Vec<String> = events
        .values()
        .map(|e| {
            let p = &e["Properties"];
            format!(
                "{} {}",
                p["Method"].as_str().unwrap(),
                p["Path"].as_str().unwrap()
            )
        })
        .collect();
    routes.sort();
    routes
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("{key} is a list"))
        .iter()
        .map(|e| e[key].as_str().unwrap().to_owned())
        .collect()
}

fn num(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .expect("a number")
}

#[test]
fn table_matches_the_schema_module() {
    let t = template();
    let table = res(&t, "FeedbackTable");
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    let keys: Vec<String> = schema::key_schema()
        .iter()
        .map(|k| k.attribute_name().to_owned())
        .collect();
    assert_eq!(strings(&table["KeySchema"], "AttributeName"), keys);
    assert_eq!(strings(&table["KeySchema"], "KeyType"), ["HASH", "RANGE"]);
    let attrs: Vec<String> = schema::attribute_definitions()
        .iter()
        .map(|a| a.attribute_name().to_owned())
        .collect();
    assert_eq!(
        strings(&table["AttributeDefinitions"], "AttributeName"),
        attrs
    );
    let gsi = &table["GlobalSecondaryIndexes"][0];
    let want = schema::gsi1();
    assert_eq!(gsi["IndexName"], want.index_name());
    let gsi_keys: Vec<String> = want
        .key_schema()
        .iter()
        .map(|k| k.attribute_name().to_owned())
        .collect();
    assert_eq!(strings(&gsi["KeySchema"], "AttributeName"), gsi_keys);
    assert_eq!(
        gsi["Projection"]["ProjectionType"],
        want.projection()
            .unwrap()
            .projection_type()
            .unwrap()
            .as_str()
    );
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"],
        schema::TTL_ATTRIBUTE
    );
    assert_eq!(table["TimeToLiveSpecification"]["Enabled"], true);
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(table["SSESpecification"]["SSEEnabled"], true);
}

#[test]
fn queues_redrive_to_their_dlq_after_max_receive_count_and_outlast_the_function() {
    let t = template();
    let timeout = num(&res(&t, "IngestFunction")["Timeout"]);
    assert_eq!(timeout, i64::from(schema::INGEST_TIMEOUT_SECS));
    for (queue, dlq) in [
        ("IngestQueue", "IngestDeadLetterQueue"),
        ("FollowUpQueue", "FollowUpDeadLetterQueue"),
    ] {
        let q = res(&t, queue);
        assert_eq!(
            num(&q["RedrivePolicy"]["maxReceiveCount"]),
            i64::from(schema::MAX_RECEIVE_COUNT),
            "{queue}"
        );
        assert!(num(&q["VisibilityTimeout"]) >= 6 * timeout, "{queue}");
        assert_eq!(
            num(&q["VisibilityTimeout"]),
            i64::from(schema::INGEST_VISIBILITY_TIMEOUT_SECS)
        );
        assert_eq!(q["SqsManagedSseEnabled"], true);
        let target = format!("{:?}", q["RedrivePolicy"]["deadLetterTargetArn"]);
        assert!(target.contains(dlq), "{queue} redrives to {target}");
        assert_eq!(
            num(&res(&t, dlq)["MessageRetentionPeriod"]),
            i64::from(schema::DLQ_RETENTION_SECS)
        );
    }
}

#[test]
fn ingest_function_is_configured_completely_and_least_privileged() {
    let t = template();
    let f = &t["Resources"]["IngestFunction"];
    assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda");
    let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
    let manifest = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../functions/ingest/Cargo.toml"),
    )
    .unwrap();
    assert!(
        manifest.contains(&format!("name = \"{binary}\"")),
        "the template builds a binary the workspace has"
    );

    let vars = assert_env_is(f, &IngestConfig::VARS);

    // The encoder comes from the model layer, mounted where the function looks.
    assert_eq!(vars["FEEDLOOP_MODEL_DIR"], "/opt/all-MiniLM-L6-v2");
    assert_eq!(
        vars["FEEDLOOP_MULTILINGUAL_MODEL_DIR"],
        "/opt/multilingual-e5-small"
    );
    assert!(format!("{:?}", f["Properties"]["Layers"]).contains("ModelLayer"));
    assert_eq!(
        t["Resources"]["ModelLayer"]["Properties"]["ContentUri"],
        "models/"
    );

    let event = &f["Properties"]["Events"]["Feedback"]["Properties"];
    assert_eq!(event["FunctionResponseTypes"][0], "ReportBatchItemFailures");
    assert!(
        matches!(
            event["ScalingConfig"]["MaximumConcurrency"],
            Value::Tagged(_)
        ),
        "concurrency bounded by a parameter"
    );

    let mut actions = Vec::new();
    for policy in f["Properties"]["Policies"].as_sequence().unwrap() {
        for st in policy["Statement"].as_sequence().unwrap() {
            for a in st["Action"].as_sequence().unwrap() {
                actions.push(a.as_str().unwrap().to_owned());
            }
            assert!(
                !format!("{:?}", st["Resource"]).contains('*'),
                "no wildcard resources"
            );
        }
    }
    assert!(
        actions.iter().all(|a| !a.contains('*')),
        "no wildcard actions: {actions:?}"
    );
    assert_eq!(
        actions,
        [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "sqs:SendMessage"
        ]
    );
    assert_eq!(t["Globals"]["Function"]["Tracing"], "Active");
}

#[test]
fn followup_function_is_configured_completely_and_least_privileged() {
    let t = template();
    let f = &t["Resources"]["FollowUpFunction"];
    assert_eq!(f["Metadata"]["BuildProperties"]["Binary"], "followup");
    let manifest = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../functions/followup/Cargo.toml"),
    )
    .unwrap();
    assert!(manifest.contains("name = \"followup\""));
    assert_env_is(f, &feedloop_followup::config::FollowUpConfig::VARS);
    assert_eq!(
        t["Parameters"]["DeliveryMode"]["Default"], "dry-run",
        "a fresh deploy sends nothing"
    );
    let event = &f["Properties"]["Events"]["Intents"]["Properties"];
    assert_eq!(event["FunctionResponseTypes"][0], "ReportBatchItemFailures");

    let mut grants: Vec<(String, String)> = Vec::new();
    for policy in f["Properties"]["Policies"].as_sequence().unwrap() {
        for st in policy["Statement"].as_sequence().unwrap() {
            for a in st["Action"].as_sequence().unwrap() {
                let a = a.as_str().unwrap().to_owned();
                assert!(!a.contains('*'), "no wildcard actions: {a}");
                grants.push((st["Effect"].as_str().unwrap().to_owned(), a));
            }
        }
    }
    let allowed: Vec<&str> = grants
        .iter()
        .filter(|(e, _)| e == "Allow")
        .map(|(_, a)| a.as_str())
        .collect();
    assert_eq!(
        allowed,
        [
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
            "events:PutEvents",
            "sqs:SendMessage",
            "secretsmanager:GetSecretValue",
            "ses:SendEmail",
            "sns:Publish",
            "sns:CheckIfPhoneNumberIsOptedOut"
        ]
    );
    let ses = format!(
        "{:?}",
        f["Properties"]["Policies"][0]["Statement"][4]["Resource"]
    );
    assert!(
        ses.contains(":identity/") && ses.contains(":configuration-set/${SesConfigurationSet}"),
        "SendEmail only on the configured identity and the stack's configuration set: {ses}"
    );
    // A follow-up that ends failed raises an alarm on the dispatcher's own metric.
    let alarm = res(&t, "FollowUpsFailedAlarm");
    assert_eq!(
        (alarm["Namespace"].as_str(), alarm["MetricName"].as_str()),
        (Some("feedloop"), Some("FollowUpsFailed"))
    );
    assert!(feedloop_followup::DispatchReport::default()
        .emf(chrono::Utc::now())
        .contains("\"FollowUpsFailed\""));
    // Bounces and complaints come back through SNS into a queue with a DLQ and an
    // alarm (an outage hands them back, never drops them), then to this function.
    let r = &t["Resources"];
    let ses_events = &f["Properties"]["Events"]["SesNotifications"]["Properties"];
    assert!(
        format!("{:?}", ses_events["Queue"]).contains("SesEventsQueue"),
        "{:?}",
        ses_events["Queue"]
    );
    assert_eq!(
        ses_events["FunctionResponseTypes"][0],
        "ReportBatchItemFailures"
    );
    let sub = res(&t, "SesEventsSubscription");
    assert_eq!(
        (
            ref_to(&sub["TopicArn"]),
            sub["Protocol"].as_str(),
            sub["RawMessageDelivery"].as_bool()
        ),
        (Some("SesEventsTopic"), Some("sqs"), Some(true))
    );
    assert!(format!("{:?}", res(&t, "SesEventsQueue")["RedrivePolicy"])
        .contains("SesEventsDeadLetterQueue"));
    assert!(
        format!("{:?}", res(&t, "SesEventsDeadLetterAlarm")["Dimensions"])
            .contains("SesEventsDeadLetterQueue")
    );
    let dest = &r["SesBounceDestination"]["Properties"];
    assert_eq!(
        ref_to(&dest["ConfigurationSetName"]),
        Some("SesConfigurationSet")
    );
    assert_eq!(
        dest["EventDestination"]["MatchingEventTypes"],
        serde_yaml::from_str::<serde_yaml::Value>("[bounce, complaint]").unwrap()
    );
    assert_eq!(
        ref_to(&dest["EventDestination"]["SnsDestination"]["TopicARN"]),
        Some("SesEventsTopic")
    );
    assert_eq!(
        r["SesEventsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Principal"]
            ["Service"],
        "ses.amazonaws.com"
    );
}

#[test]
fn api_function_has_every_route_iam_auth_and_no_scan() {
    let t = template();
    let api = res(&t, "HttpApi");
    assert_eq!(api["Auth"]["DefaultAuthorizer"], "AWS_IAM");
    assert_eq!(api["Auth"]["EnableIamAuthorizer"], true);
    let f = &t["Resources"]["ApiFunction"];
    assert_eq!(f["Metadata"]["BuildProperties"]["Binary"], "api");
    assert_env_is(f, &feedloop_api::config::ApiConfig::VARS);
    let routes = routes_of(f);
    assert_eq!(
        routes,
        [
            "DELETE /customers/{id}",
            "GET /customers/{id}",
            "GET /customers/{id}/feedback",
            "GET /customers/{id}/followups",
            "GET /dashboard",
            "GET /openapi.json",
            "GET /reports/drivers",
            "GET /reports/followups",
            "GET /reports/nps",
            "GET /segments/{segment}",
            "PUT /customers/{id}/consent",
        ]
    );
    // Every staff route keeps the IAM default.
    for (name, e) in f["Properties"]["Events"].as_mapping().unwrap() {
        assert!(e["Properties"]["Auth"].is_null(), "{name:?}");
    }
    let policy = format!("{:?}", f["Properties"]["Policies"]);
    assert!(
        !policy.contains("Scan") && !policy.contains("dynamodb:*"),
        "{policy}"
    );
    // A transaction is authorised per item action: the erase deletes the profile and
    // updates its segment count in one.
    for action in ["dynamodb:DeleteItem", "dynamodb:UpdateItem"] {
        assert!(policy.contains(action), "{action} in {policy}");
    }
}

#[test]
fn the_public_unsubscribe_route_has_its_own_function_grants_and_throttle() {
    let t = template();
    let f = &t["Resources"]["UnsubscribeFunction"];
    assert_eq!(f["Metadata"]["BuildProperties"]["Binary"], "api");
    assert_eq!(
        f["Properties"]["Environment"]["Variables"]["ROUTES"],
        "public"
    );
    let events = f["Properties"]["Events"].as_mapping().unwrap();
    for e in events.values() {
        assert_eq!(e["Properties"]["Auth"]["Authorizer"], "NONE");
    }
    let routes = routes_of(f);
    assert_eq!(routes, ["GET /unsubscribe", "POST /unsubscribe"]);
    // Read and replace a profile, put a suppression entry: nothing else, nowhere else.
    let table = &f["Properties"]["Policies"][0]["Statement"][0];
    assert_eq!(
        strings_of(&table["Action"]),
        ["dynamodb:GetItem", "dynamodb:PutItem"]
    );
    assert_eq!(
        strings_of(&table["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]),
        ["CUST#*", "SUPP#*"]
    );
    // Its own throttle, apart from the staff routes' default.
    let api = res(&t, "HttpApi");
    for route in ["GET /unsubscribe", "POST /unsubscribe"] {
        let s = &api["RouteSettings"][route];
        assert!(num(&s["ThrottlingRateLimit"]) > 0, "{route}");
    }
}

fn strings_of(v: &Value) -> Vec<&str> {
    v.as_sequence()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn outputs_name_what_users_need() {
    let t = template();
    for o in [
        "IngestQueueUrl",
        "IngestDeadLetterQueueUrl",
        "FollowUpQueueUrl",
        "TableName",
        "FollowUpFunctionName",
        "ApiUrl",
    ] {
        assert!(!t["Outputs"][o]["Value"].is_null(), "output {o}");
    }
}

#[test]
fn build_and_deploy_pin_the_same_architecture_and_the_x86_check_build_is_never_deployed() {
    // GIVEN samconfig.toml and the Makefile
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let config: toml::Value =
        toml::from_str(&std::fs::read_to_string(root.join("samconfig.toml")).unwrap()).unwrap();
    let overrides = |cmd: &str| {
        config["default"][cmd]["parameters"]
            .get("parameter_overrides")
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("samconfig.toml: {cmd} pins no parameter_overrides"))
            .to_owned()
    };

    // THEN build and deploy name one architecture, the same one, that the template allows
    let (build, deploy) = (overrides("build"), overrides("deploy"));
    let arch = |o: &str| {
        o.split_whitespace()
            .find_map(|kv| kv.strip_prefix("Architecture="))
            .map(str::to_owned)
    };
    assert_eq!(arch(&build), arch(&deploy), "{build} vs {deploy}");
    let t = template();
    let allowed: Vec<String> = t["Parameters"]["Architecture"]["AllowedValues"]
        .as_sequence()
        .expect("Architecture has AllowedValues")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert!(allowed.contains(&arch(&build).unwrap()), "{allowed:?}");

    // AND the suite's x86_64 build goes to its own folder, not the one deploy reads
    let makefile = std::fs::read_to_string(root.join("Makefile")).unwrap();
    let check = makefile
        .lines()
        .find(|l| l.contains("sam build") && l.contains("Architecture=x86_64"))
        .expect("the Makefile's x86_64 check build");
    assert!(
        check.contains("--build-dir") && !check.contains(".aws-sam/build "),
        "{check}"
    );
}

#[test]
fn keys_come_from_a_generated_retained_secret_not_the_stack_id() {
    let t = template();
    let secret = &t["Resources"]["StackSecret"];
    assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
    // Without the secret the suppression list matches nobody: it outlives the stack.
    assert_retained(secret);
    let gen = &secret["Properties"]["GenerateSecretString"];
    assert!(
        num(&gen["PasswordLength"]) >= feedloop_core::keys::MIN_SECRET_LEN as i64,
        "{gen:?}"
    );
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samplesam.yaml"),
    )
    .unwrap();
    assert!(
        !text.contains("AWS::StackId"),
        "no key derives from the stack id"
    );
    for f in ["FollowUpFunction", "ApiFunction"] {
        let p = &t["Resources"][f]["Properties"];
        assert_eq!(
            ref_to(&p["Environment"]["Variables"]["SECRET_ARN"]),
            Some("StackSecret"),
            "{f}"
        );
        let reads: Vec<&Value> = p["Policies"][0]["Statement"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|st| st["Action"][0] == "secretsmanager:GetSecretValue")
            .collect();
        assert_eq!(reads.len(), 1, "{f} reads the secret");
        assert_eq!(ref_to(&reads[0]["Resource"]), Some("StackSecret"), "{f}");
    }
    // The link in every e-mail is the API's public route.
    let url = format!(
        "{:?}",
        t["Resources"]["FollowUpFunction"]["Properties"]["Environment"]["Variables"]
            ["UNSUBSCRIBE_URL"]
    );
    assert!(
        url.contains("https://${HttpApi}.execute-api.") && url.contains("/unsubscribe"),
        "{url}"
    );
}

#[test]
fn the_table_survives_a_stack_delete_and_a_replacing_update() {
    // The suppression list lives in it: losing it means contacting opted-out people.
    let t = template();
    let table = &t["Resources"]["FeedbackTable"];
    assert_retained(table);
    assert_eq!(table["Properties"]["DeletionProtectionEnabled"], true);
}

/// Kept when the stack is deleted and when an update would replace it.
fn assert_retained(resource: &Value) {
    assert_eq!(resource["DeletionPolicy"], "Retain", "{resource:?}");
    assert_eq!(resource["UpdateReplacePolicy"], "Retain", "{resource:?}");
}

#[test]
fn the_dedupe_record_outlives_a_message_parked_in_the_dlq() {
    // Feedback items are the dedupe records; their TTL is RetentionDays. A redrive after
    // they expired would apply the message again.
    let t = template();
    let dlq_days = num(&res(&t, "IngestDeadLetterQueue")["MessageRetentionPeriod"]) / 86_400;
    let min_days = num(&t["Parameters"]["RetentionDays"]["MinValue"]);
    assert!(
        min_days > dlq_days,
        "RetentionDays min {min_days} vs DLQ {dlq_days} days"
    );
    assert_eq!(min_days, i64::from(feedloop_kit::ports::MIN_RETENTION_DAYS));
}
