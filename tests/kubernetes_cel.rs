//! The real kube-apiserver refuses bad ScaledObjects and ScaledJobs at `kubectl apply`, in
//! the words of `ebb run --check`, as KEDA's webhook does for KEDA's kinds: the CRDs carry
//! CEL rules (`x-kubernetes-validations`, from `src/kubernetes/cel_rules.rs`) whose messages
//! come from the same constants as ebb's validation (`src/spec/messages.rs`).
//!
//! Each case is one file with one problem. `ebb run --check` reads the file; `kubectl apply`
//! sends its ScaledObject or ScaledJob to the apiserver, which must refuse it at once, store
//! nothing, and say only what ebb says: every cause's words are one of ebb's messages, on the
//! same field (or, for a rule on the trigger list, on `spec.triggers`). Objects ebb accepts,
//! and the examples in the repository, must be accepted.
//!
//! The optional ValidatingAdmissionPolicy `deploy/policies` (one ScaledObject per target)
//! is tested here too, in the controller's TargetConflict words.

mod real_clients;
mod support;

use std::process::Output;
use std::time::Duration;

use ebb::runtime::ObjectKey;
use ebb::runtime::conflict::{Conflict, TargetKey};
use real_clients::cluster::{Cluster, Namespace};
use real_clients::text;

/// A trigger ebb accepts.
const TRIGGER: &str = "{name: backlog, scaler: {address: '127.0.0.1:9001'}}";

/// A ScaledObject or ScaledJob with one thing changed, written as a file `ebb run --check`
/// reads (a ScaledObject comes with the ProcessGroup it scales, so nothing else is wrong).
struct Manifest {
    kind: &'static str,
    name: String,
    target_name: String,
    containers: String,
    spec: Vec<String>,
    triggers: Vec<String>,
}

impl Manifest {
    fn scaled_object(name: &str) -> Self {
        Self::new("ScaledObject", name)
    }

    fn scaled_job(name: &str) -> Self {
        Self::new("ScaledJob", name)
    }

    fn new(kind: &'static str, name: &str) -> Self {
        Manifest {
            kind,
            name: name.to_owned(),
            target_name: "workers".to_owned(),
            containers: "[{name: job, image: busybox, command: [sleep, '1']}]".to_owned(),
            spec: Vec::new(),
            triggers: vec![TRIGGER.to_owned()],
        }
    }

    /// Adds YAML under `spec:` (lines indented relative to `spec`'s fields).
    fn with(mut self, yaml: &str) -> Self {
        self.spec.push(yaml.to_owned());
        self
    }

    fn triggers(mut self, triggers: &[&str]) -> Self {
        self.triggers = triggers
            .iter()
            .map(|trigger| (*trigger).to_owned())
            .collect();
        self
    }

    fn target_name(mut self, name: &str) -> Self {
        self.target_name = name.to_owned();
        self
    }

    fn containers(mut self, containers: &str) -> Self {
        self.containers = containers.to_owned();
        self
    }

    /// The ScaledObject or ScaledJob alone.
    fn object(&self) -> String {
        let mut yaml = format!(
            "apiVersion: ebb.dev/v1alpha1\nkind: {}\nmetadata:\n  name: {}\nspec:\n",
            self.kind, self.name
        );
        if self.kind == "ScaledObject" {
            yaml.push_str(&format!(
                "  scaleTargetRef: {{apiVersion: ebb.dev/v1alpha1, kind: ProcessGroup, name: {:?}}}\n",
                self.target_name
            ));
        } else {
            yaml.push_str(&format!(
                "  jobTargetRef:\n    template:\n      spec:\n        restartPolicy: Never\n        \
                 containers: {}\n",
                self.containers
            ));
        }
        for part in &self.spec {
            for line in part.lines() {
                yaml.push_str(&format!("  {line}\n"));
            }
        }
        if self.triggers.is_empty() {
            yaml.push_str("  triggers: []\n");
        } else {
            yaml.push_str("  triggers:\n");
            for trigger in &self.triggers {
                yaml.push_str(&format!("    - {trigger}\n"));
            }
        }
        yaml
    }

    /// The file `ebb run --check` reads.
    fn file(&self) -> String {
        let process_group = "apiVersion: ebb.dev/v1alpha1\nkind: ProcessGroup\nmetadata:\n  \
                             name: workers\nspec:\n  command: sleep\n  args: ['60']\n---\n";
        match self.kind {
            "ScaledObject" => format!("{process_group}{}", self.object()),
            _ => self.object(),
        }
    }
}

/// One problem: the field and its words.
#[derive(Debug, Clone)]
struct Problem {
    field: String,
    words: String,
}

impl Problem {
    /// Whether `self`, a cause from the apiserver, says `ebb`'s words about its field. The
    /// apiserver may put the value before the words (`Invalid value: 0: must be ...`), names a
    /// map key as `metadata[key]`, and names the list for a rule on the trigger list.
    fn says(&self, ebb: &Problem) -> bool {
        let same_words =
            self.words == ebb.words || self.words.ends_with(&format!(": {}", ebb.words));
        let field = normalize_field(&self.field);
        let same_field = ebb.field == field
            || ebb.field.starts_with(&format!("{field}["))
            || ebb.field.starts_with(&format!("{field}."));
        same_words && same_field
    }
}

/// `a.metadata[key]` as `a.metadata.key` (ebb's form); list indices stay.
fn normalize_field(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']') else {
            break;
        };
        let inside = &rest[open + 1..open + close];
        out.push_str(&rest[..open]);
        if inside.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&rest[open..=open + close]);
        } else {
            out.push('.');
            out.push_str(inside);
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// `ebb run --check` on the manifest's file: whether it passed, and its problems.
fn ebb_check(cluster: &Cluster, manifest: &Manifest) -> (bool, Vec<Problem>) {
    let path = cluster.dir().join(format!("{}.yaml", manifest.name));
    std::fs::write(&path, manifest.file()).expect("write the manifest");
    ebb_check_file(&path, manifest.kind, &manifest.name)
}

/// `ebb run --check` on `path`: whether it passed, and the problems of `kind` `name`.
fn ebb_check_file(path: &std::path::Path, kind: &str, name: &str) -> (bool, Vec<Problem>) {
    let output = support::run_ebb(&["run", "--check", "-f", &path.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let prefix = format!("{kind} {name:?}: ");
    let problems = stderr
        .lines()
        .filter_map(|line| line.split_once(&prefix).map(|(_, problem)| problem))
        .filter_map(|problem| problem.split_once(": "))
        .map(|(field, words)| Problem {
            field: field.to_owned(),
            words: words.to_owned(),
        })
        .collect();
    (output.status.success(), problems)
}

/// The causes of a refusal as kubectl prints them: `The ScaledObject "x" is invalid: ` and
/// one `field: words` cause, or one per `* ` line. The apiserver's own note that it skipped
/// the CEL rules because the schema refused the object (`<nil>: ...`) is left out.
fn causes(output: &Output) -> Vec<Problem> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let Some((_, body)) = stderr.split_once(" is invalid: ") else {
        return Vec::new();
    };
    let lines: Vec<&str> = if body.trim_start().starts_with("* ") || body.starts_with('\n') {
        body.lines()
            .filter_map(|line| line.strip_prefix("* "))
            .collect()
    } else {
        body.lines().take(1).collect()
    };
    lines
        .into_iter()
        .filter_map(|line| line.split_once(": "))
        .filter(|(field, _)| *field != "<nil>")
        .map(|(field, words)| Problem {
            field: field.to_owned(),
            words: words
                .strip_prefix("Invalid value: ")
                .unwrap_or(words)
                .to_owned(),
        })
        .collect()
}

/// `kubectl apply` of `object` into `namespace`.
fn apply(cluster: &Cluster, namespace: &Namespace, object: &str) -> Output {
    cluster.kubectl_with_input(&["apply", "-n", &namespace.name, "-f", "-"], object)
}

/// Whether `kind` `name` exists in `namespace`.
fn stored(cluster: &Cluster, namespace: &Namespace, kind: &str, name: &str) -> bool {
    let resource = format!("{}s.ebb.dev", kind.to_ascii_lowercase());
    cluster
        .kubectl(&["get", &resource, name, "-n", &namespace.name])
        .status
        .success()
}

/// Checks one bad manifest: `ebb run --check` reports `words`; the apiserver refuses the
/// object, stores nothing, and each of its causes is one of ebb's problems, one saying `words`.
fn assert_refused_in_ebbs_words(
    cluster: &Cluster,
    namespace: &Namespace,
    manifest: &Manifest,
    words: &str,
) -> Result<(), String> {
    let (passed, ebb) = ebb_check(cluster, manifest);
    if passed || !ebb.iter().any(|problem| problem.words.contains(words)) {
        return Err(format!(
            "{}: ebb run --check did not report {words:?}: {ebb:#?}",
            manifest.name
        ));
    }
    let output = apply(cluster, namespace, &manifest.object());
    if output.status.success() {
        return Err(format!("{}: the apiserver accepted it", manifest.name));
    }
    if stored(cluster, namespace, manifest.kind, &manifest.name) {
        return Err(format!("{}: refused, but stored", manifest.name));
    }
    let causes = causes(&output);
    if !causes.iter().any(|cause| cause.words.contains(words)) {
        return Err(format!(
            "{}: the apiserver did not say {words:?}: {}",
            manifest.name,
            text(&output)
        ));
    }
    let foreign: Vec<&Problem> = causes
        .iter()
        .filter(|cause| !ebb.iter().any(|problem| cause.says(problem)))
        .collect();
    if !foreign.is_empty() {
        return Err(format!(
            "{}: the apiserver said what ebb did not: {foreign:#?}\nebb: {ebb:#?}",
            manifest.name
        ));
    }
    Ok(())
}

/// Runs every case, then fails naming each case that failed.
fn assert_cases(cluster: &Cluster, namespace: &Namespace, cases: Vec<(Manifest, &str)>) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(manifest, words)| {
            assert_refused_in_ebbs_words(cluster, namespace, manifest, words).err()
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// The control plane with ebb's CRDs (cluster-wide, so serialized within this binary).
fn cluster_with_crds() -> (Cluster, std::sync::MutexGuard<'static, ()>) {
    let cluster = Cluster::running();
    let guard = cluster.exclusive();
    cluster.install_crds();
    (cluster, guard)
}

fn so(name: &str) -> Manifest {
    Manifest::scaled_object(name)
}

#[test]
fn scaled_object_rules_refuse_at_apply_in_the_words_of_ebb_run_check() {
    let (cluster, _cluster_wide) = cluster_with_crds();
    let namespace = cluster.namespace("cel-so");
    let behavior = |direction: &str, rules: &str| {
        format!(
            "advanced: {{horizontalPodAutoscalerConfig: {{behavior: {{{direction}: {rules}}}}}}}"
        )
    };
    let modifiers = |fields: &str| format!("advanced: {{scalingModifiers: {{{fields}}}}}");
    let long_formula = format!("formula: '{}backlog', target: 5", "backlog + ".repeat(30));
    let cases = vec![
        (
            so("min-above-max").with("minReplicaCount: 5\nmaxReplicaCount: 2"),
            "minReplicaCount 5 is above maxReplicaCount 2",
        ),
        // maxReplicaCount unset counts as its default, 100, as in ebb.
        (
            so("min-above-default-max").with("minReplicaCount: 150"),
            "minReplicaCount 150 is above maxReplicaCount 100",
        ),
        (
            so("idle-not-below-min").with("minReplicaCount: 2\nidleReplicaCount: 2"),
            "idleReplicaCount 2 must be below minReplicaCount 2",
        ),
        (
            so("idle-not-below-default-min").with("idleReplicaCount: 0"),
            "idleReplicaCount 0 must be below minReplicaCount 0",
        ),
        (
            so("polling-zero").with("pollingInterval: 0"),
            "must be at least 1 second",
        ),
        (
            so("max-zero").with("maxReplicaCount: 0"),
            "must be at least 1",
        ),
        (
            so("threshold-zero").with("fallback: {failureThreshold: 0, replicas: 1}"),
            "must be at least 1",
        ),
        (
            so("fallback-above-max")
                .with("maxReplicaCount: 3\nfallback: {failureThreshold: 2, replicas: 5}"),
            "fallback replicas 5 exceed maxReplicaCount 3",
        ),
        (
            so("window-too-long").with(&behavior("scaleUp", "{stabilizationWindowSeconds: 4000}")),
            "4000 is above the maximum of 3600 seconds",
        ),
        (
            so("policy-value-zero").with(&behavior(
                "scaleDown",
                "{policies: [{type: Pods, value: 0, periodSeconds: 60}]}",
            )),
            "must be greater than 0",
        ),
        (
            so("policy-period-long").with(&behavior(
                "scaleUp",
                "{policies: [{type: Percent, value: 50, periodSeconds: 1801}]}",
            )),
            "1801 is outside 1..=1800",
        ),
        (
            so("blank-target").target_name("  "),
            "the name of the workload to scale is required",
        ),
        (
            so("no-triggers").triggers(&[]),
            "at least one trigger is required",
        ),
        (
            so("fallback-formula-without-formula")
                .with("fallback: {failureThreshold: 2, replicas: 1, behavior: scalingModifiers}"),
            "behavior scalingModifiers needs advanced.scalingModifiers.formula",
        ),
        (
            so("formula-without-target").with(&modifiers("formula: backlog")),
            "required: the value of the formula one replica handles",
        ),
        (
            so("target-without-formula").with(&modifiers("target: '5'")),
            "required when scalingModifiers is set",
        ),
        (
            so("target-negative").with(&modifiers("formula: backlog, target: '-1.5'")),
            "must be a number above 0, got \"-1.5\"",
        ),
        (
            so("target-zero").with(&modifiers("formula: backlog, target: 0")),
            "must be a number above 0, got \"0\"",
        ),
        (
            so("target-text").with(&modifiers("formula: backlog, target: five")),
            "must be a number above 0, got \"five\"",
        ),
        (
            so("target-quote").with(&modifiers(r#"formula: backlog, target: 'say "5"'"#)),
            r#"must be a number above 0, got "say \"5\"""#,
        ),
        (
            so("activation-negative").with(&modifiers(
                "formula: backlog, target: 5, activationTarget: -1",
            )),
            "must be a number of at least 0, got \"-1\"",
        ),
        (
            so("formula-empty").with(&modifiers("formula: '  ', target: 5")),
            "the formula is empty",
        ),
        (
            so("formula-too-long").with(&modifiers(&long_formula)),
            "the formula is 307 bytes long, above the limit of 256",
        ),
        (
            so("formula-string").with(&modifiers(r#"formula: 'backlog + "1"', target: 5"#)),
            "strings are not supported in formulas",
        ),
        (
            so("formula-range").with(&modifiers("formula: 'backlog..3', target: 5")),
            "ranges (`..`) are not supported in formulas",
        ),
        (
            so("formula-unnamed-trigger")
                .with(&modifiers("formula: backlog, target: 5"))
                .triggers(&[TRIGGER, "{scaler: {address: '127.0.0.1:9002'}}"]),
            "every trigger needs a name when advanced.scalingModifiers.formula is set",
        ),
        (
            so("formula-trigger-named-formula")
                .with(&modifiers("formula: backlog, target: 5"))
                .triggers(&[
                    TRIGGER,
                    "{name: formula, scaler: {address: '127.0.0.1:9002'}}",
                ]),
            "\"formula\" is the composite metric's name",
        ),
    ];
    assert_cases(&cluster, &namespace, cases);
}

#[test]
fn trigger_rules_refuse_at_apply_in_the_words_of_ebb_run_check() {
    let (cluster, _cluster_wide) = cluster_with_crds();
    let namespace = cluster.namespace("cel-triggers");
    let second = "{name: other, scaler: {address: '127.0.0.1:9002'}}";
    let many: Vec<String> = (0..=100)
        .map(|index| format!("{{name: t{index}, scaler: {{address: '127.0.0.1:9001'}}}}"))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let cases = vec![
        (
            so("name-space").triggers(&["{name: 'my queue', scaler: {address: '127.0.0.1:9001'}}"]),
            "\"my queue\" is not a valid trigger name: letters, digits, '-', '_' and '.', \
             starting with a letter or digit, at most 63 characters",
        ),
        // Control characters are shown escaped, as ebb shows them, never raw.
        (
            so("name-escape").triggers(&["{name: \"q\\e[2J\", scaler: {address: '127.0.0.1:9001'}}"]),
            "\"q\\u{1b}[2J\" is not a valid trigger name",
        ),
        (
            so("name-newline").triggers(&["{name: \"q\\nr\\t\", scaler: {address: '127.0.0.1:9001'}}"]),
            "\"q\\nr\\t\" is not a valid trigger name",
        ),
        (
            so("duplicate").triggers(&[TRIGGER, TRIGGER]),
            "trigger name \"backlog\" is already used by triggers[0]",
        ),
        // An unnamed trigger is called `<type>-<index>`.
        (
            so("duplicate-of-unnamed").triggers(&[
                "{type: rabbitmq, scaler: {address: '127.0.0.1:9001'}}",
                "{name: rabbitmq-0, scaler: {address: '127.0.0.1:9002'}}",
            ]),
            "trigger name \"rabbitmq-0\" is already used by triggers[0]",
        ),
        (
            so("auth-empty-name").triggers(&[
                "{name: backlog, scaler: {address: '127.0.0.1:9001'}, authenticationRef: {name: ''}}",
            ]),
            "the name of the ScalerAuthentication is required",
        ),
        (
            so("empty-address").triggers(&["{name: backlog, scaler: {address: ''}}", second]),
            "trigger \"backlog\" needs a scaler address: set scaler.address, or use type \
             external with metadata.scalerAddress",
        ),
        (
            so("no-scaler-unnamed").triggers(&[second, "{metadata: {queueName: orders}}"]),
            "trigger \"trigger-1\" needs a scaler address",
        ),
        (
            so("keda-without-address").triggers(&["{name: ext, type: external, metadata: {}}"]),
            "trigger \"ext\" needs a scaler address",
        ),
        (
            so("keda-unnamed-without-address")
                .triggers(&["{type: external-push, metadata: {scalerAddress: ''}}"]),
            "trigger \"external-push-0\" needs a scaler address",
        ),
        (
            so("ca-twice").triggers(&[
                "{name: backlog, scaler: {address: '127.0.0.1:9001', tls: {caFile: /ca.pem, \
                 caSecretRef: {name: ca}}}}",
            ]),
            "give caSecretRef or caFile, not both",
        ),
        (
            so("cert-without-key").triggers(&[
                "{name: backlog, scaler: {address: '127.0.0.1:9001', tls: {certFile: /c.pem}}}",
            ]),
            "certFile and keyFile must be given together",
        ),
        (
            so("https-without-tls")
                .triggers(&["{name: backlog, scaler: {address: 'https://127.0.0.1:9001'}}"]),
            "https:// address needs a `scaler.tls` block (it may be empty: `tls: {}`)",
        ),
        (
            so("zero-timeout")
                .triggers(&["{name: backlog, scaler: {address: '127.0.0.1:9001', timeout: 0s}}"]),
            "must be greater than 0",
        ),
        (
            so("too-many-triggers").triggers(&many),
            "Too many: 101: must have at most 100 items",
        ),
    ];
    assert_cases(&cluster, &namespace, cases);
}

#[test]
fn scaled_job_rules_refuse_at_apply_in_the_words_of_ebb_run_check() {
    let (cluster, _cluster_wide) = cluster_with_crds();
    let namespace = cluster.namespace("cel-sj");
    let job = Manifest::scaled_job;
    let cases =
        vec![
        (
            job("min-above-max").with("minReplicaCount: 3\nmaxReplicaCount: 2"),
            "minReplicaCount 3 is above maxReplicaCount 2",
        ),
        (
            job("polling-zero").with("pollingInterval: 0"),
            "pollingInterval must be at least 1 (seconds)",
        ),
        (
            job("percentage-negative").with(
                "scalingStrategy: {strategy: custom, customScalingRunningJobPercentage: '-0.5'}",
            ),
            "expected a number >= 0 such as \"0.5\", got \"-0.5\"",
        ),
        (
            job("no-containers").containers("[]"),
            "the Job template needs at least one container",
        ),
        (job("no-triggers").triggers(&[]), "a ScaledJob needs at least one trigger"),
        (
            job("duplicate").triggers(&[TRIGGER, TRIGGER]),
            "trigger name \"backlog\" is already used by triggers[0]",
        ),
    ];
    assert_cases(&cluster, &namespace, cases);
}

/// Where the apiserver's words differ from ebb's, it still refuses the object, names the
/// field, and shows no raw control character.
#[test]
fn the_apiserver_refuses_in_its_own_words_where_the_schema_or_escaping_speaks() {
    let (cluster, _cluster_wide) = cluster_with_crds();
    let namespace = cluster.namespace("cel-own-words");
    // `maxLength` on trigger names: the schema refuses before any CEL rule runs.
    let long = so("name-too-long").triggers(&[&format!(
        "{{name: {}, scaler: {{address: '127.0.0.1:9001'}}}}",
        "q".repeat(64)
    )]);
    let (_, ebb) = ebb_check(&cluster, &long);
    assert!(
        ebb.iter()
            .any(|problem| problem.field == "spec.triggers[0].name"
                && problem.words.contains("at most 63 characters")),
        "{ebb:#?}"
    );
    let output = apply(&cluster, &namespace, &long.object());
    assert!(!output.status.success(), "accepted: {}", text(&output));
    let found = causes(&output);
    assert!(
        found
            .iter()
            .any(|cause| cause.field == "spec.triggers[0].name"
                && cause.words == "Too long: may not be more than 63 bytes"),
        "{found:#?}"
    );
    // A value with a control character CEL cannot escape as ebb does (`\u{7}`): the same
    // words with a stand-in for the value, never the character.
    let bell = so("target-bell")
        .with("advanced: {scalingModifiers: {formula: backlog, target: \"5\\a\"}}");
    let (_, ebb) = ebb_check(&cluster, &bell);
    assert!(
        ebb.iter()
            .any(|problem| problem.words == "must be a number above 0, got \"5\\u{7}\""),
        "{ebb:#?}"
    );
    let output = apply(&cluster, &namespace, &bell.object());
    assert!(!output.status.success(), "accepted: {}", text(&output));
    let refusal = String::from_utf8_lossy(&output.stderr);
    assert!(
        refusal.contains("must be a number above 0, got a value with control characters"),
        "{refusal}"
    );
}

#[test]
fn objects_ebb_accepts_are_accepted() {
    let (cluster, _cluster_wide) = cluster_with_crds();
    let namespace = cluster.namespace("cel-good");
    let good = [
        so("edges").with(
            "minReplicaCount: 1\nmaxReplicaCount: 1\nidleReplicaCount: 0\npollingInterval: 1\n\
             fallback: {failureThreshold: 1, replicas: 1, behavior: scalingModifiers}\n\
             advanced:\n  scalingModifiers: {formula: 'backlog + (other ?? 0)', target: ' 2.5 ', \
             activationTarget: 0, metricType: Value}\n  horizontalPodAutoscalerConfig:\n    \
             behavior:\n      scaleDown: {stabilizationWindowSeconds: 3600, policies: \
             [{type: Pods, value: 1, periodSeconds: 1800}]}",
        )
        .triggers(&[
            TRIGGER,
            "{name: other, scaler: {address: 'https://127.0.0.1:9002', timeout: 500ms, tls: {}}}",
        ]),
        so("defaults"),
        so("keda-form").triggers(&[
            "{type: external, metadata: {scalerAddress: '127.0.0.1:9001', enableTLS: 'false'}}",
            "{name: push, type: external-push, metadata: {scalerAddress: '127.0.0.1:9002'}}",
        ]),
        so("unnamed-triggers").triggers(&[
            "{scaler: {address: '127.0.0.1:9001'}}",
            "{scaler: {address: '127.0.0.1:9002'}}",
            "{name: trigger-2x, scaler: {address: '127.0.0.1:9003'}}",
        ]),
        Manifest::scaled_job("job").with(
            "minReplicaCount: 2\nmaxReplicaCount: 2\nscalingStrategy: {strategy: custom, \
             customScalingRunningJobPercentage: '0.5'}",
        ),
    ];
    for manifest in &good {
        let (passed, problems) = ebb_check(&cluster, manifest);
        assert!(
            passed,
            "{}: ebb run --check refused it: {problems:#?}",
            manifest.name
        );
        let output = apply(&cluster, &namespace, &manifest.object());
        assert!(
            output.status.success(),
            "{}: the apiserver refused what ebb accepts: {}",
            manifest.name,
            text(&output)
        );
    }
    // Every example in the repository.
    for example in [
        "deploy/examples/rabbitmq-consumer/scaledobject.yaml",
        "deploy/examples/azure-queue-functions/scaledobject.yaml",
        "deploy/examples/rabbitmq-job/scaledjob.yaml",
        "examples/quickstart/orders.yaml",
        "examples/azure-queue/functions.yaml",
        "examples/rabbitmq-job/orders-job.yaml",
        "examples/simulate/burst.yaml",
        "examples/simulate/formula.yaml",
        "examples/simulate/orders-job.yaml",
        "examples/simulate/trickle.yaml",
    ] {
        let objects = ebb_objects(&support::workspace_root().join(example));
        assert!(
            !objects.is_empty(),
            "{example} holds no ScaledObject or ScaledJob"
        );
        for object in objects {
            let output = cluster.kubectl_with_input(
                &[
                    "apply",
                    "--dry-run=server",
                    "-n",
                    &namespace.name,
                    "-f",
                    "-",
                ],
                &object,
            );
            assert!(output.status.success(), "{example}: {}", text(&output));
        }
    }
}

/// The ScaledObject and ScaledJob documents of a YAML file, as JSON without a namespace.
fn ebb_objects(path: &std::path::Path) -> Vec<String> {
    let file = std::fs::read_to_string(path).expect("read the file");
    file.split("\n---")
        .filter_map(|document| serde_norway::from_str::<serde_json::Value>(document).ok())
        .filter(|document| {
            document["apiVersion"] == "ebb.dev/v1alpha1"
                && (document["kind"] == "ScaledObject" || document["kind"] == "ScaledJob")
        })
        .map(|mut document| {
            if let Some(metadata) = document["metadata"].as_object_mut() {
                metadata.remove("namespace");
            }
            document.to_string()
        })
        .collect()
}

/// The bad-input files the controller must refuse (`# cluster: yes`) that no CRD rule can
/// refuse, and why: the apiserver accepts them and the controller reports them.
const LEFT_TO_THE_CONTROLLER: [(&str, &str); 6] = [
    (
        "so-bad-timeout.yaml",
        "a duration's grammar and words are humantime's",
    ),
    (
        "so-enable-tls-maybe.yaml",
        "metadata values are unbounded: reading one per trigger costs more than allowed",
    ),
    ("so-formula-syntax.yaml", "needs the formula's parser"),
    (
        "so-formula-unknown-trigger.yaml",
        "needs the formula's parser",
    ),
    ("so-pause-yes.yaml", "CRD rules see no annotations"),
    (
        "so-paused-replicas-text.yaml",
        "CRD rules see no annotations",
    ),
];

/// The bad-input corpus (`tests/bad-input`): every file the controller must refuse is
/// refused at apply in ebb's words, or is one the apiserver cannot judge (and then accepts).
#[test]
fn the_bad_input_corpus_is_refused_at_apply_in_ebbs_words_or_left_to_the_controller() {
    let (cluster, _cluster_wide) = cluster_with_crds();
    let namespace = cluster.namespace("cel-corpus");
    let directory = support::workspace_root().join("tests/bad-input");
    let mut files: Vec<_> = std::fs::read_dir(&directory)
        .expect("read tests/bad-input")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            std::fs::read_to_string(path)
                .is_ok_and(|text| text.lines().any(|line| line == "# cluster: yes"))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{} cluster files", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        let file_name = file_name.unwrap_or_default();
        let left = LEFT_TO_THE_CONTROLLER
            .iter()
            .find(|(name, _)| *name == file_name);
        for object in ebb_objects(path) {
            let value: serde_json::Value = serde_json::from_str(&object).expect("JSON");
            let name = value["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let kind = value["kind"].as_str().unwrap_or_default().to_owned();
            let (_, ebb) = ebb_check_file(path, &kind, &name);
            let output = apply(&cluster, &namespace, &object);
            match (left, output.status.success()) {
                (Some(_), true) => {}
                (Some((_, why)), false) => failures.push(format!(
                    "{file_name}: listed as left to the controller ({why}), but refused: {}",
                    text(&output)
                )),
                (None, true) => failures.push(format!("{file_name}: accepted; ebb says {ebb:#?}")),
                (None, false) => {
                    let found = causes(&output);
                    let foreign: Vec<&Problem> = found
                        .iter()
                        .filter(|cause| !ebb.iter().any(|problem| cause.says(problem)))
                        .collect();
                    if found.is_empty() || !foreign.is_empty() {
                        failures.push(format!(
                            "{file_name}: not in ebb's words: {}\nebb: {ebb:#?}",
                            text(&output)
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `deploy/policies`, installed for one test and removed when it ends.
struct Policy<'a> {
    cluster: &'a Cluster,
}

impl<'a> Policy<'a> {
    fn install(cluster: &'a Cluster) -> Self {
        cluster.kubectl_ok(&[
            "apply",
            "--server-side",
            "--field-manager=ebb-tests",
            "-k",
            "deploy/policies",
        ]);
        Policy { cluster }
    }
}

impl Drop for Policy<'_> {
    fn drop(&mut self) {
        let _ = self
            .cluster
            .kubectl(&["delete", "--ignore-not-found", "-k", "deploy/policies"]);
    }
}

/// A ScaledObject `name` on `target` (`kind`, `apiVersion` as written; defaults when empty).
fn claim(name: &str, target: &str, extra: &str) -> String {
    format!(
        "apiVersion: ebb.dev/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: {name}\nspec:\n  \
         scaleTargetRef: {{name: {target}{extra}}}\n  triggers:\n    - {TRIGGER}\n"
    )
}

#[test]
fn the_policy_refuses_a_second_scaled_object_on_a_target_in_the_controllers_words() {
    let (cluster, _cluster_wide) = cluster_with_crds();
    let namespace = cluster.namespace("cel-policy");
    let ns = namespace.name.as_str();
    // Made before the policy: two objects on one target, which the policy must not lock.
    for name in ["legacy-a", "legacy-b"] {
        let output = apply(&cluster, &namespace, &claim(name, "legacy", ""));
        assert!(output.status.success(), "{}", text(&output));
    }
    let output = apply(&cluster, &namespace, &claim("first", "web", ""));
    assert!(output.status.success(), "{}", text(&output));
    let _policy = Policy::install(&cluster);
    // The controller's words for the same conflict.
    let words = Conflict::Target {
        target: TargetKey::new(ns, "apps/v1", "Deployment", "web"),
        owner: ObjectKey::new(ns, "first"),
    }
    .to_string();
    // The policy takes effect once the apiserver has loaded it and its parameters.
    support::wait_for(
        "the policy to refuse a second ScaledObject on deployment web",
        Duration::from_secs(60),
        || {
            !cluster
                .kubectl_with_input(
                    &["create", "--dry-run=server", "-n", ns, "-f", "-"],
                    &claim("second", "web", ""),
                )
                .status
                .success()
        },
    );
    for (name, extra) in [
        ("second", ""),
        ("second-v1beta2", ", apiVersion: apps/v1beta2"),
    ] {
        let output = apply(&cluster, &namespace, &claim(name, "web", extra));
        let refusal = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && refusal.trim_end().ends_with(&words),
            "{name}: expected a refusal ending in {words:?}, got: {}",
            text(&output)
        );
        assert!(!stored(&cluster, &namespace, "ScaledObject", name));
    }
    // Another kind or another name is another target.
    for (name, target, extra) in [
        (
            "statefulset",
            "web",
            ", kind: StatefulSet, apiVersion: apps/v1",
        ),
        ("api", "api", ""),
    ] {
        let output = apply(&cluster, &namespace, &claim(name, target, extra));
        assert!(output.status.success(), "{name}: {}", text(&output));
    }
    // Moving an object onto a claimed target: refused for the later one...
    let output = apply(&cluster, &namespace, &claim("api", "web", ""));
    assert!(
        !output.status.success() && String::from_utf8_lossy(&output.stderr).contains(&words),
        "{}",
        text(&output)
    );
    // ...but the earlier one ranks first, so ebb makes it the owner (as the controller does).
    let output = apply(&cluster, &namespace, &claim("first", "api", ""));
    assert!(output.status.success(), "{}", text(&output));
    // Objects that conflicted before the policy keep changing everything but their target
    // (so a blocked one can drop its finalizer and go).
    cluster.kubectl_ok(&[
        "annotate",
        "scaledobjects.ebb.dev",
        "legacy-b",
        "-n",
        ns,
        "note=kept",
    ]);
    cluster.kubectl_ok(&["delete", "scaledobjects.ebb.dev", "legacy-b", "-n", ns]);
}
