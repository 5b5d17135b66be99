//! The seed's demo 1 in the cluster, end to end, on the real control plane
//! (`scripts/cluster.sh`: kube-apiserver, the Deployment, ReplicaSet, Job and garbage
//! collector controllers, the scheduler and the kubelet stand-in), with the real RabbitMQ
//! that `scripts/services.sh` runs and the RabbitMQ scaler sidecar binary.
//!
//! - ScaledObject: the quickstart's object (`examples/quickstart/orders.yaml`: one replica per
//!   5 messages, at most 30) scaling a consumer Deployment. The stand-in runs no containers, so
//!   the test is the consumers' work: every [`DRAIN_PERIOD`] it takes one message per Running
//!   Pod it lists, and credits it to that Pod. 100 messages take the Deployment, its
//!   ReplicaSet and its Running Pods 0 -> 20 -> 0.
//! - ScaledJob: `examples/rabbitmq-job/orders-job.yaml`, one Job per message. Each Job's Pod
//!   takes its message (the test takes one when it first sees the Pod running) and completes
//!   after a second (the stand-in's annotations); a backlog of 7 gives 7 Jobs, the history
//!   limit prunes the oldest, and the garbage collector deletes their Pods.
//!
//! The controller runs in the test process (`tests/in_process_controller`) as a
//! ServiceAccount with `deploy/`'s RBAC, in a namespace of its own: its Lease there, watching
//! only there. A request the authorizer refuses fails the test.

mod in_process_controller;
mod real_clients;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use in_process_controller::{InProcessController, test_args};
use real_clients::cluster::{AuditMark, Cluster};

/// The broker's URL (guest works on loopback only, which is where everything here runs).
const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// kube-controller-manager's garbage collector as the audit log names it.
const GARBAGE_COLLECTOR: &str = "system:serviceaccount:kube-system:generic-garbage-collector";
/// A Running consumer Pod takes one message per period: the quickstart worker's pace
/// (`WORK_TIME`) halved, so the demo drains in seconds.
const DRAIN_PERIOD: Duration = Duration::from_millis(500);

/// A queue of its own on the broker, deleted on drop. The quickstart publisher declares it,
/// fills it and reads its depth over AMQP; the management API's `get` consumes from it.
struct Queue {
    name: String,
}

impl Queue {
    fn new(prefix: &str) -> Self {
        support::require_service("RabbitMQ", "127.0.0.1:5672");
        support::require_service("RabbitMQ management", "127.0.0.1:15672");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or_default();
        let queue = Self {
            name: format!("{prefix}-{}-{nanos:08x}", std::process::id()),
        };
        queue.publish(0);
        queue
    }

    fn publisher(&self, args: &[&str]) -> String {
        let output = Command::new(support::binary(
            "ebb-quickstart-publisher",
            "ebb-quickstart-publisher",
        ))
        .args(["--amqp-url", AMQP_URL, "--queue", &self.name])
        .args(args)
        .output()
        .expect("run ebb-quickstart-publisher");
        assert!(
            output.status.success(),
            "ebb-quickstart-publisher {args:?}: {}",
            real_clients::text(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Publishes `count` messages (ids `<prefix>-<n>`), confirmed by the broker.
    fn publish(&self, count: u32) {
        self.publisher(&["--count", &count.to_string()]);
    }

    /// Messages ready in the queue, read over AMQP (the management API's figures lag).
    fn ready(&self) -> u64 {
        let depth = self.publisher(&["--print-depth"]);
        depth
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("--print-depth printed {depth:?}"))
    }

    /// Takes (and acks) up to `count` messages; their ids.
    async fn take(&self, count: usize) -> Vec<String> {
        if count == 0 {
            return Vec::new();
        }
        let body = json!({"count": count, "ackmode": "ack_requeue_false", "encoding": "auto"});
        let output = tokio::process::Command::new("curl")
            .args(["-sf", "-u", "guest:guest", "-X", "POST"])
            .args([
                "-H",
                "content-type: application/json",
                "-d",
                &body.to_string(),
            ])
            .arg(format!(
                "http://127.0.0.1:15672/api/queues/%2F/{}/get",
                self.name
            ))
            .output()
            .await
            .expect("run curl");
        assert!(
            output.status.success(),
            "taking messages from {}: {}",
            self.name,
            real_clients::text(&output)
        );
        let messages: Vec<Value> =
            serde_json::from_slice(&output.stdout).expect("the management API answers JSON");
        messages
            .iter()
            .map(|message| {
                message["properties"]["message_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let _ = Command::new(support::target_dir().join("debug/ebb-quickstart-publisher"))
            .args([
                "--amqp-url",
                AMQP_URL,
                "--queue",
                &self.name,
                "--delete-queue",
            ])
            .output();
    }
}

/// The RabbitMQ scaler sidecar, as `ebb run` and the chart run it: its own process on a
/// loopback port; killed on drop.
fn rabbitmq_scaler() -> (support::KillOnDrop, String) {
    let address = support::free_address();
    let (child, _log) = support::spawn(
        "ebb-rabbitmq-scaler",
        "ebb-rabbitmq-scaler",
        &["--listen", &address],
    );
    let child = support::KillOnDrop(child);
    support::wait_for_port(&address, Duration::from_secs(30));
    (child, address)
}

/// The controller as ServiceAccount `ebb-controller` of `namespace` with `deploy/`'s RBAC
/// (so the real authorizer checks its every request), for `namespace` alone (its Lease
/// there, watching only there), with `type: rabbitmq` triggers calling `scaler` (the chart's
/// `--scaler` registry).
struct Controller {
    running: InProcessController,
    /// The controller's user in the audit log.
    user: String,
    /// Where the audit log stood before it started.
    mark: AuditMark,
}

impl Controller {
    async fn start(cluster: &Cluster, namespace: &str, scaler: &str) -> Self {
        let account = cluster.controller_account(namespace);
        let mark = cluster.audit_mark();
        let args = ebb::kubernetes::ControllerArgs {
            namespace: namespace.to_owned(),
            watch_namespace: Some(namespace.to_owned()),
            scalers: vec![format!("rabbitmq={scaler}")],
            ..test_args("demo")
        };
        let client = cluster.client(Some(&account.kubeconfig)).await;
        Self {
            running: InProcessController::start(client, args).await,
            user: account.user,
            mark,
        }
    }

    /// Stops it; fails the test if the authorizer refused any of its requests.
    async fn stop(self, cluster: &Cluster) {
        self.running.stop().await;
        cluster.assert_nothing_forbidden(&self.mark, &self.user);
    }
}

fn install_crds(cluster: &Cluster) {
    let _cluster_wide = cluster.exclusive();
    cluster.install_crds();
}

/// `kubectl apply` of `manifest` in `namespace`.
fn apply(cluster: &Cluster, namespace: &str, manifest: &str) {
    let path = cluster.dir().join(format!("manifest-{namespace}.yaml"));
    std::fs::write(&path, manifest).expect("write the manifest");
    cluster.kubectl_ok(&["apply", "-n", namespace, "-f", &path.to_string_lossy()]);
}

/// Waits for condition `Ready` of `object` (`scaledobject/NAME`, `scaledjob/NAME`).
fn wait_ready(cluster: &Cluster, namespace: &str, object: &str) {
    cluster.kubectl_ok(&[
        "wait",
        "-n",
        namespace,
        "--for=condition=Ready",
        "--timeout=60s",
        object,
    ]);
}

// --- ScaledObject ---------------------------------------------------------------------------

/// The quickstart's consumer as a Deployment, at 0 replicas. The worker's `AMQP_URL` is where
/// the ScaledObject's `hostFromEnv` finds the broker, as in the quickstart.
fn consumer_deployment(queue: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders-worker
spec:
  replicas: 0
  selector:
    matchLabels: {{app: orders-worker}}
  template:
    metadata:
      labels: {{app: orders-worker}}
    spec:
      containers:
        - name: worker
          image: ghcr.io/example/ebb-quickstart-worker:latest
          env:
            - {{name: QUEUE, value: {queue}}}
            - {{name: WORK_TIME, value: 1s}}
            - {{name: AMQP_URL, value: \"{AMQP_URL}\"}}
"
    )
}

/// `examples/quickstart/orders.yaml`'s ScaledObject with a Deployment as its target; times
/// shortened: polling every 1 s (5 s there) and cooldown 5 s (30 s there).
fn seed_scaled_object(queue: &str) -> String {
    format!(
        "apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata:
  name: orders
spec:
  scaleTargetRef:
    name: orders-worker
  pollingInterval: 1
  cooldownPeriod: 5
  minReplicaCount: 0
  maxReplicaCount: 30
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp:
          stabilizationWindowSeconds: 0
          policies: [{{type: Pods, value: 30, periodSeconds: 5}}]
        scaleDown:
          stabilizationWindowSeconds: 10
          policies: [{{type: Percent, value: 100, periodSeconds: 5}}]
  triggers:
    - type: rabbitmq
      name: orders-queue
      metadata:
        queueName: {queue}
        mode: QueueLength
        value: \"5\"
        hostFromEnv: AMQP_URL
"
    )
}

/// What the cluster shows of the consumer at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
struct Scale {
    /// The Deployment's `spec.replicas`.
    deployment: i32,
    /// Its ReplicaSets, as `spec.replicas/status.readyReplicas`.
    replica_sets: Vec<String>,
    /// Pods Running and not being deleted, by name.
    running: Vec<String>,
    /// All its Pods, whatever their phase.
    pods: usize,
}

impl Scale {
    /// Deployment, its one ReplicaSet (ready too) and Running Pods all at `replicas`, and no
    /// other Pod.
    fn settled_at(&self, replicas: i32) -> bool {
        self.deployment == replicas
            && self.replica_sets == [format!("{replicas}/{replicas}")]
            && self.running.len() == replicas as usize
            && self.pods == replicas as usize
    }
}

async fn scale_of(client: &kube::Client, namespace: &str) -> Scale {
    let selector = ListParams::default().labels("app=orders-worker");
    let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get("orders-worker")
        .await
        .expect("get the Deployment");
    let replica_sets = Api::<ReplicaSet>::namespaced(client.clone(), namespace)
        .list(&selector)
        .await
        .expect("list ReplicaSets");
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&selector)
        .await
        .expect("list Pods");
    let running = pods
        .items
        .iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter(|pod| {
            pod.status
                .as_ref()
                .and_then(|status| status.phase.as_deref())
                == Some("Running")
        })
        .filter_map(|pod| pod.metadata.name.clone())
        .collect();
    Scale {
        deployment: deployment
            .spec
            .and_then(|spec| spec.replicas)
            .unwrap_or_default(),
        replica_sets: replica_sets
            .items
            .iter()
            .map(|set| {
                format!(
                    "{}/{}",
                    set.spec
                        .as_ref()
                        .and_then(|spec| spec.replicas)
                        .unwrap_or_default(),
                    set.status
                        .as_ref()
                        .and_then(|status| status.ready_replicas)
                        .unwrap_or_default()
                )
            })
            .collect(),
        running,
        pods: pods.items.len(),
    }
}

/// The consumers' side of the demo: the scale seen at each drain, and which Pod took which
/// message.
struct Drain<'a> {
    client: &'a kube::Client,
    namespace: &'a str,
    queue: &'a Queue,
    /// Each distinct scale seen, in order.
    timeline: Vec<Scale>,
    /// Message id -> the Pod that took it.
    taken: BTreeMap<String, String>,
}

impl Drain<'_> {
    /// Drains every [`DRAIN_PERIOD`] until `done` holds for the scale seen, failing after
    /// `within` with the timeline.
    async fn until(&mut self, what: &str, within: Duration, done: impl Fn(&Scale) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            let scale = scale_of(self.client, self.namespace).await;
            let ids = self.queue.take(scale.running.len()).await;
            for (id, pod) in ids.into_iter().zip(scale.running.iter().cycle()) {
                let previous = self.taken.insert(id.clone(), pod.clone());
                assert!(previous.is_none(), "message {id} was delivered twice");
            }
            if self.timeline.last() != Some(&scale) {
                self.timeline.push(scale.clone());
            }
            if done(&scale) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; scales seen:\n{:#?}",
                self.timeline
            );
            tokio::time::sleep(DRAIN_PERIOD).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_scales_a_rabbitmq_consumer_deployment_0_to_20_to_0_through_the_real_controllers()
{
    let queue = Queue::new("ebb-cluster-demo");
    let cluster = Cluster::running();
    install_crds(&cluster);
    let namespace = cluster.namespace("demo-orders");
    let ns = namespace.name.as_str();
    let (_scaler, scaler_address) = rabbitmq_scaler();
    apply(&cluster, ns, &consumer_deployment(&queue.name));
    apply(&cluster, ns, &seed_scaled_object(&queue.name));
    let controller = Controller::start(&cluster, ns, &scaler_address).await;
    wait_ready(&cluster, ns, "scaledobject/orders");
    let client = cluster.client(None).await;

    let mut drain = Drain {
        client: &client,
        namespace: ns,
        queue: &queue,
        timeline: Vec::new(),
        taken: BTreeMap::new(),
    };
    drain
        .until(
            "the empty queue at 0 replicas",
            Duration::from_secs(30),
            |scale| scale.settled_at(0),
        )
        .await;
    queue.publish(100);
    // 100 messages at 5 per replica: 20. Only the first Pod drains before the poll that
    // scales 1 -> 20, at 2 messages a second, so at least 96 are left then.
    drain
        .until("20 Running Pods", Duration::from_secs(60), |scale| {
            scale.settled_at(20)
        })
        .await;
    drain
        .until("0 replicas and no Pod", Duration::from_secs(90), |scale| {
            scale.settled_at(0)
        })
        .await;
    controller.stop(&cluster).await;

    let timeline = &drain.timeline;
    for scale in timeline {
        eprintln!(
            "deployment {} | replica sets {:?} | running {} | pods {}",
            scale.deployment,
            scale.replica_sets,
            scale.running.len(),
            scale.pods
        );
    }
    let peak = timeline.iter().map(|scale| scale.deployment).max();
    assert_eq!(peak, Some(20), "{timeline:#?}");
    assert!(
        timeline
            .iter()
            .all(|scale| scale.replica_sets.len() == 1 && scale.running.len() <= 20),
        "one ReplicaSet and at most 20 Pods throughout: {timeline:#?}"
    );
    // The queue drained through the Pods ebb scaled, and only through them.
    assert_eq!(queue.ready(), 0);
    assert_eq!(drain.taken.len(), 100, "every message taken once");
    let workers: BTreeSet<&String> = drain.taken.values().collect();
    // Each of the 20 took its share: they come up within a drain or two of each other, and
    // the ~95 messages left then last 19 Pods at least 5 drains.
    assert_eq!(workers.len(), 20, "{workers:?}");
}

// --- ScaledJob ------------------------------------------------------------------------------

/// `examples/rabbitmq-job/orders-job.yaml` in the cluster: one Job per message, polled every
/// second, keeping the 2 newest succeeded Jobs (10 there). The Pod template carries the
/// kubelet stand-in's annotations: its container exits 0 after a second.
fn seed_scaled_job(queue: &str) -> String {
    format!(
        "apiVersion: ebb.dev/v1alpha1
kind: ScaledJob
metadata:
  name: orders-job
spec:
  pollingInterval: 1
  maxReplicaCount: 20
  successfulJobsHistoryLimit: 2
  failedJobsHistoryLimit: 10
  scalingStrategy:
    strategy: default
  jobTargetRef:
    backoffLimit: 2
    activeDeadlineSeconds: 120
    template:
      metadata:
        annotations:
          ebb.dev/test-pod-outcome: Succeeded
          ebb.dev/test-pod-run-seconds: \"1\"
      spec:
        restartPolicy: Never
        containers:
          - name: job
            image: ghcr.io/example/ebb-quickstart-worker:latest
            command: [\"ebb-quickstart-worker\", \"--one-message\"]
            env:
              - {{name: QUEUE, value: {queue}}}
              - {{name: WORK_TIME, value: 1s}}
              - {{name: AMQP_URL, value: \"{AMQP_URL}\"}}
  triggers:
    - type: rabbitmq
      name: orders-queue
      metadata:
        queueName: {queue}
        mode: QueueLength
        value: \"1\"
        hostFromEnv: AMQP_URL
"
    )
}

/// A change the test's watches of the namespace report.
enum Change {
    Job(Box<watcher::Event<Job>>),
    Pod(Box<watcher::Event<Pod>>),
}

/// The namespace's Jobs and Pods as watch events (every state they pass through, so a Job
/// that completes and is pruned at once is still seen complete).
fn changes(client: &kube::Client, namespace: &str) -> BoxStream<'static, Change> {
    let jobs = watcher(
        Api::<Job>::namespaced(client.clone(), namespace),
        watcher::Config::default().labels("ebb.dev/scaled-job=orders-job"),
    )
    .default_backoff()
    .filter_map(|event| std::future::ready(event.ok().map(|event| Change::Job(Box::new(event)))));
    let pods = watcher(
        Api::<Pod>::namespaced(client.clone(), namespace),
        watcher::Config::default(),
    )
    .default_backoff()
    .filter_map(|event| std::future::ready(event.ok().map(|event| Change::Pod(Box::new(event)))));
    futures::stream::select(jobs, pods).boxed()
}

/// The Jobs and their Pods as the test saw them, and the message each Pod took.
#[derive(Debug, Default)]
struct JobWatch {
    /// Every Job ever seen -> `status.completionTime` once `Complete=True` was seen.
    jobs: BTreeMap<String, Option<String>>,
    /// Jobs that exist now.
    current: BTreeSet<String>,
    /// Every Pod ever seen -> its Job.
    pods: BTreeMap<String, String>,
    /// Pods that exist now -> their phase.
    current_pods: BTreeMap<String, String>,
    /// Pod -> the message it took.
    took: BTreeMap<String, String>,
    /// Pods that started when the queue was empty.
    empty_handed: Vec<String>,
}

impl JobWatch {
    fn completed(&self) -> usize {
        self.jobs.values().filter(|done| done.is_some()).count()
    }

    fn job(&mut self, job: &Job, exists: bool) {
        let name = job.metadata.name.clone().unwrap_or_default();
        let status = job.status.as_ref();
        let complete = status
            .and_then(|status| status.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|condition| condition.type_ == "Complete" && condition.status == "True")
            });
        let completion = status
            .and_then(|status| status.completion_time.as_ref())
            .filter(|_| complete)
            .map(|time| time.0.to_string());
        let seen = self.jobs.entry(name.clone()).or_default();
        if completion.is_some() {
            *seen = completion;
        }
        if exists {
            self.current.insert(name);
        } else {
            self.current.remove(&name);
        }
    }

    /// A Pod that has started takes its message, as `ebb-quickstart-worker --one-message`.
    async fn pod(&mut self, pod: &Pod, exists: bool, queue: &Queue) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let job = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|owner| owner.kind == "Job")
            .map(|owner| owner.name.clone())
            .unwrap_or_default();
        let phase = pod
            .status
            .as_ref()
            .and_then(|status| status.phase.clone())
            .unwrap_or_default();
        let started = ["Running", "Succeeded", "Failed"].contains(&phase.as_str());
        if started && !self.took.contains_key(&name) {
            match queue.take(1).await.pop() {
                Some(id) => {
                    self.took.insert(name.clone(), id);
                }
                None => self.empty_handed.push(name.clone()),
            }
        }
        self.pods.insert(name.clone(), job);
        if exists {
            self.current_pods.insert(name, phase);
        } else {
            self.current_pods.remove(&name);
        }
    }

    /// Follows `changes` until `done`, failing after 60 s with what was seen.
    async fn until(
        &mut self,
        changes: &mut BoxStream<'static, Change>,
        queue: &Queue,
        what: &str,
        done: impl Fn(&Self) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !done(self) {
            let change = tokio::time::timeout_at(deadline, changes.next())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}; seen:\n{self:#?}"))
                .expect("the watches run as long as the test");
            match change {
                Change::Job(event) => self.on_job(*event),
                Change::Pod(event) => self.on_pod(*event, queue).await,
            }
        }
    }

    fn on_job(&mut self, event: watcher::Event<Job>) {
        match event {
            watcher::Event::Apply(job) | watcher::Event::InitApply(job) => self.job(&job, true),
            watcher::Event::Delete(job) => self.job(&job, false),
            // A restarted watch lists what exists again.
            watcher::Event::Init => self.current.clear(),
            watcher::Event::InitDone => {}
        }
    }

    async fn on_pod(&mut self, event: watcher::Event<Pod>, queue: &Queue) {
        match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                self.pod(&pod, true, queue).await;
            }
            watcher::Event::Delete(pod) => self.pod(&pod, false, queue).await,
            watcher::Event::Init => self.current_pods.clear(),
            watcher::Event::InitDone => {}
        }
    }

    /// Pods seen of the Jobs in `jobs`.
    fn pods_of(&self, jobs: &BTreeSet<String>) -> BTreeSet<String> {
        self.pods
            .iter()
            .filter(|(_, job)| jobs.contains(*job))
            .map(|(pod, _)| pod.clone())
            .collect()
    }

    /// The Jobs seen that no longer exist.
    fn gone(&self) -> BTreeSet<String> {
        self.jobs
            .keys()
            .filter(|job| !self.current.contains(*job))
            .cloned()
            .collect()
    }

    /// The completion times of `jobs`.
    fn completions<'a>(&'a self, jobs: &'a BTreeSet<String>) -> impl Iterator<Item = &'a str> {
        jobs.iter().filter_map(|job| self.jobs.get(job)?.as_deref())
    }
}

/// The audit log's successful requests of `user` in `namespace` with `verb` on `resource`, as
/// object names (empty for a create, whose name the server generates).
fn audited(
    cluster: &Cluster,
    user: &str,
    verb: &str,
    namespace: &str,
    resource: &str,
) -> Vec<String> {
    let prefix = if resource == "pods" {
        format!("/api/v1/namespaces/{namespace}/pods")
    } else {
        format!("/apis/batch/v1/namespaces/{namespace}/{resource}")
    };
    cluster
        .audited_requests(user)
        .into_iter()
        .filter(|request| request.verb == verb && request.code < 300)
        .filter_map(|request| {
            let path = request.uri.split('?').next().unwrap_or_default();
            let rest = path.strip_prefix(&prefix)?;
            match rest.strip_prefix('/') {
                Some(name) => Some(name.to_owned()),
                None => rest.is_empty().then(String::new),
            }
        })
        .collect()
}

/// After 7 Jobs for 7 messages: ebb kept the 2 newest and deleted the other 5 (and no Pod);
/// the garbage collector deleted those 5 Jobs' Pods, and only those.
fn assert_pruned_through_the_garbage_collector(
    cluster: &Cluster,
    namespace: &str,
    ebb_user: &str,
    watch: &JobWatch,
) {
    let pruned = watch.gone();
    assert_eq!(pruned.len(), 5, "{watch:#?}");
    let newest_pruned = watch.completions(&pruned).max();
    let oldest_kept = watch.completions(&watch.current).min();
    assert!(
        newest_pruned <= oldest_kept,
        "a newer Job was pruned before an older one: {watch:#?}"
    );
    assert_eq!(
        watch.current_pods.keys().cloned().collect::<BTreeSet<_>>(),
        watch.pods_of(&watch.current),
        "the kept Jobs keep their Pods, and no other Pod is left"
    );
    assert!(
        watch
            .current_pods
            .values()
            .all(|phase| phase == "Succeeded"),
        "{watch:#?}"
    );
    let deleted_jobs: BTreeSet<String> = audited(cluster, ebb_user, "delete", namespace, "jobs")
        .into_iter()
        .collect();
    assert_eq!(deleted_jobs, pruned);
    assert!(audited(cluster, ebb_user, "delete", namespace, "pods").is_empty());
    let pruned_pods = watch.pods_of(&pruned);
    assert_eq!(pruned_pods.len(), 5, "one Pod per Job: {watch:#?}");
    support::wait_for(
        "the audit log's record of the garbage collector's Pod deletes",
        Duration::from_secs(10),
        || {
            audited(cluster, GARBAGE_COLLECTOR, "delete", namespace, "pods")
                .into_iter()
                .collect::<BTreeSet<_>>()
                == pruned_pods
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_scaled_job_runs_7_real_jobs_for_7_messages_and_history_pruning_frees_their_pods() {
    let queue = Queue::new("ebb-cluster-demo-jobs");
    let cluster = Cluster::running();
    install_crds(&cluster);
    let namespace = cluster.namespace("demo-jobs");
    let ns = namespace.name.as_str();
    let (_scaler, scaler_address) = rabbitmq_scaler();
    apply(&cluster, ns, &seed_scaled_job(&queue.name));
    let controller = Controller::start(&cluster, ns, &scaler_address).await;
    wait_ready(&cluster, ns, "scaledjob/orders-job");
    let client = cluster.client(None).await;

    let mut changes = changes(&client, ns);
    let mut watch = JobWatch::default();
    queue.publish(7);
    // Each Job's Pod takes its message and succeeds; ebb keeps the 2 newest succeeded Jobs.
    watch
        .until(
            &mut changes,
            &queue,
            "7 Jobs complete, 2 kept with their Pods",
            |watch| {
                watch.completed() == 7 && watch.current.len() == 2 && watch.current_pods.len() == 2
            },
        )
        .await;
    assert_eq!(watch.jobs.len(), 7, "7 Jobs for 7 messages: {watch:#?}");
    assert!(watch.empty_handed.is_empty(), "{watch:#?}");
    assert_eq!(watch.took.len(), 7, "each Job's Pod took one message");
    assert_eq!(queue.ready(), 0);
    assert_pruned_through_the_garbage_collector(&cluster, ns, &controller.user, &watch);

    // One more message: exactly one more Job. It is created at a poll after the 7 finished,
    // so no Job beyond those 7 came before it.
    queue.publish(1);
    watch
        .until(
            &mut changes,
            &queue,
            "an 8th Job, complete, and 2 kept",
            |watch| watch.completed() == 8 && watch.current.len() == 2,
        )
        .await;
    assert_eq!(
        audited(&cluster, &controller.user, "create", ns, "jobs").len(),
        8,
        "7 Jobs for 7 messages, then 1 for 1"
    );
    assert_eq!(watch.jobs.len(), 8, "{watch:#?}");
    assert!(watch.empty_handed.is_empty(), "{watch:#?}");
    controller.stop(&cluster).await;
}
